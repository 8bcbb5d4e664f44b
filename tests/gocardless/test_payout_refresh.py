"""Payouts are read again until final: paid, with the FX rate confirmed if converted, and tax amounts in the
payout's tax currency; the real client reads them over HTTP from a GoCardless-shaped API."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from ml_connector_dagster.gocardless.client import GoCardlessClient, RetryPolicy
from ml_connector_dagster.gocardless.sync import refresh_unsettled_payouts, write_payouts

from support.gocardless_payouts_api import PayoutsApi
from support.gocardless_shapes import payout, payout_item, vat

NOW = datetime(2024, 3, 9, tzinfo=UTC)
FX_PENDING = {"estimated_exchange_rate": "0.8561", "exchange_rate": None, "fx_amount": None, "fx_currency": "GBP"}
FX_CONFIRMED = {
    "estimated_exchange_rate": None,
    "exchange_rate": "0.8553000000",
    "fx_amount": 85530,
    "fx_currency": "GBP",
}


@pytest.fixture
def api() -> Iterator[PayoutsApi]:
    server = PayoutsApi().start()
    yield server
    server.stop()


@pytest.fixture
def client(api: PayoutsApi) -> Iterator[GoCardlessClient]:
    c = GoCardlessClient(api.url, "token", RetryPolicy(max_attempts=1))
    yield c
    c.close()


def _connect(tmp_path: Path) -> Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]:
    @contextlib.contextmanager
    def connect() -> Iterator[duckdb.DuckDBPyConnection]:
        conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
        try:
            yield conn
        finally:
            conn.close()

    return connect


def _stored(tmp_path: Path, api: PayoutsApi, *payout_ids: str) -> None:
    write_payouts(_connect(tmp_path), {pid: (api.payouts[pid], api.items.get(pid, [])) for pid in payout_ids})


def _row(tmp_path: Path, payout_id: str) -> tuple[object, ...]:
    with _connect(tmp_path)() as conn:
        row = conn.execute(
            "SELECT status, amount, exchange_rate, fx_amount FROM gocardless_payouts WHERE id = ?", [payout_id]
        ).fetchone()
    assert row is not None
    return row


def test_an_fx_payout_paid_without_its_rate_is_read_again_until_the_rate_is_confirmed(
    tmp_path: Path, api: PayoutsApi, client: GoCardlessClient
) -> None:
    api.payouts["PO1"] = payout("PO1", 100000, status="pending", currency="EUR", fx=FX_PENDING)
    _stored(tmp_path, api, "PO1")
    api.payouts["PO1"] = payout("PO1", 100000, status="paid", currency="EUR", fx=FX_CONFIRMED)

    result = refresh_unsettled_payouts(client, _connect(tmp_path), now=NOW)

    assert (result.unsettled, result.refreshed) == (1, 1)
    assert _row(tmp_path, "PO1") == ("paid", 100000, "0.8553000000", 85530)


def test_a_paid_fx_payout_whose_rate_is_not_confirmed_yet_is_read_again(
    tmp_path: Path, api: PayoutsApi, client: GoCardlessClient
) -> None:
    api.payouts["PO1"] = payout("PO1", 100000, status="paid", currency="EUR", fx=FX_PENDING)
    _stored(tmp_path, api, "PO1")

    refresh_unsettled_payouts(client, _connect(tmp_path), now=NOW)

    assert api.reads == ["PO1"]


def test_a_final_payout_is_not_read_again(tmp_path: Path, api: PayoutsApi, client: GoCardlessClient) -> None:
    api.payouts["PO1"] = payout("PO1", 100000, status="paid")
    api.payouts["PO2"] = payout("PO2", 100000, status="paid", currency="EUR", fx=FX_CONFIRMED)
    _stored(tmp_path, api, "PO1", "PO2")

    result = refresh_unsettled_payouts(client, _connect(tmp_path), now=NOW)

    assert (result.unsettled, api.reads) == (0, [])


def test_a_payout_whose_tax_amounts_are_not_in_its_tax_currency_yet_is_read_again(
    tmp_path: Path, api: PayoutsApi, client: GoCardlessClient
) -> None:
    api.payouts["PO1"] = payout("PO1", 99760, currency="EUR", tax_currency="GBP")
    paid_out = payout_item("payment_paid_out", "100000.0", "PM1")
    fee = payout_item("gocardless_fee", "-240.0", "PM1", taxes=[vat("40.0", currency="EUR")])
    api.items["PO1"] = [paid_out, fee]
    _stored(tmp_path, api, "PO1")
    api.items["PO1"] = [
        payout_item("payment_paid_out", "100000.0", "PM1"),
        {**fee, "taxes": [vat("40.0", "EUR", "34.2")]},
    ]

    refresh_unsettled_payouts(client, _connect(tmp_path), now=NOW)

    with _connect(tmp_path)() as conn:
        [(taxes,)] = conn.execute(
            "SELECT taxes->'$[0].destination_amount' FROM gocardless_payout_items WHERE item_index = 1"
        ).fetchall()
    assert taxes == '"34.2"'


def test_a_pending_payout_whose_items_are_gone_keeps_its_stored_items(
    tmp_path: Path, api: PayoutsApi, client: GoCardlessClient
) -> None:
    api.payouts["PO1"] = payout("PO1", 100000, status="pending")
    api.items["PO1"] = [payout_item("payment_paid_out", "100000.0", "PM1")]
    _stored(tmp_path, api, "PO1")
    api.payouts["PO1"] = payout("PO1", 100000, status="paid")
    api.gone.add("PO1")

    result = refresh_unsettled_payouts(client, _connect(tmp_path), now=NOW)

    assert (result.refreshed, result.failed) == (1, ())
    assert _row(tmp_path, "PO1")[0] == "paid"
    with _connect(tmp_path)() as conn:
        assert conn.execute("SELECT count(*) FROM gocardless_payout_items").fetchone() == (1,)


def test_a_payout_that_cannot_be_read_is_left_for_the_next_pass(
    tmp_path: Path, api: PayoutsApi, client: GoCardlessClient
) -> None:
    api.payouts["PO1"] = payout("PO1", 100000, status="pending")
    _stored(tmp_path, api, "PO1")
    del api.payouts["PO1"]

    result = refresh_unsettled_payouts(client, _connect(tmp_path), now=NOW)

    assert (result.refreshed, len(result.failed), result.failed[0].startswith("PO1: GoCardlessNotFound")) == (
        0,
        1,
        True,
    )
