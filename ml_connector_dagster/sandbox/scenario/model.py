"""What a scenario holds once read: the Sage company, its customers and invoices, GoCardless's resources.

Records are frozen and carry the scenario files' column names (Sage's for the Sage side). A payment's or
refund's `lifecycle` is the list of actions the stand-ins play for it, one per step (`Scenario.steps`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from pathlib import Path

PAYMENT_ACTIONS = (
    "created",
    "submitted",
    "confirmed",
    "paid_out",
    "failed",
    "cancelled",
    "charged_back",
    "chargeback_cancelled",
    "chargeback_settled",
    "late_failure_settled",
)
REFUND_ACTIONS = ("created", "paid", "failed", "refund_settled", "funds_returned")


class ScenarioError(Exception):
    """A scenario is invalid; `problems` holds each `file:line: column: message`."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid scenario:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class Company:
    company_code: str
    company_name: str
    home_currency: str
    bank_code: str
    username: str
    password: str = field(repr=False)
    fx_rates: dict[str, Decimal]
    settings: dict[str, object]  # company.json's "settings": JSON values; collect_on and on_tie are checked
    today: date


@dataclass(frozen=True)
class SageCustomer:
    ARDivisionNo: str
    CustomerNo: str
    CustomerName: str
    EmailAddress: str
    CustomerStatus: str = "A"  # optional column: A active, I inactive (Sage refuses cash receipts for it)


@dataclass(frozen=True)
class SageInvoice:
    ARDivisionNo: str
    CustomerNo: str
    InvoiceNo: str
    InvoiceType: str
    InvoiceDate: date
    InvoiceDueDate: date
    Balance: Decimal


@dataclass(frozen=True)
class GoCardlessCustomer:
    id: str
    email: str
    given_name: str
    family_name: str
    company_name: str
    metadata: dict[str, str]


@dataclass(frozen=True)
class GoCardlessMandate:
    id: str
    customer: str


@dataclass(frozen=True)
class GoCardlessPayment:
    id: str
    mandate: str
    amount: int
    currency: str
    charge_date: date | None
    reference: str
    description: str
    metadata: dict[str, str]
    fx_currency: str | None
    fx_amount: int | None
    lifecycle: tuple[str, ...]


@dataclass(frozen=True)
class GoCardlessRefund:
    id: str
    payment: str
    amount: int
    lifecycle: tuple[str, ...]


@dataclass(frozen=True)
class Action:
    """One lifecycle action of the play: `resource` is "payments" or "refunds"."""

    resource: str
    id: str
    action: str


@dataclass(frozen=True)
class Scenario:
    root: Path
    company: Company
    sage_customers: tuple[SageCustomer, ...]
    sage_invoices: tuple[SageInvoice, ...]
    gocardless_customers: tuple[GoCardlessCustomer, ...]
    gocardless_mandates: tuple[GoCardlessMandate, ...]
    gocardless_payments: tuple[GoCardlessPayment, ...]
    gocardless_refunds: tuple[GoCardlessRefund, ...]

    def steps(self) -> list[list[Action]]:
        """Step k = the k-th action of every payment lifecycle, in file order; then the refunds'."""
        return _steps("payments", self.gocardless_payments) + _steps("refunds", self.gocardless_refunds)


def _steps(resource: str, items: Sequence[GoCardlessPayment | GoCardlessRefund]) -> list[list[Action]]:
    depth = max((len(i.lifecycle) for i in items), default=0)
    return [[Action(resource, i.id, i.lifecycle[k]) for i in items if len(i.lifecycle) > k] for k in range(depth)]
