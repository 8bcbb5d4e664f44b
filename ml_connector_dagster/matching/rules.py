"""The matching rules: settings, decisions, invoice names, and the one-payment path.

``_conclude`` is the rules' precedence written once for one payment (the write-back re-check and the
benchmark baseline use it through :func:`decide_for_customer`); the set-wise twin lives in
:mod:`.vectorised`.  See the package docstring for the public API and the choices made.
"""

from __future__ import annotations

import gc
import json
import math
import re
import string
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from types import MappingProxyType
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ml_connector_dagster import money

MATCHED = "matched"
HELD = "held"

CUSTOMER_NOT_FOUND = "customer_not_found"
INVOICE_NOT_FOUND = "invoice_not_found"
INVOICE_ALREADY_COLLECTED = "invoice_already_collected"
AMOUNT_MISMATCH = "amount_mismatch"
AMBIGUOUS_MATCH = "ambiguous_match"
CURRENCY_UNSUPPORTED = "currency_unsupported"
#: Decided at posting time (Sage refused the write after retries), never by matching.
SAGE_REJECTED = "sage_rejected"
REASON_CODES = (
    CUSTOMER_NOT_FOUND,
    INVOICE_NOT_FOUND,
    INVOICE_ALREADY_COLLECTED,
    AMOUNT_MISMATCH,
    AMBIGUOUS_MATCH,
    CURRENCY_UNSUPPORTED,
    SAGE_REJECTED,
)

RULE_NAMED_INVOICES = "named_invoices"
RULE_EXACT_AMOUNT = "exact_amount"
RULE_OLDEST_FIRST = "oldest_first"

#: AR_OpenInvoice types a payment may be applied to (invoice, debit memo, finance charge).
INVOICE_TYPES = ("IN", "DM", "FC")
#: Most candidates listed on a held payment.
CANDIDATE_LIMIT = 10
ON_TIE_VALUES = ("oldest", "hold")

DECISION_COLUMNS = (
    "payment_id",
    "status",
    "reason",
    "sage_customer",
    "home_amount",
    "allocations",
    "rule",
    "explanation",
    "candidates",
)


@dataclass(frozen=True)
class MatchSettings:
    """Company settings the matching rules depend on."""

    home_currency: str
    on_tie: str = "oldest"
    fx_rates: Mapping[str, Decimal] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self) -> None:
        money.exponent(self.home_currency)  # unknown home currency: fail at configuration time
        if self.on_tie not in ON_TIE_VALUES:
            raise ValueError(f"on_tie must be one of {ON_TIE_VALUES}, not {self.on_tie!r}")
        for code, rate in self.fx_rates.items():
            if isinstance(rate, float):
                raise TypeError(f"fx rate for {code} is a float; use Decimal or a decimal string")


class Decision(NamedTuple):
    """The outcome of matching one payment (one row of :func:`match_payments`); immutable.

    ``allocations`` are ``{"invoice_no", "invoice_type", "amount": Decimal}`` dicts, oldest first,
    adding up to ``home_amount`` when matched; ``candidates`` are invoice numbers (or Sage customer
    keys for ``customer_not_found``) for the review queue.  Treat both lists as read-only.
    """

    payment_id: str
    status: str
    reason: str | None
    sage_customer: str | None
    home_amount: Decimal | None
    allocations: list[dict[str, Any]]
    rule: str | None
    explanation: str
    candidates: list[str]

    @property
    def matched(self) -> bool:
        return self.status == MATCHED

    def as_row(self) -> dict[str, Any]:
        """The decision as a :func:`match_payments` row (a dict, with copies of the lists)."""
        return {
            "payment_id": self.payment_id,
            "status": self.status,
            "reason": self.reason,
            "sage_customer": self.sage_customer,
            "home_amount": self.home_amount,
            "allocations": [dict(a) for a in self.allocations],
            "rule": self.rule,
            "explanation": self.explanation,
            "candidates": list(self.candidates),
        }


# --------------------------------------------------------------------------------------------------
# Names: shared by both paths, mirrored by the SQL expressions below.

_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)
_TOKEN = re.compile(r"[^\W_]+")  # runs of letters and digits (Unicode), as RE2's [\pL\pN]+


def normalize_invoice_no(value: str) -> str:
    """Comparable form of an invoice number: spaces trimmed, ASCII upper case, no leading zeros."""
    trimmed = value.strip(" ").translate(_ASCII_UPPER)
    stripped = trimmed.lstrip("0")
    return stripped if stripped or not trimmed else "0"


def reference_tokens(*texts: object) -> set[str]:
    """Normalised tokens of free texts (split on anything not a letter or digit)."""
    return {normalize_invoice_no(t) for text in texts for t in _TOKEN.findall(_text(text))}


def _metadata_value(metadata: object, key: str) -> str | None:
    """``metadata[key]`` as a string, from a dict or a JSON object string; None if absent or bad."""
    if type(metadata) is dict:  # the common case, without the slower ABC check below
        value = metadata.get(key)
        if type(value) is str or value is None:
            return value
    elif isinstance(metadata, str):
        if key not in metadata:
            return None
        try:
            metadata = json.loads(metadata)
        except ValueError:
            return None
    if not isinstance(metadata, Mapping):
        return None
    value = metadata.get(key)
    if value is None or isinstance(value, (dict, list)):
        return None
    return value if isinstance(value, str) else str(value)


def _metadata_names(metadata: object) -> tuple[tuple[str, str], ...]:
    """``(normalised, as given)`` invoice names of metadata ``sage_invoice``, de-duplicated."""
    value = _metadata_value(metadata, "sage_invoice")
    if value is None:
        return ()
    names: dict[str, str] = {}
    for raw in (part.strip() for part in value.split(",")):
        if raw:
            names.setdefault(normalize_invoice_no(raw), raw)
    return tuple((norm, raw) for norm, raw in names.items())


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def _is_missing(value: object) -> bool:
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


# --------------------------------------------------------------------------------------------------
# Facts and the shared conclusion.


class _Inv(NamedTuple):
    """An invoice as the rules see it: number, type, balance in cents and as a Sage amount."""

    no: str
    typ: str
    cents: int
    amount: Decimal  # money.from_cents(cents), made once: the allocations and explanations show it


class _Facts(NamedTuple):
    """What the rules need to know about one payment's customer invoices (each list oldest first)."""

    missing: tuple[str, ...] = ()  # metadata names the customer does not have, as given
    named: Sequence[_Inv] = ()  # invoices named (metadata or tokens)
    exact: Sequence[_Inv] = ()  # open invoices whose balance is the amount
    run: Sequence[_Inv] = ()  # shortest oldest-first run adding up to it
    open_top: Sequence[str] = ()  # numbers of the first CANDIDATE_LIMIT open invoices
    n_open: int = 0


_NO_FACTS = _Facts()


class _Payment(NamedTuple):
    """A payment as the rules see it (its amount in home cents and as a Sage amount, or None)."""

    payment_id: str
    gocardless_customer: str | None
    currency: str
    sage_customer: str | None
    home_cents: int | None
    home_amount: Decimal | None
    customer_candidates: tuple[str, ...]


def _conclude(p: _Payment, facts: _Facts, settings: MatchSettings) -> Decision:
    """Apply the rules' precedence to the facts (one payment; the set-wise twin is ``vectorised._KIND_SQL``)."""
    cents = p.home_cents
    if cents is None:
        return _held(p, CURRENCY_UNSUPPORTED, _no_home_amount(p.currency, settings))
    if p.sage_customer is None:
        return _held(p, CUSTOMER_NOT_FOUND, _no_sage_customer(p.gocardless_customer), p.customer_candidates)
    if cents <= 0:
        return _held(p, AMOUNT_MISMATCH, f"amount {p.home_amount} is not positive: nothing to apply")
    if facts.missing:
        return _held(
            p,
            INVOICE_NOT_FOUND,
            f"named invoice {', '.join(facts.missing)} not found for customer {p.sage_customer}",
            facts.open_top,
        )
    if facts.named:
        return _conclude_named(p, facts.named)
    if facts.exact:
        return _conclude_exact(p, facts.exact, settings)
    run = facts.run
    if run:
        why = f"oldest first: the {len(run)} oldest open invoices ({', '.join(_nos(run))}) add up to {p.home_amount}"
        return _matched(p, RULE_OLDEST_FIRST, run, why)
    if facts.n_open == 0:
        why = f"customer {p.sage_customer} has no open invoice to apply {p.home_amount} to"
    else:
        why = (
            f"amount {p.home_amount}: no invoice named, none of that balance, and no run of the oldest of "
            f"{facts.n_open} open invoices adds up to it"
        )
    return _held(p, AMOUNT_MISMATCH, why, facts.open_top)


def _conclude_named(p: _Payment, named: list[_Inv]) -> Decision:
    """Rule 1: the payment names invoices of its customer."""
    collected = [inv for inv in named if inv.cents <= 0]
    if collected:
        nos = _nos(collected)
        return _held(p, INVOICE_ALREADY_COLLECTED, f"named invoice {', '.join(nos)} already collected (balance 0)", nos)
    total = sum(inv.cents for inv in named)
    cents = p.home_cents
    if cents > total:
        nos = _nos(named)
        why = f"amount {p.home_amount} exceeds the {money.from_cents(total)} open on named invoice {', '.join(nos)}"
        return _held(p, AMOUNT_MISMATCH, why, nos)
    if cents == total:
        return _matched(p, RULE_NAMED_INVOICES, named, f"named invoices: {', '.join(_nos(named))} paid in full")
    paid, left = [], cents
    for inv in named:  # oldest first, the last one partly
        if left <= 0:
            break
        paid.append(inv)
        left -= inv.cents
    last = paid[-1]
    part = last.cents + left  # left <= 0: what the last invoice did not get
    why = (
        f"named invoices: {p.home_amount} applied oldest first to {', '.join(_nos(paid))}, "
        f"{last.no} partly ({money.from_cents(part)} of {last.amount})"
    )
    return _matched(p, RULE_NAMED_INVOICES, paid, why, last_part=part)


def _conclude_exact(p: _Payment, exact: list[_Inv], settings: MatchSettings) -> Decision:
    """Rule 2: open invoices whose balance equals the amount."""
    first = exact[0]
    if len(exact) == 1:
        return _matched(p, RULE_EXACT_AMOUNT, exact, f"exact amount: invoice {first.no} of {first.amount}")
    if settings.on_tie == "hold":
        why = f"exact amount: {len(exact)} invoices of {first.amount} and on_tie = hold"
        return _held(p, AMBIGUOUS_MATCH, why, _nos(exact))
    why = f"exact amount: oldest of {len(exact)} invoices of {first.amount} ({first.no})"
    return _matched(p, RULE_EXACT_AMOUNT, exact[:1], why)


def _matched(p: _Payment, rule: str, invoices: list[_Inv], why: str, last_part: int | None = None) -> Decision:
    """A matched decision paying ``invoices`` in full (the last one ``last_part`` only, when given)."""
    allocations = [{"invoice_no": inv.no, "invoice_type": inv.typ, "amount": inv.amount} for inv in invoices]
    if last_part is not None:
        allocations[-1]["amount"] = money.from_cents(last_part)
    decision = (p.payment_id, MATCHED, None, p.sage_customer, p.home_amount, allocations, rule, why, [])
    return _new_decision(Decision, decision)


def _held(p: _Payment, reason: str, why: str, candidates: Iterable[str] = ()) -> Decision:
    decision = (p.payment_id, HELD, reason, p.sage_customer, p.home_amount, [], None, why, list(candidates))
    return _new_decision(Decision, decision)


_new_decision = tuple.__new__  # Decision(...) without a Python-level __new__ call: hot path


def _no_home_amount(currency: str, settings: MatchSettings) -> str:
    """Why a payment in ``currency`` has no home-currency amount (both paths write this)."""
    home = settings.home_currency.upper()
    return f"no {home} amount for a {currency} payment: no fx amount in {home} and no rate for {currency}"


def _no_sage_customer(gocardless_customer: str | None) -> str:
    """Why a payment has no Sage customer (both paths write this)."""
    return (f"GoCardless customer {gocardless_customer} resolves to no Sage customer "
            "(no metadata sage_customer naming one, no unique email)")


def _nos(invoices: Iterable[_Inv]) -> list[str]:
    return [inv.no for inv in invoices]


# --------------------------------------------------------------------------------------------------
# One payment (the write-back re-check and the benchmark baseline).


def decide_for_customer(
    payment: Mapping[str, Any], open_invoices: Sequence[Mapping[str, Any]], settings: MatchSettings
) -> Decision:
    """Decide one payment against its customer's current ``AR_OpenInvoice`` rows.

    ``payment`` holds the payment columns of :func:`match_payments` plus ``sage_customer`` (None when
    the customer is not resolved) and optionally ``customer_candidates``.  Rows of other customers
    (by ARDivisionNo-CustomerNo, when given) are ignored.
    """
    home = _home_amount(payment, settings)
    cents = None if home is None else money.to_cents(home)
    p = _Payment(
        payment_id=str(payment["id"]),
        gocardless_customer=_opt_str(payment.get("gocardless_customer")),
        currency=str(payment.get("currency", "")),
        sage_customer=_opt_str(payment.get("sage_customer")),
        home_cents=cents,
        home_amount=None if cents is None else money.from_cents(cents),  # -0.00 rounds to 0.00
        customer_candidates=tuple(payment.get("customer_candidates") or ()),
    )
    if p.sage_customer is None or p.home_cents is None:
        return _conclude(p, _NO_FACTS, settings)
    return _conclude(p, _facts_for(payment, p, _customer_rows(open_invoices, p.sage_customer)), settings)


def _home_amount(payment: Mapping[str, Any], settings: MatchSettings) -> Decimal | None:
    fx_amount = payment.get("fx_amount")
    return money.to_home_amount(
        _minor(payment["amount"], "amount"),
        str(payment["currency"]),
        settings.home_currency,
        _opt_str(payment.get("fx_currency")),
        None if _is_missing(fx_amount) else _minor(fx_amount, "fx_amount"),
        settings.fx_rates,
    )


def _facts_for(payment: Mapping[str, Any], p: _Payment, rows: list[tuple[str, _Inv, tuple]]) -> _Facts:
    """The facts of one payment, from its customer's rows (see :func:`_customer_rows`)."""
    meta = _metadata_names(payment.get("metadata"))
    missing: tuple[str, ...] = ()
    if meta:
        found = {norm for norm, _, _ in rows}
        missing = tuple(raw for norm, raw in meta if norm not in found)
        names = {norm for norm, _ in meta}
    else:
        names = reference_tokens(payment.get("reference"), payment.get("description"))
    open_ = [inv for _, inv, _ in rows if inv.cents > 0]
    return _Facts(
        missing=missing,
        named=[inv for norm, inv, _ in rows if norm in names],
        exact=[inv for inv in open_ if inv.cents == p.home_cents],
        run=_oldest_run(open_, p.home_cents),
        open_top=_nos(open_[:CANDIDATE_LIMIT]),
        n_open=len(open_),
    )


def _oldest_run(open_: list[_Inv], cents: int) -> list[_Inv]:
    """Shortest prefix of the oldest-first open invoices whose balances add up to ``cents``."""
    total = 0
    for k, inv in enumerate(open_, start=1):
        total += inv.cents
        if total == cents:
            return open_[:k]
        if total > cents:
            break
    return []


def _customer_rows(invoices: Sequence[Mapping[str, Any]], sage_customer: str) -> list[tuple[str, _Inv, tuple]]:
    """The customer's IN/DM/FC rows as ``(normalised no, _Inv, sort key)``, oldest first."""
    rows = []
    for inv in invoices:
        if inv.get("InvoiceType") not in INVOICE_TYPES or _is_missing(inv.get("InvoiceNo")):
            continue
        div, cust = inv.get("ARDivisionNo"), inv.get("CustomerNo")
        if div is not None and cust is not None and f"{div}-{cust}" != sage_customer:
            continue
        no, typ = str(inv["InvoiceNo"]), str(inv["InvoiceType"])
        key = (_date_key(inv.get("InvoiceDueDate")), _date_key(inv.get("InvoiceDate")), no, typ)
        cents = _balance_cents(inv.get("Balance"))
        rows.append((normalize_invoice_no(no), _Inv(no, typ, cents, money.from_cents(cents)), key))
    rows.sort(key=lambda row: row[2])
    return rows


def _date_key(value: object) -> tuple[int, str]:
    """Sort key of a date: missing last; strings as given (ISO or YYYYMMDD), dates as ISO."""
    if _is_missing(value):
        return (1, "")
    if isinstance(value, str):
        return (0, value)
    if isinstance(value, (datetime, pd.Timestamp)):
        return (0, value.date().isoformat())
    if isinstance(value, date):
        return (0, value.isoformat())
    if isinstance(value, np.datetime64):
        return (0, pd.Timestamp(value).date().isoformat())
    raise TypeError(f"invoice date must be a date or a string, not {type(value).__name__}")


def _balance_cents(value: object) -> int:
    """Integer cents of a Sage Balance given as Decimal, decimal string or integer (never float)."""
    if isinstance(value, str):
        try:
            value = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"Balance is not a decimal number: {value!r}") from None
    if _is_missing(value):
        raise ValueError("Balance is missing")
    if isinstance(value, float):
        raise TypeError("Balance is a float; pass a Decimal or a decimal string")
    return money.to_cents(value)


def _minor(value: object, name: str) -> int:
    """An integer amount of minor units; floats (even integral ones) are refused."""
    if isinstance(value, (float, np.floating)):
        raise TypeError(f"{name} is a float; pass integer minor units")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    raise TypeError(f"{name} must be integer minor units, not {type(value).__name__}")


def _opt_str(value: object) -> str | None:
    return None if _is_missing(value) else str(value)


@contextmanager
def _gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building hundreds of thousands of small objects.

    Nothing built here forms reference cycles, and with a large heap (the caller's DataFrames of
    Python objects) each automatic collection rescans everything: pausing makes matching ~2x faster.
    On the way out, freeze-then-unfreeze moves the survivors straight to the oldest generation, so
    that they are not all rescanned by the first young collection after resuming.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.freeze()
            gc.unfreeze()
            gc.enable()
