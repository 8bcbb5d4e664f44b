"""Scenario folders: a Sage 100 company and a month of GoCardless activity (see the README).

Loaded once, validated whole: every problem is reported as `file:line: column: what is wrong`, so a
user can fix a scenario without reading code. Used by the stand-ins, the demo, tests and benchmarks.
"""

from __future__ import annotations

import csv
import json
import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable

PAYMENT_ACTIONS = (
    "created", "submitted", "confirmed", "paid_out", "failed", "cancelled", "charged_back",
    "chargeback_cancelled", "chargeback_settled", "late_failure_settled",
)
REFUND_ACTIONS = ("created", "paid", "failed", "refund_settled", "funds_returned")
FILES = {
    "sage_customers.csv": ("ARDivisionNo", "CustomerNo", "CustomerName", "EmailAddress"),
    "sage_invoices.csv": ("ARDivisionNo", "CustomerNo", "InvoiceNo", "InvoiceType", "InvoiceDate", "InvoiceDueDate", "Balance"),
    "gocardless_customers.csv": ("id", "email", "given_name", "family_name", "company_name", "metadata"),
    "gocardless_mandates.csv": ("id", "customer"),
    "gocardless_payments.csv": ("id", "mandate", "amount", "currency", "charge_date", "reference", "description",
                                "metadata", "fx_currency", "fx_amount", "lifecycle"),
    "gocardless_refunds.csv": ("id", "payment", "amount", "lifecycle"),
}
OPTIONAL_FILES = ("gocardless_refunds.csv",)
INVOICE_TYPES = ("IN", "CM", "DM", "FC", "PP", "PY", "BF", "BC")
BUNDLED = Path(__file__).parent.parent / "scenarios"


class ScenarioError(Exception):
    """A scenario is invalid; `problems` holds each `file:line: column: message`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid scenario:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class Company:
    company_code: str
    company_name: str
    home_currency: str
    bank_code: str
    username: str
    password: str = field(repr=False)
    fx_rates: dict[str, Decimal]
    settings: dict[str, Any]
    today: date


@dataclass(frozen=True)
class SageCustomer:
    ARDivisionNo: str
    CustomerNo: str
    CustomerName: str
    EmailAddress: str
    CustomerStatus: str = "A"  # optional column: A active, I inactive (Sage refuses cash receipts for it)


@dataclass(frozen=True)
class SageInvoice:
    ARDivisionNo: str
    CustomerNo: str
    InvoiceNo: str
    InvoiceType: str
    InvoiceDate: date
    InvoiceDueDate: date
    Balance: Decimal


@dataclass(frozen=True)
class GoCardlessCustomer:
    id: str
    email: str
    given_name: str
    family_name: str
    company_name: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class GoCardlessMandate:
    id: str
    customer: str


@dataclass(frozen=True)
class GoCardlessPayment:
    id: str
    mandate: str
    amount: int
    currency: str
    charge_date: date | None
    reference: str
    description: str
    metadata: dict[str, str]
    fx_currency: str | None
    fx_amount: int | None
    lifecycle: tuple[str, ...]


@dataclass(frozen=True)
class GoCardlessRefund:
    id: str
    payment: str
    amount: int
    lifecycle: tuple[str, ...]


@dataclass(frozen=True)
class Action:
    """One lifecycle action of the play: `resource` is "payments" or "refunds"."""

    resource: str
    id: str
    action: str


@dataclass(frozen=True)
class Scenario:
    root: Path
    company: Company
    sage_customers: tuple[SageCustomer, ...]
    sage_invoices: tuple[SageInvoice, ...]
    gocardless_customers: tuple[GoCardlessCustomer, ...]
    gocardless_mandates: tuple[GoCardlessMandate, ...]
    gocardless_payments: tuple[GoCardlessPayment, ...]
    gocardless_refunds: tuple[GoCardlessRefund, ...]

    def steps(self) -> list[list[Action]]:
        """Step k = the k-th action of every payment lifecycle, in file order; then the refunds'."""
        return _steps("payments", self.gocardless_payments) + _steps("refunds", self.gocardless_refunds)


def _steps(resource: str, items: tuple) -> list[list[Action]]:
    depth = max((len(i.lifecycle) for i in items), default=0)
    return [[Action(resource, i.id, i.lifecycle[k]) for i in items if len(i.lifecycle) > k] for k in range(depth)]


def bundled(name: str = "sample") -> Path:
    return BUNDLED / name


def load_scenario(root: str | Path) -> Scenario:
    """Read and validate a scenario folder; raise ScenarioError listing every problem found."""
    root = Path(root)
    if not root.is_dir():
        raise ScenarioError([f"{root}: not a folder; give the path of a scenario folder (see the README)"])
    problems: list[str] = []
    company = _company(root / "company.json", problems)
    tables = {name: _csv(root / name, columns, problems) for name, columns in FILES.items()}
    v = _Validator(problems)
    sage_customers = tuple(v.rows(tables["sage_customers.csv"], _sage_customer))
    invoices = tuple(v.rows(tables["sage_invoices.csv"], _sage_invoice))
    gc_customers = tuple(v.rows(tables["gocardless_customers.csv"], _gc_customer))
    mandates = tuple(v.rows(tables["gocardless_mandates.csv"], _gc_mandate))
    payments = tuple(v.rows(tables["gocardless_payments.csv"], _gc_payment))
    refunds = tuple(v.rows(tables["gocardless_refunds.csv"], _gc_refund))
    _check_references(tables, problems)
    if problems:
        raise ScenarioError(problems)
    assert company is not None
    return Scenario(root, company, sage_customers, invoices, gc_customers, mandates, payments, refunds)


# --- company.json -----------------------------------------------------------------------------------

def _company(path: Path, problems: list[str]) -> Company | None:
    if not path.exists():
        problems.append(f"{path.name}:1: file: missing; every scenario needs a company.json")
        return None
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(f"{path.name}:{exc.lineno}: column {exc.colno}: not valid JSON ({exc.msg})")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path.name}:1: column 1: must be a JSON object")
        return None

    def bad(key: str, message: str) -> None:
        problems.append(f"{path.name}:{_line_of(text, key)}: {key}: {message}")

    def text_field(key: str, pattern: str, hint: str, default: str | None = None) -> str:
        value = data.get(key, default)
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            bad(key, f"{value!r} {hint}")
            return ""
        return value

    code = text_field("company_code", r"[A-Za-z0-9]{3}", "is not exactly 3 letters or digits, e.g. \"ABC\"")
    name = text_field("company_name", r".+", "must be a non-empty string", default="")
    currency = text_field("home_currency", r"[A-Z]{3}", "is not a 3-letter ISO 4217 code, e.g. \"GBP\"")
    bank = text_field("bank_code", r"[A-Za-z0-9]", "must be 1 letter or digit, e.g. \"A\"", default="A")
    logon = data.get("logon")
    if not (isinstance(logon, dict) and isinstance(logon.get("Username"), str) and isinstance(logon.get("Password"), str)):
        bad("logon", "must be {\"Username\": \"...\", \"Password\": \"...\"}")
        logon = {"Username": "", "Password": ""}
    rates: dict[str, Decimal] = {}
    for cur, rate in (data.get("fx_rates") or {}).items():
        try:
            if not re.fullmatch(r"[A-Z]{3}", cur) or not isinstance(rate, str) or Decimal(rate) <= 0:
                raise InvalidOperation
            rates[cur] = Decimal(rate)
        except InvalidOperation:
            bad("fx_rates", f"{cur}: {rate!r} must be a positive decimal string, e.g. \"0.8600\"")
    settings = data.get("settings") or {}
    for key, allowed in (("collect_on", ("confirmed", "paid_out")), ("on_tie", ("oldest", "hold"))):
        if key in settings and settings[key] not in allowed:
            bad("settings", f"{key} {settings[key]!r} is not one of {', '.join(allowed)}")
    try:
        today = date.fromisoformat(str(data.get("today", date.today().isoformat())))
    except ValueError:
        bad("today", f"{data.get('today')!r} is not a YYYY-MM-DD date")
        today = date.today()
    return Company(code.upper(), name, currency, bank.upper(), logon["Username"], logon["Password"], rates,
                   dict(settings), today)


def _line_of(text: str, key: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if f'"{key}"' in line:
            return number
    return 1


# --- CSV files --------------------------------------------------------------------------------------

@dataclass
class _Table:
    name: str
    rows: list[tuple[int, dict[str, str]]]


def _csv(path: Path, columns: tuple[str, ...], problems: list[str]) -> _Table:
    if not path.exists():
        if path.name not in OPTIONAL_FILES:
            problems.append(f"{path.name}:1: file: missing; expected a CSV with columns {', '.join(columns)}")
        return _Table(path.name, [])
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, strict=True)
        try:
            header = next(reader, [])
            missing = [c for c in columns if c not in header]
            if missing:
                problems.append(f"{path.name}:1: header: missing column(s) {', '.join(missing)}")
                return _Table(path.name, [])
            rows = []
            for record in reader:
                if not any(cell.strip() for cell in record):
                    continue
                if len(record) != len(header):
                    problems.append(f"{path.name}:{reader.line_num}: row: has {len(record)} cells, the header has {len(header)}")
                    continue
                rows.append((reader.line_num, dict(zip(header, (cell.strip() for cell in record)))))
        except csv.Error as exc:
            problems.append(f"{path.name}:{reader.line_num}: row: {exc}")
            return _Table(path.name, [])
    return _Table(path.name, rows)


class _Validator:
    """Turns table rows into records, collecting `file:line: column: message` problems."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def rows(self, table: _Table, build: Callable[["_Cell"], Any]) -> list[Any]:
        out, seen = [], {}
        for line, row in table.rows:
            cell = _Cell(table.name, line, row, self.problems)
            before = len(self.problems)
            record = build(cell)
            key = _key(record)
            if key in seen:
                self.problems.append(f"{table.name}:{line}: key: {key} repeats line {seen[key]}")
            elif len(self.problems) == before:
                seen[key] = line
                out.append(record)
        return out


def _key(record: Any) -> str:
    if isinstance(record, SageCustomer):
        return f"{record.ARDivisionNo}-{record.CustomerNo}"
    if isinstance(record, SageInvoice):
        return f"{record.ARDivisionNo}-{record.CustomerNo}/{record.InvoiceNo}/{record.InvoiceType}"
    return record.id


class _Cell:
    def __init__(self, file: str, line: int, row: dict[str, str], problems: list[str]) -> None:
        self.file, self.line, self.row, self.problems = file, line, row, problems

    def bad(self, column: str, message: str) -> None:
        self.problems.append(f"{self.file}:{self.line}: {column}: {message}")

    def text(self, column: str, pattern: str = r".+", hint: str = "must not be empty") -> str:
        value = self.row[column]
        if not re.fullmatch(pattern, value):
            self.bad(column, f"{value!r} {hint}")
        return value

    def optional(self, column: str) -> str:
        return self.row.get(column, "")

    def date(self, column: str, required: bool = True) -> date | None:
        value = self.row[column]
        if not value and not required:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.bad(column, f"{value!r} is not a YYYY-MM-DD date")
            return None

    def decimal(self, column: str) -> Decimal:
        value = self.row[column]
        try:
            number = Decimal(value)
            if number < 0 or number != number.quantize(Decimal("0.01")):
                raise InvalidOperation
            return number.quantize(Decimal("0.01"))
        except InvalidOperation:
            self.bad(column, f"{value!r} is not a non-negative amount with at most 2 decimals, e.g. 1200.00")
            return Decimal(0)

    def minor(self, column: str, required: bool = True) -> int | None:
        value = self.row[column]
        if not value and not required:
            return None
        if not re.fullmatch(r"[0-9]+", value) or int(value) == 0:
            self.bad(column, f"{value!r} is not a positive whole number of minor units, e.g. 12000 for 120.00")
            return None
        return int(value)

    def metadata(self, column: str = "metadata") -> dict[str, str]:
        value = self.row.get(column, "")
        if not value:
            return {}
        try:
            data = json.loads(value)
        except json.JSONDecodeError as exc:
            self.bad(column, f"not valid JSON ({exc.msg}); write e.g. {{\"sage_customer\": \"01-ABF\"}}")
            return {}
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            self.bad(column, "must be a JSON object of string values")
            return {}
        if len(data) > 3:
            self.bad(column, "GoCardless allows at most 3 metadata keys")
        return data

    def lifecycle(self, allowed: tuple[str, ...]) -> tuple[str, ...]:
        actions = tuple(self.row["lifecycle"].split())
        unknown = [a for a in actions if a not in allowed]
        if unknown:
            self.bad("lifecycle", f"unknown action(s) {', '.join(unknown)}; allowed: {' '.join(allowed)}")
        return actions


def _sage_customer(c: _Cell) -> SageCustomer:
    return SageCustomer(
        c.text("ARDivisionNo", r"[0-9]{2}", "is not a 2-digit AR division, e.g. 01"),
        c.text("CustomerNo", r"[A-Za-z0-9]{1,20}", "is not a customer number of up to 20 letters or digits"),
        c.text("CustomerName"), c.optional("EmailAddress"),
        c.text("CustomerStatus", "[AI]", "is not A (active) or I (inactive)") if c.row.get("CustomerStatus") else "A",
    )


def _sage_invoice(c: _Cell) -> SageInvoice:
    return SageInvoice(
        c.text("ARDivisionNo", r"[0-9]{2}", "is not a 2-digit AR division, e.g. 01"),
        c.text("CustomerNo", r"[A-Za-z0-9]{1,20}", "is not a customer number"),
        c.text("InvoiceNo", r"[A-Za-z0-9]{1,7}", "is not an invoice number of up to 7 letters or digits"),
        c.text("InvoiceType", "|".join(INVOICE_TYPES), f"is not a Sage invoice type ({' '.join(INVOICE_TYPES)})"),
        c.date("InvoiceDate"), c.date("InvoiceDueDate"), c.decimal("Balance"),
    )


def _gc_customer(c: _Cell) -> GoCardlessCustomer:
    return GoCardlessCustomer(
        c.text("id", r"CU[A-Z0-9]+", "is not a GoCardless customer id (CU...)"), c.optional("email"),
        c.optional("given_name"), c.optional("family_name"), c.optional("company_name"), c.metadata(),
    )


def _gc_mandate(c: _Cell) -> GoCardlessMandate:
    return GoCardlessMandate(c.text("id", r"MD[A-Z0-9]+", "is not a mandate id (MD...)"),
                             c.text("customer", r"CU[A-Z0-9]+", "is not a customer id (CU...)"))


def _gc_payment(c: _Cell) -> GoCardlessPayment:
    fx_currency = c.optional("fx_currency") or None
    if fx_currency and not re.fullmatch(r"[A-Z]{3}", fx_currency):
        c.bad("fx_currency", f"{fx_currency!r} is not a 3-letter currency code")
    return GoCardlessPayment(
        c.text("id", r"PM[A-Z0-9]+", "is not a payment id (PM...)"),
        c.text("mandate", r"MD[A-Z0-9]+", "is not a mandate id (MD...)"),
        c.minor("amount") or 0, c.text("currency", r"[A-Z]{3}", "is not a 3-letter currency code"),
        c.date("charge_date", required=False), c.optional("reference"), c.optional("description"),
        c.metadata(), fx_currency, c.minor("fx_amount", required=False), c.lifecycle(PAYMENT_ACTIONS),
    )


def _gc_refund(c: _Cell) -> GoCardlessRefund:
    return GoCardlessRefund(
        c.text("id", r"RF[A-Z0-9]+", "is not a refund id (RF...)"),
        c.text("payment", r"PM[A-Z0-9]+", "is not a payment id (PM...)"),
        c.minor("amount") or 0, c.lifecycle(REFUND_ACTIONS),
    )


def _check_references(tables: dict[str, _Table], problems: list[str]) -> None:
    """Every link points at a row that exists (invoice -> customer, payment -> mandate -> customer...)."""
    def keys(name: str, *cols: str) -> set[str]:
        return {"-".join(row[c] for c in cols) for _, row in tables[name].rows}

    checks = [
        ("sage_invoices.csv", ("ARDivisionNo", "CustomerNo"), keys("sage_customers.csv", "ARDivisionNo", "CustomerNo"),
         "CustomerNo", "no such customer in sage_customers.csv"),
        ("gocardless_mandates.csv", ("customer",), keys("gocardless_customers.csv", "id"),
         "customer", "no such customer in gocardless_customers.csv"),
        ("gocardless_payments.csv", ("mandate",), keys("gocardless_mandates.csv", "id"),
         "mandate", "no such mandate in gocardless_mandates.csv"),
        ("gocardless_refunds.csv", ("payment",), keys("gocardless_payments.csv", "id"),
         "payment", "no such payment in gocardless_payments.csv"),
    ]
    for name, cols, known, column, message in checks:
        for line, row in tables[name].rows:
            value = "-".join(row[c] for c in cols)
            if value not in known:
                problems.append(f"{name}:{line}: {column}: {value!r}: {message}")
