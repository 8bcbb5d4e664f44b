"""The incremental sync's rules, with a scripted agent: watermark, overlap, upsert order, windows."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from ml_connector_dagster.sage100.model import InvoiceRecord, Stamp
from ml_connector_dagster.sage100.sync import INVOICES, SyncWindow, payments_today_above_balance, sync_table


def inv(no: str, balance: str, stamp: datetime, payments_today: str = "0.00", typ: str = "IN") -> InvoiceRecord:
    s = Stamp.of(stamp)
    return InvoiceRecord(
        "01",
        "ABF",
        no,
        typ,
        date(2026, 10, 1),
        None,
        Decimal(balance),
        Decimal(payments_today),
        s.DateUpdated,
        s.TimeUpdated,
    )


class ScriptedAgent:
    """Answers iter_open_invoices like the agent: records stamped after `since`, in stamp order."""

    def __init__(self, records: list[InvoiceRecord]) -> None:
        self.records = records
        self.asked: list[datetime | None] = []

    def iter_open_invoices(self, since: datetime | None = None) -> Iterator[InvoiceRecord]:
        self.asked.append(since)
        cut = Stamp.of(since) if since else None
        return iter(sorted((r for r in self.records if cut is None or r.stamp > cut), key=lambda r: (r.stamp, r.key)))


@pytest.fixture
def connect(tmp_path: Path):
    path = tmp_path / "w.duckdb"

    @contextlib.contextmanager
    def open_() -> Iterator[duckdb.DuckDBPyConnection]:
        conn = duckdb.connect(str(path))
        try:
            yield conn
        finally:
            conn.close()

    return open_


T0 = datetime(2026, 11, 25, 9, 0, 0)


def balances(connect) -> dict[str, Decimal]:
    with connect() as conn:
        return dict(conn.execute("SELECT InvoiceNo, Balance FROM sage_ar_invoices").fetchall())


def test_the_watermark_comes_from_the_table_less_the_overlap(connect) -> None:
    agent = ScriptedAgent([inv("1", "10.00", T0), inv("2", "20.00", T0 + timedelta(minutes=5))])
    sync_table(agent, connect, INVOICES)

    result = sync_table(agent, connect, INVOICES, SyncWindow(overlap=timedelta(minutes=2)))

    assert agent.asked[0] is None
    assert abs(agent.asked[1] - (T0 + timedelta(minutes=3))) < timedelta(milliseconds=1)
    assert (result.rows_fetched, result.rows_transferred) == (1, 0)


def test_an_older_copy_never_overwrites_a_newer_row(connect) -> None:
    sync_table(ScriptedAgent([inv("1", "5.00", T0 + timedelta(hours=1))]), connect, INVOICES)

    result = sync_table(ScriptedAgent([inv("1", "10.00", T0)]), connect, INVOICES, SyncWindow(full_refresh=True))

    assert result.rows_transferred == 0 and balances(connect) == {"1": Decimal("5.00")}


def test_a_record_seen_twice_in_one_fetch_keeps_its_newest_version(connect) -> None:
    agent = ScriptedAgent([inv("1", "10.00", T0), inv("1", "7.50", T0 + timedelta(seconds=1))])

    result = sync_table(agent, connect, INVOICES)

    assert result.rows_transferred == 1 and balances(connect) == {"1": Decimal("7.50")}


def test_a_backfill_stops_reading_past_its_last_day(connect) -> None:
    agent = ScriptedAgent(
        [
            inv("1", "1.00", datetime(2026, 11, 1, 8)),
            inv("2", "2.00", datetime(2026, 11, 2, 8)),
            inv("3", "3.00", datetime(2026, 11, 3, 8)),
        ]
    )

    result = sync_table(agent, connect, INVOICES, SyncWindow(date(2026, 11, 2), date(2026, 11, 2)))

    assert result.mode == "backfill" and balances(connect) == {"2": Decimal("2.00")}


@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"updated_to": date(2026, 11, 2)}, "updated_to needs updated_from"),
        ({"updated_from": date(2026, 11, 3), "updated_to": date(2026, 11, 2)}, "is before updated_from"),
        ({"updated_from": date(2026, 11, 3), "full_refresh": True}, "full_refresh reads everything"),
    ],
)
def test_inconsistent_windows_are_refused_with_the_reason(kwargs: dict, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        SyncWindow(**kwargs)


def test_a_table_from_an_older_layout_is_rebuilt_and_reloaded_in_full(connect) -> None:
    with connect() as conn:  # the layout before PaymentsToday was copied
        conn.execute(
            "CREATE TABLE sage_ar_invoices (ARDivisionNo VARCHAR, CustomerNo VARCHAR, InvoiceNo VARCHAR, "
            "InvoiceType VARCHAR, InvoiceDate DATE, InvoiceDueDate DATE, Balance DECIMAL(18,2), "
            "DateUpdated VARCHAR, TimeUpdated VARCHAR, synced_at TIMESTAMP)"
        )
        conn.execute("INSERT INTO sage_ar_invoices VALUES ('01','ABF','OLD','IN',NULL,NULL,5,'20261125','10.0',now())")
    agent = ScriptedAgent([inv("A", "100.00", T0)])

    result = sync_table(agent, connect, INVOICES)

    assert agent.asked == [None] and result.rows_transferred == 1
    with connect() as conn:
        assert conn.execute("SELECT InvoiceNo, PaymentsToday FROM sage_ar_invoices").fetchall() == [("A", Decimal(0))]


def test_rows_are_stamped_with_the_time_they_were_copied_in_utc(connect) -> None:
    before = datetime.now(UTC).replace(tzinfo=None)

    sync_table(ScriptedAgent([inv("1", "5.00", T0)]), connect, INVOICES)

    after = datetime.now(UTC).replace(tzinfo=None)
    with connect() as conn:
        [(synced_at,)] = conn.execute("SELECT synced_at FROM sage_ar_invoices").fetchall()
    assert before <= synced_at <= after


def test_debit_items_with_more_unposted_receipts_than_balance_are_found_credits_are_not(connect) -> None:
    records = [
        inv("1", "100.00", T0, payments_today="150.00"),
        inv("2", "100.00", T0, payments_today="100.00"),
        inv("3", "-50.00", T0, payments_today="0.00", typ="CM"),
        inv("4", "10.00", T0, payments_today="10.01", typ="FC"),
    ]
    sync_table(ScriptedAgent(records), connect, INVOICES)

    with connect() as conn:
        found = payments_today_above_balance(conn)

    assert found.total == 2
    assert found.sample == [
        "01/ABF/1/IN: PaymentsToday 150.00 > Balance 100.00",
        "01/ABF/4/FC: PaymentsToday 10.01 > Balance 10.00",
    ]
