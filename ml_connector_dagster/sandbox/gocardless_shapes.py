"""The JSON the GoCardless stand-in serves, as TypedDicts: resources, their links, events, pages and errors.

Only the fields the stand-in fills, named and nested as GoCardless's API reference has them; the world
(gocardless_state/) builds them, the API (gocardless_api/) serves them and the webhook sender sends the
events. Amounts are integers of minor units, except a payout item's (a string of minor units to one
decimal, "45.0"); timestamps and dates are ISO 8601 strings. The key order of a served object is the
order of the literal that builds it, not of these declarations.
"""

from __future__ import annotations

from typing import Literal, NotRequired, TypedDict, get_args

Metadata = dict[str, str]  # at most 3 keys, as GoCardless allows


class Resource(TypedDict):
    """What every listed resource has: the id a cursor names and the time lists are sorted by."""

    id: str
    created_at: str


class Fx(TypedDict):
    fx_currency: str | None
    fx_amount: int | None
    exchange_rate: str | None
    estimated_exchange_rate: str | None


# --- customers ------------------------------------------------------------------------------------------

CustomerAttribute = Literal[
    "email",
    "given_name",
    "family_name",
    "company_name",
    "address_line1",
    "address_line2",
    "address_line3",
    "city",
    "region",
    "postal_code",
    "country_code",
    "language",
    "phone_number",
    "swedish_identity_number",
    "danish_identity_number",
    "metadata",
]
CUSTOMER_ATTRIBUTES: frozenset[str] = frozenset(get_args(CustomerAttribute))  # what PUT /customers/{id} may set


class Customer(Resource):
    email: str | None
    given_name: str | None
    family_name: str | None
    company_name: str | None
    address_line1: str | None
    address_line2: str | None
    address_line3: str | None
    city: str | None
    region: str | None
    postal_code: str | None
    country_code: str | None
    language: str | None
    phone_number: str | None
    swedish_identity_number: str | None
    danish_identity_number: str | None
    metadata: Metadata


# --- mandates, payments, refunds --------------------------------------------------------------------------


class MandateLinks(TypedDict):
    customer_bank_account: str
    creditor: str
    customer: str


class ConsentParameters(TypedDict):
    """Limits a payer agreed to (VRP, ACH/PAD consent); all null for a plain Direct Debit mandate."""

    end_date: str | None
    max_amount_per_payment: int | None
    max_amount_per_period: int | None
    max_payments_per_period: int | None
    period: str | None
    start_date: str | None


class Mandate(Resource):
    reference: str
    status: str
    scheme: str
    next_possible_charge_date: str | None
    next_possible_standard_ach_charge_date: str | None
    payments_require_approval: bool
    authorisation_source: str | None
    consent_parameters: ConsentParameters  # always an object: the official client reads its fields
    consent_type: str | None
    funds_settlement: str
    mandate_type: str
    verified_at: str | None
    metadata: Metadata
    links: MandateLinks


class PaymentLinks(TypedDict):
    mandate: str
    creditor: str
    payout: NotRequired[str]  # once the payment is paid out


class Payment(Resource):
    charge_date: str | None
    amount: int
    amount_refunded: int
    app_fee: int | None
    faster_ach: bool
    description: str | None
    currency: str
    status: str
    reference: str | None
    metadata: Metadata
    retry_if_possible: bool
    scheme: str | None
    fx: Fx
    links: PaymentLinks


class RefundLinks(TypedDict):
    payment: str
    mandate: str


class Refund(Resource):
    amount: int
    currency: str
    reference: str
    status: str
    metadata: Metadata
    fx: Fx
    links: RefundLinks


# --- payouts ------------------------------------------------------------------------------------------------


class PayoutLinks(TypedDict):
    creditor: str
    creditor_bank_account: str


class Payout(Resource):
    amount: int
    currency: str
    deducted_fees: int  # fees net of fee refunds, VAT included: negative when more was refunded than charged
    arrival_date: str | None  # null until the payout is paid
    payout_type: str
    reference: str
    status: str
    fx: Fx
    tax_currency: str | None
    metadata: Metadata
    links: PayoutLinks


class PayoutItemLinks(TypedDict, total=False):
    payment: str
    refund: str
    mandate: str


class Tax(TypedDict):
    """VAT on a fee item, in minor units to one decimal like the item; converted into the payout's
    `tax_currency` (`destination_*`) at once when the fee is in it, else at `tax_exchange_rates_confirmed`."""

    amount: str
    currency: str
    destination_amount: str | None
    destination_currency: str
    exchange_rate: str | None
    tax_rate_id: str


class PayoutItem(TypedDict):
    """No id and no created_at: GoCardless lists a payout's items by `?payout=`."""

    amount: str
    type: str
    links: PayoutItemLinks
    taxes: list[Tax]  # fee items only (gocardless_fee, surcharge_fee)


# --- events and webhooks --------------------------------------------------------------------------------------


class EventLinks(TypedDict, total=False):
    payment: str
    refund: str
    payout: str
    mandate: str


class EventSource(TypedDict):
    """Who made the event happen: `access_token` for API calls, `gc_team` for GoCardless and the banks."""

    type: str
    name: str


class EventDetails(TypedDict):
    origin: str
    cause: str
    description: str
    scheme: NotRequired[str]  # failures and chargebacks reported by the bank
    reason_code: NotRequired[str]
    will_attempt_retry: NotRequired[bool]  # failed payments


class Event(Resource):
    resource_type: str
    action: str
    links: EventLinks
    details: EventDetails
    metadata: Metadata
    resource_metadata: Metadata
    source: EventSource  # the official client reads its fields: never absent
    customer_notifications: list[dict[str, str | bool]]  # none: the merchant sends its own notifications


class WebhookMeta(TypedDict):
    webhook_id: str


class Webhook(TypedDict):
    """One delivery's body."""

    events: list[Event]
    meta: WebhookMeta


# --- the creditor -----------------------------------------------------------------------------------------------


class CreditorLinks(TypedDict):
    default_gbp_payout_account: str


class Creditor(Resource):
    name: str
    address_line1: str | None
    address_line2: str | None
    address_line3: str | None
    city: str | None
    region: str | None
    postal_code: str | None
    country_code: str
    creditor_type: str
    bank_reference_prefix: str
    logo_url: str | None
    verification_status: str
    fx_payout_currency: str
    can_create_refunds: bool
    custom_payment_pages_enabled: bool
    mandate_imports_enabled: bool
    merchant_responsible_for_notifications: bool
    scheme_identifiers: list[dict[str, str | int | bool | None]]  # none listed by the stand-in
    links: CreditorLinks


# --- list pages and errors ------------------------------------------------------------------------------------


class Cursors(TypedDict):
    before: str | None
    after: str | None  # null on the last page


class ListMeta(TypedDict):
    cursors: Cursors
    limit: int


class ErrorDetail(TypedDict):
    """One entry of `error.errors`: a reason, or the field a validation failure is about."""

    message: str
    reason: NotRequired[str]
    field: NotRequired[str]
    request_pointer: NotRequired[str]


class Error(TypedDict):
    message: str
    documentation_url: str
    type: str
    request_id: str
    code: int
    errors: list[ErrorDetail]


class ErrorBody(TypedDict):
    error: Error
