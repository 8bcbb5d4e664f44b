"""The GoCardless stand-in's world: resources loaded from a scenario and the lifecycle played step by step.

Kept apart from HTTP so the rules read in one place: what each scenario action does to a payment or
refund, which event GoCardless would create for it (ids, created_at, links, details.cause), and how
paid-out payments are grouped into payouts (one per currency and step) with fee items whose amounts are
strings of minor units to one decimal ("45.0"), the payout amount being their sum rounded once.

Faithful details worth knowing: lists are newest first; a payment or refund appears once its `created`
action has been played (one whose lifecycle has no `created` exists from the start); FX payments show
only `estimated_exchange_rate` until paid out, then `fx_amount` and `exchange_rate`.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, TypedDict

from .gocardless_shapes import (
    Creditor,
    Customer,
    CustomerAttribute,
    Event,
    EventDetails,
    EventLinks,
    Fx,
    Mandate,
    Metadata,
    Payment,
    Payout,
    PayoutItem,
    PayoutItemLinks,
    Refund,
)
from .scenario import Action, GoCardlessPayment, GoCardlessRefund, Scenario
from .webhook_sender import new_id

SCHEMES = {
    "GBP": "bacs",
    "EUR": "sepa_core",
    "USD": "ach",
    "SEK": "autogiro",
    "DKK": "betalingsservice",
    "AUD": "becs",
    "NZD": "becs_nz",
    "CAD": "pad",
}
PAYMENT_STATUS = {
    "created": "pending_submission",
    "submitted": "submitted",
    "confirmed": "confirmed",
    "paid_out": "paid_out",
    "failed": "failed",
    "cancelled": "cancelled",
    "charged_back": "charged_back",
    "chargeback_cancelled": "paid_out",
    "chargeback_settled": "charged_back",
    "late_failure_settled": "failed",
}
REFUND_STATUS = {
    "created": "created",
    "paid": "paid",
    "failed": "bounced",
    "refund_settled": "paid",
    "funds_returned": "funds_returned",
}
# (origin, cause, description) as GoCardless writes them; bank failures add scheme and reason_code.
PAYMENT_DETAILS = {
    "created": ("api", "payment_created", "Payment created via the API."),
    "submitted": (
        "gocardless",
        "payment_submitted",
        "Payment submitted to the banks. As a result, it can no longer be cancelled.",
    ),
    "confirmed": (
        "gocardless",
        "payment_confirmed",
        "Enough time has passed since the payment was submitted for "
        "the banks to return an error, so this payment is now confirmed.",
    ),
    "paid_out": ("gocardless", "payment_paid_out", "The payment has been paid out by GoCardless."),
    "failed": ("bank", "insufficient_funds", "The customer's account had insufficient funds to make this payment."),
    "cancelled": ("api", "payment_cancelled", "The payment was cancelled."),
    "charged_back": (
        "bank",
        "authorisation_disputed",
        "The customer has disputed having authorised you to set up a Direct Debit with them.",
    ),
    "chargeback_cancelled": ("bank", "chargeback_cancelled", "The customer's bank has cancelled the chargeback."),
    "chargeback_settled": ("gocardless", "chargeback_settled", "This chargeback has been deducted from a payout."),
    "late_failure_settled": (
        "gocardless",
        "late_failure_settled",
        "This late failure has been deducted from a payout.",
    ),
}
BANK_REASON_CODES = {
    "bacs": {"failed": "ARUDD-0", "charged_back": "DDICA-1"},
    "sepa_core": {"failed": "AM04", "charged_back": "MD01"},
}
REFUND_DETAILS = {
    "created": ("api", "refund_created", "The refund has been created, and will be submitted in the next batch."),
    "paid": ("gocardless", "refund_paid", "The refund has been paid to your customer."),
    "refund_settled": ("gocardless", "refund_settled", "The refund has been deducted from a payout."),
    "failed": (
        "gocardless",
        "refund_failed",
        "The refund did not reach your customer. The funds will be returned to you.",
    ),
    "funds_returned": (
        "gocardless",
        "refund_funds_returned",
        "The refund did not reach your customer. The funds have been returned to you.",
    ),
}
# Payout items created by an action, with the sign of the amount they move.
PAYOUT_ITEM_OF = {
    ("payments", "paid_out"): ("payment_paid_out", 1),
    ("payments", "chargeback_settled"): ("payment_charged_back", -1),
    ("payments", "late_failure_settled"): ("payment_failed", -1),
    ("refunds", "refund_settled"): ("refund", -1),
    ("refunds", "funds_returned"): ("refund_funds_returned", 1),
}
FEE_CAP_TENTHS = 4000  # GoCardless-like fee: 1% + 20 minor units, capped at 400; kept in tenths of a unit


def fee_tenths(amount: int) -> int:
    """The stand-in's fee for collecting `amount` minor units, in tenths of a minor unit."""
    return min(amount // 10 + 200, FEE_CAP_TENTHS)


def tenths_text(tenths: int) -> str:
    """Payout item amounts are strings of minor units with one decimal, e.g. "45.0", "-143.4"."""
    sign = "-" if tenths < 0 else ""
    return f"{sign}{abs(tenths) // 10}.{abs(tenths) % 10}"


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    """GoCardless timestamps ("2026-11-25T09:13:51.404Z"); a naive value is taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass
class _PayoutLine:
    key: tuple[str, str | None]
    item_type: str
    tenths: int
    links: PayoutItemLinks
    fee_tenths: int = 0
    fx_amount: int | None = None
    charge_date: str | None = None


class WorldStatus(TypedDict):
    """How far the play is, and how many of each resource there are (part of GET /_sandbox/status)."""

    step: int
    total_steps: int
    finished: bool
    events: int
    payments: int
    refunds: int
    payouts: int


class GoCardlessWorld:
    """All resources of one GoCardless account, mutated only under `lock`."""

    def __init__(
        self, scenario: Scenario, clock: Callable[[], datetime] | None = None, seed: int | None = None
    ) -> None:
        self.scenario = scenario
        self.lock = threading.RLock()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._last_stamp: datetime | None = None
        self._rng = random.Random(seed)
        self.steps: list[list[Action]] = scenario.steps()
        self.step_index = 0
        self.creditor = self._creditor()
        self.customers: dict[str, Customer] = {}
        self.mandates: dict[str, Mandate] = {}
        self.payments: dict[str, Payment] = {}
        self.refunds: dict[str, Refund] = {}
        self.payouts: dict[str, Payout] = {}
        self.payout_items: dict[str, list[PayoutItem]] = {}
        self.events: dict[str, Event] = {}
        self._payment_rows = {p.id: p for p in scenario.gocardless_payments}
        self._refund_rows = {r.id: r for r in scenario.gocardless_refunds}
        self._load()

    # -- loading ------------------------------------------------------------------------------------------

    def _stamp(self) -> str:
        """Now, strictly later than the previous stamp (ms resolution), so created_at orders everything."""
        now = self._clock().astimezone(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last_stamp is not None and now <= self._last_stamp:
            now = self._last_stamp + timedelta(milliseconds=1)
        self._last_stamp = now
        return iso(now)

    def _creditor(self) -> Creditor:
        company = self.scenario.company
        return {
            "id": new_id("CR", self._rng),
            "created_at": self._stamp(),
            "name": company.company_name,
            "address_line1": None,
            "city": None,
            "postal_code": None,
            "country_code": "GB",
            "verification_status": "successful",
            "fx_payout_currency": company.home_currency,
            "can_create_refunds": True,
            "merchant_responsible_for_notifications": True,
            "links": {"default_gbp_payout_account": new_id("BA", self._rng)},
        }

    def _load(self) -> None:
        currencies: dict[str, str] = {}
        for payment in self.scenario.gocardless_payments:
            currencies.setdefault(payment.mandate, payment.currency)
        for c in self.scenario.gocardless_customers:
            self.customers[c.id] = {
                "id": c.id,
                "created_at": self._stamp(),
                "email": c.email or None,
                "given_name": c.given_name or None,
                "family_name": c.family_name or None,
                "company_name": c.company_name or None,
                "address_line1": None,
                "address_line2": None,
                "address_line3": None,
                "city": None,
                "region": None,
                "postal_code": None,
                "country_code": "GB",
                "language": "en",
                "phone_number": None,
                "swedish_identity_number": None,
                "danish_identity_number": None,
                "metadata": dict(c.metadata),
            }
        for m in self.scenario.gocardless_mandates:
            scheme = SCHEMES.get(currencies.get(m.id, "GBP"), "bacs")
            self.mandates[m.id] = {
                "id": m.id,
                "created_at": self._stamp(),
                "reference": f"{m.id[-6:]}-MANDATE",
                "status": "active",
                "scheme": scheme,
                "next_possible_charge_date": None,
                "payments_require_approval": False,
                "metadata": {},
                "links": {
                    "customer_bank_account": new_id("BA", self._rng),
                    "creditor": self.creditor["id"],
                    "customer": m.customer,
                },
            }
        for p in self.scenario.gocardless_payments:
            if "created" not in p.lifecycle:
                self.payments[p.id] = self._new_payment(p)
        for r in self.scenario.gocardless_refunds:
            if "created" not in r.lifecycle:
                self._create_refund(r)

    def _new_payment(self, p: GoCardlessPayment) -> Payment:
        estimated = None
        if p.fx_currency and p.fx_amount:
            estimated = str((Decimal(p.fx_amount) / Decimal(p.amount)).quantize(Decimal("0.000001")))
        return {
            "id": p.id,
            "created_at": self._stamp(),
            "charge_date": p.charge_date.isoformat() if p.charge_date else None,
            "amount": p.amount,
            "amount_refunded": 0,
            "description": p.description or None,
            "currency": p.currency,
            "status": "pending_submission",
            "reference": p.reference or None,
            "metadata": dict(p.metadata),
            "retry_if_possible": False,
            "scheme": None,
            "fx": {
                "fx_currency": p.fx_currency,
                "fx_amount": None,
                "exchange_rate": None,
                "estimated_exchange_rate": estimated,
            },
            "links": {"mandate": p.mandate, "creditor": self.creditor["id"]},
        }

    def _create_refund(self, r: GoCardlessRefund) -> Refund:
        payment = self.payments.get(r.payment) or self._new_payment(self._payment_rows[r.payment])
        refund: Refund = {
            "id": r.id,
            "created_at": self._stamp(),
            "amount": r.amount,
            "currency": payment["currency"],
            "reference": f"REFUND-{r.payment}",
            "status": "created",
            "metadata": {},
            "fx": {"fx_currency": None, "fx_amount": None, "exchange_rate": None, "estimated_exchange_rate": None},
            "links": {"payment": r.payment, "mandate": payment["links"]["mandate"]},
        }
        self.refunds[r.id] = refund
        if r.payment in self.payments:
            self.payments[r.payment]["amount_refunded"] += r.amount
        return refund

    # -- playing ------------------------------------------------------------------------------------------

    @property
    def total_steps(self) -> int:
        return len(self.steps)

    def play_next_step(self) -> list[Event]:
        """Apply the next step's actions; return the events created (empty once every step was played)."""
        with self.lock:
            if self.step_index >= len(self.steps):
                return []
            actions = self.steps[self.step_index]
            self.step_index += 1
            events: list[Event] = []
            lines: list[tuple[_PayoutLine, Event]] = []
            for action in actions:
                event = self._apply(action)
                events.append(event)
                line = self._payout_line(action)
                if line is not None:
                    lines.append((line, event))
            events.extend(self._pay_out(lines))
            for event in events:
                self.events[event["id"]] = event
            return events

    def _apply(self, action: Action) -> Event:
        if action.resource == "payments":
            return self._apply_payment(action)
        return self._apply_refund(action)

    def _apply_payment(self, action: Action) -> Event:
        if action.action == "created" or action.id not in self.payments:
            self.payments.setdefault(action.id, self._new_payment(self._payment_rows[action.id]))
        payment = self.payments[action.id]
        payment["status"] = PAYMENT_STATUS[action.action]
        origin, cause, description = PAYMENT_DETAILS[action.action]
        details: EventDetails = {"origin": origin, "cause": cause, "description": description}
        if origin == "bank":
            scheme = self.mandates[payment["links"]["mandate"]]["scheme"]
            details["scheme"] = scheme
            details["reason_code"] = BANK_REASON_CODES.get(scheme, {}).get(action.action, "0")
            if action.action == "failed":
                details["will_attempt_retry"] = False
        return self._event("payments", action.action, {"payment": payment["id"]}, details, payment["metadata"])

    def _apply_refund(self, action: Action) -> Event:
        row = self._refund_rows[action.id]
        refund = self.refunds.get(action.id) or self._create_refund(row)
        refund["status"] = REFUND_STATUS[action.action]
        origin, cause, description = REFUND_DETAILS[action.action]
        links: EventLinks = {"refund": refund["id"], "payment": refund["links"]["payment"]}
        return self._event(
            "refunds",
            action.action,
            links,
            {"origin": origin, "cause": cause, "description": description},
            refund["metadata"],
        )

    def _event(
        self, resource_type: str, action: str, links: EventLinks, details: EventDetails, resource_metadata: Metadata
    ) -> Event:
        return {
            "id": new_id("EV", self._rng),
            "created_at": self._stamp(),
            "resource_type": resource_type,
            "action": action,
            "links": links.copy(),
            "details": details,
            "metadata": {},
            "resource_metadata": dict(resource_metadata),
        }

    def _payout_line(self, action: Action) -> _PayoutLine | None:
        kind = PAYOUT_ITEM_OF.get((action.resource, action.action))
        if kind is None:
            return None
        item_type, sign = kind
        if action.resource == "refunds":
            refund = self.refunds[action.id]
            paid = self.payments.get(refund["links"]["payment"])  # None while that payment is not created yet
            return _PayoutLine(
                (refund["currency"], paid["fx"]["fx_currency"] if paid else None),
                item_type,
                sign * refund["amount"] * 10,
                {"refund": action.id, "payment": refund["links"]["payment"]},
                charge_date=paid["charge_date"] if paid else None,
            )
        payment = self.payments[action.id]
        fx = payment["fx"]
        line = _PayoutLine(
            (payment["currency"], fx["fx_currency"]),
            item_type,
            sign * payment["amount"] * 10,
            {"payment": action.id},
            charge_date=payment["charge_date"],
        )
        if item_type == "payment_paid_out":
            line.fee_tenths = fee_tenths(payment["amount"])
            row = self._payment_rows.get(payment["id"])
            if row is not None and row.fx_amount and fx["fx_currency"]:
                line.fx_amount = row.fx_amount
                fx["fx_amount"] = row.fx_amount
                fx["exchange_rate"] = fx["estimated_exchange_rate"]
        return line

    def _pay_out(self, lines: list[tuple[_PayoutLine, Event]]) -> list[Event]:
        """One payout per (currency, fx currency) for this step; links paid_out payments and their events."""
        groups: dict[tuple[str, str | None], list[tuple[_PayoutLine, Event]]] = {}
        for line, event in lines:
            groups.setdefault(line.key, []).append((line, event))
        events = []
        for (currency, fx_currency), group in groups.items():
            payout = self._new_payout(currency, fx_currency, [line for line, _ in group])
            for line, event in group:
                if line.item_type == "payment_paid_out":
                    self.payments[line.links["payment"]]["links"]["payout"] = payout["id"]
                    event["links"]["payout"] = payout["id"]
            events.append(
                self._event(
                    "payouts",
                    "paid",
                    {"payout": payout["id"]},
                    {
                        "origin": "gocardless",
                        "cause": "payout_paid",
                        "description": "GoCardless has transferred the payout to the creditor's bank account.",
                    },
                    {},
                )
            )
        return events

    def _new_payout(self, currency: str, fx_currency: str | None, lines: list[_PayoutLine]) -> Payout:
        payout_id = new_id("PO", self._rng)
        items: list[PayoutItem] = []
        for line in lines:
            items.append(
                {"amount": tenths_text(line.tenths), "type": line.item_type, "links": line.links.copy(), "taxes": []}
            )
            if line.fee_tenths:
                items.append(
                    {
                        "amount": tenths_text(-line.fee_tenths),
                        "type": "gocardless_fee",
                        "links": line.links.copy(),
                        "taxes": [],
                    }
                )
        total = sum((Decimal(i["amount"]) for i in items), Decimal(0))
        fees = sum((Decimal(i["amount"]) for i in items if i["type"] == "gocardless_fee"), Decimal(0))
        amount = int(total.quantize(Decimal(1), rounding=ROUND_HALF_UP))
        fx: Fx = {"fx_currency": fx_currency, "fx_amount": None, "exchange_rate": None, "estimated_exchange_rate": None}
        fx_amounts = [line.fx_amount for line in lines if line.fx_amount]
        if fx_currency and fx_amounts:
            rate = Decimal(sum(fx_amounts)) / Decimal(sum(line.tenths for line in lines if line.fx_amount) // 10)
            fx["fx_amount"] = int((Decimal(amount) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))
            fx["exchange_rate"] = str(rate.quantize(Decimal("0.000001")))
            fx["estimated_exchange_rate"] = fx["exchange_rate"]
        payout: Payout = {
            "id": payout_id,
            "amount": amount,
            "currency": currency,
            "deducted_fees": int((-fees).quantize(Decimal(1), rounding=ROUND_HALF_UP)),
            "arrival_date": self._arrival_date(lines),
            "created_at": self._stamp(),
            "payout_type": "merchant",
            "reference": f"GC-{payout_id[2:10]}",
            "status": "paid",
            "fx": fx,
            "tax_currency": None,
            "metadata": {},
            "links": {
                "creditor": self.creditor["id"],
                "creditor_bank_account": self.creditor["links"]["default_gbp_payout_account"],
            },
        }
        self.payouts[payout_id] = payout
        self.payout_items[payout_id] = items
        return payout

    def _arrival_date(self, lines: list[_PayoutLine]) -> str:
        """Two days after the latest charge date in the payout (the play's dates come from the scenario)."""
        dates = [date.fromisoformat(line.charge_date) for line in lines if line.charge_date]
        day = max(dates) if dates else self.scenario.company.today
        return (day + timedelta(days=2)).isoformat()

    # -- reads and the one write ------------------------------------------------------------------------

    def update_customer(self, customer_id: str, changes: Mapping[CustomerAttribute, Any]) -> Customer:
        """Set some attributes, as sent: only metadata has been checked (routes.py); the rest is stored as is."""
        with self.lock:
            customer = self.customers[customer_id]
            for key, value in changes.items():
                customer[key] = dict(value) if key == "metadata" else value
            return customer.copy()

    def status(self) -> WorldStatus:
        with self.lock:
            return {
                "step": self.step_index,
                "total_steps": self.total_steps,
                "finished": self.step_index >= self.total_steps,
                "events": len(self.events),
                "payments": len(self.payments),
                "refunds": len(self.refunds),
                "payouts": len(self.payouts),
            }
