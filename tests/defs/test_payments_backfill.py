"""gocardless/payments as a daily-partitioned asset: a partition range is one run (single-run backfill
policy) that re-reads the payments created in it and records each day's row count; the same through
`dagster asset materialize --partition-range` in a subprocess; and the go-live date's partitions."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from ml_connector_dagster.definitions import defs
from ml_connector_dagster.defs import gocardless as gc_defs
from ml_connector_dagster.defs.resources import ConnectorSettings, Warehouse
from ml_connector_dagster.sandbox.gocardless_api import GoCardlessStandIn
from ml_connector_dagster.settings import load_settings

PAYMENTS = gc_defs.gocardless_payments.key
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"


@pytest.fixture
def resources(api_env: GoCardlessStandIn) -> dict[str, Any]:
    settings = ConnectorSettings()
    return {
        "warehouse": Warehouse(settings=settings),
        "gocardless": gc_defs.GoCardlessResource(settings=settings, max_attempts=3, base_delay_seconds=0.01),
    }


def days() -> tuple[str, str]:
    today = datetime.now(UTC).date()
    return (today - timedelta(days=1)).isoformat(), today.isoformat()


def row_counts(instance: dg.DagsterInstance, *partitions: str) -> dict[str, list[int]]:
    """Each partition's recorded dagster/row_count values, oldest first."""
    found: dict[str, list[int]] = {}
    for day in partitions:
        records = instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=PAYMENTS, asset_partitions=[day]), limit=10, ascending=True
        ).records
        found[day] = [r.asset_materialization.metadata["dagster/row_count"].value for r in records]  # type: ignore[union-attr]
    return found


def test_the_asset_is_partitioned_by_day_from_the_go_live_date_with_a_single_run_backfill_policy() -> None:
    asset = defs.resolve_assets_def(PAYMENTS)

    assert isinstance(asset.partitions_def, dg.DailyPartitionsDefinition)
    assert asset.partitions_def.timezone == "UTC"
    assert asset.backfill_policy == dg.BackfillPolicy.single_run()
    assert asset.partitions_def.get_last_partition_key() == datetime.now(UTC).date().isoformat()  # today's too


def test_a_partition_range_is_one_run_that_re_reads_its_days_and_records_each_days_row_count(
    instance: dg.DagsterInstance, resources: dict, api_env: GoCardlessStandIn
) -> None:
    for _ in range(3):
        api_env.play_step()  # the stand-in creates payments today
    yesterday, today = days()
    job = dg.Definitions(
        assets=[gc_defs.gocardless_payments], resources=resources
    ).resolve_implicit_global_asset_job_def()

    result = job.execute_in_process(instance=instance, tags={RANGE_START: yesterday, RANGE_END: today})

    assert result.success
    with duckdb.connect(str(load_settings().warehouse_path), read_only=True) as conn:
        stored = conn.execute(
            "SELECT count(*), count(customer), count(last_event_id) FROM gocardless_payments"
        ).fetchall()
    assert stored == [(16, 16, 0)]
    assert row_counts(instance, yesterday, today) == {yesterday: [0], today: [16]}
    assert instance.get_materialized_partitions(PAYMENTS) == {yesterday, today}
    [materialization, *_] = result.asset_materializations_for_node("gocardless__payments")
    assert materialization.metadata["payments_upserted"].value == 16


@pytest.mark.slow
def test_dagster_asset_materialize_with_a_partition_range_works_from_the_command_line(
    api_env: GoCardlessStandIn, tmp_path: Path
) -> None:
    for _ in range(3):
        api_env.play_step()
    yesterday, today = days()
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    command = [sys.executable, "-m", "dagster", "asset", "materialize", "-m", "ml_connector_dagster.definitions"]
    command += ["--select", "gocardless/payments", "--partition-range", f"{yesterday}...{today}"]

    done = subprocess.run(
        command, env={**os.environ, "DAGSTER_HOME": str(dagster_home)}, capture_output=True, text=True, timeout=300
    )

    assert done.returncode == 0, done.stderr[-3000:]
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        assert row_counts(instance, yesterday, today) == {yesterday: [0], today: [16]}
        [run] = instance.get_runs()  # one run for the range
        assert (run.tags[RANGE_START], run.tags[RANGE_END]) == (yesterday, today)


@pytest.mark.slow
def test_an_asset_backfill_over_a_range_is_launched_by_the_daemon_as_one_run_and_completes(
    api_env: GoCardlessStandIn,
) -> None:
    """What "Materialize -> partition range" submits: a PartitionBackfill the backfill daemon turns into runs
    (once `PythonError: StopIteration`). Runs are launched at once and execute in this process."""
    from dagster._core.execution.backfill import BulkActionStatus, PartitionBackfill
    from dagster._core.test_utils import create_test_daemon_workspace_context
    from dagster._core.workspace.load_target import ModuleTarget
    from dagster._daemon.backfill import execute_backfill_iteration

    for _ in range(3):
        api_env.play_step()
    yesterday, today = days()
    overrides = {
        "run_launcher": {
            "module": "dagster._core.launcher.sync_in_memory_run_launcher",
            "class": "SyncInMemoryRunLauncher",
        },
        "run_coordinator": {"module": "dagster._core.run_coordinator", "class": "DefaultRunCoordinator"},
    }
    target = ModuleTarget("ml_connector_dagster.definitions", None, working_directory=os.getcwd(), location_name="ml")
    with (
        dg.instance_for_test(overrides=overrides) as instance,
        create_test_daemon_workspace_context(target, instance) as workspace,
    ):
        backfill = PartitionBackfill.from_asset_partitions(
            backfill_id="range",
            asset_graph=workspace.create_request_context().asset_graph,
            partition_names=[yesterday, today],
            asset_selection=[PAYMENTS],
            backfill_timestamp=datetime.now(UTC).timestamp(),
            tags={},
            dynamic_partitions_store=instance,
            all_partitions=False,
            title=None,
            description=None,
            run_config=None,
        )
        instance.add_backfill(backfill)
        for _ in range(5):  # request the run, see it done, mark the backfill complete
            errors = [e for e in execute_backfill_iteration(workspace, logging.getLogger("backfill")) if e]
            assert errors == [], errors[0].to_string()
            if instance.get_backfill("range").status != BulkActionStatus.REQUESTED:  # type: ignore[union-attr]
                break

        assert instance.get_backfill("range").status == BulkActionStatus.COMPLETED_SUCCESS  # type: ignore[union-attr]
        [run] = instance.get_runs()
        assert run.is_success and (run.tags[RANGE_START], run.tags[RANGE_END]) == (yesterday, today)
        assert row_counts(instance, yesterday, today) == {yesterday: [0], today: [16]}
