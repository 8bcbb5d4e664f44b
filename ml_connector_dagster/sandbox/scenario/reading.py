"""Scenario folders read and checked whole: company.json and the CSV files, then what lies between rows.

Every problem is reported as `file:line: column: what is wrong`, so a user can fix a scenario without
reading code; nothing is started from a scenario with a problem, and nothing in it is ignored: a file,
column or company.json key the format does not know is a problem too (a misspelt name would otherwise
silently change the play). The records are in model.py, the checks of each row's cells in rows.py.
Used by the stand-ins, the demo, tests and benchmarks.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from .model import (
    COLLECTED_BY,
    Company,
    GoCardlessPayment,
    GoCardlessRefund,
    SageChange,
    SageInvoice,
    Scenario,
    ScenarioError,
)
from .rows import (
    Table,
    Validator,
    gc_customer,
    gc_mandate,
    gc_payment,
    gc_refund,
    sage_change,
    sage_customer,
    sage_invoice,
)

# Each CSV file's required columns, then the columns it may have.
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
    "sage_changes.csv": ("step", "action"),
}
OPTIONAL_COLUMNS = {
    "sage_customers.csv": ("CustomerStatus",),
    "sage_invoices.csv": ("PaymentsToday",),
    "gocardless_payments.csv": ("start_step",),
    "gocardless_refunds.csv": ("start_step",),
    "sage_changes.csv": (
        "ARDivisionNo",
        "CustomerNo",
        "InvoiceNo",
        "InvoiceType",
        "InvoiceDate",
        "InvoiceDueDate",
        "Amount",
        "CustomerName",
        "EmailAddress",
        "CheckNo",
    ),
}
OPTIONAL_FILES = ("gocardless_refunds.csv", "sage_changes.csv")
COMPANY_FILE = "company.json"
COMPANY_KEYS = ("company_code", "company_name", "home_currency", "bank_code", "logon", "fx_rates", "settings", "today")
# company.json "settings": the product's policy (used when the demo or `dev` starts it) and the simulated
# company's options; each with the values it may take.
CHOICE_SETTINGS = {"collect_on": ("confirmed", "paid_out"), "on_tie": ("oldest", "hold")}
BOOLEAN_SETTINGS = ("sync_customer_metadata", "auto_reversal", "require_deposit_amount", "batch_entry")
RATE = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)  # an FX rate: ASCII digits, no sign or exponent
BUNDLED = Path(__file__).parent.parent / "scenarios"
# Stands in for a company.json with problems, so that the checks between rows still run and report theirs.
_NO_COMPANY = Company("", "", "", "", "", "", {}, {}, date.min)


def bundled(name: str = "sample") -> Path:
    return BUNDLED / name


def load_scenario(root: str | Path) -> Scenario:
    """Read and validate a scenario folder; raise ScenarioError listing every problem found."""
    root = Path(root)
    if not root.is_dir():
        raise ScenarioError([f"{root}: not a folder; give the path of a scenario folder (see the README)"])
    problems: list[str] = []
    _unknown_files(root, problems)
    company = _company(root / COMPANY_FILE, problems)
    tables = {name: _csv(root / name, columns, problems) for name, columns in FILES.items()}
    v = Validator(problems)
    sage_customers = tuple(v.rows(tables["sage_customers.csv"], sage_customer))
    invoices = tuple(v.rows(tables["sage_invoices.csv"], sage_invoice))
    gc_customers = tuple(v.rows(tables["gocardless_customers.csv"], gc_customer))
    mandates = tuple(v.rows(tables["gocardless_mandates.csv"], gc_mandate))
    payments = tuple(v.rows(tables["gocardless_payments.csv"], gc_payment))
    refunds = v.numbered(tables["gocardless_refunds.csv"], gc_refund)
    changes = tuple(v.rows(tables["sage_changes.csv"], sage_change))
    _check_references(tables, problems)
    scenario = Scenario(
        root,
        company or _NO_COMPANY,
        sage_customers,
        invoices,
        gc_customers,
        mandates,
        payments,
        tuple(r for _, r in refunds),
        changes,
    )
    _check_refund_starts(scenario, refunds, problems)
    _check_changes(scenario, problems)
    if problems:
        raise ScenarioError(problems)
    return scenario


def _unknown_files(root: Path, problems: list[str]) -> None:
    """Every entry of the folder is a scenario file; hidden files and a README are left alone."""
    known = {COMPANY_FILE, *FILES}
    for entry in sorted(root.iterdir()):
        if entry.name in known or entry.name.startswith(".") or entry.name.upper().startswith("README"):
            continue
        problems.append(
            f"{entry.name}:1: file: not a scenario file; a scenario folder holds {', '.join([COMPANY_FILE, *FILES])}"
        )


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
    for key in data:
        if key not in COMPANY_KEYS:
            fields.bad(key, f"not a company.json key; the keys are {', '.join(COMPANY_KEYS)}")
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
        given = self.data.get("fx_rates") or {}
        if not isinstance(given, dict):
            self.bad("fx_rates", 'must be an object of currency codes and decimal strings, e.g. {"EUR": "0.8600"}')
            return rates
        for cur, rate in given.items():
            if re.fullmatch(r"[A-Z]{3}", cur) and isinstance(rate, str) and RATE.fullmatch(rate) and Decimal(rate) > 0:
                rates[cur] = Decimal(rate)
            else:
                self.bad("fx_rates", f'{cur}: {rate!r} must be a positive decimal string, e.g. "0.8600"')
        return rates

    def settings(self) -> dict[str, object]:
        settings = self.data.get("settings") or {}
        if not isinstance(settings, dict):
            self.bad("settings", 'must be an object, e.g. {"collect_on": "confirmed"}')
            return {}
        known = (*CHOICE_SETTINGS, *BOOLEAN_SETTINGS)
        for key, value in settings.items():
            if key in CHOICE_SETTINGS and value not in CHOICE_SETTINGS[key]:
                self.bad("settings", f"{key} {value!r} is not one of {', '.join(CHOICE_SETTINGS[key])}")
            elif key in BOOLEAN_SETTINGS and not isinstance(value, bool):
                self.bad("settings", f"{key} {json.dumps(value)} is not true or false (JSON booleans, unquoted)")
            elif key not in known:
                self.bad("settings", f"{key} is not a setting; the settings are {', '.join(known)}")
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
            header = [name.strip() for name in next(reader, [])]
            missing = [c for c in columns if c not in header]
            if missing:
                problems.append(f"{path.name}:1: header: missing column(s) {', '.join(missing)}")
                return Table(path.name, [])
            known = (*columns, *OPTIONAL_COLUMNS.get(path.name, ()))
            unknown = [c for c in header if c not in known]
            repeated = sorted({c for c in header if header.count(c) > 1})
            if unknown or repeated:
                if unknown:
                    problems.append(
                        f"{path.name}:1: header: unknown column(s) {', '.join(unknown)}; "
                        f"the columns are {', '.join(known)}"
                    )
                if repeated:
                    problems.append(f"{path.name}:1: header: column(s) {', '.join(repeated)} more than once")
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


# --- between rows: start steps and Sage changes ----------------------------------------------------------------


def _check_refund_starts(scenario: Scenario, refunds: list[tuple[int, GoCardlessRefund]], problems: list[str]) -> None:
    """A refund never starts before its payment has been collected (its `confirmed` or `paid_out` step)."""
    payments = {p.id: p for p in scenario.gocardless_payments}
    for line, refund in refunds:
        payment = payments.get(refund.payment)
        if payment is None or not refund.lifecycle:
            continue  # a missing payment is reported by the links check; an empty lifecycle never starts
        collected = _collected_step(scenario, payment)
        start = scenario.refund_start(refund)
        where = f"gocardless_refunds.csv:{line}"
        if collected is None:
            problems.append(
                f"{where}: payment: {payment.id} is never collected (its lifecycle has no "
                f"{' or '.join(COLLECTED_BY)}), so it cannot be refunded"
            )
        elif start < collected:
            problems.append(
                f"{where}: start_step: the refund starts at step {start}, before its payment {payment.id} "
                f"is collected at step {collected}"
            )


def _collected_step(scenario: Scenario, payment: GoCardlessPayment) -> int | None:
    for offset, action in enumerate(payment.lifecycle):
        if action in COLLECTED_BY:
            return scenario.payment_start(payment) + offset
    return None


def _check_changes(scenario: Scenario, problems: list[str]) -> None:
    """Sage changes in the order they are played: each one's customer or invoice exists by then (in the Sage
    files or added by an earlier change) or, when added, does not; receipts keyed by people never take an
    invoice beyond its open amount (Balance - PaymentsToday), which Sage would refuse."""
    customers: dict[tuple[str, str], str] = {
        (c.ARDivisionNo, c.CustomerNo): "sage_customers.csv" for c in scenario.sage_customers
    }
    open_amounts: dict[tuple[str, str, str, str], Decimal] = {
        _invoice_key(i): i.Balance - i.PaymentsToday for i in scenario.sage_invoices
    }
    for change in sorted(scenario.sage_changes, key=lambda c: (c.step, c.line)):
        where = f"sage_changes.csv:{change.line}"
        customer = (change.ARDivisionNo, change.CustomerNo)
        invoice = _invoice_key(change)
        if change.action == "add_customer":
            if customer in customers:
                problems.append(f"{where}: CustomerNo: {'-'.join(customer)} already exists ({customers[customer]})")
            customers.setdefault(customer, f"added by sage_changes.csv:{change.line}")
            continue
        if change.action == "post_journal":
            continue  # Balance and PaymentsToday fall together: the open amounts do not change
        if customer not in customers:
            problems.append(
                f"{where}: CustomerNo: {'-'.join(customer)}: no such customer in sage_customers.csv "
                "or added by an earlier change"
            )
            continue
        if change.action == "add_invoice":
            if invoice in open_amounts:
                problems.append(f"{where}: InvoiceNo: {'/'.join(invoice)} already exists")
            else:
                open_amounts[invoice] = change.Amount or Decimal(0)
        elif change.action == "key_receipt":
            if invoice not in open_amounts:
                problems.append(
                    f"{where}: InvoiceNo: {'/'.join(invoice)}: no such invoice in sage_invoices.csv "
                    "or added by an earlier change"
                )
                continue
            amount = change.Amount or Decimal(0)
            if amount > open_amounts[invoice]:
                problems.append(
                    f"{where}: Amount: {amount} is more than the {open_amounts[invoice]} still open on invoice "
                    f"{change.InvoiceNo} by then (Balance less receipts keyed before); Sage would refuse it"
                )
            open_amounts[invoice] -= amount


def _invoice_key(row: SageInvoice | SageChange) -> tuple[str, str, str, str]:
    return (row.ARDivisionNo, row.CustomerNo, row.InvoiceNo, row.InvoiceType)
