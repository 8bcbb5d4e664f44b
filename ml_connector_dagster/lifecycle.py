"""What a payment's current GoCardless status means for the product (pure: no I/O).

The product acts on the payment's *current* status as re-read from the API, never on the event alone,
and on what it has already done (the ledger status). This module is that table, from
docs/reconciliation.md "When a payment is processed".
"""

from __future__ import annotations

from dataclasses import dataclass

NOT_COLLECTED_STATUSES = frozenset({"failed", "cancelled", "customer_approval_denied", "charged_back"})
REVERSING_STATUSES = {"failed": "late_failure", "charged_back": "chargeback"}
REFUND_TAKES_MONEY_BACK = frozenset(
    {"created", "pending_submission", "submitted", "paid", "refund_settled", "funds_returned"}
)


@dataclass(frozen=True)
class Step:
    """What to do next: `match`, `pending`, `not_collected`, `reversal_required` or `none`."""

    action: str
    cause: str | None = None


def collected_statuses(collect_on: str) -> frozenset[str]:
    return frozenset({"paid_out"}) if collect_on == "paid_out" else frozenset({"confirmed", "paid_out"})


def next_step(ledger_status: str | None, gocardless_status: str, collect_on: str = "confirmed") -> Step:
    """Decide from the ledger status and the payment's current GoCardless status.

    - never posted: collected -> match; failed/cancelled/denied/charged back -> not_collected; else pending;
    - posted: a late failure or chargeback -> reversal_required (the money went back);
    - posting (a write in flight, or its outcome unknown): nothing here. Only the write-back can tell,
      by asking Sage, whether the receipt exists; it records it first, then applies this table;
    - held stays held until an operator acts, unless the payment was not collected after all;
    - reversal_required and reversed are final for automation (operators decide).
    """
    if ledger_status == "posting":
        return Step("none")
    if ledger_status == "posted":
        cause = REVERSING_STATUSES.get(gocardless_status)
        return Step("reversal_required", cause) if cause else Step("none")
    if ledger_status in ("reversal_required", "reversed"):
        return Step("none")
    if gocardless_status in NOT_COLLECTED_STATUSES:
        return Step("none") if ledger_status == "not_collected" else Step("not_collected", gocardless_status)
    if ledger_status == "held":
        return Step("none")
    if gocardless_status in collected_statuses(collect_on):
        return Step("none") if ledger_status == "matched" else Step("match")
    return Step("none") if ledger_status == "pending" else Step("pending")


def refund_step(ledger_status: str | None, refund_status: str) -> Step:
    """A refund of a posted payment means money went back: reversal_required for the refund amount.

    A payment still `posting` is left to the write-back, which applies its refunds once the receipt is recorded.
    """
    if ledger_status == "posted" and refund_status in REFUND_TAKES_MONEY_BACK:
        return Step("reversal_required", "refund")
    return Step("none")
