"""The posting ledger: one row per GoCardless payment id with its status and, once posted, its receipt.

Statuses are the spec's: pending, posted, held, not_collected, reversal_required, reversed, plus
`matched` (decided, waiting for the write-back) and `posting` (a write to Sage is in flight or its outcome
is unknown; the agent's idempotency key makes a retry safe).

A `posting` row is claimed: `claimed_by` names the pass working on it and `lease_until` says until when.
Another pass may take it over only once the lease has expired (the pass died) or was released (the
write's outcome is unknown and nobody is working on it); it then asks Sage before writing anything.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from .engine import read, write
from .schema import ledger
from .utc import as_utc, utcnow

STATUSES = ("pending", "matched", "posting", "posted", "held", "not_collected", "reversal_required", "reversed")
#: Decided, not written to Sage yet (or its write's outcome is unknown): its allocations count everywhere.
UNWRITTEN = ("matched", "posting")
#: A receipt for it is in Sage: its allocations count where Sage's copy is older than its posting.
WRITTEN = ("posted", "reversal_required")
_JSON_FIELDS = ("allocations", "receipt", "request")
RELEASED = {"claimed_by": None, "lease_until": None}


@dataclass(frozen=True)
class LedgerEntry:
    payment_id: str
    status: str
    reason: str | None
    gocardless_customer: str | None
    sage_customer: str | None
    amount_minor: int | None
    currency: str | None
    home_amount: str | None
    allocations: list[dict[str, Any]]
    rule: str | None
    explanation: str | None
    receipt: dict[str, Any] | None
    gocardless_status: str | None
    first_seen: datetime
    updated_at: datetime
    claimed_by: str | None = None
    lease_until: datetime | None = None
    request: dict[str, Any] | None = None
    posted_at: datetime | None = None


class AppliedRow(NamedTuple):
    """A payment whose money is on Sage invoices, or is about to be: JSON kept as stored (for SQL to read)."""

    payment_id: str
    status: str
    sage_customer: str
    allocations: str | None  # JSON list of {invoice_no, invoice_type, amount}
    request: str | None  # JSON object; its `lines` are what a `posting` payment asked Sage for
    posted_at: datetime | None  # UTC


class Ledger:
    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def get(self, payment_id: str) -> LedgerEntry | None:
        with read(self.engine) as conn:
            row = conn.execute(sa.select(ledger).where(ledger.c.payment_id == payment_id)).first()
        return _entry(row) if row else None

    def entry(self, payment_id: str) -> LedgerEntry:
        """The row of a payment the caller knows is in the ledger (it listed, claimed or wrote it; rows are never
        deleted); LookupError if it is not."""
        found = self.get(payment_id)
        if found is None:
            raise LookupError(f"payment {payment_id} is not in the ledger")
        return found

    def upsert(self, payment_id: str, **values: Any) -> None:
        """Insert or update one payment's row; JSON fields are given as Python objects."""
        now = utcnow()
        values = _encode(values)
        with write(self.engine) as conn:
            insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(ledger)
            statement = insert.values(payment_id=payment_id, first_seen=now, updated_at=now, **values)
            statement = statement.on_conflict_do_update(
                index_elements=["payment_id"], set_={**values, "updated_at": now}
            )
            conn.execute(statement)

    def apply_many(self, rows: Sequence[dict[str, Any]]) -> set[str]:
        """Write many payments' rows in one transaction, each only if its status is still `expected_status`.

        Every row has `payment_id`, `expected_status` (None for a payment not in the ledger yet) and the
        columns to set; rows may set different columns. Returns the ids written: a row whose payment moved
        on meanwhile (e.g. a concurrent posting) is skipped, so the caller can look at it again later.
        """
        written: set[str] = set()
        if not rows:
            return written
        now = utcnow()
        with write(self.engine) as conn:
            for columns, group in _by_columns(rows).items():
                insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(ledger)
                statement = insert.on_conflict_do_update(
                    index_elements=["payment_id"],
                    set_={**{c: insert.excluded[c] for c in columns}, "updated_at": now},
                    where=ledger.c.status == sa.bindparam("expected_status"),
                ).returning(ledger.c.payment_id)
                params = [{**_encode(r), "first_seen": now, "updated_at": now} for r in group]
                for params_row in params:
                    if conn.execute(statement, params_row).first() is not None:
                        written.add(params_row["payment_id"])
        return written

    def statuses(self, payment_ids: Sequence[str]) -> dict[str, str]:
        """Current status of each known payment among `payment_ids`."""
        out: dict[str, str] = {}
        ids = list(payment_ids)
        with read(self.engine) as conn:
            for start in range(0, len(ids), 5000):
                chunk = ids[start : start + 5000]
                rows = conn.execute(
                    sa.select(ledger.c.payment_id, ledger.c.status).where(ledger.c.payment_id.in_(chunk))
                )
                for payment_id, status in rows:
                    out[payment_id] = status
        return out

    def states(self, payment_ids: Sequence[str]) -> dict[str, tuple[str, str | None]]:
        """Current (status, reason) of each known payment among `payment_ids`."""
        out: dict[str, tuple[str, str | None]] = {}
        ids = list(payment_ids)
        with read(self.engine) as conn:
            for start in range(0, len(ids), 5000):
                chunk = ids[start : start + 5000]
                query = sa.select(ledger.c.payment_id, ledger.c.status, ledger.c.reason)
                for payment_id, status, reason in conn.execute(query.where(ledger.c.payment_id.in_(chunk))):
                    out[payment_id] = (status, reason)
        return out

    def many(self, payment_ids: Sequence[str]) -> list[LedgerEntry]:
        """The rows of the known payments among `payment_ids` (read in chunks)."""
        out: list[LedgerEntry] = []
        ids = list(dict.fromkeys(payment_ids))
        with read(self.engine) as conn:
            for start in range(0, len(ids), 5000):
                chunk = ids[start : start + 5000]
                out += [_entry(r) for r in conn.execute(sa.select(ledger).where(ledger.c.payment_id.in_(chunk)))]
        return out

    def transition(self, payment_id: str, allowed_from: Sequence[str], owner: str | None = None, **values: Any) -> bool:
        """Compare-and-set: update only if the current status is one of `allowed_from` (and, given an
        `owner`, only while that owner holds the claim)."""
        statement = (
            ledger.update().where(ledger.c.payment_id == payment_id).where(ledger.c.status.in_(list(allowed_from)))
        )
        if owner is not None:
            statement = statement.where(ledger.c.claimed_by == owner)
        with write(self.engine) as conn:
            done = conn.execute(statement.values(updated_at=utcnow(), **_encode(values))).rowcount
        return bool(done)

    def claim(
        self, payment_id: str, expected_status: str, owner: str, lease_until: datetime, now: datetime | None = None
    ) -> bool:
        """Take a payment for posting, atomically in one UPDATE; False if it is not free to take.

        Free means: still in `expected_status` (the status the caller looked at), and if that is `posting`,
        its lease has expired or was released. So two passes never work on one payment, and a payment a
        live pass is posting is never taken over; one whose pass died is, once its lease runs out.
        """
        now = now or utcnow()
        free = ledger.c.status == expected_status
        if expected_status == "posting":
            free = sa.and_(free, sa.or_(ledger.c.lease_until.is_(None), ledger.c.lease_until < now))
        statement = (
            ledger.update()
            .where(ledger.c.payment_id == payment_id)
            .where(free)
            .values(status="posting", claimed_by=owner, lease_until=lease_until, updated_at=now)
        )
        with write(self.engine) as conn:
            return bool(conn.execute(statement).rowcount)

    def renew(self, payment_ids: Sequence[str], owner: str, lease_until: datetime) -> set[str]:
        """Extend `owner`'s lease on the payments it still holds; returns those (a lost claim is missing)."""
        ids = list(payment_ids)
        if not ids:
            return set()
        with write(self.engine) as conn:
            conn.execute(
                ledger.update()
                .where(ledger.c.payment_id.in_(ids))
                .where(ledger.c.status == "posting")
                .where(ledger.c.claimed_by == owner)
                .values(lease_until=lease_until)
            )
            held = conn.execute(
                sa.select(ledger.c.payment_id)
                .where(ledger.c.payment_id.in_(ids))
                .where(ledger.c.status == "posting")
                .where(ledger.c.claimed_by == owner)
            )
            return set(held.scalars())

    def finish(self, payment_id: str, owner: str, **values: Any) -> bool:
        """Leave `posting` (or stay, with `status="posting"`, unclaimed) if `owner` still holds the claim."""
        return self.transition(payment_id, ["posting"], owner=owner, **{**RELEASED, **values})

    def applied(self, sage_customers: Sequence[str], written_since: datetime | None) -> list[AppliedRow]:
        """The customers' payments whose allocations Sage's copy may not show: every one not written yet
        (UNWRITTEN), and those written (WRITTEN) since `written_since` (None: none of those)."""
        customers = list(dict.fromkeys(sage_customers))
        recent: sa.ColumnElement[bool] = ledger.c.status.in_(UNWRITTEN)
        if written_since is not None:
            recent = sa.or_(recent, sa.and_(ledger.c.status.in_(WRITTEN), ledger.c.posted_at > written_since))
        columns = (ledger.c.payment_id, ledger.c.status, ledger.c.sage_customer, ledger.c.allocations)
        query = sa.select(*columns, ledger.c.request, ledger.c.posted_at).where(recent)
        out: list[AppliedRow] = []
        with read(self.engine) as conn:
            for start in range(0, len(customers), 5000):
                chunk = customers[start : start + 5000]
                for row in conn.execute(query.where(ledger.c.sage_customer.in_(chunk))):
                    out.append(AppliedRow(*row[:5], as_utc(row.posted_at)))
        return out

    def list(self, status: str | None = None) -> list[LedgerEntry]:
        query = sa.select(ledger).order_by(ledger.c.first_seen, ledger.c.payment_id)
        if status:
            query = query.where(ledger.c.status == status)
        with read(self.engine) as conn:
            return [_entry(r) for r in conn.execute(query)]

    def counts(self) -> dict[str, int]:
        with read(self.engine) as conn:
            rows = conn.execute(sa.select(ledger.c.status, sa.func.count()).group_by(ledger.c.status))
            return {status: int(count) for status, count in rows}


def _encode(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (json.dumps(v, default=str) if k in _JSON_FIELDS and v is not None else v) for k, v in row.items()}


def _by_columns(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, ...], list[dict[str, Any]]]:
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        columns = tuple(sorted(k for k in row if k not in ("payment_id", "expected_status")))
        groups.setdefault(columns, []).append(row)
    return groups


def _entry(r: sa.Row[Any]) -> LedgerEntry:
    return LedgerEntry(
        payment_id=r.payment_id,
        status=r.status,
        reason=r.reason,
        gocardless_customer=r.gocardless_customer,
        sage_customer=r.sage_customer,
        amount_minor=r.amount_minor,
        currency=r.currency,
        home_amount=r.home_amount,
        allocations=json.loads(r.allocations) if r.allocations else [],
        rule=r.rule,
        explanation=r.explanation,
        receipt=json.loads(r.receipt) if r.receipt else None,
        gocardless_status=r.gocardless_status,
        first_seen=as_utc(r.first_seen),
        updated_at=as_utc(r.updated_at),
        claimed_by=r.claimed_by,
        lease_until=as_utc(r.lease_until),
        request=json.loads(r.request) if r.request else None,
        posted_at=as_utc(r.posted_at),
    )
