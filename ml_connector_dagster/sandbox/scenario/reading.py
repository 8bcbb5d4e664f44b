"""Scenario folders read and checked whole: company.json and the CSV files, then what lies between rows.

Every problem is reported as `file:line: column: what is wrong`, so a user can fix a scenario without
reading code; nothing is started from a scenario with a problem, and nothing in it is ignored: a file,
column or company.json key the format does not know is a problem too (a misspelt name would otherwise
silently change the play). Here the folder is read in order: company.json (company_json.py), the CSV
files (csv_files.py), each row's cells (rows.py), then what lies between rows (between_rows.py); the
records are in model.py. Used by the stand-ins, the demo, tests and benchmarks.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from .between_rows import check_changes, check_references, check_refund_starts
from .company_json import COMPANY_FILE, read_company
from .csv_files import FILES, read_csv
from .model import Company, Scenario, ScenarioError
from .rows import Validator, gc_customer, gc_mandate, gc_payment, gc_refund, sage_change, sage_customer, sage_invoice

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
    company = read_company(root / COMPANY_FILE, problems)
    tables = {name: read_csv(root / name, columns, problems) for name, columns in FILES.items()}
    v = Validator(problems)
    sage_customers = tuple(v.rows(tables["sage_customers.csv"], sage_customer))
    invoices = tuple(v.rows(tables["sage_invoices.csv"], sage_invoice))
    gc_customers = tuple(v.rows(tables["gocardless_customers.csv"], gc_customer))
    mandates = tuple(v.rows(tables["gocardless_mandates.csv"], gc_mandate))
    payments = tuple(v.rows(tables["gocardless_payments.csv"], gc_payment))
    refunds = v.numbered(tables["gocardless_refunds.csv"], gc_refund)
    changes = tuple(v.rows(tables["sage_changes.csv"], sage_change))
    check_references(tables, problems)
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
    check_refund_starts(scenario, refunds, problems)
    check_changes(scenario, problems)
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
