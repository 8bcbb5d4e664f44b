"""GoCardlessWorld: all resources of one GoCardless account, loaded from a scenario and played step by step.

The world owns the state, the clock (`created_at`, strictly increasing) and the seeded ids; what an action
does comes from actions.py, new resources from resources.py, and the step's payouts from payouts.py.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
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
from .actions import PAYMENT_STATUS, REFUND_STATUS, new_event, payment_details, payout_paid_details, refund_details
from .payouts import PayoutLine, arrival_date, new_payout, payout_items, payout_line
from .resources import iso, new_creditor, new_customer, new_mandate, new_payment, new_refund


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
        """Apply the next step's actions; return the events created (empty once every step was played)."""
        with self.lock:
            if self.step_index >= len(self.steps):
                return []
            actions = self.steps[self.step_index]
            self.step_index += 1
            events: list[Event] = []
            lines: list[tuple[PayoutLine, Event]] = []
            for action in actions:
                event = self._apply(action)
                events.append(event)
                line = payout_line(action, self.payments, self.refunds, self._payment_rows)
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
        details = payment_details(action.action, payment, self.mandates)
        return self._event("payments", action.action, {"payment": payment["id"]}, details, payment["metadata"])

    def _apply_refund(self, action: Action) -> Event:
        row = self._refund_rows[action.id]
        refund = self.refunds.get(action.id) or self._create_refund(row)
        refund["status"] = REFUND_STATUS[action.action]
        links: EventLinks = {"refund": refund["id"], "payment": refund["links"]["payment"]}
        return self._event("refunds", action.action, links, refund_details(action.action), refund["metadata"])

    def _event(
        self, resource_type: str, action: str, links: EventLinks, details: EventDetails, resource_metadata: Metadata
    ) -> Event:
        return new_event(
            new_id("EV", self._rng), self._stamp(), resource_type, action, links, details, resource_metadata
        )

    def _pay_out(self, lines: list[tuple[PayoutLine, Event]]) -> list[Event]:
        """One payout per (currency, fx currency) for this step; links paid_out payments and their events."""
        groups: dict[tuple[str, str | None], list[tuple[PayoutLine, Event]]] = {}
        for line, event in lines:
            groups.setdefault(line.key, []).append((line, event))
        events = []
        for (currency, fx_currency), group in groups.items():
            payout = self._new_payout(currency, fx_currency, [line for line, _ in group])
            for line, event in group:
                if line.item_type == "payment_paid_out":
                    self.payments[line.links["payment"]]["links"]["payout"] = payout["id"]
                    event["links"]["payout"] = payout["id"]
            events.append(self._event("payouts", "paid", {"payout": payout["id"]}, payout_paid_details(), {}))
        return events

    def _new_payout(self, currency: str, fx_currency: str | None, lines: list[PayoutLine]) -> Payout:
        payout_id = new_id("PO", self._rng)
        items = payout_items(lines)
        arrival = arrival_date(lines, self.scenario.company.today)
        payout = new_payout(payout_id, currency, fx_currency, lines, items, arrival, self._stamp(), self.creditor)
        self.payouts[payout_id] = payout
        self.payout_items[payout_id] = items
        return payout

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
