"""Sage's checks of a cash receipt, in Sage's order: the bank, the customer, each line, the distribution.

The same checks refuse the product's receipts (receipts.py) and a person's (people.py), before anything
is written. What is still open on an invoice is `Balance - PaymentsToday`, which counts every unposted
receipt, people's and the product's; a line beyond it is refused with Sage's "The invoice balance was
exceeded". An inactive customer is a warning, returned, not a refusal.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from decimal import Decimal

from ...sage100.model import (
    FAULT_INVALID,
    FAULT_NOT_ON_FILE,
    FAULT_OUT_OF_BALANCE,
    FAULT_OVER_APPLIED,
    OUT_OF_BALANCE_TEXT,
    OVER_APPLIED_TEXT,
    CashReceiptRequest,
    ReceiptLine,
    SageRuleError,
)
from .rows import customer_row, invoice_row


def check_request(conn: sqlite3.Connection, request: CashReceiptRequest, bank_code: str) -> tuple[str, ...]:
    """The bank, the customer, each line as it is added, then the distribution; returns Sage's warnings."""
    if request.bank_code != bank_code:
        raise SageRuleError(FAULT_NOT_ON_FILE, f"Bank code {request.bank_code} is not on file.")
    warnings = check_customer(conn, request.ar_division_no, request.customer_no)
    check_lines(conn, request.ar_division_no, request.customer_no, request.lines)
    if sum((line.amount for line in request.lines), Decimal(0)) != request.amount:
        raise SageRuleError(FAULT_OUT_OF_BALANCE, OUT_OF_BALANCE_TEXT)
    return warnings


def check_customer(conn: sqlite3.Connection, div: str, cust: str) -> tuple[str, ...]:
    """The customer must be on file; an inactive one is a warning (Sage lets the user go on), not a refusal."""
    customer = customer_row(conn, div, cust)
    if customer is None:
        raise SageRuleError(FAULT_NOT_ON_FILE, f"Customer {div}-{cust} is not on file.")
    return (f"Customer {div}-{cust} is inactive.",) if customer["CustomerStatus"] == "I" else ()


def check_lines(conn: sqlite3.Connection, div: str, cust: str, lines: tuple[ReceiptLine, ...]) -> None:
    """Each line names an invoice of the customer (never a silent prepayment), posts more than zero, and (with
    the lines before it) stays within what is still open: Balance less PaymentsToday, which counts every
    unposted receipt, people's and the product's."""
    applied: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for line in lines:
        row = invoice_row(conn, div, cust, line.invoice_no, line.invoice_type)
        if row is None:
            raise SageRuleError(
                FAULT_NOT_ON_FILE,
                f"Invoice {line.invoice_no} ({line.invoice_type}) is not on file for customer {div}-{cust}.",
            )
        if line.amount <= 0:
            raise SageRuleError(
                FAULT_INVALID, f"The amount posted to invoice {line.invoice_no} must be greater than zero."
            )
        invoice = (line.invoice_no, line.invoice_type)
        applied[invoice] += line.amount
        balance, unposted = Decimal(row["Balance"]), Decimal(row["PaymentsToday"])
        if applied[invoice] > balance - unposted:
            raise SageRuleError(
                FAULT_OVER_APPLIED,
                f"{OVER_APPLIED_TEXT} Invoice {line.invoice_no} ({line.invoice_type}) of customer {div}-{cust}: "
                f"Balance {balance}, PaymentsToday {unposted} (unposted receipts), {balance - unposted} open; "
                f"this receipt applies {applied[invoice]}.",
            )
