"""Sage 100 through the Business Object Interface (`ProvideX.Script` over COM, via pywin32): Windows only.

It follows the call sequence of Sage's public BOI examples. Several names in it (the cash receipt objects
and task, `InvoiceType$` on lines, the AR options, the next-deposit-number and batch methods, the history
objects) are unconfirmed: they all live in `BOINames` (boi_names.py), overridable from a file, and
`ml-connector agent doctor` tries each of them on the Sage server before it goes live.

  boi.py          BOIBackend: the session, reads, and the cash receipt operations (one call per key at a
                  time, one write at a time, the ledger, the product's checks)
  boi_entry.py    writing the entry: options, our own deposits, receipt header and lines; deleting
  boi_recovery.py finding an interrupted write in Sage: in entry, or in history once posted
  boi_names.py    BOINames, the fields each object is used for, the overrides file
  boi_com.py      COM: session objects, return codes, by-reference values, reading records, Sage's formats
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

from ..sage100.model import (
    FAULT_COMPANY,
    FAULT_IN_PROGRESS,
    FAULT_LOGON,
    FAULT_NO_KEY,
    FAULT_NOT_ON_FILE,
    FAULT_OUT_OF_BALANCE,
    FAULT_OVER_APPLIED,
    LOGON_FAILURE_TEXT,
    OUT_OF_BALANCE_TEXT,
    OVER_APPLIED_TEXT,
    CashReceipt,
    CashReceiptRequest,
    Credentials,
    CustomerRecord,
    InvoiceRecord,
    SageRuleError,
    Stamp,
    UnpostedReceiptLine,
    entered_receipt,
    repeat_of,
)
from . import boi_com as com
from . import boi_entry as entry
from . import boi_recovery as recovery
from .boi_entry import EntryOptions, OptionSettings
from .boi_names import CUSTOMERS, INVOICES, UNPOSTED_DEPOSITS, UNPOSTED_HEADERS, UNPOSTED_LINES, BOINames, columns
from .ledger import AgentLedger, KeyLocks, OwnDeposit

log = logging.getLogger(__name__)
DEFAULT_CLAIM_WAIT = 20.0  # seconds a call waits for another call's write of the same key (under zeep's 30 s)
DEFAULT_NAMES = BOINames()  # Sage's names as the public examples have them; see boi_names.py
READ_FROM_SAGE = OptionSettings()  # the company options read from Sage's AR options record


class BOIBackend:
    """Sage 100 through the Business Object Interface (`ProvideX.Script` over COM, via pywin32)."""

    name = "boi"

    def __init__(
        self,
        mas90_home: str,
        ledger: AgentLedger,
        names: BOINames = DEFAULT_NAMES,
        dispatch: Callable[[str], Any] = com.win32_dispatch,
        today: Callable[[], date] = date.today,
        claim_wait: float = DEFAULT_CLAIM_WAIT,
        variant: Callable[[Any], Any] = com.win32_variant,
        options: OptionSettings = READ_FROM_SAGE,
    ) -> None:
        self.home = mas90_home
        self.ledger = ledger
        self.names = names
        self.claim_wait = claim_wait
        self.option_settings = options
        self.byref = com.ByRef(names.get_value_form, variant)  # shared: the form is detected once per process
        self._dispatch = dispatch
        self._today = today
        self._keys = KeyLocks()
        # One write at a time per invoice: the open-amount check and the write it allows must not interleave
        # with another receipt's for the same invoice. Receipts for other invoices do not wait.
        self._invoices_held = KeyLocks()
        self._deposit_amounts = threading.Lock()  # one session at a time changes a deposit's total

    # --- the session: Init, SY_Session, SetUser, SetCompany, SetDate, SetModule, SetProgram --------------------

    @contextlib.contextmanager
    def session(self, credentials: Credentials, task: str) -> Iterator[com.Session]:
        script = self._dispatch(self.names.script_progid)
        script.Init(self.home)
        ss = script.NewObject(self.names.session)
        session = com.Session(script, ss, self.byref)
        try:
            if com.rc(ss.nSetUser(credentials.username, credentials.password)) == 0:
                raise SageRuleError(FAULT_LOGON, LOGON_FAILURE_TEXT)
            if com.rc(ss.nSetCompany(credentials.company_code)) == 0:
                raise SageRuleError(
                    FAULT_COMPANY,
                    f"Invalid company code {credentials.company_code}: {com.message(ss, 'nSetCompany failed')}",
                )
            com.check(ss, ss.nSetDate(self.names.module, self._today().strftime("%Y%m%d")), "nSetDate")
            com.check(ss, ss.nSetModule(self.names.module), "nSetModule")
            com.check(ss, ss.nSetProgram(ss.nLookupTask(task)), f"nSetProgram({task})")
            yield session
        finally:
            for obj in reversed(session.objects):
                com.quietly(obj.DropObject)
            com.quietly(ss.nCleanup)
            com.quietly(ss.DropObject)

    # --- reads ------------------------------------------------------------------------------------------------

    def company_name(self, credentials: Credentials) -> str:
        with self.session(credentials, self.names.read_task) as s:
            return str(getattr(s.ss, "sCompanyName", "") or credentials.company_code)

    def list_customers(
        self, credentials: Credentials, since: Stamp | None, after: tuple[str, ...] | None, limit: int
    ) -> list[CustomerRecord]:
        with self.session(credentials, self.names.read_task) as s:
            customers = s.rows(s.new(self.names.customer_svc), columns(self.names, CUSTOMERS))
            rows = [com.customer_record(r) for r in customers]
        return com.page(rows, since, after, limit)

    def list_open_invoices(
        self, credentials: Credentials, since: Stamp | None, after: tuple[str, ...] | None, limit: int
    ) -> list[InvoiceRecord]:
        """BOI has no index on the change stamp here, so this reads the table and pages in memory."""
        with self.session(credentials, self.names.read_task) as s:
            rows = self._invoices(s)
        return com.page(rows, since, after, limit)

    def get_open_invoices(self, credentials: Credentials, ar_division_no: str, customer_no: str) -> list[InvoiceRecord]:
        with self.session(credentials, self.names.read_task) as s:
            customer = s.new(self.names.customer_svc)
            s.check(customer, customer.nSetKeyValue(self.names.ar_division_no, ar_division_no), "nSetKeyValue")
            s.check(customer, customer.nSetKeyValue(self.names.customer_no, customer_no), "nSetKeyValue")
            if com.rc(customer.nFind()) != 1:
                raise SageRuleError(FAULT_NO_KEY, f"Customer {ar_division_no}-{customer_no} does not exist.")
            rows = [r for r in self._invoices(s) if (r.ARDivisionNo, r.CustomerNo) == (ar_division_no, customer_no)]
        return sorted(rows, key=lambda r: (r.InvoiceDueDate or date.min, r.InvoiceDate or date.min, r.InvoiceNo))

    def get_unposted_receipts(
        self, credentials: Credentials, ar_division_no: str, customer_no: str
    ) -> list[UnpostedReceiptLine]:
        """The customer's receipt lines in entry (people's and ours), read from the header, detail and deposit
        objects (whole: no index on the customer here). A receipt is ours when it sits in a deposit the agent
        opened and its ledger holds it there (a reversal's negative receipt: its comment is `<key>-R`)."""
        wanted = (ar_division_no, customer_no)
        with self.session(credentials, self.names.receipts_task) as s:
            customer = s.new(self.names.customer_svc)
            s.check(customer, customer.nSetKeyValue(self.names.ar_division_no, ar_division_no), "nSetKeyValue")
            s.check(customer, customer.nSetKeyValue(self.names.customer_no, customer_no), "nSetKeyValue")
            if com.rc(customer.nFind()) != 1:
                raise SageRuleError(FAULT_NO_KEY, f"Customer {ar_division_no}-{customer_no} does not exist.")
            lines = [
                r
                for r in s.rows(s.new(self.names.unposted_detail_svc), columns(self.names, UNPOSTED_LINES))
                if (com.text(r["ARDivisionNo"]), com.text(r["CustomerNo"])) == wanted
            ]
            if not lines:
                return []
            comments = {
                (com.text(h["DepositNo"]), *com.key_of(h)): com.text(h["Comment"])
                for h in s.rows(s.new(self.names.unposted_header_svc), columns(self.names, UNPOSTED_HEADERS))
                if (com.text(h["ARDivisionNo"]), com.text(h["CustomerNo"])) == wanted
            }
            dates = {
                com.text(d["DepositNo"]): com.sage_date(d["DepositDate"])
                for d in s.rows(s.new(self.names.unposted_deposit_svc), columns(self.names, UNPOSTED_DEPOSITS))
            }
        found = [
            UnpostedReceiptLine(
                com.text(r["DepositNo"]),
                com.text(r["CheckNo"]),
                dates.get(com.text(r["DepositNo"])),
                ar_division_no,
                customer_no,
                com.text(r["InvoiceNo"]),
                com.text(r["InvoiceType"]) or "IN",
                com.decimal(r["AmountPosted"]),
                self._key_of_entry(com.text(r["DepositNo"]), com.key_of(r), comments),
            )
            for r in lines
        ]
        return sorted(found, key=lambda u: (u.deposit_date or date.min, u.deposit_no, u.check_no))

    def _key_of_entry(
        self, deposit_no: str, key: tuple[str, str, str], comments: dict[tuple[str, str, str, str], str]
    ) -> str:
        if self.ledger.deposit(deposit_no) is None:  # a person's deposit: never ours
            return ""
        ours = self.ledger.key_of_entry(deposit_no, *key)
        if ours:
            return ours
        comment = comments.get((deposit_no, *key), "")
        if comment.endswith("-R"):  # our reversal of a posted receipt, entered under the same check number
            reversed_one = self.ledger.get(comment[:-2])
            if reversed_one is not None and reversed_one[1].check_no == key[2]:
                return comment[:-2]
        return ""

    def _invoices(self, s: com.Session) -> list[InvoiceRecord]:
        rows = s.rows(s.new(self.names.open_invoice_svc), columns(self.names, INVOICES))
        return [com.invoice_record(r) for r in rows]

    def options(self, s: com.Session) -> EntryOptions:
        """The company options that change entry: from the agent's settings, else Sage's AR options."""
        return entry.read_options(s, self.names, self.option_settings)

    # --- cash receipts -------------------------------------------------------------------------------------------

    def find_cash_receipt(self, credentials: Credentials, idempotency_key: str) -> CashReceipt | None:
        """The receipt for a key; an interrupted write is looked for in Sage (entry, then history) first."""
        with self.session(credentials, self.names.receipts_task) as s, self._claimed(idempotency_key):
            found = self._settled(s, idempotency_key)
        return None if found is None else found[1]

    def create_cash_receipt(self, credentials: Credentials, request: CashReceiptRequest) -> CashReceipt:
        """Log on, then hold the key: a second call for it waits for the first and answers from its outcome
        (the same receipt; or, if Sage refused the first, an attempt of its own)."""
        key = request.idempotency_key
        with self.session(credentials, self.names.receipts_task) as s, self._claimed(key):
            found = self._settled(s, key)
            if found is not None:
                return repeat_of(found[1], request)
            self.ledger.abandon(key)  # a pending intent Sage never received: the key is free
            check_no = self.ledger.claim(request)
            if check_no is None:  # cannot happen while this process owns the ledger and holds the key
                raise SageRuleError(
                    FAULT_IN_PROGRESS,
                    f"The cash receipt for idempotency key {key} was claimed "
                    "by another call; ask FindCashReceipt, then try again.",
                )
            return self._enter(s, request, check_no)

    def calls_waiting(self, idempotency_key: str) -> int:
        """Calls waiting for another call's work on this key (for monitoring and tests)."""
        return max(self._keys.users(idempotency_key) - 1, 0)

    @contextlib.contextmanager
    def _claimed(self, key: str) -> Iterator[None]:
        """This process's one call at a time for a key, waiting at most `claim_wait` seconds for it."""
        with self._keys.hold(key, self.claim_wait) as held:
            if not held:
                raise SageRuleError(
                    FAULT_IN_PROGRESS,
                    f"The cash receipt for idempotency key {key} is being "
                    "written by another call; ask FindCashReceipt or try again "
                    "in a few seconds.",
                )
            yield

    @contextlib.contextmanager
    def _holding(self, request: CashReceiptRequest) -> Iterator[None]:
        """The invoices a receipt applies to, held by this call (in one order, so two calls never deadlock)."""
        invoices = sorted({(line.invoice_no, line.invoice_type) for line in request.lines})
        with contextlib.ExitStack() as stack:
            for invoice_no, invoice_type in invoices:
                name = f"{request.ar_division_no}-{request.customer_no}-{invoice_no}-{invoice_type}"
                if not stack.enter_context(self._invoices_held.hold(name, self.claim_wait)):
                    raise SageRuleError(
                        FAULT_IN_PROGRESS,
                        f"Another cash receipt for invoice {invoice_no} is being written; try again in a few seconds.",
                    )
            yield

    def _settled(self, s: com.Session, key: str) -> tuple[str, CashReceipt] | None:
        """The ledger's (status, receipt) for a key, with an interrupted write resolved by looking in Sage.

        None when there is no receipt; a pending row that Sage does not have stays pending (for create to free).
        """
        found = self.ledger.get(key)
        if found is None or found[0] != "pending":
            return found
        recovered = recovery.recovered(s, self.names, found[1])
        if recovered is None:
            return None
        self.ledger.complete(recovered)
        log.info(
            "Recovered the interrupted cash receipt for key %r from Sage (%s)",
            recovered.idempotency_key,
            recovered.status,
        )
        return recovered.status, recovered

    def _enter(self, s: com.Session, request: CashReceiptRequest, check_no: str) -> CashReceipt:
        """Write the receipt and record it. Sage's refusal frees the key; any other failure leaves it pending,
        because the write may have reached Sage (the next call for the key looks for it there)."""
        try:
            with self._holding(request):
                self._check_request(s, request)
                options = self.options(s)
                deposit = entry.own_deposit(
                    s, self.names, self.ledger, options, request.bank_code, request.deposit_date
                )
                entry.write_receipt(s, self.names, request, deposit, check_no)
        except SageRuleError:
            self.ledger.abandon(request.idempotency_key)
            raise
        receipt = entered_receipt(request, deposit.deposit_no, check_no)
        self.ledger.complete(receipt)
        if options.require_deposit_amount:
            self._add_to_deposit_amount(s, deposit, request.amount)
        return replace(receipt, warnings=tuple(s.warnings))  # what Sage warned about and wrote anyway

    def _add_to_deposit_amount(self, s: com.Session, deposit: OwnDeposit, delta: Decimal) -> None:
        """The deposit total Sage requires, raised once the receipt is written. Failing here leaves the receipt
        as written: the deposit's total is then short, which Sage points out before the journal update."""
        try:
            with self._deposit_amounts:
                entry.add_to_deposit_amount(s, self.names, deposit, delta)
        except SageRuleError as exc:
            log.warning(
                "The receipt is written but deposit %s's CashDepositAmt could not be changed by %s: %s",
                deposit.deposit_no,
                delta,
                exc.message,
            )
            s.warnings.append(f"Deposit {deposit.deposit_no}: CashDepositAmt not changed by {delta}: {exc.message}")

    def _check_request(self, s: com.Session, request: CashReceiptRequest) -> None:
        """The product's rules, checked before Sage is touched (Sage's screen only warns on an overpayment).

        What is still open on an invoice is its Balance less PaymentsToday: Balance moves only at the Cash
        Receipts Journal update, and every unposted receipt (people's and ours) is in PaymentsToday.
        """
        if sum((line.amount for line in request.lines), Decimal(0)) != request.amount:
            raise SageRuleError(FAULT_OUT_OF_BALANCE, OUT_OF_BALANCE_TEXT)
        invoices = {
            (r.InvoiceNo, r.InvoiceType): r
            for r in self._invoices(s)
            if (r.ARDivisionNo, r.CustomerNo) == (request.ar_division_no, request.customer_no)
        }
        applied: dict[tuple[str, str], Decimal] = {}
        for line in request.lines:
            key = (line.invoice_no, line.invoice_type)
            invoice = invoices.get(key)
            if invoice is None:  # Sage would offer a prepayment: never made silently
                raise SageRuleError(
                    FAULT_NOT_ON_FILE,
                    f"Invoice {line.invoice_no} ({line.invoice_type}) of customer "
                    f"{request.ar_division_no}-{request.customer_no} is not on file.",
                )
            applied[key] = applied.get(key, Decimal(0)) + line.amount
            still_open = invoice.Balance - invoice.PaymentsToday
            if applied[key] > still_open:
                raise SageRuleError(
                    FAULT_OVER_APPLIED,
                    f"{OVER_APPLIED_TEXT} Invoice {line.invoice_no}: {applied[key]} applied, {still_open} open "
                    f"(balance {invoice.Balance} less {invoice.PaymentsToday} in unposted receipts).",
                )

    def reverse_cash_receipt(self, credentials: Credentials, idempotency_key: str, reason: str) -> CashReceipt:
        """Unposted: delete the entry. Posted: enter a negative receipt with the same check number on the same
        invoices, in a deposit of the agent's own dated today, for the journal update to post."""
        with self.session(credentials, self.names.receipts_task) as s, self._claimed(idempotency_key):
            found = self._settled(s, idempotency_key)
            if found is None:
                raise SageRuleError(FAULT_NO_KEY, f"There is no cash receipt for idempotency key {idempotency_key}.")
            status, receipt = found
            if status == "reversed":
                return receipt
            options = self.options(s)
            deposit = self.ledger.deposit(receipt.deposit_no)
            if entry.delete_entry(s, self.names, receipt, deposit):
                if options.require_deposit_amount and deposit is not None:
                    self._add_to_deposit_amount(s, deposit, -receipt.amount)
            elif recovery.header_with_comment(s, self.names, f"{idempotency_key}-R") is None:
                request = CashReceiptRequest(
                    f"{idempotency_key}-R",
                    self._today(),
                    receipt.bank_code,
                    receipt.ar_division_no,
                    receipt.customer_no,
                    receipt.amount,
                    reason,
                    receipt.lines,
                )
                today = entry.own_deposit(s, self.names, self.ledger, options, receipt.bank_code, self._today())
                entry.write_receipt(s, self.names, request, today, receipt.check_no, Decimal(-1))
                if options.require_deposit_amount:
                    self._add_to_deposit_amount(s, today, -receipt.amount)
        self.ledger.reversed(idempotency_key, reason)
        return replace(receipt, status="reversed", reversal_reason=reason)

    def discard_deposit(self, credentials: Credentials, deposit_no: str) -> bool:
        """Delete one of the agent's own deposits from entry (the doctor's rehearsal cleans up with it)."""
        deposit = self.ledger.deposit(deposit_no)
        if deposit is None:
            raise SageRuleError(FAULT_NO_KEY, f"Deposit {deposit_no} was not opened by this agent.")
        with self.session(credentials, self.names.receipts_task) as s, self._deposit_amounts:
            return entry.delete_deposit(s, self.names, self.ledger, deposit)
