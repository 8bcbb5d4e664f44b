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
        "address_line2": None,
        "address_line3": None,
        "city": None,
        "region": None,
        "postal_code": None,
        "country_code": "GB",
        "creditor_type": "company",
        "bank_reference_prefix": "GC",
        "logo_url": None,
        "verification_status": "successful",
        "fx_payout_currency": company.home_currency,
        "can_create_refunds": True,
        "custom_payment_pages_enabled": False,
        "mandate_imports_enabled": False,
        "merchant_responsible_for_notifications": True,
        "scheme_identifiers": [],
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
        "next_possible_standard_ach_charge_date": None,
        "payments_require_approval": False,
        "authorisation_source": None,
        "consent_parameters": {
            "end_date": None,
            "max_amount_per_payment": None,
            "max_amount_per_period": None,
            "max_payments_per_period": None,
            "period": None,
            "start_date": None,
        },
        "consent_type": None,
        "funds_settlement": "managed",
        "mandate_type": "bank_debit",
        "verified_at": None,
        "metadata": {},
        "links": {
            "customer_bank_account": bank_account,
            "creditor": creditor_id,
            "customer": m.customer,
        },
    }


def new_payment(p: GoCardlessPayment, created_at: str, creditor_id: str) -> Payment:
    """A payment pending submission; an FX payment shows only its estimated rate until its payout's rate is
    confirmed."""
    estimated = rate_text(fx_rate(p)) if p.fx_currency and p.fx_amount else None
    return {
        "id": p.id,
        "created_at": created_at,
        "charge_date": p.charge_date.isoformat() if p.charge_date else None,
        "amount": p.amount,
        "amount_refunded": 0,
        "app_fee": None,
        "faster_ach": False,
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


def fx_rate(p: GoCardlessPayment) -> Decimal:
    """The rate the scenario gives an FX payment: its `fx_amount` over its `amount` (both minor units)."""
    return Decimal(p.fx_amount or 0) / Decimal(p.amount)


def rate_text(rate: Decimal) -> str:
    """Exchange rates as GoCardless writes them: a decimal string with 10 places ("0.8600000000")."""
    return str(rate.quantize(Decimal("0.0000000001")))


def new_refund(r: GoCardlessRefund, payment: Payment, created_at: str) -> Refund:
    """A refund of `payment`, in its currency and on its mandate, waiting for the next submission batch."""
    return {
        "id": r.id,
        "created_at": created_at,
        "amount": r.amount,
        "currency": payment["currency"],
        "reference": f"REFUND-{r.payment}",
        "status": "pending_submission",
        "metadata": {},
        "fx": {"fx_currency": None, "fx_amount": None, "exchange_rate": None, "estimated_exchange_rate": None},
        "links": {"payment": r.payment, "mandate": payment["links"]["mandate"]},
    }
