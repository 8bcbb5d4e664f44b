"""The reconciliation assets' automation condition (FOLLOWS_INPUTS) on a real instance: what it requests
after an input's run, a run holding both, and an input updated while the asset ran;
and, on the sandbox, that backfilled payments are decided by themselves."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pytest

from ml_connector_dagster.defs.automation import FOLLOWS_ASSET, FOLLOWS_INPUTS
from ml_connector_dagster.sandbox.dagster_driver import Driver
from ml_connector_dagster.sandbox.stack import Stack

DAYS = dg.DailyPartitionsDefinition(start_date="2026-11-01", end_offset=1)


@dg.asset(partitions_def=DAYS)
def payments() -> None: ...


@dg.asset(automation_condition=FOLLOWS_INPUTS, deps=[payments])
def matches() -> None: ...


@dg.asset(automation_condition=FOLLOWS_INPUTS, deps=[matches])
def receipts() -> None: ...


@dg.asset_check(asset=payments, automation_condition=FOLLOWS_ASSET)
def payment_ids_unique() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=True)


DEFS = dg.Definitions(assets=[payments, matches, receipts], asset_checks=[payment_ids_unique])


class Ticks:
    """Successive evaluations, as the automation sensor ticks, against one instance."""

    def __init__(self, instance: dg.DagsterInstance) -> None:
        self.instance, self.cursor = instance, None
        self.tick()  # the sensor's first tick: a baseline

    def tick(self) -> set[str]:
        result = dg.evaluate_automation_conditions(DEFS, self.instance, cursor=self.cursor)
        self.cursor = result.cursor
        return {_name(r.key) for r in result.results if r.true_subset.size}


def _name(key: dg.AssetKey | dg.AssetCheckKey) -> str:
    return key.to_user_string() if isinstance(key, dg.AssetKey) else f"{key.asset_key.to_user_string()}:{key.name}"


def materialize(instance: dg.DagsterInstance, key: dg.AssetKey, partition: str | None = None) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(key, partition=partition))


def test_a_quiet_instance_requests_nothing_and_a_new_payments_day_requests_the_chain(instance) -> None:
    ticks = Ticks(instance)
    quiet = ticks.tick()
    materialize(instance, payments.key, "2026-11-03")  # what the inbox job records for a webhook

    assert quiet == set()
    # one run: receipts follows matches requested with it; the payments' check runs after what the ops recorded
    assert ticks.tick() == {"matches", "receipts", "payments:payment_ids_unique"}
    assert ticks.tick() == set()


def test_inputs_materialised_in_the_assets_own_run_do_not_request_it_again(instance) -> None:
    ticks = Ticks(instance)
    job = DEFS.resolve_implicit_global_asset_job_def()  # as "Materialize" in the UI: a run with an asset selection
    result = job.execute_in_process(instance=instance, asset_selection=[matches.key, receipts.key])

    assert result.success and ticks.tick() == set()


def test_an_input_updated_while_the_asset_runs_requests_it_once_more(instance) -> None:
    ticks = Ticks(instance)
    materialize(instance, payments.key, "2026-11-03")
    assert ticks.tick() == {"matches", "receipts", "payments:payment_ids_unique"}
    assert ticks.tick() == set()  # the requested run is under way
    materialize(instance, payments.key, "2026-11-04")  # a webhook's day, while the requested run works
    materialize(instance, matches.key)  # that run ends (it had read the payments before)
    materialize(instance, receipts.key)

    assert ticks.tick() == {"matches", "receipts", "payments:payment_ids_unique"}  # eager() would forget the 4th


@pytest.mark.slow
def test_payments_a_backfill_finds_are_decided_by_the_automation_alone(settled: tuple[Stack, Driver]) -> None:
    stack, driver = settled
    known = {e.payment_id for e in stack.store.ledger.list()}
    unannounced = set(stack.gocardless.world.payments) - known  # no whitelisted event ever named them
    today = datetime.now(UTC).date().isoformat()

    backfill = driver.backfill(dg.AssetKey(["gocardless", "payments"]), today, today)
    launched = driver.settle()

    assert unannounced and backfill.success
    assert unannounced <= {e.payment_id for e in stack.store.ledger.list()}
    [automation] = driver.runs[-launched:]
    materialized = driver.instance.get_records_for_run(
        automation.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
    ).records
    assert "reconciliation/payment_matches" in {
        r.event_log_entry.dagster_event.asset_key.to_user_string()  # type: ignore[union-attr]
        for r in materialized
    }
