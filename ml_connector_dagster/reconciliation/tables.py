"""Warehouse tables the reconciliation writes (DuckDB), created on first use."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import duckdb
import pandas as pd

from ..gocardless import tables as gocardless_tables
from ..sage100 import sync as sage_sync

DDL = {
    "payment_matches": """
        CREATE TABLE IF NOT EXISTS payment_matches (
            payment_id VARCHAR PRIMARY KEY, status VARCHAR NOT NULL, reason VARCHAR, sage_customer VARCHAR,
            gocardless_customer VARCHAR, amount BIGINT, currency VARCHAR, home_amount DECIMAL(18, 2),
            allocations JSON, rule VARCHAR, explanation VARCHAR, candidates JSON, gocardless_status VARCHAR,
            source_fetched_at TIMESTAMP, evaluated_at TIMESTAMP NOT NULL)""",
    "refund_evaluations": """
        CREATE TABLE IF NOT EXISTS refund_evaluations (
            refund_id VARCHAR PRIMARY KEY, payment_id VARCHAR, status VARCHAR, outcome VARCHAR,
            source_fetched_at TIMESTAMP, evaluated_at TIMESTAMP NOT NULL)""",
    "customer_map": """
        CREATE TABLE IF NOT EXISTS customer_map (
            gocardless_customer VARCHAR PRIMARY KEY, email VARCHAR, sage_customer VARCHAR, resolved_by VARCHAR,
            candidates JSON, metadata_synced BOOLEAN, mapped_at TIMESTAMP NOT NULL, changed_at TIMESTAMP)""",
}

#: Columns added since the first release: (table, column, type).
ADDED_COLUMNS = (("customer_map", "changed_at", "TIMESTAMP"),)

T = TypeVar("T")


def ensure_tables(conn: duckdb.DuckDBPyConnection) -> None:
    """Our tables, and the upstream ones (empty) where their asset has not run yet: same DDL as theirs."""
    gocardless_tables.ensure_tables(conn)
    for spec in (sage_sync.CUSTOMERS, sage_sync.INVOICES):
        sage_sync.ensure_table(conn, spec)
    for statement in DDL.values():
        conn.execute(statement)
    for table, column, kind in ADDED_COLUMNS:  # tables made by an older release get the column, empty
        conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")


def typed_rows(frame: pd.DataFrame, row: Callable[..., T], columns: Sequence[str]) -> Iterator[T]:
    """The frame's `columns` as `row(*cells)` (a NamedTuple of them), one per row: cells as Python objects
    (int, str, Timestamp, ...), missing ones (NaN, NA, NaT) as None."""
    cells = frame[list(columns)].astype(object)
    return (row(*values) for values in cells.where(cells.notna(), None).itertuples(index=False, name=None))
