"""GoCardless resources shaped exactly as GoCardless sends them, for tests that put data in the warehouse.

Every field and its type follow the official Python client's fixtures (gocardless/gocardless-pro-python,
tests/fixtures/payments.json, refunds.json, payouts.json, payout_items.json, events.json): amounts in integer
minor units, payout item and tax amounts as strings of minor units with one decimal, rates as strings,
`fx` always present. Only ids, amounts, statuses and links vary, through the keyword arguments.
"""

from __future__ import annotations

from typing import Any


def payment(pid: str, amount: int = 100000, status: str = "confirmed", **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "amount": amount,
        "amount_refunded": 0,
        "app_fee": None,
        "charge_date": "2024-03-05",
        "created_at": "2024-03-01T09:00:00.000Z",
        "currency": "GBP",
        "description": "Invoice payment",
        "faster_ach": False,
        "fx": {"estimated_exchange_rate": None, "exchange_rate": None, "fx_amount": None, "fx_currency": None},
        "id": pid,
        "links": {"creditor": "CR123", "mandate": "MD123", "payout": None},
        "metadata": {},
        "reference": f"REF-{pid}",
        "retry_if_possible": True,
        "scheme": "bacs",
        "status": status,
    }
    return {**body, **changes}


def refund(rid: str, payment_id: str | None, amount: int, status: str, currency: str = "GBP") -> dict[str, Any]:
    return {
        "amount": amount,
        "created_at": "2024-03-10T12:00:00.000Z",
        "currency": currency,
        "fx": {"estimated_exchange_rate": None, "exchange_rate": None, "fx_amount": None, "fx_currency": None},
        "id": rid,
        "links": {"mandate": "MD123", **({"payment": payment_id} if payment_id else {})},
        "metadata": {},
        "reference": "REFUND",
        "status": status,
    }


def payout(
    poid: str,
    amount: int,
    status: str = "paid",
    currency: str = "GBP",
    deducted_fees: int = 0,
    arrival_date: str | None = "2024-03-08",
    fx: dict[str, Any] | None = None,
    tax_currency: str | None = "GBP",
) -> dict[str, Any]:
    return {
        "amount": amount,
        "arrival_date": arrival_date,
        "created_at": "2024-03-07T09:00:00.000Z",
        "currency": currency,
        "deducted_fees": deducted_fees,
        "fx": fx or {"estimated_exchange_rate": None, "exchange_rate": None, "fx_amount": None, "fx_currency": None},
        "id": poid,
        "links": {"creditor": "CR123", "creditor_bank_account": "BA123"},
        "metadata": {},
        "payout_type": "merchant",
        "reference": f"GC-{poid}",
        "status": status,
        "tax_currency": tax_currency,
    }


def payout_item(
    kind: str,
    amount: str,
    payment_id: str | None = None,
    refund_id: str | None = None,
    taxes: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    links: dict[str, str] = {}
    if payment_id:
        links["payment"] = payment_id
    if refund_id:  # refund items link the refund and the mandate
        links.update({"refund": refund_id, "mandate": "MD123"})
    return {"amount": amount, "links": links, "taxes": taxes or [], "type": kind}


def vat(amount: str, currency: str = "GBP", destination_amount: str | None = None) -> dict[str, Any]:
    """One tax line of a fee item, as GoCardless's fixture has it (`GB_VAT_1`). `destination_amount` is the
    amount in GBP: the same as `amount` for GBP; for another currency None until GoCardless confirms the
    rate (`payouts.tax_exchange_rates_confirmed`)."""
    return {
        "amount": amount,
        "currency": currency,
        "destination_amount": amount if currency == "GBP" and destination_amount is None else destination_amount,
        "destination_currency": "GBP",
        "exchange_rate": None if currency == "GBP" else "1.11205",
        "tax_rate_id": "GB_VAT_1",
    }


def event(eid: str, resource_type: str, action: str, resource_id: str, **details: Any) -> dict[str, Any]:
    singular = resource_type.rstrip("s")
    return {
        "action": action,
        "created_at": "2024-03-05T10:00:00.000Z",
        "details": {"origin": "bank", "cause": action, "description": action, **details},
        "id": eid,
        "links": {singular: resource_id},
        "metadata": {},
        "resource_metadata": {},
        "resource_type": resource_type,
        "source": {"name": "GoCardless", "type": "app"},
    }
