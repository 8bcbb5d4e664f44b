"""Reading input values the way both paths must: invoice names, metadata, amounts, balances, dates.

The one-payment path calls these per value; the set-wise path calls them for the values its SQL and
numpy fast paths do not take (and its SQL macros mirror :func:`normalize_invoice_no`).  Either way a value
is read once, here, so that both paths see the same thing.
"""

from __future__ import annotations

import json
import math
import re
import string
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from numbers import Integral

import numpy as np
import pandas as pd

from ml_connector_dagster import money

__all__ = [
    "balance_cents",
    "date_key",
    "is_missing",
    "metadata_names",
    "metadata_value",
    "minor_units",
    "normalize_invoice_no",
    "opt_str",
    "payments_today_cents",
    "reference_tokens",
    "text_or_empty",
]

_ASCII_UPPER = str.maketrans(string.ascii_lowercase, string.ascii_uppercase)
_TOKEN = re.compile(r"[^\W_]+")  # runs of letters and digits (Unicode), as RE2's [\pL\pN]+


def normalize_invoice_no(value: str) -> str:
    """Comparable form of an invoice number: spaces trimmed, ASCII upper case, no leading zeros."""
    trimmed = value.strip(" ").translate(_ASCII_UPPER)
    stripped = trimmed.lstrip("0")
    return stripped if stripped or not trimmed else "0"


def reference_tokens(*texts: object) -> set[str]:
    """Normalised tokens of free texts (split on anything not a letter or digit); non-texts have none."""
    return {normalize_invoice_no(t) for text in texts for t in _TOKEN.findall(text_or_empty(text))}


def metadata_value(metadata: object, key: str) -> str | None:
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


def metadata_names(metadata: object) -> tuple[tuple[str, str], ...]:
    """``(normalised, as given)`` invoice names of metadata ``sage_invoice``, de-duplicated, in order."""
    value = metadata_value(metadata, "sage_invoice")
    if value is None:
        return ()
    names: dict[str, str] = {}
    for raw in (part.strip() for part in value.split(",")):
        if raw:
            names.setdefault(normalize_invoice_no(raw), raw)
    return tuple(names.items())


def text_or_empty(value: object) -> str:
    """A free text as given, or "" when it is missing or not text."""
    return value if isinstance(value, str) else ""


def is_missing(value: object) -> bool:
    """None, pandas' NA or NaT, or a float NaN: a value that is not there."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def opt_str(value: object) -> str | None:
    """A value as text, or None when it is missing."""
    return None if is_missing(value) else str(value)


def date_key(value: object) -> tuple[int, str]:
    """Sort key of a date: missing last; strings as given (ISO or YYYYMMDD), dates as ISO."""
    if is_missing(value):
        return (1, "")
    if isinstance(value, str):
        return (0, value)
    if isinstance(value, datetime):  # pd.Timestamp is a datetime
        return (0, value.date().isoformat())
    if isinstance(value, date):
        return (0, value.isoformat())
    if isinstance(value, np.datetime64):
        return (0, pd.Timestamp(value).date().isoformat())
    raise TypeError(f"invoice date must be a date or a string, not {type(value).__name__}")


def balance_cents(value: object) -> int:
    """Integer cents of a Sage Balance given as Decimal, decimal string or integer (never float)."""
    return _sage_cents(value, "Balance")


def payments_today_cents(value: object) -> int:
    """Integer cents of a Sage PaymentsToday, read like :func:`balance_cents`; a missing one is 0."""
    if not isinstance(value, Decimal) and is_missing(value):
        return 0
    return _sage_cents(value, "PaymentsToday")


def _sage_cents(value: object, name: str) -> int:
    """Integer cents of a Sage amount column given as Decimal, decimal string or integer (never float)."""
    if isinstance(value, str):
        try:
            value = Decimal(value)
        except InvalidOperation:
            raise ValueError(f"{name} is not a decimal number: {value!r}") from None
    if isinstance(value, Decimal):  # the common case first: a Decimal is never "missing"
        return money.to_cents(value)
    if is_missing(value):
        raise ValueError(f"{name} is missing")
    if isinstance(value, float):
        raise TypeError(f"{name} is a float; pass a Decimal or a decimal string")
    if isinstance(value, Integral) and not isinstance(value, bool):
        return money.to_cents(Decimal(int(value)))
    raise TypeError(f"{name} must be a Decimal, a decimal string or an integer, not {type(value).__name__}")


def minor_units(value: object, name: str) -> int:
    """An integer amount of minor units; floats (even integral ones) are refused."""
    if isinstance(value, (float, np.floating)):
        raise TypeError(f"{name} is a float; pass integer minor units")
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    raise TypeError(f"{name} must be integer minor units, not {type(value).__name__}")
