"""The review queue: payments (or events) a person must look at, one open item per subject and kind."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from .engine import read, write
from .schema import review
from .utc import as_utc, utcnow

KINDS = ("held", "reversal_required", "processing_failed")
CLOSED = ("applied", "retried", "dismissed", "resolved")
#: Closed by a person: automation never decides such an item's payment again.
OPERATOR_CLOSED = ("applied", "dismissed")


@dataclass(frozen=True)
class ReviewItem:
    id: int
    subject: str
    kind: str
    reason: str | None
    details: dict[str, Any]
    status: str
    first_seen: datetime
    last_seen: datetime
    resolved_by: str | None
    resolved_at: datetime | None
    note: str | None


class ReviewQueue:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def open_item(self, subject: str, kind: str, reason: str | None, details: dict[str, Any]) -> int:
        """Queue an item, or refresh the open one for the same subject and kind; returns its id."""
        now = utcnow()
        body = json.dumps(details, default=str, sort_keys=True)
        with write(self.engine) as conn:
            existing = conn.execute(
                sa.select(review.c.id)
                .where(review.c.subject == subject)
                .where(review.c.kind == kind)
                .where(review.c.status == "open")
            ).scalar()
            if existing is not None:
                conn.execute(
                    review.update().where(review.c.id == existing).values(reason=reason, details=body, last_seen=now)
                )
                return int(existing)
            return int(
                conn.execute(
                    review.insert()
                    .values(
                        subject=subject,
                        kind=kind,
                        reason=reason,
                        details=body,
                        status="open",
                        first_seen=now,
                        last_seen=now,
                    )
                    .returning(review.c.id)
                ).scalar_one()
            )

    def close(self, item_id: int, status: str, by: str, note: str | None = None) -> bool:
        """Close an open item (applied/retried/dismissed/resolved); False if it was not open."""
        if status not in CLOSED:
            raise ValueError(f"status must be one of {CLOSED}")
        with write(self.engine) as conn:
            return bool(
                conn.execute(
                    review.update()
                    .where(review.c.id == item_id)
                    .where(review.c.status == "open")
                    .values(status=status, resolved_by=by, resolved_at=utcnow(), note=note)
                ).rowcount
            )

    def get(self, item_id: int) -> ReviewItem | None:
        with read(self.engine) as conn:
            row = conn.execute(sa.select(review).where(review.c.id == item_id)).first()
        return _item(row) if row else None

    def open_for(self, subject: str) -> list[ReviewItem]:
        with read(self.engine) as conn:
            rows = conn.execute(sa.select(review).where(review.c.subject == subject).where(review.c.status == "open"))
            return [_item(r) for r in rows]

    def operator_closed(self, subjects: Sequence[str], kind: str = "held") -> dict[str, ReviewItem]:
        """The subjects among `subjects` whose latest `kind` item a person closed for good (OPERATOR_CLOSED)
        and that have no open one since: their payments are the operators' now."""
        out: dict[str, ReviewItem] = {}
        ids = list(dict.fromkeys(subjects))
        with read(self.engine) as conn:
            for start in range(0, len(ids), 5000):
                chunk = ids[start : start + 5000]
                query = (
                    sa.select(review)
                    .where(review.c.subject.in_(chunk))
                    .where(review.c.kind == kind)
                    .order_by(review.c.id)
                )
                for row in conn.execute(query):
                    out[row.subject] = _item(row)  # the latest item of each subject wins
        return {s: i for s, i in out.items() if i.status in OPERATOR_CLOSED}

    def list(self, status: str | None = "open") -> list[ReviewItem]:
        query = sa.select(review).order_by(review.c.id)
        if status:
            query = query.where(review.c.status == status)
        with read(self.engine) as conn:
            return [_item(r) for r in conn.execute(query)]


def _item(r: sa.Row[Any]) -> ReviewItem:
    return ReviewItem(
        id=r.id,
        subject=r.subject,
        kind=r.kind,
        reason=r.reason,
        details=json.loads(r.details or "{}"),
        status=r.status,
        first_seen=as_utc(r.first_seen),
        last_seen=as_utc(r.last_seen),
        resolved_by=r.resolved_by,
        resolved_at=as_utc(r.resolved_at),
        note=r.note,
    )
