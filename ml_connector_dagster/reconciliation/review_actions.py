"""Operator actions on the review queue: apply, retry, dismiss, reverse.

The CLI (`ml-connector review ...`) and the Dagster review jobs call these same functions. Each action is
audited with who and when, and posts through the same idempotent path as automation (`write_back.py`).
Payments are re-read from GoCardless here (fresh, and no DuckDB lock is needed from outside Dagster).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from .. import money
from ..gocardless.client import GoCardlessClient
from ..gocardless.rows import payment_row, retry_expected
from ..lifecycle import next_step
from ..matching import resolve_customers
from ..sage100 import AgentClient
from ..sage100.model import money as sage_amount
from ..settings import ReconciliationSettings
from ..store import Store
from ..store.review import ReviewItem
from ..store.utc import utcnow
from .posting import Allocation, PostingOutcome
from .waits import awaits_converted_amount
from .write_back import post_payment


class ReviewActionError(ValueError):
    """The action does not apply to this item; the message says why and what to do instead."""


@dataclass(frozen=True)
class ActionResult:
    item_id: int
    payment_id: str
    action: str
    outcome: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def parse_allocation(text: str) -> Allocation:
    """`NO` or `NO:AMOUNT` (amount in home currency, e.g. 0100030:250.00).

    Refused here, before anything is claimed or asked of Sage: an amount that is not more than 0 (it
    would be dropped from the receipt without a word) or not written with the digits 0-9.
    """
    number, _, amount = text.partition(":")
    if not number.strip():
        raise ReviewActionError(f"{text!r}: give an invoice number, optionally :AMOUNT (e.g. 0100030:250.00)")
    try:
        return Allocation(number.strip(), sage_amount(amount, "amount") if amount.strip() else None)
    except (ValueError, ArithmeticError) as exc:  # AllocationError is a ValueError too
        raise ReviewActionError(f"{text!r}: {exc}") from None


def apply(
    store: Store,
    agent: AgentClient,
    gocardless: GoCardlessClient,
    settings: ReconciliationSettings,
    item_id: int,
    allocations: Sequence[Allocation],
    by: str,
    sage_customer: str | None = None,
) -> ActionResult:
    """Post a held payment to the invoices an operator chose (amounts optional: oldest first fills)."""
    item = _open_item(store, item_id, kinds=("held",))
    entry = store.ledger.entry(item.subject)  # a held item's payment is in the ledger
    if sage_customer is None and entry.sage_customer is None:
        raise ReviewActionError("this payment has no Sage customer; name one with --customer DD-CUSTNO")
    store.audit.append(
        "review.apply",
        item.subject,
        {"item": item_id, "invoices": [a.invoice_no for a in allocations], "customer": sage_customer},
        actor=by,
    )
    payment = _fresh_payment(gocardless, item.subject)
    outcome = post_payment(
        store, agent, settings, entry, payment, actor=by, allocations=allocations, sage_customer=sage_customer
    )
    return _result(item_id, item.subject, "apply", outcome)


def retry(
    store: Store,
    agent: AgentClient,
    gocardless: GoCardlessClient,
    settings: ReconciliationSettings,
    item_id: int,
    by: str,
) -> ActionResult:
    """Decide again on fresh data (after fixing it in Sage or GoCardless) and post if it now matches."""
    item = _open_item(store, item_id, kinds=("held", "processing_failed"))
    if item.kind == "processing_failed":  # the event goes back to the inbox; the sensor picks it up
        requeued = store.inbox.requeue(item.subject)
        store.review.close(item_id, "retried", by=by, note="event queued again")
        store.audit.append("review.retry", item.subject, {"item": item_id, "requeued": requeued}, actor=by)
        return ActionResult(item_id, item.subject, "retry", "requeued", "the event is due again in the inbox")
    pid = item.subject
    store.audit.append("review.retry", pid, {"item": item_id}, actor=by)
    resolved = gocardless.resolve_payment(pid)
    payment = {**_payment_dict(resolved.payment, resolved.customer["id"]), "refunds": _refunds(gocardless, pid)}
    entry = store.ledger.get(pid)
    current, reason = (None, None) if entry is None else (entry.status, entry.reason)
    status = resolved.payment["status"]
    retry_coming = bool(retry_expected(store.inbox.of_resource(pid)))  # what the payment's events said
    step = next_step(current, status, settings.collect_on, retry_expected=retry_coming, ledger_reason=reason)
    store.review.close(item_id, "retried", by=by, note="decided again on fresh data")
    if step.action == "none":
        store.ledger.upsert(pid, status=current, gocardless_status=status)
        return ActionResult(item_id, pid, "retry", str(current), f"GoCardless status is {status}")
    if step.action != "match":
        why = step.cause if step.action == "not_collected" else None
        store.ledger.upsert(pid, status=step.action, reason=why, gocardless_status=status)
        return ActionResult(item_id, pid, "retry", step.action, f"GoCardless status is {status}")
    customer = _resolve(agent, resolved.customer)
    home = money.to_home_amount(
        payment["amount"],
        payment["currency"],
        settings.home_currency,
        payment.get("fx_currency"),
        payment.get("fx_amount"),
        settings.fx_rates,
    )
    values = {
        "sage_customer": customer,
        "home_amount": None if home is None else str(home),
        "gocardless_customer": resolved.customer["id"],
        "amount_minor": payment["amount"],
        "currency": payment["currency"],
        "gocardless_status": status,
    }
    waits = awaits_converted_amount(
        payment["currency"],
        payment.get("fx_currency"),
        payment.get("fx_amount") is not None,
        settings.home_currency,
        settings.fx_rates,
    )
    if home is None and waits:
        store.ledger.upsert(pid, status="pending", reason="awaiting_fx_amount", **values)
        return ActionResult(item_id, pid, "retry", "pending", "waiting for GoCardless's converted amount")
    store.ledger.upsert(pid, status="matched", reason=None, **values)
    if customer is None or home is None:
        held = "currency_unsupported" if home is None else "customer_not_found"
        store.ledger.transition(pid, ["matched"], status="held", reason=held)
        store.review.open_item(pid, "held", held, {"payment_id": pid, "reason": held, "retried_by": by})
        return ActionResult(item_id, pid, "retry", "held", held)
    outcome = post_payment(store, agent, settings, store.ledger.entry(pid), payment, actor=by)
    return _result(item_id, pid, "retry", outcome)


def dismiss(store: Store, item_id: int, note: str, by: str) -> ActionResult:
    """Close an item without posting; the payment stays held and the note says why."""
    if not note.strip():
        raise ReviewActionError("dismissing needs a note saying why (--note TEXT)")
    item = _open_item(store, item_id)
    store.review.close(item_id, "dismissed", by=by, note=note)
    store.audit.append("review.dismiss", item.subject, {"item": item_id, "note": note}, actor=by)
    return ActionResult(item_id, item.subject, "dismiss", "dismissed", note)


def reverse(store: Store, agent: AgentClient, item_id: int, by: str) -> ActionResult:
    """Write the reversal of a posted receipt to Sage (reversal_required -> reversed)."""
    item = _open_item(store, item_id, kinds=("reversal_required",))
    return reverse_payment(store, agent, item.subject, by, item)


def reverse_payment(
    store: Store, agent: AgentClient, payment_id: str, by: str, item: ReviewItem | None = None
) -> ActionResult:
    reason = (item.reason if item else None) or "reversal"
    receipt = agent.reverse_cash_receipt(payment_id, reason)
    store.ledger.transition(payment_id, ["reversal_required"], status="reversed")
    store.audit.append(
        "cash_receipt.reversed", payment_id, {"receipt_id": receipt.receipt_id, "cause": reason}, actor=by
    )
    for open_item in store.review.open_for(payment_id):
        if open_item.kind == "reversal_required":
            store.review.close(open_item.id, "resolved", by=by, note="reversal written to Sage")
    return ActionResult(
        item.id if item else 0, payment_id, "reverse", "reversed", f"receipt {receipt.receipt_id} reversed"
    )


def auto_reverse(
    store: Store, agent: AgentClient, settings: ReconciliationSettings, actor: str = "system"
) -> list[ActionResult]:
    """With auto_reversal on, reverse receipts whose whole amount went back (partial refunds stay for people)."""
    if not settings.auto_reversal:
        return []
    results = []
    for item in store.review.list():
        if item.kind != "reversal_required":
            continue
        entry = store.ledger.get(item.subject)
        if entry and entry.status == "reversal_required" and item.details.get("amount_minor") == entry.amount_minor:
            results.append(reverse_payment(store, agent, item.subject, actor, item))
    return results


def _open_item(store: Store, item_id: int, kinds: Sequence[str] | None = None) -> ReviewItem:
    item = store.review.get(item_id)
    if item is None:
        raise ReviewActionError(f"there is no review item {item_id}; see `ml-connector review list`")
    if item.status != "open":
        why = f": {item.note}" if item.note else ""
        raise ReviewActionError(
            f"review item {item_id} is already {item.status} (by {item.resolved_by}){why}; "
            "see `ml-connector review list` for what is open"
        )
    if kinds and item.kind not in kinds:
        raise ReviewActionError(
            f"review item {item_id} is {item.kind}; this action applies to {', '.join(kinds)} items"
        )
    return item


def _fresh_payment(gocardless: GoCardlessClient, payment_id: str) -> dict[str, Any]:
    resolved = gocardless.resolve_payment(payment_id)
    return {**_payment_dict(resolved.payment, resolved.customer["id"]), "refunds": _refunds(gocardless, payment_id)}


def _refunds(gocardless: GoCardlessClient, payment_id: str) -> list[dict[str, Any]]:
    """The payment's refunds now: once its receipt is recorded, money that went back needs a reversal."""
    return [
        {"id": r["id"], "amount": int(r["amount"]), "currency": r["currency"], "status": r["status"]}
        for r in gocardless.list_refunds({"payment": payment_id})
    ]


def _payment_dict(payment: dict[str, Any], customer_id: str) -> dict[str, Any]:
    row = payment_row(payment, customer_id, utcnow())
    return {**row, "gocardless_customer": customer_id}


def _resolve(agent: AgentClient, customer: dict[str, Any]) -> str | None:
    """The Sage customer for a GoCardless customer, against Sage's customers as they are now."""
    sage = pd.DataFrame(
        [
            {
                "ARDivisionNo": c.ARDivisionNo,
                "CustomerNo": c.CustomerNo,
                "CustomerName": c.CustomerName,
                "EmailAddress": c.EmailAddress,
            }
            for c in agent.iter_customers()
        ],
        columns=["ARDivisionNo", "CustomerNo", "CustomerName", "EmailAddress"],
    )
    gc = pd.DataFrame(
        [
            {
                "id": customer["id"],
                "email": customer.get("email"),
                "given_name": customer.get("given_name"),
                "family_name": customer.get("family_name"),
                "company_name": customer.get("company_name"),
                "metadata": json.dumps(customer.get("metadata") or {}),
            }
        ]
    )
    found = resolve_customers(gc, sage)["sage_customer"].iloc[0]
    return found if isinstance(found, str) else None  # unresolved: None


def _result(item_id: int, payment_id: str, action: str, outcome: PostingOutcome) -> ActionResult:
    return ActionResult(
        item_id,
        payment_id,
        action,
        outcome.status,
        outcome.message or (f"receipt {outcome.receipt_id}" if outcome.receipt_id else outcome.status),
    )
