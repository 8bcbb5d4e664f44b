"""Scenario rows into records: each cell checked, each problem kept as `file:line: column: message`.

A row with any problem yields no record (so one bad cell is reported once, not again through whatever
refers to the row); a key seen twice is reported at its second line. `csv_files.py` reads the files,
`between_rows.py` checks what lies between rows (links, start steps, the order of Sage changes).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import TypeVar

from .model import (
    FOLLOWS,
    PAYMENT_ACTIONS,
    REFUND_ACTIONS,
    SAGE_CHANGE_ACTIONS,
    GoCardlessCustomer,
    GoCardlessMandate,
    GoCardlessPayment,
    GoCardlessRefund,
    SageChange,
    SageCustomer,
    SageInvoice,
)

INVOICE_TYPES = ("IN", "CM", "DM", "FC", "PP", "PY", "BF", "BC")
# An amount as a scenario writes it: ASCII digits, at most 2 decimals; no sign, exponent or other script's digits.
AMOUNT = re.compile(r"[0-9]+(\.[0-9]{1,2})?", re.ASCII)
Record = TypeVar(
    "Record",
    SageCustomer,
    SageInvoice,
    GoCardlessCustomer,
    GoCardlessMandate,
    GoCardlessPayment,
    GoCardlessRefund,
    SageChange,
)
# The columns each Sage change needs (sage_changes.csv); `step` and `action` are always needed, every other
# column must be empty. EmailAddress is optional for add_customer, as it is in sage_customers.csv.
CHANGE_COLUMNS: dict[str, tuple[str, ...]] = {
    "add_customer": ("ARDivisionNo", "CustomerNo", "CustomerName", "EmailAddress"),
    "update_customer_email": ("ARDivisionNo", "CustomerNo", "EmailAddress"),
    "add_invoice": (
        "ARDivisionNo",
        "CustomerNo",
        "InvoiceNo",
        "InvoiceType",
        "InvoiceDate",
        "InvoiceDueDate",
        "Amount",
    ),
    "key_receipt": ("ARDivisionNo", "CustomerNo", "InvoiceNo", "InvoiceType", "Amount", "CheckNo"),
    "post_journal": (),
}
CHANGE_OPTIONAL = {("add_customer", "EmailAddress")}
# How each text column of a change is checked: (pattern, what is wrong when it does not match).
CHANGE_TEXT = {
    "ARDivisionNo": (r"[0-9]{2}", "is not a 2-digit AR division, e.g. 01"),
    "CustomerNo": (r"[A-Za-z0-9]{1,20}", "is not a customer number of up to 20 letters or digits"),
    "InvoiceNo": (r"[A-Za-z0-9]{1,7}", "is not an invoice number of up to 7 letters or digits"),
    "InvoiceType": ("|".join(INVOICE_TYPES), f"is not a Sage invoice type ({' '.join(INVOICE_TYPES)})"),
    "CustomerName": (r".+", "must not be empty"),
    "EmailAddress": (r".+", "must not be empty"),
    "CheckNo": (r"[A-Za-z0-9]{1,10}", "is not a check number of up to 10 letters or digits"),
}


@dataclass
class Table:
    """One CSV file's rows, each with its line number, cells stripped and keyed by header."""

    name: str
    rows: list[tuple[int, dict[str, str]]]


class Validator:
    """Turns table rows into records, collecting `file:line: column: message` problems."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems

    def rows(self, table: Table, build: Callable[[Cell], Record]) -> list[Record]:
        return [record for _, record in self.numbered(table, build)]

    def numbered(self, table: Table, build: Callable[[Cell], Record]) -> list[tuple[int, Record]]:
        """The good rows' records, each with the line it ends on."""
        out: list[tuple[int, Record]] = []
        seen: dict[str, int] = {}
        for line, row in table.rows:
            cell = Cell(table.name, line, row, self.problems)
            before = len(self.problems)
            record = build(cell)
            key = _key(record, line)
            if key in seen:
                self.problems.append(f"{table.name}:{line}: key: {key} repeats line {seen[key]}")
            elif len(self.problems) == before:
                seen[key] = line
                out.append((line, record))
        return out


def _key(record: Record, line: int) -> str:
    if isinstance(record, SageCustomer):
        return f"{record.ARDivisionNo}-{record.CustomerNo}"
    if isinstance(record, SageInvoice):
        return f"{record.ARDivisionNo}-{record.CustomerNo}/{record.InvoiceNo}/{record.InvoiceType}"
    if isinstance(record, SageChange):
        return f"line {line}"  # changes have no key: the same change may happen twice
    return record.id


class Cell:
    """The cells of one row, read as text, dates, amounts...; a bad one records a problem and reads as empty."""

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

    def decimal(self, column: str, default: str | None = None, positive: bool = False) -> Decimal:
        """An amount written with the digits 0-9 and at most 2 decimals ("1200.00"); `default` when the cell (or
        the optional column) is empty. Exponents ("1e3"), signs and other scripts' digits are refused."""
        value = self.row.get(column, "")
        if not value and default is not None:
            return Decimal(default)
        if not AMOUNT.fullmatch(value) or (positive and Decimal(value) == 0):
            kind = "positive" if positive else "non-negative"
            self.bad(column, f"{value!r} is not a {kind} amount with at most 2 decimals, e.g. 1200.00")
            return Decimal(0)
        return Decimal(value).quantize(Decimal("0.01"))

    def step(self, column: str, required: bool = True) -> int | None:
        """A step number: a whole number from 1; empty is None when not required."""
        value = self.row.get(column, "")
        if not value and not required:
            return None
        if not re.fullmatch(r"[0-9]+", value, re.ASCII) or int(value) == 0:
            self.bad(column, f"{value!r} is not a step number (a whole number from 1)")
            return None
        return int(value)

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
            self.bad(column, f'not valid JSON ({exc.msg}); write e.g. {{"sage_customer": "01-ABF"}}')
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
        for n, action in enumerate(actions):
            if action not in FOLLOWS or action not in allowed:
                continue
            earlier, directly = FOLLOWS[action]
            if directly and (n == 0 or actions[n - 1] != earlier):
                self.bad("lifecycle", f"{action} must come right after {earlier}")
            elif not directly and earlier not in actions[:n]:
                self.bad("lifecycle", f"{action} must come after {earlier}")
        return actions


# --- one builder per file ------------------------------------------------------------------------------------
# A date a row needs but lacks has been reported as a problem (so the record is dropped); `or date.min` only
# keeps the record's type honest until then.


def sage_customer(c: Cell) -> SageCustomer:
    return SageCustomer(
        c.text("ARDivisionNo", r"[0-9]{2}", "is not a 2-digit AR division, e.g. 01"),
        c.text("CustomerNo", r"[A-Za-z0-9]{1,20}", "is not a customer number of up to 20 letters or digits"),
        c.text("CustomerName"),
        c.optional("EmailAddress"),
        c.text("CustomerStatus", "[AI]", "is not A (active) or I (inactive)") if c.row.get("CustomerStatus") else "A",
    )


def sage_invoice(c: Cell) -> SageInvoice:
    division = c.text("ARDivisionNo", r"[0-9]{2}", "is not a 2-digit AR division, e.g. 01")
    customer = c.text("CustomerNo", r"[A-Za-z0-9]{1,20}", "is not a customer number")
    invoice_no = c.text("InvoiceNo", r"[A-Za-z0-9]{1,7}", "is not an invoice number of up to 7 letters or digits")
    invoice_type = c.text(
        "InvoiceType", "|".join(INVOICE_TYPES), f"is not a Sage invoice type ({' '.join(INVOICE_TYPES)})"
    )
    invoice_date = c.date("InvoiceDate") or date.min
    due_date = c.date("InvoiceDueDate") or date.min
    balance = c.decimal("Balance")
    return SageInvoice(
        division, customer, invoice_no, invoice_type, invoice_date, due_date, balance, _payments_today(c, balance)
    )


def _payments_today(c: Cell, balance: Decimal) -> Decimal:
    """Optional: unposted receipts already keyed against the invoice; never more than its Balance."""
    keyed = c.decimal("PaymentsToday", default="0.00")
    if keyed > balance:
        c.bad("PaymentsToday", f"{keyed} is more than the invoice's Balance {balance}")
    return keyed


def gc_customer(c: Cell) -> GoCardlessCustomer:
    return GoCardlessCustomer(
        c.text("id", r"CU[A-Z0-9]+", "is not a GoCardless customer id (CU...)"),
        c.optional("email"),
        c.optional("given_name"),
        c.optional("family_name"),
        c.optional("company_name"),
        c.metadata(),
    )


def gc_mandate(c: Cell) -> GoCardlessMandate:
    return GoCardlessMandate(
        c.text("id", r"MD[A-Z0-9]+", "is not a mandate id (MD...)"),
        c.text("customer", r"CU[A-Z0-9]+", "is not a customer id (CU...)"),
    )


def gc_payment(c: Cell) -> GoCardlessPayment:
    fx_currency = c.optional("fx_currency") or None
    if fx_currency and not re.fullmatch(r"[A-Z]{3}", fx_currency):
        c.bad("fx_currency", f"{fx_currency!r} is not a 3-letter currency code")
    return GoCardlessPayment(
        c.text("id", r"PM[A-Z0-9]+", "is not a payment id (PM...)"),
        c.text("mandate", r"MD[A-Z0-9]+", "is not a mandate id (MD...)"),
        c.minor("amount") or 0,
        c.text("currency", r"[A-Z]{3}", "is not a 3-letter currency code"),
        c.date("charge_date", required=False),
        c.optional("reference"),
        c.optional("description"),
        c.metadata(),
        fx_currency,
        c.minor("fx_amount", required=False),
        c.lifecycle(PAYMENT_ACTIONS),
        c.step("start_step", required=False),
    )


def gc_refund(c: Cell) -> GoCardlessRefund:
    return GoCardlessRefund(
        c.text("id", r"RF[A-Z0-9]+", "is not a refund id (RF...)"),
        c.text("payment", r"PM[A-Z0-9]+", "is not a payment id (PM...)"),
        c.minor("amount") or 0,
        c.lifecycle(REFUND_ACTIONS),
        c.step("start_step", required=False),
    )


def sage_change(c: Cell) -> SageChange:
    """One change: `step` and `action`, the columns the action needs filled, every other column empty."""
    step = c.step("step") or 0
    action = c.row.get("action", "")
    if action not in CHANGE_COLUMNS:
        c.bad("action", f"{action!r} is not a Sage change; one of {', '.join(SAGE_CHANGE_ACTIONS)}")
        return SageChange(step, action, line=c.line)
    needed = CHANGE_COLUMNS[action]
    for column, value in c.row.items():
        if column not in ("step", "action", *needed) and value:
            c.bad(column, f"{value!r}: {action} does not use this column; leave it empty")
    for column in needed:
        if not c.row.get(column) and (action, column) not in CHANGE_OPTIONAL:
            c.bad(column, f"{action} needs this column")

    def used(column: str) -> bool:
        return column in needed and bool(c.row.get(column))

    def text(column: str) -> str:
        return c.text(column, *CHANGE_TEXT[column]) if used(column) else ""

    return SageChange(
        step,
        action,
        text("ARDivisionNo"),
        text("CustomerNo"),
        text("InvoiceNo"),
        text("InvoiceType"),
        c.date("InvoiceDate") if used("InvoiceDate") else None,
        c.date("InvoiceDueDate") if used("InvoiceDueDate") else None,
        c.decimal("Amount", positive=action == "key_receipt") if used("Amount") else None,
        text("CustomerName"),
        text("EmailAddress"),
        text("CheckNo"),
        line=c.line,
    )
