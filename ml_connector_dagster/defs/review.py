"""Dagster wiring for the review queue's actions: the CLI's `ml-connector review ...` as jobs launchable from the
UI with typed config (review_apply, review_retry, review_dismiss, review_reverse).

Thin: the work is in `reconciliation.review_actions`. An operator's mistake (no such item, already closed,
wrong invoice or amount) fails the run with a message saying what is wrong and what to do, not a traceback;
the jobs are never retried (an action is a person's decision, taken once); and each job ends by recording a
fresh materialization of `reconciliation/review_queue`, so the table in the UI shows the queue after it.
"""

from collections.abc import Callable

import dagster as dg
from pydantic import Field

from ..gocardless.client import GoCardlessError
from ..reconciliation import review_actions
from ..reconciliation.posting import Allocation, AllocationError
from ..sage100 import SageError
from ..settings import SettingsError
from .gocardless import GoCardlessResource
from .resources import ConnectorSettings, OperationalStore
from .review_queue import queue_materialization
from .sage100 import SageAgentResource

#: Run tags that name the user who launched a run, where Dagster knows one (Dagster+ sets them; OSS does not).
USER_TAGS = ("dagster/user", "user")
#: No run retries: the instance's run_retries (dagster.yaml) would otherwise repeat an operator's action.
NO_RETRIES = {"dagster/max_retries": "0"}

ITEM_ID = Field(description="The review item's id: the `item` column of reconciliation/review_queue.")
OPERATOR = Field(
    description="Who is acting, recorded in the audit trail (your name or email). Where Dagster knows the "
    "user who launched the run (a `dagster/user` run tag, as Dagster+ sets), that user is recorded instead."
)


class ReviewApplyConfig(dg.Config):
    item_id: int = ITEM_ID
    invoices: list[str] = Field(
        description="Invoices to apply the held payment to: `NO` or `NO:AMOUNT` in the home currency, AMOUNT "
        "above 0 with the digits 0-9 (e.g. `0100030:250.00`); invoices without an amount fill oldest first."
    )
    sage_customer: str | None = Field(
        default=None,
        description="The Sage customer as DD-CUSTNO (e.g. `01-ABF`), when the payment has none resolved "
        "(the queue's sage_customer column is empty).",
    )
    operator: str = OPERATOR


class ReviewRetryConfig(dg.Config):
    item_id: int = ITEM_ID
    operator: str = OPERATOR


class ReviewDismissConfig(dg.Config):
    item_id: int = ITEM_ID
    note: str = Field(description="Why the item is closed without posting (kept in the audit trail).")
    operator: str = OPERATOR


class ReviewReverseConfig(dg.Config):
    item_id: int = ITEM_ID
    operator: str = OPERATOR


Act = Callable[[str], review_actions.ActionResult]


def _finish(context: dg.OpExecutionContext, store: OperationalStore, given: str, act: Act) -> dict[str, object]:
    """Run an operator's action as the launching user; a mistake fails the run with what to do, not retried.

    Ends with a fresh materialization of the review queue, whatever happened (a failed post may hold the item).
    """
    try:
        result = act(_operator(context, given))
    except (review_actions.ReviewActionError, AllocationError) as exc:
        raise _mistake(str(exc)) from None
    except SettingsError as exc:
        raise dg.Failure(
            description=f"{exc}\nNothing was done: set them for the code location (`ml-connector config check` "
            "checks them), then launch the job again.",
            allow_retries=False,
        ) from None
    except (SageError, GoCardlessError) as exc:
        raise dg.Failure(
            description=f"{exc.__class__.__name__}: {exc}. Nothing more was done; launch the job again once "
            f"{'Sage' if isinstance(exc, SageError) else 'GoCardless'} answers (a repeat never posts twice).",
            allow_retries=False,
        ) from None
    finally:
        _refresh_queue(context, store)
    context.add_output_metadata(result.as_dict())
    return result.as_dict()


def _refresh_queue(context: dg.OpExecutionContext, store: OperationalStore) -> None:
    """Record the review queue as it is now (unless the settings are broken: the run fails saying so)."""
    try:
        ops = store.get()
    except SettingsError:
        return
    context.log_event(queue_materialization(ops, f"after {context.job_name}"))


def _mistake(what: str) -> dg.Failure:
    return dg.Failure(
        description=f"{what}. Nothing was changed: correct the config in the Launchpad and launch the job again "
        "(the reconciliation/review_queue asset lists the open items).",
        allow_retries=False,
    )


def _operator(context: dg.OpExecutionContext, given: str) -> str:
    """The launching user where Dagster knows one, else the operator the config names (required, not blank)."""
    tags = context.run.tags
    known = next((tags[t].strip() for t in USER_TAGS if tags.get(t, "").strip()), None)
    if known:
        return known
    if not given.strip():
        raise _mistake("operator: give your name or email, for the audit trail")
    return given.strip()


def _parsed(invoices: list[str]) -> list[Allocation]:
    if not invoices:
        raise _mistake("invoices: give at least one invoice, as NO or NO:AMOUNT (e.g. 0100030:250.00)")
    try:
        return [review_actions.parse_allocation(text) for text in invoices]
    except review_actions.ReviewActionError as exc:
        raise _mistake(f"invoices: {exc}") from None


@dg.op(description="Apply a held payment to the invoices in the config and post its receipt to Sage.")
def review_apply_op(
    context: dg.OpExecutionContext,
    config: ReviewApplyConfig,
    connector_settings: ConnectorSettings,
    store: OperationalStore,
    sage_agent: SageAgentResource,
    gocardless: GoCardlessResource,
) -> dict[str, object]:
    def act(operator: str) -> review_actions.ActionResult:
        allocations = _parsed(config.invoices)
        customer = (config.sage_customer or "").strip() or None
        return review_actions.apply(
            store.get(),
            sage_agent.get_client(),
            gocardless.get_client(),
            connector_settings.get().reconciliation(),
            config.item_id,
            allocations,
            operator,
            customer,
        )

    return _finish(context, store, config.operator, act)


@dg.op(description="Decide a held payment again on fresh data (or queue a failed event again).")
def review_retry_op(
    context: dg.OpExecutionContext,
    config: ReviewRetryConfig,
    connector_settings: ConnectorSettings,
    store: OperationalStore,
    sage_agent: SageAgentResource,
    gocardless: GoCardlessResource,
) -> dict[str, object]:
    def act(operator: str) -> review_actions.ActionResult:
        return review_actions.retry(
            store.get(),
            sage_agent.get_client(),
            gocardless.get_client(),
            connector_settings.get().reconciliation(),
            config.item_id,
            operator,
        )

    return _finish(context, store, config.operator, act)


@dg.op(description="Close a review item without posting, with a note.")
def review_dismiss_op(
    context: dg.OpExecutionContext, config: ReviewDismissConfig, store: OperationalStore
) -> dict[str, object]:
    return _finish(
        context,
        store,
        config.operator,
        lambda operator: review_actions.dismiss(store.get(), config.item_id, config.note, operator),
    )


@dg.op(description="Write the reversal of a posted receipt whose money went back to Sage.")
def review_reverse_op(
    context: dg.OpExecutionContext, config: ReviewReverseConfig, store: OperationalStore, sage_agent: SageAgentResource
) -> dict[str, object]:
    return _finish(
        context,
        store,
        config.operator,
        lambda operator: review_actions.reverse(store.get(), sage_agent.get_client(), config.item_id, operator),
    )


@dg.job(description="Review queue: apply a held payment to invoices an operator chooses.", tags=NO_RETRIES)
def review_apply() -> None:
    review_apply_op()


@dg.job(
    description="Review queue: decide a held payment again after fixing data in Sage or GoCardless.", tags=NO_RETRIES
)
def review_retry() -> None:
    review_retry_op()


@dg.job(description="Review queue: dismiss an item with a note.", tags=NO_RETRIES)
def review_dismiss() -> None:
    review_dismiss_op()


@dg.job(description="Review queue: write the reversal of a receipt whose money went back.", tags=NO_RETRIES)
def review_reverse() -> None:
    review_reverse_op()


defs = dg.Definitions(jobs=[review_apply, review_retry, review_dismiss, review_reverse])
