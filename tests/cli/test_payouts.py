"""`ml-connector payouts`: month end for the bookkeeper, one line per payout, as a table, JSON or CSV."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import duckdb
import pytest
from click.testing import CliRunner, Result

from ml_connector_dagster.cli import main
from ml_connector_dagster.gocardless.rows import now_utc, payout_item_rows, payout_row
from ml_connector_dagster.gocardless.tables import ensure_tables, replace_payout_items, upsert
from ml_connector_dagster.settings import Settings
from ml_connector_dagster.store import Store

from support.gocardless_shapes import payout, payout_item, vat

RECEIPT = {"receipt_id": "B-00007-01-ABF-GC00000001", "deposit_no": "00007"}


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["payouts", *args])


@pytest.fixture
def month(settings: Settings, store: Store) -> None:
    """Two payouts: PO1 arrived in February, PO2 in March with a posted and a held payment, a fee and its VAT."""
    items = [
        payout_item("payment_paid_out", "100000.0", "PM1"),
        payout_item("payment_paid_out", "50000.0", "PM2"),
        payout_item("gocardless_fee", "-240.0", "PM1", taxes=[vat("40.0")]),
    ]
    conn = duckdb.connect(str(settings.warehouse_path))
    ensure_tables(conn)
    upsert(
        conn,
        "gocardless_payouts",
        [
            payout_row(payout("PO1", 5000, arrival_date="2024-02-28"), now_utc()),
            payout_row(payout("PO2", 149760), now_utc()),
        ],
    )
    replace_payout_items(conn, {"PO1": payout_item_rows("PO1", [payout_item("payment_paid_out", "5000.0")], now_utc())})
    replace_payout_items(conn, {"PO2": payout_item_rows("PO2", items, now_utc())})
    conn.close()
    store.ledger.upsert("PM1", status="posted", receipt=RECEIPT)
    store.ledger.upsert("PM2", status="held", reason="amount_mismatch")


def test_payouts_prints_one_line_per_payout_in_currency_units(month: None) -> None:
    result = run()

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split()[:6] == ["payout_id", "status", "arrival_date", "reference", "currency", "amount"]
    assert lines[2].split()[:6] == ["PO2", "paid", "2024-03-08", "GC-PO2", "GBP", "1497.60"]


def test_payouts_json_names_posted_payments_with_receipt_and_deposit_and_held_ones_with_reason(month: None) -> None:
    result = run("--json", "--month", "2024-03")

    assert result.exit_code == 0, result.output
    [po2] = json.loads(result.output)
    assert (po2["amount"], po2["collections"], po2["fees"], po2["vat"], po2["items_add_up"]) == (
        "1497.60",
        "1500.00",
        "-2.40",
        "-0.40",
        True,
    )
    assert po2["posted"] == [{"payment": "PM1", "receipt_id": RECEIPT["receipt_id"], "deposit_no": "00007"}]
    assert po2["held"] == [{"payment": "PM2", "reason": "amount_mismatch"}]


def test_payouts_csv_writes_a_row_per_payout_ready_for_a_bank_reconciliation(month: None, tmp_path: Path) -> None:
    target = tmp_path / "march.csv"

    result = run("--csv", str(target), "--month", "2024-03")

    assert result.exit_code == 0, result.output
    with target.open(newline="") as f:
        [row] = list(csv.DictReader(f))
    assert (row["payout_id"], row["arrival_date"], row["reference"], row["amount"], row["items_add_up"]) == (
        "PO2",
        "2024-03-08",
        "GC-PO2",
        "1497.60",
        "yes",
    )
    assert row["posted"] == f"PM1 (receipt {RECEIPT['receipt_id']}, deposit 00007)"
    assert row["held"] == "PM2 (amount_mismatch)"


def test_payouts_month_keeps_the_payouts_that_arrived_in_it(month: None) -> None:
    result = run("--json", "--month", "2024-02")

    assert [p["payout_id"] for p in json.loads(result.output)] == ["PO1"]


def test_payouts_with_an_empty_warehouse_prints_none(settings: Settings) -> None:
    result = run()

    assert (result.exit_code, result.output.strip()) == (0, "(none)")


@pytest.mark.parametrize("month_text", ["2024-13", "March", "2024-3"])
def test_payouts_refuses_a_month_not_written_yyyy_mm(settings: Settings, month_text: str) -> None:
    result = run("--month", month_text)

    assert result.exit_code == 2
    assert "write it YYYY-MM" in result.output


def test_payouts_refuses_a_csv_target_that_is_a_folder(settings: Settings, tmp_path: Path) -> None:
    result = run("--csv", str(tmp_path))

    assert result.exit_code == 2
    assert "is a folder" in result.output


def test_payouts_refuses_a_csv_target_in_a_missing_folder(settings: Settings, tmp_path: Path) -> None:
    result = run("--csv", str(tmp_path / "missing" / "payouts.csv"))

    assert result.exit_code == 2
    assert "does not exist" in result.output
