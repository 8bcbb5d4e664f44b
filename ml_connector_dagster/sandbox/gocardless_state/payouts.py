"""Payouts: the money a step's actions move, grouped into one payout per currency (and FX currency).

An action that moves money (`PAYOUT_ITEM_OF`) makes a payout line; a paid-out payment's line also carries
GoCardless's fee. A payout's items are strings of minor units to one decimal ("45.0", "-143.4"), and its
amount is their sum rounded once. The world (world.py) groups a step's lines, gives each payout its id and
`created_at`, and links paid-out payments and their events to it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from ..gocardless_shapes import Creditor, Fx, Payment, Payout, PayoutItem, PayoutItemLinks, Refund
from ..scenario import Action, GoCardlessPayment

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


@dataclass
class PayoutLine:
    """What one action puts in a payout: its group (currency, FX currency), item type and signed amount."""

    key: tuple[str, str | None]
    item_type: str
    tenths: int
    links: PayoutItemLinks
    fee_tenths: int = 0
    fx_amount: int | None = None
    charge_date: str | None = None


def payout_line(
    action: Action,
    payments: Mapping[str, Payment],
    refunds: Mapping[str, Refund],
    payment_rows: Mapping[str, GoCardlessPayment],
) -> PayoutLine | None:
    """The line an applied action adds to this step's payouts, or None if it moves no money.

    Paying out an FX payment also fixes its `fx_amount` and `exchange_rate` (until then it shows only
    `estimated_exchange_rate`).
    """
    kind = PAYOUT_ITEM_OF.get((action.resource, action.action))
    if kind is None:
        return None
    item_type, sign = kind
    if action.resource == "refunds":
        refund = refunds[action.id]
        paid = payments.get(refund["links"]["payment"])  # None while that payment is not created yet
        return PayoutLine(
            (refund["currency"], paid["fx"]["fx_currency"] if paid else None),
            item_type,
            sign * refund["amount"] * 10,
            {"refund": action.id, "payment": refund["links"]["payment"]},
            charge_date=paid["charge_date"] if paid else None,
        )
    payment = payments[action.id]
    fx = payment["fx"]
    line = PayoutLine(
        (payment["currency"], fx["fx_currency"]),
        item_type,
        sign * payment["amount"] * 10,
        {"payment": action.id},
        charge_date=payment["charge_date"],
    )
    if item_type == "payment_paid_out":
        line.fee_tenths = fee_tenths(payment["amount"])
        row = payment_rows.get(payment["id"])
        if row is not None and row.fx_amount and fx["fx_currency"]:
            line.fx_amount = row.fx_amount
            fx["fx_amount"] = row.fx_amount
            fx["exchange_rate"] = fx["estimated_exchange_rate"]
    return line


def payout_items(lines: list[PayoutLine]) -> list[PayoutItem]:
    """Each line's item, followed by its fee's when it has one."""
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
    return items


def new_payout(
    payout_id: str,
    currency: str,
    fx_currency: str | None,
    lines: list[PayoutLine],
    items: list[PayoutItem],
    arrival_date: str,
    created_at: str,
    creditor: Creditor,
) -> Payout:
    """The paid payout of `items`: amount and deducted fees summed from them; for FX, the lines' rate."""
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
    return {
        "id": payout_id,
        "amount": amount,
        "currency": currency,
        "deducted_fees": int((-fees).quantize(Decimal(1), rounding=ROUND_HALF_UP)),
        "arrival_date": arrival_date,
        "created_at": created_at,
        "payout_type": "merchant",
        "reference": f"GC-{payout_id[2:10]}",
        "status": "paid",
        "fx": fx,
        "tax_currency": None,
        "metadata": {},
        "links": {
            "creditor": creditor["id"],
            "creditor_bank_account": creditor["links"]["default_gbp_payout_account"],
        },
    }


def arrival_date(lines: list[PayoutLine], today: date) -> str:
    """Two days after the latest charge date in the payout (the play's dates come from the scenario)."""
    dates = [date.fromisoformat(line.charge_date) for line in lines if line.charge_date]
    day = max(dates) if dates else today
    return (day + timedelta(days=2)).isoformat()
