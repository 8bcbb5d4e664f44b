"""Where the agent's answers come from: the `Backend` protocol, and Sage 100 through BOI (Windows, agent/boi.py).

A backend raises `SageRuleError(code, message)` for anything Sage refuses; the SOAP layer turns that into a
Sage-shaped fault. Credentials are checked by the backend on every call (BOI: `nSetUser`/`nSetCompany`),
so the agent holds no password of its own. The simulated backend, over a company kept in SQLite, is part
of the sandbox (sandbox/simulated_backend.py); `ml-connector agent --backend simulated` wires it in.
"""

from __future__ import annotations

from typing import Protocol

from ..sage100.model import (
    CashReceipt,
    CashReceiptRequest,
    Credentials,
    CustomerRecord,
    InvoiceRecord,
    Stamp,
    UnpostedReceiptLine,
)
from .boi import BOIBackend
from .boi_names import BOINames

__all__ = ["BOIBackend", "BOINames", "Backend"]


class Backend(Protocol):
    """What the agent's operations need from Sage. `since` is exclusive; `after` is a page position."""

    name: str

    def company_name(self, credentials: Credentials) -> str: ...

    def list_customers(
        self, credentials: Credentials, since: Stamp | None, after: tuple[str, ...] | None, limit: int
    ) -> list[CustomerRecord]: ...

    def list_open_invoices(
        self, credentials: Credentials, since: Stamp | None, after: tuple[str, ...] | None, limit: int
    ) -> list[InvoiceRecord]: ...

    def get_open_invoices(
        self, credentials: Credentials, ar_division_no: str, customer_no: str
    ) -> list[InvoiceRecord]: ...

    def get_unposted_receipts(
        self, credentials: Credentials, ar_division_no: str, customer_no: str
    ) -> list[UnpostedReceiptLine]: ...

    def create_cash_receipt(self, credentials: Credentials, request: CashReceiptRequest) -> CashReceipt: ...

    def find_cash_receipt(self, credentials: Credentials, idempotency_key: str) -> CashReceipt | None: ...

    def reverse_cash_receipt(self, credentials: Credentials, idempotency_key: str, reason: str) -> CashReceipt: ...
