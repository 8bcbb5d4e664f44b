"""The operational store: inbox, ledger, review queue and audit log, shared by several processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
import threading
from datetime import timedelta

import pytest
import sqlalchemy as sa

from ml_connector_dagster.store import Store
from ml_connector_dagster.store.schema import SCHEMA_VERSION
from ml_connector_dagster.store.utc import utcnow

LATER = timedelta(minutes=5)


def event(n: int, action: str = "confirmed") -> dict:
    return {
        "id": f"EV{n:06d}",
        "resource_type": "payments",
        "action": action,
        "links": {"payment": f"PM{n:06d}"},
        "created_at": f"2026-11-01T00:00:{n % 60:02d}.000Z",
    }


def _write_events(url: str, start: int, count: int, batch: int, barrier) -> None:
    store = Store(url)
    barrier.wait()
    for offset in range(0, count, batch):
        store.inbox.add([event(start + i) for i in range(offset, min(count, offset + batch))], webhook_id="WB")


def test_the_schema_is_created_and_versioned(any_store: Store) -> None:
    with any_store.engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version FROM schema_version")).scalar_one()

    assert version == SCHEMA_VERSION


def test_opening_the_store_again_keeps_its_data(settings, store: Store) -> None:
    store.inbox.add([event(1)])

    assert Store(settings.database_url).inbox.max_seq() == 1


def test_sqlite_runs_in_wal_mode(store: Store) -> None:
    with store.engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


def test_an_event_is_stored_once_however_often_it_is_delivered(any_store: Store) -> None:
    first = any_store.inbox.add([event(1), event(2)], webhook_id="WB1")
    again = any_store.inbox.add([event(2), event(1), event(3)], webhook_id="WB2")

    assert (first.stored, first.duplicates) == (2, 0)
    assert (again.stored, again.duplicates, again.stored_ids) == (1, 2, ("EV000003",))
    assert [r.event_id for r in any_store.inbox.list(limit=None)] == ["EV000003", "EV000002", "EV000001"]


def test_the_inbox_records_the_resource_the_event_is_about(any_store: Store) -> None:
    any_store.inbox.add([event(7)])

    row = any_store.inbox.list()[0]

    assert (row.resource_type, row.action, row.resource_id, row.status) == (
        "payments",
        "confirmed",
        "PM000007",
        "received",
    )


def test_two_processes_writing_at_once_lose_nothing(store_url: str) -> None:
    Store(store_url)  # schema first, so both writers start on it
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(2)
    writers = [ctx.Process(target=_write_events, args=(store_url, start, 400, 20, barrier)) for start in (0, 400)]

    for w in writers:
        w.start()
    for w in writers:
        w.join(120)

    rows = Store(store_url).inbox.list(limit=None)
    assert [w.exitcode for w in writers] == [0, 0]
    assert len(rows) == 800
    assert {r.event_id for r in rows} == {f"EV{n:06d}" for n in range(800)}


def test_sequence_numbers_only_grow_and_a_reader_after_a_cursor_sees_each_row_once(any_store: Store) -> None:
    seen: list[int] = []
    cursor = 0
    for n in range(0, 50, 10):
        any_store.inbox.add([event(n + i) for i in range(10)])
        new = any_store.inbox.since(cursor)
        seen.extend(r.seq for r in new)
        cursor = max(cursor, *(r.seq for r in new))

    assert seen == sorted(seen)
    assert len(seen) == len(set(seen)) == 50


def test_a_claimed_row_is_not_claimed_by_a_second_run(any_store: Store) -> None:
    any_store.inbox.add([event(1), event(2)])
    seqs = [r.seq for r in any_store.inbox.due()]

    first = any_store.inbox.claim(seqs, "run-a")
    second = any_store.inbox.claim(seqs, "run-b")

    assert [r.event_id for r in first] == ["EV000001", "EV000002"]
    assert second == []
    assert any_store.inbox.due() == []


def test_a_failed_row_waits_with_backoff_then_is_dead_lettered(any_store: Store) -> None:
    any_store.inbox.add([event(1)])
    seq = any_store.inbox.due()[0].seq

    any_store.inbox.claim([seq], "run-a")
    first = any_store.inbox.fail(seq, "GoCardless timed out", max_attempts=2, base_delay=60)
    row = any_store.inbox.list()[0]
    assert (first, row.status, row.attempts) == ("retry", "retry", 1)
    assert row.next_attempt_at > row.received_at
    assert any_store.inbox.due() == []  # not yet due

    any_store.inbox.claim([seq], "run-b")  # an operator-forced retry
    assert any_store.inbox.fail(seq, "GoCardless timed out", max_attempts=2) == "failed"


def test_rows_of_a_run_that_died_are_released(any_store: Store) -> None:
    from datetime import timedelta

    any_store.inbox.add([event(1)])
    any_store.inbox.claim([any_store.inbox.due()[0].seq], "dead-run")

    released = any_store.inbox.release_stale(timedelta(seconds=-1))

    assert released == 1
    assert [r.event_id for r in any_store.inbox.due()] == ["EV000001"]


def test_the_ledger_keeps_one_row_per_payment(any_store: Store) -> None:
    any_store.ledger.upsert("PM1", status="pending", amount_minor=12000, currency="GBP")
    any_store.ledger.upsert("PM1", status="held", reason="amount_mismatch")

    entries = any_store.ledger.list()

    assert [(e.payment_id, e.status, e.reason, e.amount_minor) for e in entries] == [
        ("PM1", "held", "amount_mismatch", 12000)
    ]


def test_a_ledger_transition_happens_only_from_the_allowed_states(any_store: Store) -> None:
    any_store.ledger.upsert("PM1", status="posted")

    assert not any_store.ledger.transition("PM1", ["pending", "held"], status="posting")
    assert any_store.ledger.get("PM1").status == "posted"


def test_one_review_item_stays_open_per_payment_and_kind(any_store: Store) -> None:
    first = any_store.review.open_item("PM1", "held", "customer_not_found", {"n": 1})
    again = any_store.review.open_item("PM1", "held", "amount_mismatch", {"n": 2})

    assert first == again
    assert any_store.review.get(first).reason == "amount_mismatch"
    assert any_store.review.close(first, "dismissed", by="ops@example", note="duplicate")
    assert not any_store.review.close(first, "dismissed", by="ops@example")
    assert any_store.review.list() == []


def test_the_audit_chain_verifies(any_store: Store) -> None:
    for n in range(5):
        any_store.audit.append("payment.fetched", f"PM{n}", {"n": n}, actor="test")

    result = any_store.audit.verify()

    assert (result.ok, result.records) == (True, 5)
    assert [r.subject for r in any_store.audit.list(subject="PM3")] == ["PM3"]


def test_the_audit_log_refuses_updates_and_deletes(any_store: Store) -> None:
    any_store.audit.append("payment.fetched", "PM1", {})

    with any_store.engine.begin() as conn, pytest.raises(sa.exc.DatabaseError, match="append-only"):
        conn.execute(sa.text("UPDATE audit_log SET actor = 'mallory'"))
    with any_store.engine.begin() as conn, pytest.raises(sa.exc.DatabaseError, match="append-only"):
        conn.execute(sa.text("DELETE FROM audit_log"))


def _tamper(settings, sql: str) -> None:
    """Edit the database around the triggers, as an attacker with file access could."""
    path = settings.database_url.removeprefix("sqlite:///")
    conn = sqlite3.connect(path)
    conn.executescript(f"DROP TRIGGER audit_log_no_update; DROP TRIGGER audit_log_no_delete; {sql}")
    conn.close()


def test_verify_detects_an_edited_record(settings, store: Store) -> None:
    for _n in range(3):
        store.audit.append("cash_receipt.created", "PM1", {"amount": "100.00"})
    _tamper(settings, 'UPDATE audit_log SET details = \'{"amount":"1.00"}\' WHERE seq = 2;')

    result = store.audit.verify()

    assert (result.ok, result.first_bad_seq) == (False, 2)


def test_verify_detects_a_deleted_record(settings, store: Store) -> None:
    for n in range(3):
        store.audit.append("cash_receipt.created", f"PM{n}", {})
    _tamper(settings, "DELETE FROM audit_log WHERE seq = 3;")

    result = store.audit.verify()

    assert not result.ok
    assert "deleted" in result.problem


def test_many_ledger_rows_are_written_in_one_go_if_their_status_is_as_expected(any_store: Store) -> None:
    any_store.ledger.upsert("PM1", status="pending", amount_minor=100)
    any_store.ledger.upsert("PM3", status="posted", amount_minor=300)

    written = any_store.ledger.apply_many(
        [
            {"payment_id": "PM1", "expected_status": "pending", "status": "held", "reason": "amount_mismatch"},
            {"payment_id": "PM2", "expected_status": None, "status": "pending"},
            {"payment_id": "PM3", "expected_status": "matched", "status": "not_collected"},
        ]
    )

    assert written == {"PM1", "PM2"}
    assert any_store.ledger.statuses(["PM1", "PM2", "PM3", "PM4"]) == {"PM1": "held", "PM2": "pending", "PM3": "posted"}
    assert any_store.ledger.get("PM1").amount_minor == 100


def test_an_operator_requeues_a_failed_event_with_fresh_attempts(any_store: Store) -> None:
    any_store.inbox.add([event(1)])
    seq = any_store.inbox.due()[0].seq
    any_store.inbox.claim([seq], "run-a")
    any_store.inbox.fail(seq, "boom", max_attempts=1)

    assert any_store.inbox.requeue("EV000001")
    assert [(r.event_id, r.attempts) for r in any_store.inbox.due()] == [("EV000001", 0)]
    assert not any_store.inbox.requeue("EV000001")  # only failed events are requeued


def test_a_payment_claimed_for_posting_is_not_taken_by_a_second_owner_while_its_lease_lasts(any_store: Store) -> None:
    any_store.ledger.upsert("PM1", status="matched")
    assert any_store.ledger.claim("PM1", "matched", "run-a", utcnow() + LATER)

    taken = any_store.ledger.claim("PM1", "posting", "run-b", utcnow() + LATER)

    entry = any_store.ledger.get("PM1")
    assert not taken
    assert (entry.status, entry.claimed_by) == ("posting", "run-a")


def test_a_claim_whose_lease_expired_is_taken_over(any_store: Store) -> None:
    any_store.ledger.upsert("PM1", status="matched")
    any_store.ledger.claim("PM1", "matched", "run-that-died", utcnow() - timedelta(seconds=1))

    taken = any_store.ledger.claim("PM1", "posting", "run-b", utcnow() + LATER)

    assert taken
    assert any_store.ledger.get("PM1").claimed_by == "run-b"


def test_a_claim_is_taken_only_from_the_status_the_claimer_saw(any_store: Store) -> None:
    any_store.ledger.upsert("PM1", status="posted")

    assert not any_store.ledger.claim("PM1", "matched", "run-a", utcnow() + LATER)
    assert any_store.ledger.get("PM1").status == "posted"


def test_only_the_owner_renews_and_finishes_its_claim(any_store: Store) -> None:
    any_store.ledger.upsert("PM1", status="matched")
    any_store.ledger.claim("PM1", "matched", "run-a", utcnow() + LATER)

    renewed_by_other = any_store.ledger.renew(["PM1"], "run-b", utcnow() + LATER)
    finished_by_other = any_store.ledger.finish("PM1", "run-b", status="posted")
    renewed = any_store.ledger.renew(["PM1"], "run-a", utcnow() + LATER)
    finished = any_store.ledger.finish("PM1", "run-a", status="posted")

    entry = any_store.ledger.get("PM1")
    assert (renewed_by_other, finished_by_other, renewed, finished) == (set(), False, {"PM1"}, True)
    assert (entry.status, entry.claimed_by, entry.lease_until) == ("posted", None, None)


def test_owners_racing_for_the_same_payments_each_take_a_payment_at_most_once(any_store: Store) -> None:
    ids = [f"PM{n}" for n in range(40)]
    for pid in ids:
        any_store.ledger.upsert(pid, status="matched")
    start = threading.Barrier(2)
    taken: dict[str, list[str]] = {"run-a": [], "run-b": []}

    def race(owner: str) -> None:
        start.wait(10)
        taken[owner] = [pid for pid in ids if any_store.ledger.claim(pid, "matched", owner, utcnow() + LATER)]

    racers = [threading.Thread(target=race, args=(owner,)) for owner in taken]
    for racer in racers:
        racer.start()
    for racer in racers:
        racer.join(60)

    assert sorted(taken["run-a"] + taken["run-b"]) == sorted(ids)
    assert {any_store.ledger.get(pid).claimed_by for pid in taken["run-a"]} <= {"run-a"}


def test_a_store_at_version_1_gains_the_claim_columns_and_keeps_its_rows(store_url: str) -> None:
    Store(store_url).ledger.upsert("PM1", status="posting", amount_minor=100)
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:  # back to the version-1 ledger, as a store written by an older release
        for column in ("claimed_by", "lease_until", "request"):
            conn.exec_driver_sql(f"ALTER TABLE ledger DROP COLUMN {column}")
        conn.exec_driver_sql("UPDATE schema_version SET version = 1")
    engine.dispose()

    store = Store(store_url)

    with store.engine.connect() as conn:
        version = conn.execute(sa.text("SELECT version FROM schema_version")).scalar_one()
    assert version == SCHEMA_VERSION == 3
    assert (store.ledger.get("PM1").status, store.ledger.get("PM1").amount_minor) == ("posting", 100)
    assert store.ledger.claim("PM1", "posting", "run-b", utcnow() + LATER)  # no lease: nobody is working on it


def test_a_store_at_version_2_gains_posted_at_from_the_last_update_of_its_written_payments(store_url: str) -> None:
    old = Store(store_url)
    old.ledger.upsert("PM1", status="posted", sage_customer="01-ABF")
    old.ledger.upsert("PM2", status="matched", sage_customer="01-ABF")
    old.dispose()
    engine = sa.create_engine(store_url)
    with engine.begin() as conn:  # back to the version-2 ledger, as a store written by an older release
        conn.exec_driver_sql("DROP INDEX ix_ledger_sage_customer")
        conn.exec_driver_sql("ALTER TABLE ledger DROP COLUMN posted_at")
        conn.exec_driver_sql("UPDATE schema_version SET version = 2")
    engine.dispose()

    store = Store(store_url)

    posted, matched = store.ledger.entry("PM1"), store.ledger.entry("PM2")
    assert (posted.posted_at, matched.posted_at) == (posted.updated_at, None)
    with store.engine.connect() as conn:
        indexes = {index["name"] for index in sa.inspect(conn).get_indexes("ledger")}
    assert "ix_ledger_sage_customer" in indexes
    store.dispose()


def test_applied_lists_a_customers_unwritten_payments_and_those_written_since_a_time(any_store: Store) -> None:
    now = utcnow()
    rows = {
        "PMMATCHED": {"status": "matched"},
        "PMPOSTING": {"status": "posting", "request": {"lines": []}},
        "PMNEW": {"status": "posted", "posted_at": now},
        "PMOLD": {"status": "posted", "posted_at": now - LATER},
        "PMBACK": {"status": "reversal_required", "posted_at": now},
        "PMHELD": {"status": "held"},
        "PMOTHER": {"status": "matched", "sage_customer": "01-XYZ"},
    }
    for pid, values in rows.items():
        any_store.ledger.upsert(pid, **{"sage_customer": "01-ABF", "allocations": [], **values})

    applied = any_store.ledger.applied(["01-ABF"], written_since=now - timedelta(minutes=1))

    assert sorted(r.payment_id for r in applied) == ["PMBACK", "PMMATCHED", "PMNEW", "PMPOSTING"]
    assert {r.payment_id: r.posted_at for r in applied}["PMNEW"] == now
    assert sorted(r.payment_id for r in any_store.ledger.applied(["01-ABF"], None)) == ["PMMATCHED", "PMPOSTING"]
