"""What a held or pending decision waits for, in words for the review item and the audit trail (pure).

Each sentence names the data whose change decides the payment again by itself (heal.py for Sage and the
customer map, the payment's own fetch time for GoCardless), so an operator can see whether to act or wait.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from .. import money
from ..matching import Decision
from ..matching.kinds import (
    AMBIGUOUS_MATCH,
    AMOUNT_MISMATCH,
    CURRENCY_UNSUPPORTED,
    CUSTOMER_NOT_FOUND,
    INVOICE_ALREADY_COLLECTED,
    INVOICE_NOT_FOUND,
)

_INVOICE_REASONS = (INVOICE_NOT_FOUND, INVOICE_ALREADY_COLLECTED, AMOUNT_MISMATCH, AMBIGUOUS_MATCH)
_LISTED = 8


def waits_for(
    d: Decision, gocardless_customer: str | None, email: str | None, currency: str, fx_currency: str | None
) -> list[str]:
    """The changes that would decide a held payment again (empty for a matched one)."""
    if d.reason == CUSTOMER_NOT_FOUND:
        who = f"GoCardless customer {gocardless_customer}" + (f" ({email.strip()})" if email else " (no email)")
        return [
            f"a Sage customer for {who}: one Sage customer with that email address (in Sage or corrected in "
            "GoCardless), or metadata sage_customer on the GoCardless customer naming one"
        ]
    if d.reason in _INVOICE_REASONS:
        looked = ", ".join(str(c) for c in list(d.candidates)[:_LISTED]) or "none open"
        return [
            f"a change to Sage customer {d.sage_customer}'s invoices (looked at: {looked}): a new invoice, a "
            "balance or PaymentsToday that moves, a journal update; or the payment's metadata naming others"
        ]
    if d.reason == CURRENCY_UNSUPPORTED:
        paid_in = fx_currency or currency
        return [
            f"a rate for {currency} in the company's fx_rates: GoCardless pays this payment out in {paid_in}, "
            "so no converted amount will come"
        ]
    return []


def pending_waits_for(status: str, cause: str | None, currency: str, home_currency: str) -> list[str]:
    """What a pending payment waits for."""
    if cause == "awaiting_fx_amount":
        return [
            f"GoCardless's converted amount in {home_currency} (fx.fx_amount) of this {currency} payment, given "
            "once its payout's exchange rate is confirmed"
        ]
    if cause == "retry_expected":
        return ["GoCardless's retry of the failed collection"]
    return [f"GoCardless to collect the payment (status {status})"]


def awaits_converted_amount(
    currency: str,
    fx_currency: str | None,
    has_fx_amount: bool,
    home_currency: str,
    rates: Mapping[str, Decimal] | None,
) -> bool:
    """A payment in another currency, with no company rate, whose home amount GoCardless will still give: it
    pays it out in the home currency (`fx.fx_currency`, present from the start when a payment will be
    converted) and has not said the converted amount yet. One paid out in its own (or a third) currency never
    gets one: currency_unsupported."""
    home = home_currency.upper()
    foreign = currency.upper() != home and money.fx_rate(rates, currency) is None
    return foreign and not has_fx_amount and (fx_currency or "").upper() == home
