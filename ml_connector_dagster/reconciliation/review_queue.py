"""The review queue as a table for people: one row per open item, in words and currency units.

Pure reading of the operational store (no Dagster): the `reconciliation/review_queue` asset and the review
jobs turn `open_items` into a Dagster table and a Markdown preview. Amounts are exact decimal text (from
integer minor units and the stored home-currency text), never floats.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from .. import money
from ..store import Store
from ..store.ledger import LedgerEntry
from ..store.review import ReviewItem

#: The table's columns in order: (name, type shown in Dagster, what it holds).
COLUMNS: tuple[tuple[str, str, str], ...] = (
    ("item", "int", "Review item id: give it to the review jobs (item_id) or `ml-connector review show ID`."),
    ("kind", "string", "held (decide it), reversal_required (reverse it in Sage) or processing_failed (an event)."),
    ("payment", "string", "GoCardless payment id (for processing_failed: the event's resource)."),
    ("gocardless_customer", "string", "GoCardless customer id."),
    ("sage_customer", "string", "Sage customer DD-CUSTNO, when one is resolved."),
    ("home_amount", "decimal", "Amount in Sage's home currency (exact decimal text)."),
    ("amount", "decimal", "Amount in the payment's own currency (exact decimal text)."),
    ("currency", "string", "The payment's currency."),
    ("reason", "string", "Why it waits for a person (e.g. ambiguous_match, customer_not_found, refund)."),
    ("explanation", "string", "The reason in words."),
    ("candidates", "string", "Candidate invoices (or likely Sage customers when none was found), comma-separated."),
    ("waits_for", "string", "What the item waits for, when known."),
    ("since", "datetime", "When the item was first queued (UTC)."),
)

_WHAT_TO_DO = {
    "held": "held for a person: apply it to invoices (review_apply), retry after fixing data, or dismiss it",
    "reversal_required": "write the reversal to Sage (review_reverse)",
    "processing_failed": "a GoCardless event failed every attempt: fix the cause, then retry it (review_retry)",
}


@dataclass(frozen=True)
class QueueRow:
    item: int
    kind: str
    payment: str
    gocardless_customer: str
    sage_customer: str
    home_amount: str
    amount: str
    currency: str
    reason: str
    explanation: str
    candidates: str
    waits_for: str
    since: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def open_items(store: Store) -> list[QueueRow]:
    """Every open review item, oldest first, with what its ledger row knows where the item's details do not."""
    items = store.review.list(status="open")
    ledger = {e.payment_id: e for e in store.ledger.many([i.subject for i in items if i.kind != "processing_failed"])}
    return [queue_row(item, ledger.get(item.subject)) for item in items]


def queue_row(item: ReviewItem, entry: LedgerEntry | None = None) -> QueueRow:
    d = item.details
    failed_event = item.kind == "processing_failed"
    amount_minor = d.get("amount_minor", entry.amount_minor if entry else None)
    currency = d.get("currency") or (entry.currency if entry else None) or ""
    return QueueRow(
        item=item.id,
        kind=item.kind,
        payment=_text(d.get("resource_id") if failed_event else d.get("payment_id") or item.subject),
        gocardless_customer=_text(d.get("gocardless_customer") or (entry.gocardless_customer if entry else None)),
        sage_customer=_text(d.get("sage_customer") or (entry.sage_customer if entry else None)),
        home_amount=_text(d.get("home_amount") or (entry.home_amount if entry else None)),
        amount=_text(d.get("amount")) or _units(amount_minor, currency),
        currency=_text(currency),
        reason=_text(item.reason),
        explanation=explanation(item, entry),
        candidates=", ".join(str(c) for c in d.get("candidates") or []),
        waits_for=_sentences(d.get("waits_for")),
        since=item.first_seen.isoformat(timespec="seconds"),
    )


def explanation(item: ReviewItem, entry: LedgerEntry | None = None) -> str:
    """The item's reason in words: the decision's explanation, else what its kind means and what to do."""
    d = item.details
    if d.get("explanation"):
        return str(d["explanation"])
    if entry is not None and entry.explanation and item.kind == "held":
        return entry.explanation
    if item.kind == "processing_failed":
        attempts = d.get("attempts")
        tried = f" after {attempts} attempts" if attempts else ""
        return f"event {item.subject} ({d.get('event') or 'unknown kind'}) failed{tried}: {d.get('error') or '?'}"
    if item.kind == "reversal_required":
        cause = d.get("cause") or item.reason or "money went back"
        return f"{cause}: the money went back after its receipt was posted; {_WHAT_TO_DO['reversal_required']}"
    return _WHAT_TO_DO.get(item.kind, "waits for a person")


def markdown(rows: Sequence[QueueRow], limit: int = 100) -> str:
    """A readable preview: the columns people read first, at most `limit` rows."""
    if not rows:
        return "The review queue is empty."
    head = ["item", "kind", "payment", "customer", "amount", "reason", "explanation", "candidates", "since"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows[:limit]:
        customer = " / ".join(c for c in (r.gocardless_customer, r.sage_customer) if c)
        amount = " ".join(a for a in (r.amount, r.currency) if a)
        if r.home_amount and r.home_amount != r.amount:
            amount = f"{amount} (home {r.home_amount})" if amount else f"home {r.home_amount}"
        why = r.explanation + (f" Waits for: {r.waits_for}" if r.waits_for else "")
        cells = [str(r.item), r.kind, r.payment, customer, amount, r.reason, why, r.candidates, r.since]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    if len(rows) > limit:
        lines.append(f"\n… and {len(rows) - limit} more: `ml-connector review list` shows them all.")
    return "\n".join(lines)


def _units(amount_minor: object, currency: str) -> str:
    if not isinstance(amount_minor, int) or isinstance(amount_minor, bool) or not currency:
        return ""
    try:
        return str(money.to_decimal(amount_minor, currency))
    except money.UnsupportedCurrency:
        return ""  # the item's reason (currency_unsupported) says so


def _sentences(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple):
        return " ".join(str(v) for v in value)
    return ""


def _text(value: object) -> str:
    return "" if value is None else str(value)


def _cell(text: str) -> str:
    """Markdown table cell: no line breaks, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")
