"""The run queue watchdog: runs QUEUED too long are named with the pool, run and step that block them, and what
to do; an instance configured so that a dead run worker could freeze the queue again is named too.

The wording is decided on plain data; the last tests read a real SQLite instance where a real QUEUED run
(submitted by `dagster job launch`, no daemon to dequeue it) waits behind a FAILED run holding the pool.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from ml_connector_dagster import run_queue
from ml_connector_dagster.defs.operations import run_queue_watchdog
from ml_connector_dagster.instance_config import instance_yaml
from ml_connector_dagster.run_queue import PoolState, QueuedRun, QueueSnapshot, SlotHolder
from ml_connector_dagster.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[1]
STEP = "reconciliation__cash_receipts"


def queued(seconds: float, run_id: str = "queued-1") -> QueuedRun:
    return QueuedRun(run_id, "post_cash_receipts_job", seconds, ("warehouse",))


def snapshot(*runs: QueuedRun, holders: tuple[SlotHolder, ...] = (), in_progress: int = 0) -> QueueSnapshot:
    return QueueSnapshot(runs, {"warehouse": PoolState("warehouse", 1, holders)}, in_progress)


# --- wording, on plain data -------------------------------------------------------------------------------------------


def test_a_run_queued_behind_a_failed_runs_slot_names_that_run_its_step_and_how_to_free_it() -> None:
    dead = SlotHolder("dead-run", STEP, "FAILURE", finished=True, seconds=540)

    [line] = run_queue.warnings(snapshot(queued(660), holders=(dead,)), threshold_seconds=600)

    assert line.startswith(
        "run queued-1 (post_cash_receipts_job) has been QUEUED for 11 min: "
        "pool 'warehouse' (limit 1) is held by run dead-run step reconciliation__cash_receipts "
        "(the run is FAILURE, ended 9 min ago), which never gave its slot back."
    )
    assert 'open run dead-run in the Dagster UI and choose "Free concurrency slots"' in line


def test_a_run_queued_behind_a_running_step_says_how_long_it_has_run_and_how_to_stop_it() -> None:
    busy = SlotHolder("busy-run", "sage100__ar_invoices", "STARTED", finished=False, seconds=1500)

    [line] = run_queue.warnings(snapshot(queued(700), holders=(busy,)), threshold_seconds=600)

    assert "held by run busy-run step sage100__ar_invoices (STARTED for 25 min)" in line
    assert "terminate run busy-run in the Dagster UI" in line


def test_a_run_queued_while_its_pool_has_room_points_at_the_run_limit_and_the_daemon() -> None:
    [line] = run_queue.warnings(snapshot(queued(900), in_progress=4), threshold_seconds=600)

    assert "no pool it needs is full; 4 run(s) in progress" in line
    assert "max_concurrent_runs" in line and "dagster-daemon is running" in line


def test_a_run_queued_for_less_than_the_threshold_is_not_reported() -> None:
    dead = SlotHolder("dead-run", STEP, "FAILURE", finished=True, seconds=100)

    assert run_queue.warnings(snapshot(queued(599), holders=(dead,)), threshold_seconds=600) == []


def test_several_stuck_runs_are_reported_oldest_first() -> None:
    lines = run_queue.warnings(snapshot(queued(700, "newer"), queued(1300, "older")), threshold_seconds=600)

    assert [line.split()[1] for line in lines] == ["older", "newer"]


def test_an_instance_without_monitoring_slot_freeing_or_worker_checks_gets_one_problem_each() -> None:
    problems = run_queue.configuration_problems(
        monitoring_enabled=False, free_slots_after_seconds=None, launcher_checks_workers=False
    )

    assert [p.split()[0] for p in problems] == [
        "run_monitoring.enabled",
        "run_monitoring.free_slots_after_run_end_seconds",
        "the",
    ]
    assert "HealthCheckedRunLauncher" in problems[2]


# --- the threshold ----------------------------------------------------------------------------------------------------


def test_the_threshold_defaults_to_ten_minutes(tmp_path: Path) -> None:
    assert load_settings({"ML_CONNECTOR_HOME": str(tmp_path)}).max_queued_seconds == 600


def test_the_threshold_is_read_from_its_variable(tmp_path: Path) -> None:
    env = {"ML_CONNECTOR_HOME": str(tmp_path), "ML_CONNECTOR_MAX_QUEUED_SECONDS": " 120 "}
    assert load_settings(env).max_queued_seconds == 120


@pytest.mark.parametrize("value", ["ten", "0", "-5", "1.5", "\u0661\u0660", "604801"])
def test_a_threshold_that_is_not_a_positive_whole_number_is_refused_naming_the_variable(
    tmp_path: Path, value: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"ML_CONNECTOR_HOME": str(tmp_path), "ML_CONNECTOR_MAX_QUEUED_SECONDS": value})

    assert refused.value.problems == [
        f"ML_CONNECTOR_MAX_QUEUED_SECONDS: {value!r} is not a whole number from 1 to 604800 (digits 0-9)"
    ]


# --- a real instance --------------------------------------------------------------------------------------------------


@pytest.fixture
def dagster_home(tmp_path: Path) -> Path:
    (tmp_path / "dagster.yaml").write_text(instance_yaml())
    return tmp_path


@pytest.fixture
def instance(dagster_home: Path) -> Iterator[dg.DagsterInstance]:
    with dg.DagsterInstance.from_config(str(dagster_home)) as inst:
        yield inst


def submit_queued_run(dagster_home: Path) -> str:
    """`dagster job launch` through the instance's QueuedRunCoordinator; with no daemon the run stays QUEUED."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_CONNECTOR_")}
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "dagster",
            "job",
            "launch",
            "-j",
            "post_cash_receipts_job",
            "-w",
            str(ROOT / "workspace.yaml"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**env, "DAGSTER_HOME": str(dagster_home)},
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
        [run] = instance.get_runs(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))
    return run.run_id


def failed_run_holding_the_warehouse(instance: dg.DagsterInstance) -> str:
    """What a run worker killed in its write-back step leaves: a FAILED run still holding that step's slot."""
    from ml_connector_dagster.definitions import defs

    run = instance.create_run_for_job(defs.resolve_job_def("post_cash_receipts_job"), run_id=str(uuid.uuid4()))
    instance.event_log_storage.initialize_concurrency_limit_to_default("warehouse")
    assert instance.event_log_storage.claim_concurrency_slot("warehouse", run.run_id, STEP).is_claimed
    instance.report_run_failed(run)
    return run.run_id


def test_the_projects_instance_settings_have_no_configuration_problem(instance: dg.DagsterInstance) -> None:
    assert run_queue.instance_problems(instance) == []


@pytest.mark.slow
def test_the_snapshot_finds_the_queued_run_and_the_failed_run_holding_its_pool(
    instance: dg.DagsterInstance, dagster_home: Path
) -> None:
    waiting = submit_queued_run(dagster_home)
    dead = failed_run_holding_the_warehouse(instance)

    found = run_queue.snapshot(instance, now=time.time())

    assert [(r.run_id, r.job_name, r.pools) for r in found.queued] == [
        (waiting, "post_cash_receipts_job", ("warehouse",))
    ]
    [holder] = found.pools["warehouse"].holders
    assert (holder.run_id, holder.step_key, holder.status, holder.finished) == (dead, STEP, "FAILURE", True)


@pytest.mark.slow
def test_the_watchdog_sensor_warns_about_the_run_queued_too_long_behind_the_dead_run(
    instance: dg.DagsterInstance, dagster_home: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    waiting = submit_queued_run(dagster_home)
    dead = failed_run_holding_the_warehouse(instance)
    monkeypatch.setenv("ML_CONNECTOR_MAX_QUEUED_SECONDS", "1")

    deadline = time.monotonic() + 30
    while waiting not in (reason := run_queue_watchdog(dg.build_sensor_context(instance=instance)).skip_message):
        assert time.monotonic() < deadline, f"the queued run was never reported: {reason}"
        time.sleep(0.2)

    assert f"run {waiting} (post_cash_receipts_job) has been QUEUED for" in reason
    assert f"held by run {dead} step {STEP} (the run is FAILURE" in reason


def test_the_watchdog_sensor_is_quiet_when_nothing_waits(instance: dg.DagsterInstance, home: Path) -> None:
    result = run_queue_watchdog(dg.build_sensor_context(instance=instance))

    assert result.skip_message == "no run has been queued longer than 600 s; run monitoring is configured"


def test_the_watchdog_sensor_refuses_a_bad_threshold_with_the_variables_name(
    instance: dg.DagsterInstance, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_MAX_QUEUED_SECONDS", "10m")

    with pytest.raises(SettingsError, match="ML_CONNECTOR_MAX_QUEUED_SECONDS: '10m'"):
        run_queue_watchdog(dg.build_sensor_context(instance=instance))
