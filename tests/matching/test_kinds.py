"""The decision table (matching/kinds.py) is the one source of both paths' statuses, reasons and words.

One payment per kind: both paths must decide it alike, with the kind's status, reason, rule, sentence and
candidates from the table; and when a line of the table changes, both paths' outputs change with it.
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from ml_connector_dagster.matching import MatchSettings, decide_for_customer, match_payments
from ml_connector_dagster.matching.kinds import (
    AMBIGUOUS_MATCH,
    HELD,
    KIND_TABLE,
    MATCHED,
    REASON_CODES,
    Kind,
    KindSpec,
    Listing,
)

GBP = MatchSettings(home_currency="GBP")
HOLD_TIES = MatchSettings(home_currency="GBP", on_tie="hold")
CUSTOMER_MAP = pd.DataFrame(
    {
        "gocardless_customer": ["CU1", "CU9"],
        "sage_customer": ["01-ABF", None],
        "resolved_by": ["metadata", None],
        "candidates": [[], ["01-ABF", "02-ABF"]],
    }
)
DOCS = Path(__file__).resolve().parents[2] / "docs" / "reconciliation.md"


def invoice(no: str, balance: str, due: str = "2026-01-31", payments_today: str = "0.00") -> dict[str, Any]:
    return {
        "ARDivisionNo": "01",
        "CustomerNo": "ABF",
        "InvoiceNo": no,
        "InvoiceType": "IN",
        "InvoiceDate": "2026-01-01",
        "InvoiceDueDate": due,
        "Balance": balance,
        "PaymentsToday": payments_today,
    }


def payment(pid: str, amount: int, **fields: Any) -> dict[str, Any]:
    base = {
        "id": pid,
        "amount": amount,
        "currency": "GBP",
        "reference": "",
        "description": "",
        "metadata": {},
        "fx_currency": None,
        "fx_amount": None,
        "gocardless_customer": "CU1",
    }
    return base | fields


INVOICES = [
    invoice("0100010", "500.00", due="2026-01-10"),
    invoice("0100011", "250.00", due="2026-01-11"),
    invoice("0100012", "300.00", due="2026-01-12"),
    invoice("0100013", "0.00", due="2026-01-13"),
    invoice("0100014", "300.00", due="2026-01-14"),
    invoice("0100015", "120.00", due="2026-01-15"),
]
ONLY_COLLECTED = [invoice("0100013", "0.00")]
WITH_UNPOSTED = [*INVOICES, invoice("0100016", "200.00", due="2026-01-16", payments_today="200.00")]

# One payment (with its invoices and settings) for every kind of decision.
CASES: dict[Kind, tuple[dict[str, Any], list[dict[str, Any]], MatchSettings]] = {
    Kind.CURRENCY_UNSUPPORTED: (payment("PM01", 1000, currency="SEK"), INVOICES, GBP),
    Kind.CUSTOMER_NOT_FOUND: (payment("PM02", 1000, gocardless_customer="CU9"), INVOICES, GBP),
    Kind.AMOUNT_NOT_POSITIVE: (payment("PM03", 0), INVOICES, GBP),
    Kind.NAME_NOT_FOUND: (payment("PM04", 50000, metadata={"sage_invoice": "999, 100010"}), INVOICES, GBP),
    Kind.NAMED_COLLECTED: (payment("PM05", 50000, reference="INV 100013 and 100010"), INVOICES, GBP),
    Kind.NAMED_CONSUMED: (payment("PM15", 20000, reference="INV 100016"), WITH_UNPOSTED, GBP),
    Kind.NAMED_IN_FULL: (payment("PM06", 75000, metadata={"sage_invoice": "100011,100010"}), INVOICES, GBP),
    Kind.NAMED_PARTLY: (payment("PM07", 60000, metadata={"sage_invoice": "100010, 100011"}), INVOICES, GBP),
    Kind.NAMED_EXCEEDED: (payment("PM08", 90000, description="for 0100010 and 0100011"), INVOICES, GBP),
    Kind.EXACT_ONE: (payment("PM09", 12000), INVOICES, GBP),
    Kind.EXACT_OLDEST: (payment("PM10", 30000), INVOICES, GBP),
    Kind.EXACT_TIE_HELD: (payment("PM11", 30000), INVOICES, HOLD_TIES),
    Kind.OLDEST_RUN: (payment("PM12", 105000), INVOICES, GBP),
    Kind.NOTHING_OPEN: (payment("PM13", 10000), ONLY_COLLECTED, GBP),
    Kind.NOTHING_ADDS_UP: (payment("PM14", 99999), INVOICES, GBP),
}


def both_paths(kind: Kind) -> dict[str, Any]:
    """The decision of the kind's case on both paths (asserted identical), as a match_payments row."""
    p, invoices, settings = CASES[kind]
    frame = pd.DataFrame([p])
    frame["amount"] = frame["amount"].astype("int64")
    frame["fx_amount"] = pd.array([p["fx_amount"]], dtype="Int64")
    vectorised = match_payments(frame, CUSTOMER_MAP, pd.DataFrame(invoices, dtype=object), settings)
    row = vectorised.to_dict("records")[0]
    known = CUSTOMER_MAP.set_index("gocardless_customer").loc[p["gocardless_customer"]]
    customer = {"sage_customer": known["sage_customer"], "customer_candidates": known["candidates"]}
    single = decide_for_customer(p | customer, invoices, settings).as_row()
    assert row == single
    return row


def sentence_pattern(spec: KindSpec) -> re.Pattern[str]:
    """A regular expression matching the sentences of a template: its text, with anything for each word."""
    return re.compile("".join(re.escape(text) + ("" if word is None else "(.+)") for text, word in spec.parts()))


def test_the_table_has_one_line_per_kind_with_a_consistent_outcome() -> None:
    assert list(KIND_TABLE) == list(Kind)
    assert set(CASES) == set(Kind)
    for kind, spec in KIND_TABLE.items():
        if spec.status == MATCHED:
            assert spec.reason is None and spec.rule is not None and spec.candidates is None, kind
        else:
            assert spec.status == HELD and spec.reason in REASON_CODES and spec.rule is None, kind
        assert spec.words(), kind  # every sentence shows some facts


@pytest.mark.parametrize("kind", list(Kind), ids=lambda kind: kind.name)
def test_both_paths_decide_each_kind_with_the_tables_status_reason_rule_and_sentence(kind: Kind) -> None:
    spec = KIND_TABLE[kind]
    row = both_paths(kind)

    assert (row["status"], row["reason"], row["rule"]) == (spec.status, spec.reason, spec.rule)
    assert sentence_pattern(spec).fullmatch(row["explanation"]), row["explanation"]
    others = [k for k in Kind if k is not kind and sentence_pattern(KIND_TABLE[k]).fullmatch(row["explanation"])]
    assert not others, f"{kind.name}'s case reads like {others}"
    assert bool(row["allocations"]) == (spec.status == MATCHED)
    assert bool(row["candidates"]) == (spec.candidates is not None and kind is not Kind.NOTHING_OPEN)


def test_candidates_are_what_the_table_lists() -> None:
    expected = {
        Kind.CUSTOMER_NOT_FOUND: ["01-ABF", "02-ABF"],  # Listing.CUSTOMER_KEYS
        Kind.NAME_NOT_FOUND: ["0100010", "0100011", "0100012", "0100014", "0100015"],  # OPEN_TOP
        Kind.NAMED_COLLECTED: ["0100013"],  # NAMED_COLLECTED
        Kind.NAMED_CONSUMED: ["0100016"],  # NAMED_CONSUMED
        Kind.NAMED_EXCEEDED: ["0100010", "0100011"],  # NAMED
        Kind.EXACT_TIE_HELD: ["0100012", "0100014"],  # TIED
        Kind.NOTHING_ADDS_UP: ["0100010", "0100011", "0100012", "0100014", "0100015"],  # OPEN_TOP
    }
    assert {KIND_TABLE[kind].candidates for kind in expected} == set(Listing)
    for kind, candidates in expected.items():
        assert both_paths(kind)["candidates"] == candidates, kind


def test_a_changed_line_of_the_table_changes_both_paths(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each sentence rewritten to tag its kind and show every word: both paths follow, word for word."""
    for kind, spec in KIND_TABLE.items():
        shown = ", ".join(f"{word}={{{word}}}" for word in sorted(spec.words()))
        monkeypatch.setitem(KIND_TABLE, kind, replace(spec, template=f"<{kind.name}> {shown}"))
    monkeypatch.setitem(
        KIND_TABLE, Kind.NOTHING_ADDS_UP, replace(KIND_TABLE[Kind.NOTHING_ADDS_UP], reason=AMBIGUOUS_MATCH)
    )

    for kind in Kind:
        row = both_paths(kind)  # asserts the paths agree
        assert row["explanation"].startswith(f"<{kind.name}> "), row["explanation"]
    assert both_paths(Kind.NOTHING_ADDS_UP)["reason"] == AMBIGUOUS_MATCH
    assert both_paths(Kind.OLDEST_RUN)["explanation"] == (
        "<OLDEST_RUN> amount=1050.00, n_run=3, run=0100010, 0100011, 0100012"
    )


def test_a_word_sql_does_not_know_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    spec = KIND_TABLE[Kind.EXACT_ONE]
    monkeypatch.setitem(KIND_TABLE, Kind.EXACT_ONE, replace(spec, template="exact amount: {no_such_word}"))

    with pytest.raises(ValueError, match="no_such_word"):
        both_paths(Kind.EXACT_ONE)


def test_each_kind_is_on_its_line_of_the_documented_decision_table() -> None:
    section = DOCS.read_text(encoding="utf-8").split("**The decision.**", 1)[1].split("Notes:", 1)[0]
    lines = {int(n): outcome for n, outcome in re.findall(r"^\| (\d+) \| [^|]+ \| (.+) \|$", section, re.M)}
    assert sorted(lines) == sorted({spec.line for spec in KIND_TABLE.values()})
    for kind, spec in KIND_TABLE.items():
        outcome = lines[spec.line]
        assert (spec.reason or "post") in outcome, (kind, outcome)
