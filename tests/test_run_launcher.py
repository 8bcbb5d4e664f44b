"""HealthCheckedRunLauncher tells run monitoring whether a run's worker process on this host is alive.

Real processes and a real SQLite Dagster instance configured with the launcher: a run executes in a
child process until that process is killed with SIGKILL; the launcher must then say FAILED, not RUNNING.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.launcher import WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG  # the tag DefaultRunLauncher writes, not a copy of ours

from ml_connector_dagster.run_launcher import HealthCheckedRunLauncher, process_alive

LAUNCHER_YAML = """\
telemetry:
  enabled: false
run_launcher:
  module: ml_connector_dagster.run_launcher
  class: HealthCheckedRunLauncher
"""
# A run that stays STARTED until its process is killed (bounded, so a failed test leaves nothing behind).
WAITING_RUN = """\
import sys, time
import dagster as dg

@dg.op
def wait_to_be_killed() -> None:
    time.sleep(120)

@dg.job
def waits() -> None:
    wait_to_be_killed()

waits.execute_in_process(instance=dg.DagsterInstance.get(), run_id=sys.argv[1])
"""
LOCAL_CODE_SERVER = json.dumps({"host": "localhost", "socket": "/tmp/code-server.sock"})  # as dagster-daemon writes it


@pytest.fixture
def instance(tmp_path: Path) -> Iterator[dg.DagsterInstance]:
    (tmp_path / "dagster.yaml").write_text(LAUNCHER_YAML)
    with dg.DagsterInstance.from_config(str(tmp_path)) as inst:
        yield inst


def start_waiting_run(home: Path, run_id: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", WAITING_RUN, run_id],
        env={**os.environ, "DAGSTER_HOME": str(home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def wait_started(instance: dg.DagsterInstance, run_id: str, worker: subprocess.Popen) -> dg.DagsterRun:
    deadline = time.monotonic() + 90
    while (run := instance.get_run_by_id(run_id)) is None or run.status != dg.DagsterRunStatus.STARTED:
        assert worker.poll() is None, f"the run's process exited with {worker.returncode}"
        assert time.monotonic() < deadline, "the run did not start within 90 s"
        time.sleep(0.1)
    return run


# --- the process table ------------------------------------------------------------------------------------------------


def test_a_running_process_that_existed_when_the_run_started_is_alive() -> None:
    assert process_alive(os.getpid(), started_before=time.time())


def test_a_killed_and_reaped_process_is_not_alive() -> None:
    proc = subprocess.Popen(["sleep", "60"])
    proc.kill()
    proc.wait()

    assert not process_alive(proc.pid, started_before=time.time())


def test_a_killed_process_not_yet_reaped_is_not_alive() -> None:
    proc = subprocess.Popen(["sleep", "60"])
    os.kill(proc.pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{proc.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline, "the killed process did not become a zombie"
        time.sleep(0.01)
    try:
        assert not process_alive(proc.pid, started_before=time.time())
    finally:
        proc.wait()


def test_a_pid_reused_by_a_process_started_after_the_run_is_not_the_worker() -> None:
    an_hour_ago = time.time() - 3600  # this process started after that: it cannot be that run's worker

    assert not process_alive(os.getpid(), started_before=an_hour_ago)


# --- the launcher's health check -------------------------------------------------------------------------------------


def test_the_launcher_tells_run_monitoring_it_can_check_workers(instance: dg.DagsterInstance) -> None:
    assert isinstance(instance.run_launcher, HealthCheckedRunLauncher)
    assert instance.run_launcher.supports_check_run_worker_health


@pytest.mark.slow
def test_a_run_whose_worker_is_alive_is_running_and_once_killed_is_failed(
    instance: dg.DagsterInstance, tmp_path: Path
) -> None:
    run_id = str(uuid.uuid4())
    worker = start_waiting_run(tmp_path, run_id)
    try:
        run = wait_started(instance, run_id, worker)
        instance.add_run_tags(run_id, {GRPC_INFO_TAG: LOCAL_CODE_SERVER})  # as if launched by a local code server
        run = instance.get_run_by_id(run_id)
        alive = instance.run_launcher.check_run_worker_health(run)

        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(10)
        dead = instance.run_launcher.check_run_worker_health(run)
    finally:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
            worker.wait(10)

    assert (alive.status, alive.run_worker_id) == (WorkerStatus.RUNNING, str(worker.pid)), alive
    assert (dead.status, dead.run_worker_id) == (WorkerStatus.FAILED, str(worker.pid)), dead
    assert f"pid {worker.pid}" in dead.msg and "gone" in dead.msg


def test_a_run_whose_code_server_is_on_another_host_is_not_judged(instance: dg.DagsterInstance) -> None:
    run = instance.create_run_for_job(
        dg.GraphDefinition("nothing").to_job(),
        run_id=str(uuid.uuid4()),
        tags={GRPC_INFO_TAG: json.dumps({"host": "runner-7.example", "port": 4000})},
    )

    health = instance.run_launcher.check_run_worker_health(run)

    assert health.status == WorkerStatus.RUNNING
    assert health.msg == "not checked: the run's worker is on runner-7.example"


def test_a_run_not_launched_through_a_code_server_is_not_judged(instance: dg.DagsterInstance) -> None:
    run = instance.create_run_for_job(dg.GraphDefinition("nothing").to_job(), run_id=str(uuid.uuid4()))

    health = instance.run_launcher.check_run_worker_health(run)

    assert health.status == WorkerStatus.RUNNING
    assert "not launched through a code server" in health.msg
