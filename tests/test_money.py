"""Money: ISO 4217 exponents, minor units and the amount in Sage's home currency (never float)."""

from __future__ import annotations

from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from ml_connector_dagster.money import (
    ISO_4217_EXPONENTS,
    InexactAmount,
    UnsupportedCurrency,
    exponent,
    from_cents,
    to_cents,
    to_decimal,
    to_home_amount,
    to_home_cents,
    to_minor,
)
from ml_connector_dagster.sage100.model import money as sage_money

GOCARDLESS_CURRENCIES = ("AUD", "CAD", "DKK", "EUR", "GBP", "NZD", "SEK", "USD")


@pytest.mark.parametrize("currency", GOCARDLESS_CURRENCIES)
def test_every_gocardless_currency_has_two_decimals(currency: str) -> None:
    assert exponent(currency) == 2


@pytest.mark.parametrize(
    ("currency", "expected"),
    [
        ("JPY", 0),
        ("KRW", 0),
        ("ISK", 0),
        ("KWD", 3),
        ("BHD", 3),
        ("JOD", 3),
        ("OMR", 3),
        ("TND", 3),
        ("CLF", 4),
        ("CHF", 2),
    ],
)
def test_exponent_is_read_from_the_iso_table(currency: str, expected: int) -> None:
    assert exponent(currency) == expected


def test_iso_table_is_a_real_read_only_table() -> None:
    assert len(ISO_4217_EXPONENTS) > 150
    with pytest.raises(TypeError):
        ISO_4217_EXPONENTS["XXX"] = 2  # type: ignore[index]


def test_currency_codes_are_case_insensitive() -> None:
    assert exponent(" gbp ") == 2


def test_unknown_currency_raises_a_clear_error() -> None:
    with pytest.raises(UnsupportedCurrency, match="'XYZ'"):
        exponent("XYZ")


@pytest.mark.parametrize(
    ("minor", "currency", "expected"),
    [
        (1234, "GBP", "12.34"),
        (5, "GBP", "0.05"),
        (0, "EUR", "0.00"),
        (-150, "USD", "-1.50"),
        (1234, "JPY", "1234"),
        (1234, "KWD", "1.234"),
    ],
)
def test_minor_units_become_exact_decimals(minor: int, currency: str, expected: str) -> None:
    amount = to_decimal(minor, currency)

    assert isinstance(amount, Decimal)
    assert str(amount) == expected


@pytest.mark.parametrize("bad", [12.0, True, Decimal("12"), "12"])
def test_to_decimal_refuses_anything_but_integers(bad: object) -> None:
    with pytest.raises(TypeError):
        to_decimal(bad, "GBP")  # type: ignore[arg-type]


def test_to_minor_accepts_exact_amounts_including_trailing_zeros() -> None:
    assert to_minor(Decimal("12.34"), "GBP") == 1234
    assert to_minor(Decimal("12.3400"), "GBP") == 1234
    assert to_minor(Decimal("1200"), "JPY") == 1200


def test_to_minor_refuses_inexact_amounts() -> None:
    with pytest.raises(InexactAmount):
        to_minor(Decimal("12.345"), "GBP")
    with pytest.raises(InexactAmount):
        to_minor(Decimal("0.5"), "JPY")


def test_to_minor_refuses_floats_and_non_finite_amounts() -> None:
    with pytest.raises(TypeError):
        to_minor(12.34, "GBP")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        to_minor(Decimal("NaN"), "GBP")


def test_cents_round_trip_for_sage_amounts() -> None:
    assert to_cents(Decimal("1200.00")) == 120000
    assert str(from_cents(120000)) == "1200.00"
    with pytest.raises(InexactAmount):
        to_cents(Decimal("0.001"))


@given(st.integers(min_value=-(10**15), max_value=10**15), st.sampled_from(sorted(ISO_4217_EXPONENTS)))
def test_decimal_and_minor_units_round_trip(minor: int, currency: str) -> None:
    assert to_minor(to_decimal(minor, currency), currency) == minor


# -- the amount in Sage's home currency ------------------------------------------------------------


def test_home_currency_payment_is_taken_directly() -> None:
    assert to_home_amount(123456, "GBP", "GBP") == Decimal("1234.56")


def test_fx_amount_is_used_when_gocardless_converted_into_home_currency() -> None:
    rates = {"EUR": Decimal("0.5")}

    amount = to_home_amount(10000, "EUR", "GBP", fx_currency="GBP", fx_amount=8612, rates=rates)

    assert amount == Decimal("86.12")


def test_fx_amount_in_another_currency_is_ignored_for_the_rate() -> None:
    amount = to_home_amount(10000, "EUR", "GBP", fx_currency="USD", fx_amount=1, rates={"EUR": Decimal("0.86")})

    assert amount == Decimal("86.00")


@pytest.mark.parametrize(
    ("minor", "rate", "expected"),
    [
        (1005, "0.5", "5.02"),
        (1015, "0.5", "5.08"),
        (1025, "0.5", "5.12"),
        (10000, "0.8600", "86.00"),
        (1, "0.004", "0.00"),
    ],
)
def test_rate_conversion_rounds_half_even_to_two_decimals(minor: int, rate: str, expected: str) -> None:
    amount = to_home_amount(minor, "EUR", "GBP", rates={"EUR": Decimal(rate)})

    assert str(amount) == expected


def test_rates_may_be_decimal_strings_but_never_floats() -> None:
    assert to_home_amount(1000, "EUR", "GBP", rates={"EUR": "0.86"}) == Decimal("8.60")
    with pytest.raises(TypeError):
        to_home_amount(1000, "EUR", "GBP", rates={"EUR": 0.86})  # type: ignore[dict-item]
    with pytest.raises(ValueError):
        to_home_amount(1000, "EUR", "GBP", rates={"EUR": "-1"})


def test_no_fx_amount_and_no_rate_means_currency_unsupported() -> None:
    assert to_home_amount(1000, "SEK", "GBP", rates={"EUR": Decimal("0.86")}) is None


def test_unknown_payment_currency_still_uses_gocardless_fx_amount() -> None:
    assert to_home_amount(1000, "XYZ", "GBP", fx_currency="GBP", fx_amount=990) == Decimal("9.90")
    assert to_home_amount(1000, "XYZ", "GBP", rates={"XYZ": Decimal("1")}) is None


def test_home_currency_with_other_exponents_gives_sage_two_decimals() -> None:
    assert to_home_amount(1234, "JPY", "JPY") == Decimal("1234.00")
    assert to_home_amount(1235, "KWD", "KWD") == Decimal("1.24")  # half-even: 1.235 -> 1.24
    assert to_home_amount(1225, "KWD", "KWD") == Decimal("1.22")


def test_unknown_home_currency_is_a_configuration_error() -> None:
    with pytest.raises(UnsupportedCurrency):
        to_home_amount(1000, "GBP", "XXX")


@pytest.mark.parametrize("bad", [{"amount_minor": 10.0}, {"fx_amount": 10.0, "fx_currency": "GBP"}])
def test_float_amounts_are_refused(bad: dict) -> None:
    args = {"amount_minor": 1000, "currency": "USD", "home_currency": "GBP"} | bad

    with pytest.raises(TypeError):
        to_home_amount(**args)


PAYMENT = st.tuples(
    st.integers(min_value=-(10**12), max_value=10**12),
    st.one_of(st.sampled_from(["GBP", "gbp ", "EUR", "JPY", "KWD", "SEK", "XXX", ""]), st.none()),
    st.one_of(st.sampled_from(["GBP", " gbp", "EUR"]), st.none()),
    st.one_of(st.integers(min_value=-(10**9), max_value=10**9), st.none()),
)


@given(st.lists(PAYMENT, max_size=30), st.sampled_from(["GBP", "JPY", "KWD"]))
def test_array_conversion_gives_the_cents_of_the_one_payment_conversion(payments: list, home: str) -> None:
    rates = {"EUR": Decimal("0.8537"), "jpy": "0.0053", "KWD": Decimal("2.6")}
    amounts, currencies, fx_currencies, fx_amounts = zip(*payments, strict=True) if payments else ((), (), (), ())

    cents, known = to_home_cents(
        np.array(amounts, dtype=np.int64),
        np.array(currencies, dtype=object),
        home,
        np.array(fx_currencies, dtype=object),
        np.ma.masked_array([f or 0 for f in fx_amounts], [f is None for f in fx_amounts], dtype=np.int64),
        rates,
    )

    for i, (amount, currency, fx_currency, fx_amount) in enumerate(payments):
        one = to_home_amount(amount, str(currency), home, fx_currency, fx_amount, rates)
        expected = (one is not None, None if one is None else to_cents(one))
        assert (bool(known[i]), int(cents[i]) if known[i] else None) == expected


@pytest.mark.parametrize("text", ["١٠", "１０", "1e3", "10.00x", "2026-11-20", "", "Infinity", "NaN"])
def test_an_amount_written_as_text_must_use_ascii_digits(text: str) -> None:
    with pytest.raises(ValueError, match="digits 0-9"):
        sage_money(text, "amount")
