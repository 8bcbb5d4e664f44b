"""Dagster wiring for GoCardless: the API resource and the gocardless/* assets. The inbox job, its sensor
and the events sweep are in `defs/gocardless_inbox.py`; the work itself is in `gocardless.sync`.

`gocardless/payments` is partitioned by the UTC day each payment was created at GoCardless, from the
go-live date (ML_CONNECTOR_GO_LIVE_DATE, read when the definitions load; settings/go_live.py). Two things
materialise its partitions:
- a backfill ("Materialize" -> a partition range in the UI, or `dagster asset materialize -m
  ml_connector_dagster.definitions --select gocardless/payments --partition-range 2026-11-01...2026-11-05`)
  runs once for the whole range (BackfillPolicy.single_run()), lists the payments created in it and upserts
  them, recording each day's `dagster/row_count`;
- `gocardless_inbox_job`, within seconds of a webhook, records a materialization of each day whose
  payments the inbox pass changed, with that day's row count.
Either way the reconciliation assets follow through their automation conditions (defs/automation.py).
"""

from collections.abc import Callable
from datetime import datetime
from typing import Any

import dagster as dg
from pydantic import PrivateAttr

from ..gocardless import sync
from ..gocardless.client import GoCardlessClient, RetryPolicy
from ..gocardless.consumer import InboxOutcome, RetryRule
from ..settings.go_live import go_live_date
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

# The daily partitions of gocardless/payments: go-live (a setting) to today (a payment created today can
# be backfilled and its webhook recorded at once).
payment_days = dg.DailyPartitionsDefinition(start_date=go_live_date().isoformat(), end_offset=1, timezone="UTC")


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


def _claimed_by(context: dg.AssetExecutionContext | dg.OpExecutionContext) -> str:
    run_id = context.op_execution_context.run_id if isinstance(context, dg.AssetExecutionContext) else context.run_id
    return f"run:{run_id}"[:64]  # as in cash_receipts: set in a direct invocation too


def consume(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
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
    partitions_def=payment_days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    description="Payments by the UTC day they were created at GoCardless (table gocardless_payments): the "
    "inbox job records the days its webhooks changed; materialising a range re-reads those days' payments.",
)
def gocardless_payments(
    context: dg.AssetExecutionContext, gocardless: GoCardlessResource, warehouse: Warehouse
) -> dg.MaterializeResult[None]:
    window, days = context.partition_time_window, context.partition_keys
    upserted = sync.backfill_payments(gocardless.get_client(), warehouse.connect, window.start, window.end)
    for day, rows in sync.payments_per_day(warehouse.connect, days).items():
        context.add_asset_metadata({"dagster/row_count": rows}, partition_key=day)
    context.log.info(f"{upserted} payments created {days[0]}..{days[-1]} re-read and upserted")
    table = _payments_table(warehouse)
    dashboard = dashboard_metadata(gocardless.get_client().base_url, "payments")
    return dg.MaterializeResult(metadata={"payments_upserted": upserted, "days": len(days), **table, **dashboard})


def _payments_table(warehouse: Warehouse) -> dict[str, Any]:
    """The table's name and schema; its row count is per partition (each day's payments), not the table's."""
    found = warehouse_table(warehouse.connect, "gocardless_payments")
    return {k: v for k, v in found.items() if k != "dagster/row_count"}


def record_payment_days(
    context: dg.OpExecutionContext, warehouse: Warehouse, since: datetime, outcome: InboxOutcome
) -> list[str]:
    """Record a materialization of each gocardless/payments partition (creation day) written since `since`,
    with that day's row count; a day before go-live is only logged (it has no partition)."""
    touched = sync.payment_days_touched(warehouse.connect, since)
    kept = [d for d in touched if d >= payment_days.start.strftime("%Y-%m-%d")]
    if len(kept) < len(touched):
        context.log.warning(
            f"payments created before the go-live date were updated: {sorted(set(touched) - set(kept))}"
        )
    table = _payments_table(warehouse)
    for day, rows in sync.payments_per_day(warehouse.connect, kept).items():
        context.log_event(
            dg.AssetMaterialization(
                asset_key=gocardless_payments.key,
                partition=day,
                description="payments changed by webhooks",
                metadata={**outcome.metadata(), **table, "dagster/row_count": rows},
            )
        )
    return kept


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
    return dg.MaterializeResult(metadata=refunds_pass(context, config, gocardless, store, warehouse))


def refunds_pass(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    config: InboxProcessingConfig,
    gocardless: GoCardlessResource,
    store: OperationalStore,
    warehouse: Warehouse,
) -> dict[str, Any]:
    """gocardless/refunds' work (the asset's and the inbox job's): due refund events; its metadata."""
    outcome = consume(context, sync.process_refund_events, config, gocardless, store, warehouse)
    return {
        **outcome.metadata(),
        **warehouse_table(warehouse.connect, "gocardless_refunds"),
        **dashboard_metadata(gocardless.get_client().base_url, "refunds"),
    }


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
    return dg.MaterializeResult(metadata=payouts_pass(context, config, gocardless, store, warehouse))


def payouts_pass(
    context: dg.AssetExecutionContext | dg.OpExecutionContext,
    config: InboxProcessingConfig,
    gocardless: GoCardlessResource,
    store: OperationalStore,
    warehouse: Warehouse,
) -> dict[str, Any]:
    """gocardless/payouts' work (the asset's and the inbox job's): due payout events, linked and unsettled
    payouts read again; its metadata."""
    outcome = consume(context, sync.process_payout_events, config, gocardless, store, warehouse)
    linked = sync.fetch_unknown_payouts(gocardless.get_client(), warehouse.connect)
    refresh = sync.refresh_unsettled_payouts(gocardless.get_client(), warehouse.connect)
    converted = sync.refresh_converted_payments(gocardless.get_client(), warehouse.connect)
    for failure in refresh.failed:
        context.log.warning(f"payout not read again (next pass tries again): {failure}")
    return {
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
    return dg.MaterializeResult(metadata=customers_pass(gocardless, warehouse))


def customers_pass(gocardless: GoCardlessResource, warehouse: Warehouse) -> dict[str, Any]:
    """gocardless/customers' work (the asset's and the inbox job's): every customer upserted; its metadata."""
    count = sync.sync_all_customers(gocardless.get_client(), warehouse.connect)
    return {
        "customers": count,
        **warehouse_table(warehouse.connect, "gocardless_customers"),
        **dashboard_metadata(gocardless.get_client().base_url, "customers"),
    }


GOCARDLESS_ASSETS = [gocardless_customers, gocardless_payments, gocardless_refunds, gocardless_payouts]

defs = dg.Definitions(
    assets=GOCARDLESS_ASSETS,
    resources={"gocardless": GoCardlessResource(settings=settings_resource, **environment_fields(GoCardlessResource))},
)
