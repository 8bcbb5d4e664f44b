"""Matching rules of docs/reconciliation.md, one behaviour per test.

Every payment decision is checked on both paths: the vectorised ``match_payments`` and the
one-payment ``decide_for_customer`` used by the write-back re-check (payment after payment, each seeing
what the earlier ones took: ``decide_in_order``) must agree field for field.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd
import pytest

from ml_connector_dagster.matching import (
    AMBIGUOUS_MATCH,
    AMOUNT_MISMATCH,
    CURRENCY_UNSUPPORTED,
    CUSTOMER_NOT_FOUND,
    DECISION_COLUMNS,
    HELD,
    INVOICE_ALREADY_COLLECTED,
    INVOICE_NOT_FOUND,
    MATCHED,
    REASON_CODES,
    RULE_EXACT_AMOUNT,
    RULE_NAMED_INVOICES,
    RULE_OLDEST_FIRST,
    SAGE_REJECTED,
    MatchSettings,
    decide_for_customer,
    decide_in_order,
    match_payments,
    normalize_invoice_no,
    reference_tokens,
    resolve_customers,
)

GBP = MatchSettings(home_currency="GBP")
HOLD_TIES = MatchSettings(home_currency="GBP", on_tie="hold")
CUSTOMER_MAP = pd.DataFrame(
    {
        "gocardless_customer": ["CU1", "CU2", "CU9"],
        "sage_customer": ["01-ABF", "01-XYZ", None],
        "resolved_by": ["metadata", "email", None],
        "candidates": [[], [], ["01-ABF", "02-ABF"]],
    }
)


def invoice(
    no: str,
    balance: str,
    *,
    customer: str = "01-ABF",
    typ: str = "IN",
    due: object = "2026-01-31",
    issued: object = "2026-01-01",
    payments_today: object = "0.00",
) -> dict[str, Any]:
    div, custno = customer.split("-", 1)
    return {
        "ARDivisionNo": div,
        "CustomerNo": custno,
        "InvoiceNo": no,
        "InvoiceType": typ,
        "InvoiceDate": issued,
        "InvoiceDueDate": due,
        "Balance": balance,
        "PaymentsToday": payments_today,
    }


def payment(amount: int, **fields: Any) -> dict[str, Any]:
    return {
        "id": "PM1",
        "amount": amount,
        "currency": "GBP",
        "reference": "",
        "description": "",
        "metadata": {},
        "fx_currency": None,
        "fx_amount": None,
        "gocardless_customer": "CU1",
    } | fields


def payments_frame(payments: list[dict[str, Any]]) -> pd.DataFrame:
    frame = pd.DataFrame(payments)
    frame["amount"] = frame["amount"].astype("int64")
    frame["fx_amount"] = pd.array([p["fx_amount"] for p in payments], dtype="Int64")
    return frame


def decide_all(
    payments: list[dict[str, Any]],
    invoices: list[dict[str, Any]],
    settings: MatchSettings = GBP,
    customer_map: pd.DataFrame = CUSTOMER_MAP,
) -> list[dict[str, Any]]:
    """Both paths' decisions (asserted equal), as match_payments rows."""
    rows = match_payments(payments_frame(payments), customer_map, pd.DataFrame(invoices, dtype=object), settings)
    sage = dict(zip(customer_map["gocardless_customer"], customer_map["sage_customer"], strict=True))
    cands = dict(zip(customer_map["gocardless_customer"], customer_map["candidates"], strict=True))
    customers = [{"sage_customer": sage.get(gc), "customer_candidates": cands.get(gc)} for gc in gc_customers(payments)]
    with_customers = [p | customer for p, customer in zip(payments, customers, strict=True)]
    single = [d.as_row() for d in decide_in_order(with_customers, lambda _customer: invoices, settings)]
    vectorised = rows.to_dict("records")
    assert vectorised == single
    return vectorised


def gc_customers(payments: list[dict[str, Any]]) -> list[str]:
    return [p["gocardless_customer"] for p in payments]


def decide(p: dict[str, Any], invoices: list[dict[str, Any]], settings: MatchSettings = GBP) -> dict[str, Any]:
    return decide_all([p], invoices, settings)[0]


def allocated(row: dict[str, Any]) -> list[tuple[str, str]]:
    return [(a["invoice_no"], str(a["amount"])) for a in row["allocations"]]


# -- which Sage customer ---------------------------------------------------------------------------

SAGE_CUSTOMERS = pd.DataFrame(
    {
        "ARDivisionNo": ["01", "01", "02", "01", "01"],
        "CustomerNo": ["ABF", "XYZ", "ABF", "DUP1", "DUP2"],
        "CustomerName": ["ABF Ltd", "XYZ Plc", "ABF North", "Twin A", "Twin B"],
        "EmailAddress": ["ap@abf.test", "Pay@XYZ.test ", "", "shared@twins.test", "shared@twins.test"],
    }
)


def resolve(**gc: Any) -> dict[str, Any]:
    row = {"id": "CU1", "email": None, "metadata": {}} | gc
    return resolve_customers(pd.DataFrame([row]), SAGE_CUSTOMERS).to_dict("records")[0]


def test_customer_resolves_by_metadata_sage_customer() -> None:
    result = resolve(metadata={"sage_customer": "02-ABF"}, email="ap@abf.test")

    assert (result["sage_customer"], result["resolved_by"]) == ("02-ABF", "metadata")


def test_metadata_sage_customer_may_be_a_json_string_in_any_case() -> None:
    result = resolve(metadata=json.dumps({"sage_customer": " 01-abf "}))

    assert (result["sage_customer"], result["resolved_by"]) == ("01-ABF", "metadata")


def test_customer_resolves_by_unique_email_trimmed_and_case_insensitive() -> None:
    result = resolve(email="  pay@xyz.TEST ")

    assert (result["sage_customer"], result["resolved_by"]) == ("01-XYZ", "email")


def test_metadata_naming_a_missing_customer_falls_back_to_email() -> None:
    result = resolve(metadata={"sage_customer": "09-NOPE"}, email="ap@abf.test")

    assert (result["sage_customer"], result["resolved_by"]) == ("01-ABF", "email")


def test_ambiguous_email_leaves_the_customer_unresolved_with_both_as_candidates() -> None:
    result = resolve(email="shared@twins.test")

    assert result["sage_customer"] is None
    assert result["resolved_by"] is None
    assert result["candidates"] == ["01-DUP1", "01-DUP2"]


def test_missing_customer_in_metadata_and_unknown_email_is_not_found_with_name_candidates() -> None:
    result = resolve(metadata={"sage_customer": "09-ABF"}, email="who@nowhere.test", company_name="xyz plc")

    assert result["sage_customer"] is None
    assert result["candidates"] == ["01-ABF", "01-XYZ", "02-ABF"]  # same CustomerNo, same name


def test_blank_emails_never_match() -> None:
    assert resolve(email="   ")["sage_customer"] is None


def test_unresolved_customer_is_held_customer_not_found_with_candidates() -> None:
    row = decide(payment(12000, gocardless_customer="CU9"), [invoice("0100030", "120.00")])

    assert (row["status"], row["reason"]) == (HELD, CUSTOMER_NOT_FOUND)
    assert row["candidates"] == ["01-ABF", "02-ABF"]
    assert row["allocations"] == []


def test_customer_missing_from_the_map_is_not_found() -> None:
    row = decide(payment(12000, gocardless_customer="CU404"), [invoice("0100030", "120.00")])

    assert row["reason"] == CUSTOMER_NOT_FOUND


# -- rule 1: named invoices ------------------------------------------------------------------------


def test_metadata_named_invoice_is_paid_in_full_ignoring_leading_zeros() -> None:
    invoices = [invoice("0100030", "120.00"), invoice("0100031", "120.00")]

    row = decide(payment(12000, metadata={"sage_invoice": "100031"}), invoices)

    assert (row["status"], row["rule"]) == (MATCHED, RULE_NAMED_INVOICES)
    assert allocated(row) == [("0100031", "120.00")]
    assert row["home_amount"] == Decimal("120.00")


def test_metadata_may_name_several_invoices_separated_by_commas() -> None:
    invoices = [invoice("0100030", "100.00"), invoice("0100031", "50.00"), invoice("0100032", "150.00")]

    row = decide(payment(15000, metadata={"sage_invoice": "0100031, 100030"}), invoices)

    assert allocated(row) == [("0100030", "100.00"), ("0100031", "50.00")]
    assert "paid in full" in row["explanation"]


def test_partial_payment_of_named_invoices_goes_oldest_first_the_last_partly() -> None:
    invoices = [
        invoice("0100031", "50.00", due="2026-02-28"),
        invoice("0100030", "100.00", due="2026-01-31"),
        invoice("0100032", "70.00", due="2026-03-31"),
    ]

    row = decide(payment(12000, metadata={"sage_invoice": "100030,100031,100032"}), invoices)

    assert (row["status"], row["rule"]) == (MATCHED, RULE_NAMED_INVOICES)
    assert allocated(row) == [("0100030", "100.00"), ("0100031", "20.00")]
    assert "0100031 partly (20.00 of 50.00)" in row["explanation"]


def test_amount_above_the_named_invoices_is_amount_mismatch() -> None:
    row = decide(payment(12001, metadata={"sage_invoice": "100030"}), [invoice("0100030", "120.00")])

    assert (row["status"], row["reason"]) == (HELD, AMOUNT_MISMATCH)
    assert row["candidates"] == ["0100030"]


def test_metadata_naming_an_invoice_of_another_customer_is_invoice_not_found() -> None:
    invoices = [invoice("0100030", "120.00"), invoice("0200040", "120.00", customer="01-XYZ")]

    row = decide(payment(12000, metadata={"sage_invoice": "0200040"}), invoices)

    assert (row["status"], row["reason"]) == (HELD, INVOICE_NOT_FOUND)
    assert "0200040" in row["explanation"]
    assert row["candidates"] == ["0100030"]


def test_one_missing_name_among_several_holds_the_payment() -> None:
    row = decide(payment(12000, metadata={"sage_invoice": "100030, 999"}), [invoice("0100030", "120.00")])

    assert row["reason"] == INVOICE_NOT_FOUND


def test_metadata_naming_a_credit_memo_is_invoice_not_found() -> None:
    row = decide(payment(12000, metadata={"sage_invoice": "0100030"}), [invoice("0100030", "120.00", typ="CM")])

    assert row["reason"] == INVOICE_NOT_FOUND


def test_named_zero_balance_invoice_is_already_collected() -> None:
    invoices = [invoice("0100030", "0.00"), invoice("0100031", "120.00")]

    row = decide(payment(12000, metadata={"sage_invoice": "100030"}), invoices)

    assert (row["status"], row["reason"]) == (HELD, INVOICE_ALREADY_COLLECTED)
    assert row["candidates"] == ["0100030"]


def test_one_collected_invoice_among_the_named_holds_the_payment() -> None:
    invoices = [invoice("0100030", "0.00"), invoice("0100031", "120.00")]

    row = decide(payment(12000, reference="INV 0100030 0100031"), invoices)

    assert row["reason"] == INVOICE_ALREADY_COLLECTED


def test_reference_token_names_an_invoice_case_insensitively_ignoring_leading_zeros() -> None:
    invoices = [invoice("00AB123", "80.00"), invoice("0100030", "120.00")]

    row = decide(payment(8000, reference="inv-ab123/x"), invoices)

    assert (row["rule"], allocated(row)) == (RULE_NAMED_INVOICES, [("00AB123", "80.00")])


def test_description_tokens_name_invoices_too() -> None:
    invoices = [invoice("0100030", "120.00"), invoice("0100031", "30.00")]

    row = decide(payment(3000, description="Payment for invoice 100031, thanks"), invoices)

    assert (row["rule"], allocated(row)) == (RULE_NAMED_INVOICES, [("0100031", "30.00")])


def test_reference_token_matching_nothing_is_not_a_name() -> None:
    row = decide(payment(12000, reference="GC-0099999-X"), [invoice("0100030", "120.00")])

    assert (row["status"], row["rule"]) == (MATCHED, RULE_EXACT_AMOUNT)


def test_metadata_names_win_over_reference_tokens() -> None:
    invoices = [invoice("0100030", "120.00"), invoice("0100031", "120.00")]

    row = decide(payment(12000, metadata={"sage_invoice": "100031"}, reference="0100030"), invoices)

    assert allocated(row) == [("0100031", "120.00")]


def test_metadata_may_be_a_json_string() -> None:
    row = decide(payment(12000, metadata=json.dumps({"sage_invoice": "100030"})), [invoice("0100030", "120.00")])

    assert row["rule"] == RULE_NAMED_INVOICES


# -- rule 2: exact amount --------------------------------------------------------------------------


def test_exact_amount_posts_to_the_single_invoice_of_that_balance() -> None:
    invoices = [invoice("0100030", "50.00"), invoice("0100031", "120.00")]

    row = decide(payment(12000), invoices)

    assert (row["status"], row["rule"], allocated(row)) == (MATCHED, RULE_EXACT_AMOUNT, [("0100031", "120.00")])


def three_equal_invoices() -> list[dict[str, Any]]:
    return [
        invoice("0100032", "120.00", due="2026-03-31"),
        invoice("0100030", "120.00", due="2026-01-31"),
        invoice("0100031", "120.00", due="2026-02-28"),
    ]


def test_equal_invoices_with_on_tie_oldest_post_to_the_oldest() -> None:
    row = decide(payment(12000), three_equal_invoices())

    assert (row["status"], row["rule"], allocated(row)) == (MATCHED, RULE_EXACT_AMOUNT, [("0100030", "120.00")])
    assert "exact amount: oldest of 3 invoices of 120.00" in row["explanation"]


def test_equal_invoices_with_on_tie_hold_are_ambiguous() -> None:
    row = decide(payment(12000), three_equal_invoices(), HOLD_TIES)

    assert (row["status"], row["reason"]) == (HELD, AMBIGUOUS_MATCH)
    assert row["candidates"] == ["0100030", "0100031", "0100032"]


def test_oldest_is_by_due_date_then_invoice_date_then_number() -> None:
    invoices = [
        invoice("0000009", "120.00", due="2026-02-01", issued="2025-12-01"),
        invoice("0000008", "120.00", due="2026-01-01", issued="2025-12-15"),
        invoice("0000007", "120.00", due="2026-01-01", issued="2025-12-15"),
        invoice("0000006", "120.00", due="2026-01-01", issued="2025-12-20"),
    ]

    assert allocated(decide(payment(12000), invoices)) == [("0000007", "120.00")]


def test_dates_may_be_date_objects() -> None:
    invoices = [
        invoice("0000002", "120.00", due=date(2026, 1, 1)),
        invoice("0000001", "120.00", due=date(2026, 2, 1)),
    ]

    assert allocated(decide(payment(12000), invoices)) == [("0000002", "120.00")]


# -- rule 3: oldest first --------------------------------------------------------------------------


def test_oldest_first_posts_the_shortest_run_of_oldest_invoices_adding_up() -> None:
    invoices = [
        invoice("0100030", "100.00", due="2026-01-31"),
        invoice("0100031", "30.00", due="2026-02-28"),
        invoice("0100032", "20.00", due="2026-03-31"),
        invoice("0100033", "10.00", due="2026-04-30"),
    ]

    row = decide(payment(15000), invoices)

    assert (row["status"], row["rule"]) == (MATCHED, RULE_OLDEST_FIRST)
    assert allocated(row) == [("0100030", "100.00"), ("0100031", "30.00"), ("0100032", "20.00")]


def test_oldest_first_skips_collected_and_non_invoice_rows() -> None:
    invoices = [
        invoice("0100029", "0.00", due="2026-01-01"),
        invoice("0100028", "40.00", due="2026-01-02", typ="CM"),
        invoice("0100030", "100.00", due="2026-01-31"),
        invoice("0100031", "30.00", due="2026-02-28", typ="FC"),
    ]

    row = decide(payment(13000), invoices)

    assert allocated(row) == [("0100030", "100.00"), ("0100031", "30.00")]
    assert row["allocations"][1]["invoice_type"] == "FC"


# -- rule 4 and nothing to apply to ----------------------------------------------------------------


def test_no_rule_applying_is_amount_mismatch_listing_open_invoices() -> None:
    invoices = [invoice("0100030", "100.00", due="2026-01-31"), invoice("0100031", "30.00", due="2026-02-28")]

    row = decide(payment(3001), invoices)

    assert (row["status"], row["reason"], row["rule"]) == (HELD, AMOUNT_MISMATCH, None)
    assert row["candidates"] == ["0100030", "0100031"]


def test_customer_without_open_invoices_is_amount_mismatch() -> None:
    row = decide(payment(12000), [invoice("0100030", "0.00"), invoice("0100031", "120.00", customer="01-XYZ")])

    assert (row["status"], row["reason"]) == (HELD, AMOUNT_MISMATCH)
    assert "no open invoice" in row["explanation"]


def test_every_named_invoice_collected_is_already_collected_not_mismatch() -> None:
    invoices = [invoice("0100030", "0.00"), invoice("0100031", "0.00")]

    row = decide(payment(12000, metadata={"sage_invoice": "100030,100031"}), invoices)

    assert row["reason"] == INVOICE_ALREADY_COLLECTED


# -- open amounts: unposted receipts and earlier payments -------------------------------------------


def test_receipts_entered_but_not_posted_lower_the_open_amount_the_rules_use() -> None:
    invoices = [invoice("0100030", "500.00", payments_today="200.00"), invoice("0100031", "500.00", due="2026-02-28")]

    row = decide(payment(30000), invoices)

    assert (row["rule"], allocated(row)) == (RULE_EXACT_AMOUNT, [("0100030", "300.00")])


def test_a_named_invoice_whose_balance_unposted_receipts_consumed_is_already_collected_saying_so() -> None:
    invoices = [invoice("0100030", "120.00", payments_today="120.00"), invoice("0100031", "120.00")]

    row = decide(payment(12000, reference="INV-0100030"), invoices)

    assert (row["status"], row["reason"], row["candidates"]) == (HELD, INVOICE_ALREADY_COLLECTED, ["0100030"])
    assert "consumed by unposted receipts" in row["explanation"]


def test_a_named_invoice_with_part_left_open_takes_only_that_part() -> None:
    invoices = [invoice("0100030", "120.00", payments_today="100.00")]

    row = decide(payment(12000, reference="INV-0100030"), invoices)

    assert (row["status"], row["reason"]) == (HELD, AMOUNT_MISMATCH)
    assert row["explanation"] == "amount 120.00 exceeds the 20.00 open on named invoice 0100030"


@pytest.mark.parametrize("missing", [None, float("nan")])
def test_a_missing_payments_today_counts_as_nothing_unposted(missing: object) -> None:
    row = decide(payment(12000), [invoice("0100030", "120.00", payments_today=missing)])

    assert allocated(row) == [("0100030", "120.00")]


def test_a_second_payment_naming_the_invoice_the_first_took_is_held_already_collected() -> None:
    first, second = payment(12000, id="PM1", reference="INV-0100030"), payment(12000, id="PM2", reference="INV-0100030")

    rows = decide_all([first, second], [invoice("0100030", "120.00")])

    assert allocated(rows[0]) == [("0100030", "120.00")]
    assert (rows[1]["status"], rows[1]["reason"]) == (HELD, INVOICE_ALREADY_COLLECTED)
    assert "consumed by unposted receipts" in rows[1]["explanation"]


def test_payments_competing_for_one_invoice_are_decided_in_the_order_given() -> None:
    early, late = payment(12000, id="PM1"), payment(12000, id="PM2")
    invoices = [invoice("0100030", "120.00")]

    forward, backward = decide_all([early, late], invoices), decide_all([late, early], invoices)

    assert [(r["payment_id"], r["status"]) for r in forward] == [("PM1", MATCHED), ("PM2", HELD)]
    assert [(r["payment_id"], r["status"]) for r in backward] == [("PM2", MATCHED), ("PM1", HELD)]


def test_a_later_payment_matches_what_an_earlier_one_left_open() -> None:
    invoices = [invoice("0100030", "100.00"), invoice("0100031", "50.00", due="2026-02-28")]
    partly = payment(7000, id="PM1", metadata={"sage_invoice": "0100030"})

    rows = decide_all([partly, payment(8000, id="PM2")], invoices)

    assert allocated(rows[0]) == [("0100030", "70.00")]
    assert (rows[1]["rule"], allocated(rows[1])) == (RULE_OLDEST_FIRST, [("0100030", "30.00"), ("0100031", "50.00")])


def test_payments_of_other_customers_do_not_take_from_each_other() -> None:
    invoices = [invoice("0100030", "120.00"), invoice("0100030", "120.00", customer="01-XYZ")]

    rows = decide_all([payment(12000, id="PM1"), payment(12000, id="PM2", gocardless_customer="CU2")], invoices)

    assert [r["status"] for r in rows] == [MATCHED, MATCHED]


def test_float_payments_today_is_refused_on_both_paths() -> None:
    invoices = [invoice("0100030", "120.00", payments_today=1.5)]
    with pytest.raises(TypeError):
        match_payments(payments_frame([payment(100)]), CUSTOMER_MAP, pd.DataFrame(invoices), GBP)
    with pytest.raises(TypeError):
        decide_for_customer(payment(100) | {"sage_customer": "01-ABF"}, invoices, GBP)


# -- currencies ------------------------------------------------------------------------------------


def test_gocardless_fx_amount_in_home_currency_is_matched() -> None:
    row = decide(payment(15000, currency="USD", fx_currency="GBP", fx_amount=12000), [invoice("0100030", "120.00")])

    assert (row["status"], row["home_amount"]) == (MATCHED, Decimal("120.00"))


def test_company_rate_converts_with_half_even_rounding() -> None:
    settings = MatchSettings(home_currency="GBP", fx_rates={"EUR": Decimal("0.5")})

    row = decide(payment(24005, currency="EUR"), [invoice("0100030", "120.02")], settings)  # 120.025 -> 120.02

    assert (row["status"], row["home_amount"], allocated(row)) == (MATCHED, Decimal("120.02"), [("0100030", "120.02")])


def test_unsupported_currency_is_held() -> None:
    row = decide(payment(12000, currency="SEK"), [invoice("0100030", "120.00")])

    assert (row["status"], row["reason"], row["home_amount"]) == (HELD, CURRENCY_UNSUPPORTED, None)


# -- the output ------------------------------------------------------------------------------------


def test_one_row_per_payment_in_input_order_with_every_column() -> None:
    payments = [
        payment(12000, id="PM2"),
        payment(5, id="PM1", currency="SEK"),
        payment(1, id="PM3", gocardless_customer="CU9"),
    ]

    rows = decide_all(payments, [invoice("0100030", "120.00")])

    assert [r["payment_id"] for r in rows] == ["PM2", "PM1", "PM3"]
    assert [r["reason"] for r in rows] == [None, CURRENCY_UNSUPPORTED, CUSTOMER_NOT_FOUND]
    assert set(rows[0]) == set(DECISION_COLUMNS)


def test_amounts_come_out_as_decimals_adding_up_to_the_payment() -> None:
    row = decide(payment(15000), [invoice("0100030", "100.00"), invoice("0100031", "50.00", due="2026-02-28")])

    assert all(isinstance(a["amount"], Decimal) for a in row["allocations"])
    assert sum(a["amount"] for a in row["allocations"]) == row["home_amount"] == Decimal("150.00")


def test_balances_may_be_decimals_or_odd_decimal_strings() -> None:
    invoices = [invoice("0100030", Decimal("120.0")), invoice("0100031", " 7.5 "), invoice("0100032", "1E+1")]

    rows = decide_all([payment(12000), payment(750, id="PM2"), payment(1000, id="PM3")], invoices)

    assert [allocated(r) for r in rows] == [[("0100030", "120.00")], [("0100031", "7.50")], [("0100032", "10.00")]]


@pytest.mark.parametrize("bad", ["1.001", "twelve", None])
def test_sub_cent_or_unreadable_balances_are_refused_on_both_paths(bad: str | None) -> None:
    invoices = [invoice("1", "1.00"), invoice("2", bad)]
    with pytest.raises(ValueError):
        match_payments(payments_frame([payment(100)]), CUSTOMER_MAP, pd.DataFrame(invoices), GBP)
    with pytest.raises(ValueError):
        decide_for_customer(payment(100) | {"sage_customer": "01-ABF"}, invoices, GBP)


def test_float_money_is_refused() -> None:
    frame = payments_frame([payment(100)])
    frame["amount"] = frame["amount"].astype("float64")
    with pytest.raises(TypeError):
        match_payments(frame, CUSTOMER_MAP, pd.DataFrame([invoice("1", "1.00")]), GBP)
    with pytest.raises(TypeError):
        decide_for_customer(payment(1.0) | {"sage_customer": "01-ABF"}, [], GBP)
    with pytest.raises(TypeError):
        float_balances = pd.DataFrame([invoice("1", "1.00")]).assign(Balance=1.0)
        match_payments(payments_frame([payment(100)]), CUSTOMER_MAP, float_balances, GBP)


def test_no_payments_give_an_empty_frame_with_every_column() -> None:
    no_payments = payments_frame([payment(1)]).iloc[:0]

    rows = match_payments(no_payments, CUSTOMER_MAP, pd.DataFrame([invoice("1", "1.00")]), GBP)

    assert rows.empty
    assert list(rows.columns) == list(DECISION_COLUMNS)


def test_every_reason_code_of_the_spec_is_exported() -> None:
    assert set(REASON_CODES) == {
        "customer_not_found",
        "invoice_not_found",
        "invoice_already_collected",
        "amount_mismatch",
        "ambiguous_match",
        "currency_unsupported",
        "sage_rejected",
    }
    assert SAGE_REJECTED == "sage_rejected"


def test_settings_refuse_unknown_tie_rules_and_currencies() -> None:
    with pytest.raises(ValueError):
        MatchSettings(home_currency="GBP", on_tie="newest")
    with pytest.raises(ValueError):
        MatchSettings(home_currency="ZZZ")


def test_names_are_normalised_case_insensitively_without_leading_zeros() -> None:
    assert normalize_invoice_no(" 00ab12 ") == "AB12"
    assert normalize_invoice_no("0000") == "0"
    assert reference_tokens("INV-0100030/a_b", None) == {"INV", "100030", "A", "B"}


def test_invoices_without_a_due_date_count_as_newest() -> None:
    invoices = [invoice("0000001", "120.00", due=None), invoice("0000002", "120.00", due="2026-06-30")]

    assert allocated(decide(payment(12000), invoices)) == [("0000002", "120.00")]
