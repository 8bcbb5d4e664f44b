"""A run worker killed (kill -9) in the middle of the write-back, under the real `dagster-daemon`: with nobody
acting, the dead run is marked FAILURE, the pool slot it held is freed, the runs queued behind it get the
slot, and every payment ends posted exactly once (one receipt per payment in Sage, ledger `posted`).

This is issue 16's freeze: the dead run kept its `warehouse` slot, so its retry, the write-back requested by
post_when_matched and every later run stayed QUEUED until someone freed the slot by hand. The daemon runs
with the project's dagster.yaml, only its intervals shortened to keep the tests short (see FAST_INSTANCE).

Two ways to die: the run worker alone (its code server sees its child die and fails the run), and the run
worker together with its code server (nothing is left to notice but run monitoring, through
HealthCheckedRunLauncher; the daemon starts a new code server within about a minute).

The victim is found by its socket, not by Dagster's bookkeeping: the process holding the client end of the
connection on which the agent has just committed a receipt (`FaultProxy` forwards CreateCashReceipt, then
kills the sender before answering). It must turn out to be the process that started one of the runs.
"""

from __future__ import annotations

import os
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import pytest
import yaml

from ml_connector_dagster.bench.e2e import (
    DaemonProcess,
    payment_id,
    prepare_dagster_home,
    session_members,
    write_matching_scenario,
)
from ml_connector_dagster.instance_config import instance_yaml
from ml_connector_dagster.sandbox.stack import Stack, start_stack

from support.fault_proxy import FaultProxy, Rule, process_of_client

PAYMENTS = 6
POOL = "warehouse"
FAST_INSTANCE = {  # the shipped dagster.yaml with short intervals; 10 x 10 s still outlasts a code server restart
    "run_coordinator": {
        "config": {
            "dequeue_interval_seconds": 1,
            "max_user_code_failure_retries": 10,
            "user_code_failure_retry_delay": 10,
        }
    },
    "run_monitoring": {"poll_interval_seconds": 2, "free_slots_after_run_end_seconds": 2},
}
SETTLE_TIMEOUT = 240.0
UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


@dataclass
class Crash:
    """What a crash left behind once posting had settled."""

    at_kill: dict[str, Any]  # pid killed, receipts in Sage and ledger counts at that moment
    dead: dg.DagsterRun | None  # the run the killed process had started
    failure: str  # the message of the dead run's RUN_FAILURE event
    retries: list[dg.DagsterRun]  # runs launched by run_retries for the dead run
    holders: set[str]  # runs still holding a warehouse slot
    receipts: Counter  # receipts per payment in the simulated company


# --- the daemon, the proxy and the kill -------------------------------------------------------------------------------


def fast_instance_yaml() -> str:
    return yaml.safe_dump(_merged(yaml.safe_load(instance_yaml()), FAST_INSTANCE))


def _merged(base: dict, override: dict) -> dict:
    return {**base, **{k: _merged(base.get(k, {}), v) if isinstance(v, dict) else v for k, v in override.items()}}


def daemon_env(stack: Stack, agent_url: str) -> dict[str, str]:
    """The stack's settings (nothing of the caller's ML_CONNECTOR_*), with the agent behind the proxy."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_CONNECTOR_")}
    return {**env, **stack.env, "ML_CONNECTOR_SAGE_AGENT_WSDL": f"{agent_url}/agent?wsdl"}


def receipts_per_payment(stack: Stack) -> Counter:
    return Counter(r["UDF_GC_PAYMENT_ID"] for r in stack.sage.company.rows("AR_CashReceiptsHeader"))


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def kill_the_sender(
    rule: Rule, daemon: DaemonProcess, stack: Stack, with_code_server: bool, at_kill: dict[str, Any]
) -> None:
    """kill -9 the daemon-launched process that sent the request `rule` acted on (and first its parent, the
    code server, if asked); note what Sage and the ledger hold at that moment."""
    pid = process_of_client(rule.peer, [p for p in session_members(daemon.proc.pid) if p != daemon.proc.pid])
    at_kill.update(pid=pid, receipts=sum(receipts_per_payment(stack).values()), ledger=stack.store.ledger.counts())
    if pid is None:
        return
    if with_code_server:
        os.kill(parent_of(pid), signal.SIGKILL)
    os.kill(pid, signal.SIGKILL)


def wait_until(condition: Callable[[], bool], what: str, daemon: DaemonProcess) -> None:
    deadline = time.monotonic() + SETTLE_TIMEOUT
    while not condition():
        assert daemon.proc.poll() is None, f"dagster-daemon exited with {daemon.proc.returncode}; see {daemon.log_path}"
        assert time.monotonic() < deadline, f"{what} within {SETTLE_TIMEOUT:.0f} s; see {daemon.log_path}"
        time.sleep(0.5)


# --- what the instance says afterwards -------------------------------------------------------------------------------


def run_started_by(instance: dg.DagsterInstance, pid: int) -> dg.DagsterRun | None:
    """The run whose RUN_START event was written by process `pid` (its run worker)."""
    for run in instance.get_runs():
        records = instance.get_records_for_run(run.run_id, of_type=dg.DagsterEventType.RUN_START).records
        if any(r.event_log_entry.dagster_event.pid == pid for r in records):
            return run
    return None


def failure_message(instance: dg.DagsterInstance, run_id: str) -> str:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    return " | ".join(r.event_log_entry.message or "" for r in records)


def aftermath(instance: dg.DagsterInstance, stack: Stack, at_kill: dict[str, Any]) -> Crash:
    dead = run_started_by(instance, at_kill["pid"]) if at_kill.get("pid") else None
    retries = instance.get_runs(dg.RunsFilter(tags={"dagster/parent_run_id": dead.run_id})) if dead else []
    holders = {slot.run_id for slot in instance.event_log_storage.get_concurrency_info(POOL).claimed_slots}
    return Crash(
        at_kill,
        dead,
        failure_message(instance, dead.run_id) if dead else "",
        retries,
        holders,
        receipts_per_payment(stack),
    )


# --- the experiment ---------------------------------------------------------------------------------------------------


def crash_the_write_back(tmp_path: Path, with_code_server: bool) -> Crash:
    """Confirm PAYMENTS payments under the real daemon, kill the run worker on the first committed receipt,
    then only wait (bounded) until every payment is posted and no run is queued or running."""
    scenario = write_matching_scenario(tmp_path / "scenario", PAYMENTS)
    dagster_home = prepare_dagster_home(tmp_path / "dagster", instance_yaml=fast_instance_yaml())
    at_kill: dict[str, Any] = {}
    with (
        start_stack(scenario, tmp_path / "stack", webhook_retry_intervals=(0.2, 0.5, 1.0, 2.0)) as stack,
        dg.DagsterInstance.from_config(str(dagster_home)) as instance,
    ):
        proxy = FaultProxy(stack.sage.agent.port)
        daemon = DaemonProcess(dagster_home, daemon_env(stack, proxy.url), tmp_path / "daemon.log")
        rule = Rule(
            "CreateCashReceipt",
            "drop_after",
            then=lambda: kill_the_sender(rule, daemon, stack, with_code_server, at_kill),
        )
        proxy.rules.append(rule)
        try:
            daemon.wait_ready()
            stack.gocardless.play_step()  # every payment confirmed; the webhooks reach our receiver
            wait_until(lambda: "pid" in at_kill, "no run reached the write-back", daemon)
            killed = time.monotonic()
            wait_until(
                lambda: (
                    stack.store.ledger.counts() == {"posted": PAYMENTS}
                    and not instance.get_runs(dg.RunsFilter(statuses=UNFINISHED))
                ),
                "posting did not finish by itself",
                daemon,
            )
            print(
                f"\nkilled {'run worker and code server' if with_code_server else 'run worker'}; "
                f"posting finished {time.monotonic() - killed:.1f} s later, nobody acting"
            )
        finally:
            daemon.stop()
            proxy.stop()
        return aftermath(instance, stack, at_kill)


def assert_killed_mid_write_and_posted_once(crash: Crash) -> None:
    assert crash.at_kill["pid"] is not None, f"no daemon-launched process held the connection: {crash.at_kill}"
    assert crash.at_kill["receipts"] == 1 and crash.at_kill["ledger"].get("posting") == 1, (
        f"not killed between the agent's commit and the ledger's record: {crash.at_kill}"
    )
    assert crash.dead is not None, f"the killed process {crash.at_kill['pid']} was not a run worker"
    assert crash.dead.status == dg.DagsterRunStatus.FAILURE, crash.dead.status
    assert crash.dead.run_id not in crash.holders, f"the dead run still holds a {POOL} slot"
    assert crash.receipts == Counter({payment_id(n): 1 for n in range(PAYMENTS)}), (
        f"not one receipt per payment: {crash.receipts}"
    )


@pytest.mark.slow
def test_a_run_worker_killed_mid_write_back_is_failed_and_retried_and_posting_finishes_with_no_one_acting(
    home: Path, tmp_path: Path
) -> None:
    crash = crash_the_write_back(tmp_path, with_code_server=False)

    assert_killed_mid_write_and_posted_once(crash)
    assert [r.status for r in crash.retries] == [dg.DagsterRunStatus.SUCCESS], (
        f"run_retries did not re-execute the dead run: {crash.retries}"
    )


@pytest.mark.slow
def test_a_run_worker_killed_with_its_code_server_is_failed_by_run_monitoring_and_posting_finishes_with_no_one_acting(
    home: Path, tmp_path: Path
) -> None:
    crash = crash_the_write_back(tmp_path, with_code_server=True)

    assert_killed_mid_write_and_posted_once(crash)
    assert f"run worker pid {crash.at_kill['pid']} on this host is gone" in crash.failure, crash.failure
