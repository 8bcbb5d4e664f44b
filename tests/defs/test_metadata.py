"""What the Dagster UI shows of each asset, after a month played through the stand-ins and the real definitions:
row count, table name and column schema on every materialization; previews in currency units; kinds, owners and
tags; the outside systems as the graph's sources; a check on every asset, all passing on the good sandbox, and
the receipts check failing when the ledger and Sage disagree."""

from __future__ import annotations

import os
from collections.abc import Iterator
from decimal import Decimal

import dagster as dg
import duckdb
import pytest

from ml_connector_dagster.definitions import defs
from ml_connector_dagster.defs.metadata import dashboard_url
from ml_connector_dagster.sandbox.dagster_driver import Driver
from ml_connector_dagster.sandbox.scenario import bundled
from ml_connector_dagster.sandbox.stack import start_stack
from ml_connector_dagster.settings import load_settings

from support.played_month import INITIAL_LOAD, World

pytestmark = pytest.mark.slow

SOURCES = {dg.AssetKey(["gocardless", "api"]), dg.AssetKey(["sage100", "ar"])}
TABLES = {
    "gocardless/customers": "gocardless_customers",
    "gocardless/payments": "gocardless_payments",
    "gocardless/refunds": "gocardless_refunds",
    "gocardless/payouts": "gocardless_payouts",
    "sage100/customers": "sage_customers",
    "sage100/ar_invoices": "sage_ar_invoices",
    "reconciliation/customer_map": "customer_map",
    "reconciliation/payment_matches": "payment_matches",
    "reconciliation/payouts": "payout_reconciliation",
}


@pytest.fixture(scope="module")
def played(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The bundled healing_month, played to its end (module-scoped: the tests only read it; a short month)."""
    root = tmp_path_factory.mktemp("metadata")
    saved = dict(os.environ)
    stack = start_stack(bundled("healing_month"), root / "home")
    try:
        os.environ.update({**stack.env, "DAGSTER_HOME": str(root / "dagster")})
        (root / "dagster").mkdir()
        (root / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        with dg.DagsterInstance.from_config(str(root / "dagster")) as instance:
            world = World(stack, Driver(defs, instance), stack.store)
            world.driver.materialize(INITIAL_LOAD)
            world.play()
            yield world
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)


def latest(world: World, key: str) -> dict[str, dg.MetadataValue]:
    event = world.driver.instance.get_latest_materialization_event(dg.AssetKey.from_user_string(key))
    assert event is not None and event.asset_materialization is not None, f"{key} was never materialized"
    return dict(event.asset_materialization.metadata)


def materializations(world: World, key: str) -> list[dict[str, dg.MetadataValue]]:
    records = world.driver.instance.fetch_materializations(dg.AssetKey.from_user_string(key), limit=1000).records
    return [dict(r.asset_materialization.metadata) for r in records if r.asset_materialization]


def test_every_warehouse_asset_reports_its_tables_row_count_name_and_column_schema(played: World) -> None:
    warehouse = load_settings().warehouse_path

    with duckdb.connect(str(warehouse), read_only=True) as conn:
        counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES.values()}  # type: ignore[index]
    for key, table in TABLES.items():
        metadata = latest(played, key)
        assert metadata["dagster/table_name"].value == f"warehouse.main.{table}", key
        assert metadata["dagster/row_count"].value == counts[table], key
        schema = metadata["dagster/column_schema"].value
        assert isinstance(schema, dg.TableSchema)
        assert len(schema.columns) > 3, key
    for key in defs.get_repository_def().asset_graph.materializable_asset_keys:
        assert "dagster/row_count" in latest(played, key.to_user_string()), key
    payments = latest(played, "gocardless/payments")["dagster/column_schema"].value
    assert [(c.name, c.type, c.constraints.unique, c.constraints.nullable) for c in payments.columns[:2]] == [
        ("id", "VARCHAR", True, False),
        ("amount", "BIGINT", False, False),
    ]
    assert payments.constraints.other == ["PRIMARY KEY (id)"]


def test_cash_receipts_report_the_receipts_written_in_each_run_in_currency_units(played: World) -> None:
    metadata = latest(played, "reconciliation/cash_receipts")
    written = [
        r.data
        for m in materializations(played, "reconciliation/cash_receipts")
        for r in m["receipts_written"].value.records
    ]

    posted = [e for s in ("posted", "reversal_required", "reversed") for e in played.store.ledger.list(status=s)]
    assert metadata["dagster/row_count"].value == len(posted) > 0
    assert isinstance(metadata["dagster/column_schema"].value, dg.TableSchema)
    assert sorted(r["payment_id"] for r in written) == sorted(e.payment_id for e in posted)
    entry = played.store.ledger.entry(written[0]["payment_id"])
    assert written[0]["amount"] == entry.home_amount and Decimal(written[0]["amount"]) == Decimal(entry.home_amount)
    assert written[0]["receipt"] == entry.receipt["receipt_id"]
    assert written[0]["deposit"] == entry.receipt["deposit_no"]
    assert written[0]["sage_customer"] == entry.sage_customer
    assert written[0]["invoices"] == ", ".join(f"{a['invoice_no']}: {a['amount']}" for a in entry.allocations)


def test_the_payouts_preview_shows_amounts_in_currency_units_as_decimal_text(played: World) -> None:
    preview = latest(played, "reconciliation/payouts")["preview"].value
    with duckdb.connect(str(load_settings().warehouse_path), read_only=True) as conn:
        minor = dict(conn.execute("SELECT id, amount FROM gocardless_payouts").fetchall())

    assert preview.records
    for record in preview.records:
        assert isinstance(record.data["amount"], str)
        assert Decimal(record.data["amount"]) * 100 == minor[record.data["payout_id"]]
        assert Decimal(record.data["amount"]).as_tuple().exponent == -2
        assert record.data["items_add_up"] is True


def test_the_stand_in_gets_no_dashboard_link_and_gocardless_s_own_apis_do(played: World) -> None:
    assert "gocardless_dashboard" not in latest(played, "gocardless/payments")
    assert (
        dashboard_url("https://api.gocardless.com", "payments", "PM123")
        == "https://manage.gocardless.com/payments/PM123"
    )
    assert (
        dashboard_url("https://api-sandbox.gocardless.com/", "payouts")
        == "https://manage-sandbox.gocardless.com/payouts"
    )


def test_every_asset_has_kinds_owners_tags_and_a_check_and_lineage_starts_at_the_sources(played: World) -> None:
    graph = defs.get_repository_def().asset_graph
    checked = {k.asset_key for k in graph.asset_check_keys}

    specs = defs.resolve_all_asset_specs()
    assert {spec.key for spec in specs} >= SOURCES
    for spec in specs:
        name = spec.key.to_user_string()
        assert spec.owners == ["team:finance-ops"], name
        assert {"system", "domain"} <= set(spec.tags), name
        assert spec.key in checked, f"{name} has no asset check"
        if spec.key in SOURCES:
            assert spec.group_name == "sources" and not graph.get(spec.key).is_materializable
        if name.startswith("gocardless/") and spec.key not in SOURCES:
            assert {"gocardless", "duckdb"} <= spec.kinds and dg.AssetKey(["gocardless", "api"]) in {
                d.asset_key for d in spec.deps
            }, name
        if name.startswith("sage100/") and spec.key not in SOURCES:
            assert {"sage100", "duckdb"} <= spec.kinds and dg.AssetKey(["sage100", "ar"]) in {
                d.asset_key for d in spec.deps
            }, name


def run_all_checks(world: World) -> dict[str, dg.AssetCheckEvaluation]:
    job = dg.define_asset_job("all_checks", selection=dg.AssetSelection.all_asset_checks())
    result = (
        dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
        .resolve_job_def("all_checks")
        .execute_in_process(instance=world.driver.instance)
    )
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_every_check_passes_on_the_played_month_and_the_receipts_check_fails_once_the_ledger_disagrees(
    played: World,
) -> None:
    found = run_all_checks(played)
    failed = {name: e.description for name, e in found.items() if not e.passed}
    assert set(found) == {k.name for k in defs.get_repository_def().asset_graph.asset_check_keys}
    assert failed == {}
    assert found["receipts_match_ledger"].metadata["checked"].value > 0

    entry = played.store.ledger.list(status="posted")[0]
    wrong = {**entry.receipt, "receipt_id": "R-NOT-IN-SAGE"}
    played.store.ledger.upsert(entry.payment_id, status=entry.status, receipt=wrong)
    try:
        check = run_all_checks(played)["receipts_match_ledger"]
    finally:
        played.store.ledger.upsert(entry.payment_id, status=entry.status, receipt=entry.receipt)

    assert (check.passed, check.severity) == (False, dg.AssetCheckSeverity.ERROR)
    assert check.metadata["problems"].value == [
        f"{entry.payment_id}: receipt {entry.receipt['receipt_id']} in Sage, R-NOT-IN-SAGE in the ledger"
    ]
