"""Drive the real Dagster definitions in this process: sensor ticks, run requests, runs, until settled.

What the Dagster daemon does, made deterministic for the demo and the end-to-end tests: evaluate each
sensor against a real instance with its saved cursor, launch its run requests (deduped by run key) and
repeat until no sensor asks for anything. Between two steps of a scenario it also polls Sage, as the
`sage100_poll` schedule would, so that what people changed in Sage is read even in a step without
webhooks. The definitions are the same objects `dagster dev` loads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import dagster as dg

SENSORS = ("gocardless_inbox_sensor", "post_when_matched")
SAGE_POLL = (("sage100", "customers"), ("sage100", "ar_invoices"))  # what the sage100_poll schedule runs
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
        """Tick every sensor until a whole round launches nothing and `idle()` holds; return runs launched."""
        total = 0
        for _ in range(max_rounds):
            launched = sum(self.tick(name) for name in self.sensors)
            total += launched
            if launched == 0 and idle():
                return total
        raise RuntimeError(f"Dagster did not settle after {max_rounds} rounds of sensor ticks")

    def settle_step(self, idle: Callable[[], bool] = lambda: True) -> int:
        """After a scenario step: poll Sage (the sage100_poll schedule's run), then `settle`; returns runs."""
        self.materialize([dg.AssetKey(list(key)) for key in SAGE_POLL])
        return 1 + self.settle(idle=idle)

    def run_job(self, name: str, partition_key: str | None = None) -> RunRecord:
        """Launch a job by name (e.g. a partitioned backfill job) and wait for it."""
        job = self.defs.resolve_job_def(name)
        result = job.execute_in_process(
            instance=self.instance,
            partition_key=partition_key,
            raise_on_error=False,
            run_config=self.run_config_defaults,
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
