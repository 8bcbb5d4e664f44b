"""The customer map (GoCardless customer -> Sage customer) and the one write the product makes to GoCardless.

With `sync_customer_metadata` on, a GoCardless customer resolved by email gets `metadata.sage_customer`,
so its later payments resolve by metadata (rule 1) even if the email changes. GoCardless allows three
metadata keys: a customer that already has three, none of them ours, is left alone and audited.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

import duckdb
import pandas as pd

from ..gocardless.client import GoCardlessClient
from ..matching import resolve_customers
from ..store import Store
from ..store.utc import utcnow
from .tables import ensure_tables, typed_rows

METADATA_KEY = "sage_customer"
MAX_METADATA_KEYS = 3


def build_customer_map(conn: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """Resolve every GoCardless customer and replace the `customer_map` table (set-wise)."""
    ensure_tables(conn)
    gc = conn.execute("""SELECT id, email, given_name, family_name, company_name, CAST(metadata AS VARCHAR) AS metadata
        FROM gocardless_customers ORDER BY id""").df()
    sage = conn.execute("SELECT ARDivisionNo, CustomerNo, CustomerName, EmailAddress FROM sage_customers").df()
    frame = resolve_customers(gc, sage)
    frame["email"] = gc["email"].values
    frame["metadata"] = gc["metadata"].values
    table = pd.DataFrame(
        {
            "gocardless_customer": frame["gocardless_customer"],
            "email": frame["email"],
            "sage_customer": frame["sage_customer"],
            "resolved_by": frame["resolved_by"],
            "candidates": frame["candidates"].map(lambda c: json.dumps(list(c))),
            "metadata_synced": frame["resolved_by"].eq("metadata"),
            "mapped_at": utcnow().replace(tzinfo=None),
        }
    )
    conn.register("new_customer_map", table)
    # changed_at moves only when a customer's resolution (or its email) changed: held payments of that
    # customer are decided again (heal.py); a rebuild that changes nothing touches no decision.
    conn.execute("""CREATE OR REPLACE TEMP TABLE next_customer_map AS
        SELECT n.gocardless_customer, n.email, n.sage_customer, n.resolved_by, CAST(n.candidates AS JSON) AS candidates,
               n.metadata_synced, n.mapped_at,
               CASE WHEN o.gocardless_customer IS NULL OR o.sage_customer IS DISTINCT FROM n.sage_customer
                      OR o.resolved_by IS DISTINCT FROM n.resolved_by OR o.email IS DISTINCT FROM n.email
                      OR CAST(o.candidates AS VARCHAR) IS DISTINCT FROM CAST(CAST(n.candidates AS JSON) AS VARCHAR)
                    THEN n.mapped_at ELSE o.changed_at END AS changed_at
        FROM new_customer_map n LEFT JOIN customer_map o USING (gocardless_customer)""")
    conn.execute("DELETE FROM customer_map")
    conn.execute("""INSERT INTO customer_map (gocardless_customer, email, sage_customer, resolved_by, candidates,
                    metadata_synced, mapped_at, changed_at) SELECT * FROM next_customer_map""")
    conn.execute("DROP TABLE next_customer_map")
    conn.unregister("new_customer_map")
    return frame


class _ByEmail(NamedTuple):
    """A GoCardless customer resolved by email, with its metadata as stored (JSON text)."""

    gocardless_customer: str
    sage_customer: str
    metadata: str | None


def sync_metadata(
    conn: duckdb.DuckDBPyConnection, client: GoCardlessClient, store: Store, frame: pd.DataFrame, actor: str = "system"
) -> int:
    """Write metadata.sage_customer to customers resolved by email; returns how many were updated."""
    todo = frame[frame["resolved_by"] == "email"]
    updated = 0
    for row in typed_rows(todo, _ByEmail, _ByEmail._fields):  # only customers resolved by email and not yet tagged
        metadata = _metadata(row.metadata)
        if len(metadata) >= MAX_METADATA_KEYS and METADATA_KEY not in metadata:
            store.audit.append(
                "customer.metadata_skipped",
                row.gocardless_customer,
                {"reason": "customer already has 3 metadata keys", "sage_customer": row.sage_customer},
                actor=actor,
            )
            continue
        client.update_customer_metadata(row.gocardless_customer, {**metadata, METADATA_KEY: row.sage_customer})
        store.audit.append(
            "customer.metadata_synced",
            row.gocardless_customer,
            {"sage_customer": row.sage_customer, "resolved_by": "email"},
            actor=actor,
        )
        conn.execute(
            "UPDATE customer_map SET metadata_synced = true WHERE gocardless_customer = ?", [row.gocardless_customer]
        )
        updated += 1
    return updated


def _metadata(value: Any) -> dict[str, str]:
    if isinstance(value, dict):
        return dict(value)
    try:
        data = json.loads(value) if value else {}
    except (TypeError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}
