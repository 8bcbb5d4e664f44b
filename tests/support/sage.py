"""Sage for tests: a cash receipt request for the bundled company, an agent client for the stand-ins, and the page
size the stand-ins serve."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from ml_connector_dagster.sage100 import AgentClient, RetryPolicy
from ml_connector_dagster.sage100.model import CashReceiptRequest, ReceiptLine
from ml_connector_dagster.sandbox.sage_services import SageStandIns

PAGE_SIZE = 3  # rows per page the Sage stand-ins serve in tests, so every listing crosses pages

MakeRequest = Callable[..., CashReceiptRequest]


def cash_receipt_request(
    key: str = "PM0001",
    lines: tuple[tuple[str, str], ...] = (("0100031", "450.00"),),
    amount: str | None = None,
    customer: str = "ABF",
    bank: str = "A",
    deposit_date: date = date(2026, 11, 25),
) -> CashReceiptRequest:
    """A cash receipt for 01-`customer`; by default 450.00 paying invoice 0100031 of 01-ABF in full."""
    receipt_lines = tuple(ReceiptLine(no, "IN", Decimal(value)) for no, value in lines)
    total = Decimal(amount) if amount else sum((line.amount for line in receipt_lines), Decimal(0))
    return CashReceiptRequest(key, deposit_date, bank, "01", customer, total, f"GC {key}", receipt_lines)


def agent_client(stand_ins: SageStandIns, retry: RetryPolicy | None = None) -> AgentClient:
    """An agent client logged on to the stand-ins' company (the client's own retry policy unless `retry`)."""
    options = {"retry": retry} if retry is not None else {}
    return AgentClient(
        stand_ins.agent_wsdl,
        username=stand_ins.username,
        password=stand_ins.password,
        company_code=stand_ins.company_code,
        **options,
    )
