"""Dagster wiring for Sage 100: the agent and eBusiness resources, the AR assets, their checks and the poll.

Assets `sage100/customers` and `sage100/ar_invoices` copy Sage's AR into the DuckDB tables `sage_customers`
and `sage_ar_invoices`, incrementally on DateUpdated/TimeUpdated (the logic is in sage100/sync.py).

Backfill a date range by materializing with run config, e.g. in the launchpad or:
    dagster asset materialize -m ml_connector_dagster.definitions --select 'sage100/ar_invoices' \
      --config-json '{"ops": {"sage100__ar_invoices": {"config":
                      {"updated_from": "2026-11-01", "updated_to": "2026-11-15"}}}}'
`full_refresh: true` re-reads everything and deletes rows Sage no longer has (purged invoices).

The `sage100_poll` sensor asks the agent once a minute whether anything changed since the warehouse's
watermark (sage100/changes.py: one page of each list, empty on a quiet system) and requests
`sage100_poll_job` only then; the reconciliation assets follow by their automation conditions.
"""

import datetime as dt

import dagster as dg
from pydantic import Field, PrivateAttr

from ..sage100 import AgentClient, EBusinessClient, SageCompanyError, SageLogonError, changes, sync
from ..settings import SettingsError
from .metadata import OWNERS, tags, warehouse_table
from .resources import (
    ConnectorSettings,
    MaskedSecrets,
    Warehouse,
    environment_fields,
    setting_field,
    setting_values,
    settings_resource,
)
from .sources import SAGE_AR

SAGE_LOGON_HELP = {
    "sage_username": "ML_CONNECTOR_SAGE_USERNAME: the Sage 100 user enabled for web services",
    "sage_password": "ML_CONNECTOR_SAGE_PASSWORD (secret; or `ml-connector secrets set sage_password`)",
    "sage_company_code": "ML_CONNECTOR_SAGE_COMPANY_CODE: the 3-character company code",
    "sage_ca_bundle": "ML_CONNECTOR_SAGE_CA_BUNDLE: the CA that signed the server's certificate",
    "sage_timeout_seconds": "ML_CONNECTOR_SAGE_TIMEOUT_SECONDS: per call",
}


class SageAgentResource(MaskedSecrets, dg.ConfigurableResource["SageAgentResource"]):
    """The agent on the Sage server (ML_CONNECTOR_SAGE_AGENT_WSDL, _USERNAME, _PASSWORD, _COMPANY_CODE).

    Its fields are settings (see `defs/resources.py`: EnvVar when the variable is set, else the stored
    secret or TOML file applies). One client per run or tick, made on first use (its parsed WSDL and
    connections are shared per process).
    """

    settings: ConnectorSettings
    sage_agent_wsdl: str | None = setting_field("ML_CONNECTOR_SAGE_AGENT_WSDL: the agent's WSDL URL")
    sage_username: str | None = setting_field(SAGE_LOGON_HELP["sage_username"])
    sage_password: str | None = setting_field(SAGE_LOGON_HELP["sage_password"])
    sage_company_code: str | None = setting_field(SAGE_LOGON_HELP["sage_company_code"])
    sage_ca_bundle: str | None = setting_field(SAGE_LOGON_HELP["sage_ca_bundle"])
    sage_timeout_seconds: str | None = setting_field(SAGE_LOGON_HELP["sage_timeout_seconds"])
    _client: AgentClient | None = PrivateAttr(default=None)

    def get_client(self) -> AgentClient:
        """The run's (or tick's) client; SettingsError naming whatever is unset."""
        if self._client is None:
            self._client = AgentClient.from_settings(self.settings.load(setting_values(self)).sage_agent())
        return self._client


class SageEBusinessResource(MaskedSecrets, dg.ConfigurableResource["SageEBusinessResource"]):
    """Sage's eBusiness Web Services (ML_CONNECTOR_SAGE_EBUSINESS_WSDL and the same logon)."""

    settings: ConnectorSettings
    sage_ebusiness_wsdl: str | None = setting_field("ML_CONNECTOR_SAGE_EBUSINESS_WSDL: eBusiness Web Services WSDL")
    sage_username: str | None = setting_field(SAGE_LOGON_HELP["sage_username"])
    sage_password: str | None = setting_field(SAGE_LOGON_HELP["sage_password"])
    sage_company_code: str | None = setting_field(SAGE_LOGON_HELP["sage_company_code"])
    sage_ca_bundle: str | None = setting_field(SAGE_LOGON_HELP["sage_ca_bundle"])
    sage_timeout_seconds: str | None = setting_field(SAGE_LOGON_HELP["sage_timeout_seconds"])
    _client: EBusinessClient | None = PrivateAttr(default=None)

    def get_client(self) -> EBusinessClient:
        """The client; SettingsError naming whatever is unset."""
        if self._client is None:
            self._client = EBusinessClient.from_settings(self.settings.load(setting_values(self)).sage_ebusiness())
        return self._client


class SagePollConfig(dg.Config):
    """Leave empty for an incremental poll; set dates to backfill, or full_refresh to re-read everything."""

    updated_from: str | None = Field(default=None, description="Backfill: first day (YYYY-MM-DD) of DateUpdated")
    updated_to: str | None = Field(default=None, description="Backfill: last day (YYYY-MM-DD), inclusive")
    full_refresh: bool = Field(default=False, description="Re-read everything; delete rows Sage no longer has")
    overlap_seconds: int = Field(default=120, ge=0, description="Re-read this much before the watermark")

    def window(self) -> sync.SyncWindow:
        try:
            return sync.SyncWindow(
                _day("updated_from", self.updated_from),
                _day("updated_to", self.updated_to),
                self.full_refresh,
                dt.timedelta(seconds=self.overlap_seconds),
            )
        except ValueError as exc:
            raise dg.Failure(description=f"Invalid sage100 poll config: {exc}", allow_retries=False) from None


def _day(name: str, value: str | None) -> dt.date | None:
    if not value:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} {value!r} is not a YYYY-MM-DD date") from None


RETRY = dg.RetryPolicy(max_retries=2, delay=15, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def _sync(
    context: dg.AssetExecutionContext,
    spec: sync.TableSpec,
    config: SagePollConfig,
    agent: SageAgentResource,
    warehouse: Warehouse,
) -> dg.MaterializeResult[None]:
    """Run one sync; wrong settings fail at once (no step retries), outages are retried by RETRY."""
    window = config.window()
    try:
        result = sync.sync_table(agent.get_client(), warehouse.connect, spec, window)
    except (SettingsError, SageLogonError, SageCompanyError) as exc:
        raise dg.Failure(description=f"Sage settings problem: {exc}", allow_retries=False) from None
    context.log.info(result.summary())
    return dg.MaterializeResult(
        metadata={
            "mode": result.mode,
            "since": result.since.isoformat(sep=" ") if result.since else "beginning",
            "rows_fetched": result.rows_fetched,
            "rows_transferred": result.rows_transferred,
            "rows_deleted": result.rows_deleted,
            "watermark": " ".join(result.watermark) if result.watermark else "",
            "changed_keys": dg.MetadataValue.json(result.changed_keys),
            "table": result.table,
            **warehouse_table(warehouse.connect, result.table),
        }
    )


@dg.asset(
    key=["sage100", "customers"],
    group_name="sage100",
    pool="warehouse",
    kinds={"sage100", "duckdb"},
    owners=OWNERS,
    tags=tags("sage100", "customers"),
    deps=[SAGE_AR],
    retry_policy=RETRY,
    description="AR_Customer rows from the agent, in DuckDB table sage_customers.",
)
def sage100_customers(
    context: dg.AssetExecutionContext, config: SagePollConfig, sage_agent: SageAgentResource, warehouse: Warehouse
) -> dg.MaterializeResult[None]:
    return _sync(context, sync.CUSTOMERS, config, sage_agent, warehouse)


@dg.asset(
    key=["sage100", "ar_invoices"],
    group_name="sage100",
    pool="warehouse",
    kinds={"sage100", "duckdb"},
    owners=OWNERS,
    tags=tags("sage100", "invoices"),
    deps=[SAGE_AR],
    retry_policy=RETRY,
    description="AR_OpenInvoice rows (zero balances included) in table sage_ar_invoices.",
)
def sage100_ar_invoices(
    context: dg.AssetExecutionContext, config: SagePollConfig, sage_agent: SageAgentResource, warehouse: Warehouse
) -> dg.MaterializeResult[None]:
    return _sync(context, sync.INVOICES, config, sage_agent, warehouse)


def _unique_keys_check(asset: dg.AssetsDefinition, spec: sync.TableSpec) -> dg.AssetChecksDefinition:
    """A blocking check: duplicate keys would make every later match ambiguous."""

    @dg.asset_check(
        asset=asset,
        name=f"{asset.key.path[-1]}_unique_keys",
        blocking=True,
        description=f"One row per {' + '.join(spec.key)}.",
    )
    def check(warehouse: Warehouse) -> dg.AssetCheckResult:
        with warehouse.connect() as conn:
            duplicates = sync.duplicate_keys(conn, spec)
        return dg.AssetCheckResult(passed=duplicates == 0, metadata={"duplicate_keys": duplicates})

    return check


sage100_customers_unique_keys = _unique_keys_check(sage100_customers, sync.CUSTOMERS)
sage100_ar_invoices_unique_keys = _unique_keys_check(sage100_ar_invoices, sync.INVOICES)


@dg.asset_check(
    asset=sage100_ar_invoices,
    name="non_negative_balances",
    blocking=True,
    description="No invoice, debit memo or finance charge has a negative Balance (credits excluded).",
)
def sage100_ar_invoices_non_negative_balances(warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connect() as conn:
        negative = sync.negative_balances(conn)
    return dg.AssetCheckResult(passed=not negative, metadata={"negative": dg.MetadataValue.json(negative)})


@dg.asset_check(
    asset=sage100_ar_invoices,
    name="payments_today_within_balance",
    description="No invoice, debit memo or finance charge has more receipts entered but not posted "
    "(PaymentsToday) than its Balance (a warning, naming them: someone applied too much in Sage).",
)
def sage100_ar_invoices_payments_today_within_balance(warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connect() as conn:
        found = sync.payments_today_above_balance(conn)
    return dg.AssetCheckResult(
        passed=not found.total,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"count": found.total, "invoices": dg.MetadataValue.json(found.sample)},
    )


sage100_poll_job = dg.define_asset_job(
    "sage100_poll_job",
    selection=[sage100_customers, sage100_ar_invoices],
    description="Copy what changed in Sage's AR customers and open invoices (requested by sage100_poll).",
)
POLL_RETRY_SECONDS = 600  # the same pending change is requested again after this (its run failed or died)


@dg.sensor(
    name="sage100_poll",
    job=sage100_poll_job,
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Asks the agent, once a minute, whether any AR customer or open invoice changed since the "
    "warehouse's watermark; requests sage100_poll_job only then. Skipped until the agent is configured.",
)
def sage100_poll(
    context: dg.SensorEvaluationContext, sage_agent: SageAgentResource, warehouse: Warehouse
) -> dg.SensorResult:
    try:
        found = changes.changed_tables(sage_agent.get_client(), lambda: warehouse.connect(read_only=True))
    except SettingsError as exc:
        return dg.SensorResult(skip_reason=f"Sage agent not configured: {'; '.join(exc.problems)}")
    except (SageLogonError, SageCompanyError) as exc:
        return dg.SensorResult(skip_reason=f"Sage settings problem: {exc}")
    if not found:
        return dg.SensorResult(skip_reason="nothing changed in Sage's AR since the warehouse copy")
    bucket = int(dt.datetime.now(dt.UTC).timestamp()) // POLL_RETRY_SECONDS
    key = ",".join(f"{c.table}@{''.join(c.first_newer)}" for c in found)
    tags = {"sage100/changed": ", ".join(c.table for c in found)}
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"sage100-poll-{key}-{bucket}", tags=tags)])


defs = dg.Definitions(
    assets=[sage100_customers, sage100_ar_invoices],
    asset_checks=[
        sage100_customers_unique_keys,
        sage100_ar_invoices_unique_keys,
        sage100_ar_invoices_non_negative_balances,
        sage100_ar_invoices_payments_today_within_balance,
    ],
    jobs=[sage100_poll_job],
    sensors=[sage100_poll],
    resources={
        "sage_agent": SageAgentResource(settings=settings_resource, **environment_fields(SageAgentResource)),
        "sage_ebusiness": SageEBusinessResource(
            settings=settings_resource, **environment_fields(SageEBusinessResource)
        ),
    },
)
