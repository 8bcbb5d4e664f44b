"""The facts the rules conclude from, for one payment: its home amount, its customer's invoices, its names.

:func:`payment_facts` reads a payment dict, :func:`customer_rows` a customer's ``AR_OpenInvoice`` rows
(oldest first) and :func:`invoice_facts` gathers what the rules ask about them: the named invoices, the
open ones of exactly the amount, the shortest oldest-first run adding up to it.  The set-wise path
gathers the same facts in SQL (:mod:`.sql_text`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from decimal import Decimal
from typing import NamedTuple, TypeAlias

from ml_connector_dagster import money
from ml_connector_dagster.matching.inputs import (
    balance_cents,
    date_key,
    is_missing,
    metadata_names,
    minor_units,
    normalize_invoice_no,
    opt_str,
    payments_today_cents,
    reference_tokens,
)
from ml_connector_dagster.matching.model import CANDIDATE_LIMIT, INVOICE_TYPES, MatchSettings

__all__ = [
    "NO_FACTS",
    "CustomerRow",
    "Facts",
    "Invoice",
    "Payment",
    "customer_rows",
    "invoice_facts",
    "oldest_run",
    "payment_facts",
]


class Invoice(NamedTuple):
    """An invoice as the rules see it: number, type, open amount in cents and as a Sage amount, Balance in cents.

    The open amount is what is still available: ``Balance`` less ``PaymentsToday`` (receipts entered but not
    posted by Sage's journal update, and, when the caller adds them, this product's own not in Sage yet).
    """

    no: str
    typ: str
    cents: int  # the open amount
    amount: Decimal  # money.from_cents(cents), made once: the allocations and explanations show it
    balance: int  # Sage's Balance: above 0 with no open amount means unposted receipts consumed it


class Facts(NamedTuple):
    """What the rules need to know about one payment's customer invoices (each list oldest first)."""

    missing: tuple[str, ...] = ()  # metadata names the customer does not have, as given
    named: Sequence[Invoice] = ()  # invoices named (metadata or tokens)
    exact: Sequence[Invoice] = ()  # open invoices whose open amount is the amount
    run: Sequence[Invoice] = ()  # shortest oldest-first run adding up to it
    open_top: Sequence[str] = ()  # numbers of the first CANDIDATE_LIMIT open invoices
    n_open: int = 0


#: The facts of a payment decided before its invoices are looked at (no home amount, no customer).
NO_FACTS = Facts()


class Payment(NamedTuple):
    """A payment as the rules see it (its amount in home cents and as a Sage amount, or None)."""

    payment_id: str
    gocardless_customer: str | None
    currency: str
    sage_customer: str | None
    home_cents: int | None
    home_amount: Decimal | None
    customer_candidates: tuple[str, ...]


#: Sort key of an invoice row: due date, invoice date (see :func:`.inputs.date_key`), number, type.
SortKey: TypeAlias = tuple[tuple[int, str], tuple[int, str], str, str]
#: One of a customer's invoice rows: ``(normalised number, invoice, sort key)``.
CustomerRow: TypeAlias = tuple[str, Invoice, SortKey]


def payment_facts(payment: Mapping[str, object], settings: MatchSettings) -> Payment:
    """A payment dict (the columns of ``match_payments`` plus ``sage_customer``) as the rules see it."""
    home = _home_amount(payment, settings)
    cents = None if home is None else money.to_cents(home)
    candidates = payment.get("customer_candidates")
    return Payment(
        payment_id=str(payment["id"]),
        gocardless_customer=opt_str(payment.get("gocardless_customer")),
        currency=str(payment.get("currency", "")),
        sage_customer=opt_str(payment.get("sage_customer")),
        home_cents=cents,
        home_amount=None if cents is None else money.from_cents(cents),  # -0.00 rounds to 0.00
        customer_candidates=tuple(map(str, candidates)) if isinstance(candidates, Iterable) and candidates else (),
    )


def _home_amount(payment: Mapping[str, object], settings: MatchSettings) -> Decimal | None:
    fx_amount = payment.get("fx_amount")
    return money.to_home_amount(
        minor_units(payment["amount"], "amount"),
        str(payment["currency"]),
        settings.home_currency,
        opt_str(payment.get("fx_currency")),
        None if is_missing(fx_amount) else minor_units(fx_amount, "fx_amount"),
        settings.fx_rates,
    )


def invoice_facts(payment: Mapping[str, object], cents: int, rows: Sequence[CustomerRow]) -> Facts:
    """The facts of a payment of ``cents`` (home currency), from its customer's rows (:func:`customer_rows`)."""
    meta = metadata_names(payment.get("metadata"))
    missing: tuple[str, ...] = ()
    if meta:
        found = {norm for norm, _, _ in rows}
        missing = tuple(raw for norm, raw in meta if norm not in found)
        names = {norm for norm, _ in meta}
    else:
        names = reference_tokens(payment.get("reference"), payment.get("description"))
    open_ = [inv for _, inv, _ in rows if inv.cents > 0]
    return Facts(
        missing=missing,
        named=[inv for norm, inv, _ in rows if norm in names],
        exact=[inv for inv in open_ if inv.cents == cents],
        run=oldest_run(open_, cents),
        open_top=[inv.no for inv in open_[:CANDIDATE_LIMIT]],
        n_open=len(open_),
    )


def oldest_run(open_: Sequence[Invoice], cents: int) -> Sequence[Invoice]:
    """Shortest prefix of the oldest-first open invoices whose open amounts add up to ``cents``."""
    total = 0
    for k, inv in enumerate(open_, start=1):
        total += inv.cents
        if total == cents:
            return open_[:k]
        if total > cents:
            break
    return []


def customer_rows(invoices: Sequence[Mapping[str, object]], sage_customer: str) -> list[CustomerRow]:
    """The customer's IN/DM/FC rows, oldest first (rows of other customers, when they say so, are skipped)."""
    rows: list[CustomerRow] = []
    for inv in invoices:
        if inv.get("InvoiceType") not in INVOICE_TYPES or is_missing(inv.get("InvoiceNo")):
            continue
        div, cust = inv.get("ARDivisionNo"), inv.get("CustomerNo")
        if div is not None and cust is not None and f"{div}-{cust}" != sage_customer:
            continue
        no, typ = str(inv["InvoiceNo"]), str(inv["InvoiceType"])
        key = (date_key(inv.get("InvoiceDueDate")), date_key(inv.get("InvoiceDate")), no, typ)
        balance = balance_cents(inv.get("Balance"))
        cents = balance - payments_today_cents(inv.get("PaymentsToday"))
        rows.append((normalize_invoice_no(no), Invoice(no, typ, cents, money.from_cents(cents), balance), key))
    rows.sort(key=lambda row: row[2])
    return rows
