"""Matching GoCardless payments to Sage 100 open invoices: the rules of reference/reconciliation.md.

Pure: data in, decisions out.  No network, no files, no Dagster; DuckDB is used only as an in-memory
SQL engine so that a million open invoices are matched set-wise, not in a per-payment Python loop.

Public API
----------
``MatchSettings(home_currency, on_tie="oldest", fx_rates={})``
    Company settings the rules depend on (``on_tie`` is ``"oldest"`` or ``"hold"``; ``fx_rates`` are
    home-currency units per one foreign unit, as Decimal or decimal strings).

``resolve_customers(gc_customers, sage_customers) -> DataFrame``
    "Which Sage customer", rules 1-3.  In: GoCardless customers (``id``, ``email``, ``metadata``
    as dict or JSON string with ``sage_customer = "DD-CUSTNO"``; optional ``company_name``,
    ``given_name``, ``family_name`` for candidates) and Sage customers (``ARDivisionNo``,
    ``CustomerNo``, ``CustomerName``, ``EmailAddress``).  Out: one row per GoCardless customer with
    ``gocardless_customer``, ``sage_customer`` (``"01-ABF"`` or None), ``resolved_by``
    (``"metadata"``, ``"email"`` or None) and ``candidates`` (likely ``"DD-CUSTNO"`` keys when
    unresolved: same email, same name, same CustomerNo in another division; at most 10).

``match_payments(payments, customer_map, invoices, settings) -> DataFrame``
    The vectorised path.  ``payments``: ``id``, ``amount`` (integer minor units), ``currency``,
    ``reference``, ``description``, ``metadata`` (dict or JSON string; key ``sage_invoice``),
    ``fx_currency``, ``fx_amount`` (integer minor units or missing), ``gocardless_customer``.
    ``customer_map``: the output of :func:`resolve_customers`.  ``invoices``: ``AR_OpenInvoice`` rows
    (``ARDivisionNo``, ``CustomerNo``, ``InvoiceNo``, ``InvoiceType``, ``InvoiceDate``,
    ``InvoiceDueDate``, ``Balance`` as Decimal, decimal string or integer).  Out: one row per payment,
    in input order, with the columns of :data:`DECISION_COLUMNS` (see :class:`Decision`).

``decide_for_customer(payment, open_invoices, settings) -> Decision``
    The same rules for one payment against the customer's current invoices (the write-back
    re-check right before posting).  ``payment`` is a dict with the payment columns above plus
    ``sage_customer`` (and optionally ``customer_candidates``).  Decisions are identical to
    :func:`match_payments` field for field: both gather the same *facts* (named, exact-amount,
    oldest-first and open invoices) and hand them to one shared function, :func:`_conclude`, that
    applies the rules' precedence and writes the allocations and the explanation.

``Decision`` (a NamedTuple; ``.matched``, ``.as_row()``)
    ``payment_id``, ``status`` (:data:`MATCHED` or :data:`HELD`), ``reason`` (None or one of
    :data:`REASON_CODES`), ``sage_customer``, ``home_amount`` (Decimal, None when the currency is
    unsupported), ``allocations`` (``[{"invoice_no", "invoice_type", "amount": Decimal}]``, oldest
    first, adding up to ``home_amount``), ``rule`` (:data:`RULE_NAMED_INVOICES`,
    :data:`RULE_EXACT_AMOUNT`, :data:`RULE_OLDEST_FIRST` or None), ``explanation`` (a sentence for the
    audit trail, e.g. "exact amount: oldest of 3 invoices of 120.00") and ``candidates`` (for the
    review queue).  :data:`SAGE_REJECTED` is exported for the posting step, which decides it.

Money never touches float: amounts are integer cents inside, :class:`~decimal.Decimal` outside;
integer columns (``amount``, ``fx_amount``) must not be float dtypes (:class:`TypeError`), and a
``Balance`` that is not a 2-decimal number raises :class:`ValueError` (both paths).

How the vectorised path stays fast (1,000,000 invoices, 200,000 payments): the paying customers'
invoices go into one in-memory DuckDB table, ranked oldest first with window functions (row number,
running open total, open rank); one SQL query then joins names, tokens and amounts against that
table - rule 3 is a join on the running total - and returns only the facts each payment needs.  The
remaining Python work is one short loop over payments that builds the output; the cyclic GC is paused
meanwhile.

Choices the spec leaves open, made here and applied by both paths:
- order of holds: ``currency_unsupported``, then ``customer_not_found``, then the invoice rules
  (the order of the spec's sections);
- invoice names compare case-insensitively in ASCII, after trimming spaces and leading zeros;
  only IN/DM/FC rows are the customer's invoices (a name of a CM or PP is not found);
- a ``Balance`` <= 0 counts as collected; a non-positive payment amount is ``amount_mismatch``;
- held payments list candidates: customer keys for ``customer_not_found``, the tied invoices for
  ``ambiguous_match``, the named ones for named holds, else the 10 oldest open invoices.
- tokens are runs of Unicode letters and digits; characters assigned after Unicode 14 (Python
  3.11's table) may be classified differently by DuckDB's RE2 - not a concern for invoice numbers.
"""

from __future__ import annotations

import gc
import json
import re
import string
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from itertools import repeat
from types import MappingProxyType
from typing import Any, NamedTuple

import duckdb
import numpy as np
import pandas as pd

from ml_connector_dagster import money

__all__ = [
    "AMBIGUOUS_MATCH",
    "AMOUNT_MISMATCH",
    "CANDIDATE_LIMIT",
    "CURRENCY_UNSUPPORTED",
    "CUSTOMER_NOT_FOUND",
    "DECISION_COLUMNS",
    "HELD",
    "INVOICE_ALREADY_COLLECTED",
    "INVOICE_NOT_FOUND",
    "INVOICE_TYPES",
    "MATCHED",
    "REASON_CODES",
    "RULE_EXACT_AMOUNT",
    "RULE_NAMED_INVOICES",
    "RULE_OLDEST_FIRST",
    "SAGE_REJECTED",
    "Decision",
    "MatchSettings",
    "decide_for_customer",
    "match_payments",
    "normalize_invoice_no",
    "reference_tokens",
    "resolve_customers",
]

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
    return isinstance(value, float) and value != value


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
    named: list[_Inv] = []  # invoices named (metadata or tokens); default lists are never mutated
    exact: list[_Inv] = []  # open invoices whose balance is the amount
    run: list[_Inv] = []  # shortest oldest-first run adding up to it
    open_top: list[str] = []  # numbers of the first CANDIDATE_LIMIT open invoices
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
    """Apply the rules' precedence to the facts: the single place where a decision is made."""
    cents = p.home_cents
    if cents is None:
        return _held(p, CURRENCY_UNSUPPORTED, _no_home_amount(p, settings))
    if p.sage_customer is None:
        return _held(
            p,
            CUSTOMER_NOT_FOUND,
            f"GoCardless customer {p.gocardless_customer} resolves to no Sage customer "
            "(no metadata sage_customer naming one, no unique email)",
            p.customer_candidates,
        )
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


def _no_home_amount(p: _Payment, settings: MatchSettings) -> str:
    home = settings.home_currency.upper()
    return f"no {home} amount for a {p.currency} payment: no fx amount in {home} and no rate for {p.currency}"


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
    p = _Payment(
        payment_id=str(payment["id"]),
        gocardless_customer=_opt_str(payment.get("gocardless_customer")),
        currency=str(payment.get("currency", "")),
        sage_customer=_opt_str(payment.get("sage_customer")),
        home_cents=None if home is None else money.to_cents(home),
        home_amount=home,
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


# --------------------------------------------------------------------------------------------------
# Customers.


def resolve_customers(gc_customers: pd.DataFrame, sage_customers: pd.DataFrame) -> pd.DataFrame:
    """Map every GoCardless customer to a Sage customer key, by metadata then by unique email."""
    with _gc_paused():
        keys = _customer_keys(sage_customers)
        key_by_norm = {key.upper(): key for key in reversed(keys)}  # first row wins on duplicates
        emails = _norm_emails(sage_customers["EmailAddress"].tolist())
        counts = Counter(emails)
        key_by_email = {e: k for e, k in zip(emails, keys, strict=True) if e is not None and counts[e] == 1}

        meta = [_meta_customer(m) for m in _column(gc_customers, "metadata")]
        gc_emails = _norm_emails(_column(gc_customers, "email"))
        sage, resolved_by = [], []
        for m, e in zip(meta, gc_emails, strict=True):
            key = key_by_norm.get(m) if m else None
            how = "metadata" if key else None
            if key is None and e is not None:
                key = key_by_email.get(e)
                how = "email" if key else None
            sage.append(key)
            resolved_by.append(how)

        candidates: list[list[str]] = [[] for _ in sage]
        unresolved = [i for i, key in enumerate(sage) if key is None]
        if unresolved:
            names = _gc_names(gc_customers, unresolved)
            gc_unresolved = [gc_emails[i] for i in unresolved]
            finder = _CandidateFinder(sage_customers, keys, emails, gc_unresolved, names, [meta[i] for i in unresolved])
            for i, own in zip(unresolved, names, strict=True):
                candidates[i] = finder.find(gc_emails[i], own, meta[i])
        return pd.DataFrame(
            {
                "gocardless_customer": pd.Series(gc_customers["id"].tolist(), dtype=object),
                "sage_customer": pd.Series(sage, dtype=object),
                "resolved_by": pd.Series(resolved_by, dtype=object),
                "candidates": pd.Series(candidates, dtype=object),
            }
        )


def _column(frame: pd.DataFrame, name: str) -> list[Any]:
    """A column as a list, or Nones when the frame does not have it."""
    return frame[name].tolist() if name in frame else [None] * len(frame)


def _customer_keys(sage_customers: pd.DataFrame) -> list[str]:
    """``"DD-CUSTNO"`` of every Sage customer (spaces trimmed)."""
    divs = sage_customers["ARDivisionNo"].tolist()
    custs = sage_customers["CustomerNo"].tolist()
    return [f"{str(d).strip()}-{str(c).strip()}" for d, c in zip(divs, custs, strict=True)]


def _norm_emails(emails: list[object]) -> list[str | None]:
    """Trimmed, lower-case emails; missing or blank ones become None (they never match)."""
    return [(e.strip().lower() or None) if isinstance(e, str) else None for e in emails]


def _meta_customer(metadata: object) -> str | None:
    """Normalised ``DD-CUSTNO`` from metadata ``sage_customer`` (upper case, spaces trimmed)."""
    value = _metadata_value(metadata, "sage_customer")
    if not value or "-" not in value:
        return None
    div, cust = value.split("-", 1)
    return f"{div.strip()}-{cust.strip()}".upper()


def _gc_names(gc_customers: pd.DataFrame, rows: list[int]) -> list[list[str]]:
    """Normalised names of some GoCardless customers: company name, then "given family"."""

    company, given, family = (_column(gc_customers, c) for c in ("company_name", "given_name", "family_name"))
    names = []
    for i in rows:
        person = " ".join(x for x in (given[i], family[i]) if isinstance(x, str) and x.strip())
        names.append([x for x in (_norm_name(company[i]), _norm_name(person)) if x])
    return names


def _norm_name(name: object) -> str:
    return " ".join(name.lower().split()) if isinstance(name, str) else ""


class _CandidateFinder:
    """Likely Sage customers of unresolved GoCardless customers: same email, same name, same number.

    Indexes only the values the unresolved customers have, so building it is one cheap pass.
    """

    def __init__(
        self,
        sage_customers: pd.DataFrame,
        keys: list[str],
        emails: list[str | None],
        gc_emails: list[str | None],
        names: list[list[str]],
        meta: list[str | None],
    ) -> None:
        wanted_emails = set(gc_emails) - {None}
        wanted_names = {n for own in names for n in own}
        wanted_custnos = {m.split("-", 1)[1] for m in meta if m}
        self.by_email: dict[str, list[str]] = {}
        self.by_name: dict[str, list[str]] = {}
        self.by_custno: dict[str, list[str]] = {}
        custnos = sage_customers["CustomerNo"].tolist()
        sage_names = sage_customers["CustomerName"].tolist()
        for key, email, name, custno in zip(keys, emails, sage_names, custnos, strict=True):
            if email in wanted_emails:
                self.by_email.setdefault(email, []).append(key)
            if wanted_custnos and str(custno).strip().upper() in wanted_custnos:
                self.by_custno.setdefault(str(custno).strip().upper(), []).append(key)
            if wanted_names and isinstance(name, str):
                low = name.lower()
                norm = low if low in wanted_names else _norm_name(name)
                if norm in wanted_names:
                    self.by_name.setdefault(norm, []).append(key)

    def find(self, email: str | None, names: list[str], meta: str | None) -> list[str]:
        found = list(self.by_email.get(email, ())) if email else []
        for name in names:
            found += self.by_name.get(name, ())
        if meta:
            found += self.by_custno.get(meta.split("-", 1)[1], ())
        return sorted(set(found))[:CANDIDATE_LIMIT]


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


# --------------------------------------------------------------------------------------------------
# Many payments at once (set-based, DuckDB in memory).

_BALANCE_RE = r"[+-]?[0-9]+(\.[0-9]{0,2}0*)?|[+-]?\.[0-9]{1,2}0*"
# SQL twins of normalize_invoice_no (ASCII upper case: DuckDB's upper() is Unicode-wide, so it is used
# on pure-ASCII text only, and the slower translate() on the rest).
_MACROS = """
CREATE MACRO ascii_upper(x) AS CASE
    WHEN strlen(x) = length(x) THEN upper(x)  -- as many bytes as characters: ASCII only
    ELSE translate(x, 'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ') END;
CREATE MACRO unzeroed(u) AS coalesce(nullif(ltrim(u, '0'), ''), CASE WHEN u = '' THEN '' ELSE '0' END);
CREATE MACRO space_trimmed(x) AS CASE WHEN x LIKE ' %' OR x LIKE '% ' THEN trim(x, ' ') ELSE x END;
CREATE MACRO invoice_norm(x) AS unzeroed(ascii_upper(space_trimmed(x)));
"""


def match_payments(
    payments: pd.DataFrame, customer_map: pd.DataFrame, invoices: pd.DataFrame, settings: MatchSettings
) -> pd.DataFrame:
    """Decide every payment at once (one row per payment, input order); see the module docstring.

    """
    with _gc_paused():
        sage_by_gc, cands_by_gc = _customer_lookup(customer_map)
        gcs = _texts_or_none(payments["gocardless_customer"])
        sages = list(map(sage_by_gc.get, gcs))
        pays = _prepare_payments(payments, gcs, sages, cands_by_gc, settings)
        facts = _gather_facts(payments, pays, invoices)
        rows = [_conclude(p, facts.get(i, _NO_FACTS), settings) for i, p in enumerate(pays)]
        return pd.DataFrame({c: _object_series(v) for c, v in zip(DECISION_COLUMNS, _columns(rows), strict=True)})


def _object_series(values: Sequence[Any]) -> pd.Series:
    """An object column holding ``values`` as they are (pandas keeps lists as lists)."""
    return pd.Series(values, dtype=object)


def _columns(decisions: list[Decision]) -> list[tuple[Any, ...]]:
    """Decisions transposed into columns, in :data:`DECISION_COLUMNS` order (empty ones if none)."""
    return list(zip(*decisions, strict=True)) or [() for _ in DECISION_COLUMNS]


def _customer_ids(sages: list[str | None]) -> dict[str, int]:
    """A small integer id per Sage customer that has a payment (joins on ints are cheaper)."""
    return {key: i for i, key in enumerate(dict.fromkeys(key for key in sages if key is not None))}


def _texts_or_none(column: pd.Series) -> list[str | None]:
    """A column as a list of strings, missing values as None."""
    if _is_text(column):
        return column.astype(object).where(column.notna(), None).tolist()
    return [_opt_str(v) for v in column.tolist()]


def _prepare_payments(
    payments: pd.DataFrame,
    gcs: list[str | None],
    sages: list[str | None],
    cands_by_gc: dict[str, tuple[str, ...]],
    settings: MatchSettings,
) -> list[_Payment]:
    """Per payment: its Sage customer (from the map) and its amount in home cents."""
    cents = _home_cents_column(payments, settings)
    amounts = _amounts(cents)
    ids = [pid if type(pid) is str else str(pid) for pid in payments["id"].tolist()]
    currencies = [cur if type(cur) is str else str(cur) for cur in payments["currency"].tolist()]
    cands = [() if s is not None else cands_by_gc.get(g, ()) for g, s in zip(gcs, sages, strict=True)]
    fields = zip(ids, gcs, currencies, sages, cents, amounts, cands, strict=True)
    return list(map(tuple.__new__, repeat(_Payment), fields))


def _amounts(cents: list[int | None]) -> list[Decimal | None]:
    """``money.from_cents`` of each value (None stays None), built in bulk."""
    amounts: list[Decimal | None] = _bulk_decimals([0 if c is None else c for c in cents])
    for i in (i for i, c in enumerate(cents) if c is None):
        amounts[i] = None
    return amounts


def _bulk_decimals(cents: list[int]) -> list[Decimal]:
    """``[money.from_cents(c) for c in cents]`` without a Python-level call per value."""
    return list(map(Decimal.scaleb, map(Decimal, cents), repeat(-money.SAGE_EXPONENT)))


def _customer_lookup(customer_map: pd.DataFrame) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    """Sage customer and candidate customers of each GoCardless customer in the map."""
    gc_ids, sage_ids = customer_map["gocardless_customer"], customer_map["sage_customer"]
    known = (gc_ids.notna() & sage_ids.notna()).to_numpy()
    sage = dict(zip(gc_ids[known].tolist(), map(str, sage_ids[known].tolist()), strict=True))
    cands: dict[str, tuple[str, ...]] = {}
    if "candidates" in customer_map:  # only the unresolved customers' candidates are ever shown
        unresolved = (gc_ids.notna() & sage_ids.isna()).to_numpy()
        listed = zip(gc_ids[unresolved].tolist(), customer_map["candidates"][unresolved].tolist(), strict=True)
        cands = {g: tuple(c) for g, c in listed if _is_list(c) and len(c)}
    return sage, cands


def _is_list(value: object) -> bool:
    return isinstance(value, (list, tuple, np.ndarray))


def _home_cents_column(payments: pd.DataFrame, settings: MatchSettings) -> list[int | None]:
    """Home-currency cents of every payment: vectorised when it is in home currency, else per row."""
    amount = _int_column(payments["amount"], "amount")
    if amount.isna().any():
        raise ValueError("payments without an amount")
    home = settings.home_currency.strip().upper()
    home_exp = money.exponent(home)
    direct = (payments["currency"] == home).to_numpy(dtype=bool, na_value=False)
    if home_exp > money.SAGE_EXPONENT:
        direct[:] = False
    scale = 10 ** max(money.SAGE_EXPONENT - home_exp, 0)
    out: list[int | None] = (amount.to_numpy(dtype=np.int64) * scale).tolist()
    n = len(payments)
    fx_amount = _int_column(payments["fx_amount"], "fx_amount") if "fx_amount" in payments else pd.Series([None] * n)
    fx_currency = payments["fx_currency"] if "fx_currency" in payments else pd.Series([None] * n)
    converted = ~direct & (fx_currency == home).to_numpy(dtype=bool, na_value=False) & fx_amount.notna().to_numpy()
    if home_exp > money.SAGE_EXPONENT:
        converted[:] = False
    for i, cents in zip(np.flatnonzero(converted).tolist(), fx_amount[converted].tolist(), strict=True):
        out[i] = int(cents) * scale  # GoCardless's own conversion into home currency
    others = np.flatnonzero(~direct & ~converted).tolist()
    if others:  # other currencies (and odd codes) go through money.to_home_amount, row by row
        fx_amount, fx_currency = fx_amount.tolist(), fx_currency.tolist()
        currency, amounts = payments["currency"].tolist(), amount.tolist()
        for i in others:
            home_amount = money.to_home_amount(
                amounts[i], str(currency[i]), settings.home_currency, _opt_str(fx_currency[i]),
                None if _is_missing(fx_amount[i]) else fx_amount[i], settings.fx_rates,
            )
            out[i] = None if home_amount is None else money.to_cents(home_amount)
    return out


def _int_column(column: pd.Series, name: str) -> pd.Series:
    """An integer-valued column as nullable Int64; float dtypes and values are refused."""
    if pd.api.types.is_float_dtype(column.dtype):
        raise TypeError(f"{name} column is {column.dtype}: money must be integer minor units (use Int64)")
    if pd.api.types.is_integer_dtype(column.dtype):
        return column.astype("Int64")
    values = [None if _is_missing(v) else _minor(v, name) for v in column.tolist()]
    return pd.Series(values, dtype="Int64")


def _gather_facts(payments: pd.DataFrame, pays: list[_Payment], invoices: pd.DataFrame) -> dict[int, _Facts]:
    """Facts of every payment with a customer and an amount, gathered set-wise in DuckDB."""
    live = [i for i, p in enumerate(pays) if p.sage_customer is not None and p.home_cents is not None]
    cids = _customer_ids([pays[i].sage_customer for i in live])
    if not cids:
        return {}
    con = duckdb.connect(":memory:", config={"preserve_insertion_order": False})
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(_MACROS)
        con.register("cust_df", _customer_frame(cids))
        con.register("inv_df", _invoice_source(invoices))
        _load_invoices(con)
        for name, frame in _payment_frames(payments, pays, live, cids).items():
            con.register(name, frame)
        return _collect(con)
    finally:
        con.close()


def _customer_frame(cids: dict[str, int]) -> pd.DataFrame:
    """Customer ids with their ARDivisionNo and CustomerNo (keys are ``"DD-CUSTNO"``)."""
    parts = [key.split("-", 1) if "-" in key else [key, None] for key in cids]
    return pd.DataFrame(
        {
            "cid": np.array(list(cids.values()), dtype=np.int64),
            "div": pd.Series([d for d, _ in parts], dtype=object),
            "custno": pd.Series([c for _, c in parts], dtype=object),
        }
    )


def _payment_frames(
    payments: pd.DataFrame, pays: list[_Payment], live: list[int], cids: dict[str, int]
) -> dict[str, pd.DataFrame]:
    """``pay_df`` (payment, customer id, cents), ``txt_df`` (texts to tokenise), ``meta_df`` (names)."""
    metadata = payments["metadata"].tolist() if "metadata" in payments else [None] * len(pays)
    names = [() if type(metadata[i]) is dict and not metadata[i] else _metadata_names(metadata[i]) for i in live]
    meta = [(i, norm, raw) for i, found in zip(live, names, strict=True) for norm, raw in found]
    unnamed = [i for i, found in zip(live, names, strict=True) if not found]
    return {
        "pay_df": pd.DataFrame(
            {
                "pidx": np.array(live, dtype=np.int64),
                "cid": np.array([cids[pays[i].sage_customer] for i in live], dtype=np.int64),
                "cents": np.array([pays[i].home_cents for i in live], dtype=np.int64),
                "use_tokens": np.array([not found for found in names], dtype=bool),
            }
        ),
        "txt_df": pd.DataFrame(
            {"pidx": np.array(unnamed, dtype=np.int64), "txt": pd.Series(_texts(payments, unnamed), dtype=object)}
        ),
        "meta_df": pd.DataFrame(
            {
                "pidx": np.array([m[0] for m in meta], dtype=np.int64),
                "norm": pd.Series([m[1] for m in meta], dtype=object),
                "raw": pd.Series([m[2] for m in meta], dtype=object),
                "pos": np.arange(len(meta), dtype=np.int64),
            }
        ),
    }


def _texts(payments: pd.DataFrame, rows: list[int]) -> list[str]:
    """Reference and description of each row, joined by a space (a separator for tokens)."""
    ref, desc = _texts_or_empty(payments, "reference"), _texts_or_empty(payments, "description")
    return [f"{ref[i]} {desc[i]}" for i in rows]


def _texts_or_empty(payments: pd.DataFrame, name: str) -> list[str]:
    """A text column as a list of strings, "" where missing (or the column is absent)."""
    if name not in payments:
        return [""] * len(payments)
    column = payments[name]
    if _is_text(column):
        return column.astype(object).where(column.notna(), "").tolist()
    return [_text(v) for v in column.tolist()]


_INVOICE_COLUMNS = {
    "ARDivisionNo": "div",
    "CustomerNo": "custno",
    "InvoiceNo": "no",
    "InvoiceType": "typ",
    "InvoiceDueDate": "due",
    "InvoiceDate": "dt",
    "Balance": "bal",
}


def _invoice_source(invoices: pd.DataFrame) -> pd.DataFrame:
    """The invoice columns under short names; text columns pass through untouched (no copy)."""
    frame = {"rid": np.arange(len(invoices), dtype=np.int64)}
    frame.update({short: invoices[name] for name, short in _INVOICE_COLUMNS.items()})
    for short in ("div", "custno", "no", "typ"):
        frame[short] = _text_column(frame[short])
    frame["due"], frame["dt"] = _date_column(frame["due"]), _date_column(frame["dt"])
    frame["bal"] = _balance_column(frame["bal"])
    return pd.DataFrame(frame, copy=False)


def _is_text(column: pd.Series) -> bool:
    if isinstance(column.dtype, pd.StringDtype):
        return True
    return column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty")


def _text_column(column: pd.Series) -> pd.Series:
    """Text as DuckDB VARCHAR; other types as their ``str()`` (what the one-payment path compares)."""
    return column if _is_text(column) else pd.Series([None if _is_missing(v) else str(v) for v in column.tolist()],
                                                     dtype=object, index=column.index)


def _date_column(column: pd.Series) -> pd.Series:
    """Dates in a form DuckDB sorts exactly like :func:`_date_key` (strings as given, dates as dates)."""
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return column.dt.normalize()
    if _is_text(column):
        return column
    values = [None if _is_missing(v) else _date_key(v)[1] for v in column.tolist()]
    return pd.Series(values, dtype=object, index=column.index)


def _balance_column(column: pd.Series) -> pd.Series:
    """Balance as text for DuckDB to parse; Decimals are written out exactly, floats refused."""
    if pd.api.types.is_float_dtype(column.dtype):
        raise TypeError(f"Balance column is {column.dtype}: pass Decimals or decimal strings")
    if pd.api.types.is_integer_dtype(column.dtype):
        return column.astype("Int64").astype(str)
    if _is_text(column):
        return column
    values = [v if isinstance(v, str) else _balance_text(v) for v in column.tolist()]
    return pd.Series(values, dtype=object, index=column.index)


def _balance_text(value: object) -> str | None:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, (float, np.floating)):
        raise TypeError("Balance is a float; pass a Decimal or a decimal string")
    return None if _is_missing(value) else str(value)


_INVOICE_ROWS_SQL = f"""
    FROM inv_df i JOIN cust_df c ON c.div = i.div AND c.custno = i.custno
    WHERE i.typ IN {INVOICE_TYPES} AND i.no IS NOT NULL
"""
_FAST_CENTS_SQL = f"""
    CASE WHEN regexp_full_match(i.bal, '{_BALANCE_RE}')
         THEN TRY_CAST(TRY_CAST(i.bal AS DECIMAL(18, 2)) * 100 AS BIGINT) END
"""
_RANKED_SQL = f"""
CREATE OR REPLACE TEMP TABLE ranked AS
WITH src AS (
    SELECT c.cid, i.no, i.typ, i.due, i.dt, invoice_norm(i.no) AS norm, coalesce(f.cents, {_FAST_CENTS_SQL}) AS cents
    {_INVOICE_ROWS_SQL.replace("WHERE", "LEFT JOIN fixed_df f ON f.rid = i.rid WHERE")}
)
SELECT cid, no, typ, norm, cents,
       row_number() OVER w AS ord,
       CAST(sum(CASE WHEN cents > 0 THEN cents ELSE 0 END) OVER w AS BIGINT) AS cum,
       count(CASE WHEN cents > 0 THEN 1 END) OVER w AS rank
FROM src
WINDOW w AS (PARTITION BY cid ORDER BY due NULLS LAST, dt NULLS LAST, no, typ
             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
"""


def _load_invoices(con: duckdb.DuckDBPyConnection) -> None:
    """Table ``ranked``: the paying customers' IN/DM/FC rows, oldest first, with open running totals.

    ``ord`` ranks all rows, ``rank`` and ``cum`` count and add up the open ones (Balance > 0) so far.
    Balances the fast SQL pattern does not parse go through the Python parser (or raise), and the
    table is built again with them: rare, so the common case reads the invoices once.
    """
    con.register("fixed_df", _fixed_frame([]))
    con.execute(_RANKED_SQL)
    if not con.execute("SELECT count(*) FROM ranked WHERE cents IS NULL").fetchall()[0][0]:
        return
    odd = con.execute(f"SELECT i.rid, i.bal {_INVOICE_ROWS_SQL} AND ({_FAST_CENTS_SQL}) IS NULL").fetchall()
    con.register("fixed_df", _fixed_frame([(rid, _balance_cents(bal)) for rid, bal in odd]))
    con.execute(_RANKED_SQL)


def _fixed_frame(rows: list[tuple[int, int]]) -> pd.DataFrame:
    """Row ids and cents of the balances parsed in Python."""
    return pd.DataFrame({"rid": np.array([r for r, _ in rows], dtype=np.int64),
                         "cents": np.array([c for _, c in rows], dtype=np.int64)})


_FACTS_SQL = f"""
WITH
tok AS (  -- tokens longer than every invoice number cannot name one: dropped before the join
    SELECT x.pidx, p.cid, x.norm, NULL::VARCHAR AS raw, NULL::BIGINT AS pos
    FROM (
        SELECT pidx, unzeroed(t) AS norm
        FROM (SELECT pidx, unnest(regexp_extract_all(ascii_upper(txt), '[\\pL\\pN]+')) AS t FROM txt_df)
    ) x
    JOIN pay_df p USING (pidx)
    WHERE length(x.norm) <= (SELECT max(length(norm)) FROM ranked)
),
names AS (
    SELECT m.pidx, p.cid, m.norm, m.raw, m.pos FROM meta_df m JOIN pay_df p USING (pidx)
    UNION ALL
    SELECT * FROM tok
),
hits AS (
    SELECT n.pidx, n.raw, n.pos, r.ord, r.no, r.typ, r.cents
    FROM names n LEFT JOIN ranked r ON r.cid = n.cid AND r.norm = n.norm
),
named AS (SELECT DISTINCT pidx, ord, no, typ, cents FROM hits WHERE ord IS NOT NULL),
missing AS (SELECT pidx, raw, pos FROM hits WHERE ord IS NULL AND raw IS NOT NULL),
unnamed AS (SELECT pidx, cid, cents FROM pay_df WHERE use_tokens AND pidx NOT IN (SELECT pidx FROM named)),
exact AS (
    SELECT u.pidx, r.ord, r.no, r.typ, r.cents
    FROM unnamed u JOIN ranked r ON r.cid = u.cid AND r.cents = u.cents AND r.cents > 0
),
run_end AS (
    SELECT u.pidx, u.cid, r.ord AS last
    FROM unnamed u JOIN ranked r ON r.cid = u.cid AND r.cum = u.cents AND r.cents > 0
    WHERE u.pidx NOT IN (SELECT pidx FROM exact)
),
run AS (
    SELECT e.pidx, r.ord, r.no, r.typ, r.cents
    FROM run_end e JOIN ranked r ON r.cid = e.cid AND r.ord <= e.last AND r.cents > 0
),
needs_open AS (
    SELECT pidx, cid FROM unnamed
    WHERE pidx NOT IN (SELECT pidx FROM exact) AND pidx NOT IN (SELECT pidx FROM run_end)
    UNION
    SELECT DISTINCT m.pidx, p.cid FROM missing m JOIN pay_df p USING (pidx)
),
open_top AS (
    SELECT n.pidx, r.ord, r.no, r.typ, r.cents
    FROM needs_open n JOIN ranked r ON r.cid = n.cid AND r.cents > 0 AND r.rank <= {CANDIDATE_LIMIT}
),
n_open AS (
    SELECT n.pidx, c.n
    FROM needs_open n JOIN (SELECT cid, max(rank) AS n FROM ranked GROUP BY cid) c ON c.cid = n.cid
)
SELECT pidx, 0 AS kind, ord, no, typ, cents, NULL::VARCHAR AS raw FROM named
UNION ALL SELECT pidx, 1, ord, no, typ, cents, NULL FROM exact
UNION ALL SELECT pidx, 2, ord, no, typ, cents, NULL FROM run
UNION ALL SELECT pidx, 3, ord, no, typ, cents, NULL FROM open_top
UNION ALL SELECT pidx, 4, pos, NULL, NULL, NULL, raw FROM missing
UNION ALL SELECT pidx, 5, 0, NULL, NULL, n, NULL FROM n_open WHERE n > 0
"""


def _collect(con: duckdb.DuckDBPyConnection) -> dict[int, _Facts]:
    """Run the facts query and fold its rows (sorted here by payment, kind of fact, age) into :class:`_Facts`."""
    fetched = con.execute(_FACTS_SQL).fetchnumpy()
    # plain arrays (NULL -> None or 0), cheaper to index than numpy's masked arrays
    cols = {name: np.ma.filled(column, None if column.dtype == object else 0) for name, column in fetched.items()}
    order = np.lexsort((cols["ord"], cols["kind"], cols["pidx"]))
    cols = {name: column[order] for name, column in cols.items()}
    pidx, kind = cols["pidx"], cols["kind"]
    if not len(pidx):
        return {}
    starts = np.flatnonzero(np.r_[True, (pidx[1:] != pidx[:-1]) | (kind[1:] != kind[:-1])])
    ends = np.r_[starts[1:], len(pidx)].tolist()
    nos, typs, raws = cols["no"].tolist(), cols["typ"].tolist(), cols["raw"].tolist()
    cents = cols["cents"].tolist()
    invs, first_inv = _invoice_rows(cols, kind < 3)
    pidx_l, kind_l = pidx.tolist(), kind.tolist()
    fields: dict[int, list[Any]] = {}
    for a, b in zip(starts.tolist(), ends, strict=True):
        f = fields.get(pidx_l[a])
        if f is None:
            f = fields[pidx_l[a]] = [(), [], [], [], [], 0]
        k = kind_l[a]
        if k < 3:  # named, exact, run
            f[k + 1] = invs[first_inv[a] : first_inv[a] + b - a]
        elif k == 3:
            f[4] = nos[a:b]
        elif k == 4:
            f[0] = tuple(raws[a:b])
        else:
            f[5] = cents[a]
    return {i: tuple.__new__(_Facts, f) for i, f in fields.items()}


def _invoice_rows(cols: dict[str, np.ndarray], wanted: np.ndarray) -> tuple[list[_Inv], list[int]]:
    """``_Inv`` of the ``wanted`` fact rows, built in bulk, and each row's position among them."""
    rows = np.flatnonzero(wanted)
    cents = cols["cents"][rows].tolist()
    fields = zip(cols["no"][rows].tolist(), cols["typ"][rows].tolist(), cents, _bulk_decimals(cents))
    return list(map(tuple.__new__, repeat(_Inv), fields)), (np.cumsum(wanted) - 1).tolist()
