"""A run launcher that lets Dagster's run monitoring see a dead run worker on this host.

`DefaultRunLauncher` (what `dagster dev` and `dagster-daemon` use) starts each run as a child process of
the code location's gRPC server, but it cannot answer run monitoring's question "is this run's worker
alive?" (`supports_check_run_worker_health` is False), so monitoring never looks at STARTED runs. While
the code server lives it notices its own dead children and fails their runs; when it died too (the
daemon's process tree killed, an OOM kill), the run stayed STARTED for ever and kept its pool slot.

`HealthCheckedRunLauncher` answers from this host's process table: the worker is the process that
emitted the run's RUN_START event (every Dagster event records its pid). A dead worker makes monitoring
mark the run FAILURE, which lets `run_retries` re-execute it (from the interrupted step) and
`free_slots_after_run_end_seconds` give its pool slots back. Runs whose code server is on another host
are not judged (their pid means nothing here) and are reported running, as before.

Uses Dagster internals `CheckRunHealthResult` and `WorkerStatus` (no public equivalent exists for a run
launcher's health check) and `GRPC_INFO_TAG` (the run tag DefaultRunLauncher writes: ".dagster/grpc_info").
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus  # no public name for a health check's answer
from dagster._core.storage.tags import GRPC_INFO_TAG  # no public name; where DefaultRunLauncher launched the run

LOOPBACK = frozenset({"localhost", "127.0.0.1", "::1"})
START_TIME_TOLERANCE_SECONDS = 2.0  # /proc's boot time has one-second resolution and drifts a little


@dataclass(frozen=True)
class RunWorker:
    """The process that started executing a run: its pid and when it said so (Unix seconds)."""

    pid: int
    started_at: float


class HealthCheckedRunLauncher(dg.DefaultRunLauncher):
    """DefaultRunLauncher plus a run worker health check for run monitoring (workers on this host)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        host = code_server_host(run.tags)
        if host is None or not is_this_host(host):
            where = f"on {host}" if host else "not launched through a code server"
            return CheckRunHealthResult(WorkerStatus.RUNNING, f"not checked: the run's worker is {where}")
        worker = self._worker_of(run.run_id)
        if worker is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "not checked: the run has no RUN_START event yet")
        if process_alive(worker.pid, worker.started_at):
            return CheckRunHealthResult(
                WorkerStatus.RUNNING, f"run worker pid {worker.pid} is alive", run_worker_id=str(worker.pid)
            )
        return CheckRunHealthResult(
            WorkerStatus.FAILED,
            f"run worker pid {worker.pid} on this host is gone (killed or crashed) while the run was STARTED",
            run_worker_id=str(worker.pid),
        )

    def _worker_of(self, run_id: str) -> RunWorker | None:
        records = self._instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.RUN_START, limit=1, ascending=False
        ).records
        event = records[0].event_log_entry if records else None
        if event is None or event.dagster_event is None or event.dagster_event.pid is None:
            return None
        return RunWorker(event.dagster_event.pid, event.timestamp)


def code_server_host(tags: Mapping[str, str]) -> str | None:
    """Where the run's code server is ("localhost", a host name, or "socket"); None if unknown."""
    raw = tags.get(GRPC_INFO_TAG)
    if not raw:
        return None
    try:
        info = json.loads(raw)
    except ValueError:
        return None
    return "socket" if info.get("socket") else info.get("host")


def is_this_host(host: str) -> bool:
    """A Unix socket, a loopback name or this machine's own name."""
    return host == "socket" or host in LOOPBACK or host in {socket.gethostname(), socket.getfqdn()}


def process_alive(pid: int, started_before: float) -> bool:
    """Whether process `pid` is running and is the one that existed at `started_before` (not a reused pid).

    On Linux from /proc (a zombie counts as dead); elsewhere only whether the pid exists.
    """
    stat = Path(f"/proc/{pid}/stat")
    if not Path("/proc/self/stat").exists():
        return _pid_exists(pid)
    try:
        fields = stat.read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    state, start_ticks = fields[0], int(fields[19])
    if state in ("Z", "X"):
        return False
    return _boot_time() + start_ticks / os.sysconf("SC_CLK_TCK") <= started_before + START_TIME_TOLERANCE_SECONDS


def _boot_time() -> float:
    for line in Path("/proc/stat").read_text().splitlines():
        if line.startswith("btime "):
            return float(line.split()[1])
    raise RuntimeError("/proc/stat has no btime line")


def _pid_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
