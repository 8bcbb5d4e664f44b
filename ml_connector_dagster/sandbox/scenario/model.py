"""What a scenario holds once read: the Sage company, its customers and invoices, GoCardless's resources, and
what people do in Sage during the month.

Records are frozen and carry the scenario files' column names (Sage's for the Sage side). A payment's or
refund's `lifecycle` is the list of actions the stand-ins play for it, one per step from its start step;
a Sage change happens at the start of its step, before that step's GoCardless actions (`Scenario.steps`,
`Scenario.sage_changes_at`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
    "resubmission_requested",
)
REFUND_ACTIONS = ("created", "submitted", "paid", "failed", "refund_settled", "funds_returned", "cancelled")
# Actions that only make sense after another in the same lifecycle: (the earlier action, right before it?).
# GoCardless retries a failed payment (resubmission_requested right after failed); a refund's funds come back
# only once it has failed.
FOLLOWS = {"resubmission_requested": ("failed", True), "funds_returned": ("failed", False)}
COLLECTED_BY = ("confirmed", "paid_out")  # the payment actions after which its money has been collected
SAGE_CHANGE_ACTIONS = ("add_customer", "update_customer_email", "add_invoice", "key_receipt", "post_journal")


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
    settings: dict[str, object]  # company.json's "settings": checked JSON values (booleans are real booleans)
    today: date

    def option(self, name: str) -> bool:
        """A boolean setting (`require_deposit_amount`, `batch_entry`, ...); absent means off."""
        return self.settings.get(name) is True


@dataclass(frozen=True)
class SageCustomer:
    ARDivisionNo: str
    CustomerNo: str
    CustomerName: str
    EmailAddress: str
    CustomerStatus: str = "A"  # optional column: A active, I inactive (Sage warns when a receipt is entered)


@dataclass(frozen=True)
class SageInvoice:
    ARDivisionNo: str
    CustomerNo: str
    InvoiceNo: str
    InvoiceType: str
    InvoiceDate: date
    InvoiceDueDate: date
    Balance: Decimal
    PaymentsToday: Decimal = Decimal("0.00")  # optional column: unposted receipts keyed before the play starts


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
    start_step: int | None = None  # optional column: the step of the first action; default 1


@dataclass(frozen=True)
class GoCardlessRefund:
    id: str
    payment: str
    amount: int
    lifecycle: tuple[str, ...]
    start_step: int | None = None  # optional column; default: the step after every payment lifecycle ended


@dataclass(frozen=True)
class SageChange:
    """One row of sage_changes.csv: what a person does in Sage at the start of `step`.

    Only the columns `action` needs are set (see docs/scenario-format.md); the others are empty or None.
    """

    step: int
    action: str
    ARDivisionNo: str = ""
    CustomerNo: str = ""
    InvoiceNo: str = ""
    InvoiceType: str = ""
    InvoiceDate: date | None = None
    InvoiceDueDate: date | None = None
    Amount: Decimal | None = None
    CustomerName: str = ""
    EmailAddress: str = ""
    CheckNo: str = ""
    line: int = field(default=0, compare=False)  # where it is in sage_changes.csv, for messages

    def describe(self) -> str:
        """The change in a few words, e.g. "key_receipt 01-ABF 0100031 IN 100.00 check 1234"."""
        customer = f"{self.ARDivisionNo}-{self.CustomerNo}" if self.CustomerNo else ""
        invoice = f"{self.InvoiceNo} {self.InvoiceType}" if self.InvoiceNo else ""
        amount = str(self.Amount) if self.Amount is not None else ""
        check = f"check {self.CheckNo}" if self.CheckNo else ""
        email = self.EmailAddress if self.action == "update_customer_email" else ""
        return " ".join(part for part in (self.action, customer, invoice, amount, check, email) if part)


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
    sage_changes: tuple[SageChange, ...] = ()

    def payment_start(self, payment: GoCardlessPayment) -> int:
        return payment.start_step or 1

    def refund_start(self, refund: GoCardlessRefund) -> int:
        """Its `start_step`, or the step after every payment lifecycle has ended."""
        return refund.start_step or self.payments_end() + 1

    def payments_end(self) -> int:
        """The step of the last payment action (0 when no payment has one)."""
        return max((self.payment_start(p) + len(p.lifecycle) - 1 for p in self.gocardless_payments), default=0)

    @property
    def total_steps(self) -> int:
        """The longer of the GoCardless play and the Sage changes."""
        refunds_end = max(
            (self.refund_start(r) + len(r.lifecycle) - 1 for r in self.gocardless_refunds if r.lifecycle), default=0
        )
        return max(self.payments_end(), refunds_end, max((c.step for c in self.sage_changes), default=0))

    def steps(self) -> list[list[Action]]:
        """The GoCardless actions of each step (index 0 = step 1), one list per step of the whole play (a step
        with only Sage changes has none): every lifecycle acts once per step from its start step, payments
        before refunds, each in file order."""
        steps: list[list[Action]] = [[] for _ in range(self.total_steps)]
        _place(steps, "payments", self.gocardless_payments, self.payment_start)
        _place(steps, "refunds", self.gocardless_refunds, self.refund_start)
        return steps

    def sage_changes_at(self, step: int) -> tuple[SageChange, ...]:
        """The Sage changes of step `step` (1-based), in file order."""
        return tuple(c for c in self.sage_changes if c.step == step)


def _place(
    steps: list[list[Action]],
    resource: str,
    items: Sequence[GoCardlessPayment | GoCardlessRefund],
    start: Callable[..., int],
) -> None:
    for item in items:
        first = start(item)
        for offset, action in enumerate(item.lifecycle):
            steps[first - 1 + offset].append(Action(resource, item.id, action))
