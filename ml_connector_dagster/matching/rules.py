"""The rules' conclusions for one payment: which kind of decision its facts lead to, and that decision.

:func:`conclude` is the rules' precedence written once for one payment (through
:func:`decide_for_customer`: the write-back re-check and the benchmark's baselines); its set-wise twin is
the ``kind`` CASE of :mod:`.sql_text`.  Both take a decision's status, reason, rule, sentence and
candidates from :data:`.kinds.KIND_TABLE`.  See the package docstring for the public API.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import TypeAlias, assert_never

from ml_connector_dagster import money
from ml_connector_dagster.matching.facts import (
    NO_FACTS,
    Facts,
    Invoice,
    Payment,
    customer_rows,
    invoice_facts,
    payment_facts,
)
from ml_connector_dagster.matching.inputs import opt_str, payments_today_cents
from ml_connector_dagster.matching.kinds import KIND_TABLE, Kind, Listing, explain
from ml_connector_dagster.matching.model import Allocation, Decision, MatchSettings

__all__ = ["conclude", "decide_for_customer", "decide_in_order"]

#: A customer's ``AR_OpenInvoice`` rows, by ``DD-CUSTNO`` (None: no customer, no rows).
InvoicesOf: TypeAlias = Callable[[str | None], Sequence[Mapping[str, object]]]


def decide_for_customer(
    payment: Mapping[str, object], open_invoices: Sequence[Mapping[str, object]], settings: MatchSettings
) -> Decision:
    """Decide one payment against its customer's current ``AR_OpenInvoice`` rows.

    ``payment`` holds the payment columns of :func:`match_payments` plus ``sage_customer`` (None when
    the customer is not resolved) and optionally ``customer_candidates``.  Rows of other customers
    (by ARDivisionNo-CustomerNo, when given) are ignored.
    """
    p = payment_facts(payment, settings)
    if p.sage_customer is None or p.home_cents is None:
        return conclude(p, NO_FACTS, settings)
    return conclude(p, invoice_facts(payment, p.home_cents, customer_rows(open_invoices, p.sage_customer)), settings)


def decide_in_order(
    payments: Iterable[Mapping[str, object]], invoices_of: InvoicesOf, settings: MatchSettings
) -> list[Decision]:
    """Decide several payments one at a time, in the order given, each seeing what the earlier ones took.

    Each payment (as :func:`decide_for_customer` takes it) is decided against ``invoices_of(its customer)``
    with every invoice's ``PaymentsToday`` raised by what the earlier matched payments allocated to it: the
    one-payment twin of :func:`match_payments` over several payments (given in payment order).
    """
    taken: defaultdict[str, dict[tuple[str, str], int]] = defaultdict(dict)
    decisions = []
    for payment in payments:
        customer = opt_str(payment.get("sage_customer"))
        rows = invoices_of(customer) if customer is not None else []
        if customer is not None and customer in taken:
            rows = _less_taken(rows, customer, taken[customer])
        decision = decide_for_customer(payment, rows, settings)
        if decision.matched and customer is not None:
            mine = taken[customer]
            for a in decision.allocations:
                key = (a["invoice_no"], a["invoice_type"])
                mine[key] = mine.get(key, 0) + money.to_cents(a["amount"])
        decisions.append(decision)
    return decisions


def _less_taken(
    rows: Sequence[Mapping[str, object]], customer: str, taken: Mapping[tuple[str, str], int]
) -> list[Mapping[str, object]]:
    """The customer's rows with ``PaymentsToday`` raised by what earlier payments took from each."""
    out: list[Mapping[str, object]] = []
    for row in rows:
        cents = taken.get((str(row.get("InvoiceNo")), str(row.get("InvoiceType"))))
        div, cust = row.get("ARDivisionNo"), row.get("CustomerNo")
        if cents is None or (div is not None and cust is not None and f"{div}-{cust}" != customer):
            out.append(row)
        else:
            unposted = payments_today_cents(row.get("PaymentsToday")) + cents
            out.append({**row, "PaymentsToday": money.from_cents(unposted)})
    return out


def conclude(p: Payment, facts: Facts, settings: MatchSettings) -> Decision:
    """Apply the rules' precedence to one payment's facts."""
    cents, amount = p.home_cents, p.home_amount
    if cents is None or amount is None:
        home = settings.home_currency.upper()
        return _held(p, facts, Kind.CURRENCY_UNSUPPORTED, {"home": home, "currency": p.currency})
    if p.sage_customer is None:
        return _held(p, facts, Kind.CUSTOMER_NOT_FOUND, {"gocardless_customer": p.gocardless_customer})
    if cents <= 0:
        return _held(p, facts, Kind.AMOUNT_NOT_POSITIVE, {"amount": amount})
    if facts.missing:
        words = {"missing": ", ".join(facts.missing), "sage_customer": p.sage_customer}
        return _held(p, facts, Kind.NAME_NOT_FOUND, words)
    if facts.named:
        return _conclude_named(p, facts, cents, amount)
    if facts.exact:
        return _conclude_exact(p, facts, amount, settings)
    run = facts.run
    if run:
        return _matched(p, Kind.OLDEST_RUN, run, {"n_run": len(run), "run": _nos(run), "amount": amount})
    if facts.n_open == 0:
        return _held(p, facts, Kind.NOTHING_OPEN, {"sage_customer": p.sage_customer, "amount": amount})
    return _held(p, facts, Kind.NOTHING_ADDS_UP, {"amount": amount, "n_open": facts.n_open})


def _conclude_named(p: Payment, facts: Facts, cents: int, amount: Decimal) -> Decision:
    """The payment names invoices of its customer (lines 5-8)."""
    named = facts.named
    collected = [inv for inv in named if inv.balance <= 0]
    if collected:
        return _held(p, facts, Kind.NAMED_COLLECTED, {"collected": _nos(collected)})
    consumed = [inv for inv in named if inv.cents <= 0]  # Balance left, all of it taken by unposted receipts
    if consumed:
        return _held(p, facts, Kind.NAMED_CONSUMED, {"consumed": _nos(consumed)})
    total = sum(inv.cents for inv in named)
    if cents > total:
        words = {"amount": amount, "named_total": money.from_cents(total), "named": _nos(named)}
        return _held(p, facts, Kind.NAMED_EXCEEDED, words)
    if cents == total:
        return _matched(p, Kind.NAMED_IN_FULL, named, {"named": _nos(named)})
    paid, left = [], cents
    for inv in named:  # oldest first, the last one partly
        if left <= 0:
            break
        paid.append(inv)
        left -= inv.cents
    last = paid[-1]
    part = last.cents + left  # left <= 0: what the last invoice did not get
    words = {
        "amount": amount,
        "paid": _nos(paid),
        "last_no": last.no,
        "last_part": money.from_cents(part),
        "last_balance": last.amount,
    }
    return _matched(p, Kind.NAMED_PARTLY, paid, words, last_part=part)


def _conclude_exact(p: Payment, facts: Facts, amount: Decimal, settings: MatchSettings) -> Decision:
    """Open invoices whose open amount is the amount (lines 9-10)."""
    exact = facts.exact
    first = exact[0]
    if len(exact) == 1:
        return _matched(p, Kind.EXACT_ONE, exact, {"first_no": first.no, "amount": amount})
    words = {"n_exact": len(exact), "amount": amount, "first_no": first.no}
    if settings.on_tie == "hold":
        return _held(p, facts, Kind.EXACT_TIE_HELD, words)
    return _matched(p, Kind.EXACT_OLDEST, exact[:1], words)


def _matched(
    p: Payment, kind: Kind, invoices: Sequence[Invoice], words: Mapping[str, object], last_part: int | None = None
) -> Decision:
    """A matched decision paying ``invoices`` in full (the last one ``last_part`` cents only, when given)."""
    spec = KIND_TABLE[kind]
    allocations: list[Allocation] = [
        {"invoice_no": inv.no, "invoice_type": inv.typ, "amount": inv.amount} for inv in invoices
    ]
    if last_part is not None:
        allocations[-1]["amount"] = money.from_cents(last_part)
    why = explain(kind, words)
    return _new_decision(
        Decision,
        (p.payment_id, spec.status, spec.reason, p.sage_customer, p.home_amount, allocations, spec.rule, why, []),
    )


def _held(p: Payment, facts: Facts, kind: Kind, words: Mapping[str, object]) -> Decision:
    """A held decision of ``kind``, listing the candidates its line of the table names."""
    spec = KIND_TABLE[kind]
    candidates = _listed(spec.candidates, p, facts)
    why = explain(kind, words)
    return _new_decision(
        Decision,
        (p.payment_id, spec.status, spec.reason, p.sage_customer, p.home_amount, [], spec.rule, why, candidates),
    )


_new_decision = tuple.__new__  # Decision(...) without a Python-level __new__ call: hot path


def _listed(listing: Listing | None, p: Payment, facts: Facts) -> list[str]:
    """The candidates of a held decision."""
    match listing:
        case None:
            return []
        case Listing.CUSTOMER_KEYS:
            return list(p.customer_candidates)
        case Listing.OPEN_TOP:
            return list(facts.open_top)
        case Listing.NAMED:
            return [inv.no for inv in facts.named]
        case Listing.NAMED_COLLECTED:
            return [inv.no for inv in facts.named if inv.balance <= 0]
        case Listing.NAMED_CONSUMED:
            return [inv.no for inv in facts.named if inv.cents <= 0]
        case Listing.TIED:
            return [inv.no for inv in facts.exact]
        case _:
            assert_never(listing)


def _nos(invoices: Iterable[Invoice]) -> str:
    """Invoice numbers, ``", "``-joined, as the explanations show them."""
    return ", ".join(inv.no for inv in invoices)
