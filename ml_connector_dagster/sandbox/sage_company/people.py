"""What people do in Sage meanwhile, as Sage lets them: key a cash receipt into a deposit of their own.

A person's receipt is checked as Sage checks every receipt (checks.py) and entered unposted (deposits.py):
the invoice's `PaymentsToday` rises, its `Balance` waits for the Cash Receipts Journal update (journal.py).
Everything happens inside the caller's write transaction.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ...sage100.model import FAULT_EXISTS, FAULT_INVALID, ReceiptLine, SageRuleError
from .checks import check_customer, check_lines
from .deposits import ENTRY_KEY, PERSON, deposit_of, enter
from .rows import CompanyOptions


@dataclass(frozen=True)
class KeyedReceipt:
    """A receipt a person keys in Sage's Cash Receipts Entry: one invoice, their own check number."""

    ar_division_no: str
    customer_no: str
    invoice_no: str
    invoice_type: str
    amount: Decimal
    check_no: str
    deposit_date: date
    keyed_by: str = PERSON


@dataclass(frozen=True)
class EnteredReceipt:
    """What Sage shows once a person's receipt is entered: where it went, and what Sage warned about."""

    deposit_no: str
    check_no: str
    warnings: tuple[str, ...] = ()


def key_receipt(
    conn: sqlite3.Connection, keyed: KeyedReceipt, bank_code: str, options: CompanyOptions
) -> EnteredReceipt:
    """A person keys a receipt in Sage: into their own open deposit of that date (opened if needed), checked
    as Sage checks every receipt; the invoice's PaymentsToday rises, its Balance does not."""
    line = ReceiptLine(keyed.invoice_no, keyed.invoice_type, keyed.amount)
    div, cust = keyed.ar_division_no, keyed.customer_no
    warnings = check_customer(conn, div, cust)
    check_lines(conn, div, cust, (line,))
    if not keyed.check_no or len(keyed.check_no) > 10:
        raise SageRuleError(FAULT_INVALID, f"The check number {keyed.check_no!r} must be 1 to 10 characters.")
    deposit_no, batch_no = deposit_of(conn, keyed.keyed_by, bank_code, keyed.deposit_date, options)
    if conn.execute(
        f"SELECT 1 FROM AR_CashReceiptsHeader WHERE {ENTRY_KEY}", (deposit_no, div, cust, keyed.check_no)
    ).fetchone():
        raise SageRuleError(
            FAULT_EXISTS, f"Check {keyed.check_no} of customer {div}-{cust} is already in deposit {deposit_no}."
        )
    enter(conn, deposit_no, batch_no, (div, cust, keyed.check_no), (line,))
    return EnteredReceipt(deposit_no, keyed.check_no, warnings)
