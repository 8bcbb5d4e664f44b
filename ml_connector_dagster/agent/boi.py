"""Sage 100 through the Business Object Interface (`ProvideX.Script` over COM, via pywin32): Windows only.

It follows the call sequence of Sage's public BOI examples. Several names in it (the cash receipt objects
and task, `InvoiceType$` on lines, the deposit key, the history objects) are unconfirmed: they all live in
`BOINames`, and this backend must be validated on a real Sage 100 installation before production use.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import date
from decimal import Decimal
from typing import Any

from ..sage100.model import (
    FAULT_COMPANY,
    FAULT_EXISTS,
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
from .ledger import AgentLedger, KeyLocks

log = logging.getLogger(__name__)
DEFAULT_CLAIM_WAIT = 20.0  # seconds a call waits for another call's write of the same key (under zeep's 30 s)


@dataclass(frozen=True)
class BOINames:
    """Every ProvideX name the BOI backend uses. Those marked (unconfirmed) follow Sage's naming convention
    but were not checked against Sage's documentation: validate them on a real installation."""

    script_progid: str = "ProvideX.Script"
    session: str = "SY_Session"
    module: str = "A/R"
    customer_svc: str = "AR_Customer_svc"
    open_invoice_svc: str = "AR_OpenInvoice_svc"
    read_task: str = "AR_Customer_ui"
    deposit_bus: str = "AR_CashReceiptsDeposit_bus"  # (unconfirmed)
    receipts_bus: str = "AR_CashReceipts_bus"  # (unconfirmed)
    receipts_task: str = "AR_CashReceipts_ui"  # (unconfirmed)
    line_invoice_type: str = "InvoiceType$"  # (unconfirmed) field of AR_CashReceiptsDetail
    comment_field: str = "Comment$"  # where the idempotency key (GoCardless payment id) is kept
    history_svc: str = "AR_CashReceiptsHistory_svc"  # (unconfirmed) posted receipt lines
    payment_history_svc: str = "AR_TransactionPaymentHistory_svc"  # (unconfirmed) posted payments per invoice
    payment_reference_field: str = "PaymentReference$"  # of AR_TransactionPaymentHistory


CUSTOMER_FIELDS = (
    "ARDivisionNo$",
    "CustomerNo$",
    "CustomerName$",
    "EmailAddress$",
    "CurrentBalance",
    "CustomerStatus$",
    "DateUpdated$",
    "TimeUpdated$",
)
INVOICE_FIELDS = (
    "ARDivisionNo$",
    "CustomerNo$",
    "InvoiceNo$",
    "InvoiceType$",
    "InvoiceDate$",
    "InvoiceDueDate$",
    "Balance",
    "PaymentsToday",
    "DateUpdated$",
    "TimeUpdated$",
)
HEADER_FIELDS = ("DepositNo$", "ARDivisionNo$", "CustomerNo$", "CheckNo$", "PostingAmt")
HISTORY_FIELDS = ("DepositNo$", "ARDivisionNo$", "CustomerNo$", "CheckNo$")
PAYMENT_HISTORY_FIELDS = ("ARDivisionNo$", "CustomerNo$", "CheckNo$")


class BOIBackend:
    """Sage 100 through the Business Object Interface (`ProvideX.Script` over COM, via pywin32)."""

    name = "boi"

    def __init__(
        self,
        mas90_home: str,
        ledger: AgentLedger,
        names: BOINames = BOINames(),
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
            self.check(ss, ss.nSetDate(self.names.module, self._today().strftime("%Y%m%d")), "nSetDate")
            self.check(ss, ss.nSetModule(self.names.module), "nSetModule")
            self.check(ss, ss.nSetProgram(ss.nLookupTask(task)), f"nSetProgram({task})")
            yield session
        finally:
            for obj in reversed(session.objects):
                com.quietly(obj.DropObject)
            com.quietly(ss.nCleanup)
            com.quietly(ss.DropObject)

    @staticmethod
    def check(obj: Any, rc: Any, what: str) -> int:
        """BOI return codes: 1 success, -1 success with a warning (logged), 0 failure (sLastErrorMsg raised)."""
        code = com.rc(rc)
        if code == 0:
            error = str(getattr(obj, "sLastErrorNum", "") or "BOI_Error")
            raise SageRuleError(error, com.message(obj, f"{what} failed"))
        if code == -1:
            log.warning("Sage warned on %s: %s", what, com.message(obj, "(no message)"))
        return code

    # --- reads ------------------------------------------------------------------------------------------------

    def company_name(self, credentials: Credentials) -> str:
        with self.session(credentials, self.names.read_task) as s:
            return str(getattr(s.ss, "sCompanyName", "") or credentials.company_code)

    def list_customers(
        self, credentials: Credentials, since: Stamp | None, after: tuple[str, ...] | None, limit: int
    ) -> list[CustomerRecord]:
        with self.session(credentials, self.names.read_task) as s:
            rows = [com.customer_record(r) for r in self._rows(s.new(self.names.customer_svc), CUSTOMER_FIELDS)]
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
            self.check(customer, customer.nSetKeyValue("ARDivisionNo$", ar_division_no), "nSetKeyValue")
            self.check(customer, customer.nSetKeyValue("CustomerNo$", customer_no), "nSetKeyValue")
            if com.rc(customer.nFind()) != 1:
                raise SageRuleError(FAULT_NO_KEY, f"Customer {ar_division_no}-{customer_no} does not exist.")
            rows = [r for r in self._invoices(s) if (r.ARDivisionNo, r.CustomerNo) == (ar_division_no, customer_no)]
        return sorted(rows, key=lambda r: (r.InvoiceDueDate or date.min, r.InvoiceDate or date.min, r.InvoiceNo))

    def _invoices(self, s: com.Session) -> list[InvoiceRecord]:
        return [com.invoice_record(r) for r in self._rows(s.new(self.names.open_invoice_svc), INVOICE_FIELDS)]

    def _rows(self, obj: Any, fields: Sequence[str]) -> Iterator[dict[str, Any]]:
        """Every record of a service object: nMoveFirst, then nGetValue per field until nEOF."""
        obj.nMoveFirst()
        while not com.eof(obj):
            yield {name.rstrip("$"): com.get(obj, name) for name in fields}
            obj.nMoveNext()

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
        recovered = self._recover(s, found[1])
        return None if recovered is None else (recovered.status, recovered)

    def _enter(self, s: com.Session, request: CashReceiptRequest, check_no: str) -> CashReceipt:
        """Write the receipt and record it. Sage's refusal frees the key; any other failure leaves it pending,
        because the write may have reached Sage (the next call for the key looks for it there)."""
        try:
            self._check_request(s, request)
            deposit_no = self._deposit(s, request)
            self._write_receipt(s, request, deposit_no, check_no)
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

    def _deposit(self, s: com.Session, request: CashReceiptRequest, sign: Decimal = Decimal(1)) -> str:
        """The unposted deposit for this bank code and date, or a new one; its amount grows by the receipt's."""
        dep = s.new(self.names.deposit_bus)
        wanted = (request.bank_code, request.deposit_date.strftime("%Y%m%d"))
        rows = list(self._rows(dep, ("DepositNo$", "BankCode$", "DepositDate$")))
        match = next((r["DepositNo"] for r in rows if (r["BankCode"], r["DepositDate"]) == wanted), None)
        deposit_no = (
            match or f"{max((int(r['DepositNo']) for r in rows if str(r['DepositNo']).isdigit()), default=0) + 1:05d}"
        )
        self.check(dep, dep.nSetKeyValue("DepositNo$", deposit_no), "deposit nSetKeyValue")
        is_new = self.check(dep, dep.nSetKey(), "deposit nSetKey") == 2
        current = Decimal(0) if is_new else com.decimal(com.get(dep, "CashDepositAmt"))
        if is_new:
            self.check(dep, dep.nSetValue("BankCode$", request.bank_code), "deposit BankCode$")
            self.check(dep, dep.nSetValue("DepositDate$", wanted[1]), "deposit DepositDate$")
            self.check(dep, dep.nSetValue("DepositDesc$", "GoCardless"), "deposit DepositDesc$")
        self.check(dep, dep.nSetValue("CashDepositAmt", current + sign * request.amount), "deposit CashDepositAmt")
        self.check(dep, dep.nWrite(), "deposit nWrite")
        return deposit_no

    def _write_receipt(
        self, s: com.Session, request: CashReceiptRequest, deposit_no: str, check_no: str, sign: Decimal = Decimal(1)
    ) -> None:
        """Header keys, PostingAmt and the key in Comment$, then each line, then the header's nWrite."""
        cr = s.new(self.names.receipts_bus)
        for field, value in (
            ("DepositNo$", deposit_no),
            ("ARDivisionNo$", request.ar_division_no),
            ("CustomerNo$", request.customer_no),
            ("CheckNo$", check_no),
        ):
            self.check(cr, cr.nSetKeyValue(field, value), f"receipt {field}")
        if self.check(cr, cr.nSetKey(), "receipt nSetKey") != 2:
            raise SageRuleError(FAULT_EXISTS, f"Cash receipt {check_no} already exists in deposit {deposit_no}.")
        self.check(cr, cr.nSetValue("PostingAmt", sign * request.amount), "receipt PostingAmt")
        self.check(cr, cr.nSetValue(self.names.comment_field, request.idempotency_key), "receipt comment")
        lines = cr.oLines
        try:
            for line in request.lines:
                self.check(lines, lines.nAddLine(), "line nAddLine")
                self.check(lines, lines.nSetValue("InvoiceNo$", line.invoice_no), "line InvoiceNo$")
                self.check(lines, lines.nSetValue(self.names.line_invoice_type, line.invoice_type), "line InvoiceType")
                self.check(lines, lines.nSetValue("AmountPosted", sign * line.amount), "line AmountPosted")
                self.check(lines, lines.nWrite(), "line nWrite")
            self.check(cr, cr.nWrite(), "receipt nWrite")
        except SageRuleError:
            com.quietly(cr.nClear)  # nothing reaches Sage's files until the header's nWrite succeeds
            raise

    def _recover(self, s: com.Session, pending: CashReceipt) -> CashReceipt | None:
        """Where an interrupted write may be: still in entry (the key in the header's comment) or, once the
        Cash Receipts Journal has been updated, in history (the check number reserved for it, or the key)."""
        found = self._in_entry(s, pending) or self._in_history(s, pending)
        if found is None:
            return None
        deposit_no, check_no, status = found
        receipt = replace(
            pending,
            deposit_no=deposit_no,
            check_no=check_no,
            status=status,
            created=False,
            receipt_id=receipt_id(pending.bank_code, deposit_no, pending.ar_division_no, pending.customer_no, check_no),
        )
        self.ledger.complete(receipt)
        log.info("Recovered the interrupted cash receipt for key %r from Sage (%s)", pending.idempotency_key, status)
        return receipt

    def _in_entry(self, s: com.Session, pending: CashReceipt) -> tuple[str, str, str] | None:
        row = self._header_with_comment(s, pending.idempotency_key)
        return None if row is None else (com.text(row["DepositNo"]), com.text(row["CheckNo"]), "entered")

    def _in_history(self, s: com.Session, pending: CashReceipt) -> tuple[str, str, str] | None:
        """Posted lines carry the receipt's check number (unique: the ledger reserves each once); payment
        history may also carry the key as its PaymentReference. Both are read whole: history has no index here."""
        ours = (pending.ar_division_no, pending.customer_no, pending.check_no)
        for row in self._rows(s.new(self.names.history_svc), HISTORY_FIELDS):
            if com.key_of(row) == ours:
                return com.text(row["DepositNo"]), com.text(row["CheckNo"]), "posted"
        reference = self.names.payment_reference_field
        for row in self._rows(s.new(self.names.payment_history_svc), (*PAYMENT_HISTORY_FIELDS, reference)):
            if com.key_of(row) == ours or com.text(row[reference.rstrip("$")]) == pending.idempotency_key:
                return pending.deposit_no, com.text(row["CheckNo"]), "posted"
        return None

    def _header_with_comment(self, s: com.Session, comment: str) -> dict[str, Any] | None:
        cr = s.new(self.names.receipts_bus)
        rows = self._rows(cr, (*HEADER_FIELDS, self.names.comment_field))
        return next((r for r in rows if r[self.names.comment_field.rstrip("$")] == comment), None)

    def reverse_cash_receipt(self, credentials: Credentials, idempotency_key: str, reason: str) -> CashReceipt:
        """Unposted: delete the entry. Posted: enter an offsetting negative receipt (unconfirmed practice)."""
        with self.session(credentials, self.names.receipts_task) as s, self._claimed(idempotency_key):
            found = self._settled(s, idempotency_key)
            if found is None:
                raise SageRuleError(FAULT_NO_KEY, f"There is no cash receipt for idempotency key {idempotency_key}.")
            status, receipt = found
            if status == "reversed":
                return receipt
            if not self._delete_entry(s, receipt) and self._header_with_comment(s, f"{idempotency_key}-R") is None:
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
                deposit_no = self._deposit(s, request, Decimal(-1))
                self._write_receipt(s, request, deposit_no, f"{receipt.check_no[:9]}R", Decimal(-1))
        self.ledger.reversed(idempotency_key, reason)
        return replace(receipt, status="reversed", reversal_reason=reason)

    def _delete_entry(self, s: com.Session, receipt: CashReceipt) -> bool:
        cr = s.new(self.names.receipts_bus)
        for field, value in (
            ("DepositNo$", receipt.deposit_no),
            ("ARDivisionNo$", receipt.ar_division_no),
            ("CustomerNo$", receipt.customer_no),
            ("CheckNo$", receipt.check_no),
        ):
            self.check(cr, cr.nSetKeyValue(field, value), f"receipt {field}")
        if self.check(cr, cr.nSetKey(), "receipt nSetKey") != 1:
            com.quietly(cr.nClear)
            return False  # no longer in entry: the journal has posted it
        self.check(cr, cr.nDelete(), "receipt nDelete")
        return True
