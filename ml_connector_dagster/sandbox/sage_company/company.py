"""A simulated Sage 100 company in SQLite: AR customers, open invoices and cash receipt entry, with Sage's rules.

Tables and columns carry Sage's names and keys (see docs/sage100.md), so what the agent reads
and writes here looks like what it reads and writes through BOI on a real server. It enforces the rules
the product depends on - lines add up to PostingAmt, no invoice paid beyond its balance, unknown
customers and invoices refused - and answers with Sage-style fault codes and messages.

Every change stamps DateUpdated/TimeUpdated from a clock that never goes backwards and never repeats
(the last stamp is kept in the database, inside the write transaction, so two processes sharing the file
still get strictly increasing stamps). An idempotency table keyed by the GoCardless payment id makes a
repeated cash receipt return the first one and write nothing, across restarts.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Iterator, Mapping

from ...sage100.model import (
    CENT,
    LOGON_FAILURE_TEXT,
    FAULT_COMPANY,
    FAULT_EXISTS,
    FAULT_INVALID,
    FAULT_LOGON,
    FAULT_NO_KEY,
    FAULT_NOT_ON_FILE,
    FAULT_OUT_OF_BALANCE,
    FAULT_OVER_APPLIED,
    OUT_OF_BALANCE_TEXT,
    CashReceipt,
    CashReceiptRequest,
    Credentials,
    CustomerRecord,
    InvoiceRecord,
    SageRuleError,
    Stamp,
    lines_from_json,
    lines_to_json,
    receipt_id,
    repeat_of,
)
from ..scenario import Scenario

DB_FILE = "sage_company.sqlite"
DEPOSIT_TYPE = "C"  # cash/check deposit; GoCardless is not Sage's own ACH processing
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
  UserUpdatedKey TEXT NOT NULL DEFAULT '',
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
  CashDepositAmt TEXT NOT NULL, DateUpdated TEXT NOT NULL, TimeUpdated TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS AR_CashReceiptsHeader (
  DepositNo TEXT NOT NULL, ARDivisionNo TEXT NOT NULL, CustomerNo TEXT NOT NULL, CheckNo TEXT NOT NULL,
  DepositType TEXT NOT NULL, PostingAmt TEXT NOT NULL, Comment TEXT NOT NULL DEFAULT '',
  UDF_GC_PAYMENT_ID TEXT NOT NULL DEFAULT '', DateUpdated TEXT NOT NULL, TimeUpdated TEXT NOT NULL,
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
  ReversalReason TEXT NOT NULL DEFAULT '', CreatedAt TEXT NOT NULL);
"""

CUSTOMER_FIELDS = ("CustomerName", "EmailAddress", "CreditLimit", "CreditHold", "CustomerStatus", "TermsCode")
CUSTOMER_COLUMNS = ("ARDivisionNo", "CustomerNo", "CustomerName", "EmailAddress", "CurrentBalance", "CustomerStatus",
                    "DateUpdated", "TimeUpdated")
INVOICE_COLUMNS = ("ARDivisionNo", "CustomerNo", "InvoiceNo", "InvoiceType", "InvoiceDate", "InvoiceDueDate",
                   "Balance", "DateUpdated", "TimeUpdated")


@dataclass(frozen=True)
class CompanyInfo:
    code: str
    name: str
    home_currency: str
    bank_code: str


def _hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, 20_000)


def _sage_date(value: date | None) -> str:
    return value.strftime("%Y%m%d") if value else ""


def _from_sage_date(value: str) -> date | None:
    return datetime.strptime(value, "%Y%m%d").date() if value else None


class SageCompany:
    """One company database; cheap to construct, safe to share between threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no Sage company database at {self.path}; create one from a scenario first")
        self.info = self._load_info()

    def __repr__(self) -> str:
        return f"SageCompany({str(self.path)!r}, company={self.info.code!r})"

    # --- creation ---------------------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, scenario: Scenario) -> "SageCompany":
        """A new company database loaded from a scenario; refuses to overwrite an existing one."""
        path = Path(path)
        if path.exists():
            raise FileExistsError(f"{path} already exists; open it, or delete it to load the scenario again")
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.executescript(SCHEMA)
            _load_scenario(conn, scenario)
            conn.commit()
        finally:
            conn.close()
        return cls(path)

    @classmethod
    def open_or_create(cls, path: str | Path, scenario: Scenario) -> "SageCompany":
        """The company at `path`, loading `scenario` into it only if it does not exist yet (keeps state)."""
        return cls(path) if Path(path).exists() else cls.create(path, scenario)

    def _load_info(self) -> CompanyInfo:
        with self._read() as conn:
            row = conn.execute("SELECT CompanyCode, CompanyName, HomeCurrency, BankCode FROM ML_Company").fetchone()
        if row is None:
            raise ValueError(f"{self.path} is not a Sage company database (no ML_Company row)")
        return CompanyInfo(*row)

    # --- connections --------------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        return conn

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        try:
            yield conn
        finally:
            conn.close()

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; BEGIN IMMEDIATE serialises writers across threads and processes."""
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    # --- logon ----------------------------------------------------------------------------------------------

    def authorise(self, credentials: Credentials) -> None:
        """Refuse a bad logon (Sage's own words) or another company's code, as Sage's services do."""
        if not self.check_logon(credentials.username, credentials.password):
            raise SageRuleError(FAULT_LOGON, LOGON_FAILURE_TEXT)
        if (credentials.company_code or "").upper() != self.info.code:
            raise SageRuleError(FAULT_COMPANY, f"Invalid company code {credentials.company_code}: the company does "
                                               "not exist or is not enabled for web services.")

    def check_logon(self, username: str, password: str) -> bool:
        with self._read() as conn:
            user, salt, digest = conn.execute("SELECT Username, PasswordSalt, PasswordHash FROM ML_Company").fetchone()
        same_user = hmac.compare_digest(user.encode("utf-8"), (username or "").encode("utf-8"))
        same_password = hmac.compare_digest(digest, _hash_password(password or "", salt))
        return same_user and same_password

    # --- reads ------------------------------------------------------------------------------------------------

    def get_customer(self, ar_division_no: str, customer_no: str) -> dict[str, object]:
        """Every AR_Customer column of one customer; CI_NoKey if there is none."""
        with self._read() as conn:
            row = _customer_row(conn, ar_division_no, customer_no)
        if row is None:
            raise SageRuleError(FAULT_NO_KEY, f"Customer {ar_division_no}-{customer_no} does not exist.")
        return dict(row)

    def list_customers(self, since: Stamp | None, after: tuple[str, ...] | None, limit: int) -> list[CustomerRecord]:
        """Customers changed after `since`, in (DateUpdated, TimeUpdated, key) order, after position `after`."""
        rows = self._page("AR_Customer", CUSTOMER_COLUMNS, ("ARDivisionNo", "CustomerNo"), since, after, limit)
        return [_customer_record(r) for r in rows]

    def list_open_invoices(self, since: Stamp | None, after: tuple[str, ...] | None, limit: int) -> list[InvoiceRecord]:
        key = ("ARDivisionNo", "CustomerNo", "InvoiceNo", "InvoiceType")
        rows = self._page("AR_OpenInvoice", INVOICE_COLUMNS, key, since, after, limit)
        return [_invoice_record(r) for r in rows]

    def _page(self, table: str, columns: tuple[str, ...], key: tuple[str, ...], since: Stamp | None,
              after: tuple[str, ...] | None, limit: int) -> list[sqlite3.Row]:
        order = ("DateUpdated", "TimeUpdated", *key)
        where, params = ["1=1"], []
        if since is not None:
            where.append("(DateUpdated, TimeUpdated) > (?, ?)")
            params += list(since)
        if after is not None:
            if len(after) != len(order):
                raise SageRuleError(FAULT_INVALID, "The page token does not belong to this list.")
            where.append(f"({', '.join(order)}) > ({', '.join('?' * len(order))})")
            params += list(after)
        sql = (f"SELECT {', '.join(columns)} FROM {table} WHERE {' AND '.join(where)} "
               f"ORDER BY {', '.join(order)} LIMIT ?")
        with self._read() as conn:
            return conn.execute(sql, [*params, limit]).fetchall()

    def open_invoices_for(self, ar_division_no: str, customer_no: str) -> list[InvoiceRecord]:
        """All AR_OpenInvoice rows of a customer (zero balances included, as Sage keeps them until purged)."""
        with self._read() as conn:
            if _customer_row(conn, ar_division_no, customer_no) is None:
                raise SageRuleError(FAULT_NO_KEY, f"Customer {ar_division_no}-{customer_no} does not exist.")
            rows = conn.execute(
                f"SELECT {', '.join(INVOICE_COLUMNS)} FROM AR_OpenInvoice WHERE ARDivisionNo = ? AND CustomerNo = ? "
                "ORDER BY InvoiceDueDate, InvoiceDate, InvoiceNo, InvoiceType", (ar_division_no, customer_no)).fetchall()
        return [_invoice_record(r) for r in rows]

    def rows(self, table: str) -> list[dict[str, object]]:
        """Every row of a table, for tests and the sandbox's inspection."""
        if table not in _TABLES:
            raise ValueError(f"unknown table {table!r}; one of {', '.join(sorted(_TABLES))}")
        with self._read() as conn:
            return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY rowid")]

    # --- customers (eBusiness Web Services) -------------------------------------------------------------------

    def next_customer_no(self, ar_division_no: str) -> str:
        """The next free 7-digit customer number of a division (not reserved, as in Sage)."""
        with self._read() as conn:
            number = int(_meta(conn, f"next_customer_no_{ar_division_no}", "1"))
            while _customer_row(conn, ar_division_no, f"{number:07d}") is not None:
                number += 1
        return f"{number:07d}"

    def create_customer(self, ar_division_no: str, customer_no: str, fields: Mapping[str, object]) -> None:
        _check_customer_fields(fields)
        with self._write() as conn:
            if _customer_row(conn, ar_division_no, customer_no) is not None:
                raise SageRuleError(FAULT_EXISTS, f"Customer {ar_division_no}-{customer_no} already exists.")
            stamp = _next_stamp(conn)
            values = {"CustomerName": "", "EmailAddress": "", **{k: str(v) for k, v in fields.items()}}
            columns = ["ARDivisionNo", "CustomerNo", *values, "DateCreated", "TimeCreated", "DateUpdated",
                       "TimeUpdated", "UserUpdatedKey"]
            conn.execute(f"INSERT INTO AR_Customer ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
                         [ar_division_no, customer_no, *values.values(), *stamp, *stamp, USER_KEY])
            if customer_no.isdigit():
                current = int(_meta(conn, f"next_customer_no_{ar_division_no}", "1"))
                _set_meta(conn, f"next_customer_no_{ar_division_no}", str(max(current, int(customer_no) + 1)))

    def update_customer(self, ar_division_no: str, customer_no: str, fields: Mapping[str, object]) -> None:
        _check_customer_fields(fields)
        with self._write() as conn:
            if _customer_row(conn, ar_division_no, customer_no) is None:
                raise SageRuleError(FAULT_NO_KEY, f"Customer {ar_division_no}-{customer_no} does not exist.")
            if fields:
                _update(conn, "AR_Customer", {k: str(v) for k, v in fields.items()}, _next_stamp(conn),
                        ARDivisionNo=ar_division_no, CustomerNo=customer_no)

    # --- invoices (scenario and test helpers) ----------------------------------------------------------------

    def adjust_invoice_balance(self, ar_division_no: str, customer_no: str, invoice_no: str, invoice_type: str,
                               balance: Decimal) -> InvoiceRecord:
        """Set an invoice's Balance (e.g. a payment keyed in Sage by hand), restamping it like Sage would."""
        if isinstance(balance, float):
            raise TypeError("balance must be a Decimal, not a float")
        with self._write() as conn:
            row = _invoice_row(conn, ar_division_no, customer_no, invoice_no, invoice_type)
            if row is None:
                raise SageRuleError(FAULT_NO_KEY, f"Invoice {invoice_no} ({invoice_type}) of customer "
                                                  f"{ar_division_no}-{customer_no} does not exist.")
            delta = Decimal(balance).quantize(CENT) - Decimal(row["Balance"])
            stamp = _next_stamp(conn)
            _update(conn, "AR_OpenInvoice", {"Balance": str(Decimal(balance).quantize(CENT))}, stamp,
                    ARDivisionNo=ar_division_no, CustomerNo=customer_no, InvoiceNo=invoice_no, InvoiceType=invoice_type)
            _add_to_customer_balance(conn, ar_division_no, customer_no, delta, stamp)
            return _invoice_record(_invoice_row(conn, ar_division_no, customer_no, invoice_no, invoice_type))

    def add_invoice(self, ar_division_no: str, customer_no: str, invoice_no: str, invoice_type: str,
                    invoice_date: date, due_date: date | None, balance: Decimal) -> InvoiceRecord:
        """A new open invoice (as if Sage's sales journal had been updated)."""
        with self._write() as conn:
            if _customer_row(conn, ar_division_no, customer_no) is None:
                raise SageRuleError(FAULT_NOT_ON_FILE, f"Customer {ar_division_no}-{customer_no} is not on file.")
            if _invoice_row(conn, ar_division_no, customer_no, invoice_no, invoice_type) is not None:
                raise SageRuleError(FAULT_EXISTS, f"Invoice {invoice_no} ({invoice_type}) already exists.")
            stamp = _next_stamp(conn)
            _insert_invoice(conn, ar_division_no, customer_no, invoice_no, invoice_type, invoice_date, due_date,
                            Decimal(balance).quantize(CENT), stamp)
            _add_to_customer_balance(conn, ar_division_no, customer_no, Decimal(balance).quantize(CENT), stamp)
            return _invoice_record(_invoice_row(conn, ar_division_no, customer_no, invoice_no, invoice_type))

    # --- cash receipts ------------------------------------------------------------------------------------------

    def find_cash_receipt(self, idempotency_key: str) -> CashReceipt | None:
        with self._read() as conn:
            return _receipt_by_key(conn, idempotency_key)

    def create_cash_receipt(self, request: CashReceiptRequest) -> CashReceipt:
        """Write a cash receipt entry, or return the one already written for this idempotency key (if the
        request asks for that receipt: see `repeat_of`).

        All checks run before anything is written, in one transaction: either the whole receipt (deposit,
        header, lines, invoice and customer balances, idempotency row) is written, or nothing is.
        """
        with self._write() as conn:
            existing = _receipt_by_key(conn, request.idempotency_key)
            if existing is not None:
                return repeat_of(existing, request)
            self._check_receipt(conn, request)
            stamp = _next_stamp(conn)
            deposit_no = _deposit_for(conn, request, stamp)
            check_no = f"GC{_take_counter(conn, 'next_check_no'):08d}"
            receipt = CashReceipt(
                request.idempotency_key,
                receipt_id(request.bank_code, deposit_no, request.ar_division_no, request.customer_no, check_no),
                deposit_no, check_no, request.bank_code, request.deposit_date, request.ar_division_no,
                request.customer_no, request.amount, request.reference, "entered", request.lines, created=True)
            _write_entry(conn, receipt, stamp)
            _apply_to_invoices(conn, receipt, stamp)
            _remember(conn, receipt)
            return receipt

    def _check_receipt(self, conn: sqlite3.Connection, request: CashReceiptRequest) -> None:
        """Sage's order: the bank, the customer, each line as it is added, then the distribution."""
        div, cust = request.ar_division_no, request.customer_no
        if request.bank_code != self.info.bank_code:
            raise SageRuleError(FAULT_NOT_ON_FILE, f"Bank code {request.bank_code} is not on file.")
        customer = _customer_row(conn, div, cust)
        if customer is None:
            raise SageRuleError(FAULT_NOT_ON_FILE, f"Customer {div}-{cust} is not on file.")
        if customer["CustomerStatus"] == "I":
            raise SageRuleError(FAULT_INVALID, f"Customer {div}-{cust} is inactive.")
        applied: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        for line in request.lines:
            row = _invoice_row(conn, div, cust, line.invoice_no, line.invoice_type)
            if row is None:
                raise SageRuleError(FAULT_NOT_ON_FILE, f"Invoice {line.invoice_no} ({line.invoice_type}) is not on "
                                                       f"file for customer {div}-{cust}.")
            if line.amount <= 0:
                raise SageRuleError(FAULT_INVALID, f"The amount posted to invoice {line.invoice_no} must be greater "
                                                   "than zero.")
            applied[(line.invoice_no, line.invoice_type)] += line.amount
            balance = Decimal(row["Balance"])
            if applied[(line.invoice_no, line.invoice_type)] > balance:
                raise SageRuleError(FAULT_OVER_APPLIED, f"The amount posted to invoice {line.invoice_no} "
                                                        f"({applied[(line.invoice_no, line.invoice_type)]}) exceeds "
                                                        f"its balance of {balance}.")
        if sum((line.amount for line in request.lines), Decimal(0)) != request.amount:
            raise SageRuleError(FAULT_OUT_OF_BALANCE, OUT_OF_BALANCE_TEXT)

    def reverse_cash_receipt(self, idempotency_key: str, reason: str) -> CashReceipt:
        """Undo a receipt: invoices get their balance back; unposted entry rows go, posted history is offset.

        Reversing twice returns the reversed receipt and changes nothing the second time.
        """
        with self._write() as conn:
            receipt = _receipt_by_key(conn, idempotency_key)
            if receipt is None:
                raise SageRuleError(FAULT_NO_KEY, f"There is no cash receipt for idempotency key {idempotency_key}.")
            if receipt.status == "reversed":
                return receipt
            stamp = _next_stamp(conn)
            if receipt.status == "entered":
                _delete_entry(conn, receipt, stamp)
            else:
                _offset_history(conn, receipt, stamp)
            _apply_to_invoices(conn, receipt, stamp, sign=Decimal(-1))
            conn.execute("UPDATE ML_Idempotency SET Status = 'reversed', ReversalReason = ? WHERE IdempotencyKey = ?",
                         (reason, idempotency_key))
            return replace(receipt, status="reversed", reversal_reason=reason, created=False)

    def post_cash_receipts_journal(self) -> int:
        """Sage's Cash Receipts Journal update: entries move to AR_CashReceiptsHistory; returns lines posted."""
        with self._write() as conn:
            stamp = _next_stamp(conn)
            details = conn.execute(
                "SELECT d.*, p.BankCode, p.DepositDate FROM AR_CashReceiptsDetail d "
                "JOIN AR_CashReceiptsDeposit p USING (DepositNo)").fetchall()
            for d in details:
                conn.execute(
                    "INSERT INTO AR_CashReceiptsHistory VALUES (?, ?, ?, ?, ?, ?, '000000', ?, ?, ?, ?, ?, ?, ?)",
                    (d["BankCode"], d["DepositDate"], d["DepositNo"], DEPOSIT_TYPE, d["ARDivisionNo"], d["CustomerNo"],
                     d["CheckNo"], d["SequenceNo"], d["InvoiceNo"], d["InvoiceType"], d["AmountPosted"], *stamp))
            for table in ("AR_CashReceiptsDetail", "AR_CashReceiptsHeader", "AR_CashReceiptsDeposit"):
                conn.execute(f"DELETE FROM {table}")
            conn.execute("UPDATE AR_OpenInvoice SET PaymentsToday = '0.00' WHERE PaymentsToday != '0.00'")
            conn.execute("UPDATE ML_Idempotency SET Status = 'posted' WHERE Status = 'entered'")
            return len(details)


_TABLES = frozenset({"AR_Customer", "AR_OpenInvoice", "AR_CashReceiptsDeposit", "AR_CashReceiptsHeader",
                     "AR_CashReceiptsDetail", "AR_CashReceiptsHistory", "ML_Idempotency"})


# --- loading a scenario ------------------------------------------------------------------------------------------

def _load_scenario(conn: sqlite3.Connection, scenario: Scenario) -> None:
    c = scenario.company
    salt = os.urandom(16)
    conn.execute("INSERT INTO ML_Company VALUES (?, ?, ?, ?, ?, ?, ?)",
                 (c.company_code, c.company_name, c.home_currency, c.bank_code, c.username, salt,
                  _hash_password(c.password, salt)))
    balances: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for inv in scenario.sage_invoices:
        balances[(inv.ARDivisionNo, inv.CustomerNo)] += inv.Balance
    for cust in scenario.sage_customers:
        stamp = _next_stamp(conn)
        conn.execute(
            "INSERT INTO AR_Customer (ARDivisionNo, CustomerNo, CustomerName, EmailAddress, CurrentBalance, "
            "CustomerStatus, DateCreated, TimeCreated, DateUpdated, TimeUpdated, UserUpdatedKey) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (cust.ARDivisionNo, cust.CustomerNo, cust.CustomerName, cust.EmailAddress,
             str(balances[(cust.ARDivisionNo, cust.CustomerNo)].quantize(CENT)), cust.CustomerStatus,
             *stamp, *stamp, USER_KEY))
    for inv in scenario.sage_invoices:
        _insert_invoice(conn, inv.ARDivisionNo, inv.CustomerNo, inv.InvoiceNo, inv.InvoiceType, inv.InvoiceDate,
                        inv.InvoiceDueDate, inv.Balance, _next_stamp(conn))


def _insert_invoice(conn: sqlite3.Connection, div: str, cust: str, invoice_no: str, invoice_type: str,
                    invoice_date: date, due_date: date | None, balance: Decimal, stamp: Stamp) -> None:
    # Sage keeps no original amount; NonTaxableAmt stands in for it so the row looks like a posted invoice.
    conn.execute(
        "INSERT INTO AR_OpenInvoice (ARDivisionNo, CustomerNo, InvoiceNo, InvoiceType, InvoiceDate, InvoiceDueDate, "
        "NonTaxableAmt, Balance, DateUpdated, TimeUpdated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (div, cust, invoice_no, invoice_type, _sage_date(invoice_date), _sage_date(due_date), str(balance),
         str(balance), *stamp))


# --- small SQL helpers ---------------------------------------------------------------------------------------

def _meta(conn: sqlite3.Connection, name: str, default: str) -> str:
    row = conn.execute("SELECT Value FROM ML_Meta WHERE Name = ?", (name,)).fetchone()
    return row[0] if row else default


def _set_meta(conn: sqlite3.Connection, name: str, value: str) -> None:
    conn.execute("INSERT INTO ML_Meta VALUES (?, ?) ON CONFLICT (Name) DO UPDATE SET Value = excluded.Value",
                 (name, value))


def _take_counter(conn: sqlite3.Connection, name: str) -> int:
    number = int(_meta(conn, name, "1"))
    _set_meta(conn, name, str(number + 1))
    return number


def _next_stamp(conn: sqlite3.Connection) -> Stamp:
    """Now, or just after the last stamp handed out if the clock has not moved on (or went back)."""
    now = Stamp.of(datetime.now())
    last = _meta(conn, "last_stamp", "")
    if last:
        previous = Stamp(*last.split(" "))
        if now <= previous:
            now = previous.next()
    _set_meta(conn, "last_stamp", " ".join(now))
    return now


def _update(conn: sqlite3.Connection, table: str, values: Mapping[str, str], stamp: Stamp, **key: str) -> None:
    assignments = {**values, "DateUpdated": stamp.DateUpdated, "TimeUpdated": stamp.TimeUpdated}
    conn.execute(f"UPDATE {table} SET {', '.join(f'{c} = ?' for c in assignments)} "
                 f"WHERE {' AND '.join(f'{c} = ?' for c in key)}", [*assignments.values(), *key.values()])


def _customer_row(conn: sqlite3.Connection, div: str, cust: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM AR_Customer WHERE ARDivisionNo = ? AND CustomerNo = ?", (div, cust)).fetchone()


def _invoice_row(conn: sqlite3.Connection, div: str, cust: str, invoice_no: str, invoice_type: str) -> sqlite3.Row | None:
    return conn.execute("SELECT * FROM AR_OpenInvoice WHERE ARDivisionNo = ? AND CustomerNo = ? AND InvoiceNo = ? "
                        "AND InvoiceType = ?", (div, cust, invoice_no, invoice_type)).fetchone()


def _check_customer_fields(fields: Mapping[str, object]) -> None:
    unknown = sorted(set(fields) - set(CUSTOMER_FIELDS))
    if unknown:
        raise SageRuleError(FAULT_INVALID, f"Column {unknown[0]} cannot be set through web services; settable: "
                                           f"{', '.join(CUSTOMER_FIELDS)}.")


def _add_to_customer_balance(conn: sqlite3.Connection, div: str, cust: str, delta: Decimal, stamp: Stamp,
                             payment: Decimal | None = None, payment_date: date | None = None) -> None:
    row = _customer_row(conn, div, cust)
    values = {"CurrentBalance": str((Decimal(row["CurrentBalance"]) + delta).quantize(CENT))}
    if payment is not None:
        values.update(DateLastPayment=_sage_date(payment_date), LastPaymentAmt=str(payment))
    _update(conn, "AR_Customer", values, stamp, ARDivisionNo=div, CustomerNo=cust)


def _customer_record(row: sqlite3.Row) -> CustomerRecord:
    return CustomerRecord(row["ARDivisionNo"], row["CustomerNo"], row["CustomerName"], row["EmailAddress"],
                          Decimal(row["CurrentBalance"]), row["CustomerStatus"], row["DateUpdated"], row["TimeUpdated"])


def _invoice_record(row: sqlite3.Row) -> InvoiceRecord:
    return InvoiceRecord(row["ARDivisionNo"], row["CustomerNo"], row["InvoiceNo"], row["InvoiceType"],
                         _from_sage_date(row["InvoiceDate"]), _from_sage_date(row["InvoiceDueDate"]),
                         Decimal(row["Balance"]), row["DateUpdated"], row["TimeUpdated"])


# --- cash receipt writing -----------------------------------------------------------------------------------------

def _deposit_for(conn: sqlite3.Connection, request: CashReceiptRequest, stamp: Stamp) -> str:
    """The open deposit for this bank code and date (one per posting date), created if needed."""
    deposit_date = _sage_date(request.deposit_date)
    row = conn.execute("SELECT DepositNo, CashDepositAmt FROM AR_CashReceiptsDeposit WHERE BankCode = ? AND "
                       "DepositDate = ?", (request.bank_code, deposit_date)).fetchone()
    if row is None:
        deposit_no = f"{_take_counter(conn, 'next_deposit_no'):05d}"
        conn.execute("INSERT INTO AR_CashReceiptsDeposit VALUES (?, ?, ?, ?, ?, ?, ?)",
                     (deposit_no, request.bank_code, deposit_date, f"GoCardless {request.deposit_date.isoformat()}",
                      str(request.amount), *stamp))
        return deposit_no
    total = Decimal(row["CashDepositAmt"]) + request.amount
    _update(conn, "AR_CashReceiptsDeposit", {"CashDepositAmt": str(total)}, stamp, DepositNo=row["DepositNo"])
    return row["DepositNo"]


def _write_entry(conn: sqlite3.Connection, receipt: CashReceipt, stamp: Stamp) -> None:
    key = (receipt.deposit_no, receipt.ar_division_no, receipt.customer_no, receipt.check_no)
    conn.execute("INSERT INTO AR_CashReceiptsHeader VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                 (*key, DEPOSIT_TYPE, str(receipt.amount), receipt.reference[:30], receipt.idempotency_key, *stamp))
    for sequence, line in enumerate(receipt.lines, start=1):
        conn.execute("INSERT INTO AR_CashReceiptsDetail VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                     (*key, f"{sequence:06d}", line.invoice_no, line.invoice_type, str(line.amount), *stamp))


def _apply_to_invoices(conn: sqlite3.Connection, receipt: CashReceipt, stamp: Stamp,
                       sign: Decimal = Decimal(1)) -> None:
    """Lower (or, reversing, raise) each invoice's Balance and the customer's, restamping both."""
    div, cust = receipt.ar_division_no, receipt.customer_no
    for line in receipt.lines:
        row = _invoice_row(conn, div, cust, line.invoice_no, line.invoice_type)
        values = {"Balance": str(Decimal(row["Balance"]) - sign * line.amount),
                  "PaymentsToday": str(Decimal(row["PaymentsToday"]) + sign * line.amount),
                  "CheckNo": "" if sign < 0 else receipt.check_no}
        _update(conn, "AR_OpenInvoice", values, stamp, ARDivisionNo=div, CustomerNo=cust,
                InvoiceNo=line.invoice_no, InvoiceType=line.invoice_type)
    if sign > 0:
        _add_to_customer_balance(conn, div, cust, -receipt.amount, stamp, receipt.amount, receipt.deposit_date)
    else:
        _add_to_customer_balance(conn, div, cust, receipt.amount, stamp)


def _remember(conn: sqlite3.Connection, receipt: CashReceipt) -> None:
    lines = lines_to_json(receipt.lines)
    conn.execute("INSERT INTO ML_Idempotency VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?)",
                 (receipt.idempotency_key, receipt.receipt_id, receipt.bank_code, receipt.deposit_no, receipt.check_no,
                  receipt.deposit_date.isoformat(), receipt.ar_division_no, receipt.customer_no, str(receipt.amount),
                  receipt.reference, lines, receipt.status, datetime.now().isoformat(timespec="seconds")))


def _receipt_by_key(conn: sqlite3.Connection, key: str) -> CashReceipt | None:
    row = conn.execute("SELECT * FROM ML_Idempotency WHERE IdempotencyKey = ?", (key,)).fetchone()
    if row is None:
        return None
    lines = lines_from_json(row["Lines"])
    return CashReceipt(row["IdempotencyKey"], row["ReceiptId"], row["DepositNo"], row["CheckNo"], row["BankCode"],
                       date.fromisoformat(row["DepositDate"]), row["ARDivisionNo"], row["CustomerNo"],
                       Decimal(row["Amount"]), row["Reference"], row["Status"], lines, created=False,
                       reversal_reason=row["ReversalReason"])


def _delete_entry(conn: sqlite3.Connection, receipt: CashReceipt, stamp: Stamp) -> None:
    key = (receipt.deposit_no, receipt.ar_division_no, receipt.customer_no, receipt.check_no)
    where = "DepositNo = ? AND ARDivisionNo = ? AND CustomerNo = ? AND CheckNo = ?"
    conn.execute(f"DELETE FROM AR_CashReceiptsDetail WHERE {where}", key)
    conn.execute(f"DELETE FROM AR_CashReceiptsHeader WHERE {where}", key)
    deposit = conn.execute("SELECT CashDepositAmt FROM AR_CashReceiptsDeposit WHERE DepositNo = ?",
                           (receipt.deposit_no,)).fetchone()
    remaining = Decimal(deposit["CashDepositAmt"]) - receipt.amount
    if remaining == 0:
        conn.execute("DELETE FROM AR_CashReceiptsDeposit WHERE DepositNo = ?", (receipt.deposit_no,))
    else:
        _update(conn, "AR_CashReceiptsDeposit", {"CashDepositAmt": str(remaining)}, stamp, DepositNo=receipt.deposit_no)


def _offset_history(conn: sqlite3.Connection, receipt: CashReceipt, stamp: Stamp) -> None:
    """A posted receipt cannot be deleted: history gets offsetting (negative) rows, as a returned check does."""
    first = conn.execute("SELECT COUNT(*) FROM AR_CashReceiptsHistory WHERE DepositNo = ? AND CheckNo = ?",
                         (receipt.deposit_no, receipt.check_no)).fetchone()[0] + 1
    for offset, line in enumerate(receipt.lines):
        conn.execute(
            "INSERT INTO AR_CashReceiptsHistory VALUES (?, ?, ?, ?, ?, ?, '000000', ?, ?, ?, ?, ?, ?, ?)",
            (receipt.bank_code, _sage_date(receipt.deposit_date), receipt.deposit_no, DEPOSIT_TYPE,
             receipt.ar_division_no, receipt.customer_no, receipt.check_no, f"{first + offset:06d}", line.invoice_no,
             line.invoice_type, str(-line.amount), *stamp))
