"""Whether Sage's AR changed since the warehouse copy: the cheap question the `sage100_poll` sensor asks.

For each copied table, one page of the agent's list with `updatedSince` = the table's watermark (the newest
DateUpdated/TimeUpdated stored; the agent's `updatedSince` is exclusive). On a quiet system that page is
empty; when something changed it holds the first changed records, and the poll run reads them all. A
receipt someone keys in Sage raises its invoices' PaymentsToday, which restamps them, so it shows here too.
No contract change was needed: the existing ListCustomers/ListOpenInvoices calls answer it in one request.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import duckdb

from .agent_client import AgentClient
from .model import Stamp
from .sync import CUSTOMERS, INVOICES, TableSpec, watermark

ReadOnly = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]  # a read-only warehouse connection


@dataclass(frozen=True)
class Change:
    """A copied table with records newer than its watermark: the first such record's stamp."""

    table: str
    watermark: Stamp | None
    first_newer: Stamp


def changed_tables(client: AgentClient, connect: ReadOnly) -> list[Change]:
    """The copied tables Sage has newer records for; empty on a quiet system. `connect` may be read-only:
    a table not created yet has no watermark."""
    changes = []
    for spec in (CUSTOMERS, INVOICES):
        mark = _watermark(connect, spec)
        since = mark.to_datetime() if mark else None
        page = client.list_customers(since) if spec is CUSTOMERS else client.list_open_invoices(since)
        newer = [r.stamp for r in page.items if mark is None or r.stamp > mark]
        if newer:
            changes.append(Change(spec.name, mark, min(newer)))
    return changes


def _watermark(connect: ReadOnly, spec: TableSpec) -> Stamp | None:
    with connect() as conn:
        exists = conn.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE table_name = ? AND schema_name = 'main'", [spec.name]
        ).fetchone()
        return watermark(conn, spec) if exists and exists[0] else None
