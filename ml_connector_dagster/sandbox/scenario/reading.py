"""Scenario folders read and checked whole: company.json and the CSV files, then the links between rows.

Every problem is reported as `file:line: column: what is wrong`, so a user can fix a scenario without
reading code; nothing is started from a scenario with a problem. The records are in model.py, the
checks of each row's cells in rows.py. Used by the stand-ins, the demo, tests and benchmarks.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from .model import Company, Scenario, ScenarioError
from .rows import Table, Validator, gc_customer, gc_mandate, gc_payment, gc_refund, sage_customer, sage_invoice

FILES = {
    "sage_customers.csv": ("ARDivisionNo", "CustomerNo", "CustomerName", "EmailAddress"),
    "sage_invoices.csv": (
        "ARDivisionNo",
        "CustomerNo",
        "InvoiceNo",
        "InvoiceType",
        "InvoiceDate",
        "InvoiceDueDate",
        "Balance",
    ),
    "gocardless_customers.csv": ("id", "email", "given_name", "family_name", "company_name", "metadata"),
    "gocardless_mandates.csv": ("id", "customer"),
    "gocardless_payments.csv": (
        "id",
        "mandate",
        "amount",
        "currency",
        "charge_date",
        "reference",
        "description",
        "metadata",
        "fx_currency",
        "fx_amount",
        "lifecycle",
    ),
    "gocardless_refunds.csv": ("id", "payment", "amount", "lifecycle"),
}
OPTIONAL_FILES = ("gocardless_refunds.csv",)
BUNDLED = Path(__file__).parent.parent / "scenarios"


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
    v = Validator(problems)
    sage_customers = tuple(v.rows(tables["sage_customers.csv"], sage_customer))
    invoices = tuple(v.rows(tables["sage_invoices.csv"], sage_invoice))
    gc_customers = tuple(v.rows(tables["gocardless_customers.csv"], gc_customer))
    mandates = tuple(v.rows(tables["gocardless_mandates.csv"], gc_mandate))
    payments = tuple(v.rows(tables["gocardless_payments.csv"], gc_payment))
    refunds = tuple(v.rows(tables["gocardless_refunds.csv"], gc_refund))
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
    fields = _CompanyFields(path.name, text, data, problems)
    code = fields.text("company_code", r"[A-Za-z0-9]{3}", 'is not exactly 3 letters or digits, e.g. "ABC"')
    name = fields.text("company_name", r".+", "must be a non-empty string", default="")
    currency = fields.text("home_currency", r"[A-Z]{3}", 'is not a 3-letter ISO 4217 code, e.g. "GBP"')
    bank = fields.text("bank_code", r"[A-Za-z0-9]", 'must be 1 letter or digit, e.g. "A"', default="A")
    username, password = fields.logon()
    rates = fields.fx_rates()
    settings = fields.settings()
    today = fields.today()
    return Company(code.upper(), name, currency, bank.upper(), username, password, rates, settings, today)


class _CompanyFields:
    """The fields of company.json, each checked; a problem is reported at the line that names its key."""

    def __init__(self, file: str, text: str, data: dict[str, Any], problems: list[str]) -> None:
        self.file, self.source, self.data, self.problems = file, text, data, problems

    def bad(self, key: str, message: str) -> None:
        self.problems.append(f"{self.file}:{_line_of(self.source, key)}: {key}: {message}")

    def text(self, key: str, pattern: str, hint: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            self.bad(key, f"{value!r} {hint}")
            return ""
        return value

    def logon(self) -> tuple[str, str]:
        logon = self.data.get("logon")
        if not (
            isinstance(logon, dict)
            and isinstance(logon.get("Username"), str)
            and isinstance(logon.get("Password"), str)
        ):
            self.bad("logon", 'must be {"Username": "...", "Password": "..."}')
            return "", ""
        return logon["Username"], logon["Password"]

    def fx_rates(self) -> dict[str, Decimal]:
        rates: dict[str, Decimal] = {}
        for cur, rate in (self.data.get("fx_rates") or {}).items():
            try:
                if not re.fullmatch(r"[A-Z]{3}", cur) or not isinstance(rate, str) or Decimal(rate) <= 0:
                    raise InvalidOperation
                rates[cur] = Decimal(rate)
            except InvalidOperation:
                self.bad("fx_rates", f'{cur}: {rate!r} must be a positive decimal string, e.g. "0.8600"')
        return rates

    def settings(self) -> dict[str, object]:
        settings = self.data.get("settings") or {}
        for key, allowed in (("collect_on", ("confirmed", "paid_out")), ("on_tie", ("oldest", "hold"))):
            if key in settings and settings[key] not in allowed:
                self.bad("settings", f"{key} {settings[key]!r} is not one of {', '.join(allowed)}")
        return dict(settings)

    def today(self) -> date:
        try:
            return date.fromisoformat(str(self.data.get("today", date.today().isoformat())))
        except ValueError:
            self.bad("today", f"{self.data.get('today')!r} is not a YYYY-MM-DD date")
            return date.today()


def _line_of(text: str, key: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if f'"{key}"' in line:
            return number
    return 1


# --- CSV files --------------------------------------------------------------------------------------


def _csv(path: Path, columns: tuple[str, ...], problems: list[str]) -> Table:
    if not path.exists():
        if path.name not in OPTIONAL_FILES:
            problems.append(f"{path.name}:1: file: missing; expected a CSV with columns {', '.join(columns)}")
        return Table(path.name, [])
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh, strict=True)
        try:
            header = next(reader, [])
            missing = [c for c in columns if c not in header]
            if missing:
                problems.append(f"{path.name}:1: header: missing column(s) {', '.join(missing)}")
                return Table(path.name, [])
            rows: list[tuple[int, dict[str, str]]] = []
            for record in reader:
                if not any(cell.strip() for cell in record):
                    continue
                if len(record) != len(header):
                    problems.append(
                        f"{path.name}:{reader.line_num}: row: has {len(record)} cells, the header has {len(header)}"
                    )
                    continue
                rows.append((reader.line_num, dict(zip(header, (cell.strip() for cell in record), strict=True))))
        except csv.Error as exc:
            problems.append(f"{path.name}:{reader.line_num}: row: {exc}")
            return Table(path.name, [])
    return Table(path.name, rows)


def _check_references(tables: dict[str, Table], problems: list[str]) -> None:
    """Every link points at a row that exists (invoice -> customer, payment -> mandate -> customer...)."""

    def keys(name: str, *cols: str) -> set[str]:
        return {"-".join(row[c] for c in cols) for _, row in tables[name].rows}

    checks = [
        (
            "sage_invoices.csv",
            ("ARDivisionNo", "CustomerNo"),
            keys("sage_customers.csv", "ARDivisionNo", "CustomerNo"),
            "CustomerNo",
            "no such customer in sage_customers.csv",
        ),
        (
            "gocardless_mandates.csv",
            ("customer",),
            keys("gocardless_customers.csv", "id"),
            "customer",
            "no such customer in gocardless_customers.csv",
        ),
        (
            "gocardless_payments.csv",
            ("mandate",),
            keys("gocardless_mandates.csv", "id"),
            "mandate",
            "no such mandate in gocardless_mandates.csv",
        ),
        (
            "gocardless_refunds.csv",
            ("payment",),
            keys("gocardless_payments.csv", "id"),
            "payment",
            "no such payment in gocardless_payments.csv",
        ),
    ]
    for name, cols, known, column, message in checks:
        for line, row in tables[name].rows:
            value = "-".join(row[c] for c in cols)
            if value not in known:
                problems.append(f"{name}:{line}: {column}: {value!r}: {message}")
