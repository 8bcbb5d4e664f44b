"""A quiet day launches no runs: once the sandbox has settled, every sensor of the code location (the
automation condition sensor's conditions included) evaluated against the real instance requests nothing, and
no asset is Unsynced (stale) without a reason."""

from __future__ import annotations

import dagster as dg
import pytest
from dagster._core.definitions.data_version import StaleStatus
from dagster._utils.test.data_versions import get_stale_status_resolver

from ml_connector_dagster.sandbox.dagster_driver import Driver
from ml_connector_dagster.sandbox.stack import Stack


def evaluate_every_sensor(driver: Driver) -> dict[str, list[dg.RunRequest]]:
    """Each sensor's requests on one tick (with the cursor the driver left, as the daemon keeps it)."""
    requested: dict[str, list[dg.RunRequest]] = {}
    for sensor in driver.defs.get_repository_def().sensor_defs:
        if isinstance(sensor, dg.AutomationConditionSensorDefinition):
            result = dg.evaluate_automation_conditions(driver.defs, driver.instance, cursor=driver.automation_cursor)
            requested[sensor.name] = [
                dg.RunRequest(asset_selection=[r.key]) for r in result.results if r.true_subset.size
            ]
            continue
        with dg.build_sensor_context(
            instance=driver.instance,
            cursor=driver.cursors.get(sensor.name),
            sensor_name=sensor.name,
            definitions=driver.defs,
            resources=driver.defs.resources,
        ) as context:
            requested[sensor.name] = list(sensor.evaluate_tick(context).run_requests or [])
    return requested


@pytest.mark.slow
def test_on_a_settled_sandbox_every_sensor_skips_and_nothing_is_unsynced(settled: tuple[Stack, Driver]) -> None:
    stack, driver = settled
    repo = driver.defs.get_repository_def()

    requested = evaluate_every_sensor(driver)
    again = evaluate_every_sensor(driver)

    assert stack.store.ledger.counts().get("posted"), "the month posted receipts"
    assert repo.schedule_defs == []  # nothing runs by the clock alone
    assert set(requested) == {s.name for s in repo.sensor_defs}
    assert {name: r for name, r in requested.items() if r} == {}
    assert {name: r for name, r in again.items() if r} == {}
    assets = [a for a in repo.assets_defs_by_key.values() if a.is_materializable]
    resolver = get_stale_status_resolver(driver.instance, list({id(a): a for a in assets}.values()))
    unpartitioned = [k for k in repo.asset_graph.get_all_asset_keys() if not repo.asset_graph.get(k).is_partitioned]
    assert {
        k.to_user_string(): resolver.get_status(k) for k in unpartitioned if resolver.get_status(k) != StaleStatus.FRESH
    } == {}
