"""The audit log: append-only, each record chained to the previous one by SHA-256.

The database refuses UPDATE and DELETE (triggers); `verify()` recomputes the chain, so an edit made by
going around the triggers is still detected.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from .engine import read, write
from .schema import audit_head, audit_log
from .utc import utcnow

GENESIS = "0" * 64


@dataclass(frozen=True)
class AuditRecord:
    seq: int
    recorded_at: str
    actor: str
    action: str
    subject: str | None
    details: dict[str, Any]
    prev_hash: str
    hash: str


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    records: int
    first_bad_seq: int | None = None
    problem: str | None = None


def record_hash(prev_hash: str, recorded_at: str, actor: str, action: str, subject: str | None, details: str) -> str:
    canonical = json.dumps([prev_hash, recorded_at, actor, action, subject, details], separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


class AuditLog:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def append(
        self, action: str, subject: str | None, details: dict[str, Any] | None = None, actor: str = "system"
    ) -> int:
        body = json.dumps(details or {}, default=str, sort_keys=True, separators=(",", ":"))
        recorded_at = utcnow().isoformat(timespec="microseconds")
        with write(self.engine) as conn:
            # Lock the head row first: one appender at a time extends the chain (PostgreSQL row lock;
            # SQLite's IMMEDIATE transaction already holds the write lock).
            conn.execute(audit_head.update().where(audit_head.c.id == 1).values(appends=audit_head.c.appends + 1))
            prev = conn.execute(sa.select(audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)).scalar()
            prev = prev or GENESIS
            digest = record_hash(prev, recorded_at, actor, action, subject, body)
            return int(
                conn.execute(
                    audit_log.insert()
                    .values(
                        recorded_at=recorded_at,
                        actor=actor,
                        action=action,
                        subject=subject,
                        details=body,
                        prev_hash=prev,
                        hash=digest,
                    )
                    .returning(audit_log.c.seq)
                ).scalar_one()
            )

    def append_many(self, entries: Sequence[tuple[str, str | None, dict[str, Any]]], actor: str = "system") -> int:
        """Append (action, subject, details) records in one transaction, chained in order; returns how many.

        For batch work (a run processing hundreds of events): one commit instead of one per record.
        """
        if not entries:
            return 0
        with write(self.engine) as conn:
            conn.execute(
                audit_head.update().where(audit_head.c.id == 1).values(appends=audit_head.c.appends + len(entries))
            )
            prev = conn.execute(sa.select(audit_log.c.hash).order_by(audit_log.c.seq.desc()).limit(1)).scalar()
            prev = prev or GENESIS
            for action, subject, details in entries:
                body = json.dumps(details or {}, default=str, sort_keys=True, separators=(",", ":"))
                recorded_at = utcnow().isoformat(timespec="microseconds")
                digest = record_hash(prev, recorded_at, actor, action, subject, body)
                conn.execute(
                    audit_log.insert().values(
                        recorded_at=recorded_at,
                        actor=actor,
                        action=action,
                        subject=subject,
                        details=body,
                        prev_hash=prev,
                        hash=digest,
                    )
                )
                prev = digest
        return len(entries)

    def list(
        self, subject: str | None = None, limit: int | None = None, action: str | None = None
    ) -> list[AuditRecord]:
        query = sa.select(audit_log).order_by(audit_log.c.seq)
        if subject:
            query = query.where(audit_log.c.subject == subject)
        if action:
            query = query.where(audit_log.c.action == action)
        if limit:
            query = query.limit(limit)
        with read(self.engine) as conn:
            return [_record(r) for r in conn.execute(query)]

    def verify(self) -> VerifyResult:
        prev, count = GENESIS, 0
        for row in self._scan():
            count += 1
            if row.prev_hash != prev:
                return VerifyResult(False, count, row.seq, f"record {row.seq} does not follow the record before it")
            if record_hash(prev, row.recorded_at, row.actor, row.action, row.subject, row.details) != row.hash:
                return VerifyResult(False, count, row.seq, f"record {row.seq} was changed after it was written")
            prev = row.hash
        with read(self.engine) as conn:
            appends = conn.execute(sa.select(audit_head.c.appends).where(audit_head.c.id == 1)).scalar_one()
        if appends != count:
            return VerifyResult(
                False, count, None, f"{appends} records were appended but {count} remain: records were deleted"
            )
        return VerifyResult(True, count)

    def _scan(self) -> Iterator[sa.Row[Any]]:
        with read(self.engine) as conn:
            yield from conn.execute(sa.select(audit_log).order_by(audit_log.c.seq)).yield_per(5000)


def _record(r: sa.Row[Any]) -> AuditRecord:
    return AuditRecord(r.seq, r.recorded_at, r.actor, r.action, r.subject, json.loads(r.details), r.prev_hash, r.hash)
