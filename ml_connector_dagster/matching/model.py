"""The values matching takes and gives: :class:`MatchSettings` in, :class:`Decision` out."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Final, NamedTuple, TypedDict

from ml_connector_dagster import money
from ml_connector_dagster.matching.kinds import MATCHED

__all__ = [
    "CANDIDATE_LIMIT",
    "DECISION_COLUMNS",
    "INVOICE_TYPES",
    "ON_TIE_VALUES",
    "Allocation",
    "Decision",
    "DecisionRow",
    "MatchSettings",
]

#: AR_OpenInvoice types a payment may be applied to (invoice, debit memo, finance charge).
INVOICE_TYPES: Final = ("IN", "DM", "FC")
#: Most candidates listed on a held payment.
CANDIDATE_LIMIT: Final = 10
ON_TIE_VALUES: Final = ("oldest", "hold")

DECISION_COLUMNS: Final = (
    "payment_id",
    "status",
    "reason",
    "sage_customer",
    "home_amount",
    "allocations",
    "rule",
    "explanation",
    "candidates",
)


def _no_rates() -> Mapping[str, Decimal]:
    return MappingProxyType({})


@dataclass(frozen=True)
class MatchSettings:
    """Company settings the matching rules depend on."""

    home_currency: str
    on_tie: str = "oldest"  # one of ON_TIE_VALUES
    fx_rates: Mapping[str, Decimal] = field(default_factory=_no_rates)

    def __post_init__(self) -> None:
        money.exponent(self.home_currency)  # unknown home currency: fail at configuration time
        if self.on_tie not in ON_TIE_VALUES:
            raise ValueError(f"on_tie must be one of {ON_TIE_VALUES}, not {self.on_tie!r}")
        for code, rate in self.fx_rates.items():
            if isinstance(rate, float):
                raise TypeError(f"fx rate for {code} is a float; use Decimal or a decimal string")


class Allocation(TypedDict):
    """Money applied to one invoice by a matched decision."""

    invoice_no: str
    invoice_type: str
    amount: Decimal


class DecisionRow(TypedDict):
    """A decision as a row of :func:`~ml_connector_dagster.matching.match_payments` (keys: DECISION_COLUMNS)."""

    payment_id: str
    status: str
    reason: str | None
    sage_customer: str | None
    home_amount: Decimal | None
    allocations: list[Allocation]
    rule: str | None
    explanation: str
    candidates: list[str]


class Decision(NamedTuple):
    """The outcome of matching one payment (one row of :func:`match_payments`); immutable.

    ``allocations`` are oldest first, adding up to ``home_amount`` when matched; ``candidates`` are invoice
    numbers (or Sage customer keys for ``customer_not_found``) for the review queue.  Treat both lists as
    read-only.
    """

    payment_id: str
    status: str
    reason: str | None
    sage_customer: str | None
    home_amount: Decimal | None
    allocations: list[Allocation]
    rule: str | None
    explanation: str
    candidates: list[str]

    @property
    def matched(self) -> bool:
        return self.status == MATCHED

    def as_row(self) -> DecisionRow:
        """The decision as a :func:`match_payments` row (a dict, with copies of the lists)."""
        return {
            "payment_id": self.payment_id,
            "status": self.status,
            "reason": self.reason,
            "sage_customer": self.sage_customer,
            "home_amount": self.home_amount,
            "allocations": [a.copy() for a in self.allocations],
            "rule": self.rule,
            "explanation": self.explanation,
            "candidates": list(self.candidates),
        }
