"""Money: GoCardless minor units, ISO 4217 exponents and conversion to Sage's home currency.

Pure: no I/O, no floats.  GoCardless sends integer minor units; Sage 100 keeps home-currency amounts
with 2 decimals.  The exponent of a currency is always read from :data:`ISO_4217_EXPONENTS` (never
assumed to be 2), and every amount is a :class:`~decimal.Decimal` or an ``int``.  A ``float`` passed
to any function here is refused with :class:`TypeError`: binary floating point is how other
connectors ended up with 0.01 leftovers.

Public API::

    exponent(currency) -> int                      # UnsupportedCurrency for unknown codes
    to_decimal(minor, currency) -> Decimal         # 1234, "GBP" -> Decimal("12.34")
    to_minor(amount, currency) -> int              # Decimal("12.34"), "GBP" -> 1234; InexactAmount if not exact
    to_home_amount(amount_minor, currency, home_currency, fx_currency, fx_amount, rates) -> Decimal | None
    to_home_cents(amounts_minor, currencies, home_currency, fx_currencies, fx_amounts, rates)
                                                   # the same for arrays, in Sage cents: (cents, has_amount)
    to_cents(amount) -> int / from_cents(cents) -> Decimal   # Sage amounts (2 decimals)
    fx_rate(rates, currency) -> Decimal | None     # the configured rate, validated
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation, localcontext
from numbers import Integral
from types import MappingProxyType
from typing import Any

import numpy as np

__all__ = [
    "ISO_4217_EXPONENTS",
    "SAGE_EXPONENT",
    "AmountTooLarge",
    "InexactAmount",
    "UnsupportedCurrency",
    "exponent",
    "from_cents",
    "fx_rate",
    "to_cents",
    "to_decimal",
    "to_home_amount",
    "to_home_cents",
    "to_minor",
]

#: Sage 100 AR amounts are home currency with 2 decimals.
SAGE_EXPONENT = 2

_E0 = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_E3 = "BHD IQD JOD KWD LYD OMR TND"
_E4 = "CLF UYW"
_E2 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN "
    "BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP "
    "GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP "
    "LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR "
    "NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN "
    "SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR "
    "ZMW ZWG"
)

#: ISO 4217 minor-unit exponents of the active currency codes (the "List One" table), read-only.
ISO_4217_EXPONENTS: Mapping[str, int] = MappingProxyType(
    {code: exp for exp, codes in ((0, _E0), (2, _E2), (3, _E3), (4, _E4)) for code in codes.split()}
)

_CENT = Decimal(1).scaleb(-SAGE_EXPONENT)
_SAFE = 10**20


class UnsupportedCurrency(ValueError):
    """A currency code that is not in the ISO 4217 table."""


class AmountTooLarge(ValueError):
    """An amount whose Sage cents do not fit in 62 bits; ``row`` is its position in the arrays."""

    def __init__(self, row: int, amount_minor: int) -> None:
        super().__init__(f"amount {amount_minor} is too large for a Sage amount")
        self.row = row


class InexactAmount(ValueError):
    """An amount that cannot be written in whole minor units of its currency."""


def exponent(currency: str) -> int:
    """Minor-unit exponent of ``currency`` (case-insensitive ISO 4217 code)."""
    if not isinstance(currency, str):
        raise TypeError(f"currency must be a str ISO 4217 code, not {type(currency).__name__}")
    try:
        return ISO_4217_EXPONENTS[currency.strip().upper()]
    except KeyError:
        raise UnsupportedCurrency(f"unknown ISO 4217 currency code {currency!r}") from None


def to_decimal(minor: int, currency: str) -> Decimal:
    """Exact Decimal for an integer amount of minor units (``1234, "GBP"`` -> ``12.34``)."""
    return _scaled(_check_int(minor, "minor"), exponent(currency))


def to_minor(amount: Decimal, currency: str) -> int:
    """Integer minor units of ``amount``; refuses amounts finer than the currency allows."""
    return _whole_units(_check_decimal(amount, "amount"), exponent(currency), currency)


def to_cents(amount: Decimal) -> int:
    """Integer cents of a Sage (2-decimal) amount; refuses sub-cent amounts."""
    return _whole_units(_check_decimal(amount, "amount"), SAGE_EXPONENT, "Sage amount")


def from_cents(cents: int) -> Decimal:
    """Sage amount (2 decimals) of an integer number of cents."""
    if type(cents) is int and -_SAFE < cents < _SAFE:  # hot path of matching: no further checks needed
        return Decimal(cents).scaleb(-SAGE_EXPONENT)
    return _scaled(_check_int(cents, "cents"), SAGE_EXPONENT)


def to_home_amount(
    amount_minor: int,
    currency: str,
    home_currency: str,
    fx_currency: str | None = None,
    fx_amount: int | None = None,
    rates: Mapping[str, Decimal] | None = None,
) -> Decimal | None:
    """The payment's amount in Sage's home currency, 2 decimals, or None (``currency_unsupported``).

    Follows docs/reconciliation.md "Amount in Sage's currency", first match wins:
    1. currency is the home currency: ``amount_minor / 10**exponent``;
    2. GoCardless converted it (``fx_currency`` is home and ``fx_amount`` set, in home minor units):
       that amount;
    3. the company has a rate for ``currency`` (home units per one foreign unit): amount x rate,
       rounded half-even to 2 decimals;
    4. otherwise None.
    Amounts of home currencies with more than 2 decimals are rounded half-even to Sage's 2.
    """
    _check_int(amount_minor, "amount_minor")
    home_exp = exponent(home_currency)
    home = home_currency.strip().upper()
    if _upper(currency) == home:
        return _to_sage(_scaled(amount_minor, home_exp))
    if fx_amount is not None and _upper(fx_currency) == home:
        return _to_sage(_scaled(_check_int(fx_amount, "fx_amount"), home_exp))
    rate = fx_rate(rates, currency)
    if rate is None or _upper(currency) not in ISO_4217_EXPONENTS:
        return None
    with localcontext() as ctx:
        ctx.prec = 80
        return _to_sage(_scaled(amount_minor, exponent(currency)) * rate)


def to_home_cents(
    amounts_minor: np.ndarray,
    currencies: np.ndarray,
    home_currency: str,
    fx_currencies: np.ndarray | None = None,
    fx_amounts: np.ma.MaskedArray | None = None,
    rates: Mapping[str, Decimal] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`to_home_amount` for many payments at once, in Sage cents: ``(cents, has_amount)``.

    ``amounts_minor`` is int64; ``currencies`` and ``fx_currencies`` hold codes as given (anything that
    is not a string matches nothing); ``fx_amounts`` is int64, masked where missing.  The same steps,
    first match wins, each one numpy pass (step 3 one per currency), with exact integer half-even
    rounding; where ``has_amount`` is False the payment is ``currency_unsupported``.  Raises
    :class:`AmountTooLarge` for an amount whose cents do not fit in 62 bits.
    """
    n = len(amounts_minor)
    home = home_currency.strip().upper()
    home_unit = 10 ** exponent(home)
    codes = _codes(currencies)
    fx_codes = _codes(fx_currencies) if fx_currencies is not None else np.full(n, "", dtype=object)
    cents, known = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    sage_unit = 10**SAGE_EXPONENT
    _put(cents, known, codes == home, amounts_minor, sage_unit, home_unit)  # 1. the home currency
    if fx_amounts is not None:  # 2. GoCardless converted it
        converted = ~known & (fx_codes == home) & ~np.ma.getmaskarray(fx_amounts)
        _put(cents, known, converted, np.ma.filled(fx_amounts, 0), sage_unit, home_unit)
    rest = ~known
    for code in dict.fromkeys(codes[rest].tolist()):  # 3. the company's rate
        rate = fx_rate(rates, code) if code in ISO_4217_EXPONENTS else None
        if rate is not None:
            numerator, denominator = rate.as_integer_ratio()
            _put(
                cents,
                known,
                rest & (codes == code),
                amounts_minor,
                numerator * sage_unit,
                denominator * 10 ** exponent(code),
            )
    return cents, known


def _codes(values: np.ndarray) -> np.ndarray:
    """Currency codes trimmed and upper case, "" for anything that is not a string (once per distinct value)."""
    normal: dict[Any, str] = {}
    for value in dict.fromkeys(values.tolist()) if len(values) else ():
        normal[value] = value.strip().upper() if isinstance(value, str) else ""
    return np.array(list(map(normal.__getitem__, values.tolist())), dtype=object)


def _put(cents: np.ndarray, known: np.ndarray, rows: np.ndarray, units: np.ndarray, mul: int, div: int) -> None:
    """``cents[rows] = units[rows] * mul / div``, rounded half-even, exactly; marks the rows known."""
    if not rows.any():
        return
    values = units[rows]
    common = math.gcd(mul, div)
    mul, div = mul // common, div // common
    big = int(np.abs(values).max()) * mul >= 2**62  # int64 would overflow: Python integers instead
    scaled = values.astype(object) * mul if big else values * mul
    quotient, remainder = scaled // div, scaled % div  # floor division: 0 <= remainder < div
    result = quotient + ((2 * remainder > div) | ((2 * remainder == div) & (quotient % 2 == 1)))
    if big:
        too_big = np.flatnonzero(np.abs(result) >= 2**62)
        if len(too_big):
            raise AmountTooLarge(int(np.flatnonzero(rows)[too_big[0]]), int(values[too_big[0]]))
    cents[rows] = np.asarray(result, dtype=np.int64)
    known[rows] = True


def fx_rate(rates: Mapping[str, Decimal] | None, currency: str) -> Decimal | None:
    """The configured rate for ``currency``, validated (Decimal or decimal string, > 0)."""
    if not rates:
        return None
    code = _upper(currency)
    raw = next((value for key, value in rates.items() if _upper(key) == code), None)
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (Decimal, str, Integral)):
        raise TypeError(f"fx rate for {code} must be a Decimal or a decimal string, not {type(raw).__name__}")
    try:
        rate = raw if isinstance(raw, Decimal) else Decimal(str(raw).strip())
    except InvalidOperation:
        raise ValueError(f"fx rate for {code} is not a number: {raw!r}") from None
    if not rate.is_finite() or rate <= 0:
        raise ValueError(f"fx rate for {code} must be a positive number, got {raw!r}")
    return rate


def _to_sage(amount: Decimal) -> Decimal:
    with localcontext() as ctx:
        ctx.prec = 80
        return amount.quantize(_CENT, rounding=ROUND_HALF_EVEN)


def _scaled(units: int, exp: int) -> Decimal:
    """``units * 10**-exp`` exactly, keeping ``exp`` decimals (no context rounding)."""
    if -_SAFE < units < _SAFE:  # fast path: within the default context's 28 digits
        return Decimal(units).scaleb(-exp)
    sign, digits, _ = Decimal(units).as_tuple()
    return Decimal((sign, digits, -exp))


def _whole_units(amount: Decimal, exp: int, what: str) -> int:
    if not amount.is_finite():
        raise ValueError(f"amount must be finite, got {amount!r}")
    with localcontext() as ctx:
        ctx.prec = max(80, len(amount.as_tuple().digits) + exp + 2)
        scaled = amount.scaleb(exp)
        if scaled != scaled.to_integral_value():
            raise InexactAmount(f"{amount} has more than {exp} decimals ({what})")
        return int(scaled)


def _check_int(value: object, name: str) -> int:
    if type(value) is int:
        return value
    if isinstance(value, bool) or not isinstance(value, Integral):
        raise TypeError(f"{name} must be an integer number of minor units, not {type(value).__name__}")
    return int(value)


def _check_decimal(value: object, name: str) -> Decimal:
    if isinstance(value, Decimal):
        return value
    if isinstance(value, Integral) and not isinstance(value, bool):
        return Decimal(int(value))
    raise TypeError(f"{name} must be a Decimal, not {type(value).__name__}")


def _upper(code: str | None) -> str | None:
    return code.strip().upper() if isinstance(code, str) else None
