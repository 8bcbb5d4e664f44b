"""The asset checks of defs/checks.py in real Dagster runs over a crafted warehouse and store: each names what is
wrong; the webhook freshness check warns when the newest webhook is older than the setting, from a run and
from its sensor (which launches nothing). The same checks pass on a played month: tests/defs/test_metadata.py."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import sqlalchemy as sa

from ml_connector_dagster.definitions import defs
from ml_connector_dagster.settings import Settings
from ml_connector_dagster.store import Store
from ml_connector_dagster.store.schema import inbox
from ml_connector_dagster.store.utc import utcnow

# The warehouse as a broken writer could leave it: the same columns, no keys, wrong rows.
BAD_WAREHOUSE = """
CREATE TABLE gocardless_payments (id VARCHAR, amount BIGINT, currency VARCHAR, status VARCHAR);
INSERT INTO gocardless_payments VALUES ('PM1', 1000, 'GBP', 'confirmed'), ('PM1', 1000, 'GBP', 'confirmed'),
    ('PM2', 0, 'GBP', 'confirmed'), ('PM3', -5, 'GBP', 'confirmed');
CREATE TABLE gocardless_customers (id VARCHAR, email VARCHAR);
INSERT INTO gocardless_customers VALUES ('CU1', 'a@x.example'), ('CU1', 'b@x.example');
CREATE TABLE gocardless_refunds (id VARCHAR, payment VARCHAR, amount BIGINT);
INSERT INTO gocardless_refunds VALUES ('RF1', 'PM1', 500), ('RF2', 'PM9', 100), ('RF3', 'PM2', 0);
CREATE TABLE gocardless_payouts (id VARCHAR, amount BIGINT, currency VARCHAR, status VARCHAR);
INSERT INTO gocardless_payouts VALUES ('PO1', 1000, 'GBP', 'paid'), ('PO2', 500, 'GBP', 'paid');
CREATE TABLE gocardless_payout_items (payout VARCHAR, item_index INTEGER, type VARCHAR, amount DECIMAL(20, 1));
INSERT INTO gocardless_payout_items VALUES ('PO1', 0, 'payment_paid_out', 1000.0);
CREATE TABLE customer_map (gocardless_customer VARCHAR, sage_customer VARCHAR);
INSERT INTO customer_map VALUES ('CU1', '01-ABF'), ('CU1', '01-XYZ'), ('CU2', '01-ABF'), ('CU2', '01-ABF');
"""
WAREHOUSE_CHECKS = (
    "payment_ids_unique",
    "payment_amounts_positive",
    "customer_ids_unique",
    "refund_amounts_positive",
    "refunds_link_known_payments",
    "payout_items_present",
    "no_customer_mapped_twice",
)


def run_checks(instance: dg.DagsterInstance, names: Sequence[str]) -> dict[str, dg.AssetCheckEvaluation]:
    """Execute the named checks alone (no materialization) in a real run; their evaluations by name."""
    keys = [k for k in defs.get_repository_def().asset_graph.asset_check_keys if k.name in names]
    job = dg.define_asset_job("checks_only", selection=dg.AssetSelection.checks(*keys))
    result = (
        dg.Definitions.merge(defs, dg.Definitions(jobs=[job]))
        .resolve_job_def("checks_only")
        .execute_in_process(instance=instance)
    )
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_the_warehouse_checks_fail_on_a_crafted_bad_warehouse_naming_the_rows(
    settings: Settings, instance: dg.DagsterInstance
) -> None:
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        conn.execute(BAD_WAREHOUSE)

    found = run_checks(instance, WAREHOUSE_CHECKS)

    named = {name: (e.passed, e.severity, e.metadata["ids"].value) for name, e in found.items()}
    assert named == {
        "payment_ids_unique": (False, dg.AssetCheckSeverity.ERROR, ["PM1"]),
        "payment_amounts_positive": (False, dg.AssetCheckSeverity.ERROR, ["PM2", "PM3"]),
        "customer_ids_unique": (False, dg.AssetCheckSeverity.ERROR, ["CU1"]),
        "refund_amounts_positive": (False, dg.AssetCheckSeverity.ERROR, ["RF3"]),
        "refunds_link_known_payments": (False, dg.AssetCheckSeverity.WARN, ["RF2"]),
        "payout_items_present": (False, dg.AssetCheckSeverity.ERROR, ["PO2"]),
        "no_customer_mapped_twice": (False, dg.AssetCheckSeverity.ERROR, ["CU1"]),
    }


@pytest.mark.parametrize(
    ("api_url", "link"),
    [
        ("sandbox", "https://manage-sandbox.gocardless.com/payments/PM2"),
        ("live", "https://manage.gocardless.com/payments/PM2"),
        ("http://127.0.0.1:8123", None),  # the stand-in has no dashboard
    ],
)
def test_a_failing_gocardless_check_links_the_first_record_in_the_dashboard_of_the_configured_api(
    home: Path, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch, api_url: str, link: str | None
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_GOCARDLESS_API_URL", api_url)
    with duckdb.connect(str(home / "warehouse.duckdb")) as conn:
        conn.execute(BAD_WAREHOUSE)

    check = run_checks(instance, ["payment_amounts_positive"])["payment_amounts_positive"]

    shown = check.metadata.get("first_in_dashboard")
    assert (shown.value if shown else None) == link


def test_the_warehouse_checks_pass_on_a_warehouse_nothing_was_written_to(
    settings: Settings, instance: dg.DagsterInstance
) -> None:
    found = run_checks(instance, WAREHOUSE_CHECKS)

    assert {name: e.passed for name, e in found.items()} == dict.fromkeys(WAREHOUSE_CHECKS, True)


def test_a_payment_with_two_receipts_in_the_audit_trail_fails_no_payment_posted_twice_on_cash_receipts(
    store: Store, instance: dg.DagsterInstance
) -> None:
    store.audit.append("cash_receipt.created", "PM1", {"receipt_id": "R1"})
    store.audit.append("cash_receipt.created", "PM2", {"receipt_id": "R2"})
    store.audit.append("cash_receipt.created", "PM1", {"receipt_id": "R3"})

    found = run_checks(instance, ["no_payment_posted_twice"])

    check = found["no_payment_posted_twice"]
    assert check.asset_key == dg.AssetKey(["reconciliation", "cash_receipts"])
    assert (check.passed, check.metadata["payments"].value) == (False, ["PM1"])


def test_review_queue_matches_ledger_warns_about_held_payments_without_an_item_and_items_of_payments_moved_on(
    store: Store, instance: dg.DagsterInstance
) -> None:
    store.ledger.upsert("PM1", status="held", reason="amount_mismatch")  # held, no open item
    store.ledger.upsert("PM2", status="posted")  # posted, its held item left open
    store.review.open_item("PM2", "held", "amount_mismatch", {})
    store.ledger.upsert("PM3", status="held", reason="customer_not_found")  # as it should be
    store.review.open_item("PM3", "held", "customer_not_found", {})

    check = run_checks(instance, ["review_queue_matches_ledger"])["review_queue_matches_ledger"]

    assert (check.passed, check.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert check.metadata["ids"].value == [
        "PM2 (held item, not held in the ledger)",
        "PM1 (held in the ledger, no open item)",
    ]


def received(store: Store, event_id: str, source: str, hours_ago: float) -> None:
    """An inbox event as if stored `hours_ago` (the receiver stamps the time of the commit)."""
    store.inbox.add([{"id": event_id, "resource_type": "payments", "action": "confirmed"}], source=source)
    with store.engine.begin() as conn:
        stamp = utcnow() - timedelta(hours=hours_ago)
        conn.execute(sa.update(inbox).where(inbox.c.event_id == event_id).values(received_at=stamp))


@pytest.mark.parametrize(
    ("events", "passed"),
    [
        ([("EV1", "webhook", 3.0)], False),
        ([("EV1", "webhook", 3.0), ("EV2", "sweep", 0.0)], False),  # the sweep's catch-up is not a webhook
        ([("EV1", "webhook", 1.5)], True),
        ([], False),
    ],
)
def test_webhooks_arriving_warns_when_no_webhook_arrived_within_the_freshness_setting(
    store: Store,
    instance: dg.DagsterInstance,
    monkeypatch: pytest.MonkeyPatch,
    events: list[tuple[str, str, float]],
    passed: bool,
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_WEBHOOK_FRESHNESS_HOURS", "2")
    for event_id, source, hours_ago in events:
        received(store, event_id, source, hours_ago)

    check = run_checks(instance, ["webhooks_arriving"])["webhooks_arriving"]

    assert (check.asset_key, check.passed, check.severity) == (
        dg.AssetKey(["gocardless", "api"]),
        passed,
        dg.AssetCheckSeverity.WARN,
    )
    assert check.metadata["freshness_hours"].value == 2
    assert (check.description is None) == passed


def test_the_freshness_sensor_records_the_warning_without_launching_a_run(
    store: Store, instance: dg.DagsterInstance, monkeypatch: pytest.MonkeyPatch, home: Path
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_WEBHOOK_FRESHNESS_HOURS", "1")
    received(store, "EV1", "webhook", 30.0)
    sensor = defs.resolve_sensor_def("webhook_freshness_sensor")

    with dg.build_sensor_context(instance=instance, resources=defs.resources) as context:
        result = sensor(context)

    assert isinstance(result, dg.SensorResult)
    assert not result.run_requests
    [evaluation] = result.asset_events
    assert isinstance(evaluation, dg.AssetCheckEvaluation)
    assert (evaluation.check_name, evaluation.passed) == ("webhooks_arriving", False)
    assert "over 1 h ago" in (result.skip_reason.skip_message if result.skip_reason else "")
