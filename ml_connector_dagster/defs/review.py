"""Dagster wiring for the review queue: the CLI's `ml-connector review ...` actions as jobs launchable from
the UI with config (review_apply, review_retry, review_dismiss).

Thin: the work is in `reconciliation.review_actions`; a refusal (bad input, wrong item) fails the run with its
message and is not retried.
"""

from collections.abc import Callable

import dagster as dg

from ..reconciliation import review_actions
from ..reconciliation.posting import Allocation, AllocationError
from .gocardless import GoCardlessResource
from .resources import ConnectorSettings, OperationalStore
from .sage100 import SageAgentResource


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


defs = dg.Definitions(jobs=[review_apply, review_retry, review_dismiss])
