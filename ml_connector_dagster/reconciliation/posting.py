"""What the write-back reads, reports and is told: a payment's row, one payment's outcome, a pass's
outcomes, and an operator's allocation.

The write-back itself: the pass in write_back.py, one payment's exchange with Sage in cash_receipt.py,
the claims and every way one ends in claims.py, the comparison of a receipt with what was asked in
receipt_check.py.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

# A payment as the write-back reads it: its gocardless_payments row (PAYMENT_COLUMNS, missing values None) and
# `refunds`, each {id, amount, currency, status}; or the same built from the API (review actions).
PaymentRow = dict[str, Any]


@dataclass(frozen=True)
class PostingOutcome:
    """What one payment's write-back did.

    `status`: posted | held | not_collected | pending (failed, with a retry coming) |
    reversal_required (posted, then the money went back) |
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
