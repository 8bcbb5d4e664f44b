"""Asset checks that do not live beside their asset: the GoCardless tables, the customer map, the cash
receipts, the review queue, the agent on the Sage server and the webhook freshness check (with the sensor
that reports it without launching a run).

Every check says what it found in its metadata (ids, at most 50, and counts), so a failure names what to fix.
Checks on the warehouse read it (a table not written yet has nothing wrong in it); the receipts check asks the
agent (receipt_checks.py, its own module).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
import duckdb

from ..sage100 import SageError
from ..settings import SettingsError
from ..store import Store
from ..warehouse import table_exists
from .automation import FOLLOWS_ASSET
from .metadata import dashboard_url
from .resources import ConnectorSettings, OperationalStore, Warehouse
from .sage100 import SageAgentResource
from .sources import GOCARDLESS_API, SAGE_AR

PAYMENTS = dg.AssetKey(["gocardless", "payments"])
CUSTOMERS = dg.AssetKey(["gocardless", "customers"])
REFUNDS = dg.AssetKey(["gocardless", "refunds"])
PAYOUTS = dg.AssetKey(["gocardless", "payouts"])
CUSTOMER_MAP = dg.AssetKey(["reconciliation", "customer_map"])
CASH_RECEIPTS = dg.AssetKey(["reconciliation", "cash_receipts"])
REVIEW_QUEUE = dg.AssetKey(["reconciliation", "review_queue"])
QUEUED_KINDS = ("held", "reversal_required")  # review item kinds that mirror a ledger status of the same name
SHOWN = 50


def _ids(conn: duckdb.DuckDBPyConnection, table: str, sql: str) -> list[str]:
    """The ids a query over `table` answers (none when the table was never written)."""
    if not table_exists(conn, table):
        return []
    return [str(r[0]) for r in conn.execute(sql).fetchall()]


def _found(
    ids: Sequence[str],
    what: str,
    severity: dg.AssetCheckSeverity = dg.AssetCheckSeverity.ERROR,
    dashboard: tuple[ConnectorSettings, str] | None = None,
) -> dg.AssetCheckResult:
    """Passed when nothing was found; else the count, the first ids and (`dashboard`: the settings and the
    GoCardless resource) a link to the first one in the GoCardless dashboard, when there is a dashboard."""
    metadata: dict[str, Any] = {"count": len(ids), "ids": list(ids[:SHOWN])}
    url = dashboard_url(dashboard[0].get().gocardless_api_url, dashboard[1], ids[0]) if ids and dashboard else None
    if url:
        metadata["first_in_dashboard"] = dg.MetadataValue.url(url)
    return dg.AssetCheckResult(
        passed=not ids,
        severity=severity,
        description=None if not ids else f"{len(ids)} {what}: {', '.join(ids[:10])}",
        metadata=metadata,
    )


def _duplicates(table: str) -> str:
    return f"SELECT id FROM {table} GROUP BY id HAVING count(*) > 1 ORDER BY id"


@dg.asset_check(
    asset=PAYMENTS,
    automation_condition=FOLLOWS_ASSET,
    description="One row per GoCardless payment id in gocardless_payments.",
)
def payment_ids_unique(connector_settings: ConnectorSettings, warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connect() as conn:
        ids = _ids(conn, "gocardless_payments", _duplicates("gocardless_payments"))
    return _found(ids, "duplicated ids", dashboard=(connector_settings, "payments"))


@dg.asset_check(
    asset=PAYMENTS,
    automation_condition=FOLLOWS_ASSET,
    description="Every payment's amount is more than 0 minor units (GoCardless never collects less).",
)
def payment_amounts_positive(connector_settings: ConnectorSettings, warehouse: Warehouse) -> dg.AssetCheckResult:
    sql = "SELECT id FROM gocardless_payments WHERE amount IS NULL OR amount <= 0 ORDER BY id"
    with warehouse.connect() as conn:
        ids = _ids(conn, "gocardless_payments", sql)
    return _found(ids, "payments without a positive amount", dashboard=(connector_settings, "payments"))


@dg.asset_check(
    asset=CUSTOMERS,
    automation_condition=FOLLOWS_ASSET,
    description="One row per GoCardless customer id in gocardless_customers.",
)
def customer_ids_unique(connector_settings: ConnectorSettings, warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connect() as conn:
        ids = _ids(conn, "gocardless_customers", _duplicates("gocardless_customers"))
    return _found(ids, "duplicated ids", dashboard=(connector_settings, "customers"))


@dg.asset_check(
    asset=REFUNDS, automation_condition=FOLLOWS_ASSET, description="Every refund's amount is more than 0 minor units."
)
def refund_amounts_positive(connector_settings: ConnectorSettings, warehouse: Warehouse) -> dg.AssetCheckResult:
    sql = "SELECT id FROM gocardless_refunds WHERE amount IS NULL OR amount <= 0 ORDER BY id"
    with warehouse.connect() as conn:
        ids = _ids(conn, "gocardless_refunds", sql)
    return _found(ids, "refunds without a positive amount", dashboard=(connector_settings, "refunds"))


@dg.asset_check(
    asset=REFUNDS,
    automation_condition=FOLLOWS_ASSET,
    description="Every refund names a payment the warehouse holds (a warning: the payment may not be read yet; "
    "its refund is evaluated once it is).",
)
def refunds_link_known_payments(connector_settings: ConnectorSettings, warehouse: Warehouse) -> dg.AssetCheckResult:
    sql = """SELECT r.id FROM gocardless_refunds r LEFT JOIN gocardless_payments p ON p.id = r.payment
             WHERE p.id IS NULL ORDER BY r.id"""
    with warehouse.connect() as conn:
        known = table_exists(conn, "gocardless_payments")
        ids = _ids(conn, "gocardless_refunds", sql if known else "SELECT id FROM gocardless_refunds ORDER BY id")
    warn = dg.AssetCheckSeverity.WARN
    return _found(ids, "refunds of payments not in the warehouse", warn, (connector_settings, "refunds"))


@dg.asset_check(
    asset=PAYOUTS,
    automation_condition=FOLLOWS_ASSET,
    description="Every payout has its items (what makes up the amount) in gocardless_payout_items; without them "
    "its month-end line cannot be reconciled.",
)
def payout_items_present(connector_settings: ConnectorSettings, warehouse: Warehouse) -> dg.AssetCheckResult:
    sql = """SELECT o.id FROM gocardless_payouts o
             WHERE NOT EXISTS (SELECT 1 FROM gocardless_payout_items i WHERE i.payout = o.id) ORDER BY o.id"""
    with warehouse.connect() as conn:
        if not table_exists(conn, "gocardless_payout_items"):
            sql = "SELECT id FROM gocardless_payouts ORDER BY id"
        ids = _ids(conn, "gocardless_payouts", sql)
    return _found(ids, "payouts without items", dashboard=(connector_settings, "payouts"))


@dg.asset_check(
    asset=CUSTOMER_MAP, description="No GoCardless customer is mapped to two Sage customers in customer_map."
)
def no_customer_mapped_twice(connector_settings: ConnectorSettings, warehouse: Warehouse) -> dg.AssetCheckResult:
    sql = """SELECT gocardless_customer FROM customer_map WHERE sage_customer IS NOT NULL
             GROUP BY gocardless_customer HAVING count(DISTINCT sage_customer) > 1 ORDER BY 1"""
    with warehouse.connect() as conn:
        ids = _ids(conn, "customer_map", sql)
    return _found(ids, "GoCardless customers mapped to two Sage customers", dashboard=(connector_settings, "customers"))


@dg.asset_check(
    asset=CASH_RECEIPTS,
    description="No payment has more than one cash receipt (the audit trail's cash_receipt.created records).",
)
def no_payment_posted_twice(store: OperationalStore) -> dg.AssetCheckResult:
    receipts: dict[str, set[object]] = {}
    for record in store.get().audit.list(action="cash_receipt.created"):
        if record.subject is not None:  # a receipt's record is always about its payment
            receipts.setdefault(record.subject, set()).add(record.details.get("receipt_id"))
    twice = sorted(pid for pid, ids in receipts.items() if len(ids) > 1)
    return dg.AssetCheckResult(passed=not twice, metadata={"payments": twice[:SHOWN], "posted": len(receipts)})


@dg.asset_check(
    asset=SAGE_AR.key,
    description="The agent on the Sage server answers (Ping) for the configured company; a warning when it does "
    "not: nothing can be read from or posted to Sage meanwhile.",
)
def agent_answers(connector_settings: ConnectorSettings, sage_agent: SageAgentResource) -> dg.AssetCheckResult:
    try:
        company = connector_settings.get().sage_agent().company_code
        info = sage_agent.get_client().ping()
    except (SettingsError, SageError) as exc:
        return dg.AssetCheckResult(
            passed=False, severity=dg.AssetCheckSeverity.WARN, description=f"the agent did not answer: {exc}"
        )
    same = info.company_code.upper() == company.upper()
    return dg.AssetCheckResult(
        passed=same,
        severity=dg.AssetCheckSeverity.WARN,
        description=None if same else f"the agent serves company {info.company_code}, not {company}",
        metadata={"company": info.company_code, "backend": info.backend, "agent_version": info.version},
    )


@dg.asset_check(
    asset=REVIEW_QUEUE,
    description="The queue and the ledger agree (a warning): every open held or reversal_required item's payment "
    "has that status in the ledger, and every payment with it has an open item.",
)
def review_queue_matches_ledger(store: OperationalStore) -> dg.AssetCheckResult:
    ops = store.get()
    items = {(i.subject, i.kind) for i in ops.review.list() if i.kind in QUEUED_KINDS}
    ledger = {(e.payment_id, kind) for kind in QUEUED_KINDS for e in ops.ledger.list(status=kind)}
    stale = sorted(f"{pid} ({kind} item, not {kind} in the ledger)" for pid, kind in items - ledger)
    missing = sorted(f"{pid} ({kind} in the ledger, no open item)" for pid, kind in ledger - items)
    return _found(stale + missing, "items where the queue and the ledger differ", dg.AssetCheckSeverity.WARN)


# --- webhook freshness ------------------------------------------------------------------------------------------


def webhook_freshness(store: Store, hours: int, now: datetime | None = None) -> dict[str, Any]:
    """What webhooks_arriving says: passed while a webhook arrived within `hours`, else a warning saying since
    when none has (the fields of an AssetCheckResult / AssetCheckEvaluation)."""
    now = now or datetime.now(UTC)
    latest = store.inbox.latest_received_at("webhook")
    fresh = latest is not None and now - latest <= timedelta(hours=hours)
    said = (
        "no webhook has ever arrived" if latest is None else f"the newest webhook arrived {latest:%Y-%m-%d %H:%M} UTC"
    )
    return {
        "asset_key": GOCARDLESS_API.key,
        "check_name": "webhooks_arriving",
        "passed": fresh,
        "severity": dg.AssetCheckSeverity.WARN,
        "description": None
        if fresh
        else f"{said}, over {hours} h ago: check the webhook endpoint in the GoCardless dashboard, the TLS "
        "terminator and `ml-connector receiver` (the events sweep still catches up meanwhile)",
        "metadata": {
            "newest_webhook_at": latest.isoformat() if latest else "never",
            "hours_since": round((now - latest).total_seconds() / 3600, 1) if latest else "never",
            "freshness_hours": hours,
        },
    }


@dg.asset_check(
    asset=GOCARDLESS_API.key,
    name="webhooks_arriving",
    description="Warns when no GoCardless webhook has arrived for ML_CONNECTOR_WEBHOOK_FRESHNESS_HOURS (default "
    "24): the endpoint may be broken. The webhook_freshness_sensor reports it hourly without a run.",
)
def webhooks_arriving(connector_settings: ConnectorSettings, store: OperationalStore) -> dg.AssetCheckResult:
    return dg.AssetCheckResult(**webhook_freshness(store.get(), connector_settings.get().webhook_freshness_hours))


@dg.sensor(
    minimum_interval_seconds=3600,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Every hour, evaluates webhooks_arriving on gocardless/api and records the result; launches no run.",
)
def webhook_freshness_sensor(connector_settings: ConnectorSettings, store: OperationalStore) -> dg.SensorResult:
    found = webhook_freshness(store.get(), connector_settings.get().webhook_freshness_hours)
    return dg.SensorResult(
        asset_events=[dg.AssetCheckEvaluation(**found)],
        skip_reason=found["description"] or "a webhook arrived within the freshness window",
    )


defs = dg.Definitions(
    asset_checks=[
        payment_ids_unique,
        payment_amounts_positive,
        customer_ids_unique,
        refund_amounts_positive,
        refunds_link_known_payments,
        payout_items_present,
        no_customer_mapped_twice,
        no_payment_posted_twice,
        review_queue_matches_ledger,
        webhooks_arriving,
        agent_answers,
    ],
    sensors=[webhook_freshness_sensor],
)
