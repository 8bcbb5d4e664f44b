"""Properties of matching over generated companies: money adds up, and both paths decide alike.

A company has invoices with unposted receipts (PaymentsToday) and several payments per customer, so that
payments compete for the same invoices: the set-wise path must decide them as the one-at-a-time path does,
payment after payment, each seeing what the earlier ones took.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ml_connector_dagster.bench.matching import baseline_match, grouped_baseline_match
from ml_connector_dagster.bench.matching_company import generate_company
from ml_connector_dagster.matching import (
    HELD,
    INVOICE_TYPES,
    MATCHED,
    REASON_CODES,
    SAGE_REJECTED,
    MatchSettings,
    decide_in_order,
    match_payments,
    resolve_customers,
)

CUSTOMERS = ("01-A", "01-B")
CUSTOMER_MAP = pd.DataFrame(
    {
        "gocardless_customer": ["CU1", "CU2", "CU3"],
        "sage_customer": ["01-A", "01-B", None],
        "resolved_by": ["metadata", "email", None],
        "candidates": [[], [], ["01-A"]],
    }
)
NUMBERS = ("0000001", "0000002", "0000003", "00000A4", "0000005", "ab6", "0é7", " 0000008")
NAMES = ("1", "0000002", "3", "a4", "00000A4", "AB6", "é7", "8", "999", "É7", "0")
WORDS = ("INV", "inv", "Invoice", "for", "ß", "ı", "٣", "½x", "2026")
SEPARATORS = (" ", "-", "/", "_", ",", "é", "\u00a0", "")
DATES = ("2026-01-01", "2026-01-15", "2026-02-01")
BALANCES = st.one_of(st.sampled_from([0, 500, 1000, 1500, 2500]), st.integers(min_value=-100, max_value=5000))


def payments_today(balance: int) -> st.SearchStrategy[int]:
    """Receipts entered in Sage but not posted: mostly none, some part of the balance, all of it, or more."""
    return st.one_of(
        st.just(0),
        st.just(0),
        st.just(max(balance, 0)),
        st.integers(min_value=0, max_value=max(balance, 0)),
        st.integers(min_value=0, max_value=6000),
    )


@st.composite
def invoices(draw: st.DrawFn) -> list[dict[str, Any]]:
    rows, keys = [], set()
    for _ in range(draw(st.integers(min_value=0, max_value=9))):
        customer, no = draw(st.sampled_from(CUSTOMERS)), draw(st.sampled_from(NUMBERS))
        typ = draw(st.sampled_from(("IN", "IN", "IN", "DM", "FC", "CM", "PP")))
        if (customer, no, typ) in keys:
            continue
        keys.add((customer, no, typ))
        cents = draw(BALANCES)
        unposted = draw(payments_today(cents))
        div, custno = customer.split("-")
        rows.append(
            {
                "ARDivisionNo": div,
                "CustomerNo": custno,
                "InvoiceNo": no,
                "InvoiceType": typ,
                "InvoiceDate": draw(st.sampled_from(DATES)),
                "InvoiceDueDate": draw(st.sampled_from(DATES)),
                "Balance": str(Decimal(cents).scaleb(-2)),
                "PaymentsToday": str(Decimal(unposted).scaleb(-2)),
            }
        )
    return rows


def text(names: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    piece = st.tuples(st.one_of(names, st.sampled_from(WORDS)), st.sampled_from(SEPARATORS)).map("".join)
    return st.lists(piece, max_size=4).map("".join)


def variants(number: str) -> st.SearchStrategy[str]:
    """Ways a payer may write an invoice number: as is, without zeros, in another case."""
    bare = number.strip().lstrip("0") or "0"
    return st.sampled_from((number.strip(), bare, bare.lower(), "00" + bare))


def open_cents(row: dict[str, Any]) -> int:
    return int((Decimal(row["Balance"]) - Decimal(row["PaymentsToday"])) * 100)


def oldest_first(row: dict[str, Any]) -> tuple:
    collected = open_cents(row) <= 0
    return (collected, row["InvoiceDueDate"], row["InvoiceDate"], row["InvoiceNo"], row["InvoiceType"])


def amounts(balances: list[int]) -> st.SearchStrategy[int]:
    """Amounts likely to hit a rule: a balance, a sum of a few, or anything."""
    anything = st.integers(min_value=1, max_value=8000)
    if not balances:
        return anything
    return st.one_of(
        st.sampled_from(balances),
        st.lists(st.sampled_from(balances), min_size=1, max_size=3).map(sum),
        st.sampled_from([sum(b for b in balances[:k] if b > 0) for k in range(1, len(balances) + 1)]),
        anything,
    ).map(lambda cents: max(cents, 1))


@st.composite
def payments(draw: st.DrawFn, invoice_rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows = []
    for i in range(draw(st.integers(min_value=1, max_value=8))):
        gc_customer = draw(st.sampled_from(("CU1", "CU1", "CU1", "CU2", "CU3")))
        customer = "01-B" if gc_customer == "CU2" else "01-A"
        own = [r for r in invoice_rows if f"{r['ARDivisionNo']}-{r['CustomerNo']}" == customer]
        amount = amounts([open_cents(r) for r in sorted(own, key=oldest_first)])
        numbers = [r["InvoiceNo"] for r in invoice_rows]
        names = st.sampled_from(NAMES)
        if numbers:
            names = st.one_of(names, st.sampled_from(numbers).flatmap(variants))
        currency = draw(st.sampled_from(("GBP", "GBP", "GBP", "GBP", "EUR", "USD", "SEK")))
        fx_amount = draw(st.one_of(st.none(), amount, amount)) if currency == "USD" else None
        named = draw(st.lists(names, max_size=3))
        metadata = draw(st.sampled_from(({}, {}, {"sage_invoice": ", ".join(named)}, {"other": "x"})))
        rows.append(
            {
                "id": f"PM{i}",
                "amount": draw(amount) * (2 if currency == "EUR" else 1),
                "currency": currency,
                "reference": draw(text(names)),
                "description": draw(st.one_of(st.none(), text(names))),
                "metadata": metadata,
                "fx_currency": "GBP" if fx_amount is not None else None,
                "fx_amount": fx_amount,
                "gocardless_customer": gc_customer,
            }
        )
    return rows


@st.composite
def companies(draw: st.DrawFn) -> tuple[list[dict], list[dict], MatchSettings]:
    invoice_rows = draw(invoices())
    payment_rows = draw(payments(invoice_rows))
    rate = draw(st.sampled_from((Decimal("0.5"), Decimal("0.5"), Decimal("0.8600"), Decimal("1.23456"))))
    on_tie = draw(st.sampled_from(("oldest", "hold")))
    return invoice_rows, payment_rows, MatchSettings(home_currency="GBP", on_tie=on_tie, fx_rates={"EUR": rate})


def vectorised(invoice_rows: list[dict], payment_rows: list[dict], match: MatchSettings) -> list[dict[str, Any]]:
    frame = pd.DataFrame(payment_rows)
    frame["amount"] = frame["amount"].astype("int64")
    frame["fx_amount"] = pd.array([p["fx_amount"] for p in payment_rows], dtype="Int64")
    columns = [
        "ARDivisionNo",
        "CustomerNo",
        "InvoiceNo",
        "InvoiceType",
        "InvoiceDate",
        "InvoiceDueDate",
        "Balance",
        "PaymentsToday",
    ]
    return match_payments(frame, CUSTOMER_MAP, pd.DataFrame(invoice_rows, columns=columns), match).to_dict("records")


def one_by_one(invoice_rows: list[dict], payment_rows: list[dict], match: MatchSettings) -> list[dict[str, Any]]:
    """Payment after payment, in order, each seeing what the earlier ones took."""
    sage = dict(zip(CUSTOMER_MAP["gocardless_customer"], CUSTOMER_MAP["sage_customer"], strict=True))
    cands = dict(zip(CUSTOMER_MAP["gocardless_customer"], CUSTOMER_MAP["candidates"], strict=True))
    with_customers = [
        p | {"sage_customer": sage[p["gocardless_customer"]], "customer_candidates": cands[p["gocardless_customer"]]}
        for p in payment_rows
    ]
    return [d.as_row() for d in decide_in_order(with_customers, lambda _customer: invoice_rows, match)]


SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(companies())
def test_vectorised_and_one_payment_decisions_are_identical(company: tuple) -> None:
    assert vectorised(*company) == one_by_one(*company)


@SETTINGS
@given(companies())
def test_allocations_never_exceed_open_amounts_together_and_add_up_to_the_home_amount(company: tuple) -> None:
    invoice_rows, payment_rows, match = company
    left = {
        (f"{r['ARDivisionNo']}-{r['CustomerNo']}", r["InvoiceNo"], r["InvoiceType"]): Decimal(open_cents(r)).scaleb(-2)
        for r in invoice_rows
    }

    for row in vectorised(invoice_rows, payment_rows, match):
        if row["status"] == MATCHED:
            keys = [(row["sage_customer"], a["invoice_no"], a["invoice_type"]) for a in row["allocations"]]
            assert row["reason"] is None and row["allocations"]
            assert len(set(keys)) == len(keys)
            assert sum(a["amount"] for a in row["allocations"]) == row["home_amount"]
            for key, a in zip(keys, row["allocations"], strict=True):
                assert key[2] in INVOICE_TYPES
                assert Decimal(0) < a["amount"] <= left[key]
                left[key] -= a["amount"]  # what the later payments may still take
        else:
            assert row["status"] == HELD
            assert row["reason"] in REASON_CODES and row["reason"] != SAGE_REJECTED
            assert row["allocations"] == [] and row["rule"] is None


def test_benchmark_baselines_decide_like_the_vectorised_path() -> None:
    company = generate_company(invoices=3000, payments=800, seed=3)
    customer_map = resolve_customers(company.gc_customers, company.sage_customers)

    fast = match_payments(company.payments, customer_map, company.invoices, company.settings)
    slow = baseline_match(company.payments, customer_map, company.invoices, company.settings)
    grouped = grouped_baseline_match(company.payments, customer_map, company.invoices, company.settings)

    assert fast.to_dict("records") == [d.as_row() for d in slow] == [d.as_row() for d in grouped]
    assert set(fast["reason"].dropna()) | set(fast["rule"].dropna()) >= {
        "customer_not_found",
        "invoice_not_found",
        "invoice_already_collected",
        "amount_mismatch",
        "currency_unsupported",
        "named_invoices",
        "exact_amount",
        "oldest_first",
    }


def test_benchmark_company_with_on_tie_hold_produces_ambiguous_matches() -> None:
    company = generate_company(invoices=3000, payments=800, seed=5)
    customer_map = resolve_customers(company.gc_customers, company.sage_customers)
    hold = MatchSettings(home_currency="GBP", on_tie="hold", fx_rates=company.settings.fx_rates)

    fast = match_payments(company.payments, customer_map, company.invoices, hold)

    assert (fast["reason"] == "ambiguous_match").any()
    slow = baseline_match(company.payments, customer_map, company.invoices, hold)
    assert fast.to_dict("records") == [d.as_row() for d in slow]
