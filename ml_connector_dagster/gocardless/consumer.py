"""One pass over the inbox for one resource type: the pattern every gocardless/* inbox asset follows.

Take the due rows of the resource type, claim them atomically (an overlapping run finds nothing left),
re-read each named resource once (events are hints: GoCardless says to act on the current state, never
on the event), write, then mark the events processed. A failure puts the event back with exponential
backoff; after the last attempt it goes to the review queue as `processing_failed`. Nothing is dropped.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..store import Store
from ..store.inbox import InboxRow

log = logging.getLogger("ml_connector_dagster.gocardless.sync")  # the logger's name operators know
INBOX_BATCH = 1000


@dataclass(frozen=True)
class RetryRule:
    """How failed events are retried: attempts before review, and the base of the exponential backoff."""

    max_attempts: int = 6
    base_delay_seconds: float = 30.0


DEFAULT_RETRY = RetryRule()


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
        return {
            "events_claimed": self.claimed,
            "events_processed": self.processed,
            "events_retrying": self.retrying,
            "events_sent_to_review": self.sent_to_review,
            "resources_fetched": self.resources_fetched,
            "rows_written": self.rows_written,
        }


def process_inbox(
    store: Store,
    resource_type: str,
    claimed_by: str,
    fetch: Callable[[str], Any],
    write: Callable[[dict[str, Any], dict[str, list[InboxRow]]], int],
    rule: RetryRule = DEFAULT_RETRY,
    limit: int = INBOX_BATCH,
) -> InboxOutcome:
    """Claim due events of one resource type, fetch each named resource once, write, mark processed.

    `fetch(resource_id)` re-reads one resource from the API; `write(fetched, events_by_id)` upserts them
    and returns rows written (each resource's claimed events come oldest first: `latest` picks the last).
    A fetch failure affects only that resource's events; a write failure puts every claimed event back for
    retry and is re-raised so the run shows it.
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
        except Exception as exc:  # noqa: BLE001 - one resource's failure must not hold up the others
            for row in events:
                _fail(store, row, f"{exc.__class__.__name__}: {exc}", rule, outcome)
    outcome.resources_fetched = len(fetched)
    done = [row for rid in fetched for row in by_resource[rid]]
    try:
        outcome.rows_written = write(fetched, {rid: in_event_order(by_resource[rid]) for rid in fetched})
    except Exception as exc:
        for row in done:
            _fail(store, row, f"warehouse write failed: {exc.__class__.__name__}: {exc}", rule, outcome)
        raise
    store.inbox.complete([row.seq for row in done])
    outcome.processed = len(done)
    _audit_processed(store, claimed_by, resource_type, fetched, by_resource)
    return outcome


def in_event_order(events: list[InboxRow]) -> list[InboxRow]:
    return sorted(events, key=lambda r: (r.event_created_at or "", r.seq))


def latest(events: list[InboxRow] | None) -> InboxRow | None:
    """The newest of a resource's claimed events (None for a resource read without one)."""
    return events[-1] if events else None


def _fail(store: Store, row: InboxRow, error: str, rule: RetryRule, outcome: InboxOutcome, final: bool = False) -> None:
    """Back to the inbox with a backoff, or (after the last attempt) to the review queue."""
    outcome.errors.append(f"{row.event_id}: {error}")
    status = store.inbox.fail(row.seq, error, 1 if final else rule.max_attempts, rule.base_delay_seconds)
    if status == "retry":
        outcome.retrying += 1
        log.warning("event %s (%s) failed, will retry: %s", row.event_id, row.kind, error)
        return
    outcome.sent_to_review += 1
    details = {
        "event_id": row.event_id,
        "event": row.kind,
        "resource_id": row.resource_id,
        "attempts": row.attempts,
        "error": error[:500],
    }
    store.review.open_item(row.event_id, kind="processing_failed", reason="gocardless_event_failed", details=details)
    store.audit.append("event.failed", row.event_id, details)
    log.error(
        "event %s (%s) failed after %d attempts; queued for review: %s", row.event_id, row.kind, row.attempts, error
    )


def _audit_processed(
    store: Store, actor: str, resource_type: str, fetched: dict[str, Any], by_resource: dict[str, list[InboxRow]]
) -> None:
    singular = resource_type[:-1]
    entries: list[tuple[str, str | None, dict[str, Any]]] = []
    for resource_id, resource in fetched.items():
        body = resource[0] if isinstance(resource, tuple) else resource
        entries.append(
            (
                f"{singular}.fetched",
                resource_id,
                {
                    "status": body.get("status"),
                    "amount": body.get("amount"),
                    "currency": body.get("currency"),
                    "events": [r.event_id for r in by_resource[resource_id]],
                },
            )
        )
        entries += [
            ("event.processed", row.event_id, {"event": row.kind, "resource_id": resource_id})
            for row in by_resource[resource_id]
        ]
    store.audit.append_many(entries, actor=actor)
