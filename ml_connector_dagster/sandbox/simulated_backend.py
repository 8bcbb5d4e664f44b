"""The agent's simulated backend: the agent's `Backend` protocol over the simulated company (sage_company/).

With it the real agent (agent/service.py) serves a company kept in SQLite instead of Sage 100 through BOI,
for the tests, the demo and trying the agent out. Like the BOI backend it checks the logon and company
code on every call, and raises `SageRuleError` for whatever the company refuses.
`ml-connector agent --backend simulated` builds it (cli/agent_cmd.py); product code never does.
"""

from __future__ import annotations

from ..sage100.model import (
    CashReceipt,
    CashReceiptRequest,
    Credentials,
    CustomerRecord,
    InvoiceRecord,
    Stamp,
    UnpostedReceiptLine,
)
from .sage_company import SageCompany

__all__ = ["SimulatedBackend"]


class SimulatedBackend:
    """The simulated company behind the agent (structurally an `agent.backends.Backend`)."""

    name = "simulated"

    def __init__(self, company: SageCompany) -> None:
        self.company = company

    def company_name(self, credentials: Credentials) -> str:
        self.company.authorise(credentials)
        return self.company.info.name

    def list_customers(
        self, credentials: Credentials, since: Stamp | None, after: tuple[str, ...] | None, limit: int
    ) -> list[CustomerRecord]:
        self.company.authorise(credentials)
        return self.company.list_customers(since, after, limit)

    def list_open_invoices(
        self, credentials: Credentials, since: Stamp | None, after: tuple[str, ...] | None, limit: int
    ) -> list[InvoiceRecord]:
        self.company.authorise(credentials)
        return self.company.list_open_invoices(since, after, limit)

    def get_open_invoices(self, credentials: Credentials, ar_division_no: str, customer_no: str) -> list[InvoiceRecord]:
        self.company.authorise(credentials)
        return self.company.open_invoices_for(ar_division_no, customer_no)

    def get_unposted_receipts(
        self, credentials: Credentials, ar_division_no: str, customer_no: str
    ) -> list[UnpostedReceiptLine]:
        self.company.authorise(credentials)
        return self.company.unposted_receipts_for(ar_division_no, customer_no)

    def create_cash_receipt(self, credentials: Credentials, request: CashReceiptRequest) -> CashReceipt:
        self.company.authorise(credentials)
        return self.company.create_cash_receipt(request)

    def find_cash_receipt(self, credentials: Credentials, idempotency_key: str) -> CashReceipt | None:
        self.company.authorise(credentials)
        return self.company.find_cash_receipt(idempotency_key)

    def reverse_cash_receipt(self, credentials: Credentials, idempotency_key: str, reason: str) -> CashReceipt:
        self.company.authorise(credentials)
        return self.company.reverse_cash_receipt(idempotency_key, reason)
