"""What each scenario action does: the status it gives a payment or refund, and the event GoCardless creates.

The tables carry GoCardless's words: statuses, and each event's details (origin, cause, description; a bank
failure adds the mandate's scheme and a reason code). The world (world.py) applies them step by step.
"""

from __future__ import annotations

from collections.abc import Mapping

from ..gocardless_shapes import Event, EventDetails, EventLinks, Mandate, Metadata, Payment

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
}
REFUND_STATUS = {
    "created": "created",
    "paid": "paid",
    "failed": "bounced",
    "refund_settled": "paid",
    "funds_returned": "funds_returned",
}
# (origin, cause, description) as GoCardless writes them; bank failures add scheme and reason_code.
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
    "chargeback_cancelled": ("bank", "chargeback_cancelled", "The customer's bank has cancelled the chargeback."),
    "chargeback_settled": ("gocardless", "chargeback_settled", "This chargeback has been deducted from a payout."),
    "late_failure_settled": (
        "gocardless",
        "late_failure_settled",
        "This late failure has been deducted from a payout.",
    ),
}
BANK_REASON_CODES = {
    "bacs": {"failed": "ARUDD-0", "charged_back": "DDICA-1"},
    "sepa_core": {"failed": "AM04", "charged_back": "MD01"},
}
REFUND_DETAILS = {
    "created": ("api", "refund_created", "The refund has been created, and will be submitted in the next batch."),
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
}


def payment_details(action: str, payment: Payment, mandates: Mapping[str, Mandate]) -> EventDetails:
    """The details of a payment event; a bank's (failure, chargeback) names the payment's mandate's scheme."""
    origin, cause, description = PAYMENT_DETAILS[action]
    details: EventDetails = {"origin": origin, "cause": cause, "description": description}
    if origin == "bank":
        scheme = mandates[payment["links"]["mandate"]]["scheme"]
        details["scheme"] = scheme
        details["reason_code"] = BANK_REASON_CODES.get(scheme, {}).get(action, "0")
        if action == "failed":
            details["will_attempt_retry"] = False
    return details


def refund_details(action: str) -> EventDetails:
    origin, cause, description = REFUND_DETAILS[action]
    return {"origin": origin, "cause": cause, "description": description}


def payout_paid_details() -> EventDetails:
    return {
        "origin": "gocardless",
        "cause": "payout_paid",
        "description": "GoCardless has transferred the payout to the creditor's bank account.",
    }


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
    }
