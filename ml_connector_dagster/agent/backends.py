"""Where the agent's answers come from: Sage 100 through BOI (Windows, agent/boi.py), or the simulated company.

Both raise `SageRuleError(code, message)` for anything Sage refuses; the SOAP layer turns that into a
Sage-shaped fault. Credentials are checked by the backend on every call (BOI: `nSetUser`/`nSetCompany`),
so the agent holds no password of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from ..sage100.model import CashReceipt, CashReceiptRequest, Credentials, CustomerRecord, InvoiceRecord, Stamp
from .boi import BOIBackend, BOINames

if TYPE_CHECKING:  # the sandbox is imported only by whoever builds this backend
    from ..sandbox.sage_company import SageCompany

__all__ = ["Backend", "BOIBackend", "BOINames", "SimulatedBackend"]


class Backend(Protocol):
    """What the agent's operations need from Sage. `since` is exclusive; `after` is a page position."""

    name: str

    def company_name(self, credentials: Credentials) -> str: ...

    def list_customers(self, credentials: Credentials, since: Stamp | None, after: tuple[str, ...] | None,
                       limit: int) -> list[CustomerRecord]: ...

    def list_open_invoices(self, credentials: Credentials, since: Stamp | None, after: tuple[str, ...] | None,
                           limit: int) -> list[InvoiceRecord]: ...

    def get_open_invoices(self, credentials: Credentials, ar_division_no: str, customer_no: str) -> list[InvoiceRecord]: ...

    def create_cash_receipt(self, credentials: Credentials, request: CashReceiptRequest) -> CashReceipt: ...

    def find_cash_receipt(self, credentials: Credentials, idempotency_key: str) -> CashReceipt | None: ...

    def reverse_cash_receipt(self, credentials: Credentials, idempotency_key: str, reason: str) -> CashReceipt: ...


# --- simulated -------------------------------------------------------------------------------------------------

class SimulatedBackend:
    """The simulated company (sandbox/sage_company.py): for tests, the demo and trying the agent out."""

    name = "simulated"

    def __init__(self, company: "SageCompany") -> None:
        self.company = company

    def company_name(self, credentials: Credentials) -> str:
        self.company.authorise(credentials)
        return self.company.info.name

    def list_customers(self, credentials: Credentials, since: Stamp | None, after: tuple[str, ...] | None,
                       limit: int) -> list[CustomerRecord]:
        self.company.authorise(credentials)
        return self.company.list_customers(since, after, limit)

    def list_open_invoices(self, credentials: Credentials, since: Stamp | None, after: tuple[str, ...] | None,
                           limit: int) -> list[InvoiceRecord]:
        self.company.authorise(credentials)
        return self.company.list_open_invoices(since, after, limit)

    def get_open_invoices(self, credentials: Credentials, ar_division_no: str, customer_no: str) -> list[InvoiceRecord]:
        self.company.authorise(credentials)
        return self.company.open_invoices_for(ar_division_no, customer_no)

    def create_cash_receipt(self, credentials: Credentials, request: CashReceiptRequest) -> CashReceipt:
        self.company.authorise(credentials)
        return self.company.create_cash_receipt(request)

    def find_cash_receipt(self, credentials: Credentials, idempotency_key: str) -> CashReceipt | None:
        self.company.authorise(credentials)
        return self.company.find_cash_receipt(idempotency_key)

    def reverse_cash_receipt(self, credentials: Credentials, idempotency_key: str, reason: str) -> CashReceipt:
        self.company.authorise(credentials)
        return self.company.reverse_cash_receipt(idempotency_key, reason)
