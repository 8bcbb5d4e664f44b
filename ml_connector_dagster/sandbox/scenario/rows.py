"""Scenario rows into records: each cell checked, each problem kept as `file:line: column: message`.

A row with any problem yields no record (so one bad cell is reported once, not again through whatever
refers to the row); a key seen twice is reported at its second line. `reading.py` reads the files.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from .model import (
    PAYMENT_ACTIONS,
    REFUND_ACTIONS,
    GoCardlessCustomer,
    GoCardlessMandate,
    GoCardlessPayment,
    GoCardlessRefund,
    SageCustomer,
    SageInvoice,
)

INVOICE_TYPES = ("IN", "CM", "DM", "FC", "PP", "PY", "BF", "BC")
Record = TypeVar(
    "Record", SageCustomer, SageInvoice, GoCardlessCustomer, GoCardlessMandate, GoCardlessPayment, GoCardlessRefund
)


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
        out: list[Record] = []
        seen: dict[str, int] = {}
        for line, row in table.rows:
            cell = Cell(table.name, line, row, self.problems)
            before = len(self.problems)
            record = build(cell)
            key = _key(record)
            if key in seen:
                self.problems.append(f"{table.name}:{line}: key: {key} repeats line {seen[key]}")
            elif len(self.problems) == before:
                seen[key] = line
                out.append(record)
        return out


def _key(record: Record) -> str:
    if isinstance(record, SageCustomer):
        return f"{record.ARDivisionNo}-{record.CustomerNo}"
    if isinstance(record, SageInvoice):
        return f"{record.ARDivisionNo}-{record.CustomerNo}/{record.InvoiceNo}/{record.InvoiceType}"
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
    return SageInvoice(
        c.text("ARDivisionNo", r"[0-9]{2}", "is not a 2-digit AR division, e.g. 01"),
        c.text("CustomerNo", r"[A-Za-z0-9]{1,20}", "is not a customer number"),
        c.text("InvoiceNo", r"[A-Za-z0-9]{1,7}", "is not an invoice number of up to 7 letters or digits"),
        c.text("InvoiceType", "|".join(INVOICE_TYPES), f"is not a Sage invoice type ({' '.join(INVOICE_TYPES)})"),
        c.date("InvoiceDate") or date.min,
        c.date("InvoiceDueDate") or date.min,
        c.decimal("Balance"),
    )


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
    )


def gc_refund(c: Cell) -> GoCardlessRefund:
    return GoCardlessRefund(
        c.text("id", r"RF[A-Z0-9]+", "is not a refund id (RF...)"),
        c.text("payment", r"PM[A-Z0-9]+", "is not a payment id (PM...)"),
        c.minor("amount") or 0,
        c.lifecycle(REFUND_ACTIONS),
    )
