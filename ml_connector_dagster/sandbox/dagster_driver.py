"""Drive the real Dagster definitions in this process: sensor ticks, automation, run requests, runs, until settled.

What the Dagster daemon does, made deterministic for the demo and the end-to-end tests: evaluate each
sensor against a real instance with its saved cursor (the inbox sensor, and the `sage100_poll` sensor that
asks the agent whether Sage changed), launch its run requests (deduped by run key), then evaluate the
assets' automation conditions (what the `reconciliation_automation` sensor does) and launch what they
request as one run, and repeat until nothing asks for anything. The definitions are the same objects
`dagster dev` loads.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import dagster as dg
from dagster._core.definitions.asset_daemon_cursor import AssetDaemonCursor

SENSORS = ("gocardless_inbox_sensor", "sage100_poll", "post_cash_receipts_retry")
AUTOMATION = "reconciliation_automation"  # the automation condition sensor whose work `automate` does
RANGE_START, RANGE_END = "dagster/asset_partition_range_start", "dagster/asset_partition_range_end"
QUIET: dict[str, object] = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass
class RunRecord:
    job: str
    run_id: str
    success: bool
    run_key: str | None


@dataclass
class Driver:
    defs: dg.Definitions
    instance: dg.DagsterInstance
    sensors: Sequence[str] = SENSORS
    cursors: dict[str, str | None] = field(default_factory=dict)
    runs: list[RunRecord] = field(default_factory=list)
    on_run: Callable[[RunRecord], None] | None = None
    run_config_defaults: dict[str, object] = field(default_factory=lambda: dict(QUIET))
    automation_cursor: AssetDaemonCursor | None = None

    def __post_init__(self) -> None:
        if self.automation_cursor is None:  # the sensor is on from the start: what is already there is the baseline
            self.automation_cursor = _evaluate(self.defs, self.instance, None).cursor

    def materialize(self, keys: Sequence[dg.AssetKey], run_config: Mapping[str, object] | None = None) -> RunRecord:
        """Materialise some assets as one run of the implicit asset job (like 'Materialize' in the UI)."""
        job = self.defs.resolve_implicit_global_asset_job_def()
        result = job.execute_in_process(
            instance=self.instance,
            asset_selection=list(keys),
            raise_on_error=False,
            run_config={**self.run_config_defaults, **(run_config or {})},
        )
        return self._record(job.name, result, None)

    def backfill(self, key: dg.AssetKey, first: str, last: str) -> RunRecord:
        """Materialise partitions `first`..`last` of a partitioned asset as one run (its single-run backfill
        policy), as "Materialize -> partition range" or `dagster asset materialize --partition-range` does."""
        job = self.defs.resolve_implicit_global_asset_job_def()
        result = job.execute_in_process(
            instance=self.instance,
            asset_selection=[key],
            raise_on_error=False,
            run_config=self.run_config_defaults,
            tags={RANGE_START: first, RANGE_END: last},
        )
        return self._record(job.name, result, None)

    def automate(self) -> int:
        """Evaluate the automation conditions once and launch what they request as one run; return 1 or 0."""
        result = _evaluate(self.defs, self.instance, self.automation_cursor)
        self.automation_cursor = result.cursor
        requested = [r.key for r in result.results if r.true_subset.size]
        keys = {k for k in requested if isinstance(k, dg.AssetKey)}
        checks = {k for k in requested if isinstance(k, dg.AssetCheckKey)}
        if not keys and not checks:
            return 0
        job = self.defs.resolve_implicit_global_asset_job_def()
        # The requested assets with all their checks, and the checks requested on their own (those of assets
        # the inbox job's ops recorded), as one run, as the automation sensor launches them.
        checks |= set(self.defs.resolve_asset_graph().get_check_keys_for_assets(keys))
        run = job.get_subset(asset_selection=keys, asset_check_selection=checks).execute_in_process(
            instance=self.instance,
            raise_on_error=False,
            run_config=self.run_config_defaults,
            tags={"dagster/sensor_name": AUTOMATION},
        )
        self._record(job.name, run, None)
        return 1

    def tick(self, name: str) -> int:
        """Evaluate one sensor once; launch what it requests; return how many runs were launched."""
        sensor = self.defs.resolve_sensor_def(name)
        with dg.build_sensor_context(
            instance=self.instance,
            cursor=self.cursors.get(name),
            sensor_name=name,
            definitions=self.defs,
            resources=self.defs.resources,
        ) as context:
            data = sensor.evaluate_tick(context)
            self.cursors[name] = data.cursor if data.cursor is not None else context.cursor
        launched = 0
        for request in data.run_requests or []:
            if request.run_key and self._already_ran(request.run_key):
                continue
            job_name = request.job_name or sensor.job_name
            if job_name is None:
                raise RuntimeError(f"sensor {name} requested a run and names no job to run it with")
            job = self.defs.resolve_job_def(job_name)
            tags = {
                **(request.tags or {}),
                **({"dagster/run_key": request.run_key} if request.run_key else {}),
                "dagster/sensor_name": name,
            }
            run_config = {**self.run_config_defaults, **(request.run_config or {})}
            result = job.execute_in_process(
                instance=self.instance,
                run_config=run_config,
                tags=tags,
                asset_selection=request.asset_selection,
                raise_on_error=False,
            )
            self._record(job_name, result, request.run_key)
            launched += 1
        return launched

    def settle(self, max_rounds: int = 100, idle: Callable[[], bool] = lambda: True) -> int:
        """Tick every sensor, then the automation, until a whole round launches nothing and `idle()` holds;
        return runs launched."""
        total = 0
        for _ in range(max_rounds):
            launched = sum(self.tick(name) for name in self.sensors) + self.automate()
            total += launched
            if launched == 0 and idle():
                return total
        raise RuntimeError(f"Dagster did not settle after {max_rounds} rounds of sensor ticks")

    def settle_step(self, idle: Callable[[], bool] = lambda: True) -> int:
        """After a scenario step: `settle` (the sage100_poll sensor reads what people changed in Sage)."""
        return self.settle(idle=idle)

    def run_job(self, name: str, ops: Sequence[str] | None = None) -> RunRecord:
        """Launch a job by name (e.g. `gocardless_inbox_job`, or only some of its ops) and wait for it."""
        job = self.defs.resolve_job_def(name)
        result = job.execute_in_process(
            instance=self.instance, op_selection=ops, raise_on_error=False, run_config=self.run_config_defaults
        )
        return self._record(name, result, None)

    def _already_ran(self, run_key: str) -> bool:
        return bool(self.instance.get_runs(filters=dg.RunsFilter(tags={"dagster/run_key": run_key}), limit=1))

    def _record(self, job: str, result: dg.ExecuteInProcessResult, run_key: str | None) -> RunRecord:
        record = RunRecord(job, result.run_id, result.success, run_key)
        self.runs.append(record)
        if self.on_run:
            self.on_run(record)
        return record


def _evaluate(
    defs: dg.Definitions, instance: dg.DagsterInstance, cursor: AssetDaemonCursor | None
) -> dg.EvaluateAutomationConditionsResult:
    """One evaluation of the automation conditions, without the beta warning Dagster's tester raises on each."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.evaluate_automation_conditions(defs, instance, cursor=cursor)
