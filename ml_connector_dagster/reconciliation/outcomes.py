"""What each evaluated payment's step means: ledger rows, audit records, review items to open and to close.

Pure: no I/O. One pass over the evaluated payments in payment order (evaluate.py reads and writes). A
payment decided again (it was held, pending or awaiting a reversal) carries the change that brought it
back and its previous status and reason, so the audit trail has both decisions and a review item closed
by automation says what resolved it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

import pandas as pd

from .. import money
from ..matching import Decision
from ..matching.model import Allocation as DecidedAllocation
from ..settings import ReconciliationSettings
from .open_amounts import UnpostedAmounts
from .tables import typed_rows
from .waits import pending_waits_for, waits_for


class EvaluatedPayment(NamedTuple):
    """A payment as the evaluation reads it (its PAYMENT_COLUMNS), with its ledger state and next step."""

    id: str
    amount: int
    currency: str
    status: str
    reference: str | None
    description: str | None
    metadata: str | None
    fx_currency: str | None
    fx_amount: int | None
    gocardless_customer: str | None
    email: str | None
    ledger_status: str | None
    ledger_reason: str | None
    action: str
    cause: str | None
    change: str | None  # what brought a payment it had decided on back (words), None for a new one


@dataclass(frozen=True)
class Closing:
    """A review item automation closes: the payment, the item's kind and the note saying what resolved it."""

    payment_id: str
    kind: str
    note: str


@dataclass
class Outcomes:
    ledger_rows: list[dict[str, Any]] = field(default_factory=list)
    audit: list[tuple[str, str | None, dict[str, Any]]] = field(default_factory=list)
    held: list[dict[str, Any]] = field(default_factory=list)
    reversals: list[dict[str, Any]] = field(default_factory=list)
    closing: list[Closing] = field(default_factory=list)

    def without(self, skipped: set[str]) -> Outcomes:
        """The same outcomes less those of payments whose ledger row moved on meanwhile."""
        return Outcomes(
            self.ledger_rows,
            [a for a in self.audit if a[1] not in skipped],
            [i for i in self.held if i["payment_id"] not in skipped],
            [i for i in self.reversals if i["payment_id"] not in skipped],
            [c for c in self.closing if c.payment_id not in skipped],
        )


def outcomes(
    payments: pd.DataFrame,
    decisions: pd.DataFrame,
    unposted: UnpostedAmounts | None,
    settings: ReconciliationSettings,
    operator_closed: Mapping[str, str],
) -> Outcomes:
    """Ledger rows, audit records, review items to open and to close (one pass, in payment order).

    `operator_closed` maps a held payment whose item a person closed to who did: it is left as it is.
    """
    out = Outcomes()
    by_id = {} if decisions.empty else {d.payment_id: d for d in typed_rows(decisions, Decision, Decision._fields)}
    for p in typed_rows(payments, EvaluatedPayment, EvaluatedPayment._fields):
        if p.id in operator_closed:
            out.audit.append(("payment.unchanged", p.id, {**_state(p), "left_to": operator_closed[p.id]}))
        elif p.action == "match":
            _decided(out, p, by_id[p.id], unposted)
        elif p.action in ("pending", "not_collected"):
            _not_decided(out, p, settings)
        elif p.action == "reversal_required":
            out.ledger_rows.append({**_base(p), "status": "reversal_required", "reason": p.cause})  # keeps the receipt
            item = reversal_details(p.id, p.cause, p.amount, p.currency, settings)
            out.reversals.append(item)
            out.audit.append(("payment.reversal_required", p.id, item))
        elif p.action == "restore":
            out.ledger_rows.append({**_base(p), "status": "posted", "reason": None})
            note = f"resolved automatically: GoCardless collected the payment again (status {p.status}): receipt stands"
            out.closing.append(Closing(p.id, "reversal_required", note))
            out.audit.append(("payment.restored", p.id, {**_state(p), "previous_reason": p.ledger_reason}))
        else:
            out.audit.append(("payment.unchanged", p.id, {**_state(p), **({"cause": p.cause} if p.cause else {})}))
    return out


def _decided(out: Outcomes, p: EvaluatedPayment, d: Decision, unposted: UnpostedAmounts | None) -> None:
    status = "matched" if d.status == "matched" else "held"
    row = {
        **_base(p),
        "status": status,
        "reason": d.reason,
        "sage_customer": d.sage_customer,
        "home_amount": text(d.home_amount),
        "allocations": allocations(d.allocations),
        "rule": d.rule,
        "explanation": d.explanation,
    }
    out.ledger_rows.append(row)
    reduced = {"unposted": named} if unposted is not None and (named := unposted.of(d)) else {}
    waiting = {"waits_for": waits_for(d, p.gocardless_customer, p.email, p.currency, p.fx_currency)} if d.reason else {}
    again = _again(p)
    record = {**row, "inputs": _inputs(p), "candidates": list(d.candidates), **reduced, **waiting, **again}
    out.audit.append(("payment.matched" if status == "matched" else "payment.held", p.id, record))
    if status == "held":
        out.held.append({**review_details(p, d), **reduced, **waiting, **again})
    elif p.ledger_status == "held":
        out.closing.append(Closing(p.id, "held", f"resolved automatically: {p.change}; matched: {d.explanation}"))


def _not_decided(out: Outcomes, p: EvaluatedPayment, settings: ReconciliationSettings) -> None:
    """Pending (not collected yet, a retry coming, a converted amount to come) or not collected."""
    reason = p.cause if p.action == "not_collected" or p.cause == "awaiting_fx_amount" else None
    home = _home_amount(p, settings)
    out.ledger_rows.append({**_base(p), "status": p.action, "reason": reason, "home_amount": text(home)})
    waiting = pending_waits_for(p.status, p.cause, p.currency, settings.home_currency) if p.action == "pending" else []
    details = {"gocardless_status": p.status, "cause": p.cause, **_again(p)}
    out.audit.append((f"payment.{p.action}", p.id, {**details, **({"waits_for": waiting} if waiting else {})}))
    if p.ledger_status == "held":
        why = "payment not collected" if p.action == "not_collected" else "waiting for " + "; ".join(waiting)
        note = why if p.action == "not_collected" else f"resolved automatically: {p.change}; now {why}"
        out.closing.append(Closing(p.id, "held", note))


def _again(p: EvaluatedPayment) -> dict[str, Any]:
    """For a payment decided before: its previous decision and what changed (for the audit trail)."""
    if p.ledger_status not in ("held", "reversal_required") and p.ledger_reason != "awaiting_fx_amount":
        return {}  # new, or the usual way on (pending -> matched): not a decision taken again
    return {
        "decided_again": {"previous_status": p.ledger_status, "previous_reason": p.ledger_reason, "change": p.change}
    }


def _base(p: EvaluatedPayment) -> dict[str, Any]:
    return {
        "payment_id": p.id,
        "expected_status": p.ledger_status,
        "gocardless_customer": p.gocardless_customer,
        "amount_minor": p.amount,
        "currency": p.currency,
        "gocardless_status": p.status,
    }


def _state(p: EvaluatedPayment) -> dict[str, Any]:
    return {"gocardless_status": p.status, "ledger_status": p.ledger_status}


def review_details(p: EvaluatedPayment, d: Decision) -> dict[str, Any]:
    """What the spec asks a held item to carry, for the operator."""
    return {
        "payment_id": p.id,
        "gocardless_customer": p.gocardless_customer,
        "amount_minor": p.amount,
        "currency": p.currency,
        "amount": str(money.to_decimal(p.amount, p.currency)),
        "home_amount": text(d.home_amount),
        "reference": p.reference,
        "reason": d.reason,
        "explanation": d.explanation,
        "sage_customer": d.sage_customer,
        "candidates": list(d.candidates),
    }


def _home_amount(p: EvaluatedPayment, settings: ReconciliationSettings) -> Decimal | None:
    """The amount in Sage's currency, for display of payments that are not matched (pending, not collected)."""
    try:
        return money.to_home_amount(
            p.amount, p.currency, settings.home_currency, p.fx_currency, p.fx_amount, settings.fx_rates
        )
    except money.UnsupportedCurrency:
        return None


def reversal_details(
    payment_id: str, cause: str | None, amount_minor: int, currency: str, settings: ReconciliationSettings
) -> dict[str, Any]:
    home = money.to_home_amount(amount_minor, currency, settings.home_currency, None, None, settings.fx_rates)
    return {
        "payment_id": payment_id,
        "cause": cause,
        "amount_minor": amount_minor,
        "currency": currency,
        "amount": str(money.to_decimal(amount_minor, currency)),
        "home_amount": text(home),
    }


def _inputs(p: EvaluatedPayment) -> dict[str, Any]:
    return {
        "amount": p.amount,
        "currency": p.currency,
        "reference": p.reference,
        "description": p.description,
        "metadata": p.metadata,
        "fx_currency": p.fx_currency,
        "fx_amount": p.fx_amount,
        "gocardless_status": p.status,
    }


def allocations(decided: Sequence[DecidedAllocation] | None) -> list[dict[str, str]]:
    return [
        {"invoice_no": a["invoice_no"], "invoice_type": a["invoice_type"], "amount": str(a["amount"])}
        for a in (decided or [])
    ]


def text(value: Decimal | float | None) -> str | None:
    """An amount as exact text; None when missing (None, or the NaN pandas fills a gap in a column with)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)
