"""GoCardless resources as warehouse rows: what the events said of a retry, and payouts' tax currency."""

from __future__ import annotations

from pathlib import Path

import duckdb

from ml_connector_dagster.gocardless.rows import now_utc, payment_row, payout_row, retry_expected
from ml_connector_dagster.gocardless.tables import ensure_tables, upsert
from ml_connector_dagster.store import Store
from ml_connector_dagster.store.inbox import InboxRow

from support.gocardless_shapes import event, payment, payout


def _claimed(store: Store, *events: dict[str, object]) -> list[InboxRow]:
    store.inbox.add(list(events), "WB1")
    return store.inbox.claim([r.seq for r in store.inbox.due()], "test")


def test_a_failed_event_that_will_attempt_a_retry_says_a_retry_is_expected(store: Store) -> None:
    rows = _claimed(store, event("EV1", "payments", "failed", "PM1", will_attempt_retry=True))

    assert retry_expected(rows) is True


def test_a_failed_event_without_a_retry_says_none_is_expected(store: Store) -> None:
    rows = _claimed(store, event("EV1", "payments", "failed", "PM1", will_attempt_retry=False))

    assert retry_expected(rows) is False


def test_a_resubmission_request_says_a_retry_is_expected(store: Store) -> None:
    rows = _claimed(store, event("EV1", "payments", "resubmission_requested", "PM1"))

    assert retry_expected(rows) is True


def test_an_event_that_says_nothing_of_a_retry_leaves_what_an_earlier_one_said(store: Store) -> None:
    failed = event("EV1", "payments", "failed", "PM1", will_attempt_retry=True)
    surcharge = {**event("EV2", "payments", "surcharge_fee_debited", "PM1"), "created_at": "2024-03-05T11:00:00.000Z"}
    rows = _claimed(store, failed, surcharge)

    assert retry_expected(rows) is True
    assert retry_expected(rows[1:]) is None


def test_a_later_read_that_says_nothing_of_a_retry_keeps_the_stored_answer(tmp_path: Path, store: Store) -> None:
    conn = duckdb.connect(str(tmp_path / "w.duckdb"))
    ensure_tables(conn)
    [failed] = _claimed(store, event("EV1", "payments", "failed", "PM1", will_attempt_retry=True))
    upsert(conn, "gocardless_payments", [payment_row(payment("PM1", status="failed"), "CU1", now_utc(), failed, True)])

    upsert(conn, "gocardless_payments", [payment_row(payment("PM1", status="failed"), "CU1", now_utc())])

    assert conn.execute("SELECT retry_expected FROM gocardless_payments").fetchall() == [(True,)]


def test_a_payout_row_keeps_its_tax_currency() -> None:
    row = payout_row(payout("PO1", 1000, tax_currency="GBP"), now_utc())

    assert row["tax_currency"] == "GBP"


def test_a_warehouse_made_before_the_new_columns_gets_them_on_first_use(tmp_path: Path) -> None:
    conn = duckdb.connect(str(tmp_path / "old.duckdb"))
    conn.execute("CREATE TABLE gocardless_payouts (id VARCHAR PRIMARY KEY, amount BIGINT NOT NULL)")
    conn.execute("CREATE TABLE gocardless_payments (id VARCHAR PRIMARY KEY, amount BIGINT NOT NULL)")

    ensure_tables(conn)

    columns = {r[0] for r in conn.execute("SELECT column_name FROM information_schema.columns").fetchall()}
    assert {"retry_expected", "tax_currency"} <= columns
