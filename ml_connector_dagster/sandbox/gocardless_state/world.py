"""GoCardlessWorld: all resources of one GoCardless account, loaded from a scenario and played step by step.

The world owns the state, the clock (`created_at`, strictly increasing) and the seeded ids; what an action
does comes from actions.py, new resources from resources.py, and the step's payouts from payouts.py.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, TypedDict

from ..gocardless_shapes import (
    Customer,
    CustomerAttribute,
    Event,
    EventDetails,
    EventLinks,
    Mandate,
    Metadata,
    Payment,
    Payout,
    PayoutItem,
    Refund,
)
from ..scenario import Action, GoCardlessPayment, GoCardlessRefund, Scenario
from ..webhook_sender import new_id
from .actions import (
    PAYMENT_STATUS,
    REFUND_STATUS,
    new_event,
    payment_details,
    payout_details,
    refund_details,
)
from .payouts import (
    TAX_CURRENCIES,
    Group,
    PayoutLine,
    Unconfirmed,
    action_lines,
    arrival_date,
    confirm_fx,
    confirm_payment_fx,
    confirm_taxes,
    needs_tax_rates,
    net_amount,
    new_payout,
    weighted_rate,
)
from .resources import iso, new_creditor, new_customer, new_mandate, new_payment, new_refund

PLANNING_CLOCK = datetime(2000, 1, 1, tzinfo=UTC)  # the dry run that finds whether play needs one more step


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
        self,
        scenario: Scenario,
        clock: Callable[[], datetime] | None = None,
        seed: int | None = None,
        *,
        plan: bool = True,
    ) -> None:
        self.scenario = scenario
        self.lock = threading.RLock()
        self._clock = clock or (lambda: datetime.now(UTC))
        self._last_stamp: datetime | None = None
        self._rng = random.Random(seed)
        self.steps: list[list[Action]] = scenario.steps()
        self.step_index = 0
        self.creditor = new_creditor(scenario.company, new_id("CR", self._rng), self._stamp(), new_id("BA", self._rng))
        self.customers: dict[str, Customer] = {}
        self.mandates: dict[str, Mandate] = {}
        self.payments: dict[str, Payment] = {}
        self.refunds: dict[str, Refund] = {}
        self.payouts: dict[str, Payout] = {}
        self.payout_items: dict[str, list[PayoutItem]] = {}
        self.events: dict[str, Event] = {}
        self._payment_rows = {p.id: p for p in scenario.gocardless_payments}
        self._refund_rows = {r.id: r for r in scenario.gocardless_refunds}
        self.tax_currency = TAX_CURRENCIES.get(self.creditor["country_code"])
        self._history: dict[tuple[str, str], list[str]] = {}  # the actions played so far, per resource
        self._carried: dict[Group, list[PayoutLine]] = {}  # lines not paid out yet: their sum was not positive
        self._unconfirmed: list[Unconfirmed] = []  # payouts to confirm at the next step
        self._load()
        if plan and self._confirmations_after_play():
            self.steps.append([])  # play goes on until the last payouts' rates are confirmed

    # -- loading ------------------------------------------------------------------------------------------

    def _stamp(self) -> str:
        """Now, strictly later than the previous stamp (ms resolution), so created_at orders everything."""
        now = self._clock().astimezone(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        if self._last_stamp is not None and now <= self._last_stamp:
            now = self._last_stamp + timedelta(milliseconds=1)
        self._last_stamp = now
        return iso(now)

    def _load(self) -> None:
        currencies: dict[str, str] = {}
        for payment in self.scenario.gocardless_payments:
            currencies.setdefault(payment.mandate, payment.currency)
        for c in self.scenario.gocardless_customers:
            self.customers[c.id] = new_customer(c, self._stamp())
        for m in self.scenario.gocardless_mandates:
            currency = currencies.get(m.id, "GBP")
            self.mandates[m.id] = new_mandate(m, currency, self._stamp(), new_id("BA", self._rng), self.creditor["id"])
        for p in self.scenario.gocardless_payments:
            if "created" not in p.lifecycle:
                self.payments[p.id] = self._new_payment(p)
        for r in self.scenario.gocardless_refunds:
            if "created" not in r.lifecycle:
                self._create_refund(r)

    def _new_payment(self, p: GoCardlessPayment) -> Payment:
        return new_payment(p, self._stamp(), self.creditor["id"])

    def _create_refund(self, r: GoCardlessRefund) -> Refund:
        payment = self.payments.get(r.payment) or self._new_payment(self._payment_rows[r.payment])
        refund = new_refund(r, payment, self._stamp())
        self.refunds[r.id] = refund
        if r.payment in self.payments:
            self.payments[r.payment]["amount_refunded"] += r.amount
        return refund

    # -- playing ------------------------------------------------------------------------------------------

    @property
    def total_steps(self) -> int:
        return len(self.steps)

    def play_next_step(self) -> list[Event]:
        """Apply the next step's actions; return the events created (empty once every step was played).

        First the confirmations of the previous step's payouts, then the step's actions in order, then the
        step's payouts."""
        with self.lock:
            if self.step_index >= len(self.steps):
                return []
            actions = self.steps[self.step_index]
            self.step_index += 1
            events = self._confirm_payouts()
            lines: list[tuple[PayoutLine, Event]] = []
            for action in actions:
                history = self._history.setdefault((action.resource, action.id), [])
                event = self._apply(action, history)
                events.append(event)
                new_lines = action_lines(
                    action, history, self.payments, self.refunds, self._payment_rows, self.tax_currency
                )
                history.append(action.action)
                lines.extend((line, event) for line in new_lines)
                if any(line.item["type"] == "surcharge_fee" and line.tenths < 0 for line in new_lines):
                    events.append(self._payment_event(action.id, "surcharge_fee_debited"))
            events.extend(self._pay_out(lines))
            for event in events:
                self.events[event["id"]] = event
            return events

    def _confirmations_after_play(self) -> bool:
        """Whether payouts of the last step still wait for their confirmations once every step was played
        (found by playing the scenario on a copy of the world)."""
        dry = GoCardlessWorld(self.scenario, clock=lambda: PLANNING_CLOCK, seed=0, plan=False)
        while dry.step_index < dry.total_steps:
            dry.play_next_step()
        return bool(dry._unconfirmed)

    def _apply(self, action: Action, history: list[str]) -> Event:
        if action.resource == "payments":
            return self._apply_payment(action, history)
        return self._apply_refund(action)

    def _apply_payment(self, action: Action, history: list[str]) -> Event:
        if action.action == "created" or action.id not in self.payments:
            self.payments.setdefault(action.id, self._new_payment(self._payment_rows[action.id]))
        payment = self.payments[action.id]
        payment["status"] = PAYMENT_STATUS[action.action]
        lifecycle = self._payment_rows[action.id].lifecycle
        retry = lifecycle[len(history) + 1 : len(history) + 2] == ("resubmission_requested",)
        details = payment_details(action.action, payment, self.mandates, will_attempt_retry=retry)
        return self._event("payments", action.action, {"payment": payment["id"]}, details, payment["metadata"])

    def _payment_event(self, payment_id: str, action: str) -> Event:
        payment = self.payments[payment_id]
        details = payment_details(action, payment, self.mandates)
        return self._event("payments", action, {"payment": payment_id}, details, payment["metadata"])

    def _apply_refund(self, action: Action) -> Event:
        row = self._refund_rows[action.id]
        refund = self.refunds.get(action.id) or self._create_refund(row)
        status = REFUND_STATUS[action.action]
        if status is not None:
            refund["status"] = status
        paid = self.payments.get(refund["links"]["payment"])
        if action.action in ("funds_returned", "cancelled") and paid is not None:
            paid["amount_refunded"] -= refund["amount"]  # the customer kept nothing of it
        links: EventLinks = {
            "refund": refund["id"],
            "payment": refund["links"]["payment"],
            "mandate": refund["links"]["mandate"],
        }
        return self._event("refunds", action.action, links, refund_details(action.action), refund["metadata"])

    def _event(
        self, resource_type: str, action: str, links: EventLinks, details: EventDetails, resource_metadata: Metadata
    ) -> Event:
        return new_event(
            new_id("EV", self._rng), self._stamp(), resource_type, action, links, details, resource_metadata
        )

    def _pay_out(self, lines: list[tuple[PayoutLine, Event]]) -> list[Event]:
        """One payout per (currency, FX currency) whose lines, with those carried from earlier steps, add up to
        a positive amount; otherwise they carry on. Links paid-out payments (and this step's events) to it."""
        groups: dict[Group, list[tuple[PayoutLine, Event]]] = {}
        for line, event in lines:
            groups.setdefault(line.group, []).append((line, event))
        events = []
        for group, new in groups.items():
            due = self._carried.pop(group, []) + [line for line, _ in new]
            if net_amount(due) <= 0:
                self._carried[group] = due
                continue
            payout = self._new_payout(group, due)
            for line in due:
                if line.paid_out is not None:
                    self.payments[line.paid_out]["links"]["payout"] = payout["id"]
            for line, event in new:
                if line.paid_out is not None:
                    event["links"]["payout"] = payout["id"]
            events.append(self._event("payouts", "paid", {"payout": payout["id"]}, payout_details("paid"), {}))
        return events

    def _new_payout(self, group: Group, lines: list[PayoutLine]) -> Payout:
        payout_id = new_id("PO", self._rng)
        created_at = self._stamp()
        rate = weighted_rate(lines) or self.scenario.company.fx_rates.get(group[0]) or Decimal(1)
        payout = new_payout(payout_id, group, lines, created_at, self.creditor, self.tax_currency, rate)
        items = [line.item for line in lines]
        self.payouts[payout_id] = payout
        self.payout_items[payout_id] = items
        tax_rate = self._tax_rate(group, rate) if needs_tax_rates(items) else None
        if group[1] is not None or tax_rate is not None:
            paid_out = [line.paid_out for line in lines if line.paid_out is not None]
            fx_rate = rate if group[1] is not None else None
            arrival = arrival_date(lines, created_at)
            self._unconfirmed.append(Unconfirmed(payout_id, fx_rate, tax_rate, arrival, paid_out))
        return payout

    def _tax_rate(self, group: Group, fx_rate: Decimal) -> Decimal | None:
        """The rate that converts a payout's VAT into the tax currency: the payout's own FX rate when it is
        converted into it, else the company's rate to its home currency when that is the tax currency."""
        currency, fx_currency = group
        if fx_currency is not None and fx_currency == self.tax_currency:
            return fx_rate
        if self.tax_currency == self.scenario.company.home_currency:
            return self.scenario.company.fx_rates.get(currency)
        return None

    def _confirm_payouts(self) -> list[Event]:
        """The previous step's payouts: FX rates confirmed (payout and payments), then VAT exchange rates."""
        events = []
        for u in self._unconfirmed:
            payout = self.payouts[u.payout_id]
            if u.fx_rate is not None:
                confirm_fx(payout, u.fx_rate, u.arrival_date)
                for payment_id in u.payments:
                    confirm_payment_fx(self.payments[payment_id], self._payment_rows[payment_id])
                details = payout_details("fx_rate_confirmed")
                events.append(self._event("payouts", "fx_rate_confirmed", {"payout": u.payout_id}, details, {}))
            if u.tax_rate is not None:
                confirm_taxes(self.payout_items[u.payout_id], u.tax_rate)
                details = payout_details("tax_exchange_rates_confirmed")
                links: EventLinks = {"payout": u.payout_id}
                events.append(self._event("payouts", "tax_exchange_rates_confirmed", links, details, {}))
        self._unconfirmed = []
        return events

    # -- reads and the one write ------------------------------------------------------------------------

    def now(self) -> datetime:
        """The world's clock (payouts older than 6 months no longer list their items)."""
        return self._clock().astimezone(UTC)

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
