"""The webhook inbox: each whitelisted GoCardless event once, keyed by its event id.

Lifecycle of a row: received -> processing (claimed by a run) -> processed; a failure goes to `retry`
with an attempt count and a next-attempt time (exponential backoff), and after the last attempt to
`failed` (the caller queues it for review). Nothing is ever deleted.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .engine import read, write
from .schema import inbox
from .utc import as_utc, utcnow

STATUSES = ("received", "processing", "retry", "processed", "failed")
PENDING = ("received", "retry")
MAX_ATTEMPTS = 6
BASE_DELAY_SECONDS = 30.0
MAX_DELAY_SECONDS = 3600.0


@dataclass(frozen=True)
class InboxRow:
    seq: int
    event_id: str
    resource_type: str
    action: str
    resource_id: str | None
    event_created_at: str | None
    status: str
    attempts: int
    received_at: datetime
    next_attempt_at: datetime | None
    last_error: str | None
    source: str
    payload: str

    @property
    def event(self) -> dict[str, Any]:
        event: dict[str, Any] = json.loads(self.payload)  # stored by `add`: always a JSON object
        return event

    @property
    def kind(self) -> str:
        return f"{self.resource_type}.{self.action}"


@dataclass(frozen=True)
class AddResult:
    stored: int
    duplicates: int
    stored_ids: tuple[str, ...]


def resource_id_of(event: dict[str, Any]) -> str | None:
    """The id of the resource an event is about: links.<singular of resource_type>."""
    links = event.get("links") or {}
    singular = str(event.get("resource_type", "")).rstrip("s")
    return links.get(singular) or next(iter(links.values()), None) if links else None


def backoff_delay(attempts: int, base: float = BASE_DELAY_SECONDS, cap: float = MAX_DELAY_SECONDS) -> float:
    """Exponential backoff with full jitter: base * 2^(attempts-1), capped, times U(0.5, 1.0]."""
    delay = min(cap, base * 2.0 ** max(0, attempts - 1))
    return delay * (0.5 + random.random() / 2)


class Inbox:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def add(
        self, events: Sequence[dict[str, Any]], webhook_id: str | None = None, source: str = "webhook"
    ) -> AddResult:
        """Store events in one transaction; an event id already stored is counted as a duplicate."""
        if not events:
            return AddResult(0, 0, ())
        return self.add_many([(events, webhook_id, source)])[0]

    def add_many(self, deliveries: Sequence[tuple[Sequence[dict[str, Any]], str | None, str]]) -> list[AddResult]:
        """Store several deliveries (events, webhook_id, source) in ONE transaction: group commit.

        One commit (one fsync) for many concurrent webhooks; each delivery still lands whole or not at
        all. An id repeated across deliveries counts as stored for the first and duplicate for the rest.
        """
        now = utcnow()
        batches = [_rows(events, webhook_id, source, now) for events, webhook_id, source in deliveries]
        results: list[AddResult] = []
        with write(self.engine) as conn:
            insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(inbox)
            statement = insert.on_conflict_do_nothing(index_elements=["event_id"]).returning(inbox.c.event_id)
            for rows in batches:  # one multi-row INSERT per delivery; RETURNING names the rows inserted
                stored = conn.execute(statement, rows).scalars().all() if rows else []
                results.append(AddResult(len(stored), len(rows) - len(stored), tuple(stored)))
        return results

    def known(self, event_ids: Iterable[str]) -> set[str]:
        ids = list(event_ids)
        if not ids:
            return set()
        with read(self.engine) as conn:
            return set(conn.execute(sa.select(inbox.c.event_id).where(inbox.c.event_id.in_(ids))).scalars())

    def due(
        self, now: datetime | None = None, limit: int = 1000, resource_types: Sequence[str] | None = None
    ) -> list[InboxRow]:
        """Rows waiting for processing whose next attempt time has come, oldest first.

        `resource_types` narrows to the events one consumer handles (e.g. ["payments"]), so other
        types cannot fill its `limit`.
        """
        now = now or utcnow()
        query = (
            sa.select(inbox)
            .where(inbox.c.status.in_(PENDING))
            .where(sa.or_(inbox.c.next_attempt_at.is_(None), inbox.c.next_attempt_at <= now))
            .order_by(inbox.c.seq)
            .limit(limit)
        )
        if resource_types is not None:
            query = query.where(inbox.c.resource_type.in_(list(resource_types)))
        with read(self.engine) as conn:
            return [_row(r) for r in conn.execute(query)]

    def claim(self, seqs: Sequence[int], claimed_by: str) -> list[InboxRow]:
        """Atomically take pending rows for one run; rows another run already took are skipped."""
        if not seqs:
            return []
        now = utcnow()
        with write(self.engine) as conn:
            conn.execute(
                inbox.update()
                .where(inbox.c.seq.in_(list(seqs)))
                .where(inbox.c.status.in_(PENDING))
                .values(status="processing", claimed_by=claimed_by, claimed_at=now, attempts=inbox.c.attempts + 1)
            )
            rows = conn.execute(
                sa.select(inbox)
                .where(inbox.c.seq.in_(list(seqs)))
                .where(inbox.c.claimed_by == claimed_by)
                .where(inbox.c.status == "processing")
                .order_by(inbox.c.seq)
            )
            return [_row(r) for r in rows]

    def complete(self, seqs: Sequence[int]) -> None:
        if not seqs:
            return
        with write(self.engine) as conn:
            conn.execute(
                inbox.update()
                .where(inbox.c.seq.in_(list(seqs)))
                .values(status="processed", processed_at=utcnow(), last_error=None, next_attempt_at=None)
            )

    def fail(
        self, seq: int, error: str, max_attempts: int = MAX_ATTEMPTS, base_delay: float = BASE_DELAY_SECONDS
    ) -> str:
        """Record a failed attempt: back to `retry` with a backoff, or `failed` after the last attempt."""
        with write(self.engine) as conn:
            attempts = conn.execute(sa.select(inbox.c.attempts).where(inbox.c.seq == seq)).scalar_one()
            if attempts >= max_attempts:
                status, next_attempt_at = "failed", None
            else:
                status, next_attempt_at = "retry", utcnow() + timedelta(seconds=backoff_delay(attempts, base_delay))
            conn.execute(
                inbox.update()
                .where(inbox.c.seq == seq)
                .values(last_error=error[:2000], status=status, next_attempt_at=next_attempt_at)
            )
            return status

    def requeue(self, event_id: str) -> bool:
        """An operator's retry of a failed event: due again now, with a fresh set of attempts."""
        with write(self.engine) as conn:
            return bool(
                conn.execute(
                    inbox.update()
                    .where(inbox.c.event_id == event_id)
                    .where(inbox.c.status == "failed")
                    .values(status="retry", attempts=0, next_attempt_at=None)
                ).rowcount
            )

    def release_stale(self, older_than: timedelta) -> int:
        """Put rows claimed by a run that died back to `retry` (the run's attempt still counts)."""
        cutoff = utcnow() - older_than
        with write(self.engine) as conn:
            return conn.execute(
                inbox.update()
                .where(inbox.c.status == "processing")
                .where(inbox.c.claimed_at < cutoff)
                .values(status="retry", next_attempt_at=None, last_error="claimed by a run that did not finish")
            ).rowcount

    def of_resource(self, resource_id: str) -> list[InboxRow]:
        """Every stored event about one resource (a payment, say), oldest first by GoCardless's event time."""
        query = (
            sa.select(inbox).where(inbox.c.resource_id == resource_id).order_by(inbox.c.event_created_at, inbox.c.seq)
        )
        with read(self.engine) as conn:
            return [_row(r) for r in conn.execute(query)]

    def max_seq(self) -> int:
        with read(self.engine) as conn:
            return int(conn.execute(sa.select(sa.func.coalesce(sa.func.max(inbox.c.seq), 0))).scalar_one())

    def since(self, seq: int, limit: int = 1000) -> list[InboxRow]:
        with read(self.engine) as conn:
            rows = conn.execute(sa.select(inbox).where(inbox.c.seq > seq).order_by(inbox.c.seq).limit(limit))
            return [_row(r) for r in rows]

    def list(self, status: str | None = None, limit: int | None = 50) -> list[InboxRow]:
        """Newest first; `limit=None` (or 0 from the CLI) lists everything."""
        query = sa.select(inbox).order_by(inbox.c.seq.desc())
        if status:
            query = query.where(inbox.c.status == status)
        if limit:
            query = query.limit(limit)
        with read(self.engine) as conn:
            return [_row(r) for r in conn.execute(query)]

    def counts(self) -> dict[str, int]:
        with read(self.engine) as conn:
            rows = conn.execute(sa.select(inbox.c.status, sa.func.count()).group_by(inbox.c.status))
            return {status: int(count) for status, count in rows}

    def latest_event_created_at(self) -> str | None:
        with read(self.engine) as conn:
            latest: str | None = conn.execute(sa.select(sa.func.max(inbox.c.event_created_at))).scalar_one()
            return latest


def _rows(events: Sequence[dict[str, Any]], webhook_id: str | None, source: str, now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "event_id": str(e["id"]),
            "resource_type": str(e.get("resource_type", "")),
            "action": str(e.get("action", "")),
            "resource_id": resource_id_of(e),
            "event_created_at": e.get("created_at"),
            "payload": json.dumps(e, separators=(",", ":"), sort_keys=True),
            "webhook_id": webhook_id,
            "source": source,
            "received_at": now,
            "status": "received",
            "attempts": 0,
        }
        for e in events
    ]


def _row(r: sa.Row[Any]) -> InboxRow:
    return InboxRow(
        seq=r.seq,
        event_id=r.event_id,
        resource_type=r.resource_type,
        action=r.action,
        resource_id=r.resource_id,
        event_created_at=r.event_created_at,
        status=r.status,
        attempts=r.attempts,
        received_at=as_utc(r.received_at),
        next_attempt_at=as_utc(r.next_attempt_at),
        last_error=r.last_error,
        source=r.source,
        payload=r.payload,
    )
