"""Write-back: a matched payment becomes one cash receipt in Sage, exactly once.

For each payment: claim it in the ledger (one compare-and-set UPDATE, with an owner and a lease), ask the
agent whether its receipt already exists, re-read the customer's open invoices through the agent and
decide again on Sage's state *now*, record the request, then CreateCashReceipt with the payment id as
idempotency key. The client never repeats a write blindly (it asks FindCashReceipt first), and the agent
answers a repeated key with the first receipt. A receipt Sage returns is compared with what was asked
before the payment is marked posted, and what GoCardless says now (a chargeback, a refund) is applied
after the receipt is recorded, never instead of recording it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, NamedTuple

import duckdb

from ..lifecycle import NOT_COLLECTED_STATUSES, next_step, refund_step
from ..matching import decide_for_customer
from ..sage100 import (
    AgentClient,
    CashReceipt,
    CashReceiptRequest,
    InvoiceRecord,
    ReceiptLine,
    SageCompanyError,
    SageError,
    SageLogonError,
    SageUnavailable,
    SageWriteRejected,
)
from ..settings import ReconciliationSettings
from ..store import Store
from ..store.ledger import Ledger, LedgerEntry
from ..store.utc import utcnow
from ..warehouse import table_exists
from .evaluate import PAYMENT_COLUMNS, match_settings, reversal_details

log = logging.getLogger(__name__)

# Sage cannot be used at all: unreachable, or it refuses our logon or company code (fix the settings). Nothing
# about the payment is wrong, so it is not held; it waits, and the pass stops after a few in a row.
SAGE_DOWN = (SageUnavailable, SageLogonError, SageCompanyError)

POSTABLE = ("posting", "matched")  # unknown outcomes first: they have waited longest
APPLICABLE = ("matched", "posting", "held")
# A claim's lease, renewed every quarter of it while the pass works on the payment: short, so a dead run's
# payments are taken over soon, yet long enough to ride out a slow store write.
POSTING_LEASE = timedelta(seconds=20)
MAX_UNREACHABLE = 3  # consecutive payments Sage could not be reached for before a pass stops
# A payment as the write-back reads it: its gocardless_payments row (PAYMENT_COLUMNS, missing values None) and
# `refunds`, each {id, amount, currency, status}; or the same built from the API (review actions).
PaymentRow = dict[str, Any]
PaymentRows = Callable[[Sequence[str]], dict[str, PaymentRow]]
MISSING_FROM_WAREHOUSE = (
    "the payment is not in the warehouse (not fetched yet, or the warehouse was rebuilt); "
    "it stays as it was and the next write-back tries again - materialize gocardless/payments "
    "if it stays so"
)


@dataclass(frozen=True)
class PostingOutcome:
    """What one payment's write-back did.

    `status`: posted | held | not_collected | reversal_required (posted, then the money went back) |
    unknown (the write's outcome is unknown; it stays `posting`) | deferred (nothing written, it waits
    for the next pass) | busy (another pass holds its claim) | skipped (it moved on meanwhile) | lost (its
    claim was taken over while this pass worked; the taker finishes it). `unreachable` is True when Sage
    could not be used: not reached (connection, timeout, garbage) or refusing our logon or company code.
    The pass stops after a few in a row: the next payments would fare no better.
    """

    payment_id: str
    status: str
    reason: str | None = None
    receipt_id: str | None = None
    message: str | None = None
    unreachable: bool = False


@dataclass
class PostingPass:
    """A write-back pass: its outcomes and, if it stopped early, why and which payments it left waiting."""

    outcomes: list[PostingOutcome] = field(default_factory=list)
    stopped: str | None = None
    waiting: list[str] = field(default_factory=list)

    def ids(self, status: str) -> list[str]:
        return [o.payment_id for o in self.outcomes if o.status == status]

    def counts(self) -> Counter[str]:
        return Counter(o.status for o in self.outcomes)


@dataclass(frozen=True)
class Allocation:
    """An operator's choice: an invoice number and, optionally, the (positive) amount to apply to it."""

    invoice_no: str
    amount: Decimal | None = None

    def __post_init__(self) -> None:
        if not self.invoice_no.strip():
            raise AllocationError("give an invoice number, optionally with :AMOUNT")
        if self.amount is not None and self.amount <= 0:
            raise AllocationError(
                f"invoice {self.invoice_no}: the amount must be more than 0, not {self.amount}; "
                "leave the amount out to apply what the invoice needs (oldest first)"
            )


class AllocationError(ValueError):
    """An operator's allocation does not fit the payment or Sage's invoices; the message says how."""


def new_owner(actor: str) -> str:
    """A claim owner unique to one pass, readable in the ledger: who, plus a random tag."""
    return f"{actor[:100]}#{uuid.uuid4().hex[:12]}"


class Claims:
    """One pass's claims on payments, kept alive by a heartbeat thread while the pass works on them.

    Why a heartbeat: one write may take minutes (timeouts, retries, a FindCashReceipt before each retry),
    so a fixed lease covering the worst case would leave a dead run's payments stuck that long. Renewed
    every quarter of `lease`, a short lease shows the owner is alive and expires soon after it dies.
    """

    def __init__(self, ledger: Ledger, owner: str, lease: timedelta = POSTING_LEASE) -> None:
        self.ledger, self.owner, self.lease = ledger, owner, lease
        self._held: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, daemon=True, name=f"lease {owner}")

    def __enter__(self) -> Claims:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def take(self, payment_id: str, status: str) -> bool:
        """Claim a payment seen in `status` (see Ledger.claim); held until `drop`."""
        with self._lock:
            taken = self.ledger.claim(payment_id, status, self.owner, utcnow() + self.lease)
            if taken:
                self._held.add(payment_id)
            return taken

    def drop(self, payment_id: str) -> None:
        with self._lock:
            self._held.discard(payment_id)

    def _beat(self) -> None:
        while not self._stop.wait(max(self.lease.total_seconds() / 4, 0.05)):
            with self._lock:
                held = sorted(self._held)
                if not held:
                    continue
                try:
                    kept = self.ledger.renew(held, self.owner, utcnow() + self.lease)
                except Exception:
                    log.warning("could not renew the posting lease of %s", self.owner, exc_info=True)
                    continue
            for lost in set(held) - kept:
                log.warning("%s lost its claim on %s; the pass that took it over finishes it", self.owner, lost)


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
    attempt = _Attempt(
        store,
        agent,
        settings,
        store.ledger.entry(pid),
        payment,
        actor,
        claims.owner,
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


class _Plan(NamedTuple):
    """What a write-back is about to ask of Sage: the receipt's lines, by which rule and why, and its amount."""

    lines: list[ReceiptLine]
    rule: str | None
    why: str
    home_amount: Decimal


@dataclass
class _Attempt:
    """One claimed payment's write-back; every way out releases the claim (or notices it was lost)."""

    store: Store
    agent: AgentClient
    settings: ReconciliationSettings
    entry: LedgerEntry
    payment: dict[str, Any] | None
    actor: str
    owner: str
    from_status: str
    allocations: Sequence[Allocation] | None = None
    sage_customer: str | None = None
    sent: bool = False  # CreateCashReceipt was called: from here on the write may have happened

    @property
    def pid(self) -> str:
        return self.entry.payment_id

    @property
    def customer(self) -> str | None:
        return self.sage_customer or self.entry.sage_customer

    def run(self) -> PostingOutcome:
        """Ask Sage first; then record what is there, or follow the payment's path without a receipt.

        A payment missing from the warehouse is deferred, not held: our own copy of GoCardless lags or was
        rebuilt, nothing about the payment is wrong and there is nothing for a person to decide. It stays
        as it was (`matched`), the audit says why (cash_receipt.deferred, payment_not_in_warehouse) and the
        next pass tries again, after gocardless/payments has fetched it. A hold would have someone act on
        what the next poll fixes, and `amount_mismatch` (the old reason) was false.
        """
        payment = self.payment
        if payment is None:
            return self._defer("payment_not_in_warehouse", MISSING_FROM_WAREHOUSE)
        try:
            existing = self.agent.find_cash_receipt(self.pid)
        except SAGE_DOWN as exc:
            return self._defer("sage_unavailable", str(exc), unreachable=True)
        except SageError as exc:
            return self._hold("sage_rejected", f"Sage refused the request: {exc}", {"sage_message": str(exc)})
        if existing is not None:  # written before (a run died after the write): check it, record it, write nothing
            return self._found(payment, existing)
        if payment.get("status") in NOT_COLLECTED_STATUSES:  # never posted, and the money never came
            return self._not_collected(payment)
        return self._write(payment)

    # --- the receipt is in Sage already ---------------------------------------------------------------------

    def _found(self, payment: PaymentRow, receipt: CashReceipt) -> PostingOutcome:
        asked = self.entry.request or {"customer": self.customer, "amount": self.entry.home_amount}
        differences = _differences(asked, receipt)
        if differences:
            return self._mismatch(asked, receipt, differences)
        return self._record(payment, receipt, _lines_of(receipt), self.entry.rule, note="found existing receipt")

    # --- writing it -----------------------------------------------------------------------------------------

    def _write(self, payment: PaymentRow) -> PostingOutcome:
        customer = self.customer
        if customer is None:
            return self._hold("customer_not_found", "no Sage customer is resolved for this payment", {})
        division, customer_no = customer.split("-", 1)
        try:
            invoices = self.agent.get_open_invoices(division, customer_no)
        except SAGE_DOWN as exc:
            return self._defer("sage_unavailable", str(exc), unreachable=True)
        except SageError as exc:
            return self._hold("sage_rejected", f"Sage refused the request: {exc}", {"sage_message": str(exc)})
        self.store.audit.append(
            "sage.open_invoices",
            self.pid,
            {
                "customer": customer,
                "invoices": [
                    {"invoice_no": i.InvoiceNo, "invoice_type": i.InvoiceType, "balance": str(i.Balance)}
                    for i in invoices
                ],
            },
            actor=self.actor,
        )
        plan = self._plan(payment, customer, invoices)
        if isinstance(plan, PostingOutcome):
            return plan
        request = CashReceiptRequest(
            idempotency_key=self.pid,
            deposit_date=datetime.now(UTC).date(),
            bank_code=self.settings.bank_code,
            ar_division_no=division,
            customer_no=customer_no,
            amount=plan.home_amount,
            reference=(payment.get("reference") or self.pid)[:30],
            lines=tuple(plan.lines),
        )
        return self._send(payment, request, plan.rule, plan.why)

    def _plan(self, payment: PaymentRow, customer: str, invoices: list[InvoiceRecord]) -> _Plan | PostingOutcome:
        """The lines to write: the operator's, or the rules' decision on Sage's invoices as they are now."""
        if self.allocations is not None:  # an AllocationError ends the attempt: see release
            if not self.entry.home_amount:
                raise AllocationError(
                    "the payment has no amount in home currency (currency unsupported); it cannot be applied"
                )
            home_amount = Decimal(self.entry.home_amount)
            lines = _operator_lines(self.allocations, invoices, home_amount)
            return _Plan(lines, "operator", "applied by an operator", home_amount)
        decision = decide_for_customer(
            {**payment, "sage_customer": customer},
            [dataclasses.asdict(i) for i in invoices],
            match_settings(self.settings),
        )
        if not decision.matched or decision.home_amount is None:  # a matched decision has its amount
            return self._hold(
                decision.reason, decision.explanation, {"candidates": decision.candidates, "sage_customer": customer}
            )
        lines = [ReceiptLine(a["invoice_no"], a["invoice_type"], a["amount"]) for a in decision.allocations]
        return _Plan(lines, decision.rule, decision.explanation, decision.home_amount)

    def _send(self, payment: PaymentRow, request: CashReceiptRequest, rule: str | None, why: str) -> PostingOutcome:
        asked = _request_record(request)
        if not self.store.ledger.transition(self.pid, ["posting"], owner=self.owner, request=asked):
            return self._lost()
        self.store.audit.append(
            "cash_receipt.requested",
            self.pid,
            {
                **asked,
                "operator_allocations": [dataclasses.asdict(a) for a in self.allocations]
                if self.allocations is not None
                else None,
            },
            actor=self.actor,
        )
        self.sent = True
        try:
            receipt = self.agent.create_cash_receipt(request)
        except SageWriteRejected as exc:
            return self._rejected(asked, exc)
        except SageUnavailable as exc:  # includes SageOutcomeUnknown: it may have been written
            return self._unknown(exc)
        except (SageLogonError, SageCompanyError) as exc:  # refused before anything was written
            return self._defer("sage_unavailable", str(exc), unreachable=True)
        except SageError as exc:
            return self._hold(
                "sage_rejected", f"Sage refused the request: {exc}", {"sage_message": str(exc), "asked": asked}
            )
        differences = _differences(asked, receipt)
        if differences:
            return self._mismatch(asked, receipt, differences)
        return self._record(
            payment,
            receipt,
            asked["lines"],
            rule,
            explanation=why,
            sage_customer=asked["customer"],
            home_amount=asked["amount"],
        )

    # --- ways out -------------------------------------------------------------------------------------------

    def _record(
        self,
        payment: PaymentRow,
        receipt: CashReceipt,
        allocations: list[dict[str, str]],
        rule: str | None,
        note: str | None = None,
        **values: Any,
    ) -> PostingOutcome:
        record = {
            "receipt_id": receipt.receipt_id,
            "deposit_no": receipt.deposit_no,
            "check_no": receipt.check_no,
            "bank_code": receipt.bank_code,
            "deposit_date": str(receipt.deposit_date),
            "amount": str(receipt.amount),
        }
        if not self.store.ledger.finish(
            self.pid,
            self.owner,
            status="posted",
            reason=None,
            receipt=record,
            allocations=allocations,
            rule=rule,
            **values,
        ):
            return self._lost()
        self.store.audit.append(
            "cash_receipt.created",
            self.pid,
            {**record, "allocations": allocations, "note": note, "warnings": list(receipt.warnings)},
            actor=self.actor,
        )
        operator = self.allocations is not None
        for item in self.store.review.open_for(self.pid):
            if item.kind in ("held", "processing_failed"):
                self.store.review.close(
                    item.id, "applied" if operator else "resolved", by=self.actor, note=note or "posted"
                )
        return self._money_back(payment, receipt) or PostingOutcome(self.pid, "posted", receipt_id=receipt.receipt_id)

    def _money_back(self, payment: PaymentRow, receipt: CashReceipt) -> PostingOutcome | None:
        """After the receipt is recorded: a late failure, chargeback or refund GoCardless reports now."""
        amount = int(payment.get("amount") or 0)
        cause = next_step("posted", payment.get("status") or "").cause
        refunds = [r for r in payment.get("refunds") or [] if refund_step("posted", r["status"]).action != "none"]
        if cause is None and refunds:
            cause, amount = "refund", sum(int(r["amount"]) for r in refunds)
        if cause is None:
            return None
        if not self.store.ledger.transition(self.pid, ["posted"], status="reversal_required", reason=cause):
            return None
        item = reversal_details(self.pid, cause, amount, payment["currency"], self.settings)
        if cause == "refund":
            item["refund_ids"] = [r["id"] for r in refunds]
        self.store.review.open_item(self.pid, "reversal_required", cause, item)
        self.store.audit.append("payment.reversal_required", self.pid, item, actor=self.actor)
        return PostingOutcome(self.pid, "reversal_required", reason=cause, receipt_id=receipt.receipt_id)

    def _not_collected(self, payment: PaymentRow) -> PostingOutcome:
        status = payment["status"]
        if not self.store.ledger.finish(
            self.pid, self.owner, status="not_collected", reason=status, gocardless_status=status
        ):
            return self._lost()
        for item in self.store.review.open_for(self.pid):
            if item.kind == "held":
                self.store.review.close(item.id, "resolved", by=self.actor, note="payment not collected")
        self.store.audit.append(
            "payment.not_collected",
            self.pid,
            {"gocardless_status": status, "note": "no receipt in Sage under this payment's key; nothing written"},
            actor=self.actor,
        )
        return PostingOutcome(self.pid, "not_collected", reason=status)

    def _mismatch(self, asked: dict[str, Any], receipt: CashReceipt, differences: list[str]) -> PostingOutcome:
        return self._hold(
            "sage_rejected",
            "Sage holds a cash receipt under this payment's key that differs from "
            f"what was asked: {'; '.join(differences)}; check it in Sage before anything else",
            {"asked": asked, "sage_has": _receipt_view(receipt), "differences": differences},
        )

    def _rejected(self, asked: dict[str, Any], exc: SageWriteRejected) -> PostingOutcome:
        details: dict[str, Any] = {"sage_message": str(exc), "asked": asked}
        try:  # a rejection may mean a receipt already holds this key: show it beside what was asked
            has = self.agent.find_cash_receipt(self.pid)
        except SageError:
            has = None
        if has is not None:
            details["sage_has"] = _receipt_view(has)
        return self._hold("sage_rejected", f"Sage refused the cash receipt: {exc}", details)

    def _hold(self, reason: str | None, why: str, details: dict[str, Any]) -> PostingOutcome:
        if not self.store.ledger.finish(self.pid, self.owner, status="held", reason=reason, explanation=why):
            return self._lost()
        entry = self.entry
        self.store.review.open_item(
            self.pid,
            "held",
            reason,
            {
                "payment_id": self.pid,
                "gocardless_customer": entry.gocardless_customer,
                "amount_minor": entry.amount_minor,
                "currency": entry.currency,
                "home_amount": entry.home_amount,
                "reason": reason,
                "explanation": why,
                "checked_at_posting": True,
                **details,
            },
        )
        self.store.audit.append(
            "payment.held", self.pid, {"reason": reason, "explanation": why, **details}, actor=self.actor
        )
        return PostingOutcome(self.pid, "held", reason=reason, message=why)

    def _unknown(self, exc: SageUnavailable) -> PostingOutcome:
        """The write may have happened: it stays `posting`, unclaimed; the next pass asks Sage first."""
        if not self.store.ledger.finish(self.pid, self.owner, status="posting"):
            return self._lost()
        self.store.audit.append("cash_receipt.outcome_unknown", self.pid, {"error": str(exc)}, actor=self.actor)
        return PostingOutcome(self.pid, "unknown", message=str(exc), unreachable=True)

    def _defer(self, reason: str, message: str, unreachable: bool = False) -> PostingOutcome:
        """Nothing was written: back to the status it was claimed in, for the next pass."""
        if not self.store.ledger.finish(self.pid, self.owner, status=self.from_status):
            return self._lost()
        self.store.audit.append(
            "cash_receipt.deferred",
            self.pid,
            {"reason": reason, "message": message, "status": self.from_status},
            actor=self.actor,
        )
        return PostingOutcome(self.pid, "deferred", reason=reason, message=message, unreachable=unreachable)

    def release(self, exc: BaseException) -> None:
        """An error nobody expected stops this payment: free its claim now rather than when the lease runs
        out, so that a retry does not wait for it. Once the write was sent it stays `posting` (outcome
        unknown: the next pass asks Sage first); before, it goes back to the status it was claimed in."""
        status = "posting" if self.sent else self.from_status
        try:
            if self.store.ledger.finish(self.pid, self.owner, status=status) and not isinstance(exc, AllocationError):
                self.store.audit.append(
                    "cash_receipt.interrupted",
                    self.pid,
                    {"error": f"{type(exc).__name__}: {exc}"[:2000], "status": status},
                    actor=self.actor,
                )
        except Exception:
            log.warning("could not release the claim on %s", self.pid, exc_info=True)

    def _lost(self) -> PostingOutcome:
        current = self.store.ledger.get(self.pid)
        return PostingOutcome(
            self.pid,
            "lost",
            message=f"{current.claimed_by if current else 'another pass'} took "
            "over the claim (this pass's lease had expired); it finishes the payment",
        )


# --- comparing what was asked with what Sage has ------------------------------------------------------------------


def _request_record(request: CashReceiptRequest) -> dict[str, Any]:
    """The request as kept in the ledger before it is sent (amounts as exact text)."""
    return {
        "customer": f"{request.ar_division_no}-{request.customer_no}",
        "amount": str(request.amount),
        "lines": [
            {"invoice_no": line.invoice_no, "invoice_type": line.invoice_type, "amount": str(line.amount)}
            for line in request.lines
        ],
        "deposit_date": request.deposit_date.isoformat(),
        "reference": request.reference,
    }


def _receipt_view(receipt: CashReceipt) -> dict[str, Any]:
    return {
        "receipt_id": receipt.receipt_id,
        "customer": f"{receipt.ar_division_no}-{receipt.customer_no}",
        "amount": str(receipt.amount),
        "lines": _lines_of(receipt),
        "deposit_date": str(receipt.deposit_date),
        "status": receipt.status,
    }


def _lines_of(receipt: CashReceipt) -> list[dict[str, str]]:
    return [
        {"invoice_no": line.invoice_no, "invoice_type": line.invoice_type, "amount": str(line.amount)}
        for line in receipt.lines
    ]


def _differences(asked: dict[str, Any], receipt: CashReceipt) -> list[str]:
    """How Sage's receipt differs from what was asked: customer, amount and (when known) lines; and a
    receipt reversed in Sage is not this payment's receipt any more."""
    out = []
    if receipt.status == "reversed":
        out.append(f"it is reversed in Sage ({receipt.reversal_reason or 'no reason given'})")
    has_customer = f"{receipt.ar_division_no}-{receipt.customer_no}"
    if asked.get("customer") and _key(asked["customer"]) != _key(has_customer):
        out.append(f"customer {has_customer}, asked {asked['customer']}")
    if asked.get("amount") is not None and Decimal(asked["amount"]) != receipt.amount:
        out.append(f"amount {receipt.amount}, asked {asked['amount']}")
    if asked.get("lines") is not None and _line_set(asked["lines"]) != _line_set(_lines_of(receipt)):
        out.append(f"lines {_line_text(_lines_of(receipt))}, asked {_line_text(asked['lines'])}")
    return out


def _key(customer: str) -> str:
    return customer.strip().upper()


def _line_set(lines: Iterable[dict[str, Any]]) -> Counter[tuple[str, str, Decimal]]:
    return Counter((_norm(line["invoice_no"]), line["invoice_type"], Decimal(str(line["amount"]))) for line in lines)


def _line_text(lines: Iterable[dict[str, Any]]) -> str:
    return ", ".join(f"{line['invoice_no']} {line['amount']}" for line in lines) or "none"


# --- an operator's allocation ---------------------------------------------------------------------------------------


def _operator_lines(
    chosen: Sequence[Allocation], invoices: Iterable[InvoiceRecord], home_amount: Decimal
) -> list[ReceiptLine]:
    """An operator's allocation checked against Sage's current invoices; unstated amounts fill oldest first."""
    by_no = {_norm(i.InvoiceNo): i for i in invoices if i.InvoiceType in ("IN", "DM", "FC")}
    picked = []
    for choice in chosen:
        invoice = by_no.get(_norm(choice.invoice_no))
        if invoice is None:
            raise AllocationError(f"invoice {choice.invoice_no} is not an open invoice of this customer in Sage")
        if invoice.Balance <= 0:
            raise AllocationError(f"invoice {invoice.InvoiceNo} has no balance left (already collected)")
        if choice.amount is not None and choice.amount > invoice.Balance:
            raise AllocationError(
                f"{choice.amount} is more than invoice {invoice.InvoiceNo}'s balance {invoice.Balance}"
            )
        picked.append((invoice, choice.amount))
    remaining = home_amount - sum((a for _, a in picked if a is not None), Decimal("0"))
    lines = []
    oldest_first = sorted(
        picked, key=lambda p: (p[0].InvoiceDueDate or date.min, p[0].InvoiceDate or date.min, p[0].InvoiceNo)
    )
    for invoice, amount in oldest_first:
        if amount is None:
            amount = min(invoice.Balance, remaining)
            remaining -= amount
        if amount > 0:
            lines.append(ReceiptLine(invoice.InvoiceNo, invoice.InvoiceType, amount))
    total = sum((line.amount for line in lines), Decimal("0"))
    if total != home_amount:
        raise AllocationError(
            f"the allocations add up to {total} but the payment is {home_amount}; "
            "name more invoices or give amounts that add up to the payment"
        )
    return lines


def _norm(invoice_no: str) -> str:
    return invoice_no.strip().upper().lstrip("0")
