"""Incremental copies of Sage's AR customers and open invoices into DuckDB (no Dagster here).

The watermark is the newest (DateUpdated, TimeUpdated) already in the warehouse table - not Dagster
metadata, which would be lost with the instance. Each poll asks the agent for records stamped after the
watermark minus a small overlap (Sage's clock, slow transactions), then upserts in one SQL statement only
the rows that are new or newer than the stored copy: a poll with no changes writes nothing, and a repeated
poll is harmless. Money crosses into DuckDB as decimal strings cast to DECIMAL(18,2), never as floats.

Windows:
- incremental (default): since the watermark minus the overlap;
- backfill: records stamped on dates `updated_from`..`updated_to` (inclusive), e.g. after restoring Sage;
- full refresh: everything, and rows Sage no longer has (purged invoices) are deleted.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, NamedTuple

import duckdb
import pandas as pd

from ..warehouse import count
from .agent_client import AgentClient
from .model import Stamp

Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]


@dataclass(frozen=True)
class TableSpec:
    """A warehouse table fed from one agent list: its columns (Sage names), SQL types and key."""

    name: str
    columns: dict[str, str]  # column -> DuckDB type
    key: tuple[str, ...]
    fetch: Callable[[AgentClient, datetime | None], Iterable[Any]]
    row: Callable[[Any], tuple[str | None, ...]]

    def ddl(self) -> str:
        cols = ", ".join(
            f"{c} {t}{' NOT NULL' if c in self.key or c.startswith(('Date', 'Time')) else ''}"
            for c, t in self.columns.items()
        )
        return (
            f"CREATE TABLE IF NOT EXISTS {self.name} ({cols}, synced_at TIMESTAMP NOT NULL, "
            f"PRIMARY KEY ({', '.join(self.key)}))"
        )


def _text(value: Any) -> str | None:
    return None if value is None else str(value)


CUSTOMERS = TableSpec(
    name="sage_customers",
    columns={
        "ARDivisionNo": "VARCHAR",
        "CustomerNo": "VARCHAR",
        "CustomerName": "VARCHAR",
        "EmailAddress": "VARCHAR",
        "CurrentBalance": "DECIMAL(18,2)",
        "CustomerStatus": "VARCHAR",
        "DateUpdated": "VARCHAR",
        "TimeUpdated": "VARCHAR",
    },
    key=("ARDivisionNo", "CustomerNo"),
    fetch=lambda client, since: client.iter_customers(since),
    row=lambda r: (
        r.ARDivisionNo,
        r.CustomerNo,
        r.CustomerName,
        r.EmailAddress,
        _text(r.CurrentBalance),
        r.CustomerStatus,
        r.DateUpdated,
        r.TimeUpdated,
    ),
)

INVOICES = TableSpec(
    name="sage_ar_invoices",
    columns={
        "ARDivisionNo": "VARCHAR",
        "CustomerNo": "VARCHAR",
        "InvoiceNo": "VARCHAR",
        "InvoiceType": "VARCHAR",
        "InvoiceDate": "DATE",
        "InvoiceDueDate": "DATE",
        "Balance": "DECIMAL(18,2)",
        "PaymentsToday": "DECIMAL(18,2)",
        "DateUpdated": "VARCHAR",
        "TimeUpdated": "VARCHAR",
    },
    key=("ARDivisionNo", "CustomerNo", "InvoiceNo", "InvoiceType"),
    fetch=lambda client, since: client.iter_open_invoices(since),
    row=lambda r: (
        r.ARDivisionNo,
        r.CustomerNo,
        r.InvoiceNo,
        r.InvoiceType,
        _text(r.InvoiceDate),
        _text(r.InvoiceDueDate),
        _text(r.Balance),
        _text(r.PaymentsToday),
        r.DateUpdated,
        r.TimeUpdated,
    ),
)


@dataclass(frozen=True)
class SyncWindow:
    """Which records to ask for; the default is an incremental poll."""

    updated_from: date | None = None
    updated_to: date | None = None
    full_refresh: bool = False
    overlap: timedelta = timedelta(minutes=2)

    def __post_init__(self) -> None:
        if self.updated_to and not self.updated_from:
            raise ValueError("updated_to needs updated_from: give the first day of the backfill too")
        if self.updated_from and self.updated_to and self.updated_to < self.updated_from:
            raise ValueError(f"updated_to {self.updated_to} is before updated_from {self.updated_from}")
        if self.full_refresh and self.updated_from:
            raise ValueError("full_refresh reads everything; leave updated_from/updated_to empty")
        if self.overlap < timedelta(0):
            raise ValueError("overlap must not be negative")

    @property
    def mode(self) -> str:
        return "full_refresh" if self.full_refresh else "backfill" if self.updated_from else "incremental"

    def keeps(self, stamp: Stamp) -> bool:
        day = stamp.DateUpdated
        return (self.updated_from is None or day >= self.updated_from.strftime("%Y%m%d")) and (
            self.updated_to is None or day <= self.updated_to.strftime("%Y%m%d")
        )

    def past_end(self, stamp: Stamp) -> bool:
        return self.updated_to is not None and stamp.DateUpdated > self.updated_to.strftime("%Y%m%d")


@dataclass(frozen=True)
class SyncResult:
    table: str
    mode: str
    since: datetime | None
    rows_fetched: int
    rows_transferred: int
    rows_deleted: int
    watermark: Stamp | None
    changed_keys: list[str] = field(default_factory=list)

    def summary(self) -> str:
        since = self.since.isoformat(sep=" ") if self.since else "the beginning"
        return (
            f"{self.table}: {self.mode} since {since}: fetched {self.rows_fetched}, "
            f"transferred {self.rows_transferred}, deleted {self.rows_deleted}"
        )


def _utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def sync_table(
    client: AgentClient,
    connect: Connect,
    spec: TableSpec,
    window: SyncWindow = SyncWindow(),
    now: Callable[[], datetime] = _utcnow,
) -> SyncResult:
    """Fetch what changed and upsert it; the DuckDB file is held only for the short reads and the write.

    Each row written is stamped `synced_at`: our clock (UTC, naive as the warehouse keeps times) once the
    records were fetched. A cash receipt the product recorded posted after that is not in the copy yet
    (reconciliation/open_amounts.py counts it against the invoice until the next poll rewrites the row).
    """
    with connect() as conn:
        ensure_table(conn, spec)
        since = _since(conn, spec, window)
    frame = fetch_frame(client, spec, since, window)
    with connect() as conn:
        transferred, deleted, keys = upsert(conn, spec, frame, window.full_refresh, now())
        mark = watermark(conn, spec)
    return SyncResult(spec.name, window.mode, since, len(frame), transferred, deleted, mark, keys)


def ensure_table(conn: duckdb.DuckDBPyConnection, spec: TableSpec) -> None:
    """Create the table; one from an older layout (a column missing) is rebuilt, so the next poll, finding
    no watermark, reloads it in full from Sage (it is a copy: nothing is lost)."""
    columns = [
        r[0]
        for r in conn.execute(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = ? AND schema_name = 'main'", [spec.name]
        ).fetchall()
    ]
    if columns and columns != [*spec.columns, "synced_at"]:
        conn.execute(f"DROP TABLE {spec.name}")
    conn.execute(spec.ddl())


def watermark(conn: duckdb.DuckDBPyConnection, spec: TableSpec) -> Stamp | None:
    """The newest change stamp stored (both parts are fixed width, so text order is time order)."""
    row = conn.execute(
        f"SELECT DateUpdated, TimeUpdated FROM {spec.name} ORDER BY DateUpdated DESC, TimeUpdated DESC LIMIT 1"
    ).fetchone()
    return Stamp(*row) if row else None


def _since(conn: duckdb.DuckDBPyConnection, spec: TableSpec, window: SyncWindow) -> datetime | None:
    if window.full_refresh:
        return None
    if window.updated_from:  # exclusive on the agent's side: start just before the first day
        return datetime.combine(window.updated_from, time.min) - timedelta(seconds=1)
    mark = watermark(conn, spec)
    return None if mark is None else mark.to_datetime() - window.overlap


def fetch_frame(client: AgentClient, spec: TableSpec, since: datetime | None, window: SyncWindow) -> pd.DataFrame:
    """All records the agent returns for the window, as strings (exact; DuckDB casts them)."""
    rows = [spec.row(r) for r in _in_window(spec.fetch(client, since), window)]
    return pd.DataFrame(rows, columns=list(spec.columns), dtype="string")


def _in_window(records: Iterable[Any], window: SyncWindow) -> Iterator[Any]:
    for record in records:
        if window.past_end(record.stamp):
            return  # the agent sends records in stamp order: nothing later can fall inside the window
        if window.keeps(record.stamp):
            yield record


def upsert(
    conn: duckdb.DuckDBPyConnection, spec: TableSpec, frame: pd.DataFrame, full_refresh: bool, synced_at: datetime
) -> tuple[int, int, list[str]]:
    """Write rows that are new or newer than the stored copy; returns (written, deleted, sample of keys)."""
    key_match = " AND ".join(f"t.{k} = s.{k}" for k in spec.key)
    casts = ", ".join(f"CAST({c} AS {t}) AS {c}" for c, t in spec.columns.items())
    stamp_of = "({a}.DateUpdated, {a}.TimeUpdated)"
    conn.register("incoming", frame)
    try:
        conn.execute("BEGIN TRANSACTION")
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE staged AS SELECT {casts} FROM incoming "
            f"QUALIFY row_number() OVER (PARTITION BY {', '.join(spec.key)} "
            "ORDER BY DateUpdated DESC, TimeUpdated DESC) = 1"
        )
        conn.execute(
            f"CREATE OR REPLACE TEMP TABLE changed AS SELECT s.* FROM staged s LEFT JOIN {spec.name} t ON {key_match} "
            f"WHERE t.{spec.key[0]} IS NULL OR {stamp_of.format(a='s')} > {stamp_of.format(a='t')}"
        )
        written = count(conn, "SELECT count(*) FROM changed")
        conn.execute(f"INSERT OR REPLACE INTO {spec.name} SELECT *, ? FROM changed", [synced_at])
        deleted = 0
        if full_refresh:
            deleted = count(
                conn, f"DELETE FROM {spec.name} t WHERE NOT EXISTS (SELECT 1 FROM staged s WHERE {key_match})"
            )
        keys = [
            r[0]
            for r in conn.execute(
                f"SELECT concat_ws('/', {', '.join(spec.key)}) FROM changed ORDER BY ALL LIMIT 50"
            ).fetchall()
        ]
        conn.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            conn.execute("ROLLBACK")
        raise
    finally:
        conn.unregister("incoming")
    return written, deleted, keys


# --- checks ---------------------------------------------------------------------------------------------------------


def duplicate_keys(conn: duckdb.DuckDBPyConnection, spec: TableSpec) -> int:
    ensure_table(conn, spec)
    return count(
        conn, f"SELECT count(*) FROM (SELECT 1 FROM {spec.name} GROUP BY {', '.join(spec.key)} HAVING count(*) > 1)"
    )


CREDIT_TYPES = ("CM", "PP", "PY")  # credit memos, prepayments and payments carry credit (negative) balances


def negative_balances(conn: duckdb.DuckDBPyConnection) -> list[str]:
    """Debit items (invoices, debit memos, finance charges...) whose Balance is below zero."""
    ensure_table(conn, INVOICES)
    rows = conn.execute(
        f"SELECT concat_ws('/', ARDivisionNo, CustomerNo, InvoiceNo, InvoiceType) || ' ' || Balance "
        f"FROM {INVOICES.name} WHERE Balance < 0 AND InvoiceType NOT IN {CREDIT_TYPES} ORDER BY ALL LIMIT 50"
    ).fetchall()
    return [r[0] for r in rows]


class Findings(NamedTuple):
    """What a check found: how many, and the first few (named for a person to look up)."""

    total: int
    sample: list[str]


def payments_today_above_balance(conn: duckdb.DuckDBPyConnection, limit: int = 50) -> Findings:
    """Debit items (invoices, debit memos, finance charges...) whose PaymentsToday - receipts entered, not
    posted by the journal update - is above their Balance: more applied than is owed, which Sage's own
    entry screen warns about. Someone should look before the journal update posts it."""
    ensure_table(conn, INVOICES)
    rows = conn.execute(
        f"SELECT concat_ws('/', ARDivisionNo, CustomerNo, InvoiceNo, InvoiceType) || ': PaymentsToday ' "
        f"|| PaymentsToday || ' > Balance ' || Balance, count(*) OVER () FROM {INVOICES.name} "
        f"WHERE PaymentsToday > Balance AND InvoiceType NOT IN {CREDIT_TYPES} ORDER BY 1 LIMIT ?",
        [limit],
    ).fetchall()
    return Findings(int(rows[0][1]) if rows else 0, [r[0] for r in rows])


__all__ = [
    "CUSTOMERS",
    "INVOICES",
    "Findings",
    "SyncResult",
    "SyncWindow",
    "TableSpec",
    "duplicate_keys",
    "negative_balances",
    "payments_today_above_balance",
    "sync_table",
    "watermark",
]
