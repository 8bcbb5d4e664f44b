"""What each scenario action does: the status it gives a payment or refund, and the event GoCardless creates.

The tables carry GoCardless's words: statuses, and each event's details (origin, cause, description; a bank
failure or chargeback adds the mandate's scheme and the bank's reason code, whose cause depends on the
scheme). The world (world.py) applies them step by step.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..gocardless_shapes import Event, EventDetails, EventLinks, EventSource, Mandate, Metadata, Payment

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
    "resubmission_requested": "pending_submission",  # GoCardless retries it: submitted, confirmed... follow
}
# None: the action is an event only (a refund's money deducted from a payout), the status stays.
REFUND_STATUS: dict[str, str | None] = {
    "created": "pending_submission",
    "submitted": "submitted",
    "paid": "paid",
    "failed": "bounced",
    "refund_settled": None,
    "funds_returned": "funds_returned",
    "cancelled": "cancelled",
}
# (origin, cause, description) as GoCardless writes them; a bank's come from BANK_REASONS by scheme.
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
    "chargeback_cancelled": ("bank", "payment_confirmed", "The customer's bank has cancelled the chargeback."),
    "chargeback_settled": ("gocardless", "chargeback_settled", "This chargeback has been deducted from a payout."),
    "late_failure_settled": (
        "gocardless",
        "late_failure_settled",
        "This late failure has been deducted from a payout.",
    ),
    "resubmission_requested": (
        "gocardless",
        "payment_retried",
        "The payment will be resubmitted to the banks: GoCardless is retrying it.",
    ),
    "surcharge_fee_debited": (
        "gocardless",
        "surcharge_fee_debited",
        "A surcharge fee for this chargeback has been deducted from a payout.",
    ),
}
# The bank's reason code of a failure or chargeback, per scheme, and the cause GoCardless gives it: Bacs
# ARUDD-0 is "refer to payer"; SEPA AM04 is insufficient funds, MD06 a refund the payer asked their bank for
# (MD01, no valid mandate, would be mandate_cancelled). Other schemes: the generic causes, reason code "0".
BANK_REASONS: dict[str, dict[str, tuple[str, str | None, str | None]]] = {
    "bacs": {
        "failed": ("ARUDD-0", "refer_to_payer", "The customer's bank asked them to contact it (refer to payer)."),
        "charged_back": ("DDICA-1", None, None),
    },
    "sepa_core": {
        "failed": ("AM04", "insufficient_funds", None),
        "charged_back": (
            "MD06",
            "refund_requested",
            "The customer asked their bank to refund this payment.",
        ),
    },
}
REFUND_DETAILS = {
    "created": ("api", "refund_created", "The refund has been created, and will be submitted in the next batch."),
    "submitted": ("gocardless", "refund_submitted", "The refund has been submitted to the banks."),
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
    "cancelled": ("api", "refund_cancelled", "The refund was cancelled before it was submitted to the banks."),
}
PAYOUT_DETAILS = {
    "paid": ("gocardless", "payout_paid", "GoCardless has transferred the payout to the creditor's bank account."),
    "fx_rate_confirmed": (
        "gocardless",
        "payout_fx_rate_confirmed",
        "The exchange rate for the payout has been confirmed and will not change.",
    ),
    "tax_exchange_rates_confirmed": (
        "gocardless",
        "payout_tax_exchange_rates_confirmed",
        "The exchange rates for the taxes (such as VAT) on this payout have been confirmed and will not change.",
    ),
}
# Who an event's origin says acted: the merchant's access token for API calls, GoCardless for the rest.
SOURCES: dict[str, EventSource] = {
    "api": {"type": "access_token", "name": "Sandbox access token"},
    "gocardless": {"type": "gc_team", "name": "GoCardless"},
    "bank": {"type": "gc_team", "name": "GoCardless"},
}


def payment_details(
    action: str, payment: Payment, mandates: Mapping[str, Mandate], will_attempt_retry: bool = False
) -> EventDetails:
    """The details of a payment event; a bank's (failure, chargeback) names the payment's mandate's scheme, its
    reason code and the cause that code means; a failure says whether GoCardless will retry the payment."""
    origin, cause, description = PAYMENT_DETAILS[action]
    details: EventDetails = {"origin": origin, "cause": cause, "description": description}
    if origin == "bank" and action in ("failed", "charged_back"):
        scheme = mandates[payment["links"]["mandate"]]["scheme"]
        code, bank_cause, bank_description = BANK_REASONS.get(scheme, {}).get(action, ("0", None, None))
        details["cause"] = bank_cause or cause
        details["description"] = bank_description or description
        details["scheme"] = scheme
        details["reason_code"] = code
        if action == "failed":
            details["will_attempt_retry"] = will_attempt_retry
    return details


def refund_details(action: str) -> EventDetails:
    origin, cause, description = REFUND_DETAILS[action]
    return {"origin": origin, "cause": cause, "description": description}


def payout_details(action: str) -> EventDetails:
    origin, cause, description = PAYOUT_DETAILS[action]
    return {"origin": origin, "cause": cause, "description": description}


def new_event(
    event_id: str,
    created_at: str,
    resource_type: str,
    action: str,
    links: EventLinks,
    details: EventDetails,
    resource_metadata: Metadata,
) -> Event:
    return {
        "id": event_id,
        "created_at": created_at,
        "resource_type": resource_type,
        "action": action,
        "links": links.copy(),
        "details": details,
        "metadata": {},
        "resource_metadata": dict(resource_metadata),
        "source": SOURCES[details["origin"]].copy(),
        "customer_notifications": [],
    }
