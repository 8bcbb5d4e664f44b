"""The warehouse tables the GoCardless assets write (DuckDB), and their idempotent writes.

Money is in integer minor units, times in UTC:
  gocardless_payments      one row per payment, upserted on id
  gocardless_customers     one row per customer, upserted on id
  gocardless_refunds       one row per refund, upserted on id
  gocardless_payouts       one row per payout, upserted on id
  gocardless_payout_items  the items of each payout, replaced per payout; `amount` is DECIMAL(20,1)
                           minor units, exactly as GoCardless sends it ("45.0")
The reconciliation creates these tables too (empty) when it runs before the GoCardless assets have.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import duckdb

DDL = {
    "gocardless_payments": """
        CREATE TABLE IF NOT EXISTS gocardless_payments (
            id VARCHAR PRIMARY KEY, amount BIGINT NOT NULL, amount_refunded BIGINT, currency VARCHAR NOT NULL,
            status VARCHAR NOT NULL, charge_date DATE, reference VARCHAR, description VARCHAR, metadata JSON,
            fx_currency VARCHAR, fx_amount BIGINT, exchange_rate VARCHAR, mandate VARCHAR, customer VARCHAR,
            payout VARCHAR, created_at TIMESTAMP, fetched_at TIMESTAMP NOT NULL, last_event_id VARCHAR,
            last_event_action VARCHAR, last_event_created_at TIMESTAMP, retry_expected BOOLEAN)""",
    "gocardless_customers": """
        CREATE TABLE IF NOT EXISTS gocardless_customers (
            id VARCHAR PRIMARY KEY, email VARCHAR, given_name VARCHAR, family_name VARCHAR, company_name VARCHAR,
            metadata JSON, created_at TIMESTAMP, fetched_at TIMESTAMP NOT NULL)""",
    "gocardless_refunds": """
        CREATE TABLE IF NOT EXISTS gocardless_refunds (
            id VARCHAR PRIMARY KEY, payment VARCHAR, mandate VARCHAR, amount BIGINT NOT NULL, currency VARCHAR NOT NULL,
            status VARCHAR NOT NULL, reference VARCHAR, metadata JSON, created_at TIMESTAMP,
            fetched_at TIMESTAMP NOT NULL, last_event_id VARCHAR, last_event_action VARCHAR,
            last_event_created_at TIMESTAMP)""",
    "gocardless_payouts": """
        CREATE TABLE IF NOT EXISTS gocardless_payouts (
            id VARCHAR PRIMARY KEY, amount BIGINT NOT NULL, currency VARCHAR NOT NULL, deducted_fees BIGINT,
            arrival_date DATE, reference VARCHAR, status VARCHAR NOT NULL, fx_currency VARCHAR, fx_amount BIGINT,
            exchange_rate VARCHAR, created_at TIMESTAMP, fetched_at TIMESTAMP NOT NULL, tax_currency VARCHAR)""",
    "gocardless_payout_items": """
        CREATE TABLE IF NOT EXISTS gocardless_payout_items (
            payout VARCHAR NOT NULL, item_index INTEGER NOT NULL, type VARCHAR NOT NULL,
            amount DECIMAL(20, 1) NOT NULL, payment VARCHAR, refund VARCHAR, mandate VARCHAR, taxes JSON,
            fetched_at TIMESTAMP NOT NULL, PRIMARY KEY (payout, item_index))""",
}
COLUMNS = {
    "gocardless_payments": (
        "id",
        "amount",
        "amount_refunded",
        "currency",
        "status",
        "charge_date",
        "reference",
        "description",
        "metadata",
        "fx_currency",
        "fx_amount",
        "exchange_rate",
        "mandate",
        "customer",
        "payout",
        "created_at",
        "fetched_at",
        "last_event_id",
        "last_event_action",
        "last_event_created_at",
        "retry_expected",
    ),
    "gocardless_customers": (
        "id",
        "email",
        "given_name",
        "family_name",
        "company_name",
        "metadata",
        "created_at",
        "fetched_at",
    ),
    "gocardless_refunds": (
        "id",
        "payment",
        "mandate",
        "amount",
        "currency",
        "status",
        "reference",
        "metadata",
        "created_at",
        "fetched_at",
        "last_event_id",
        "last_event_action",
        "last_event_created_at",
    ),
    "gocardless_payouts": (
        "id",
        "amount",
        "currency",
        "deducted_fees",
        "arrival_date",
        "reference",
        "status",
        "fx_currency",
        "fx_amount",
        "exchange_rate",
        "created_at",
        "fetched_at",
        "tax_currency",
    ),
}
EVENT_COLUMNS = ("last_event_id", "last_event_action", "last_event_created_at")
# Columns added after the first release: a warehouse made before them gets them on first use (NULL).
ADDED_COLUMNS = (
    ("gocardless_payments", "retry_expected", "BOOLEAN"),
    ("gocardless_payouts", "tax_currency", "VARCHAR"),
)
# (payout, item_index, type, amount, payment, refund, mandate, taxes, fetched_at), as gocardless_payout_items
PayoutItemRow = tuple[str, int, str, Decimal, str | None, str | None, str | None, str, datetime]


def ensure_tables(conn: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL.values():
        conn.execute(statement)
    for table, column, kind in ADDED_COLUMNS:
        conn.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}")


def upsert(conn: duckdb.DuckDBPyConnection, table: str, rows: Sequence[dict[str, Any]]) -> int:
    """Insert or update rows on `id` in one transaction.

    The last_event_* columns only move forward in event time: events arrive out of order, and a backfill
    (no event) keeps what the events said. `retry_expected` moves with them, but only an event that speaks
    of a retry sets it (a `failed` event's `will_attempt_retry`, `resubmission_requested`); others keep it.
    """
    if not rows:
        return 0
    columns = COLUMNS[table]
    unique = {row["id"]: row for row in rows}  # DuckDB refuses to update one row twice in a statement
    assignments = []
    for column in columns[1:]:
        if column in EVENT_COLUMNS:
            newer = (
                f"excluded.last_event_created_at IS NOT NULL AND ({table}.last_event_created_at IS NULL "
                f"OR excluded.last_event_created_at >= {table}.last_event_created_at)"
            )
            assignments.append(f"{column} = CASE WHEN {newer} THEN excluded.{column} ELSE {table}.{column} END")
        elif column == "retry_expected":
            newer = (
                f"excluded.retry_expected IS NOT NULL AND ({table}.last_event_created_at IS NULL "
                f"OR excluded.last_event_created_at >= {table}.last_event_created_at)"
            )
            assignments.append(f"{column} = CASE WHEN {newer} THEN excluded.{column} ELSE {table}.{column} END")
        else:
            assignments.append(f"{column} = excluded.{column}")
    statement = (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "
        f"ON CONFLICT (id) DO UPDATE SET {', '.join(assignments)}"
    )
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.executemany(statement, [[row[c] for c in columns] for row in unique.values()])
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    return len(unique)


def replace_payout_items(conn: duckdb.DuckDBPyConnection, items_by_payout: dict[str, list[PayoutItemRow]]) -> int:
    """A payout's items are immutable once paid; replacing them per payout keeps re-reads idempotent."""
    if not items_by_payout:
        return 0
    conn.execute("BEGIN TRANSACTION")
    try:
        for payout_id, rows in items_by_payout.items():
            conn.execute("DELETE FROM gocardless_payout_items WHERE payout = ?", [payout_id])
            if rows:
                conn.executemany("INSERT INTO gocardless_payout_items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    return sum(len(rows) for rows in items_by_payout.values())
