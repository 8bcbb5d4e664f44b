"""Inbox events and API reads turned into warehouse rows: the work behind the gocardless/* assets.

No Dagster here (defs/gocardless.py is thin wiring). Each inbox consumer follows the same pattern:
take the due rows of its resource type, claim them atomically (an overlapping run finds nothing left),
re-read each named resource once from the API (events are hints: GoCardless says to act on the current
state, never on the event), upsert the rows idempotently into DuckDB, then mark the events processed.
A failure puts the event back with exponential backoff; after the last attempt it goes to the review
queue as `processing_failed`. Nothing is dropped.

Warehouse tables (DuckDB; money in integer minor units, times in UTC):
  gocardless_payments      one row per payment, upserted on id
  gocardless_customers     one row per customer, upserted on id
  gocardless_refunds       one row per refund, upserted on id
  gocardless_payouts       one row per payout, upserted on id
  gocardless_payout_items  the items of each payout, replaced per payout; `amount` is DECIMAL(20,1)
                           minor units, exactly as GoCardless sends it ("45.0")
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable, Sequence

import duckdb

from ..store import Store
from ..store.inbox import InboxRow
from .client import GoCardlessClient

log = logging.getLogger("ml_connector_dagster.gocardless.sync")

DDL = {
    "gocardless_payments": """
        CREATE TABLE IF NOT EXISTS gocardless_payments (
            id VARCHAR PRIMARY KEY, amount BIGINT NOT NULL, amount_refunded BIGINT, currency VARCHAR NOT NULL,
            status VARCHAR NOT NULL, charge_date DATE, reference VARCHAR, description VARCHAR, metadata JSON,
            fx_currency VARCHAR, fx_amount BIGINT, exchange_rate VARCHAR, mandate VARCHAR, customer VARCHAR,
            payout VARCHAR, created_at TIMESTAMP, fetched_at TIMESTAMP NOT NULL, last_event_id VARCHAR,
            last_event_action VARCHAR, last_event_created_at TIMESTAMP)""",
    "gocardless_customers": """
        CREATE TABLE IF NOT EXISTS gocardless_customers (
            id VARCHAR PRIMARY KEY, email VARCHAR, given_name VARCHAR, family_name VARCHAR, company_name VARCHAR,
            metadata JSON, created_at TIMESTAMP, fetched_at TIMESTAMP NOT NULL)""",
    "gocardless_refunds": """
        CREATE TABLE IF NOT EXISTS gocardless_refunds (
            id VARCHAR PRIMARY KEY, payment VARCHAR, mandate VARCHAR, amount BIGINT NOT NULL, currency VARCHAR NOT NULL,
            status VARCHAR NOT NULL, reference VARCHAR, metadata JSON, created_at TIMESTAMP,
            fetched_at TIMESTAMP NOT NULL, last_event_id VARCHAR, last_event_action VARCHAR,
            last_event_created_at TIMESTAMP)""",
    "gocardless_payouts": """
        CREATE TABLE IF NOT EXISTS gocardless_payouts (
            id VARCHAR PRIMARY KEY, amount BIGINT NOT NULL, currency VARCHAR NOT NULL, deducted_fees BIGINT,
            arrival_date DATE, reference VARCHAR, status VARCHAR NOT NULL, fx_currency VARCHAR, fx_amount BIGINT,
            exchange_rate VARCHAR, created_at TIMESTAMP, fetched_at TIMESTAMP NOT NULL)""",
    "gocardless_payout_items": """
        CREATE TABLE IF NOT EXISTS gocardless_payout_items (
            payout VARCHAR NOT NULL, item_index INTEGER NOT NULL, type VARCHAR NOT NULL,
            amount DECIMAL(20, 1) NOT NULL, payment VARCHAR, refund VARCHAR, mandate VARCHAR, taxes JSON,
            fetched_at TIMESTAMP NOT NULL, PRIMARY KEY (payout, item_index))""",
}
COLUMNS = {
    "gocardless_payments": ("id", "amount", "amount_refunded", "currency", "status", "charge_date", "reference",
                            "description", "metadata", "fx_currency", "fx_amount", "exchange_rate", "mandate",
                            "customer", "payout", "created_at", "fetched_at", "last_event_id", "last_event_action",
                            "last_event_created_at"),
    "gocardless_customers": ("id", "email", "given_name", "family_name", "company_name", "metadata", "created_at",
                             "fetched_at"),
    "gocardless_refunds": ("id", "payment", "mandate", "amount", "currency", "status", "reference", "metadata",
                           "created_at", "fetched_at", "last_event_id", "last_event_action", "last_event_created_at"),
    "gocardless_payouts": ("id", "amount", "currency", "deducted_fees", "arrival_date", "reference", "status",
                           "fx_currency", "fx_amount", "exchange_rate", "created_at", "fetched_at"),
}
EVENT_COLUMNS = ("last_event_id", "last_event_action", "last_event_created_at")
INBOX_BATCH = 1000


def ensure_tables(conn: duckdb.DuckDBPyConnection) -> None:
    for statement in DDL.values():
        conn.execute(statement)


# -- rows ------------------------------------------------------------------------------------------------

def utc(text: str | None) -> datetime | None:
    """A GoCardless timestamp as a naive UTC datetime (DuckDB TIMESTAMP)."""
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment.astimezone(timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment


def now_utc() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


def _json(value: Any) -> str:
    return json.dumps(value or {}, sort_keys=True, separators=(",", ":"))


def _minor(value: Any) -> int | None:
    """Integer minor units; refuses anything that is not a whole number (money is never a float here)."""
    if value is None:
        return None
    if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
        raise ValueError(f"amount {value!r} is not a whole number of minor units")
    return int(value)


def payment_row(payment: dict[str, Any], customer_id: str | None, fetched_at: datetime,
                event: InboxRow | None = None) -> dict[str, Any]:
    fx = payment.get("fx") or {}
    links = payment.get("links") or {}
    return {
        "id": payment["id"], "amount": _minor(payment["amount"]), "amount_refunded": _minor(payment.get("amount_refunded")),
        "currency": payment["currency"], "status": payment["status"], "charge_date": payment.get("charge_date"),
        "reference": payment.get("reference"), "description": payment.get("description"),
        "metadata": _json(payment.get("metadata")), "fx_currency": fx.get("fx_currency"),
        "fx_amount": _minor(fx.get("fx_amount")), "exchange_rate": fx.get("exchange_rate"),
        "mandate": links.get("mandate"), "customer": customer_id, "payout": links.get("payout"),
        "created_at": utc(payment.get("created_at")), "fetched_at": fetched_at, **_event_columns(event),
    }


def customer_row(customer: dict[str, Any], fetched_at: datetime) -> dict[str, Any]:
    return {"id": customer["id"], "email": customer.get("email"), "given_name": customer.get("given_name"),
            "family_name": customer.get("family_name"), "company_name": customer.get("company_name"),
            "metadata": _json(customer.get("metadata")), "created_at": utc(customer.get("created_at")),
            "fetched_at": fetched_at}


def refund_row(refund: dict[str, Any], fetched_at: datetime, event: InboxRow | None = None) -> dict[str, Any]:
    links = refund.get("links") or {}
    return {"id": refund["id"], "payment": links.get("payment"), "mandate": links.get("mandate"),
            "amount": _minor(refund["amount"]), "currency": refund["currency"], "status": refund["status"],
            "reference": refund.get("reference"), "metadata": _json(refund.get("metadata")),
            "created_at": utc(refund.get("created_at")), "fetched_at": fetched_at, **_event_columns(event)}


def payout_row(payout: dict[str, Any], fetched_at: datetime) -> dict[str, Any]:
    fx = payout.get("fx") or {}
    return {"id": payout["id"], "amount": _minor(payout["amount"]), "currency": payout["currency"],
            "deducted_fees": _minor(payout.get("deducted_fees")), "arrival_date": payout.get("arrival_date"),
            "reference": payout.get("reference"), "status": payout["status"], "fx_currency": fx.get("fx_currency"),
            "fx_amount": _minor(fx.get("fx_amount")), "exchange_rate": fx.get("exchange_rate"),
            "created_at": utc(payout.get("created_at")), "fetched_at": fetched_at}


def payout_item_rows(payout_id: str, items: Iterable[dict[str, Any]], fetched_at: datetime) -> list[tuple]:
    rows = []
    for index, item in enumerate(items):
        links = item.get("links") or {}
        rows.append((payout_id, index, item["type"], Decimal(str(item["amount"])), links.get("payment"),
                     links.get("refund"), links.get("mandate"), json.dumps(item.get("taxes") or []), fetched_at))
    return rows


def _event_columns(event: InboxRow | None) -> dict[str, Any]:
    if event is None:
        return dict.fromkeys(EVENT_COLUMNS)
    return {"last_event_id": event.event_id, "last_event_action": event.action,
            "last_event_created_at": utc(event.event_created_at)}


# -- upserts ---------------------------------------------------------------------------------------------

def upsert(conn: duckdb.DuckDBPyConnection, table: str, rows: Sequence[dict[str, Any]]) -> int:
    """Insert or update rows on `id` in one transaction.

    The last_event_* columns only move forward in event time: events arrive out of order, and a backfill
    (no event) keeps what the events said.
    """
    if not rows:
        return 0
    columns = COLUMNS[table]
    unique = {row["id"]: row for row in rows}  # DuckDB refuses to update one row twice in a statement
    assignments = []
    for column in columns[1:]:
        if column in EVENT_COLUMNS:
            newer = (f"excluded.last_event_created_at IS NOT NULL AND ({table}.last_event_created_at IS NULL "
                     f"OR excluded.last_event_created_at >= {table}.last_event_created_at)")
            assignments.append(f"{column} = CASE WHEN {newer} THEN excluded.{column} ELSE {table}.{column} END")
        else:
            assignments.append(f"{column} = excluded.{column}")
    statement = (f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "
                 f"ON CONFLICT (id) DO UPDATE SET {', '.join(assignments)}")
    conn.execute("BEGIN TRANSACTION")
    try:
        conn.executemany(statement, [[row[c] for c in columns] for row in unique.values()])
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    return len(unique)


def replace_payout_items(conn: duckdb.DuckDBPyConnection, items_by_payout: dict[str, list[tuple]]) -> int:
    """A payout's items are immutable once paid; replacing them per payout keeps re-reads idempotent."""
    if not items_by_payout:
        return 0
    conn.execute("BEGIN TRANSACTION")
    try:
        for payout_id, rows in items_by_payout.items():
            conn.execute("DELETE FROM gocardless_payout_items WHERE payout = ?", [payout_id])
            if rows:
                conn.executemany("INSERT INTO gocardless_payout_items VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
    except Exception:
        conn.execute("ROLLBACK")
        raise
    return sum(len(rows) for rows in items_by_payout.values())


# -- inbox processing ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RetryRule:
    """How failed events are retried: attempts before review, and the base of the exponential backoff."""

    max_attempts: int = 6
    base_delay_seconds: float = 30.0


@dataclass
class InboxOutcome:
    """What one pass over the inbox did; becomes the asset's metadata."""

    claimed: int = 0
    processed: int = 0
    retrying: int = 0
    sent_to_review: int = 0
    resources_fetched: int = 0
    rows_written: int = 0
    errors: list[str] = field(default_factory=list)

    def metadata(self) -> dict[str, Any]:
        return {"events_claimed": self.claimed, "events_processed": self.processed,
                "events_retrying": self.retrying, "events_sent_to_review": self.sent_to_review,
                "resources_fetched": self.resources_fetched, "rows_written": self.rows_written}


Fetched = dict[str, Any]  # resource id -> whatever `fetch` returned for it


def process_inbox(store: Store, resource_type: str, claimed_by: str, fetch: Callable[[str], Any],
                  write: Callable[[dict[str, Any], dict[str, InboxRow]], int], rule: RetryRule = RetryRule(),
                  limit: int = INBOX_BATCH) -> InboxOutcome:
    """Claim due events of one resource type, fetch each named resource once, write, mark processed.

    `fetch(resource_id)` re-reads one resource from the API; `write(fetched, latest_event_by_id)` upserts
    them and returns rows written. A fetch failure affects only that resource's events; a write failure
    puts every claimed event back for retry and is re-raised so the run shows it.
    """
    outcome = InboxOutcome()
    due = store.inbox.due(limit=limit, resource_types=[resource_type])
    rows = store.inbox.claim([r.seq for r in due], claimed_by)
    outcome.claimed = len(rows)
    if not rows:
        return outcome
    by_resource: dict[str, list[InboxRow]] = {}
    for row in rows:
        if not row.resource_id:
            _fail(store, row, f"event {row.event_id} names no {resource_type[:-1]} in links", rule, outcome, final=True)
            continue
        by_resource.setdefault(row.resource_id, []).append(row)
    fetched: dict[str, Any] = {}
    for resource_id, events in by_resource.items():
        try:
            fetched[resource_id] = fetch(resource_id)
        except Exception as exc:  # one resource's failure must not hold up the others
            for row in events:
                _fail(store, row, f"{exc.__class__.__name__}: {exc}", rule, outcome)
    outcome.resources_fetched = len(fetched)
    done = [row for rid in fetched for row in by_resource[rid]]
    try:
        outcome.rows_written = write(fetched, {rid: _latest(by_resource[rid]) for rid in fetched})
    except Exception as exc:
        for row in done:
            _fail(store, row, f"warehouse write failed: {exc.__class__.__name__}: {exc}", rule, outcome)
        raise
    store.inbox.complete([row.seq for row in done])
    outcome.processed = len(done)
    _audit_processed(store, claimed_by, resource_type, fetched, by_resource)
    return outcome


def _latest(events: list[InboxRow]) -> InboxRow:
    return max(events, key=lambda r: (r.event_created_at or "", r.seq))


def _fail(store: Store, row: InboxRow, error: str, rule: RetryRule, outcome: InboxOutcome, final: bool = False) -> None:
    """Back to the inbox with a backoff, or (after the last attempt) to the review queue."""
    outcome.errors.append(f"{row.event_id}: {error}")
    status = store.inbox.fail(row.seq, error, 1 if final else rule.max_attempts, rule.base_delay_seconds)
    if status == "retry":
        outcome.retrying += 1
        log.warning("event %s (%s) failed, will retry: %s", row.event_id, row.kind, error)
        return
    outcome.sent_to_review += 1
    details = {"event_id": row.event_id, "event": row.kind, "resource_id": row.resource_id,
               "attempts": row.attempts, "error": error[:500]}
    store.review.open_item(row.event_id, kind="processing_failed", reason="gocardless_event_failed", details=details)
    store.audit.append("event.failed", row.event_id, details)
    log.error("event %s (%s) failed after %d attempts; queued for review: %s", row.event_id, row.kind,
              row.attempts, error)


def _audit_processed(store: Store, actor: str, resource_type: str, fetched: dict[str, Any],
                     by_resource: dict[str, list[InboxRow]]) -> None:
    singular = resource_type[:-1]
    entries: list[tuple[str, str | None, dict[str, Any]]] = []
    for resource_id, resource in fetched.items():
        body = resource[0] if isinstance(resource, tuple) else resource
        entries.append((f"{singular}.fetched", resource_id,
                        {"status": body.get("status"), "amount": body.get("amount"), "currency": body.get("currency"),
                         "events": [r.event_id for r in by_resource[resource_id]]}))
        entries += [("event.processed", row.event_id, {"event": row.kind, "resource_id": resource_id})
                    for row in by_resource[resource_id]]
    store.audit.append_many(entries, actor=actor)


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


def process_payment_events(store: Store, client: GoCardlessClient, connect: Callable, claimed_by: str,
                           rule: RetryRule = RetryRule()) -> InboxOutcome:
    """gocardless/payments: the payments named by due `payments.*` events, re-read with their customer."""
    mandates = MandateCache(client)

    def fetch(payment_id: str) -> tuple[dict[str, Any], str | None]:
        payment = client.get_payment(payment_id)
        return payment, mandates.customer_of((payment.get("links") or {}).get("mandate"))

    def write(fetched: dict[str, Any], events: dict[str, InboxRow]) -> int:
        at = now_utc()
        rows = [payment_row(p, customer, at, events.get(pid)) for pid, (p, customer) in fetched.items()]
        with connect() as conn:
            ensure_tables(conn)
            return upsert(conn, "gocardless_payments", rows)

    return process_inbox(store, "payments", claimed_by, fetch, write, rule)


def process_refund_events(store: Store, client: GoCardlessClient, connect: Callable, claimed_by: str,
                          rule: RetryRule = RetryRule()) -> InboxOutcome:
    """gocardless/refunds: the refunds named by due `refunds.*` events, re-read."""
    def write(fetched: dict[str, Any], events: dict[str, InboxRow]) -> int:
        at = now_utc()
        with connect() as conn:
            ensure_tables(conn)
            return upsert(conn, "gocardless_refunds", [refund_row(r, at, events.get(rid)) for rid, r in fetched.items()])

    return process_inbox(store, "refunds", claimed_by, client.get_refund, write, rule)


def process_payout_events(store: Store, client: GoCardlessClient, connect: Callable, claimed_by: str,
                          rule: RetryRule = RetryRule()) -> InboxOutcome:
    """gocardless/payouts: payouts named by due `payouts.*` events, with their items."""
    def fetch(payout_id: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        return client.get_payout(payout_id), list(client.payout_items(payout_id))

    def write(fetched: dict[str, Any], _events: dict[str, InboxRow]) -> int:
        return write_payouts(connect, fetched)

    return process_inbox(store, "payouts", claimed_by, fetch, write, rule)


def write_payouts(connect: Callable, fetched: dict[str, tuple[dict[str, Any], list[dict[str, Any]]]]) -> int:
    at = now_utc()
    with connect() as conn:
        ensure_tables(conn)
        written = upsert(conn, "gocardless_payouts", [payout_row(p, at) for p, _ in fetched.values()])
        replace_payout_items(conn, {pid: payout_item_rows(pid, items, at) for pid, (_, items) in fetched.items()})
    return written


def fetch_unknown_payouts(client: GoCardlessClient, connect: Callable) -> int:
    """Payouts that payments link to but the payouts table lacks (e.g. a payouts.paid event never came)."""
    with connect() as conn:
        ensure_tables(conn)
        missing = [r[0] for r in conn.execute(
            "SELECT DISTINCT p.payout FROM gocardless_payments p LEFT JOIN gocardless_payouts o ON o.id = p.payout "
            "WHERE p.payout IS NOT NULL AND o.id IS NULL").fetchall()]
    fetched = {pid: (client.get_payout(pid), list(client.payout_items(pid))) for pid in missing}
    return write_payouts(connect, fetched) if fetched else 0


def sync_all_customers(client: GoCardlessClient, connect: Callable) -> int:
    """gocardless/customers: every customer, upserted (GoCardless announces no customer changes)."""
    at = now_utc()
    rows = [customer_row(c, at) for c in client.list_customers()]
    with connect() as conn:
        ensure_tables(conn)
        return upsert(conn, "gocardless_customers", rows)


def backfill_payments(client: GoCardlessClient, connect: Callable, start: datetime, end: datetime) -> int:
    """Re-read every payment created in [start, end) and upsert it (the date-range backfill)."""
    mandates = MandateCache(client)
    at = now_utc()
    params = {"created_at[gte]": _iso(start), "created_at[lt]": _iso(end)}
    rows = [payment_row(p, mandates.customer_of((p.get("links") or {}).get("mandate")), at)
            for p in client.list_payments(params)]
    with connect() as conn:
        ensure_tables(conn)
        return upsert(conn, "gocardless_payments", rows)


# -- the events sweep ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class SweepResult:
    since: str
    listed: int
    whitelisted: int
    stored: int
    duplicates: int


def sweep_events(store: Store, client: GoCardlessClient, whitelist: Iterable[str],
                 overlap: timedelta = timedelta(hours=24), first_lookback: timedelta = timedelta(days=7),
                 now: datetime | None = None) -> SweepResult:
    """List events since the newest one in the inbox (less `overlap`) and store unseen whitelisted ones.

    The safety net for missed webhooks: the overlap catches events older than the newest stored one
    that were missed while later ones arrived; duplicates are refused by the inbox's event-id key.
    """
    latest = store.inbox.latest_event_created_at()
    now = now or datetime.now(timezone.utc)
    since = (datetime.fromisoformat(latest.replace("Z", "+00:00")) - overlap) if latest else now - first_lookback
    allowed = frozenset(whitelist)
    listed, keep = 0, []
    for event in client.list_events({"created_at[gte]": _iso(since)}):
        listed += 1
        if f"{event.get('resource_type')}.{event.get('action')}" in allowed:
            keep.append(event)
    stored = duplicates = 0
    for start in range(0, len(keep), 500):
        result = store.inbox.add(keep[start:start + 500], webhook_id=None, source="events_api")
        stored, duplicates = stored + result.stored, duplicates + result.duplicates
    return SweepResult(_iso(since), listed, len(keep), stored, duplicates)


def _iso(moment: datetime) -> str:
    moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
