"""The scenario's CSV files read: each file's columns, the header checked, the rows kept with their lines.

A missing required file or column, an unknown or repeated column, a row with the wrong number of cells
or a CSV syntax error is reported as `file:line: where: what is wrong`; the cells of each row are checked
by rows.py. Used by reading.py, and by sage_changes.py for the columns a Sage change may have.
"""

from __future__ import annotations

import csv
from pathlib import Path

from .rows import Table

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


def read_csv(path: Path, columns: tuple[str, ...], problems: list[str]) -> Table:
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
