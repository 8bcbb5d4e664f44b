"""Dagster wiring for the GoCardless inbox: the job that processes it, the sensor that starts the job, and the
events sweep that fills the inbox with events the webhooks missed.

- `gocardless_inbox_sensor` (running by default, every 5 s) looks at due inbox rows and requests a run of
  `gocardless_inbox_job` keyed by the pending set's signature, so a tick that sees the same rows requests
  nothing new. Runs claim rows atomically: overlapping runs never process an event twice.
- `gocardless_inbox_job` processes the due payment, refund and payout events and lists the customers, and
  records a materialization of gocardless/customers, refunds and payouts and of each day (partition) of
  gocardless/payments it changed. It is a job of ops, not of assets: gocardless/payments is partitioned by
  creation day and a webhook's day is known only once the payment is read. The reconciliation assets follow
  through their automation conditions (defs/automation.py).
- `gocardless_events_sweep` (a sensor, running by default, every 10 minutes) lists `GET /events` since the
  newest stored event, less an overlap, and stores unseen whitelisted events in the inbox: the safety net
  for missed webhooks. It launches nothing itself; the inbox sensor picks up what it stored.
"""

import hashlib
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg

from ..gocardless import sync
from ..gocardless.rows import now_utc
from ..settings import SettingsError
from ..store.inbox import InboxRow
from .gocardless import (
    GoCardlessResource,
    InboxProcessingConfig,
    consume,
    customers_pass,
    gocardless_customers,
    gocardless_payouts,
    gocardless_refunds,
    payouts_pass,
    record_payment_days,
    refunds_pass,
)
from .resources import ConnectorSettings, OperationalStore, Warehouse

INBOX_TYPES = ("payments", "refunds", "payouts")
RUN_KEY_BUCKET_SECONDS = 600  # a pending set whose run died unclaimed is requested again after this
STALE_CLAIM = timedelta(hours=1)
SWEEP_OVERLAP = timedelta(hours=24)  # before the newest stored event: events missed while later ones came
SWEEP_FIRST_LOOKBACK = timedelta(days=7)  # when the inbox is empty


@dg.op(pool="warehouse", description="Due payments.* events: re-read the payments; record the days they changed.")
def inbox_payments(
    context: dg.OpExecutionContext,
    config: InboxProcessingConfig,
    gocardless: GoCardlessResource,
    store: OperationalStore,
    warehouse: Warehouse,
) -> None:
    started = now_utc()
    outcome = consume(context, sync.process_payment_events, config, gocardless, store, warehouse)
    days = record_payment_days(context, warehouse, started, outcome)
    context.log.info(f"{outcome.processed} payment events processed; partitions changed: {', '.join(days) or 'none'}")


def _record(context: dg.OpExecutionContext, asset: dg.AssetsDefinition, metadata: dict[str, Any]) -> None:
    context.log_event(dg.AssetMaterialization(asset_key=asset.key, metadata=metadata))


@dg.op(pool="warehouse", description="Due refunds.* events: re-read the refunds (records gocardless/refunds).")
def inbox_refunds(
    context: dg.OpExecutionContext,
    config: InboxProcessingConfig,
    gocardless: GoCardlessResource,
    store: OperationalStore,
    warehouse: Warehouse,
) -> None:
    _record(context, gocardless_refunds, refunds_pass(context, config, gocardless, store, warehouse))


@dg.op(
    pool="warehouse",
    ins={"after_payments": dg.In(dg.Nothing)},  # the payments' payout links first
    description="Due payouts.* events, linked and unsettled payouts read again (records gocardless/payouts).",
)
def inbox_payouts(
    context: dg.OpExecutionContext,
    config: InboxProcessingConfig,
    gocardless: GoCardlessResource,
    store: OperationalStore,
    warehouse: Warehouse,
) -> None:
    _record(context, gocardless_payouts, payouts_pass(context, config, gocardless, store, warehouse))


@dg.op(pool="warehouse", description="Every GoCardless customer, upserted (records gocardless/customers).")
def inbox_customers(context: dg.OpExecutionContext, gocardless: GoCardlessResource, warehouse: Warehouse) -> None:
    _record(context, gocardless_customers, customers_pass(gocardless, warehouse))


@dg.job(
    description="Process due GoCardless inbox events into the warehouse (requested by gocardless_inbox_sensor); "
    "the customer map, matches, write-back and payouts follow by their automation conditions."
)
def gocardless_inbox_job() -> None:
    inbox_customers()
    inbox_refunds()
    inbox_payouts(after_payments=inbox_payments())


def pending_signature(rows: Sequence[InboxRow], now: datetime | None = None) -> str:
    """Run key for a pending set: same rows and attempts in the same time bucket -> same key (deduped)."""
    now = now or datetime.now(UTC)
    bucket = int(now.timestamp()) // RUN_KEY_BUCKET_SECONDS
    digest = hashlib.sha256(",".join(f"{r.seq}:{r.attempts}" for r in rows).encode()).hexdigest()[:24]
    return f"gocardless-inbox-{digest}-{bucket}"


@dg.sensor(
    job=gocardless_inbox_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Requests a gocardless_inbox_job run when inbox events are due (new or retry time reached).",
)
def gocardless_inbox_sensor(context: dg.SensorEvaluationContext, store: OperationalStore) -> dg.SensorResult:
    inbox = store.get().inbox
    released = inbox.release_stale(STALE_CLAIM)
    due = inbox.due(limit=5000, resource_types=INBOX_TYPES)
    max_seq = inbox.max_seq()
    previous = int(context.cursor or 0)
    cursor = str(max(previous, max_seq))
    if released:
        context.log.warning(f"{released} inbox events claimed by runs that never finished were released")
    if not due:
        return dg.SensorResult(skip_reason="no inbox events are due", cursor=cursor)
    new = sum(1 for r in due if r.seq > previous)
    request = dg.RunRequest(
        run_key=pending_signature(due), tags={"gocardless/due_events": str(len(due)), "gocardless/new_events": str(new)}
    )
    return dg.SensorResult(run_requests=[request], cursor=cursor)


@dg.sensor(
    name="gocardless_events_sweep",
    minimum_interval_seconds=600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="The safety net for missed webhooks: lists GET /events since the newest stored event (less "
    "24 h) and stores unseen whitelisted events in the inbox; launches nothing (the inbox sensor does).",
)
def gocardless_events_sweep(
    context: dg.SensorEvaluationContext,
    gocardless: GoCardlessResource,
    store: OperationalStore,
    connector_settings: ConnectorSettings,
) -> dg.SkipReason:
    try:
        whitelist, client = connector_settings.get().gocardless_event_whitelist, gocardless.get_client()
    except SettingsError as exc:
        return dg.SkipReason(f"GoCardless not configured: {'; '.join(exc.problems)}")
    result = sync.sweep_events(store.get(), client, whitelist, SWEEP_OVERLAP, SWEEP_FIRST_LOOKBACK)
    for refusal in result.refused:
        context.log.warning(f"GoCardless listed an event the inbox cannot hold, not stored: {refusal}")
    return dg.SkipReason(
        f"events since {result.since}: {result.listed} listed, {result.whitelisted} whitelisted, "
        f"{result.stored} new (the inbox sensor processes them), {result.duplicates} already stored, "
        f"{len(result.refused)} refused"
    )


defs = dg.Definitions(jobs=[gocardless_inbox_job], sensors=[gocardless_inbox_sensor, gocardless_events_sweep])
