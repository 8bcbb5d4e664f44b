"""Refunds re-read from GoCardless, evaluated against their payment's ledger status (lifecycle.refund_step).

Only a refund that reached the customer (`paid`) took money back: a posted payment becomes
`reversal_required` for the refund's amount, with a review item naming the refund. A refund not sent yet
changes nothing until it is paid. A refund that never reached the customer (`cancelled`, `bounced`,
`funds_returned`: its money came back to the merchant) leaves the payment as it was; if it was this
refund that had put the payment in `reversal_required`, the payment is posted again and the reversal item
closes, the audit trail saying why. Every refund leaves one audit record per fetch.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple

import duckdb
import pandas as pd

from ..lifecycle import REFUND_NEVER_REACHED_CUSTOMER, refund_meaning, refund_step
from ..settings import ReconciliationSettings
from ..store import Store
from ..store.review import ReviewItem
from ..store.utc import utcnow
from .outcomes import reversal_details
from .tables import ensure_tables, typed_rows


class _Refund(NamedTuple):
    id: str
    payment: str | None
    amount: int
    currency: str
    status: str
    fetched_at: datetime


def evaluate_refunds(
    conn: duckdb.DuckDBPyConnection, store: Store, settings: ReconciliationSettings, actor: str = "system"
) -> int:
    """Evaluate every refund fetched since its last evaluation; returns how many.

    A refund of a payment not posted yet (matched, or `posting` with its outcome unknown) is only recorded
    here: the write-back applies it right after it records the payment's receipt (claims.py,
    ClaimedPayment._money_back).
    """
    ensure_tables(conn)
    refunds = conn.execute("""
        SELECT r.id, r.payment, r.amount, r.currency, r.status, r.fetched_at FROM gocardless_refunds r
        LEFT JOIN refund_evaluations e ON e.refund_id = r.id
        WHERE e.refund_id IS NULL OR r.fetched_at > e.source_fetched_at""").df()
    if refunds.empty:
        return 0
    statuses = store.ledger.statuses(refunds["payment"].dropna().unique().tolist())
    outcomes = []
    for r in typed_rows(refunds, _Refund, _Refund._fields):
        ledger_status = statuses.get(r.payment) if r.payment else None
        item = _reversal_item_of(store, r) if ledger_status == "reversal_required" else None
        opened = item is not None and _all_came_back(conn, _refund_ids(item))
        step = refund_step(ledger_status, r.status, opened_reversal=opened)
        outcome = "recorded"
        if step.action == "reversal_required" and r.payment:  # only a posted payment's refund needs a reversal
            details = {**reversal_details(r.payment, "refund", r.amount, r.currency, settings), "refund_id": r.id}
            if store.ledger.transition(r.payment, ["posted"], status="reversal_required", reason="refund"):
                store.review.open_item(r.payment, "reversal_required", "refund", details)
                store.audit.append("payment.reversal_required", r.payment, details, actor=actor)
                outcome = "reversal_required"
        elif step.action == "restore" and item is not None and _restore(store, r, item, actor):
            outcome = "restored"
        if outcome == "recorded":
            store.audit.append(
                "refund.recorded",
                r.payment,
                {
                    "refund_id": r.id,
                    "status": r.status,
                    "meaning": refund_meaning(r.status),
                    "payment_status": ledger_status,
                },
                actor=actor,
            )
        outcomes.append((r.id, r.payment, r.status, outcome, r.fetched_at))
    frame = pd.DataFrame(outcomes, columns=["refund_id", "payment_id", "status", "outcome", "source_fetched_at"])
    frame["evaluated_at"] = utcnow().replace(tzinfo=None)
    conn.register("new_refunds", frame)
    conn.execute("INSERT OR REPLACE INTO refund_evaluations SELECT * FROM new_refunds")
    conn.unregister("new_refunds")
    return len(refunds)


def _reversal_item_of(store: Store, refund: _Refund) -> ReviewItem | None:
    """The payment's open reversal item if this refund opened it (alone, or with other refunds)."""
    for item in store.review.open_for(refund.payment or ""):
        if item.kind == "reversal_required" and item.reason == "refund" and refund.id in _refund_ids(item):
            return item
    return None


def _refund_ids(item: ReviewItem) -> list[str]:
    """The refunds a reversal item is for: `refund_id` (evaluation) or `refund_ids` (the write-back)."""
    ids = item.details.get("refund_ids") or [item.details.get("refund_id")]
    return [str(i) for i in ids if i]


def _all_came_back(conn: duckdb.DuckDBPyConnection, refund_ids: list[str]) -> bool:
    """Every refund of a reversal item never reached the customer, as last fetched."""
    rows = conn.execute("SELECT status FROM gocardless_refunds WHERE id IN (SELECT unnest(?))", [refund_ids]).fetchall()
    return len(rows) == len(set(refund_ids)) and all(status in REFUND_NEVER_REACHED_CUSTOMER for (status,) in rows)


def _restore(store: Store, refund: _Refund, item: ReviewItem, actor: str) -> bool:
    """The refund's money never reached the customer: the payment is posted again, its reversal item closes."""
    assert refund.payment is not None  # a reversal item is always about a payment
    if not store.ledger.transition(refund.payment, ["reversal_required"], status="posted", reason=None):
        return False  # moved on meanwhile (reversed by a person or auto_reversal): people decide from there
    why = f"refund {refund.id} {refund.status}: {refund_meaning(refund.status)}; the receipt stands"
    store.review.close(item.id, "resolved", by=actor, note=why)
    details: dict[str, Any] = {
        "refund_id": refund.id,
        "status": refund.status,
        "meaning": refund_meaning(refund.status),
        "review_item": item.id,
        "note": why,
    }
    store.audit.append("payment.restored", refund.payment, details, actor=actor)
    return True
