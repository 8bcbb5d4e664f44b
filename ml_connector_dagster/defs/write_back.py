"""Dagster wiring for the write-back: the reconciliation/cash_receipts asset, its job, and the sensor that
retries it.

Thin: the work is in `reconciliation.write_back`. How it fits together:
- `cash_receipts` follows `payment_matches` by its automation condition (defs/automation.py): requested in
  the same run as the matches, or after them, and posts every matched payment (and those left mid-write) to
  Sage, exactly once; it fails, to be retried with backoff, while work is left a later try can do.
- `post_cash_receipts_retry` (a sensor, every 15 minutes) is the safety net: it requests
  `post_cash_receipts_job` only while the ledger holds matched payments or writes left unfinished, so a
  quiet system launches nothing.
"""

import time
from collections.abc import Sequence

import dagster as dg

from ..reconciliation import review_actions
from ..reconciliation.posting import PaymentRow, PostingPass
from ..reconciliation.write_back import payment_rows, post_matched
from .automation import FOLLOWS_INPUTS
from .metadata import OWNERS, receipts_metadata, tags
from .reconciliation import ACTOR, RECONCILIATION, payment_matches
from .resources import ConnectorSettings, OperationalStore, Warehouse
from .sage100 import SageAgentResource


@dg.asset(
    key_prefix=RECONCILIATION,
    name="cash_receipts",
    group_name="reconciliation",
    automation_condition=FOLLOWS_INPUTS,
    pool="warehouse",
    kinds={"sage100"},
    owners=OWNERS,
    tags=tags("sage100", "receipts"),
    deps=[payment_matches],
    retry_policy=dg.RetryPolicy(max_retries=4, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS),
    description="Write-back: every matched payment posted to Sage as one cash receipt through the agent, "
    "exactly once (open invoices re-checked first); with auto_reversal on, receipts whose money "
    "went back in full are reversed. Follows the matches by its automation condition, in the same run "
    "as them when the automation requests both.",
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
            **receipts_metadata(ops, [o.payment_id for o in done.outcomes if o.receipt_id]),
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


WAITING = ("matched", "posting")  # ledger states a write-back pass can move on
RETRY_SECONDS = 900


@dg.sensor(
    name="post_cash_receipts_retry",
    job=post_cash_receipts_job,
    minimum_interval_seconds=RETRY_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Safety net, every 15 minutes: posts payments left matched or interrupted mid-write; "
    "skips when the ledger has none.",
)
def post_cash_receipts_retry(context: dg.SensorEvaluationContext, store: OperationalStore) -> dg.SensorResult:
    counts = store.get().ledger.counts()
    waiting = {state: counts.get(state, 0) for state in WAITING if counts.get(state, 0)}
    if not waiting:
        return dg.SensorResult(skip_reason="no payment is matched or mid-write: nothing to post")
    tags = {f"ledger/{state}": str(n) for state, n in waiting.items()}
    # The same waiting counts in the same 15 minutes are one request: a tick that sees them again adds nothing.
    bucket = int(time.time()) // RETRY_SECONDS
    key = "-".join(f"{state}{n}" for state, n in waiting.items())
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=f"post-retry-{key}-{bucket}", tags=tags)])


defs = dg.Definitions(assets=[cash_receipts], jobs=[post_cash_receipts_job], sensors=[post_cash_receipts_retry])
