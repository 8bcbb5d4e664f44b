"""The simulated Sage 100 company: one SQLite file, opened per call, with Sage's rules and fault codes.

What the agent reads and writes here looks like what it reads and writes through BOI on a real server:
customers and open invoices listed in change-stamp order, customers kept through eBusiness Web Services,
invoices changed as Sage's own screens would. What people do in Sage meanwhile - key a receipt, run the
Cash Receipts Journal update, add an invoice or a customer - has a method here too. This class opens the
file, logs on and reads; each write is one `BEGIN IMMEDIATE` transaction handed to the module that does it:
customers.py (customers), people.py (a person's receipt, invoices), receipts.py (the product's cash
receipts), journal.py (the journal update); the tables and a new company's loading are schema.py's.
"""

from __future__ import annotations

import contextlib
import hmac
import sqlite3
from collections.abc import Iterator, Mapping, Sequence
from datetime import date
from decimal import Decimal
from pathlib import Path

from ...sage100.model import (
    FAULT_COMPANY,
    FAULT_INVALID,
    FAULT_LOGON,
    FAULT_NO_KEY,
    LOGON_FAILURE_TEXT,
    CashReceipt,
    CashReceiptRequest,
    Credentials,
    CustomerRecord,
    InvoiceRecord,
    SageRuleError,
    Stamp,
    UnpostedReceiptLine,
)
from ..scenario import Scenario
from . import customers, people, receipts
from .deposits import PERSON
from .journal import post_journal
from .people import EnteredReceipt, KeyedReceipt
from .rows import (
    CUSTOMER_COLUMNS,
    INVOICE_COLUMNS,
    CompanyOptions,
    CustomerRow,
    customer_columns,
    customer_record,
    customer_row,
    invoice_record,
    read_options,
)
from .schema import TABLES, CompanyInfo, create_database, hash_password, is_current, upgrade


class SageCompany:
    """One company database; cheap to construct, safe to share between threads and processes."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no Sage company database at {self.path}; create one from a scenario first")
        self.info = self._load_info()
        with self._read() as conn:
            current = is_current(conn)
        if not current:
            with self._write() as conn:
                upgrade(conn)
        with self._read() as conn:
            self.options: CompanyOptions = read_options(conn)

    def __repr__(self) -> str:
        return f"SageCompany({str(self.path)!r}, company={self.info.code!r})"

    # --- creation -----------------------------------------------------------------------------------------------

    @classmethod
    def create(cls, path: str | Path, scenario: Scenario) -> SageCompany:
        """A new company database loaded from a scenario; refuses to overwrite an existing one."""
        path = Path(path)
        if path.exists():
            raise FileExistsError(f"{path} already exists; open it, or delete it to load the scenario again")
        create_database(path, scenario)
        return cls(path)

    @classmethod
    def open_or_create(cls, path: str | Path, scenario: Scenario) -> SageCompany:
        """The company at `path`, loading `scenario` into it only if it does not exist yet (keeps state)."""
        return cls(path) if Path(path).exists() else cls.create(path, scenario)

    def _load_info(self) -> CompanyInfo:
        with self._read() as conn:
            row = conn.execute("SELECT CompanyCode, CompanyName, HomeCurrency, BankCode FROM ML_Company").fetchone()
        if row is None:
            raise ValueError(f"{self.path} is not a Sage company database (no ML_Company row)")
        return CompanyInfo(*row)

    # --- connections --------------------------------------------------------------------------------------------

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

    # --- logon --------------------------------------------------------------------------------------------------

    def authorise(self, credentials: Credentials) -> None:
        """Refuse a bad logon (Sage's own words) or another company's code, as Sage's services do."""
        if not self.check_logon(credentials.username, credentials.password):
            raise SageRuleError(FAULT_LOGON, LOGON_FAILURE_TEXT)
        if (credentials.company_code or "").upper() != self.info.code:
            raise SageRuleError(
                FAULT_COMPANY,
                f"Invalid company code {credentials.company_code}: the company does "
                "not exist or is not enabled for web services.",
            )

    def check_logon(self, username: str, password: str) -> bool:
        with self._read() as conn:
            user, salt, digest = conn.execute("SELECT Username, PasswordSalt, PasswordHash FROM ML_Company").fetchone()
        same_user = hmac.compare_digest(user.encode("utf-8"), (username or "").encode("utf-8"))
        same_password = hmac.compare_digest(digest, hash_password(password or "", salt))
        return same_user and same_password

    # --- reads --------------------------------------------------------------------------------------------------

    def get_customer(self, ar_division_no: str, customer_no: str) -> CustomerRow:
        """Every AR_Customer column of one customer; CI_NoKey if there is none."""
        with self._read() as conn:
            row = customer_row(conn, ar_division_no, customer_no)
        if row is None:
            raise SageRuleError(FAULT_NO_KEY, f"Customer {ar_division_no}-{customer_no} does not exist.")
        return customer_columns(row)

    def list_customers(self, since: Stamp | None, after: tuple[str, ...] | None, limit: int) -> list[CustomerRecord]:
        """Customers changed after `since`, in (DateUpdated, TimeUpdated, key) order, after position `after`."""
        rows = self._page("AR_Customer", CUSTOMER_COLUMNS, ("ARDivisionNo", "CustomerNo"), since, after, limit)
        return [customer_record(r) for r in rows]

    def list_open_invoices(self, since: Stamp | None, after: tuple[str, ...] | None, limit: int) -> list[InvoiceRecord]:
        key = ("ARDivisionNo", "CustomerNo", "InvoiceNo", "InvoiceType")
        rows = self._page("AR_OpenInvoice", INVOICE_COLUMNS, key, since, after, limit)
        return [invoice_record(r) for r in rows]

    def _page(
        self,
        table: str,
        columns: tuple[str, ...],
        key: tuple[str, ...],
        since: Stamp | None,
        after: tuple[str, ...] | None,
        limit: int,
    ) -> list[sqlite3.Row]:
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
        sql = (
            f"SELECT {', '.join(columns)} FROM {table} WHERE {' AND '.join(where)} ORDER BY {', '.join(order)} LIMIT ?"
        )
        with self._read() as conn:
            return conn.execute(sql, [*params, limit]).fetchall()

    def open_invoices_for(self, ar_division_no: str, customer_no: str) -> list[InvoiceRecord]:
        """All AR_OpenInvoice rows of a customer (zero balances included, as Sage keeps them until purged)."""
        with self._read() as conn:
            if customer_row(conn, ar_division_no, customer_no) is None:
                raise SageRuleError(FAULT_NO_KEY, f"Customer {ar_division_no}-{customer_no} does not exist.")
            rows = conn.execute(
                f"SELECT {', '.join(INVOICE_COLUMNS)} FROM AR_OpenInvoice WHERE ARDivisionNo = ? AND CustomerNo = ? "
                "ORDER BY InvoiceDueDate, InvoiceDate, InvoiceNo, InvoiceType",
                (ar_division_no, customer_no),
            ).fetchall()
        return [invoice_record(r) for r in rows]

    def rows(self, table: str) -> list[dict[str, object]]:
        """Every row of a table, for tests and the sandbox's inspection."""
        if table not in TABLES:
            raise ValueError(f"unknown table {table!r}; one of {', '.join(sorted(TABLES))}")
        with self._read() as conn:
            return [dict(r) for r in conn.execute(f"SELECT * FROM {table} ORDER BY rowid")]

    # --- customers (eBusiness Web Services; customers.py) -------------------------------------------------------

    def reserve_customer_no(self) -> str:
        """Sage's next customer number, reserved: the company's one counter moves past it (and past numbers
        already used in any division), so the next call answers another number even if this one is never used."""
        with self._write() as conn:
            return customers.reserve_customer_no(conn)

    def create_customer(
        self, ar_division_no: str, customer_no: str, fields: Mapping[str, object], required: Sequence[str] = ()
    ) -> None:
        """A new customer; WS_AlreadyExists for a key in use, then CI_Invalid for the first `required` field
        left empty (eBusiness Web Services requires some that a person keying in Sage may leave for later)."""
        with self._write() as conn:
            customers.create_customer(conn, ar_division_no, customer_no, fields, required)

    def update_customer(self, ar_division_no: str, customer_no: str, fields: Mapping[str, object]) -> None:
        with self._write() as conn:
            customers.update_customer(conn, ar_division_no, customer_no, fields)

    # --- invoices (people.py; scenario and test helpers) --------------------------------------------------------

    def adjust_invoice_balance(
        self, ar_division_no: str, customer_no: str, invoice_no: str, invoice_type: str, balance: Decimal
    ) -> InvoiceRecord:
        """Set an invoice's Balance (e.g. a payment keyed in Sage by hand), restamping it like Sage would."""
        if isinstance(balance, float):
            raise TypeError("balance must be a Decimal, not a float")
        with self._write() as conn:
            return people.adjust_invoice_balance(conn, ar_division_no, customer_no, invoice_no, invoice_type, balance)

    def add_invoice(
        self,
        ar_division_no: str,
        customer_no: str,
        invoice_no: str,
        invoice_type: str,
        invoice_date: date,
        due_date: date | None,
        balance: Decimal,
    ) -> InvoiceRecord:
        """A new open invoice (as if Sage's sales journal had been updated)."""
        with self._write() as conn:
            return people.add_invoice(
                conn, ar_division_no, customer_no, invoice_no, invoice_type, invoice_date, due_date, balance
            )

    # --- cash receipts (receipts.py) ----------------------------------------------------------------------------

    def find_cash_receipt(self, idempotency_key: str) -> CashReceipt | None:
        with self._read() as conn:
            return receipts.find(conn, idempotency_key)

    def unposted_receipts_for(self, ar_division_no: str, customer_no: str) -> list[UnpostedReceiptLine]:
        """The customer's receipt lines entered and not yet posted (people's and the product's, the latter with
        their idempotency key): what the invoices' PaymentsToday is made of."""
        with self._read() as conn:
            return receipts.unposted_for(conn, ar_division_no, customer_no)

    def create_cash_receipt(self, request: CashReceiptRequest) -> CashReceipt:
        """Enter a cash receipt in a deposit of the product's own, or return the one already written for this
        idempotency key (if the request asks for that receipt: see `repeat_of`).

        All checks run before anything is written, in one transaction: either the whole receipt (deposit,
        header, lines, the invoices' PaymentsToday, idempotency row) is written, or nothing is. What Sage
        warned about (an inactive customer) comes back in the receipt's `warnings`.
        """
        with self._write() as conn:
            return receipts.create(conn, request, self.info.bank_code, self.options)

    def reverse_cash_receipt(self, idempotency_key: str, reason: str) -> CashReceipt:
        """Undo a receipt: deleted while unposted; once posted, a negative receipt with the same check number.

        Reversing twice returns the reversed receipt and changes nothing the second time.
        """
        with self._write() as conn:
            return receipts.reverse(conn, idempotency_key, reason, self.options)

    # --- what people do in Sage (people.py, journal.py) ---------------------------------------------------------

    def key_receipt(
        self,
        ar_division_no: str,
        customer_no: str,
        invoice_no: str,
        invoice_type: str,
        amount: Decimal,
        check_no: str,
        deposit_date: date,
        keyed_by: str = PERSON,
    ) -> EnteredReceipt:
        """A person keys a cash receipt for one invoice in their own deposit: unposted, so the invoice's
        PaymentsToday rises and its Balance does not. Refused as Sage refuses the product's receipts."""
        if isinstance(amount, float):
            raise TypeError("amount must be a Decimal, not a float")
        keyed = KeyedReceipt(
            ar_division_no, customer_no, invoice_no, invoice_type, Decimal(amount), check_no, deposit_date, keyed_by
        )
        with self._write() as conn:
            return people.key_receipt(conn, keyed, self.info.bank_code, self.options)

    def post_cash_receipts_journal(self) -> int:
        """Sage's Cash Receipts Journal update, as a person runs it: every unposted receipt (people's and the
        product's) is posted - Balance falls, PaymentsToday returns to 0, the deposits close, the lines go
        to AR_CashReceiptsHistory. Returns the lines posted."""
        with self._write() as conn:
            return post_journal(conn)
