"""Dagster wiring for operations: the watchdog that says why runs wait in the queue.

`run_queue_watchdog` (running by default, once a minute) warns about every run QUEUED longer than
ML_CONNECTOR_MAX_QUEUED_SECONDS (a setting, default 600) and names the pool it waits for and the run and step
holding that pool, with what to do; it also warns while the instance's configuration would let a dead
run worker freeze the queue (run monitoring off, slots not freed, a launcher that cannot check workers).
It launches nothing: the tick's skip reason (Overview > Sensors) and the daemon's log carry the warnings.
The work is in `ml_connector_dagster.run_queue`.
"""

import time

import dagster as dg

from .. import run_queue
from ..settings import load_settings

ALL_CLEAR = "no run has been queued longer than {threshold} s; run monitoring is configured"


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Warns when a run stays QUEUED longer than ML_CONNECTOR_MAX_QUEUED_SECONDS (default 600) "
    "and says which pool, run and step block it; launches nothing.",
)
def run_queue_watchdog(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    threshold = load_settings().max_queued_seconds
    found = run_queue.check(context.instance, time.time(), threshold)
    for line in found:
        context.log.warning(line)
    return dg.SkipReason("\n".join(found) if found else ALL_CLEAR.format(threshold=threshold))


defs = dg.Definitions(sensors=[run_queue_watchdog])
