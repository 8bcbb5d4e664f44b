"""`ml-connector review list|show|apply|retry|dismiss|reverse`: the review queue for operators.

Every action is audited with who (`--by`, default the OS user) and when, and posts through the same
idempotent path as automation. The same actions are Dagster jobs (review_apply, review_retry,
review_dismiss) for launching from the UI.
"""

from __future__ import annotations

import contextlib
import getpass
from collections.abc import Callable
from typing import Any

import click

from ..gocardless.client import GoCardlessClient, GoCardlessError
from ..reconciliation import review_actions
from ..reconciliation.posting import Allocation, AllocationError
from ..sage100 import AgentClient, SageError
from ..settings import Settings, SettingsError
from ..store import Store
from ..store.review import KINDS, ReviewItem
from .common import echo_json, echo_table, printable, settings_or_exit, store_or_exit


def _default_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user database (containers): say so rather than fail
        return "unknown-user"


# Outcomes where the payment did not get its receipt now: the command exits 1 (see the message).
NOT_DONE = ("held", "unknown", "skipped", "busy", "deferred", "lost")

BY = click.option(
    "--by", default=_default_user, show_default="the OS user", help="Who is acting (for the audit trail)."
)


@click.group()
def review() -> None:
    """The review queue: held payments and reversals waiting for a person."""


@review.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--all", "show_all", is_flag=True, help="Include closed items.")
@click.option("--kind", type=click.Choice(KINDS), help="Only items of this kind.")
def list_items(as_json: bool, show_all: bool, kind: str | None) -> None:
    """List open items (oldest first)."""
    items = [i for i in store_or_exit().review.list(status=None if show_all else "open") if not kind or i.kind == kind]
    data = [_item_view(i) for i in items]
    if as_json:
        echo_json(data)
    else:
        echo_table(data, ["id", "payment", "kind", "reason", "amount", "currency", "status", "first_seen"])


@review.command("show")
@click.argument("item_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@BY
def show(item_id: int, as_json: bool, by: str) -> None:
    """Everything about one item: the payment, the reason, what it waits for, candidates and the audit trail.

    Opening an open item is recorded (`review.opened`): if automation then decides its payment again, the
    audit trail and the item's note say it changed while you had it open.
    """
    store = store_or_exit()
    item = store.review.get(item_id)
    if item is None:
        raise click.ClickException(f"there is no review item {item_id}; see `ml-connector review list`")
    if item.status == "open":
        store.audit.append("review.opened", item.subject, {"item": item.id}, actor=by)
    trail = [{"at": r.recorded_at, "by": r.actor, "action": r.action} for r in store.audit.list(subject=item.subject)]
    data = {
        **_item_view(item),
        "details": item.details,
        "note": item.note,
        "resolved_by": item.resolved_by,
        "audit": trail,
    }
    if as_json:
        echo_json(data)
        return
    for key in ("id", "payment", "kind", "reason", "status", "amount", "currency", "first_seen", "last_seen"):
        click.echo(f"{key:>12}: {printable(data[key])}")
    if item.status != "open":
        click.echo(f"{'closed by':>12}: {printable(item.resolved_by or '')}")
        click.echo(f"{'note':>12}: {printable(item.note or '')}")
    click.echo(f"{'explanation':>12}: {printable(item.details.get('explanation', ''))}")
    for waiting in item.details.get("waits_for") or []:
        click.echo(f"{'waits for':>12}: {printable(str(waiting))}")
    if item.details.get("candidates"):
        click.echo(f"{'candidates':>12}: {printable(', '.join(map(str, item.details['candidates'])))}")
    click.echo("\naudit trail:")
    for entry in trail:
        click.echo(f"  {entry['at']}  {printable(entry['by']):<12} {printable(entry['action'])}")


def _allocations(_ctx: click.Context, _param: click.Parameter, values: tuple[str, ...]) -> list[Allocation]:
    """Parse every --invoice before anything runs: a bad one is a usage error (exit code 2), not a traceback."""
    try:
        return [review_actions.parse_allocation(text) for text in values]
    except review_actions.ReviewActionError as exc:
        raise click.BadParameter(str(exc)) from None


@review.command("apply")
@click.argument("item_id", type=int)
@click.option(
    "--invoice",
    "allocations",
    multiple=True,
    required=True,
    metavar="NO[:AMOUNT]",
    callback=_allocations,
    help="An invoice to apply the payment to, optionally with the amount (more than 0, e.g. 250.00); "
    "repeat for several.",
)
@click.option("--customer", metavar="DD-CUSTNO", help="The Sage customer, when the payment has none resolved.")
@BY
def apply(item_id: int, allocations: list[Allocation], customer: str | None, by: str) -> None:
    """Post a held payment to the invoices you choose (unstated amounts fill oldest first)."""
    _run(
        lambda store, agent, gocardless, settings: review_actions.apply(
            store, agent, gocardless, settings.reconciliation(), item_id, allocations, by, customer
        )
    )


@review.command("retry")
@click.argument("item_id", type=int)
@BY
def retry(item_id: int, by: str) -> None:
    """Decide again on fresh data, after fixing it in Sage or GoCardless; posts if it now matches."""
    _run(
        lambda store, agent, gocardless, settings: review_actions.retry(
            store, agent, gocardless, settings.reconciliation(), item_id, by
        )
    )


@review.command("dismiss")
@click.argument("item_id", type=int)
@click.option("--note", required=True, help="Why (kept in the audit trail).")
@BY
def dismiss(item_id: int, note: str, by: str) -> None:
    """Close an item without posting."""
    store = store_or_exit()
    try:
        result = review_actions.dismiss(store, item_id, note, by)
    except review_actions.ReviewActionError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"item {result.item_id} ({result.payment_id}): dismissed")


@review.command("reverse")
@click.argument("item_id", type=int)
@BY
def reverse(item_id: int, by: str) -> None:
    """Write the reversal of a posted receipt whose money went back (reversal_required -> reversed)."""
    _run(lambda store, agent, gocardless, settings: review_actions.reverse(store, agent, item_id, by))


Action = Callable[[Store, AgentClient, GoCardlessClient, Settings], review_actions.ActionResult]


def _run(action: Action) -> None:
    settings = settings_or_exit()
    store = store_or_exit(settings)
    try:
        agent = AgentClient.from_settings(settings.sage_agent())
        with contextlib.closing(GoCardlessClient.from_settings(settings.gocardless())) as gocardless:
            result = action(store, agent, gocardless, settings)
    except (review_actions.ReviewActionError, AllocationError, SettingsError) as exc:
        raise click.ClickException(str(exc)) from None
    except (SageError, GoCardlessError) as exc:
        raise click.ClickException(f"{exc.__class__.__name__}: {exc}") from None
    finally:
        store.dispose()
    click.echo(
        f"item {result.item_id} ({printable(result.payment_id)}): {result.action} -> {result.outcome}: "
        f"{printable(result.message)}"
    )
    if result.outcome in NOT_DONE:
        raise SystemExit(1)


def _item_view(item: ReviewItem) -> dict[str, Any]:
    return {
        "id": item.id,
        "payment": item.subject,
        "kind": item.kind,
        "reason": item.reason,
        "status": item.status,
        "amount": item.details.get("home_amount") or item.details.get("amount"),
        "currency": item.details.get("currency"),
        "first_seen": item.first_seen.isoformat(timespec="seconds"),
        "last_seen": item.last_seen.isoformat(timespec="seconds"),
    }
