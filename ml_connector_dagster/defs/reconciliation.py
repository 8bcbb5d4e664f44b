"""Dagster wiring for reconciliation: the customer map, payment matches and payouts assets and their checks.

Thin: the work is in `ml_connector_dagster.reconciliation`; this module turns it into assets and checks the
finance team and the engineer see in the Dagster UI. The write-back (cash_receipts, its job, sensor and
schedule) is wired in `defs/write_back.py`, the review jobs in `defs/review.py`.
"""

from collections import Counter

import dagster as dg

from ..reconciliation import customers as customer_sync
from ..reconciliation import payouts as payout_report
from ..reconciliation.evaluate import evaluate_payments
from ..reconciliation.open_amounts import over_applied
from ..reconciliation.refunds import evaluate_refunds
from ..reconciliation.tables import ensure_tables
from ..warehouse import count as count_rows
from .automation import FOLLOWS_INPUTS
from .gocardless import GoCardlessResource
from .metadata import OWNERS, payouts_preview, tags, warehouse_table
from .resources import ConnectorSettings, OperationalStore, Warehouse

RECONCILIATION = ["reconciliation"]
ACTOR = "dagster"


@dg.asset(
    key_prefix=RECONCILIATION,
    name="customer_map",
    group_name="reconciliation",
    automation_condition=FOLLOWS_INPUTS,
    pool="warehouse",
    kinds={"duckdb"},
    owners=OWNERS,
    tags=tags("reconciliation", "customers"),
    deps=[dg.AssetKey(["gocardless", "customers"]), dg.AssetKey(["sage100", "customers"])],
    description="Each GoCardless customer's Sage customer (metadata sage_customer, else unique email); "
    "with sync_customer_metadata on, writes metadata.sage_customer back to GoCardless.",
)
def customer_map(
    context: dg.AssetExecutionContext,
    connector_settings: ConnectorSettings,
    store: OperationalStore,
    warehouse: Warehouse,
    gocardless: GoCardlessResource,
) -> dg.MaterializeResult[None]:
    with warehouse.connect() as conn:
        frame = customer_sync.build_customer_map(conn)
        synced = 0
        if connector_settings.get().sync_customer_metadata:
            synced = customer_sync.sync_metadata(conn, gocardless.get_client(), store.get(), frame, actor=ACTOR)
        counts = Counter(frame["resolved_by"].fillna("unresolved"))
    return dg.MaterializeResult(
        metadata={
            "customers": len(frame),
            "by_metadata": counts.get("metadata", 0),
            "by_email": counts.get("email", 0),
            "unresolved": counts.get("unresolved", 0),
            "metadata_synced": synced,
            **warehouse_table(warehouse.connect, "customer_map"),
        }
    )


@dg.asset(
    key_prefix=RECONCILIATION,
    name="payment_matches",
    group_name="reconciliation",
    automation_condition=FOLLOWS_INPUTS,
    pool="warehouse",
    kinds={"duckdb"},
    owners=OWNERS,
    tags=tags("reconciliation", "payments"),
    deps=[
        dg.AssetKey(["gocardless", "payments"]),
        dg.AssetKey(["gocardless", "refunds"]),
        dg.AssetKey(["gocardless", "payouts"]),  # a confirmed FX rate re-reads its payments' converted amounts
        dg.AssetKey(["sage100", "ar_invoices"]),
        dg.AssetKey(["reconciliation", "customer_map"]),
    ],
    description="Decisions for new or changed payments: matched (to be posted), held with a reason, pending, "
    "not collected or reversal required. Incremental on the payment's fetch time.",
)
def payment_matches(
    context: dg.AssetExecutionContext,
    connector_settings: ConnectorSettings,
    store: OperationalStore,
    warehouse: Warehouse,
) -> dg.MaterializeResult[None]:
    settings, ops = connector_settings.get().reconciliation(), store.get()
    with warehouse.connect() as conn:
        summary = evaluate_payments(conn, ops, settings, actor=ACTOR)
        refunds = evaluate_refunds(conn, ops, settings, actor=ACTOR)
        total = count_rows(conn, "SELECT count(*) FROM payment_matches")
    return dg.MaterializeResult(
        metadata={
            **summary.as_metadata(),
            "refunds_evaluated": refunds,
            **warehouse_table(warehouse.connect, "payment_matches"),
            "dagster/row_count": total,
            "refund_evaluations": warehouse_table(warehouse.connect, "refund_evaluations")["dagster/row_count"],
            "ledger": dg.MetadataValue.json(ops.ledger.counts()),
            "review_open": len(ops.review.list()),
        }
    )


@dg.asset(
    key_prefix=RECONCILIATION,
    name="payouts",
    group_name="reconciliation",
    automation_condition=FOLLOWS_INPUTS,
    pool="warehouse",
    kinds={"duckdb"},
    owners=OWNERS,
    tags=tags("reconciliation", "payouts"),
    deps=[dg.AssetKey(["gocardless", "payouts"]), dg.AssetKey(["reconciliation", "cash_receipts"])],
    description="Month end, one row per payout in currency units: the bank line (amount, currency, arrival "
    "date, reference), collections, refunds, failures, chargebacks, fees net of fee refunds, VAT on fees, FX rate "
    "and converted amount, whether the items add up, and which payments are posted in Sage (receipt, deposit) "
    "or held (reason) (table payout_reconciliation; `ml-connector payouts` prints the same).",
)
def payouts(
    context: dg.AssetExecutionContext, store: OperationalStore, warehouse: Warehouse
) -> dg.MaterializeResult[None]:
    with warehouse.connect() as conn:
        frame = payout_report.build(conn, store.get())
    return dg.MaterializeResult(
        metadata={
            "payouts": len(frame),
            **warehouse_table(warehouse.connect, "payout_reconciliation"),
            "unbalanced": int((~frame["items_add_up"].astype(bool)).sum()) if len(frame) else 0,
            "not_final": int((~frame["final"].astype(bool)).sum()) if len(frame) else 0,
            "preview": payouts_preview(frame),
        }
    )


# --- checks -----------------------------------------------------------------------------------------------


@dg.asset_check(asset=payment_matches, blocking=True, description="Matched allocations add up to the payment amount.")
def allocations_add_up(warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connect() as conn:
        ensure_tables(conn)
        bad = conn.execute("""
            SELECT payment_id FROM payment_matches WHERE status = 'matched' AND home_amount IS DISTINCT FROM (
                SELECT sum(CAST(a->>'amount' AS DECIMAL(18, 2)))
                FROM unnest(CAST(allocations AS JSON[])) AS t(a))""").fetchall()
    return dg.AssetCheckResult(passed=not bad, metadata={"payments": [r[0] for r in bad][:50], "count": len(bad)})


@dg.asset_check(
    asset=payment_matches,
    description="No invoice has more taken by our payments that Sage's copy does not show yet (matched, being "
    "written, or written since the invoice was copied) than its open amount there (Balance less PaymentsToday).",
)
def no_invoice_over_applied(warehouse: Warehouse, store: OperationalStore) -> dg.AssetCheckResult:
    with warehouse.connect() as conn:
        ensure_tables(conn)
        found = over_applied(conn, store.get())
    return dg.AssetCheckResult(
        passed=not found,
        metadata={"count": len(found), "invoices": dg.MetadataValue.json([o.describe() for o in found[:50]])},
    )


@dg.asset_check(
    asset=payouts,
    description="Each payout's items (collections, refunds, failures, chargebacks, fees with their VAT) add up "
    "to the payout amount, rounded once as GoCardless does.",
)
def payout_items_add_up(warehouse: Warehouse, store: OperationalStore) -> dg.AssetCheckResult:
    with warehouse.connect() as conn:
        frame = payout_report.build(conn, store.get(), write=False)
    bad = frame.loc[~frame["items_add_up"].astype(bool)] if len(frame) else frame
    return dg.AssetCheckResult(
        passed=bad.empty,
        metadata={
            "payouts": bad["payout_id"].tolist()[:50] if len(bad) else [],
            "differences": [f"{r.payout_id}: {r.currency} {r.difference}" for r in bad.head(50).itertuples()],
            "checked": len(frame),
        },
    )


defs = dg.Definitions(
    assets=[customer_map, payment_matches, payouts],
    asset_checks=[allocations_add_up, no_invoice_over_applied, payout_items_add_up],
)
