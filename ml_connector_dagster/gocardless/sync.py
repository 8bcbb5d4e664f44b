"""The work behind the gocardless/* assets: inbox events and API reads into warehouse rows.

No Dagster here (defs/gocardless.py is thin wiring). The payments, refunds and payouts assets each make
one pass over the inbox (consumer.py) with their own re-read and write; customers are listed whole (no
event announces customer changes); the backfill re-reads payments by creation date; the events sweep
lists events the webhooks may have missed. Rows are built by rows.py and written by tables.py.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from ..store import Store
from ..store.inbox import InboxRow
from .client import GoCardlessClient, GoCardlessError, GoCardlessRequestError
from .consumer import DEFAULT_RETRY, InboxOutcome, RetryRule, latest, process_inbox
from .rows import customer_row, now_utc, payment_row, payout_item_rows, payout_row, refund_row, retry_expected
from .tables import ensure_tables, replace_payout_items, upsert
from .webhooks import PayloadError, check_kept_event, event_kind

Connect = Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]]  # a warehouse connection, closed after


# -- the four consumers ----------------------------------------------------------------------------------


class MandateCache:
    """Mandate -> customer id, read once per run (a mandate's customer never changes)."""

    def __init__(self, client: GoCardlessClient) -> None:
        self.client = client
        self._customers: dict[str, str | None] = {}

    def customer_of(self, mandate_id: str | None) -> str | None:
        if not mandate_id:
            return None
        if mandate_id not in self._customers:
            self._customers[mandate_id] = (self.client.get_mandate(mandate_id).get("links") or {}).get("customer")
        return self._customers[mandate_id]


def process_payment_events(
    store: Store, client: GoCardlessClient, connect: Connect, claimed_by: str, rule: RetryRule = DEFAULT_RETRY
) -> InboxOutcome:
    """gocardless/payments: the payments named by due `payments.*` events, re-read with their customer."""
    mandates = MandateCache(client)

    def fetch(payment_id: str) -> tuple[dict[str, Any], str | None]:
        payment = client.get_payment(payment_id)
        return payment, mandates.customer_of((payment.get("links") or {}).get("mandate"))

    def write(fetched: dict[str, Any], events: dict[str, list[InboxRow]]) -> int:
        at = now_utc()
        rows = [
            payment_row(p, customer, at, latest(events.get(pid)), retry_expected(events.get(pid) or []))
            for pid, (p, customer) in fetched.items()
        ]
        with connect() as conn:
            ensure_tables(conn)
            return upsert(conn, "gocardless_payments", rows)

    return process_inbox(store, "payments", claimed_by, fetch, write, rule)


def process_refund_events(
    store: Store, client: GoCardlessClient, connect: Connect, claimed_by: str, rule: RetryRule = DEFAULT_RETRY
) -> InboxOutcome:
    """gocardless/refunds: the refunds named by due `refunds.*` events, re-read."""

    def write(fetched: dict[str, Any], events: dict[str, list[InboxRow]]) -> int:
        at = now_utc()
        with connect() as conn:
            ensure_tables(conn)
            rows = [refund_row(r, at, latest(events.get(rid))) for rid, r in fetched.items()]
            return upsert(conn, "gocardless_refunds", rows)

    return process_inbox(store, "refunds", claimed_by, client.get_refund, write, rule)


def process_payout_events(
    store: Store, client: GoCardlessClient, connect: Connect, claimed_by: str, rule: RetryRule = DEFAULT_RETRY
) -> InboxOutcome:
    """gocardless/payouts: payouts named by due `payouts.*` events, with their items."""

    def fetch(payout_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return client.get_payout(payout_id), list(client.payout_items(payout_id))

    def write(fetched: dict[str, Any], _events: dict[str, list[InboxRow]]) -> int:
        return write_payouts(connect, fetched)

    return process_inbox(store, "payouts", claimed_by, fetch, write, rule)


def write_payouts(connect: Connect, fetched: Mapping[str, tuple[dict[str, Any], list[dict[str, Any]] | None]]) -> int:
    """Upsert payouts and replace their items; a payout read without its items (None) keeps the stored ones."""
    at = now_utc()
    with connect() as conn:
        ensure_tables(conn)
        written = upsert(conn, "gocardless_payouts", [payout_row(p, at) for p, _ in fetched.values()])
        replace_payout_items(
            conn,
            {pid: payout_item_rows(pid, items, at) for pid, (_, items) in fetched.items() if items is not None},
        )
    return written


# A payout is final once paid, with its FX rate confirmed if it was converted, and the tax amounts of its
# items in the payout's tax currency (`tax_exchange_rates_confirmed`). Until then it is read again on every
# pass, within this window (GoCardless answers 410 Gone for the items of payouts older than 6 months).
UNSETTLED_WINDOW = timedelta(days=60)
UNSETTLED_PAYOUTS = """
    SELECT o.id FROM gocardless_payouts o
    WHERE (o.created_at IS NULL OR o.created_at >= ?) AND (
        o.status = 'pending'
        OR (o.status = 'paid' AND o.fx_currency IS NOT NULL AND o.fx_currency <> o.currency
            AND o.exchange_rate IS NULL)
        OR (o.status = 'paid' AND EXISTS (
            SELECT 1 FROM gocardless_payout_items i, unnest(CAST(coalesce(i.taxes, '[]') AS JSON[])) AS t(tax)
            WHERE i.payout = o.id AND tax->>'destination_amount' IS NULL)))
    ORDER BY o.id"""


@dataclass(frozen=True)
class PayoutRefresh:
    """What a pass over the unsettled payouts did."""

    unsettled: int
    refreshed: int
    failed: tuple[str, ...] = ()  # payout id: error, each left for the next pass


def refresh_unsettled_payouts(client: GoCardlessClient, connect: Connect, now: datetime | None = None) -> PayoutRefresh:
    """Read again every payout that is not final yet (pending; paid but its FX rate or tax amounts not
    confirmed): its amount, rate and items may still change, whether or not the event that says so came."""
    since = (now or datetime.now(UTC)).astimezone(UTC).replace(tzinfo=None) - UNSETTLED_WINDOW
    with connect() as conn:
        ensure_tables(conn)
        ids = [r[0] for r in conn.execute(UNSETTLED_PAYOUTS, [since]).fetchall()]
    fetched: dict[str, tuple[dict[str, Any], list[dict[str, Any]] | None]] = {}
    failed = []
    for payout_id in ids:
        try:
            payout = client.get_payout(payout_id)
            try:
                items: list[dict[str, Any]] | None = list(client.payout_items(payout_id))
            except GoCardlessRequestError as exc:
                if exc.status != 410:  # 410 Gone: items too old to list; the stored ones stay
                    raise
                items = None
            fetched[payout_id] = (payout, items)
        except GoCardlessError as exc:  # one payout's failure must not hold up the others: next pass
            failed.append(f"{payout_id}: {exc.__class__.__name__}: {exc}"[:300])
    refreshed = write_payouts(connect, fetched) if fetched else 0
    return PayoutRefresh(len(ids), refreshed, tuple(failed))


# Payments converted in a payout whose rate GoCardless has confirmed, but read before it did: their
# fx.fx_amount and fx.exchange_rate appear only then, and no payment event says so.
UNCONVERTED_PAYMENTS = """
    SELECT p.id, p.customer FROM gocardless_payments p JOIN gocardless_payouts o ON o.id = p.payout
    WHERE p.fx_currency IS NOT NULL AND p.fx_currency <> p.currency AND p.fx_amount IS NULL
      AND o.exchange_rate IS NOT NULL ORDER BY p.id"""


def refresh_converted_payments(client: GoCardlessClient, connect: Connect) -> int:
    """Read again the payments of FX payouts whose rate is now confirmed, so their converted amount reaches
    matching (a payment with no company rate waits `pending` for it). Returns how many were re-read."""
    with connect() as conn:
        ensure_tables(conn)
        waiting = conn.execute(UNCONVERTED_PAYMENTS).fetchall()
    if not waiting:
        return 0
    at = now_utc()
    rows = [payment_row(client.get_payment(pid), customer, at) for pid, customer in waiting]
    with connect() as conn:
        return upsert(conn, "gocardless_payments", rows)


def fetch_unknown_payouts(client: GoCardlessClient, connect: Connect) -> int:
    """Payouts that payments link to but the payouts table lacks (e.g. a payouts.paid event never came)."""
    with connect() as conn:
        ensure_tables(conn)
        missing = [
            r[0]
            for r in conn.execute(
                "SELECT DISTINCT p.payout FROM gocardless_payments p LEFT JOIN gocardless_payouts o ON o.id = p.payout "
                "WHERE p.payout IS NOT NULL AND o.id IS NULL"
            ).fetchall()
        ]
    fetched = {pid: (client.get_payout(pid), list(client.payout_items(pid))) for pid in missing}
    return write_payouts(connect, fetched) if fetched else 0


def sync_all_customers(client: GoCardlessClient, connect: Connect) -> int:
    """gocardless/customers: every customer, upserted (GoCardless announces no customer changes)."""
    at = now_utc()
    rows = [customer_row(c, at) for c in client.list_customers()]
    with connect() as conn:
        ensure_tables(conn)
        return upsert(conn, "gocardless_customers", rows)


def backfill_payments(client: GoCardlessClient, connect: Connect, start: datetime, end: datetime) -> int:
    """Re-read every payment created in [start, end) and upsert it (the date-range backfill)."""
    mandates = MandateCache(client)
    at = now_utc()
    params = {"created_at[gte]": _iso(start), "created_at[lt]": _iso(end)}
    rows = [
        payment_row(p, mandates.customer_of((p.get("links") or {}).get("mandate")), at)
        for p in client.list_payments(params)
    ]
    with connect() as conn:
        ensure_tables(conn)
        return upsert(conn, "gocardless_payments", rows)


def payment_days_touched(connect: Connect, since: datetime) -> list[str]:
    """The UTC creation days (YYYY-MM-DD) of the payments written at or after `since` (our clock, as
    `fetched_at`): the daily partitions of gocardless/payments that an inbox pass changed."""
    with connect() as conn:
        ensure_tables(conn)
        rows = conn.execute(
            "SELECT DISTINCT strftime(created_at, '%Y-%m-%d') AS day FROM gocardless_payments "
            "WHERE fetched_at >= ? AND created_at IS NOT NULL ORDER BY day",
            [since.astimezone(UTC).replace(tzinfo=None) if since.tzinfo else since],
        ).fetchall()
    return [r[0] for r in rows]


def payments_per_day(connect: Connect, days: Iterable[str]) -> dict[str, int]:
    """How many stored payments were created on each UTC day (a day with none counts 0): a partition's rows."""
    wanted = sorted(set(days))
    if not wanted:
        return {}
    with connect() as conn:
        ensure_tables(conn)
        found = dict(
            conn.execute(
                "SELECT strftime(created_at, '%Y-%m-%d') AS day, count(*) FROM gocardless_payments "
                "WHERE strftime(created_at, '%Y-%m-%d') IN (SELECT unnest(?)) GROUP BY day",
                [wanted],
            ).fetchall()
        )
    return {day: int(found.get(day, 0)) for day in wanted}


# -- the events sweep ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepResult:
    since: str
    listed: int
    whitelisted: int
    stored: int
    duplicates: int
    refused: tuple[str, ...] = ()  # whitelisted API events not stored, each with what is wrong


def sweep_events(
    store: Store,
    client: GoCardlessClient,
    whitelist: Iterable[str],
    overlap: timedelta = timedelta(hours=24),
    first_lookback: timedelta = timedelta(days=7),
    now: datetime | None = None,
) -> SweepResult:
    """List events since the newest one in the inbox (less `overlap`) and store unseen whitelisted ones.

    The safety net for missed webhooks: the overlap catches events older than the newest stored one
    that were missed while later ones arrived; duplicates are refused by the inbox's event-id key.
    """
    latest = store.inbox.latest_event_created_at()
    now = now or datetime.now(UTC)
    since = (datetime.fromisoformat(latest.replace("Z", "+00:00")) - overlap) if latest else now - first_lookback
    allowed = frozenset(whitelist)
    listed, keep, refused = 0, [], []
    for event in client.list_events({"created_at[gte]": _iso(since)}):
        listed += 1
        if event_kind(event) in allowed:
            try:  # the same checks as the receiver's door: the API is no excuse for what the inbox cannot hold
                check_kept_event(listed - 1, event)
            except PayloadError as exc:
                refused.append(f"{str(event.get('id'))[:64]!r}: {exc}")
                continue
            keep.append(event)
    stored = duplicates = 0
    for start in range(0, len(keep), 500):
        result = store.inbox.add(keep[start : start + 500], webhook_id=None, source="events_api")
        stored, duplicates = stored + result.stored, duplicates + result.duplicates
    return SweepResult(_iso(since), listed, len(keep) + len(refused), stored, duplicates, tuple(refused))


def _iso(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
