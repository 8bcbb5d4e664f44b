"""Month end, one row per payout: the bank line, what makes it up by kind in currency units, VAT on fees,
FX, whether the items add up, and the Sage state of each payment. Data shaped as GoCardless sends it."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pytest

from ml_connector_dagster.gocardless.rows import now_utc, payout_item_rows, payout_row
from ml_connector_dagster.gocardless.tables import ensure_tables, replace_payout_items, upsert
from ml_connector_dagster.reconciliation.payouts import build, markdown
from ml_connector_dagster.store import Store

from support.gocardless_shapes import payout, payout_item, vat

RECEIPT = {"receipt_id": "B-00007-01-ABF-GC00000001", "deposit_no": "00007", "check_no": "GC00000001"}
FX_CONFIRMED = {
    "estimated_exchange_rate": None,
    "exchange_rate": "0.8553000000",
    "fx_amount": 85530,
    "fx_currency": "GBP",
}
MONTH_ITEMS = [
    payout_item("payment_paid_out", "100000.0", "PM1"),
    payout_item("gocardless_fee", "-240.0", "PM1", taxes=[vat("40.0")]),
    payout_item("payment_paid_out", "50000.0", "PM2"),
    payout_item("gocardless_fee", "-120.0", "PM2", taxes=[vat("20.0")]),
    payout_item("payment_refunded", "-2500.0", "PM3", refund_id="RF1"),
    payout_item("payment_failed", "-10000.0", "PM4"),
    payout_item("gocardless_fee", "200.0", "PM4", taxes=[vat("33.3")]),  # the failed payment's fee refunded
    payout_item("payment_charged_back", "-5000.0", "PM5"),
    payout_item("surcharge_fee", "-150.0", "PM5", taxes=[vat("25.0")]),
]


def _store(
    conn: duckdb.DuckDBPyConnection, payouts: list[dict[str, Any]], items: dict[str, list[dict[str, Any]]]
) -> None:
    ensure_tables(conn)
    at = now_utc()
    upsert(conn, "gocardless_payouts", [payout_row(p, at) for p in payouts])
    replace_payout_items(conn, {pid: payout_item_rows(pid, rows, at) for pid, rows in items.items()})


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    c = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    yield c
    c.close()


@pytest.fixture
def month(conn: duckdb.DuckDBPyConnection, store: Store) -> pd.DataFrame:
    """PO1: collections with fees and VAT, a refund, a late failure (its fee refunded), a chargeback with a
    surcharge; PO2: an FX payout with its rate confirmed. Two payments posted or held in the ledger."""
    _store(
        conn,
        [
            payout("PO1", 132190, deducted_fees=310),
            payout("PO2", 100000, currency="EUR", fx=FX_CONFIRMED, arrival_date="2024-03-09"),
        ],
        {"PO1": MONTH_ITEMS, "PO2": [payout_item("payment_paid_out", "100000.0", "PM6")]},
    )
    store.ledger.upsert("PM1", status="posted", receipt=RECEIPT)
    store.ledger.upsert("PM2", status="held", reason="amount_mismatch")
    store.ledger.upsert("PM4", status="reversal_required", reason="late_failure")
    return build(conn, store).set_index("payout_id")


def test_a_payout_shows_its_bank_line_in_currency_units(month: pd.DataFrame) -> None:
    po1 = month.loc["PO1"]

    assert (po1["amount"], po1["currency"], po1["arrival_date"], po1["reference"]) == (
        Decimal("1321.90"),
        "GBP",
        "2024-03-08",
        "GC-PO1",
    )


def test_a_payout_s_items_are_summed_by_kind(month: pd.DataFrame) -> None:
    po1 = month.loc["PO1"]

    kinds = {k: po1[k] for k in ("collections", "refunds", "failures", "chargebacks", "other")}
    assert kinds == {
        "collections": Decimal("1500.00"),
        "refunds": Decimal("-25.00"),
        "failures": Decimal("-100.00"),
        "chargebacks": Decimal("-50.00"),
        "other": Decimal("0.00"),
    }


def test_fees_are_net_of_fee_refunds(month: pd.DataFrame) -> None:
    assert month.loc["PO1", "fees"] == Decimal("-3.10")


def test_vat_on_fees_is_shown_in_the_tax_currency_signed_like_the_fees(month: pd.DataFrame) -> None:
    po1 = month.loc["PO1"]

    assert (po1["vat"], po1["vat_currency"], po1["vat_final"]) == (Decimal("-0.517"), "GBP", True)


def test_items_that_add_up_to_the_payout_amount_pass_the_check(month: pd.DataFrame) -> None:
    po1 = month.loc["PO1"]

    assert (po1["items_add_up"], po1["items_total"], po1["difference"]) == (True, Decimal("1321.90"), Decimal("0.00"))


def test_an_fx_payout_shows_its_confirmed_rate_and_converted_amount(month: pd.DataFrame) -> None:
    po2 = month.loc["PO2"]

    assert (
        po2["converted"],
        po2["exchange_rate"],
        po2["converted_currency"],
        po2["converted_amount"],
        po2["final"],
    ) == (
        True,
        "0.8553000000",
        "GBP",
        Decimal("855.30"),
        True,
    )


def test_payments_are_shown_posted_with_receipt_and_deposit_or_held_with_reason(month: pd.DataFrame) -> None:
    po1 = month.loc["PO1"]

    assert [dict(p) for p in po1["posted"]] == [
        {"payment": "PM1", "receipt_id": "B-00007-01-ABF-GC00000001", "deposit_no": "00007"}
    ]
    assert [dict(p) for p in po1["held"]] == [{"payment": "PM2", "reason": "amount_mismatch"}]
    assert [(p["payment"], p["status"]) for p in po1["other_payments"]] == [
        ("PM3", "not in the ledger"),
        ("PM4", "reversal_required"),
        ("PM5", "not in the ledger"),
    ]


def test_the_table_is_written_to_the_warehouse_in_currency_units(
    conn: duckdb.DuckDBPyConnection, month: pd.DataFrame
) -> None:
    rows = conn.execute("SELECT payout_id, amount, fees FROM payout_reconciliation ORDER BY payout_id").fetchall()

    assert rows == [("PO1", Decimal("1321.90"), Decimal("-3.10")), ("PO2", Decimal("1000.00"), Decimal("0.00"))]


def test_a_payout_whose_items_do_not_add_up_says_so_with_the_difference(
    conn: duckdb.DuckDBPyConnection, store: Store
) -> None:
    _store(conn, [payout("PO1", 1000)], {"PO1": [payout_item("payment_paid_out", "999.4", "PM1")]})

    po1 = build(conn, store).set_index("payout_id").loc["PO1"]

    assert (po1["items_add_up"], po1["items_total"], po1["difference"]) == (False, Decimal("9.994"), Decimal("0.01"))


def test_a_pending_fx_payout_is_not_final_and_has_no_rate_yet(conn: duckdb.DuckDBPyConnection, store: Store) -> None:
    fx = {"estimated_exchange_rate": "0.8561", "exchange_rate": None, "fx_amount": None, "fx_currency": "GBP"}
    _store(conn, [payout("PO1", 100000, status="pending", currency="EUR", fx=fx, arrival_date=None)], {})

    po1 = build(conn, store).set_index("payout_id").loc["PO1"]

    assert (po1["final"], po1["exchange_rate"], po1["converted_amount"]) == (False, None, None)


def test_vat_not_yet_in_the_tax_currency_is_not_final(conn: duckdb.DuckDBPyConnection, store: Store) -> None:
    items = [
        payout_item("payment_paid_out", "100000.0", "PM1"),
        payout_item("gocardless_fee", "-240.0", "PM1", taxes=[vat("40.0", currency="EUR")]),
    ]
    _store(conn, [payout("PO1", 99760, currency="EUR", tax_currency="GBP")], {"PO1": items})

    po1 = build(conn, store).set_index("payout_id").loc["PO1"]

    assert (po1["vat_final"], po1["vat"]) == (False, None)


@pytest.mark.parametrize(
    "currency, amount, expected", [("SEK", 150050, Decimal("1500.50")), ("JPY", 1500, Decimal("1500"))]
)
def test_each_currency_uses_its_own_exponent(
    conn: duckdb.DuckDBPyConnection, store: Store, currency: str, amount: int, expected: Decimal
) -> None:
    _store(conn, [payout("PO1", amount, currency=currency)], {"PO1": [payout_item("payment_paid_out", f"{amount}.0")]})

    po1 = build(conn, store).set_index("payout_id").loc["PO1"]

    assert (po1["amount"], str(po1["amount"])) == (expected, str(expected))


def test_the_month_keeps_the_payouts_that_arrived_in_it(conn: duckdb.DuckDBPyConnection, store: Store) -> None:
    _store(conn, [payout("PO1", 100, arrival_date="2024-02-29"), payout("PO2", 100, arrival_date="2024-03-01")], {})

    frame = build(conn, store, write=False, month="2024-03")

    assert frame["payout_id"].tolist() == ["PO2"]


def test_the_ui_table_shows_each_payout_in_currency_units(month: pd.DataFrame) -> None:
    table = markdown(month.reset_index())

    assert "| PO1 | paid | 2024-03-08 | GBP 1321.90 | 1500.00 | -3.10 | -0.517 |  | yes | 5 | 1 | 1 | GC-PO1 |" in table
