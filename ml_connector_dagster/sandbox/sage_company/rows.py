"""Single rows of the simulated company: Sage dates, change stamps, counters, updates and records.

Shared by the company (company.py), its writes (customers.py, people.py, receipts.py, checks.py,
deposits.py, journal.py) and its creation (schema.py). Every helper works on a connection the caller
holds, inside the caller's transaction, so a stamp or a counter taken here is taken once even when two
processes share the file.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import TypedDict

from ...sage100.model import CENT, CustomerRecord, InvoiceRecord, Stamp

CUSTOMER_COLUMNS = (
    "ARDivisionNo",
    "CustomerNo",
    "CustomerName",
    "EmailAddress",
    "CurrentBalance",
    "CustomerStatus",
    "DateUpdated",
    "TimeUpdated",
)
INVOICE_COLUMNS = (
    "ARDivisionNo",
    "CustomerNo",
    "InvoiceNo",
    "InvoiceType",
    "InvoiceDate",
    "InvoiceDueDate",
    "Balance",
    "PaymentsToday",
    "DateUpdated",
    "TimeUpdated",
)


class CustomerRow(TypedDict):
    """Every AR_Customer column, in the table's order: all TEXT, amounts and dates in Sage's forms."""

    ARDivisionNo: str
    CustomerNo: str
    CustomerName: str
    EmailAddress: str
    CurrentBalance: str  # "1650.00"
    CreditLimit: str
    CreditHold: str  # Y or N
    CustomerStatus: str  # A active, I inactive
    TermsCode: str
    DateLastPayment: str  # YYYYMMDD, or "" before the first
    LastPaymentAmt: str
    DateCreated: str
    TimeCreated: str
    DateUpdated: str
    TimeUpdated: str
    UserUpdatedKey: str
    SalespersonNo: str  # "" when none was given (customers loaded from a scenario)


def sage_date(value: date | None) -> str:
    return value.strftime("%Y%m%d") if value else ""


def from_sage_date(value: str) -> date | None:
    return datetime.strptime(value, "%Y%m%d").date() if value else None


# --- ML_Meta: counters, options and the last stamp ----------------------------------------------------------

OPTIONS = ("require_deposit_amount", "batch_entry")  # company options, kept in ML_Meta as Y or N


@dataclass(frozen=True)
class CompanyOptions:
    """The company options that change cash receipt entry (company.json `settings`)."""

    require_deposit_amount: bool = False  # Sage's "Require Deposit Amount": CashDepositAmt is entered
    batch_entry: bool = False  # batch entry: deposits and receipt headers carry a BatchNo


def meta(conn: sqlite3.Connection, name: str, default: str) -> str:
    row = conn.execute("SELECT Value FROM ML_Meta WHERE Name = ?", (name,)).fetchone()
    return str(row[0]) if row else default


def set_meta(conn: sqlite3.Connection, name: str, value: str) -> None:
    conn.execute(
        "INSERT INTO ML_Meta VALUES (?, ?) ON CONFLICT (Name) DO UPDATE SET Value = excluded.Value", (name, value)
    )


def read_options(conn: sqlite3.Connection) -> CompanyOptions:
    return CompanyOptions(*(meta(conn, name, "N") == "Y" for name in OPTIONS))


def take_counter(conn: sqlite3.Connection, name: str) -> int:
    number = int(meta(conn, name, "1"))
    set_meta(conn, name, str(number + 1))
    return number


def next_stamp(conn: sqlite3.Connection) -> Stamp:
    """Now, or just after the last stamp handed out if the clock has not moved on (or went back)."""
    now = Stamp.of(datetime.now())
    last = meta(conn, "last_stamp", "")
    if last:
        previous = Stamp(*last.split(" "))
        if now <= previous:
            now = previous.next()
    set_meta(conn, "last_stamp", " ".join(now))
    return now


# --- AR_Customer and AR_OpenInvoice rows --------------------------------------------------------------------


def update(conn: sqlite3.Connection, table: str, values: Mapping[str, str], stamp: Stamp, **key: str) -> None:
    """Set some columns of the row with this key, restamping DateUpdated/TimeUpdated."""
    assignments = {**values, "DateUpdated": stamp.DateUpdated, "TimeUpdated": stamp.TimeUpdated}
    conn.execute(
        f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in assignments)} "
        f"WHERE {' AND '.join(f'{c} = ?' for c in key)}",
        [*assignments.values(), *key.values()],
    )


def customer_row(conn: sqlite3.Connection, div: str, cust: str) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM AR_Customer WHERE ARDivisionNo = ? AND CustomerNo = ?", (div, cust)
    ).fetchone()
    return row


def customer_columns(row: sqlite3.Row) -> CustomerRow:
    """A whole AR_Customer row (`SELECT *`) by column name."""
    return {
        "ARDivisionNo": row["ARDivisionNo"],
        "CustomerNo": row["CustomerNo"],
        "CustomerName": row["CustomerName"],
        "EmailAddress": row["EmailAddress"],
        "CurrentBalance": row["CurrentBalance"],
        "CreditLimit": row["CreditLimit"],
        "CreditHold": row["CreditHold"],
        "CustomerStatus": row["CustomerStatus"],
        "TermsCode": row["TermsCode"],
        "DateLastPayment": row["DateLastPayment"],
        "LastPaymentAmt": row["LastPaymentAmt"],
        "DateCreated": row["DateCreated"],
        "TimeCreated": row["TimeCreated"],
        "DateUpdated": row["DateUpdated"],
        "TimeUpdated": row["TimeUpdated"],
        "UserUpdatedKey": row["UserUpdatedKey"],
        "SalespersonNo": row["SalespersonNo"],
    }


def invoice_row(
    conn: sqlite3.Connection, div: str, cust: str, invoice_no: str, invoice_type: str
) -> sqlite3.Row | None:
    row: sqlite3.Row | None = conn.execute(
        "SELECT * FROM AR_OpenInvoice WHERE ARDivisionNo = ? AND CustomerNo = ? AND InvoiceNo = ? AND InvoiceType = ?",
        (div, cust, invoice_no, invoice_type),
    ).fetchone()
    return row


def insert_invoice(
    conn: sqlite3.Connection,
    div: str,
    cust: str,
    invoice_no: str,
    invoice_type: str,
    invoice_date: date,
    due_date: date | None,
    balance: Decimal,
    stamp: Stamp,
) -> None:
    # Sage keeps no original amount; NonTaxableAmt stands in for it so the row looks like a posted invoice.
    conn.execute(
        "INSERT INTO AR_OpenInvoice (ARDivisionNo, CustomerNo, InvoiceNo, InvoiceType, InvoiceDate, InvoiceDueDate, "
        "NonTaxableAmt, Balance, DateUpdated, TimeUpdated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            div,
            cust,
            invoice_no,
            invoice_type,
            sage_date(invoice_date),
            sage_date(due_date),
            str(balance),
            str(balance),
            *stamp,
        ),
    )


def add_to_customer_balance(
    conn: sqlite3.Connection,
    div: str,
    cust: str,
    delta: Decimal,
    stamp: Stamp,
    payment: Decimal | None = None,
    payment_date: date | None = None,
) -> None:
    row = customer_row(conn, div, cust)
    assert row is not None, f"customer {div}-{cust} vanished inside a transaction"
    values = {"CurrentBalance": str((Decimal(row["CurrentBalance"]) + delta).quantize(CENT))}
    if payment is not None:
        values.update(DateLastPayment=sage_date(payment_date), LastPaymentAmt=str(payment))
    update(conn, "AR_Customer", values, stamp, ARDivisionNo=div, CustomerNo=cust)


def customer_record(row: sqlite3.Row) -> CustomerRecord:
    return CustomerRecord(
        row["ARDivisionNo"],
        row["CustomerNo"],
        row["CustomerName"],
        row["EmailAddress"],
        Decimal(row["CurrentBalance"]),
        row["CustomerStatus"],
        row["DateUpdated"],
        row["TimeUpdated"],
    )


def invoice_record(row: sqlite3.Row) -> InvoiceRecord:
    return InvoiceRecord(
        row["ARDivisionNo"],
        row["CustomerNo"],
        row["InvoiceNo"],
        row["InvoiceType"],
        from_sage_date(row["InvoiceDate"]),
        from_sage_date(row["InvoiceDueDate"]),
        Decimal(row["Balance"]),
        Decimal(row["PaymentsToday"]),
        row["DateUpdated"],
        row["TimeUpdated"],
    )
