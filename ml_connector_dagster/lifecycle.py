"""What a payment's current GoCardless status means for the product (pure: no I/O).

The product acts on the payment's *current* status as re-read from the API, never on the event alone,
and on what it has already done (the ledger status). This module is that table, from
docs/reconciliation.md "When a payment is processed".
"""

from __future__ import annotations

from dataclasses import dataclass

NOT_COLLECTED_STATUSES = frozenset({"failed", "cancelled", "customer_approval_denied", "charged_back"})
REVERSING_STATUSES = {"failed": "late_failure", "charged_back": "chargeback"}

# A refund's statuses (GoCardless's own list; `refund_settled` and `failed` are events, not statuses) by
# where its money is. Only a refund that reached the customer took money back from them.
REFUND_NOT_SENT_YET = frozenset({"created", "pending_submission", "submitted"})
REFUND_TAKES_MONEY_BACK = frozenset({"paid"})
REFUND_NEVER_REACHED_CUSTOMER = frozenset({"cancelled", "bounced", "funds_returned"})
REFUND_STATUSES = REFUND_NOT_SENT_YET | REFUND_TAKES_MONEY_BACK | REFUND_NEVER_REACHED_CUSTOMER
REFUND_MEANINGS = {
    "created": "refund created, not sent yet: no money has left",
    "pending_submission": "refund waiting to be submitted: no money has left",
    "submitted": "refund submitted to the bank: no money has reached the customer yet",
    "paid": "refund paid to the customer: money went back",
    "cancelled": "refund cancelled before it was sent: no money left",
    "bounced": "refund did not reach the customer: the money comes back to the merchant",
    "funds_returned": "refund failed and its money came back to the merchant: the customer kept none of it",
}


@dataclass(frozen=True)
class Step:
    """What to do next: `match`, `pending`, `not_collected`, `reversal_required`, `restore` (refunds) or `none`."""

    action: str
    cause: str | None = None


def collected_statuses(collect_on: str) -> frozenset[str]:
    return frozenset({"paid_out"}) if collect_on == "paid_out" else frozenset({"confirmed", "paid_out"})


def next_step(
    ledger_status: str | None,
    gocardless_status: str,
    collect_on: str = "confirmed",
    retry_expected: bool = False,
    ledger_reason: str | None = None,
) -> Step:
    """Decide from the ledger status (and its reason) and the payment's current GoCardless status.

    - never posted: collected -> match; failed/cancelled/denied/charged back -> not_collected; else pending;
    - failed with a retry coming (`retry_expected`: the failed event said `will_attempt_retry`, or GoCardless
      requested a resubmission): pending, not closed as not_collected: GoCardless may yet collect it; a
      posted payment keeps its receipt until the retry's outcome is known;
    - not_collected is not final: a payment GoCardless collects later (after a retry) is matched like any other;
    - posted: a late failure (no retry coming) or chargeback -> reversal_required (the money went back);
    - reversal_required for a late failure or chargeback, not reversed yet, and collected again (a retry
      succeeded, a chargeback was cancelled) -> restore: the receipt in Sage is right again;
    - posting (a write in flight, or its outcome unknown): nothing here. Only the write-back can tell,
      by asking Sage, whether the receipt exists; it records it first, then applies this table;
    - held is decided again whenever the payment changes (the decision heals when what held it changes;
      evaluate.py also re-decides held payments whose Sage or customer data changed), and leaves the queue
      if the payment is not collected after all;
    - reversed is final for automation, and so is a reversal_required for a refund (operators decide).
    """
    if ledger_status == "posting":
        return Step("none")
    if ledger_status == "posted":
        if gocardless_status == "failed" and retry_expected:
            return Step("none", "retry_expected")
        cause = REVERSING_STATUSES.get(gocardless_status)
        return Step("reversal_required", cause) if cause else Step("none")
    if ledger_status == "reversal_required":
        collected_again = gocardless_status in collected_statuses(collect_on)
        restorable = ledger_reason in REVERSING_STATUSES.values()
        return Step("restore", gocardless_status) if collected_again and restorable else Step("none")
    if ledger_status == "reversed":
        return Step("none")
    if gocardless_status == "failed" and retry_expected:
        return Step("none") if ledger_status == "pending" else Step("pending", "retry_expected")
    if gocardless_status in NOT_COLLECTED_STATUSES:
        return Step("none") if ledger_status == "not_collected" else Step("not_collected", gocardless_status)
    if gocardless_status in collected_statuses(collect_on):
        return Step("none") if ledger_status == "matched" else Step("match")
    return Step("none") if ledger_status == "pending" else Step("pending")


def refund_step(ledger_status: str | None, refund_status: str, opened_reversal: bool = False) -> Step:
    """What a refund's current status means for its payment.

    - `paid` (the money reached the customer) of a posted payment: reversal_required for the refund amount;
    - not sent yet (`created`, `pending_submission`, `submitted`): nothing yet; the refund is read again
      when it is paid;
    - never reached the customer (`cancelled`, `bounced`, `funds_returned`: the money came back to the
      merchant): the payment stays as it was; if this refund had put it in `reversal_required`
      (`opened_reversal`), it is `restore`d to `posted` and its reversal item closes;
    - a payment still `posting` is left to the write-back, which applies its refunds once the receipt is
      recorded; `reversed` is final for automation (the receipt is undone in Sage: people decide).
    """
    if ledger_status == "posted" and refund_status in REFUND_TAKES_MONEY_BACK:
        return Step("reversal_required", "refund")
    if ledger_status == "reversal_required" and opened_reversal and refund_status in REFUND_NEVER_REACHED_CUSTOMER:
        return Step("restore", refund_status)
    return Step("none")


def refund_meaning(refund_status: str) -> str:
    """What a refund status means for the money, in words for the audit trail."""
    return REFUND_MEANINGS.get(refund_status, f"refund status {refund_status!r} is not one GoCardless documents")
