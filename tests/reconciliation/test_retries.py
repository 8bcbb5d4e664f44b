"""Payments GoCardless retries (intelligent retries): a failure with a retry coming keeps the payment pending,
and a payment collected after a failure is posted like any other."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ml_connector_dagster.gocardless.rows import now_utc, payment_row
from ml_connector_dagster.gocardless.tables import ensure_tables, upsert
from ml_connector_dagster.reconciliation.evaluate import evaluate_payments
from ml_connector_dagster.settings import ReconciliationSettings
from ml_connector_dagster.store import Store

from support.gocardless_shapes import payment
from support.played_month import WriteBack

SETTINGS = ReconciliationSettings("GBP", "B")


def _fetched(conn: duckdb.DuckDBPyConnection, status: str, retry: bool | None) -> None:
    upsert(conn, "gocardless_payments", [payment_row(payment("PM1", status=status), "CU1", now_utc(), retry=retry)])


def test_a_payment_that_failed_with_a_retry_coming_is_pending_and_audited_so(tmp_path: Path, store: Store) -> None:
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_tables(conn)
    _fetched(conn, "failed", retry=True)

    evaluate_payments(conn, store, SETTINGS)

    assert (store.ledger.entry("PM1").status, store.ledger.entry("PM1").reason) == ("pending", None)
    [record] = store.audit.list(subject="PM1", action="payment.pending")
    assert record.details == {
        "gocardless_status": "failed",
        "cause": "retry_expected",
        "waits_for": ["GoCardless's retry of the failed collection"],
    }


def test_a_payment_that_failed_for_good_is_not_collected(tmp_path: Path, store: Store) -> None:
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_tables(conn)
    _fetched(conn, "failed", retry=False)

    evaluate_payments(conn, store, SETTINGS)

    assert (store.ledger.entry("PM1").status, store.ledger.entry("PM1").reason) == ("not_collected", "failed")


@pytest.mark.slow
def test_a_payment_collected_after_it_failed_is_posted_like_any_other(make_write_back) -> None:
    wb: WriteBack = make_write_back(payments=1, lifecycle="failed confirmed")
    [pid] = wb.ids(1)
    assert wb.store.ledger.entry(pid).status == "not_collected"

    wb.play_and_settle()

    entry = wb.store.ledger.entry(pid)
    assert (entry.status, entry.reason) == ("posted", None)
    assert len(wb.receipts(pid)) == 1
