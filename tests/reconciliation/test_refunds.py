"""Refunds as GoCardless runs them: only a refund that reached the customer takes money back from a posted
payment; one whose money never reached them (cancelled, bounced, funds returned) leaves it posted, and
closes the reversal item it had opened."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from ml_connector_dagster.gocardless.rows import now_utc, refund_row
from ml_connector_dagster.gocardless.tables import ensure_tables, upsert
from ml_connector_dagster.reconciliation.refunds import evaluate_refunds
from ml_connector_dagster.settings import ReconciliationSettings
from ml_connector_dagster.store import Store

from support.gocardless_shapes import refund

SETTINGS = ReconciliationSettings("GBP", "B")
RECEIPT = {"receipt_id": "B-00001-01-ABF-GC00000001", "deposit_no": "00001"}


def _warehouse(tmp_path: Path) -> duckdb.DuckDBPyConnection:
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_tables(conn)
    return conn


def _fetched(conn: duckdb.DuckDBPyConnection, *refunds: dict[str, object]) -> None:
    upsert(conn, "gocardless_refunds", [refund_row(r, now_utc()) for r in refunds])


def _posted(store: Store, pid: str) -> None:
    store.ledger.upsert(
        pid, status="posted", amount_minor=100000, currency="GBP", home_amount="1000.00", receipt=RECEIPT
    )


def test_a_paid_refund_of_a_posted_payment_requires_a_reversal(tmp_path: Path, store: Store) -> None:
    conn = _warehouse(tmp_path)
    _posted(store, "PM1")
    _fetched(conn, refund("RF1", "PM1", 2500, "paid"))

    evaluate_refunds(conn, store, SETTINGS)

    assert (store.ledger.entry("PM1").status, store.ledger.entry("PM1").reason) == ("reversal_required", "refund")
    [item] = store.review.open_for("PM1")
    assert (item.kind, item.details["refund_id"], item.details["amount"]) == ("reversal_required", "RF1", "25.00")


@pytest.mark.parametrize("status", ["created", "pending_submission", "submitted"])
def test_a_refund_not_sent_yet_leaves_the_payment_posted_and_is_audited(
    tmp_path: Path, store: Store, status: str
) -> None:
    conn = _warehouse(tmp_path)
    _posted(store, "PM1")
    _fetched(conn, refund("RF1", "PM1", 2500, status))

    evaluate_refunds(conn, store, SETTINGS)

    assert store.ledger.entry("PM1").status == "posted"
    assert store.review.open_for("PM1") == []
    [record] = store.audit.list(subject="PM1", action="refund.recorded")
    assert (record.details["status"], "no money" in record.details["meaning"]) == (status, True)


def test_a_refund_first_seen_as_funds_returned_leaves_the_payment_posted_saying_why(
    tmp_path: Path, store: Store
) -> None:
    conn = _warehouse(tmp_path)
    _posted(store, "PM1")
    _fetched(conn, refund("RF1", "PM1", 2500, "funds_returned"))

    evaluate_refunds(conn, store, SETTINGS)

    assert store.ledger.entry("PM1").status == "posted"
    assert store.review.open_for("PM1") == []
    [record] = store.audit.list(subject="PM1", action="refund.recorded")
    assert "came back to the merchant" in record.details["meaning"]


@pytest.mark.parametrize("status", ["bounced", "funds_returned", "cancelled"])
def test_a_paid_refund_whose_money_came_back_restores_the_payment_and_closes_its_reversal_item(
    tmp_path: Path, store: Store, status: str
) -> None:
    conn = _warehouse(tmp_path)
    _posted(store, "PM1")
    _fetched(conn, refund("RF1", "PM1", 2500, "paid"))
    evaluate_refunds(conn, store, SETTINGS)
    [item] = store.review.open_for("PM1")
    _fetched(conn, refund("RF1", "PM1", 2500, status))

    evaluate_refunds(conn, store, SETTINGS)

    entry = store.ledger.entry("PM1")
    assert (entry.status, entry.reason, entry.receipt) == ("posted", None, RECEIPT)
    assert store.review.open_for("PM1") == []
    closed = next(i for i in store.review.list(status=None) if i.id == item.id)
    assert (closed.status, f"refund RF1 {status}" in (closed.note or "")) == ("resolved", True)
    [record] = store.audit.list(subject="PM1", action="payment.restored")
    assert (record.details["refund_id"], record.details["review_item"]) == ("RF1", item.id)


def test_a_refund_whose_money_came_back_leaves_a_reversal_another_refund_opened(tmp_path: Path, store: Store) -> None:
    conn = _warehouse(tmp_path)
    _posted(store, "PM1")
    _fetched(conn, refund("RF1", "PM1", 2500, "paid"))
    evaluate_refunds(conn, store, SETTINGS)
    _fetched(conn, refund("RF2", "PM1", 1000, "funds_returned"))

    evaluate_refunds(conn, store, SETTINGS)

    assert store.ledger.entry("PM1").status == "reversal_required"
    [item] = store.review.open_for("PM1")
    assert item.details["refund_id"] == "RF1"


def test_a_refund_whose_money_came_back_after_the_receipt_was_reversed_changes_nothing(
    tmp_path: Path, store: Store
) -> None:
    conn = _warehouse(tmp_path)
    _posted(store, "PM1")
    _fetched(conn, refund("RF1", "PM1", 2500, "paid"))
    evaluate_refunds(conn, store, SETTINGS)
    store.ledger.transition("PM1", ["reversal_required"], status="reversed")
    _fetched(conn, refund("RF1", "PM1", 2500, "funds_returned"))

    evaluate_refunds(conn, store, SETTINGS)

    assert store.ledger.entry("PM1").status == "reversed"
    assert store.audit.list(subject="PM1", action="payment.restored") == []
