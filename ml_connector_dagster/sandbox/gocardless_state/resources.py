"""GoCardless's resources as the world first creates them from a scenario's rows, and GoCardless's timestamps.

Each builder is given its id-like values and `created_at` by the world (world.py), which owns the seeded
ids and the clock, so the same scenario, seed and clock build the same resources.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from ..gocardless_shapes import Creditor, Customer, Mandate, Payment, Refund
from ..scenario import Company, GoCardlessCustomer, GoCardlessMandate, GoCardlessPayment, GoCardlessRefund

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


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(text: str) -> datetime:
    """GoCardless timestamps ("2026-11-25T09:13:51.404Z"); a naive value is taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def new_creditor(company: Company, creditor_id: str, created_at: str, payout_account: str) -> Creditor:
    return {
        "id": creditor_id,
        "created_at": created_at,
        "name": company.company_name,
        "address_line1": None,
        "city": None,
        "postal_code": None,
        "country_code": "GB",
        "verification_status": "successful",
        "fx_payout_currency": company.home_currency,
        "can_create_refunds": True,
        "merchant_responsible_for_notifications": True,
        "links": {"default_gbp_payout_account": payout_account},
    }


def new_customer(c: GoCardlessCustomer, created_at: str) -> Customer:
    return {
        "id": c.id,
        "created_at": created_at,
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


def new_mandate(m: GoCardlessMandate, currency: str, created_at: str, bank_account: str, creditor_id: str) -> Mandate:
    """An active mandate, on the scheme of the currency its payments are in."""
    return {
        "id": m.id,
        "created_at": created_at,
        "reference": f"{m.id[-6:]}-MANDATE",
        "status": "active",
        "scheme": SCHEMES.get(currency, "bacs"),
        "next_possible_charge_date": None,
        "payments_require_approval": False,
        "metadata": {},
        "links": {
            "customer_bank_account": bank_account,
            "creditor": creditor_id,
            "customer": m.customer,
        },
    }


def new_payment(p: GoCardlessPayment, created_at: str, creditor_id: str) -> Payment:
    """A payment pending submission; an FX payment shows only its estimated rate until it is paid out."""
    estimated = None
    if p.fx_currency and p.fx_amount:
        estimated = str((Decimal(p.fx_amount) / Decimal(p.amount)).quantize(Decimal("0.000001")))
    return {
        "id": p.id,
        "created_at": created_at,
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
        "links": {"mandate": p.mandate, "creditor": creditor_id},
    }


def new_refund(r: GoCardlessRefund, payment: Payment, created_at: str) -> Refund:
    """A created refund of `payment`, in its currency and on its mandate."""
    return {
        "id": r.id,
        "created_at": created_at,
        "amount": r.amount,
        "currency": payment["currency"],
        "reference": f"REFUND-{r.payment}",
        "status": "created",
        "metadata": {},
        "fx": {"fx_currency": None, "fx_amount": None, "exchange_rate": None, "estimated_exchange_rate": None},
        "links": {"payment": r.payment, "mandate": payment["links"]["mandate"]},
    }
