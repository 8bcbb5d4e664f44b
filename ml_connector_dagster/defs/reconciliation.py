"""Dagster wiring for reconciliation: customer map, payment matches, payouts, write-back and review jobs.

Thin: the work is in `ml_connector_dagster.reconciliation`; this module turns it into assets, checks,
jobs and sensors the finance team and the engineer see in the Dagster UI.
"""

from collections import Counter
from collections.abc import Callable, Iterator, Sequence

import dagster as dg

from ..reconciliation import customers as customer_sync
from ..reconciliation import payouts as payout_report
from ..reconciliation import review_actions
from ..reconciliation.evaluate import evaluate_payments, evaluate_refunds
from ..reconciliation.posting import Allocation, AllocationError, PaymentRow, PostingPass
from ..reconciliation.tables import ensure_tables
from ..reconciliation.write_back import payment_rows, post_matched
from ..store.review import ReviewItem
from ..warehouse import count as count_rows
from .gocardless import GoCardlessResource
from .resources import ConnectorSettings, OperationalStore, Warehouse
from .sage100 import SageAgentResource

RECONCILIATION = ["reconciliation"]
ACTOR = "dagster"


@dg.asset(
    key_prefix=RECONCILIATION,
    name="customer_map",
    group_name="reconciliation",
    pool="warehouse",
    kinds={"duckdb"},
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
            "dagster/row_count": len(frame),
        }
    )


@dg.asset(
    key_prefix=RECONCILIATION,
    name="payment_matches",
    group_name="reconciliation",
    pool="warehouse",
    kinds={"duckdb"},
    deps=[
        dg.AssetKey(["gocardless", "payments"]),
        dg.AssetKey(["gocardless", "refunds"]),
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
    queue = ops.review.list()
    return dg.MaterializeResult(
        metadata={
            **summary.as_metadata(),
            "refunds_evaluated": refunds,
            "dagster/row_count": total,
            "ledger": dg.MetadataValue.json(ops.ledger.counts()),
            "review_queue": dg.MetadataValue.md(_queue_markdown(queue)),
            "review_open": len(queue),
        }
    )


@dg.asset(
    key_prefix=RECONCILIATION,
    name="payouts",
    group_name="reconciliation",
    pool="warehouse",
    kinds={"duckdb"},
    deps=[dg.AssetKey(["gocardless", "payouts"]), dg.AssetKey(["reconciliation", "cash_receipts"])],
    description="Each payout with its payments, fees and refunds, whether its items add up to the amount, "
    "and which of its payments are posted or held: month-end bank reconciliation as a lookup.",
)
def payouts(
    context: dg.AssetExecutionContext, store: OperationalStore, warehouse: Warehouse
) -> dg.MaterializeResult[None]:
    with warehouse.connect() as conn:
        frame = payout_report.build(conn, store.get())
    return dg.MaterializeResult(
        metadata={
            "payouts": len(frame),
            "dagster/row_count": len(frame),
            "unbalanced": int((~frame["items_add_up"]).sum()) if len(frame) else 0,
            "preview": dg.MetadataValue.md(payout_report.markdown(frame)),
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
    description="No invoice has more allocated by matched, unposted payments "
    "than its balance (the posting re-check would hold the later one).",
)
def no_invoice_over_applied(warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connect() as conn:
        ensure_tables(conn)
        rows = conn.execute("""
            WITH lines AS (
                SELECT m.sage_customer, a->>'invoice_no' AS invoice_no, a->>'invoice_type' AS invoice_type,
                       CAST(a->>'amount' AS DECIMAL(18, 2)) AS amount
                FROM payment_matches m, unnest(CAST(m.allocations AS JSON[])) AS t(a) WHERE m.status = 'matched')
            SELECT l.sage_customer, l.invoice_no, sum(l.amount) AS applied, any_value(i.Balance) AS balance
            FROM lines l LEFT JOIN sage_ar_invoices i ON i.ARDivisionNo || '-' || i.CustomerNo = l.sage_customer
                 AND i.InvoiceNo = l.invoice_no AND i.InvoiceType = l.invoice_type
            GROUP BY 1, 2 HAVING sum(l.amount) > coalesce(any_value(i.Balance), 0)""").fetchall()
    return dg.AssetCheckResult(
        passed=not rows,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={"invoices": [f"{r[0]}/{r[1]}: {r[2]} > {r[3]}" for r in rows][:50]},
    )


@dg.asset_check(asset=payment_matches, description="No payment has more than one cash receipt (audit trail).")
def no_payment_posted_twice(store: OperationalStore) -> dg.AssetCheckResult:
    receipts: dict[str, set[object]] = {}
    for record in store.get().audit.list(action="cash_receipt.created"):
        if record.subject is not None:  # a receipt's record is always about its payment
            receipts.setdefault(record.subject, set()).add(record.details.get("receipt_id"))
    twice = sorted(pid for pid, ids in receipts.items() if len(ids) > 1)
    return dg.AssetCheckResult(passed=not twice, metadata={"payments": twice[:50], "posted": len(receipts)})


@dg.asset_check(asset=payouts, description="Each payout's items add up to the payout amount.")
def payout_items_add_up(warehouse: Warehouse, store: OperationalStore) -> dg.AssetCheckResult:
    with warehouse.connect() as conn:
        frame = payout_report.build(conn, store.get(), write=False)
    bad = frame.loc[~frame["items_add_up"], "payout_id"].tolist() if len(frame) else []
    return dg.AssetCheckResult(passed=not bad, metadata={"payouts": bad[:50], "checked": len(frame)})


# --- write-back -------------------------------------------------------------------------------------------


@dg.asset(
    key_prefix=RECONCILIATION,
    name="cash_receipts",
    group_name="reconciliation",
    pool="warehouse",
    kinds={"sage100"},
    deps=[payment_matches],
    retry_policy=dg.RetryPolicy(max_retries=4, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
    description="Write-back: every matched payment posted to Sage as one cash receipt through the agent, "
    "exactly once (open invoices re-checked first); with auto_reversal on, receipts whose money "
    "went back in full are reversed. Runs in the same run as the matches, so a webhook becomes "
    "a receipt in one run.",
)
def cash_receipts(
    context: dg.AssetExecutionContext,
    connector_settings: ConnectorSettings,
    store: OperationalStore,
    warehouse: Warehouse,
    sage_agent: SageAgentResource,
) -> dg.MaterializeResult[None]:
    settings, ops, agent = connector_settings.get().reconciliation(), store.get(), sage_agent.get_client()

    def rows(ids: Sequence[str]) -> dict[str, PaymentRow]:
        with warehouse.connect(read_only=True) as conn:
            return payment_rows(conn, ids)

    # The op context's run_id: context.run (what AssetExecutionContext.run_id's deprecation points to) is not
    # set when the asset is invoked directly, as a unit test does; this one is ("EPHEMERAL" then).
    run_id = context.op_execution_context.run_id
    done = post_matched(ops, agent, settings, rows, actor=ACTOR, owner=f"{ACTOR} run {run_id}")
    _fail_to_retry(done)
    reversed_ = review_actions.auto_reverse(ops, agent, settings, actor=ACTOR)
    counts, deferred = done.counts(), done.ids("deferred")
    if deferred:
        context.log.warning(
            f"{len(deferred)} payment(s) wait for the next write-back: {', '.join(deferred[:10])} "
            "(see their cash_receipt.deferred audit records)"
        )
    ledger = ops.ledger.counts()
    return dg.MaterializeResult(
        metadata={
            "posted": counts.get("posted", 0),
            "held": counts.get("held", 0),
            "reversed": len(reversed_),
            "not_collected": counts.get("not_collected", 0),
            "reversal_required": counts.get("reversal_required", 0),
            "deferred": len(deferred),
            "receipts_in_sage": ledger.get("posted", 0),
            "ledger": dg.MetadataValue.json(ledger),
        }
    )


def _fail_to_retry(done: PostingPass) -> None:
    """Fail the step (Dagster's RetryPolicy runs it again with backoff) while work is left that a later try can do.

    - the pass stopped because Sage is unreachable: the payments it did not try still wait, untouched;
    - a write's outcome is unknown: the retry asks FindCashReceipt first;
    - another run holds a claim: it finishes the payment, or it died and its lease expires before the retry.
    """
    unknown, busy = done.ids("unknown"), done.ids("busy")
    if done.stopped:
        raise dg.Failure(
            f"write-back stopped: {done.stopped}. {len(done.waiting)} payment(s) wait untouched for the "
            "next try; check that the Sage agent is running",
            allow_retries=True,
        )
    if unknown:
        raise dg.Failure(
            f"Sage did not confirm {len(unknown)} cash receipt(s): {', '.join(unknown[:10])}", allow_retries=True
        )
    if busy:
        raise dg.Failure(
            f"{len(busy)} payment(s) are claimed by another run: {', '.join(busy[:10])}; retrying "
            "after it finishes, or after its lease expires if it died",
            allow_retries=True,
        )


post_cash_receipts_job = dg.define_asset_job(
    "post_cash_receipts_job",
    selection=[cash_receipts],
    tags={"dagster/max_retries": 2},
    description="Write-back on its own: posts matched payments (and those left mid-write) to Sage, exactly once.",
)


@dg.asset_sensor(
    asset_key=dg.AssetKey(["reconciliation", "payment_matches"]),
    job=post_cash_receipts_job,
    minimum_interval_seconds=5,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="When matches materialise without the write-back (e.g. from the UI), posts what waits.",
)
def post_when_matched(
    context: dg.SensorEvaluationContext, asset_event: dg.EventLogEntry, store: OperationalStore
) -> Iterator[dg.RunRequest]:
    counts = store.get().ledger.counts()
    if counts.get("matched", 0) + counts.get("posting", 0):  # nothing waits when the same run posted already
        yield dg.RunRequest(run_key=f"post-after-{asset_event.run_id}")


post_cash_receipts_schedule = dg.ScheduleDefinition(
    name="post_cash_receipts_retry",
    cron_schedule="*/15 * * * *",
    job=post_cash_receipts_job,
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Safety net: posts anything left matched or interrupted mid-write.",
)


# --- review actions (the CLI's `ml-connector review ...` as jobs launchable from the UI) -------------------


class ReviewApplyConfig(dg.Config):
    item_id: int
    invoices: list[str]  # "NO" or "NO:AMOUNT"
    customer: str | None = None
    by: str = "dagster-ui"


class ReviewRetryConfig(dg.Config):
    item_id: int
    by: str = "dagster-ui"


class ReviewDismissConfig(dg.Config):
    item_id: int
    note: str
    by: str = "dagster-ui"


def _finish(context: dg.OpExecutionContext, act: Callable[[], review_actions.ActionResult]) -> dict[str, object]:
    """Run an operator's action; a refusal (bad input, wrong item) fails the run with its message, not retried."""
    try:
        result = act()
    except (review_actions.ReviewActionError, AllocationError) as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    context.add_output_metadata(result.as_dict())
    return result.as_dict()


def _parsed(invoices: list[str]) -> list[Allocation]:
    try:
        return [review_actions.parse_allocation(text) for text in invoices]
    except review_actions.ReviewActionError as exc:
        raise dg.Failure(description=f"invoices: {exc}", allow_retries=False) from None


@dg.op
def review_apply_op(
    context: dg.OpExecutionContext,
    config: ReviewApplyConfig,
    connector_settings: ConnectorSettings,
    store: OperationalStore,
    sage_agent: SageAgentResource,
    gocardless: GoCardlessResource,
) -> dict[str, object]:
    allocations = _parsed(config.invoices)
    return _finish(
        context,
        lambda: review_actions.apply(
            store.get(),
            sage_agent.get_client(),
            gocardless.get_client(),
            connector_settings.get().reconciliation(),
            config.item_id,
            allocations,
            config.by,
            config.customer,
        ),
    )


@dg.op
def review_retry_op(
    context: dg.OpExecutionContext,
    config: ReviewRetryConfig,
    connector_settings: ConnectorSettings,
    store: OperationalStore,
    sage_agent: SageAgentResource,
    gocardless: GoCardlessResource,
) -> dict[str, object]:
    return _finish(
        context,
        lambda: review_actions.retry(
            store.get(),
            sage_agent.get_client(),
            gocardless.get_client(),
            connector_settings.get().reconciliation(),
            config.item_id,
            config.by,
        ),
    )


@dg.op
def review_dismiss_op(
    context: dg.OpExecutionContext, config: ReviewDismissConfig, store: OperationalStore
) -> dict[str, object]:
    return _finish(context, lambda: review_actions.dismiss(store.get(), config.item_id, config.note, config.by))


@dg.job(description="Review queue: apply a held payment to invoices an operator chooses.")
def review_apply() -> None:
    review_apply_op()


@dg.job(description="Review queue: decide a held payment again after fixing data in Sage or GoCardless.")
def review_retry() -> None:
    review_retry_op()


@dg.job(description="Review queue: dismiss an item with a note.")
def review_dismiss() -> None:
    review_dismiss_op()


def _queue_markdown(items: Sequence[ReviewItem]) -> str:
    if not items:
        return "The review queue is empty."
    lines = ["| id | payment | kind | reason | amount | since |", "|---|---|---|---|---|---|"]
    for i in items[:200]:
        amount = i.details.get("home_amount") or i.details.get("amount") or ""
        lines.append(
            f"| {i.id} | {i.subject} | {i.kind} | {i.reason or ''} | {amount} | {i.first_seen:%Y-%m-%d %H:%M} |"
        )
    return "\n".join(lines)


defs = dg.Definitions(
    assets=[customer_map, payment_matches, payouts, cash_receipts],
    asset_checks=[allocations_add_up, no_invoice_over_applied, no_payment_posted_twice, payout_items_add_up],
    jobs=[post_cash_receipts_job, review_apply, review_retry, review_dismiss],
    sensors=[post_when_matched],
    schedules=[post_cash_receipts_schedule],
)
