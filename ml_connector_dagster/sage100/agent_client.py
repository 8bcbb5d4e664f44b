"""The client of the local agent on the Sage server: AR listing, open invoices, cash receipts.

Lists come a page at a time (`list_*`, with the agent's page token) or whole (`iter_*`). Reads are
retried (clients.py); `create_cash_receipt` is never repeated blindly: after a lost answer it asks
`FindCashReceipt` first and writes again only if the agent says the receipt does not exist. Money
arrives as Decimal (the WSDL declares xsd:decimal); anything else is a contract bug.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from .clients import SoapClient
from .errors import SageFault, SageOutcomeUnknown, SageUnavailable
from .faults import typed
from .model import (
    CashReceipt,
    CashReceiptRequest,
    CustomerRecord,
    InvoiceRecord,
    ReceiptLine,
    SageRuleError,
    UnpostedReceiptLine,
    repeat_of,
)

T = TypeVar("T")


@dataclass(frozen=True)
class AgentInfo:
    version: str
    company_code: str
    company_name: str
    backend: str


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str | None


class AgentClient(SoapClient):
    """The local agent on the Sage server: AR listing, open invoices, cash receipts."""

    def ping(self) -> AgentInfo:
        r = self._read("Ping")
        return AgentInfo(r.Version, r.CompanyCode, r.CompanyName, r.Backend)

    def list_customers(
        self, updated_since: datetime | None = None, page_token: str | None = None
    ) -> Page[CustomerRecord]:
        r = self._read("ListCustomers", updatedSince=updated_since, pageToken=page_token)
        return Page([_customer(c) for c in _field(r, "customer") or []], _field(r, "nextPageToken"))

    def list_open_invoices(
        self, updated_since: datetime | None = None, page_token: str | None = None
    ) -> Page[InvoiceRecord]:
        r = self._read("ListOpenInvoices", updatedSince=updated_since, pageToken=page_token)
        return Page([_invoice(i) for i in _field(r, "invoice") or []], _field(r, "nextPageToken"))

    def iter_customers(self, updated_since: datetime | None = None) -> Iterator[CustomerRecord]:
        return _follow(lambda token: self.list_customers(updated_since, token))

    def iter_open_invoices(self, updated_since: datetime | None = None) -> Iterator[InvoiceRecord]:
        return _follow(lambda token: self.list_open_invoices(updated_since, token))

    def get_open_invoices(self, ar_division_no: str, customer_no: str) -> list[InvoiceRecord]:
        r = self._read("GetOpenInvoices", arDivisionNo=ar_division_no, customerNo=customer_no)
        return [_invoice(i) for i in _only_field(r, "invoice") or []]

    def get_unposted_receipts(self, ar_division_no: str, customer_no: str) -> list[UnpostedReceiptLine]:
        """The customer's receipt lines entered in Sage and not yet posted, people's and ours (ours carry their
        idempotency key). An agent older than this operation answers with a fault, or its WSDL lacks it:
        either comes out as a SageError."""
        r = self._read("GetUnpostedReceipts", arDivisionNo=ar_division_no, customerNo=customer_no)
        return [_unposted(line) for line in _only_field(r, "line") or []]

    def find_cash_receipt(self, idempotency_key: str) -> CashReceipt | None:
        receipt = _only_field(self._read("FindCashReceipt", idempotencyKey=idempotency_key), "receipt")
        return None if receipt is None else _receipt(receipt)

    def reverse_cash_receipt(self, idempotency_key: str, reason: str) -> CashReceipt:
        """Reversing twice is harmless (the agent returns the reversed receipt), so this retries like a read."""
        return _receipt(self._read("ReverseCashReceipt", write=True, idempotencyKey=idempotency_key, reason=reason))

    def create_cash_receipt(self, request: CashReceiptRequest) -> CashReceipt:
        """Write one receipt; if the answer is lost, ask FindCashReceipt before ever sending it again."""
        self._ready()
        params = _receipt_params(request)
        try:
            return _receipt(self._call("CreateCashReceipt", write=True, **params))
        except SageUnavailable as exc:
            if not exc.transient:
                raise
            first_error = exc
        for delay in self.retry.delays():
            self.retry.sleep(delay)
            try:
                found = self.find_cash_receipt(request.idempotency_key)
            except SageUnavailable:
                continue  # cannot tell whether it happened: never write blind
            if found is not None:
                return _repeat(found, request)
            try:
                return _receipt(self._call("CreateCashReceipt", write=True, **params))
            except SageUnavailable as exc:
                if not exc.transient:
                    raise
        raise SageOutcomeUnknown(
            f"CreateCashReceipt for {request.idempotency_key}: no answer after {self.retry.attempts} attempts "
            f"({first_error.message}); it may have been written - call FindCashReceipt before retrying"
        )


# --- mapping --------------------------------------------------------------------------------------------------------


def _only_field(result: Any, name: str) -> Any:
    """zeep unwraps a result whose type has a single element; accept it wrapped or not."""
    if result is None or isinstance(result, list):
        return result
    return getattr(result, name, result)


def _field(result: Any, name: str) -> Any:
    """A field of a result; zeep gives None for an empty result element."""
    return None if result is None else getattr(result, name)


def _follow(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
    token: str | None = None
    while True:
        page = fetch(token)
        yield from page.items
        token = page.next_page_token
        if not token:
            return


def _customer(c: Any) -> CustomerRecord:
    return CustomerRecord(
        c.ARDivisionNo,
        c.CustomerNo,
        c.CustomerName,
        c.EmailAddress or "",
        _decimal(c.CurrentBalance),
        c.CustomerStatus,
        c.DateUpdated,
        c.TimeUpdated,
    )


def _invoice(i: Any) -> InvoiceRecord:
    return InvoiceRecord(
        i.ARDivisionNo,
        i.CustomerNo,
        i.InvoiceNo,
        i.InvoiceType,
        i.InvoiceDate,
        i.InvoiceDueDate,
        _decimal(i.Balance),
        _decimal(i.PaymentsToday),
        i.DateUpdated,
        i.TimeUpdated,
    )


def _unposted(u: Any) -> UnpostedReceiptLine:
    return UnpostedReceiptLine(
        u.depositNo,
        u.checkNo,
        u.depositDate,
        u.arDivisionNo,
        u.customerNo,
        u.invoiceNo,
        u.invoiceType,
        _decimal(u.amountPosted),
        u.idempotencyKey or "",
    )


def _receipt(r: Any) -> CashReceipt:
    lines = tuple(ReceiptLine(line.invoiceNo, line.invoiceType, _decimal(line.amount)) for line in r.lines.line)
    return CashReceipt(
        r.idempotencyKey,
        r.receiptId,
        r.depositNo,
        r.checkNo,
        r.bankCode,
        r.depositDate,
        r.arDivisionNo,
        r.customerNo,
        _decimal(r.amount),
        r.reference or "",
        r.status,
        lines,
        created=bool(r.created),
        reversal_reason=r.reversalReason or "",
        warnings=tuple(r.warnings.warning) if r.warnings is not None else (),
    )


def _repeat(found: CashReceipt, request: CashReceiptRequest) -> CashReceipt:
    """A receipt found after a lost answer counts only if it is the one asked for (the agent's own rule)."""
    try:
        return repeat_of(found, request)
    except SageRuleError as exc:
        raise typed(exc.code, exc.message, write=True) from None


def _decimal(value: Any) -> Decimal:
    if not isinstance(value, Decimal):  # zeep parses xsd:decimal to Decimal; anything else is a contract bug
        raise SageFault(f"expected a decimal amount from Sage, got {type(value).__name__}")
    return value


def _receipt_params(request: CashReceiptRequest) -> dict[str, Any]:
    return {
        "idempotencyKey": request.idempotency_key,
        "depositDate": request.deposit_date,
        "bankCode": request.bank_code,
        "arDivisionNo": request.ar_division_no,
        "customerNo": request.customer_no,
        "amount": request.amount,
        "reference": request.reference or None,
        "lines": {
            "line": [
                {"invoiceNo": line.invoice_no, "invoiceType": line.invoice_type, "amount": line.amount}
                for line in request.lines
            ]
        },
    }
