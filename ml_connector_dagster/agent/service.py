"""The agent's SOAP service: Sage-style operations over a backend (BOI on Windows, or the simulated company).

WSDL: ml_connector_dagster/sage100/wsdl/agent.wsdl, served at /agent?wsdl. Every operation takes `logon`
and `companyCode` and the backend checks them, exactly as Sage's own services do; nothing else in the
product knows which backend answers. Failed logons are recorded per source address (agent/logons.py):
one that keeps failing is refused for a while before the backend is asked to check another password.

Lists are paged by position, not offset: a page token holds the (DateUpdated, TimeUpdated, key) of the
last record sent, so a record that changes while a client pages moves behind the cursor and is sent
again later instead of being skipped.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from importlib import metadata
from pathlib import Path
from typing import Any, TypeVar

from starlette.applications import Starlette

from ..sage100.model import (
    CUSTOMER_KEY,
    FAULT_LOGON,
    INVOICE_KEY,
    CashReceipt,
    CashReceiptRequest,
    Credentials,
    CustomerRecord,
    InvoiceRecord,
    Listed,
    ReceiptLine,
    SageRuleError,
    Stamp,
    UnpostedReceiptLine,
)
from .backends import Backend
from .logons import LogonGuard, LogonPolicy
from .soap import Args, SoapFault, SoapService, credentials_of, soap_app

NAMESPACE = "urn:ml-connector:sage100:agent"
WSDL = Path(__file__).resolve().parents[1] / "sage100" / "wsdl" / "agent.wsdl"
PATH = "/agent"
DEFAULT_PAGE_SIZE = 500
T = TypeVar("T")
L = TypeVar("L", bound=Listed)
LOGON_POLICY = LogonPolicy()  # the defaults (frozen: one instance serves every service)


def version() -> str:
    try:
        return metadata.version("ml-connector-dagster")
    except metadata.PackageNotFoundError:  # running from a source tree without installing
        return "0+unknown"


class AgentService:
    """The operations; each reads its parameters, calls the backend and shapes the result like the WSDL."""

    def __init__(
        self,
        backend: Backend,
        page_size: int = DEFAULT_PAGE_SIZE,
        logon_policy: LogonPolicy = LOGON_POLICY,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if page_size < 1:
            raise ValueError(f"page_size must be at least 1, not {page_size}")
        self.backend = backend
        self.page_size = page_size
        self.logons = LogonGuard(logon_policy, clock)

    def service(self, path: str = PATH) -> SoapService:
        return SoapService(
            path,
            WSDL,
            NAMESPACE,
            {
                "Ping": self.ping,
                "ListCustomers": self.list_customers,
                "ListOpenInvoices": self.list_open_invoices,
                "GetOpenInvoices": self.get_open_invoices,
                "GetUnpostedReceipts": self.get_unposted_receipts,
                "CreateCashReceipt": self.create_cash_receipt,
                "FindCashReceipt": self.find_cash_receipt,
                "ReverseCashReceipt": self.reverse_cash_receipt,
            },
        )

    def _as(self, args: Args, credentials: Credentials, call: Callable[..., T], *params: Any) -> T:
        """Call the backend as `credentials` unless the caller's address is being refused, and record how
        the logon went: Sage's logon failure counts against the address, anything past the logon clears it."""
        self.logons.check(args.peer)
        try:
            result = call(credentials, *params)
        except SageRuleError as exc:
            if exc.code == FAULT_LOGON:
                self.logons.failed(args.peer, credentials.username, credentials.company_code)
            else:
                self.logons.succeeded(args.peer)
            raise
        self.logons.succeeded(args.peer)
        return result

    def ping(self, args: Args) -> dict[str, Any]:
        credentials = credentials_of(args)
        name = self._as(args, credentials, self.backend.company_name)
        return {
            "Version": version(),
            "CompanyCode": credentials.company_code.upper(),
            "CompanyName": name,
            "Backend": self.backend.name,
        }

    def list_customers(self, args: Args) -> dict[str, Any]:
        return self._page(args, "customer", CUSTOMER_KEY, self.backend.list_customers, _customer)

    def list_open_invoices(self, args: Args) -> dict[str, Any]:
        return self._page(args, "invoice", INVOICE_KEY, self.backend.list_open_invoices, _invoice)

    def _page(
        self,
        args: Args,
        kind: str,
        key: Sequence[str],
        fetch: Callable[..., list[L]],
        shape: Callable[[L], dict[str, Any]],
    ) -> dict[str, Any]:
        credentials = credentials_of(args)
        since = _since(args.datetime("updatedSince", required=False), args.text("updatedSince", required=False))
        token = args.text("pageToken", required=False)
        after = decode_page_token(token, kind, 2 + len(key)) if token else None
        rows = self._as(args, credentials, fetch, since, after, self.page_size + 1)
        page = rows[: self.page_size]
        result: dict[str, Any] = {kind: [shape(r) for r in page]}
        if len(rows) > self.page_size:
            last = page[-1]
            result["nextPageToken"] = encode_page_token(kind, (*last.stamp, *last.key))
        return result

    def get_open_invoices(self, args: Args) -> dict[str, Any]:
        rows = self._as(
            args,
            credentials_of(args),
            self.backend.get_open_invoices,
            args.text("arDivisionNo"),
            args.text("customerNo"),
        )
        return {"invoice": [_invoice(r) for r in rows]}

    def get_unposted_receipts(self, args: Args) -> dict[str, Any]:
        rows = self._as(
            args,
            credentials_of(args),
            self.backend.get_unposted_receipts,
            args.text("arDivisionNo"),
            args.text("customerNo"),
        )
        return {"line": [_unposted(r) for r in rows]}

    def create_cash_receipt(self, args: Args) -> dict[str, Any]:
        credentials = credentials_of(args)
        lines = args.nested("lines").children("line")
        request = CashReceiptRequest(
            idempotency_key=args.text("idempotencyKey"),
            deposit_date=args.date("depositDate"),
            bank_code=args.text("bankCode"),
            ar_division_no=args.text("arDivisionNo"),
            customer_no=args.text("customerNo"),
            amount=args.decimal("amount"),
            reference=args.text("reference", required=False) or "",
            lines=tuple(
                ReceiptLine(line.text("invoiceNo"), line.text("invoiceType"), line.decimal("amount")) for line in lines
            ),
        )
        return receipt_contract(self._as(args, credentials, self.backend.create_cash_receipt, request))

    def find_cash_receipt(self, args: Args) -> dict[str, Any]:
        receipt = self._as(args, credentials_of(args), self.backend.find_cash_receipt, args.text("idempotencyKey"))
        return {"receipt": None if receipt is None else receipt_contract(receipt)}

    def reverse_cash_receipt(self, args: Args) -> dict[str, Any]:
        receipt = self._as(
            args,
            credentials_of(args),
            self.backend.reverse_cash_receipt,
            args.text("idempotencyKey"),
            args.text("reason"),
        )
        return receipt_contract(receipt)


def agent_app(
    backend: Backend,
    page_size: int = DEFAULT_PAGE_SIZE,
    logon_policy: LogonPolicy = LOGON_POLICY,
    clock: Callable[[], float] = time.monotonic,
) -> Starlette:
    """The agent's ASGI app; `logon_policy` says when an address that keeps failing logons is refused."""
    return soap_app(AgentService(backend, page_size, logon_policy, clock).service())


# --- shaping ------------------------------------------------------------------------------------------------------


def _since(moment: datetime | None, written: str | None) -> Stamp | None:
    """Sage stamps are the server's local time; an aware `updatedSince` is converted to it first.

    A moment whose local time falls outside the calendar (year 1 at +14:00) is refused naming the value.
    """
    if moment is None:
        return None
    if moment.tzinfo is not None:
        try:
            moment = _local(moment)
        except (OverflowError, ValueError, OSError):
            raise SoapFault.bad_request(
                f"The element 'updatedSince' is outside the dates this server can convert "
                f"to its local time: {written!r}; give a moment from year 1 to 9999 in "
                "local time."
            ) from None
    return Stamp.of(moment)


def _local(moment: datetime) -> datetime:
    """`moment` in the server's local time, naive. Windows cannot convert moments before 1970 by its zone
    rules (OSError); those get today's offset, which is as good as any for a stamp that old."""
    try:
        return moment.astimezone().replace(tzinfo=None)
    except OSError:  # an aware moment (as every stamp's is) has an offset, and so has astimezone()'s answer
        offset = datetime.now().astimezone().utcoffset() or timedelta(0)
        return (moment - (moment.utcoffset() or timedelta(0)) + offset).replace(tzinfo=None)


def _customer(r: CustomerRecord) -> dict[str, Any]:
    return {
        "ARDivisionNo": r.ARDivisionNo,
        "CustomerNo": r.CustomerNo,
        "CustomerName": r.CustomerName,
        "EmailAddress": r.EmailAddress,
        "CurrentBalance": r.CurrentBalance,
        "CustomerStatus": r.CustomerStatus,
        "DateUpdated": r.DateUpdated,
        "TimeUpdated": r.TimeUpdated,
    }


def _invoice(r: InvoiceRecord) -> dict[str, Any]:
    return {
        "ARDivisionNo": r.ARDivisionNo,
        "CustomerNo": r.CustomerNo,
        "InvoiceNo": r.InvoiceNo,
        "InvoiceType": r.InvoiceType,
        "InvoiceDate": r.InvoiceDate,
        "InvoiceDueDate": r.InvoiceDueDate,
        "Balance": r.Balance,
        "PaymentsToday": r.PaymentsToday,
        "DateUpdated": r.DateUpdated,
        "TimeUpdated": r.TimeUpdated,
    }


def _unposted(r: UnpostedReceiptLine) -> dict[str, Any]:
    return {
        "depositNo": r.deposit_no,
        "checkNo": r.check_no,
        "depositDate": r.deposit_date,
        "arDivisionNo": r.ar_division_no,
        "customerNo": r.customer_no,
        "invoiceNo": r.invoice_no,
        "invoiceType": r.invoice_type,
        "amountPosted": r.amount_posted,
        "idempotencyKey": r.idempotency_key or None,
    }


def receipt_contract(r: CashReceipt) -> dict[str, Any]:
    return {
        "idempotencyKey": r.idempotency_key,
        "receiptId": r.receipt_id,
        "depositNo": r.deposit_no,
        "checkNo": r.check_no,
        "bankCode": r.bank_code,
        "depositDate": r.deposit_date,
        "arDivisionNo": r.ar_division_no,
        "customerNo": r.customer_no,
        "amount": r.amount,
        "reference": r.reference,
        "status": r.status,
        "created": r.created,
        "reversalReason": r.reversal_reason or None,
        "lines": {
            "line": [
                {"invoiceNo": line.invoice_no, "invoiceType": line.invoice_type, "amount": line.amount}
                for line in r.lines
            ]
        },
        "warnings": {"warning": list(r.warnings)} if r.warnings else None,
    }


# --- page tokens --------------------------------------------------------------------------------------------------


def encode_page_token(kind: str, position: Sequence[str]) -> str:
    raw = json.dumps([kind, *position], separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii")


MAX_PAGE_TOKEN = 2048  # far longer than any token this service hands out


def decode_page_token(token: str, kind: str, size: int) -> tuple[str, ...]:
    """The position a token holds; a token from another list, or one not exactly as handed out, is refused."""
    data = _token_data(token) if len(token) <= MAX_PAGE_TOKEN else None
    if not (
        isinstance(data, list)
        and len(data) == size + 1
        and data[0] == kind
        and all(isinstance(v, str) for v in data[1:])
        and encode_page_token(kind, data[1:]) == token
    ):
        raise SoapFault.bad_request(
            f"The element 'pageToken' is not one this list returned ({kind} list): "
            f"{token[:40]!r}; start again without it."
        )
    return tuple(data[1:])


def _token_data(token: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (binascii.Error, ValueError, UnicodeError, RecursionError):
        return None
