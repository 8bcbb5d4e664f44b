"""The gocardless/* assets, the inbox job and sensor, and the events sweep in a real Dagster instance,
against the GoCardless stand-in over HTTP. The payments backfill (partitioned asset) is in
test_payments_backfill.py."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import duckdb
import pytest

from ml_connector_dagster.defs import gocardless as gc_defs
from ml_connector_dagster.defs import gocardless_inbox as inbox_defs
from ml_connector_dagster.defs.resources import ConnectorSettings, OperationalStore, Warehouse
from ml_connector_dagster.sandbox.gocardless_api import GoCardlessStandIn
from ml_connector_dagster.settings import DEFAULT_EVENT_WHITELIST as WHITELIST
from ml_connector_dagster.settings import load_settings
from ml_connector_dagster.store import Store

from support.gocardless import event


@pytest.fixture
def resources(api_env: GoCardlessStandIn) -> dict[str, Any]:
    settings = ConnectorSettings()
    return {
        "connector_settings": settings,
        "store": OperationalStore(settings=settings),
        "warehouse": Warehouse(settings=settings),
        "gocardless": gc_defs.GoCardlessResource(
            settings=settings, max_attempts=3, base_delay_seconds=0.01, max_total_seconds=5
        ),
    }


@pytest.fixture
def ops_store(api_env: GoCardlessStandIn) -> Iterator[Store]:
    store = Store(load_settings().database_url)
    yield store
    store.dispose()


def play_into_inbox(stand_in: GoCardlessStandIn, store: Store, steps: int | None = None) -> list[dict]:
    """Play steps and store their whitelisted events as the receiver would."""
    played = []
    for _ in range(steps or stand_in.world.total_steps):
        events = stand_in.play_step()
        played += events
        store.inbox.add([e for e in events if f"{e['resource_type']}.{e['action']}" in WHITELIST], "WBTEST")
    return played


def table(sql: str) -> list[tuple]:
    with duckdb.connect(str(load_settings().warehouse_path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def inbox_config(max_attempts: int = 6, base: float = 30.0, assets: tuple[str, ...] = ("payments",)) -> dict:
    config = {"config": {"max_attempts": max_attempts, "retry_base_delay_seconds": base}}
    return {"ops": {f"inbox_{name}": config for name in assets}}


def process(
    instance: dg.DagsterInstance, resources: dict, *kinds: str, raise_on_error: bool = True, **config: Any
) -> dg.ExecuteInProcessResult:
    """Run gocardless_inbox_job (only the ops for `kinds`, e.g. "payments", when given)."""
    return inbox_defs.gocardless_inbox_job.execute_in_process(
        instance=instance,
        resources=resources,
        op_selection=[f"inbox_{k}" for k in kinds] or None,
        raise_on_error=raise_on_error,
        run_config=config.get("run_config"),
    )


# -- sensor -----------------------------------------------------------------------------------------------


def evaluate_sensor(
    instance: dg.DagsterInstance, resources: dict, cursor: str | None = None, definitions: dg.Definitions | None = None
) -> dg.SensorResult:
    with dg.build_sensor_context(
        instance=instance, cursor=cursor, resources=resources, definitions=definitions
    ) as context:
        return inbox_defs.gocardless_inbox_sensor(context)


def test_the_sensor_skips_when_nothing_is_due(instance: dg.DagsterInstance, resources: dict) -> None:
    result = evaluate_sensor(instance, resources)

    assert result.run_requests == [] and result.cursor == "0"
    assert "no inbox events are due" in str(result.skip_reason)


def test_the_sensor_requests_one_run_per_pending_set_and_advances_its_cursor(
    instance: dg.DagsterInstance, resources: dict, ops_store: Store
) -> None:
    ops_store.inbox.add([event("EV1"), event("EV2", resource_id="PM0002")], "WB1")

    first = evaluate_sensor(instance, resources)
    again = evaluate_sensor(instance, resources, first.cursor)
    ops_store.inbox.add([event("EV3", resource_id="PM0003")], "WB2")
    more = evaluate_sensor(instance, resources, again.cursor)

    [request] = first.run_requests
    assert first.cursor == "2" and more.cursor == "3"
    assert again.run_requests[0].run_key == request.run_key  # same pending set: deduped by run key
    assert more.run_requests[0].run_key != request.run_key
    assert more.run_requests[0].tags["gocardless/new_events"] == "1"
    assert more.run_requests[0].tags["gocardless/due_events"] == "3"


def test_the_sensor_ignores_events_waiting_for_their_retry_time(
    instance: dg.DagsterInstance, resources: dict, ops_store: Store
) -> None:
    ops_store.inbox.add([event("EVWAIT")])
    [row] = ops_store.inbox.claim([r.seq for r in ops_store.inbox.due()], "run:test")
    ops_store.inbox.fail(row.seq, "boom", max_attempts=5, base_delay=3600)

    result = evaluate_sensor(instance, resources)

    assert result.run_requests == []


def test_a_sensor_requested_run_processes_the_played_month(
    instance: dg.DagsterInstance, resources: dict, ops_store: Store, api_env: GoCardlessStandIn
) -> None:
    play_into_inbox(api_env, ops_store)
    definitions = dg.Definitions(
        assets=gc_defs.GOCARDLESS_ASSETS,
        jobs=[inbox_defs.gocardless_inbox_job],
        sensors=[inbox_defs.gocardless_inbox_sensor],
        resources=resources,
    )
    [request] = evaluate_sensor(instance, resources, definitions=definitions).run_requests

    result = definitions.resolve_job_def("gocardless_inbox_job").execute_in_process(
        instance=instance, tags=request.tags
    )

    assert result.success
    assert ops_store.inbox.counts() == {"processed": len(ops_store.inbox.list(limit=None))}
    api_status = {p["id"]: p["status"] for p in api_env.world.payments.values()}
    stored = dict(table("SELECT id, status FROM gocardless_payments"))
    assert stored == {pid: s for pid, s in api_status.items() if pid != "PM0014"}  # PM0014: no whitelisted event
    assert table("SELECT count(*) FROM gocardless_customers") == [(8,)]
    assert table("SELECT id, status, amount FROM gocardless_refunds") == [("RF0001", "paid", 10000)]
    assert len(table("SELECT id FROM gocardless_payouts")) == 3


# -- assets -----------------------------------------------------------------------------------------------


def test_payments_are_re_read_with_their_customer_and_upserted_idempotently(
    instance: dg.DagsterInstance, resources: dict, ops_store: Store, api_env: GoCardlessStandIn
) -> None:
    play_into_inbox(api_env, ops_store, steps=5)  # up to fx_rate_confirmed of its payout

    first = process(instance, resources, "payments")
    ops_store.inbox.add([event("EVAGAIN", "payments.paid_out", "PM0006", "2030-01-01T00:00:00.000Z")])
    second = process(instance, resources, "payments")

    assert first.success and second.success
    [row] = table(
        "SELECT amount, currency, status, customer, mandate, fx_currency, fx_amount, payout IS NOT NULL, "
        "last_event_id, charge_date::VARCHAR FROM gocardless_payments WHERE id = 'PM0006'"
    )
    assert row == (100000, "EUR", "paid_out", "CU0004", "MD0004", "GBP", 86000, True, "EVAGAIN", "2026-11-04")
    assert table("SELECT count(*) FROM gocardless_payments") == [(15,)]
    [day] = first.asset_materializations_for_node("inbox_payments")  # the stand-in creates payments today
    assert (day.asset_key, day.partition) == (gc_defs.gocardless_payments.key, datetime.now(UTC).date().isoformat())
    metadata = day.metadata
    assert metadata["dagster/row_count"].value == 15
    payment_events = [r for r in ops_store.inbox.list(limit=None) if r.resource_type == "payments"]
    assert metadata["events_processed"].value == len(payment_events) - 1
    assert {r.status for r in payment_events} == {"processed"}
    assert metadata["events_retrying"].value == 0
    audit = [r.action for r in ops_store.audit.list()]
    assert (
        audit.count("payment.fetched") == 16
        and audit.count("event.processed") == metadata["events_processed"].value + 1
    )
    assert ops_store.audit.verify().ok


def test_a_confirmed_fx_rate_reads_its_payments_converted_amount_again(
    instance: dg.DagsterInstance, resources: dict, ops_store: Store, api_env: GoCardlessStandIn
) -> None:
    play_into_inbox(api_env, ops_store, steps=4)  # PM0006 paid out in an FX payout, its rate not confirmed
    process(instance, resources, "payments", "payouts")
    before = table("SELECT fx_amount, exchange_rate FROM gocardless_payments WHERE id = 'PM0006'")

    play_into_inbox(api_env, ops_store, steps=1)  # payouts.fx_rate_confirmed: no payment event comes
    result = process(instance, resources, "payments", "payouts")

    assert before == [(None, None)]
    [(fx_amount, rate)] = table("SELECT fx_amount, exchange_rate FROM gocardless_payments WHERE id = 'PM0006'")
    assert fx_amount == 86000 and rate is not None
    metadata = result.asset_materializations_for_node("inbox_payouts")[0].metadata
    assert metadata["payments_read_again_for_confirmed_fx"].value == 1


def test_an_older_event_processed_late_does_not_move_last_event_back(
    instance: dg.DagsterInstance, resources: dict, ops_store: Store, api_env: GoCardlessStandIn
) -> None:
    play_into_inbox(api_env, ops_store, steps=1)
    ops_store.inbox.add([event("EVNEW", "payments.confirmed", "PM0001", "2030-01-02T00:00:00.000Z")])
    process(instance, resources, "payments")
    ops_store.inbox.add([event("EVOLD", "payments.confirmed", "PM0001", "2030-01-01T00:00:00.000Z")])

    process(instance, resources, "payments")

    assert table("SELECT last_event_id FROM gocardless_payments WHERE id = 'PM0001'") == [("EVNEW",)]


def test_a_failing_event_is_retried_with_backoff_then_queued_for_review_never_dropped(
    instance: dg.DagsterInstance, resources: dict, ops_store: Store, api_env: GoCardlessStandIn
) -> None:
    play_into_inbox(api_env, ops_store, steps=3)
    ops_store.inbox.add([event("EVLOST", "payments.confirmed", "PM404")])
    config = inbox_config(max_attempts=2, base=0.0)

    first = process(instance, resources, "payments", run_config=config)
    after_first = {r.event_id: r for r in ops_store.inbox.list(limit=None)}
    second = process(instance, resources, "payments", run_config=config, raise_on_error=False)

    assert first.success  # the other events were processed
    assert (after_first["EVLOST"].status, after_first["EVLOST"].attempts) == ("retry", 1)
    assert "GoCardlessNotFound" in after_first["EVLOST"].last_error
    assert not second.success  # nothing could be processed: the run says so
    lost = next(r for r in ops_store.inbox.list(limit=None) if r.event_id == "EVLOST")
    assert (lost.status, lost.attempts) == ("failed", 2)
    [item] = ops_store.review.open_for("EVLOST")
    assert (item.kind, item.details["resource_id"], item.details["attempts"]) == ("processing_failed", "PM404", 2)


def test_a_whole_api_outage_leaves_events_waiting_for_retry(
    instance: dg.DagsterInstance, resources: dict, ops_store: Store, api_env: GoCardlessStandIn
) -> None:
    play_into_inbox(api_env, ops_store, steps=3)
    api_env.set_faults([{"kind": "status", "status": 503, "count": 10_000}])

    result = process(instance, resources, "refunds", "payments", raise_on_error=False)

    assert not result.success
    assert ops_store.inbox.counts() == {"retry": 15}
    assert ops_store.review.list() == []


def test_customers_refunds_and_payouts_with_items_are_loaded(
    instance: dg.DagsterInstance, resources: dict, ops_store: Store, api_env: GoCardlessStandIn
) -> None:
    play_into_inbox(api_env, ops_store)

    result = process(instance, resources)

    assert result.success
    recorded = {(m.asset_key.to_user_string(), m.partition) for m in result.get_asset_materialization_events()}
    today = datetime.now(UTC).date().isoformat()
    assert {key for key, _ in recorded} == {f"gocardless/{n}" for n in ("customers", "payments", "refunds", "payouts")}
    assert ("gocardless/payments", today) in recorded and ("gocardless/payouts", None) in recorded
    assert table("SELECT metadata FROM gocardless_customers WHERE id = 'CU0008'") == [('{"sage_customer":"02-HOLT"}',)]
    payouts = table("SELECT id, amount, currency, deducted_fees FROM gocardless_payouts")
    for payout_id, amount, _currency, fees in payouts:
        [(total, fee_total)] = table(
            "SELECT sum(amount), sum(CASE WHEN type IN ('gocardless_fee', 'app_fee', 'surcharge_fee') "
            f"THEN amount ELSE 0 END) "
            f"FROM gocardless_payout_items WHERE payout = '{payout_id}'"
        )
        assert (round(total), -fee_total) == (amount, fees)
    assert table(
        "SELECT amount::VARCHAR FROM gocardless_payout_items WHERE type = 'gocardless_fee' AND payment = 'PM0002'"
    ) == [("-264.0",)]  # 2.20 fee + 20 % VAT


# -- events sweep --------------------------------------------------------------------------------------------


def sweep(instance: dg.DagsterInstance, resources: dict) -> str:
    """Evaluate the events sweep sensor once; it launches nothing and says what it did."""
    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        result = inbox_defs.gocardless_events_sweep(context)
    assert isinstance(result, dg.SkipReason)
    return str(result.skip_message)


def test_the_events_sweep_stores_missed_whitelisted_events_once_and_launches_nothing(
    instance: dg.DagsterInstance, resources: dict, ops_store: Store, api_env: GoCardlessStandIn
) -> None:
    played = []
    while step := api_env.play_step():  # webhooks never arrived
        played += step

    first = sweep(instance, resources)
    second = sweep(instance, resources)

    expected = {e["id"] for e in played if f"{e['resource_type']}.{e['action']}" in WHITELIST}
    rows = ops_store.inbox.list(limit=None)
    assert {r.event_id for r in rows} == expected and {r.source for r in rows} == {"events_api"}
    assert f"{len(played)} listed, {len(expected)} whitelisted, {len(expected)} new" in first
    assert f"0 new (the inbox sensor processes them), {len(expected)} already stored, 0 refused" in second
    assert inbox_defs.gocardless_events_sweep.default_status == dg.DefaultSensorStatus.RUNNING
    assert inbox_defs.gocardless_events_sweep.minimum_interval_seconds == 600


def test_the_events_sweep_refuses_a_listed_event_the_inbox_cannot_hold_and_says_so(
    instance: dg.DagsterInstance, resources: dict, ops_store: Store, api_env: GoCardlessStandIn
) -> None:
    played = []
    while step := api_env.play_step():
        played += step
    good = next(e for e in played if f"{e['resource_type']}.{e['action']}" in WHITELIST)
    bad = {**good, "id": "EVBAD\u202e0001", "links": {"payment": "x" * 500}}
    api_env.world.events[bad["id"]] = bad  # GoCardless's API is no excuse for what the inbox cannot hold

    said = sweep(instance, resources)

    assert bad["id"] not in {r.event_id for r in ops_store.inbox.list(limit=None)}
    assert said.endswith("1 refused")


def test_the_events_sweep_skips_until_gocardless_is_configured(
    instance: dg.DagsterInstance, resources: dict, home: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN", raising=False)

    said = sweep(instance, resources)

    assert said.startswith("GoCardless not configured: ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN")


def test_a_wrong_token_fails_the_run_without_the_token_appearing_anywhere(
    instance: dg.DagsterInstance, resources: dict, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN", "live_KNOWN-Token-0042")

    result = dg.materialize(
        [gc_defs.gocardless_customers], resources=resources, instance=instance, raise_on_error=False
    )

    assert not result.success
    logged = "\n".join(str(entry) for entry in instance.all_logs(result.run_id)) + caplog.text
    assert "GoCardlessAuthError" in logged and "access_token_not_found" in logged
    assert "live_KNOWN-Token-0042" not in logged
