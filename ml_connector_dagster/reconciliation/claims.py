"""Claims on payments: taken, kept alive, and ended in the ledger, with the review queue and audit after.

A pass takes each payment it posts with an owner and a lease, in one compare-and-set UPDATE (Ledger.claim):
a payment a live pass is posting is never taken over, one whose pass died is, once its lease runs out. A
heartbeat renews the lease while the pass works (Claims). Every way an attempt ends - posted, held,
deferred, not collected, outcome unknown, interrupted - ends the claim in one compare-and-set as well
(ClaimedPayment); a claim taken over meanwhile ends as lost.
"""

from __future__ import annotations

import logging
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..lifecycle import next_step, refund_step
from ..sage100 import CashReceipt, SageUnavailable
from ..settings import ReconciliationSettings
from ..store import Store
from ..store.ledger import Ledger, LedgerEntry
from ..store.utc import utcnow
from .outcomes import reversal_details
from .posting import Allocation, AllocationError, PaymentRow, PostingOutcome

log = logging.getLogger(__name__)

# A claim's lease, renewed every quarter of it while the pass works on the payment: short, so a dead run's
# payments are taken over soon, yet long enough to ride out a slow store write.
POSTING_LEASE = timedelta(seconds=20)


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


@dataclass(kw_only=True)
class ClaimedPayment:
    """A payment this pass holds the claim on, and every way its attempt ends: posted (then what GoCardless
    says now: a reversal to make), not collected, held, unknown, deferred, released or lost. Each ends the
    claim in one compare-and-set on the ledger (Ledger.finish), then writes the review queue and the audit;
    a claim taken over meanwhile ends as lost, and the pass that took it finishes the payment."""

    store: Store
    settings: ReconciliationSettings
    entry: LedgerEntry
    actor: str
    owner: str
    from_status: str
    allocations: Sequence[Allocation] | None = None  # an operator's choice (review apply)
    sent: bool = False  # CreateCashReceipt was called: from here on the write may have happened

    @property
    def pid(self) -> str:
        return self.entry.payment_id

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
            posted_at=utcnow(),
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
        step = next_step("posted", payment.get("status") or "", retry_expected=bool(payment.get("retry_expected")))
        cause = step.cause if step.action == "reversal_required" else None  # a retry coming: the receipt waits
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
        if status == "failed" and payment.get("retry_expected"):  # GoCardless will try again: it waits
            return self._pending_retry(status)
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

    def _pending_retry(self, status: str) -> PostingOutcome:
        if not self.store.ledger.finish(self.pid, self.owner, status="pending", reason=None, gocardless_status=status):
            return self._lost()
        self.store.audit.append(
            "payment.pending",
            self.pid,
            {"gocardless_status": status, "cause": "retry_expected", "note": "failed, and GoCardless will retry it"},
            actor=self.actor,
        )
        return PostingOutcome(self.pid, "pending", reason="retry_expected")

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
