"""Dagster wiring for GoCardless: the API resource, the gocardless/* assets, the inbox sensor, the events
sweep and the payments backfill. The work itself is in `gocardless.sync` and `gocardless.client`.

How it fits together:
- `gocardless_inbox_sensor` (running by default, every 5 s) looks at due inbox rows and requests a run of
  `gocardless_inbox_job` keyed by the pending set's signature, so a tick that sees the same rows requests
  nothing new. Runs claim rows atomically: overlapping runs never process an event twice.
- `gocardless_inbox_job` materialises gocardless/customers, payments, refunds and payouts.
- `gocardless_events_sweep` (every 10 minutes, running by default) lists `GET /events` since the newest
  stored event, less an overlap, and stores unseen whitelisted events: the safety net for missed webhooks.
- `gocardless_payments_backfill` is a daily-partitioned job: select a range of days under the job's
  Partitions tab and "Launch backfill" (or `dagster job backfill -j gocardless_payments_backfill
  --from 2026-11-01 --to 2026-11-25`) to re-read the payments created on those days and upsert them. It
  records each run as a materialization of gocardless/payments. (A partitioned job rather than a
  partitioned asset, because gocardless/payments is driven by the inbox, not by dates.)
"""

import hashlib
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

import dagster as dg
from pydantic import PrivateAttr

from ..gocardless import sync
from ..gocardless.client import GoCardlessClient, RetryPolicy
from ..gocardless.consumer import InboxOutcome, RetryRule
from ..store.inbox import InboxRow
from .metadata import OWNERS, dashboard_metadata, tags, warehouse_table
from .resources import (
    ConnectorSettings,
    MaskedSecrets,
    OperationalStore,
    ResourceNotOpen,
    Warehouse,
    environment_fields,
    setting_field,
    setting_values,
    settings_resource,
)
from .sources import GOCARDLESS_API

INBOX_TYPES = ("payments", "refunds", "payouts")
RUN_KEY_BUCKET_SECONDS = 600  # a pending set whose run died unclaimed is requested again after this
STALE_CLAIM = timedelta(hours=1)
BACKFILL_START = "2024-01-01"


class GoCardlessResource(MaskedSecrets, dg.ConfigurableResource["GoCardlessResource"]):
    """The GoCardless API client, configured from the connector's settings; the retry budget is tunable.

    Its API URL and access token are settings fields (see `defs/resources.py`: EnvVar when the variable is
    set, else the stored secret or TOML file applies). One client (one pooled HTTP session) per run or tick,
    made on first use and closed when it ends.
    """

    settings: ConnectorSettings
    gocardless_api_url: str | None = setting_field("ML_CONNECTOR_GOCARDLESS_API_URL: live, sandbox or a URL")
    gocardless_access_token: str | None = setting_field(
        "ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN (secret; or `ml-connector secrets set gocardless_access_token`)",
        secret=True,
    )
    max_attempts: int = 6
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 30.0
    max_total_seconds: float = 120.0
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 30.0
    _client: GoCardlessClient | None = PrivateAttr(default=None)
    _open: bool = PrivateAttr(default=False)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._open = True

    def get_client(self) -> GoCardlessClient:
        """The run's (or tick's) client; SettingsError when no access token is configured."""
        if not self._open:
            raise ResourceNotOpen("the GoCardless resource is used outside a run or sensor tick")
        if self._client is None:
            policy = RetryPolicy(
                self.max_attempts,
                self.base_delay_seconds,
                self.max_delay_seconds,
                self.max_total_seconds,
                self.connect_timeout_seconds,
                self.read_timeout_seconds,
            )
            settings = self.settings.load(setting_values(self)).gocardless()
            self._client = GoCardlessClient.from_settings(settings, policy)
        return self._client

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        self._open = False
        client, self._client = self._client, None
        if client is not None:
            client.close()


class InboxProcessingConfig(dg.Config):
    """Retries of events whose processing fails: attempts before the review queue, backoff base (s)."""

    max_attempts: int = 6
    retry_base_delay_seconds: float = 30.0


def _claimed_by(context: dg.AssetExecutionContext) -> str:
    return f"run:{context.op_execution_context.run_id}"[:64]  # as in cash_receipts: set in a direct invocation too


def _consume(
    context: dg.AssetExecutionContext,
    process: Callable[..., InboxOutcome],
    config: InboxProcessingConfig,
    gocardless: GoCardlessResource,
    store: OperationalStore,
    warehouse: Warehouse,
) -> InboxOutcome:
    """Run one inbox consumer with its resources, logging each failed event; raise if nothing succeeded."""
    rule = RetryRule(config.max_attempts, config.retry_base_delay_seconds)
    outcome = process(store.get(), gocardless.get_client(), warehouse.connect, _claimed_by(context), rule)
    for error in outcome.errors:
        context.log.warning(error)
    if outcome.errors and not outcome.processed:
        raise dg.Failure(
            f"no event could be processed ({len(outcome.errors)} failed; they will be retried "
            "with backoff or are in the review queue)",
            metadata=outcome.metadata(),
        )
    return outcome


@dg.asset(
    key_prefix="gocardless",
    name="payments",
    group_name="gocardless",
    pool="warehouse",
    kinds={"gocardless", "duckdb"},
    owners=OWNERS,
    tags=tags("gocardless", "payments"),
    deps=[GOCARDLESS_API],
    description="Payments named by new inbox events, re-read from the API (table gocardless_payments).",
)
def gocardless_payments(
    context: dg.AssetExecutionContext,
    config: InboxProcessingConfig,
    gocardless: GoCardlessResource,
    store: OperationalStore,
    warehouse: Warehouse,
) -> dg.MaterializeResult[None]:
    outcome = _consume(context, sync.process_payment_events, config, gocardless, store, warehouse)
    return dg.MaterializeResult(
        metadata={
            **outcome.metadata(),
            **warehouse_table(warehouse.connect, "gocardless_payments"),
            **dashboard_metadata(gocardless.get_client().base_url, "payments"),
        }
    )


@dg.asset(
    key_prefix="gocardless",
    name="refunds",
    group_name="gocardless",
    pool="warehouse",
    kinds={"gocardless", "duckdb"},
    owners=OWNERS,
    tags=tags("gocardless", "payments"),
    deps=[GOCARDLESS_API],
    description="Refunds named by new inbox events, re-read from the API (table gocardless_refunds).",
)
def gocardless_refunds(
    context: dg.AssetExecutionContext,
    config: InboxProcessingConfig,
    gocardless: GoCardlessResource,
    store: OperationalStore,
    warehouse: Warehouse,
) -> dg.MaterializeResult[None]:
    outcome = _consume(context, sync.process_refund_events, config, gocardless, store, warehouse)
    return dg.MaterializeResult(
        metadata={
            **outcome.metadata(),
            **warehouse_table(warehouse.connect, "gocardless_refunds"),
            **dashboard_metadata(gocardless.get_client().base_url, "refunds"),
        }
    )


@dg.asset(
    key_prefix="gocardless",
    name="payouts",
    group_name="gocardless",
    pool="warehouse",
    kinds={"gocardless", "duckdb"},
    owners=OWNERS,
    tags=tags("gocardless", "payouts"),
    deps=[GOCARDLESS_API, gocardless_payments],
    description="Payouts (named by events or linked from payments) with their items, read again until final "
    "(paid, FX rate and tax amounts confirmed) (tables gocardless_payouts, gocardless_payout_items).",
)
def gocardless_payouts(
    context: dg.AssetExecutionContext,
    config: InboxProcessingConfig,
    gocardless: GoCardlessResource,
    store: OperationalStore,
    warehouse: Warehouse,
) -> dg.MaterializeResult[None]:
    outcome = _consume(context, sync.process_payout_events, config, gocardless, store, warehouse)
    linked = sync.fetch_unknown_payouts(gocardless.get_client(), warehouse.connect)
    refresh = sync.refresh_unsettled_payouts(gocardless.get_client(), warehouse.connect)
    converted = sync.refresh_converted_payments(gocardless.get_client(), warehouse.connect)
    for failure in refresh.failed:
        context.log.warning(f"payout not read again (next pass tries again): {failure}")
    return dg.MaterializeResult(
        metadata={
            **outcome.metadata(),
            "payouts_fetched_from_payment_links": linked,
            "unsettled_payouts": refresh.unsettled,
            "unsettled_payouts_read_again": refresh.refreshed,
            "unsettled_payouts_failed": len(refresh.failed),
            "payments_read_again_for_confirmed_fx": converted,
            "payout_items": warehouse_table(warehouse.connect, "gocardless_payout_items")["dagster/row_count"],
            **warehouse_table(warehouse.connect, "gocardless_payouts"),
            **dashboard_metadata(gocardless.get_client().base_url, "payouts"),
        }
    )


@dg.asset(
    key_prefix="gocardless",
    name="customers",
    group_name="gocardless",
    pool="warehouse",
    kinds={"gocardless", "duckdb"},
    owners=OWNERS,
    tags=tags("gocardless", "customers"),
    deps=[GOCARDLESS_API],
    description="Every GoCardless customer, upserted (no webhook announces customer changes) "
    "(table gocardless_customers).",
)
def gocardless_customers(gocardless: GoCardlessResource, warehouse: Warehouse) -> dg.MaterializeResult[None]:
    count = sync.sync_all_customers(gocardless.get_client(), warehouse.connect)
    return dg.MaterializeResult(
        metadata={
            "customers": count,
            **warehouse_table(warehouse.connect, "gocardless_customers"),
            **dashboard_metadata(gocardless.get_client().base_url, "customers"),
        }
    )


GOCARDLESS_ASSETS = [gocardless_customers, gocardless_payments, gocardless_refunds, gocardless_payouts]
gocardless_inbox_job = dg.define_asset_job(
    "gocardless_inbox_job",
    # The events' payments, refunds and payouts, Sage's changes since the last poll, and everything
    # downstream (customer map, payment matches, payouts): one run from webhook to decisions.
    selection=(dg.AssetSelection.assets(*GOCARDLESS_ASSETS) | dg.AssetSelection.groups("sage100")).downstream(),
    description="Process due GoCardless inbox events into the warehouse and decide them (requested by "
    "gocardless_inbox_sensor); posting follows when payment matches materialise.",
)


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


class SweepConfig(dg.Config):
    """How far back the sweep looks: before the newest stored event, and when the inbox is empty."""

    overlap_hours: float = 24.0
    first_lookback_days: float = 7.0


@dg.op(description="List GoCardless events since the newest stored one and store unseen whitelisted events.")
def sweep_gocardless_events(
    context: dg.OpExecutionContext,
    config: SweepConfig,
    gocardless: GoCardlessResource,
    store: OperationalStore,
    connector_settings: ConnectorSettings,
) -> None:
    whitelist = connector_settings.get().gocardless_event_whitelist
    result = sync.sweep_events(
        store.get(),
        gocardless.get_client(),
        whitelist,
        timedelta(hours=config.overlap_hours),
        timedelta(days=config.first_lookback_days),
    )
    context.log.info(
        f"events since {result.since}: {result.listed} listed, {result.whitelisted} whitelisted, "
        f"{result.stored} new, {result.duplicates} already stored"
    )
    for refusal in result.refused:
        context.log.warning(f"GoCardless listed an event the inbox cannot hold, not stored: {refusal}")
    context.add_output_metadata(
        {
            "since": result.since,
            "listed": result.listed,
            "whitelisted": result.whitelisted,
            "stored": result.stored,
            "duplicates": result.duplicates,
            "refused": dg.MetadataValue.json(list(result.refused)),
        }
    )


@dg.job(description="The safety net for missed webhooks: GET /events into the inbox.")
def gocardless_events_sweep_job() -> None:
    sweep_gocardless_events()


gocardless_events_sweep = dg.ScheduleDefinition(
    name="gocardless_events_sweep",
    cron_schedule="*/10 * * * *",
    job=gocardless_events_sweep_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

daily = dg.DailyPartitionsDefinition(start_date=BACKFILL_START, end_offset=1, timezone="UTC")


@dg.op(pool="warehouse", description="Re-read the payments created on the partition's day and upsert them.")
def backfill_gocardless_payments(
    context: dg.OpExecutionContext, gocardless: GoCardlessResource, warehouse: Warehouse
) -> None:
    window = context.partition_time_window
    count = sync.backfill_payments(gocardless.get_client(), warehouse.connect, window.start, window.end)
    context.log_event(
        dg.AssetMaterialization(
            asset_key=gocardless_payments.key,
            description=f"backfill of payments created {context.partition_key}",
            metadata={"backfill_day": context.partition_key, "payments_upserted": count},
        )
    )


@dg.job(partitions_def=daily, description="Re-read payments created in a date range (launch as a backfill).")
def gocardless_payments_backfill() -> None:
    backfill_gocardless_payments()


defs = dg.Definitions(
    assets=GOCARDLESS_ASSETS,
    jobs=[gocardless_inbox_job, gocardless_events_sweep_job, gocardless_payments_backfill],
    sensors=[gocardless_inbox_sensor],
    schedules=[gocardless_events_sweep],
    resources={"gocardless": GoCardlessResource(settings=settings_resource, **environment_fields(GoCardlessResource))},
)
