"""Which held payments to decide again because what held them changed (set-wise, in the warehouse).

A held decision waits for Sage or GoCardless data: the Sage customer's invoices (a new invoice, a balance or
PaymentsToday that moved, a journal update), the Sage customer record, or the GoCardless customer's
resolution to a Sage customer (an email corrected on either side, metadata written back). The payment's own
changes (status, FX amount, retry) reach the evaluation through its fetch time already.

Each copy of Sage and the customer map stamps the rows it writes (`synced_at`, `changed_at`); the
evaluation remembers up to which stamp it has looked (`decision_inputs_seen`). Only rows stamped since are
read, and only the held payments of the customers they touch are returned: the cost grows with the
change, not with the queue.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import duckdb
import pandas as pd

#: Each input the held decisions read, with the column that stamps when its row was last written.
SOURCES = {"sage_ar_invoices": "synced_at", "sage_customers": "synced_at", "customer_map": "changed_at"}

DDL = """CREATE TABLE IF NOT EXISTS decision_inputs_seen (source VARCHAR PRIMARY KEY, seen_to TIMESTAMP NOT NULL)"""

_SEEN_LIMIT = 8  # invoice numbers named per customer in a change's words


@dataclass(frozen=True)
class Window:
    """The stamps looked at before (None: never) and the newest stamp of each source now."""

    since: dict[str, datetime | None]
    to: dict[str, datetime | None]

    def is_first(self) -> bool:
        return all(v is None for v in self.since.values())


def window(conn: duckdb.DuckDBPyConnection) -> Window:
    conn.execute(DDL)
    seen = dict(conn.execute("SELECT source, seen_to FROM decision_inputs_seen").fetchall())
    newest = {
        source: conn.execute(f"SELECT max({column}) FROM {source}").fetchone()[0]  # type: ignore[index]
        for source, column in SOURCES.items()
    }
    return Window({s: seen.get(s) for s in SOURCES}, newest)


def remember(conn: duckdb.DuckDBPyConnection, looked_at: Window) -> None:
    """Record that the changes up to `looked_at.to` have been decided on (after the decisions are stored)."""
    conn.execute(DDL)
    rows = [(s, t) for s, t in looked_at.to.items() if t is not None]
    if rows:
        conn.executemany("INSERT OR REPLACE INTO decision_inputs_seen VALUES (?, ?)", rows)


def affected(conn: duckdb.DuckDBPyConnection, looked_at: Window) -> pd.DataFrame:
    """Held payments (payment_matches status `held`) whose inputs changed in the window, with the change in
    words: columns `payment_id`, `change`. The first look ever (no stamps remembered) returns none: every
    payment is decided on what it finds then."""
    if looked_at.is_first():
        return pd.DataFrame({"payment_id": pd.Series(dtype="string"), "change": pd.Series(dtype="string")})
    params: list[datetime] = []
    for source in SOURCES:  # the SQL reads them in this order: (since, to] per source
        params += [looked_at.since[source] or datetime.min, looked_at.to[source] or datetime.min]
    return conn.execute(_AFFECTED_SQL, params).df()


_AFFECTED_SQL = f"""
WITH invoice_changes AS (
    SELECT ARDivisionNo || '-' || CustomerNo AS sage_customer,
           'Sage invoices of ' || ARDivisionNo || '-' || CustomerNo || ' changed ('
             || array_to_string(list(InvoiceNo ORDER BY InvoiceNo)[1:{_SEEN_LIMIT}], ', ')
             || CASE WHEN count(*) > {_SEEN_LIMIT} THEN ', ...' ELSE '' END || ')' AS change
    FROM sage_ar_invoices WHERE synced_at > ? AND synced_at <= ?
    GROUP BY ARDivisionNo, CustomerNo
),
customer_changes AS (
    SELECT ARDivisionNo || '-' || CustomerNo AS sage_customer, lower(trim(EmailAddress)) AS email,
           'Sage customer ' || ARDivisionNo || '-' || CustomerNo || '''s record changed' AS change
    FROM sage_customers WHERE synced_at > ? AND synced_at <= ?
),
map_changes AS (
    SELECT gocardless_customer,
           'GoCardless customer ' || gocardless_customer || CASE WHEN sage_customer IS NULL
             THEN ' resolves to no Sage customer now' ELSE ' now resolves to Sage customer ' || sage_customer
             || ' (by ' || resolved_by || ')' END AS change
    FROM customer_map WHERE changed_at > ? AND changed_at <= ?
),
held AS (SELECT payment_id, sage_customer, gocardless_customer FROM payment_matches WHERE status = 'held'),
gc AS (  -- GoCardless customers whose resolution a changed Sage customer may change: same email, or named
    SELECT c.id AS gocardless_customer, x.change
    FROM gocardless_customers c JOIN customer_changes x
      ON lower(trim(c.email)) = x.email OR json_extract_string(c.metadata, '$.sage_customer') = x.sage_customer
    WHERE c.id IN (SELECT gocardless_customer FROM held)
),
hits AS (
    SELECT h.payment_id, i.change FROM held h JOIN invoice_changes i USING (sage_customer)
    UNION ALL SELECT h.payment_id, x.change FROM held h JOIN customer_changes x USING (sage_customer)
    UNION ALL SELECT h.payment_id, m.change FROM held h JOIN map_changes m USING (gocardless_customer)
    UNION ALL SELECT h.payment_id, g.change FROM held h JOIN gc g USING (gocardless_customer)
)
SELECT payment_id, string_agg(DISTINCT change, '; ' ORDER BY change) AS change FROM hits GROUP BY payment_id
ORDER BY payment_id
"""
