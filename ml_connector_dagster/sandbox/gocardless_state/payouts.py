"""Payouts: the money a step's actions move, netted into positive payouts per currency (and FX currency).

An action that moves money makes payout lines (`action_lines`): a payment paid out is a credit with
GoCardless's fee (VAT included) as a debit; a settled late failure or chargeback is a debit with the fee
refunded, and a chargeback adds a surcharge fee (refunded if the chargeback is cancelled after it was
settled); a refund deducted from a payout (`refund_settled`) is a debit, its funds returned a credit. Fee
items carry their VAT in `taxes`.

The world (world.py) nets each step's lines per group with what earlier steps carried: a payout is only
made when the sum is positive, otherwise everything carries to the group's next step. A payout's items
are strings of minor units to one decimal ("45.0", "-143.4") and its amount is their sum rounded once.
A payout of converted payments (FX) is created `pending` with neither rate nor converted amount (only an
estimate); `confirm_fx` fixes them at the next step. A fee's VAT in another currency than the merchant's
tax currency is converted by `confirm_taxes`, at the next step too.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from ..gocardless_shapes import Creditor, Payment, Payout, PayoutItem, PayoutItemLinks, Refund, Tax
from ..scenario import Action, GoCardlessPayment
from .resources import fx_rate, parse_iso, rate_text

FEE_CAP_TENTHS = 4000  # GoCardless-like fee: 1% + 20 minor units, capped at 400; kept in tenths of a unit
SURCHARGE_TENTHS = 1500  # the stand-in's chargeback surcharge: 150 minor units before VAT
VAT_RATE = Decimal("0.20")
VAT_RATE_ID = "GB_VAT_1"
TAX_CURRENCIES = {"GB": "GBP", "FR": "EUR"}  # the merchants GoCardless charges tax on its fees to, by country
FEE_TYPES = frozenset({"gocardless_fee", "surcharge_fee", "app_fee"})  # what `deducted_fees` sums

Group = tuple[str, str | None]  # (currency, FX currency): one payout per group and step


def fee_tenths(amount: int) -> int:
    """The stand-in's fee for collecting `amount` minor units, in tenths of a minor unit (before VAT)."""
    return min(amount // 10 + 200, FEE_CAP_TENTHS)


def vat_tenths(fee: int) -> int:
    return int((Decimal(fee) * VAT_RATE).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def tenths_text(tenths: int) -> str:
    """Payout item amounts are strings of minor units with one decimal, e.g. "45.0", "-143.4"."""
    sign = "-" if tenths < 0 else ""
    return f"{sign}{abs(tenths) // 10}.{abs(tenths) % 10}"


def text_tenths(text: str) -> int:
    return int(Decimal(text) * 10)


def whole(tenths: int) -> int:
    """Tenths of a minor unit rounded once to minor units, half away from zero."""
    return int((Decimal(tenths) / 10).quantize(Decimal(1), rounding=ROUND_HALF_UP))


@dataclass
class PayoutLine:
    """One payout item an action makes: its group, the item, its signed amount in tenths, and what it tells
    the payout: the payment it pays out, the payment's charge date, the scenario's rate of an FX payment."""

    group: Group
    item: PayoutItem
    tenths: int
    paid_out: str | None = None
    charge_date: str | None = None
    rate: Decimal | None = None


@dataclass
class Unconfirmed:
    """A payout waiting for the next step: its FX rate (FX payouts) and its VAT's exchange rate."""

    payout_id: str
    fx_rate: Decimal | None
    tax_rate: Decimal | None
    arrival_date: str
    payments: list[str] = field(default_factory=list)


def action_lines(
    action: Action,
    history: Sequence[str],
    payments: Mapping[str, Payment],
    refunds: Mapping[str, Refund],
    payment_rows: Mapping[str, GoCardlessPayment],
    tax_currency: str | None,
) -> list[PayoutLine]:
    """The payout lines of an action just applied; `history` is what happened to the resource before it."""
    if action.resource == "refunds":
        return _refund_lines(action.action, history, refunds[action.id], payments, payment_rows)
    payment = payments[action.id]
    row = payment_rows.get(action.id)
    money = _Money(payment, row, tax_currency)
    if "paid_out" not in history and action.action != "paid_out":
        return []  # nothing was paid out yet: a failure or chargeback takes back nothing
    if action.action == "paid_out":
        return money.paid_out()
    if action.action == "late_failure_settled":
        return [money.line("payment_failed", -1), money.fee("gocardless_fee", fee_tenths(payment["amount"]), 1)]
    if action.action == "chargeback_settled":
        return [
            money.line("payment_charged_back", -1),
            money.fee("gocardless_fee", fee_tenths(payment["amount"]), 1),
            money.fee("surcharge_fee", SURCHARGE_TENTHS, -1),
        ]
    if action.action == "chargeback_cancelled" and "chargeback_settled" in history:
        return [*money.paid_out(), money.fee("surcharge_fee", SURCHARGE_TENTHS, 1)]
    return []


@dataclass
class _Money:
    payment: Payment
    row: GoCardlessPayment | None
    tax_currency: str | None

    @property
    def group(self) -> Group:
        return (self.payment["currency"], self.payment["fx"]["fx_currency"])

    def paid_out(self) -> list[PayoutLine]:
        credit = self.line("payment_paid_out", 1)
        credit.paid_out = self.payment["id"]
        return [credit, self.fee("gocardless_fee", fee_tenths(self.payment["amount"]), -1)]

    def line(self, item_type: str, sign: int) -> PayoutLine:
        tenths = sign * self.payment["amount"] * 10
        rate = fx_rate(self.row) if self.row and self.row.fx_amount and self.group[1] else None
        item: PayoutItem = {"amount": tenths_text(tenths), "type": item_type, "links": self._links(), "taxes": []}
        return PayoutLine(self.group, item, tenths, charge_date=self.payment["charge_date"], rate=rate)

    def fee(self, item_type: str, fee: int, sign: int) -> PayoutLine:
        """A fee debited (sign -1) or refunded (+1), VAT included; its VAT is positive when charged."""
        vat = vat_tenths(fee) if self.tax_currency else 0
        tenths = sign * (fee + vat)
        item: PayoutItem = {
            "amount": tenths_text(tenths),
            "type": item_type,
            "links": self._links(),
            "taxes": [_tax(-sign * vat, self.payment["currency"], self.tax_currency)] if self.tax_currency else [],
        }
        return PayoutLine(self.group, item, tenths, charge_date=self.payment["charge_date"])

    def _links(self) -> PayoutItemLinks:
        return {"payment": self.payment["id"]}


def _tax(tenths: int, currency: str, tax_currency: str) -> Tax:
    same = currency == tax_currency
    return {
        "amount": tenths_text(tenths),
        "currency": currency,
        "destination_amount": tenths_text(tenths) if same else None,
        "destination_currency": tax_currency,
        "exchange_rate": None,
        "tax_rate_id": VAT_RATE_ID,
    }


def _refund_lines(
    action: str,
    history: Sequence[str],
    refund: Refund,
    payments: Mapping[str, Payment],
    payment_rows: Mapping[str, GoCardlessPayment],
) -> list[PayoutLine]:
    """A refund deducted from a payout is a debit (`payment_refunded` of a payment, `refund` of none); its
    funds returned after it failed are a credit, only if they had been deducted."""
    if action == "refund_settled":
        item_type, sign = ("payment_refunded" if refund["links"].get("payment") else "refund"), -1
    elif action == "funds_returned" and "refund_settled" in history:
        item_type, sign = "refund_funds_returned", 1
    else:
        return []
    payment = payments.get(refund["links"]["payment"])
    row = payment_rows.get(refund["links"]["payment"])
    fx_currency = payment["fx"]["fx_currency"] if payment else None
    tenths = sign * refund["amount"] * 10
    links: PayoutItemLinks = {
        "refund": refund["id"],
        "payment": refund["links"]["payment"],
        "mandate": refund["links"]["mandate"],
    }
    item: PayoutItem = {"amount": tenths_text(tenths), "type": item_type, "links": links, "taxes": []}
    return [
        PayoutLine(
            (refund["currency"], fx_currency),
            item,
            tenths,
            charge_date=payment["charge_date"] if payment else None,
            rate=fx_rate(row) if row and row.fx_amount and fx_currency else None,
        )
    ]


def net_amount(lines: Sequence[PayoutLine]) -> int:
    """What a payout of these lines would be: their sum rounded once (minor units)."""
    return whole(sum(line.tenths for line in lines))


def weighted_rate(lines: Sequence[PayoutLine]) -> Decimal | None:
    """The FX rate of a payout: its lines' rates weighted by their amounts, or None when none has one."""
    rated = [(abs(line.tenths), line.rate) for line in lines if line.rate is not None]
    weight = sum(w for w, _ in rated)
    if not weight:
        return None
    return sum((w * r for w, r in rated), Decimal(0)) / weight


def new_payout(
    payout_id: str,
    group: Group,
    lines: Sequence[PayoutLine],
    created_at: str,
    creditor: Creditor,
    tax_currency: str | None,
    estimated_rate: Decimal | None,
) -> Payout:
    """The payout of `lines`: amount and deducted fees summed from the items. Paid, with its arrival date;
    an FX payout `pending`, with only an estimated rate, until `confirm_fx`."""
    currency, fx_currency = group
    fees = sum(line.tenths for line in lines if line.item["type"] in FEE_TYPES)
    pending = fx_currency is not None
    return {
        "id": payout_id,
        "amount": net_amount(lines),
        "currency": currency,
        "deducted_fees": whole(-fees),
        "arrival_date": None if pending else arrival_date(lines, created_at),
        "created_at": created_at,
        "payout_type": "merchant",
        "reference": f"GC-{payout_id[2:10]}",
        "status": "pending" if pending else "paid",
        "fx": {
            "fx_currency": fx_currency,
            "fx_amount": None,
            "exchange_rate": None,
            "estimated_exchange_rate": rate_text(estimated_rate) if pending and estimated_rate else None,
        },
        "tax_currency": tax_currency,
        "metadata": {},
        "links": {
            "creditor": creditor["id"],
            "creditor_bank_account": creditor["links"]["default_gbp_payout_account"],
        },
    }


def confirm_fx(payout: Payout, rate: Decimal, arrival: str) -> None:
    """`payouts.fx_rate_confirmed`: the rate and the converted amount are final, the estimate goes, it is paid."""
    payout["fx"]["fx_amount"] = int((Decimal(payout["amount"]) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    payout["fx"]["exchange_rate"] = rate_text(rate)
    payout["fx"]["estimated_exchange_rate"] = None
    payout["status"] = "paid"
    payout["arrival_date"] = arrival


def confirm_payment_fx(payment: Payment, row: GoCardlessPayment) -> None:
    """With its payout's rate confirmed, an FX payment's converted amount and rate are set, the estimate goes."""
    payment["fx"]["fx_amount"] = row.fx_amount
    payment["fx"]["exchange_rate"] = rate_text(fx_rate(row))
    payment["fx"]["estimated_exchange_rate"] = None


def confirm_taxes(items: Sequence[PayoutItem], rate: Decimal) -> None:
    """`payouts.tax_exchange_rates_confirmed`: VAT in another currency gets its amount in the tax currency."""
    for item in items:
        for tax in item["taxes"]:
            if tax["destination_amount"] is None:
                converted = (text_tenths(tax["amount"]) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP)
                tax["destination_amount"] = tenths_text(int(converted))
                tax["exchange_rate"] = rate_text(rate)


def needs_tax_rates(items: Sequence[PayoutItem]) -> bool:
    return any(tax["destination_amount"] is None for item in items for tax in item["taxes"])


def arrival_date(lines: Sequence[PayoutLine], created_at: str) -> str:
    """Two days after the latest charge date in the payout, and never before the payout was created."""
    dates = [date.fromisoformat(line.charge_date) for line in lines if line.charge_date]
    created = parse_iso(created_at).date()
    return max([day + timedelta(days=2) for day in dates] + [created]).isoformat()
