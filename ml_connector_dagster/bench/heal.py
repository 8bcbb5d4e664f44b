"""Benchmark of decisions healing: a few Sage invoices change under a large review queue.

    ml-connector bench heal --held 100000 --changed 10

Arrange, set-wise (SQL and executemany, no statement per row): a warehouse (DuckDB) and an operational store
(SQLite) in a temporary folder, as the evaluation leaves them after holding H payments: H/5 Sage customers
(one GoCardless customer each, resolved by metadata) with one open invoice of 1,000.00, five collected
payments each of amounts no invoice has (held `amount_mismatch`), their `payment_matches` and ledger rows,
one open review item and one audit record each, and the watermark of what has been decided on
(`decision_inputs_seen`). One evaluation then runs with nothing changed (it must decide nothing). Then K
customers get a new invoice of exactly one of their payments' amount, stamped newer, as a Sage poll would
write it. Timed: one `evaluate_payments`, which must decide again only those customers' held payments (5K),
match one each and hold the others again.
"""

from __future__ import annotations

import gc
import json
import resource
import shutil
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from ..reconciliation import heal
from ..reconciliation.evaluate import EvaluationSummary, evaluate_payments
from ..reconciliation.tables import ensure_tables
from ..settings import ReconciliationSettings
from ..store import Store
from ..store.audit import GENESIS, record_hash
from ..store.engine import write
from ..store.schema import audit_head, audit_log, ledger, review

__all__ = ["HELD_PER_CUSTOMER", "BenchError", "run", "seed"]

HELD_PER_CUSTOMER = 5
SETTINGS = ReconciliationSettings(home_currency="GBP", bank_code="B")
DECIDED = datetime(2026, 11, 25, 9, 0, 0)  # when everything was copied and decided (UTC, naive as the warehouse)
CHANGED = DECIDED + timedelta(days=1)  # when the next Sage poll copied the new invoices
_FIRST_CENTS = 12_345  # a customer's payments: 123.45, 133.45, ... (its invoice is 1,000.00: none adds up)
_STEP_CENTS = 1_000


class BenchError(Exception):
    """The evaluation did not do what the bench measures (the figures would mean nothing)."""


def run(held: int = 100_000, changed: int = 10, *, draw: int = 14) -> dict[str, Any]:
    """Seconds for one evaluation after `changed` invoices changed under `held` held payments, and its counts."""
    customers = held // HELD_PER_CUSTOMER  # with all their payments (the last may have fewer)
    if held < 1 or not 0 <= changed <= customers:
        raise ValueError(
            f"need held >= 1 and 0 <= changed <= held / {HELD_PER_CUSTOMER} ({customers}): "
            f"one customer per {HELD_PER_CUSTOMER} held payments"
        )
    root = Path(tempfile.mkdtemp(prefix="ml-connector-bench-heal-"))
    store = Store(f"sqlite:///{root / 'store.db'}")
    conn = duckdb.connect(str(root / "warehouse.duckdb"))
    try:
        started = time.perf_counter()
        seed(conn, store, held)
        setup_seconds = time.perf_counter() - started
        idle, idle_seconds = _timed(conn, store)
        if idle.evaluated:
            raise BenchError(f"an evaluation with nothing changed decided {idle.evaluated} payments (a bug)")
        chosen = _change_invoices(conn, customers, changed, draw)
        affected = _held_of(conn, chosen)
        gc.collect()
        summary, seconds = _timed(conn, store)
        return {
            "held": held,
            "changed_invoices": changed,
            "affected_customers": len(chosen),
            "affected_payments": affected,
            "seconds": round(seconds, 3),
            "redecided": summary.evaluated,
            "decided_again": summary.decided_again,
            "resolved_automatically": summary.resolved_automatically,
            "still_held": sum(n for r, n in summary.held_by_reason.items() if r is not None),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "setup_seconds": round(setup_seconds, 3),
            "unchanged_seconds": round(idle_seconds, 3),
        }
    finally:
        conn.close()
        store.dispose()
        shutil.rmtree(root, ignore_errors=True)


def seed(conn: duckdb.DuckDBPyConnection, store: Store, held: int) -> None:
    """The warehouse and the store as the evaluation leaves them after holding `held` payments (set-wise)."""
    _warehouse(conn, held)
    _store(store, conn)


def _timed(conn: duckdb.DuckDBPyConnection, store: Store) -> tuple[EvaluationSummary, float]:
    started = time.perf_counter()
    summary = evaluate_payments(conn, store, SETTINGS)
    return summary, time.perf_counter() - started


# --- the warehouse: Sage's copy, GoCardless's copy, the customer map and the held decisions ---------------------

_KEYS = """
    CREATE TEMP TABLE bench_customers AS
    SELECT i, 'C' || lpad(CAST(i AS VARCHAR), 7, '0') AS customer_no, 'CU' || lpad(CAST(i AS VARCHAR), 7, '0') AS gc,
           'ap@c' || CAST(i AS VARCHAR) || '.test' AS email
    FROM range(?) t(i)"""
_WAREHOUSE = [
    """INSERT INTO sage_customers (ARDivisionNo, CustomerNo, CustomerName, EmailAddress, CurrentBalance,
           CustomerStatus, DateUpdated, TimeUpdated, synced_at)
       SELECT '01', customer_no, 'Customer ' || CAST(i AS VARCHAR), email, 1000.00, 'A', '20261125', '09.000000', $t
       FROM bench_customers""",
    """INSERT INTO sage_ar_invoices (ARDivisionNo, CustomerNo, InvoiceNo, InvoiceType, InvoiceDate, InvoiceDueDate,
           Balance, PaymentsToday, DateUpdated, TimeUpdated, synced_at)
       SELECT '01', customer_no, 'I' || lpad(CAST(i AS VARCHAR), 7, '0'), 'IN', DATE '2026-10-01',
              DATE '2026-10-31', 1000.00, 0.00, '20261125', '09.000000', $t
       FROM bench_customers""",
    """INSERT INTO gocardless_customers (id, email, company_name, metadata, created_at, fetched_at)
       SELECT gc, email, 'Customer ' || CAST(i AS VARCHAR), json_object('sage_customer', '01-' || customer_no), $t, $t
       FROM bench_customers""",
    """INSERT INTO customer_map (gocardless_customer, email, sage_customer, resolved_by, candidates,
           metadata_synced, mapped_at, changed_at)
       SELECT gc, email, '01-' || customer_no, 'metadata', '[]', true, $t, $t FROM bench_customers""",
    """CREATE TEMP TABLE bench_payments AS
       SELECT 'PM' || lpad(CAST(n AS VARCHAR), 8, '0') AS id, c.gc, '01-' || c.customer_no AS sage_customer,
              CAST($first + $step * (n % $per) AS BIGINT) AS amount,
              $t - INTERVAL 30 DAY + n * INTERVAL 1 SECOND AS created
       FROM range($held) t(n) JOIN bench_customers c ON c.i = n // $per""",
    """INSERT INTO gocardless_payments (id, amount, currency, status, reference, metadata, customer, created_at,
           fetched_at)
       SELECT id, amount, 'GBP', 'confirmed', 'INV ' || id, '{}', gc, created, $t FROM bench_payments""",
    """INSERT INTO payment_matches (payment_id, status, reason, sage_customer, gocardless_customer, amount, currency,
           home_amount, allocations, rule, explanation, candidates, gocardless_status, source_fetched_at, evaluated_at)
       SELECT id, 'held', 'amount_mismatch', sage_customer, gc, amount, 'GBP', amount * 0.01, '[]', NULL,
              explanation, '[]', 'confirmed', $t, $t
       FROM (SELECT *, 'amount ' || CAST(amount * 0.01 AS DECIMAL(18, 2)) || ': no invoice named, none of that '
                        || 'balance, and no run of the oldest of 1 open invoices adds up to it' AS explanation
             FROM bench_payments)""",
]


def _warehouse(conn: duckdb.DuckDBPyConnection, held: int) -> None:
    """Amounts are integer cents; `cents * 0.01` is exact DECIMAL in DuckDB (`/ 100` would be DOUBLE)."""
    ensure_tables(conn)
    conn.execute(_KEYS, [-(-held // HELD_PER_CUSTOMER)])
    params = {"t": DECIDED, "first": _FIRST_CENTS, "step": _STEP_CENTS, "per": HELD_PER_CUSTOMER, "held": held}
    for statement in _WAREHOUSE:
        conn.execute(statement, {k: v for k, v in params.items() if f"${k}" in statement})
    heal.remember(conn, heal.window(conn))  # everything up to now has been decided on


# --- the operational store: ledger rows, open review items and audit records, in bulk -------------------------


def _store(store: Store, conn: duckdb.DuckDBPyConnection) -> None:
    held = conn.execute(
        """SELECT p.id AS payment_id, p.gc AS gocardless_customer, p.sage_customer, p.amount AS amount_minor,
                  CAST(p.amount * 0.01 AS DECIMAL(18, 2))::VARCHAR AS home_amount, m.explanation
           FROM bench_payments p JOIN payment_matches m ON m.payment_id = p.id ORDER BY p.created"""
    ).df()
    now = datetime.now(UTC)
    rows = [{str(k): v for k, v in r.items()} for r in held.to_dict("records")]
    common = {"status": "held", "reason": "amount_mismatch", "currency": "GBP", "first_seen": now, "updated_at": now}
    ledger_rows = [{**r, **common, "allocations": "[]", "gocardless_status": "confirmed"} for r in rows]
    items = [_review_item(r, now) for r in rows]
    with write(store.engine) as tx:
        tx.execute(ledger.insert(), ledger_rows)
        tx.execute(review.insert(), items)
        tx.execute(audit_log.insert(), list(_audit(rows, now)))
        tx.execute(audit_head.update().where(audit_head.c.id == 1).values(appends=audit_head.c.appends + len(rows)))


def _review_item(r: dict[str, Any], now: datetime) -> dict[str, Any]:
    details = {
        "payment_id": r["payment_id"],
        "gocardless_customer": r["gocardless_customer"],
        "amount_minor": r["amount_minor"],
        "currency": "GBP",
        "amount": r["home_amount"],
        "home_amount": r["home_amount"],
        "reason": "amount_mismatch",
        "explanation": r["explanation"],
        "sage_customer": r["sage_customer"],
        "candidates": [],
    }
    return {
        "subject": r["payment_id"],
        "kind": "held",
        "reason": "amount_mismatch",
        "details": json.dumps(details, sort_keys=True),
        "status": "open",
        "first_seen": now,
        "last_seen": now,
    }


def _audit(rows: list[dict[str, Any]], now: datetime) -> Iterator[dict[str, Any]]:
    """One `payment.held` record per payment, hash-chained as AuditLog.append_many would chain them."""
    prev, recorded_at = GENESIS, now.isoformat(timespec="microseconds")
    for r in rows:
        body = json.dumps({"reason": "amount_mismatch", "explanation": r["explanation"]}, separators=(",", ":"))
        digest = record_hash(prev, recorded_at, "system", "payment.held", r["payment_id"], body)
        yield {
            "recorded_at": recorded_at,
            "actor": "system",
            "action": "payment.held",
            "subject": r["payment_id"],
            "details": body,
            "prev_hash": prev,
            "hash": digest,
        }
        prev = digest


# --- the change: new invoices in Sage's copy, as the next poll writes them ------------------------------------


def _change_invoices(conn: duckdb.DuckDBPyConnection, customers: int, changed: int, draw: int) -> list[str]:
    """A new invoice of exactly one held payment's amount for `changed` of the first `customers` customers
    (those with all their payments), stamped CHANGED."""
    picked = np.random.default_rng(draw).choice(customers, size=changed, replace=False)
    frame = pd.DataFrame({"i": picked.astype("int64")})
    conn.register("bench_changed", frame)
    try:
        conn.execute(
            """INSERT INTO sage_ar_invoices (ARDivisionNo, CustomerNo, InvoiceNo, InvoiceType, InvoiceDate,
                   InvoiceDueDate, Balance, PaymentsToday, DateUpdated, TimeUpdated, synced_at)
               SELECT '01', c.customer_no, 'N' || lpad(CAST(c.i AS VARCHAR), 7, '0'), 'IN', DATE '2026-11-26',
                      DATE '2026-12-26', CAST($cents AS BIGINT) * 0.01, 0.00, '20261126', '09.000000', $t
               FROM bench_customers c JOIN bench_changed USING (i)""",
            {"cents": _FIRST_CENTS + _STEP_CENTS * (HELD_PER_CUSTOMER // 2), "t": CHANGED},
        )
        return [
            r[0]
            for r in conn.execute(
                "SELECT '01-' || customer_no FROM bench_customers JOIN bench_changed USING (i) ORDER BY 1"
            ).fetchall()
        ]
    finally:
        conn.unregister("bench_changed")


def _held_of(conn: duckdb.DuckDBPyConnection, sage_customers: list[str]) -> int:
    """How many held payments the changed customers have (what the evaluation should decide again)."""
    [(n,)] = conn.execute(
        "SELECT count(*) FROM payment_matches WHERE status = 'held' AND sage_customer IN (SELECT unnest(?))",
        [sage_customers],
    ).fetchall()
    return int(n)
