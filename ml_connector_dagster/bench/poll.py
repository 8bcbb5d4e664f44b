"""Benchmark of an incremental Sage poll: its cost must follow the K invoices that changed, not the N there are.

    ml-connector bench poll --invoices 1000000 --changed 1000

Arrange: a simulated company of N open invoices (N/10 customers) changed one a second until an hour ago,
already copied into a warehouse (as the previous poll would have left it); then K invoices change in Sage (a payment
keyed by hand: `adjust_invoice_balance`, which restamps them like Sage). Act: one incremental poll of
`sage100/ar_invoices` exactly as the asset runs it (`sync_table` through the agent's SOAP service over
loopback). Reported: its wall time and `rows_transferred` (rows written to the warehouse).
The WSDL is loaded before the clock starts: a running deployment has it cached.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import sqlite3
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd

from .. import warehouse
from ..sage100 import AgentClient, sync
from ..sage100.model import Stamp
from ..sandbox.sage_company import DB_FILE, SageCompany
from ..sandbox.sage_services import start_sage_stand_ins
from ..sandbox.scenario import load_scenario
from .e2e import write_matching_scenario


def run(invoices: int = 100_000, changed: int = 100, *, seed: int = 7) -> dict[str, object]:
    """Return invoices, changed, seconds, rows_transferred for one incremental poll after K changes."""
    if invoices < 1 or not 0 <= changed <= invoices:
        raise ValueError("need invoices >= 1 and 0 <= changed <= invoices")
    root = Path(tempfile.mkdtemp(prefix="ml-connector-bench-poll-"))
    try:
        scenario = load_scenario(write_matching_scenario(root / "scenario", 1))
        company = SageCompany.create(root / "sage" / DB_FILE, scenario)
        keys = _fill(company, invoices)
        wh = root / "warehouse.duckdb"
        _copy_to_warehouse(company, wh)
        rng = random.Random(seed)
        for div, cust, no, kind in rng.sample(keys, changed):
            company.adjust_invoice_balance(div, cust, no, kind, Decimal(rng.randint(1, 99_999)) / 100)
        with start_sage_stand_ins(scenario, data_dir=root / "sage") as sage:
            client = AgentClient(
                sage.agent_wsdl, username=sage.username, password=sage.password, company_code=sage.company_code
            )
            client.ping()  # WSDL parsed and connection open before timing
            started = time.perf_counter()
            result = sync.sync_table(client, lambda: _quiet(wh), sync.INVOICES)
            seconds = time.perf_counter() - started
    finally:
        shutil.rmtree(root, ignore_errors=True)
    return {
        "invoices": invoices,
        "changed": changed,
        "seconds": round(seconds, 3),
        "rows_transferred": result.rows_transferred,
    }


def _stamps(n: int, last: datetime) -> list[tuple[str, str]]:
    """Change stamps one second apart, the newest at `last`: a history in which Sage changed one invoice a
    second (so the poll's 2-minute overlap re-reads about 120 unchanged rows, whatever N is)."""
    out = []
    for i in range(n):
        moment = last - timedelta(seconds=n - 1 - i)
        seconds = moment.hour * 3600 + moment.minute * 60 + moment.second
        out.append((moment.strftime("%Y%m%d"), f"{seconds / 3600:010.7f}"))
    return out


def _fill(company: SageCompany, n: int) -> list[tuple[str, str, str, str]]:
    """N invoices over N/10 customers, written in bulk; the last change was an hour ago (the previous poll)."""
    last = datetime.now().replace(microsecond=0) - timedelta(hours=1)
    stamps = _stamps(n, last)
    yesterday = Stamp.of(last - timedelta(days=1))
    n_cust = max(n // 10, 1)
    conn = sqlite3.connect(company.path)
    try:
        conn.execute("DELETE FROM AR_OpenInvoice")
        conn.execute("DELETE FROM AR_Customer")
        conn.executemany(
            "INSERT INTO AR_Customer (ARDivisionNo, CustomerNo, CustomerName, EmailAddress, CurrentBalance, "
            "DateCreated, TimeCreated, DateUpdated, TimeUpdated) VALUES ('01', ?, ?, ?, '0.00', ?, ?, ?, ?)",
            ((f"P{c:07d}", f"Customer {c}", f"ap{c}@poll.example", *yesterday, *yesterday) for c in range(n_cust)),
        )
        keys = [("01", f"P{i % n_cust:07d}", f"{i + 1:07d}", "IN") for i in range(n)]
        conn.executemany(
            "INSERT INTO AR_OpenInvoice (ARDivisionNo, CustomerNo, InvoiceNo, InvoiceType, InvoiceDate, "
            "InvoiceDueDate, NonTaxableAmt, Balance, DateUpdated, TimeUpdated) "
            "VALUES (?, ?, ?, ?, '20261001', '20261031', ?, ?, ?, ?)",
            ((*k, f"{100 + i % 900}.00", f"{100 + i % 900}.00", *stamps[i]) for i, k in enumerate(keys)),
        )
        conn.commit()
    finally:
        conn.close()
    return keys


@contextlib.contextmanager
def _quiet(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A warehouse connection without DuckDB's progress bar (it would land in the middle of --json output)."""
    with warehouse.connect(path) as conn:
        conn.execute("SET enable_progress_bar = false")
        yield conn


def _copy_to_warehouse(company: SageCompany, path: Path) -> None:
    """The warehouse as the previous poll left it: every invoice, with Sage's stamps."""
    columns = list(sync.INVOICES.columns)
    conn = sqlite3.connect(company.path)
    try:
        frame = pd.read_sql_query(f"SELECT {', '.join(columns)} FROM AR_OpenInvoice", conn, dtype="string")
    finally:
        conn.close()
    for column in ("InvoiceDate", "InvoiceDueDate"):  # Sage's YYYYMMDD, as the agent sends ISO dates
        frame[column] = (
            frame[column].str.slice(0, 4) + "-" + frame[column].str.slice(4, 6) + "-" + frame[column].str.slice(6, 8)
        )
    with _quiet(path) as wh:
        sync.ensure_table(wh, sync.INVOICES)
        sync.upsert(wh, sync.INVOICES, frame, False, datetime.now())
