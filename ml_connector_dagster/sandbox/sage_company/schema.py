"""The simulated company's database: Sage's tables and columns, and a new company loaded from a scenario.

Tables and columns carry Sage's names and keys (see docs/sage100.md). `ML_*` tables are the stand-in's
own: the company and its logon (the password salted and hashed), its options, counters (Sage's "Next
Deposit Number" among them) and the last change stamp, who opened each unposted deposit, and the cash
receipts by idempotency key. A company file written by an earlier version is brought up to date when it
is opened (`upgrade`).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from ...sage100.model import CENT
from ..scenario import Scenario
from .deposits import PRODUCT
from .people import KeyedReceipt, key_receipt
from .rows import (
    OPTIONS,
    add_to_customer_balance,
    insert_invoice,
    invoice_row,
    meta,
    next_stamp,
    read_options,
    set_meta,
    update,
)

DB_FILE = "sage_company.sqlite"
SCHEMA_VERSION = "2"  # 2: balances move at the journal update; deposit owners, options, warnings
USER_KEY = "0000000001"  # UserUpdatedKey of the web-services user

SCHEMA = """
CREATE TABLE IF NOT EXISTS ML_Company (
  CompanyCode TEXT PRIMARY KEY, CompanyName TEXT NOT NULL, HomeCurrency TEXT NOT NULL, BankCode TEXT NOT NULL,
  Username TEXT NOT NULL, PasswordSalt BLOB NOT NULL, PasswordHash BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS ML_Meta (Name TEXT PRIMARY KEY, Value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS AR_Customer (
  ARDivisionNo TEXT NOT NULL, CustomerNo TEXT NOT NULL, CustomerName TEXT NOT NULL DEFAULT '',
  EmailAddress TEXT NOT NULL DEFAULT '', CurrentBalance TEXT NOT NULL DEFAULT '0.00',
  CreditLimit TEXT NOT NULL DEFAULT '0.00', CreditHold TEXT NOT NULL DEFAULT 'N',
  CustomerStatus TEXT NOT NULL DEFAULT 'A', TermsCode TEXT NOT NULL DEFAULT '00',
  DateLastPayment TEXT NOT NULL DEFAULT '', LastPaymentAmt TEXT NOT NULL DEFAULT '0.00',
  DateCreated TEXT NOT NULL, TimeCreated TEXT NOT NULL, DateUpdated TEXT NOT NULL, TimeUpdated TEXT NOT NULL,
  UserUpdatedKey TEXT NOT NULL DEFAULT '', SalespersonNo TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (ARDivisionNo, CustomerNo));
CREATE INDEX IF NOT EXISTS AR_Customer_Updated ON AR_Customer (DateUpdated, TimeUpdated, ARDivisionNo, CustomerNo);
CREATE TABLE IF NOT EXISTS AR_OpenInvoice (
  ARDivisionNo TEXT NOT NULL, CustomerNo TEXT NOT NULL, InvoiceNo TEXT NOT NULL, InvoiceType TEXT NOT NULL,
  InvoiceDate TEXT NOT NULL, InvoiceDueDate TEXT NOT NULL DEFAULT '', InvoiceDiscountDate TEXT NOT NULL DEFAULT '',
  TaxableAmt TEXT NOT NULL DEFAULT '0.00', NonTaxableAmt TEXT NOT NULL DEFAULT '0.00',
  FreightAmt TEXT NOT NULL DEFAULT '0.00', SalesTaxAmt TEXT NOT NULL DEFAULT '0.00',
  DiscountAmt TEXT NOT NULL DEFAULT '0.00', PaymentsToday TEXT NOT NULL DEFAULT '0.00',
  Balance TEXT NOT NULL, CheckNo TEXT NOT NULL DEFAULT '', CustomerPONo TEXT NOT NULL DEFAULT '',
  Comment TEXT NOT NULL DEFAULT '', DateUpdated TEXT NOT NULL, TimeUpdated TEXT NOT NULL,
  PRIMARY KEY (ARDivisionNo, CustomerNo, InvoiceNo, InvoiceType));
CREATE INDEX IF NOT EXISTS AR_OpenInvoice_Updated
  ON AR_OpenInvoice (DateUpdated, TimeUpdated, ARDivisionNo, CustomerNo, InvoiceNo, InvoiceType);
CREATE TABLE IF NOT EXISTS AR_CashReceiptsDeposit (
  DepositNo TEXT PRIMARY KEY, BankCode TEXT NOT NULL, DepositDate TEXT NOT NULL, DepositDesc TEXT NOT NULL,
  CashDepositAmt TEXT NOT NULL, DateUpdated TEXT NOT NULL, TimeUpdated TEXT NOT NULL,
  BatchNo TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS AR_CashReceiptsHeader (
  DepositNo TEXT NOT NULL, ARDivisionNo TEXT NOT NULL, CustomerNo TEXT NOT NULL, CheckNo TEXT NOT NULL,
  DepositType TEXT NOT NULL, PostingAmt TEXT NOT NULL, Comment TEXT NOT NULL DEFAULT '',
  UDF_GC_PAYMENT_ID TEXT NOT NULL DEFAULT '', DateUpdated TEXT NOT NULL, TimeUpdated TEXT NOT NULL,
  BatchNo TEXT NOT NULL DEFAULT '',
  PRIMARY KEY (DepositNo, ARDivisionNo, CustomerNo, CheckNo));
CREATE TABLE IF NOT EXISTS AR_CashReceiptsDetail (
  DepositNo TEXT NOT NULL, ARDivisionNo TEXT NOT NULL, CustomerNo TEXT NOT NULL, CheckNo TEXT NOT NULL,
  SequenceNo TEXT NOT NULL, InvoiceNo TEXT NOT NULL, InvoiceType TEXT NOT NULL, AmountPosted TEXT NOT NULL,
  DateUpdated TEXT NOT NULL, TimeUpdated TEXT NOT NULL,
  PRIMARY KEY (DepositNo, ARDivisionNo, CustomerNo, CheckNo, SequenceNo));
CREATE TABLE IF NOT EXISTS AR_CashReceiptsHistory (
  BankCode TEXT NOT NULL, DepositDate TEXT NOT NULL, DepositNo TEXT NOT NULL, DepositType TEXT NOT NULL,
  ARDivisionNo TEXT NOT NULL, CustomerNo TEXT NOT NULL, CreditCardEntryNo TEXT NOT NULL, CheckNo TEXT NOT NULL,
  SequenceNo TEXT NOT NULL, InvoiceNo TEXT NOT NULL, InvoiceType TEXT NOT NULL, CashAmountApplied TEXT NOT NULL,
  DateUpdated TEXT NOT NULL, TimeUpdated TEXT NOT NULL,
  PRIMARY KEY (BankCode, DepositDate, DepositNo, DepositType, ARDivisionNo, CustomerNo, CreditCardEntryNo,
               CheckNo, SequenceNo));
CREATE TABLE IF NOT EXISTS ML_Idempotency (
  IdempotencyKey TEXT PRIMARY KEY, ReceiptId TEXT NOT NULL, BankCode TEXT NOT NULL, DepositNo TEXT NOT NULL,
  CheckNo TEXT NOT NULL, DepositDate TEXT NOT NULL, ARDivisionNo TEXT NOT NULL, CustomerNo TEXT NOT NULL,
  Amount TEXT NOT NULL, Reference TEXT NOT NULL, Lines TEXT NOT NULL, Status TEXT NOT NULL,
  ReversalReason TEXT NOT NULL DEFAULT '', CreatedAt TEXT NOT NULL,
  Warnings TEXT NOT NULL DEFAULT '[]', ReversalDepositNo TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS ML_DepositOwner (
  DepositNo TEXT PRIMARY KEY, Owner TEXT NOT NULL, AmountEntered TEXT NOT NULL DEFAULT 'N');
"""
# Columns added since the first version: (table, column, declaration), added to an older file when it is opened.
ADDED_COLUMNS = (
    ("AR_Customer", "SalespersonNo", "TEXT NOT NULL DEFAULT ''"),
    ("AR_CashReceiptsDeposit", "BatchNo", "TEXT NOT NULL DEFAULT ''"),
    ("AR_CashReceiptsHeader", "BatchNo", "TEXT NOT NULL DEFAULT ''"),
    ("ML_Idempotency", "Warnings", "TEXT NOT NULL DEFAULT '[]'"),
    ("ML_Idempotency", "ReversalDepositNo", "TEXT NOT NULL DEFAULT ''"),
)


# The tables `SageCompany.rows` will show (tests and the sandbox's inspection).
TABLES = frozenset(
    {
        "AR_Customer",
        "AR_OpenInvoice",
        "AR_CashReceiptsDeposit",
        "AR_CashReceiptsHeader",
        "AR_CashReceiptsDetail",
        "AR_CashReceiptsHistory",
        "ML_Idempotency",
        "ML_DepositOwner",
    }
)


@dataclass(frozen=True)
class CompanyInfo:
    code: str
    name: str
    home_currency: str
    bank_code: str


def hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, 20_000)


def create_database(path: Path, scenario: Scenario) -> None:
    """A new company database at `path` (which must not exist yet), loaded from a scenario in one commit."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path)
    conn.row_factory = sqlite3.Row
    try:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(SCHEMA)
        _load_scenario(conn, scenario)
        conn.commit()
    finally:
        conn.close()


def is_current(conn: sqlite3.Connection) -> bool:
    """Whether the file has this version's tables and columns (a column can be missing from a file of this
    version made before the column was added)."""
    if meta(conn, "schema_version", "1") != SCHEMA_VERSION:
        return False
    return all(column in _columns(conn, table) for table, column, _ in ADDED_COLUMNS)


def _columns(conn: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}


def upgrade(conn: sqlite3.Connection) -> None:
    """Bring a company file of an earlier version up to date, inside the caller's write transaction.

    Version 1 lowered Balance (and the customer's CurrentBalance) when a receipt was entered: receipts
    still unposted get it back, so that the journal update lowers it once, as Sage does.
    """
    for statement in SCHEMA.split(";"):
        if statement.strip():
            conn.execute(statement)
    for table, column, declaration in ADDED_COLUMNS:
        if column not in _columns(conn, table):
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
    if meta(conn, "schema_version", "1") == SCHEMA_VERSION:
        return  # only columns were missing
    # Before deposits had owners, every deposit was the product's.
    conn.execute(
        "INSERT INTO ML_DepositOwner (DepositNo, Owner) SELECT DepositNo, ? FROM AR_CashReceiptsDeposit "
        "WHERE DepositNo NOT IN (SELECT DepositNo FROM ML_DepositOwner)",
        (PRODUCT,),
    )
    for d in conn.execute("SELECT * FROM AR_CashReceiptsDetail").fetchall():
        row = invoice_row(conn, d["ARDivisionNo"], d["CustomerNo"], d["InvoiceNo"], d["InvoiceType"])
        if row is None:
            continue
        stamp = next_stamp(conn)
        update(
            conn,
            "AR_OpenInvoice",
            {"Balance": str(Decimal(row["Balance"]) + Decimal(d["AmountPosted"]))},
            stamp,
            ARDivisionNo=d["ARDivisionNo"],
            CustomerNo=d["CustomerNo"],
            InvoiceNo=d["InvoiceNo"],
            InvoiceType=d["InvoiceType"],
        )
        add_to_customer_balance(conn, d["ARDivisionNo"], d["CustomerNo"], Decimal(d["AmountPosted"]), stamp)
    set_meta(conn, "schema_version", SCHEMA_VERSION)


def _load_scenario(conn: sqlite3.Connection, scenario: Scenario) -> None:
    """The company and its logon, its customers (balances = their invoices'), then their open invoices."""
    c = scenario.company
    salt = os.urandom(16)
    conn.execute(
        "INSERT INTO ML_Company VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            c.company_code,
            c.company_name,
            c.home_currency,
            c.bank_code,
            c.username,
            salt,
            hash_password(c.password, salt),
        ),
    )
    set_meta(conn, "schema_version", SCHEMA_VERSION)
    for name in OPTIONS:
        set_meta(conn, name, "Y" if c.option(name) else "N")
    balances: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for inv in scenario.sage_invoices:
        balances[(inv.ARDivisionNo, inv.CustomerNo)] += inv.Balance
    for cust in scenario.sage_customers:
        stamp = next_stamp(conn)
        conn.execute(
            "INSERT INTO AR_Customer (ARDivisionNo, CustomerNo, CustomerName, EmailAddress, CurrentBalance, "
            "CustomerStatus, DateCreated, TimeCreated, DateUpdated, TimeUpdated, UserUpdatedKey) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                cust.ARDivisionNo,
                cust.CustomerNo,
                cust.CustomerName,
                cust.EmailAddress,
                str(balances[(cust.ARDivisionNo, cust.CustomerNo)].quantize(CENT)),
                cust.CustomerStatus,
                *stamp,
                *stamp,
                USER_KEY,
            ),
        )
    for inv in scenario.sage_invoices:
        insert_invoice(
            conn,
            inv.ARDivisionNo,
            inv.CustomerNo,
            inv.InvoiceNo,
            inv.InvoiceType,
            inv.InvoiceDate,
            inv.InvoiceDueDate,
            inv.Balance,
            next_stamp(conn),
        )
    # Receipts people keyed before the play starts: real unposted entries, so that the journal update posts them.
    for number, inv in enumerate((i for i in scenario.sage_invoices if i.PaymentsToday > 0), start=1):
        keyed = KeyedReceipt(
            inv.ARDivisionNo,
            inv.CustomerNo,
            inv.InvoiceNo,
            inv.InvoiceType,
            inv.PaymentsToday,
            f"OPEN{number:06d}",
            c.today,
        )
        key_receipt(conn, keyed, c.bank_code, read_options(conn))
