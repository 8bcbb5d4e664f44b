"""GoCardless API resources as warehouse rows (tables.py): the columns the product reads, nothing else.

Amounts are checked to be whole minor units (money is never a float here), timestamps become naive UTC
(DuckDB TIMESTAMP), metadata canonical JSON. A row re-read because of an event carries that event's id,
action and time (`last_event_*`); a backfilled row carries none and keeps what the events said.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from ..store.inbox import InboxRow
from .tables import EVENT_COLUMNS, PayoutItemRow


def utc(text: str | None) -> datetime | None:
    """A GoCardless timestamp as a naive UTC datetime (DuckDB TIMESTAMP)."""
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def now_utc() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _json(value: Any) -> str:
    return json.dumps(value or {}, sort_keys=True, separators=(",", ":"))


def _minor(value: Any) -> int | None:
    """Integer minor units; refuses anything that is not a whole number (money is never a float here)."""
    if value is None:
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"amount {value!r} is not a whole number of minor units")
    return int(value)


def payment_row(
    payment: dict[str, Any],
    customer_id: str | None,
    fetched_at: datetime,
    event: InboxRow | None = None,
    retry: bool | None = None,
) -> dict[str, Any]:
    """`event`: the newest event that caused the re-read; `retry`: what the events said of a retry
    (`retry_expected`), None when they said nothing."""
    fx = payment.get("fx") or {}
    links = payment.get("links") or {}
    return {
        "id": payment["id"],
        "amount": _minor(payment["amount"]),
        "amount_refunded": _minor(payment.get("amount_refunded")),
        "currency": payment["currency"],
        "status": payment["status"],
        "charge_date": payment.get("charge_date"),
        "reference": payment.get("reference"),
        "description": payment.get("description"),
        "metadata": _json(payment.get("metadata")),
        "fx_currency": fx.get("fx_currency"),
        "fx_amount": _minor(fx.get("fx_amount")),
        "exchange_rate": fx.get("exchange_rate"),
        "mandate": links.get("mandate"),
        "customer": customer_id,
        "payout": links.get("payout"),
        "created_at": utc(payment.get("created_at")),
        "fetched_at": fetched_at,
        **_event_columns(event),
        "retry_expected": retry,
    }


def retry_expected(events: Iterable[InboxRow]) -> bool | None:
    """Whether GoCardless said it will try to collect a payment again, from the newest of `events` (oldest
    first) that speaks of a retry: a `failed` event's `details.will_attempt_retry`, or
    `resubmission_requested` (the retry is on its way). None when none does (the stored value is kept)."""
    said = None
    for event in events:
        if event.action == "resubmission_requested":
            said = True
        elif event.action == "failed":
            said = (event.event.get("details") or {}).get("will_attempt_retry") is True
    return said


def customer_row(customer: dict[str, Any], fetched_at: datetime) -> dict[str, Any]:
    return {
        "id": customer["id"],
        "email": customer.get("email"),
        "given_name": customer.get("given_name"),
        "family_name": customer.get("family_name"),
        "company_name": customer.get("company_name"),
        "metadata": _json(customer.get("metadata")),
        "created_at": utc(customer.get("created_at")),
        "fetched_at": fetched_at,
    }


def refund_row(refund: dict[str, Any], fetched_at: datetime, event: InboxRow | None = None) -> dict[str, Any]:
    links = refund.get("links") or {}
    return {
        "id": refund["id"],
        "payment": links.get("payment"),
        "mandate": links.get("mandate"),
        "amount": _minor(refund["amount"]),
        "currency": refund["currency"],
        "status": refund["status"],
        "reference": refund.get("reference"),
        "metadata": _json(refund.get("metadata")),
        "created_at": utc(refund.get("created_at")),
        "fetched_at": fetched_at,
        **_event_columns(event),
    }


def payout_row(payout: dict[str, Any], fetched_at: datetime) -> dict[str, Any]:
    fx = payout.get("fx") or {}
    return {
        "id": payout["id"],
        "amount": _minor(payout["amount"]),
        "currency": payout["currency"],
        "deducted_fees": _minor(payout.get("deducted_fees")),
        "arrival_date": payout.get("arrival_date"),
        "reference": payout.get("reference"),
        "status": payout["status"],
        "fx_currency": fx.get("fx_currency"),
        "fx_amount": _minor(fx.get("fx_amount")),
        "exchange_rate": fx.get("exchange_rate"),
        "created_at": utc(payout.get("created_at")),
        "fetched_at": fetched_at,
        "tax_currency": payout.get("tax_currency"),
    }


def payout_item_rows(payout_id: str, items: Iterable[dict[str, Any]], fetched_at: datetime) -> list[PayoutItemRow]:
    rows: list[PayoutItemRow] = []
    for index, item in enumerate(items):
        links = item.get("links") or {}
        rows.append(
            (
                payout_id,
                index,
                item["type"],
                Decimal(str(item["amount"])),
                links.get("payment"),
                links.get("refund"),
                links.get("mandate"),
                json.dumps(item.get("taxes") or []),
                fetched_at,
            )
        )
    return rows


def _event_columns(event: InboxRow | None) -> dict[str, Any]:
    if event is None:
        return dict.fromkeys(EVENT_COLUMNS)
    return {
        "last_event_id": event.event_id,
        "last_event_action": event.action,
        "last_event_created_at": utc(event.event_created_at),
    }
