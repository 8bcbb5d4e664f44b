"""What people do in Sage meanwhile, as Sage lets them: key a cash receipt, add an invoice, change a balance.

A person's receipt is checked as Sage checks every receipt (checks.py) and entered unposted into a deposit
of their own (deposits.py): the invoice's `PaymentsToday` rises, its `Balance` waits for the Cash Receipts
Journal update (journal.py). An invoice added (as if Sage's sales journal had been updated) or given a new
balance moves its customer's `CurrentBalance` with it. Everything happens inside the caller's write
transaction. Customers, added by people or through web services, are in customers.py.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from ...sage100.model import (
    CENT,
    FAULT_EXISTS,
    FAULT_INVALID,
    FAULT_NO_KEY,
    FAULT_NOT_ON_FILE,
    InvoiceRecord,
    ReceiptLine,
    SageRuleError,
)
from .checks import check_customer, check_lines
from .deposits import ENTRY_KEY, PERSON, deposit_of, enter
from .rows import (
    CompanyOptions,
    add_to_customer_balance,
    customer_row,
    insert_invoice,
    invoice_record,
    invoice_row,
    next_stamp,
    update,
)


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


def add_invoice(
    conn: sqlite3.Connection,
    ar_division_no: str,
    customer_no: str,
    invoice_no: str,
    invoice_type: str,
    invoice_date: date,
    due_date: date | None,
    balance: Decimal,
) -> InvoiceRecord:
    """A new open invoice (as if Sage's sales journal had been updated); the customer's balance rises by it."""
    if customer_row(conn, ar_division_no, customer_no) is None:
        raise SageRuleError(FAULT_NOT_ON_FILE, f"Customer {ar_division_no}-{customer_no} is not on file.")
    if invoice_row(conn, ar_division_no, customer_no, invoice_no, invoice_type) is not None:
        raise SageRuleError(FAULT_EXISTS, f"Invoice {invoice_no} ({invoice_type}) already exists.")
    stamp = next_stamp(conn)
    insert_invoice(
        conn,
        ar_division_no,
        customer_no,
        invoice_no,
        invoice_type,
        invoice_date,
        due_date,
        Decimal(balance).quantize(CENT),
        stamp,
    )
    add_to_customer_balance(conn, ar_division_no, customer_no, Decimal(balance).quantize(CENT), stamp)
    return _written_invoice(conn, ar_division_no, customer_no, invoice_no, invoice_type)


def adjust_invoice_balance(
    conn: sqlite3.Connection,
    ar_division_no: str,
    customer_no: str,
    invoice_no: str,
    invoice_type: str,
    balance: Decimal,
) -> InvoiceRecord:
    """Set an invoice's Balance (e.g. a payment keyed in Sage by hand), restamping it like Sage would; the
    customer's balance moves by the difference."""
    row = invoice_row(conn, ar_division_no, customer_no, invoice_no, invoice_type)
    if row is None:
        raise SageRuleError(
            FAULT_NO_KEY,
            f"Invoice {invoice_no} ({invoice_type}) of customer {ar_division_no}-{customer_no} does not exist.",
        )
    delta = Decimal(balance).quantize(CENT) - Decimal(row["Balance"])
    stamp = next_stamp(conn)
    update(
        conn,
        "AR_OpenInvoice",
        {"Balance": str(Decimal(balance).quantize(CENT))},
        stamp,
        ARDivisionNo=ar_division_no,
        CustomerNo=customer_no,
        InvoiceNo=invoice_no,
        InvoiceType=invoice_type,
    )
    add_to_customer_balance(conn, ar_division_no, customer_no, delta, stamp)
    return _written_invoice(conn, ar_division_no, customer_no, invoice_no, invoice_type)


def _written_invoice(
    conn: sqlite3.Connection, div: str, cust: str, invoice_no: str, invoice_type: str
) -> InvoiceRecord:
    """An invoice this transaction has just written, as a record."""
    row = invoice_row(conn, div, cust, invoice_no, invoice_type)
    assert row is not None, f"invoice {invoice_no} written in this transaction is missing"
    return invoice_record(row)
