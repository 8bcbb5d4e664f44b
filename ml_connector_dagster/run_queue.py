"""Why runs wait: runs QUEUED longer than a threshold, and what holds the pool slots they need.

A run worker killed mid-step used to keep its `warehouse` slot for ever, and every later run (retries,
the write-back, the Sage polls) stayed QUEUED behind it until someone freed the slot by hand. Run
monitoring now frees it (dagster.yaml); this module is the alarm for when that, or anything else, fails:
it names each run queued too long, the pool it waits for, the run and step holding that pool, and what
to do. `snapshot` reads the Dagster instance into plain data; `warnings` decides and words them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import dagster as dg

FREE_SLOTS_HINT = (
    'open run {run} in the Dagster UI and choose "Free concurrency slots" in its menu '
    "(the pool's holders are listed under Deployment > Concurrency > {pool})"
)


@dataclass(frozen=True)
class QueuedRun:
    run_id: str
    job_name: str
    queued_seconds: float
    pools: tuple[str, ...]


@dataclass(frozen=True)
class SlotHolder:
    """A run holding a pool slot. `status` is a DagsterRunStatus value; `seconds` is the time since the run
    ended if it is `finished`, else how long it has been running (None when unknown)."""

    run_id: str
    step_key: str
    status: str
    finished: bool
    seconds: float | None = None


@dataclass(frozen=True)
class PoolState:
    pool: str
    limit: int
    holders: tuple[SlotHolder, ...]


@dataclass(frozen=True)
class QueueSnapshot:
    queued: tuple[QueuedRun, ...]
    pools: Mapping[str, PoolState]
    runs_in_progress: int


# --- deciding and wording ---------------------------------------------------------------------------------------


def warnings(snapshot: QueueSnapshot, threshold_seconds: float) -> list[str]:
    """One line per run queued longer than the threshold, oldest first, saying what blocks it."""
    stuck = sorted(
        (r for r in snapshot.queued if r.queued_seconds > threshold_seconds), key=lambda r: -r.queued_seconds
    )
    return [
        f"run {r.run_id} ({r.job_name}) has been QUEUED for {_duration(r.queued_seconds)}: {_blocker(r, snapshot)}"
        for r in stuck
    ]


def _blocker(run: QueuedRun, snapshot: QueueSnapshot) -> str:
    full = [pool for name in run.pools if (pool := snapshot.pools.get(name)) and len(pool.holders) >= pool.limit]
    if not full:
        return (
            f"no pool it needs is full; {snapshot.runs_in_progress} run(s) in progress - check concurrency.runs."
            "max_concurrent_runs in dagster.yaml and that dagster-daemon is running (Deployment > Daemons)"
        )
    return "; ".join(_pool_line(pool) for pool in full)


def _pool_line(pool: PoolState) -> str:
    holders = ", ".join(_holder_line(pool.pool, h) for h in pool.holders)
    return f"pool '{pool.pool}' (limit {pool.limit}) is held by {holders}"


def _holder_line(pool: str, holder: SlotHolder) -> str:
    where = f"run {holder.run_id} step {holder.step_key}"
    if holder.finished:
        ended = f", ended {_duration(holder.seconds)} ago" if holder.seconds is not None else ""
        return (
            f"{where} (the run is {holder.status}{ended}), which never gave its slot back. Run monitoring frees it "
            "free_slots_after_run_end_seconds after the run ends: check run_monitoring in dagster.yaml and "
            "the daemon's MONITORING thread (Deployment > Daemons). To free it now: "
            + FREE_SLOTS_HINT.format(pool=pool, run=holder.run_id)
        )
    running = f" for {_duration(holder.seconds)}" if holder.seconds is not None else ""
    return (
        f"{where} ({holder.status}{running}); if that step hangs, terminate run {holder.run_id} in the Dagster "
        "UI (its slot is freed when it ends)"
    )


def configuration_problems(
    monitoring_enabled: bool, free_slots_after_seconds: int | None, launcher_checks_workers: bool
) -> list[str]:
    """What in the instance's configuration would let a dead run worker freeze the queue again."""
    problems = []
    if not monitoring_enabled:
        problems.append(
            "run_monitoring.enabled is not true in dagster.yaml: a run whose worker died stays "
            "STARTED and holds its pool slots; use the project's dagster.yaml"
        )
    if not free_slots_after_seconds:
        problems.append(
            "run_monitoring.free_slots_after_run_end_seconds is not set in dagster.yaml: a run that "
            "died in a step keeps that step's pool slot for ever; use the project's dagster.yaml"
        )
    if not launcher_checks_workers:
        problems.append(
            "the instance's run_launcher cannot check run workers, so run monitoring cannot see a "
            "dead one; set run_launcher to ml_connector_dagster.run_launcher.HealthCheckedRunLauncher"
        )
    return problems


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    return f"{minutes} min" if minutes else f"{int(seconds)} s"


# --- reading the instance ----------------------------------------------------------------------------------------


def snapshot(instance: dg.DagsterInstance, now: float) -> QueueSnapshot:
    """Queued runs, the pools they need and who holds those pools' slots, as of Unix time `now`."""
    records = instance.get_run_records(dg.RunsFilter(statuses=[dg.DagsterRunStatus.QUEUED]))
    queued = tuple(
        QueuedRun(
            r.dagster_run.run_id, r.dagster_run.job_name, now - r.create_timestamp.timestamp(), _pools(r.dagster_run)
        )
        for r in records
    )
    needed = sorted({p for run in queued for p in run.pools})
    pools = {p: _pool_state(instance, p, now) for p in needed} if _has_pools(instance) else {}
    in_progress = instance.get_runs_count(
        dg.RunsFilter(
            statuses=[dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
        )
    )
    return QueueSnapshot(queued, pools, in_progress)


def instance_problems(instance: dg.DagsterInstance) -> list[str]:
    settings = instance.run_monitoring_settings or {}
    return configuration_problems(
        bool(instance.run_monitoring_enabled),
        settings.get("free_slots_after_run_end_seconds"),
        instance.run_launcher.supports_check_run_worker_health,
    )


def _pools(run: dg.DagsterRun) -> tuple[str, ...]:
    concurrency = run.run_op_concurrency
    return tuple(sorted(concurrency.all_pools or ())) if concurrency else ()


def _has_pools(instance: dg.DagsterInstance) -> bool:
    return instance.event_log_storage.supports_global_concurrency_limits


def _pool_state(instance: dg.DagsterInstance, pool: str, now: float) -> PoolState:
    info = instance.event_log_storage.get_concurrency_info(pool)
    holders = tuple(_holder(instance, slot.run_id, slot.step_key, now) for slot in info.claimed_slots)
    return PoolState(pool, info.slot_count, holders)


def _holder(instance: dg.DagsterInstance, run_id: str, step_key: str, now: float) -> SlotHolder:
    record = instance.get_run_record_by_id(run_id)
    if record is None:
        return SlotHolder(run_id, step_key, "DELETED", finished=True)
    run = record.dagster_run
    if run.is_finished:
        return SlotHolder(run_id, step_key, run.status.value, True, now - record.end_time if record.end_time else None)
    return SlotHolder(run_id, step_key, run.status.value, False, now - record.start_time if record.start_time else None)


def check(instance: dg.DagsterInstance, now: float, threshold_seconds: float) -> list[str]:
    """Everything the watchdog reports: configuration problems first, then each run queued too long."""
    return [*instance_problems(instance), *warnings(snapshot(instance, now), threshold_seconds)]
