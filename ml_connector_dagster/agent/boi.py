"""Sage 100 through the Business Object Interface (`ProvideX.Script` over COM, via pywin32): Windows only.

It follows the call sequence of Sage's public BOI examples. Several names in it (the cash receipt objects
and task, `InvoiceType$` on lines, the deposit key, the history objects) are unconfirmed: they all live in
`BOINames` (boi_names.py), and this backend must be validated on a real Sage 100 installation before
production use.

  boi.py          BOIBackend: the session, reads, and the cash receipt operations (one call per key at a
                  time, the ledger, the product's checks)
  boi_entry.py    writing the entry: deposit, receipt header and lines; deleting an unposted receipt
  boi_recovery.py finding an interrupted write in Sage: in entry, or in history once posted
  boi_names.py    BOINames and the fields read
  boi_com.py      COM: session objects, return codes, reading records, Sage's field formats
"""

from __future__ import annotations

import contextlib
import logging
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
    FAULT_OUT_OF_BALANCE,
    FAULT_OVER_APPLIED,
    LOGON_FAILURE_TEXT,
    OUT_OF_BALANCE_TEXT,
    CashReceipt,
    CashReceiptRequest,
    Credentials,
    CustomerRecord,
    InvoiceRecord,
    SageRuleError,
    Stamp,
    receipt_id,
    repeat_of,
)
from . import boi_com as com
from . import boi_entry as entry
from . import boi_recovery as recovery
from .boi_names import CUSTOMER_FIELDS, INVOICE_FIELDS, BOINames
from .ledger import AgentLedger, KeyLocks

log = logging.getLogger(__name__)
DEFAULT_CLAIM_WAIT = 20.0  # seconds a call waits for another call's write of the same key (under zeep's 30 s)
DEFAULT_NAMES = BOINames()  # Sage's names as the public examples have them; see boi_names.py


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
    ) -> None:
        self.home = mas90_home
        self.ledger = ledger
        self.names = names
        self.claim_wait = claim_wait
        self._dispatch = dispatch
        self._today = today
        self._keys = KeyLocks()

    # --- the session: Init, SY_Session, SetUser, SetCompany, SetDate, SetModule, SetProgram --------------------

    @contextlib.contextmanager
    def session(self, credentials: Credentials, task: str) -> Iterator[com.Session]:
        script = self._dispatch(self.names.script_progid)
        script.Init(self.home)
        ss = script.NewObject(self.names.session)
        session = com.Session(script, ss)
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
            rows = [com.customer_record(r) for r in com.rows(s.new(self.names.customer_svc), CUSTOMER_FIELDS)]
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
            com.check(customer, customer.nSetKeyValue("ARDivisionNo$", ar_division_no), "nSetKeyValue")
            com.check(customer, customer.nSetKeyValue("CustomerNo$", customer_no), "nSetKeyValue")
            if com.rc(customer.nFind()) != 1:
                raise SageRuleError(FAULT_NO_KEY, f"Customer {ar_division_no}-{customer_no} does not exist.")
            rows = [r for r in self._invoices(s) if (r.ARDivisionNo, r.CustomerNo) == (ar_division_no, customer_no)]
        return sorted(rows, key=lambda r: (r.InvoiceDueDate or date.min, r.InvoiceDate or date.min, r.InvoiceNo))

    def _invoices(self, s: com.Session) -> list[InvoiceRecord]:
        return [com.invoice_record(r) for r in com.rows(s.new(self.names.open_invoice_svc), INVOICE_FIELDS)]

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
            self._check_request(s, request)
            deposit_no = entry.deposit(s, self.names, request)
            entry.write_receipt(s, self.names, request, deposit_no, check_no)
        except SageRuleError:
            self.ledger.abandon(request.idempotency_key)
            raise
        receipt = CashReceipt(
            request.idempotency_key,
            receipt_id(request.bank_code, deposit_no, request.ar_division_no, request.customer_no, check_no),
            deposit_no,
            check_no,
            request.bank_code,
            request.deposit_date,
            request.ar_division_no,
            request.customer_no,
            request.amount,
            request.reference,
            "entered",
            request.lines,
            created=True,
        )
        self.ledger.complete(receipt)
        return receipt

    def _check_request(self, s: com.Session, request: CashReceiptRequest) -> None:
        """The product's rules, checked before Sage is touched (Sage may only warn on an overpayment)."""
        if sum((line.amount for line in request.lines), Decimal(0)) != request.amount:
            raise SageRuleError(FAULT_OUT_OF_BALANCE, OUT_OF_BALANCE_TEXT)
        balances = {
            (r.InvoiceNo, r.InvoiceType): r.Balance
            for r in self._invoices(s)
            if (r.ARDivisionNo, r.CustomerNo) == (request.ar_division_no, request.customer_no)
        }
        applied: dict[tuple[str, str], Decimal] = {}
        for line in request.lines:
            key = (line.invoice_no, line.invoice_type)
            applied[key] = applied.get(key, Decimal(0)) + line.amount
            if key in balances and applied[key] > balances[key]:
                raise SageRuleError(
                    FAULT_OVER_APPLIED,
                    f"The amount posted to invoice {line.invoice_no} "
                    f"({applied[key]}) exceeds its balance of {balances[key]}.",
                )

    def reverse_cash_receipt(self, credentials: Credentials, idempotency_key: str, reason: str) -> CashReceipt:
        """Unposted: delete the entry. Posted: enter an offsetting negative receipt (unconfirmed practice)."""
        with self.session(credentials, self.names.receipts_task) as s, self._claimed(idempotency_key):
            found = self._settled(s, idempotency_key)
            if found is None:
                raise SageRuleError(FAULT_NO_KEY, f"There is no cash receipt for idempotency key {idempotency_key}.")
            status, receipt = found
            if status == "reversed":
                return receipt
            reversal_key = f"{idempotency_key}-R"
            if not entry.delete_entry(s, self.names, receipt) and (
                recovery.header_with_comment(s, self.names, reversal_key) is None
            ):
                request = CashReceiptRequest(
                    reversal_key,
                    self._today(),
                    receipt.bank_code,
                    receipt.ar_division_no,
                    receipt.customer_no,
                    receipt.amount,
                    reason,
                    receipt.lines,
                )
                deposit_no = entry.deposit(s, self.names, request, Decimal(-1))
                entry.write_receipt(s, self.names, request, deposit_no, f"{receipt.check_no[:9]}R", Decimal(-1))
        self.ledger.reversed(idempotency_key, reason)
        return replace(receipt, status="reversed", reversal_reason=reason)
