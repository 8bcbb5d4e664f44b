"""Write-back: a matched payment becomes one cash receipt in Sage, exactly once.

For each payment: claim it in the ledger (one compare-and-set UPDATE, with an owner and a lease), ask the
agent whether its receipt already exists, re-read the customer's open invoices through the agent and
decide again on Sage's state *now*, record the request, then CreateCashReceipt with the payment id as
idempotency key. The client never repeats a write blindly (it asks FindCashReceipt first), and the agent
answers a repeated key with the first receipt. A receipt Sage returns is compared with what was asked
before the payment is marked posted, and what GoCardless says now (a chargeback, a refund) is applied
after the receipt is recorded, never instead of recording it.

This module is the pass and its entry points (post_matched, post_payment). One payment's exchange with Sage
is in cash_receipt.py, the claims and every way one ends in claims.py, the comparison of a receipt with
what was asked in receipt_check.py, and what a posting reports and an operator's allocation in posting.py.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta

import duckdb

from ..sage100 import AgentClient
from ..settings import ReconciliationSettings
from ..store import Store
from ..store.ledger import LedgerEntry
from ..warehouse import table_exists
from .cash_receipt import CashReceiptAttempt
from .claims import POSTING_LEASE, Claims, new_owner
from .evaluate import PAYMENT_COLUMNS
from .posting import Allocation, PaymentRow, PostingOutcome, PostingPass

POSTABLE = ("posting", "matched")  # unknown outcomes first: they have waited longest
APPLICABLE = ("matched", "posting", "held")
MAX_UNREACHABLE = 3  # consecutive payments Sage could not be reached for before a pass stops
PaymentRows = Callable[[Sequence[str]], dict[str, PaymentRow]]


def payment_rows(conn: duckdb.DuckDBPyConnection, payment_ids: Sequence[str]) -> dict[str, PaymentRow]:
    """The payments as last fetched from GoCardless, keyed by id, each with its `refunds` (id, amount,
    currency, status): the re-check needs their references, and what GoCardless says now."""
    frame = conn.execute(
        f"SELECT {PAYMENT_COLUMNS} FROM gocardless_payments p WHERE p.id IN (SELECT unnest(?))", [list(payment_ids)]
    ).df()
    record: PaymentRow = {}  # each row comes as a dict of this type (keys: the columns' names)
    records = frame.astype(object).where(frame.notna(), None).to_dict("records", into=record)
    rows = {r["id"]: {**r, "refunds": []} for r in records}
    if rows and table_exists(conn, "gocardless_refunds"):
        refunds = conn.execute(
            """SELECT id, payment, amount, currency, status FROM gocardless_refunds
            WHERE payment IN (SELECT unnest(?)) ORDER BY created_at, id""",
            [list(rows)],
        ).fetchall()
        for rid, pid, amount, currency, status in refunds:
            rows[pid]["refunds"].append({"id": rid, "amount": int(amount), "currency": currency, "status": status})
    return rows


def post_matched(
    store: Store,
    agent: AgentClient,
    settings: ReconciliationSettings,
    payments: PaymentRows,
    actor: str = "system",
    owner: str | None = None,
    lease: timedelta = POSTING_LEASE,
    max_unreachable: int = MAX_UNREACHABLE,
) -> PostingPass:
    """Post every matched payment, and resolve those left `posting` (claim free, i.e. not being worked on).

    Stops after `max_unreachable` payments in a row could not reach Sage: the agent is down, and every
    further payment would only wait out its own timeouts. The payments not tried stay as they are
    (`waiting`), untouched; the caller fails so that the run is retried later.
    """
    entries = [e for status in POSTABLE for e in store.ledger.list(status=status)]
    rows = payments([e.payment_id for e in entries]) if entries else {}
    result = PostingPass()
    with Claims(store.ledger, owner or new_owner(actor), lease) as claims:
        in_a_row = 0
        for n, entry in enumerate(entries):
            payment = rows.get(entry.payment_id)
            outcome = post_payment(store, agent, settings, entry, payment, actor=actor, claims=claims)
            result.outcomes.append(outcome)
            in_a_row = in_a_row + 1 if outcome.unreachable else 0
            if in_a_row >= max_unreachable:
                result.stopped = f"Sage could not be reached for {in_a_row} payments in a row ({outcome.message})"
                result.waiting = [e.payment_id for e in entries[n + 1 :]]
                break
    return result


def post_payment(
    store: Store,
    agent: AgentClient,
    settings: ReconciliationSettings,
    entry: LedgerEntry,
    payment: PaymentRow | None,
    actor: str = "system",
    allocations: Sequence[Allocation] | None = None,
    sage_customer: str | None = None,
    claims: Claims | None = None,
) -> PostingOutcome:
    """Post one payment; `allocations`/`sage_customer` are an operator's choice (review apply).

    Without `claims` (an operator's action) the payment is claimed for this call alone.
    """
    if claims is None:
        with Claims(store.ledger, new_owner(actor)) as own:
            return post_payment(store, agent, settings, entry, payment, actor, allocations, sage_customer, own)
    pid = entry.payment_id
    allowed = APPLICABLE if allocations is not None else POSTABLE
    if entry.status not in allowed:
        return PostingOutcome(pid, "skipped", message=f"status is {entry.status}, not one of {', '.join(allowed)}")
    if not claims.take(pid, entry.status):
        return _not_taken(store.ledger.entry(pid))
    attempt = CashReceiptAttempt(
        store=store,
        agent=agent,
        settings=settings,
        entry=store.ledger.entry(pid),
        payment=payment,
        actor=actor,
        owner=claims.owner,
        from_status=entry.status,
        allocations=allocations,
        sage_customer=sage_customer,
    )
    try:
        return attempt.run()
    except BaseException as exc:
        attempt.release(exc)
        raise
    finally:
        claims.drop(pid)


def _not_taken(current: LedgerEntry) -> PostingOutcome:
    """Why a claim failed: another pass holds it (busy), or the payment moved on since it was listed."""
    if current.status == "posting" and current.lease_until is not None:
        return PostingOutcome(
            current.payment_id,
            "busy",
            message=f"{current.claimed_by} is posting it (lease until {current.lease_until:%Y-%m-%d %H:%M:%S} UTC)",
        )
    return PostingOutcome(current.payment_id, "skipped", message=f"it moved on to {current.status}")
