"""The set-wise path's inputs: the caller's DataFrames turned into the arrays and frames SQL reads.

Values are read as :mod:`.inputs` reads them for one payment; columns that are already of the right kind
(text, integers, datetimes) pass through without a Python loop.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from itertools import repeat

import numpy as np
import pandas as pd

from ml_connector_dagster import money
from ml_connector_dagster.matching.inputs import (
    date_key,
    is_missing,
    metadata_value,
    minor_units,
    opt_str,
    text_or_empty,
)
from ml_connector_dagster.matching.model import MatchSettings

__all__ = [
    "candidates_by_gc",
    "home_cents",
    "invoice_source",
    "metadata_name_rows",
    "sage_customers",
    "texts_or_none",
    "token_texts",
]


def texts_or_none(column: pd.Series) -> list[str | None]:
    """A column as a list of strings, missing values as None."""
    if _is_text(column):
        return column.astype(object).where(column.notna(), None).tolist()
    return [opt_str(v) for v in column.tolist()]


def sage_customers(gcs: list[str | None], customer_map: pd.DataFrame) -> np.ndarray:
    """The Sage customer key of each payment's GoCardless customer (None when the map has none)."""
    gc_ids, sage_ids = customer_map["gocardless_customer"], customer_map["sage_customer"]
    known = (gc_ids.notna() & sage_ids.notna()).to_numpy()
    lookup: dict[str | None, str] = dict(zip(gc_ids[known].tolist(), map(str, sage_ids[known].tolist()), strict=True))
    return np.fromiter(map(lookup.get, gcs), dtype=object, count=len(gcs))


def candidates_by_gc(customer_map: pd.DataFrame) -> dict[str, tuple[str, ...]]:
    """Likely Sage customers of each unresolved GoCardless customer in the map."""
    if "candidates" not in customer_map:
        return {}
    gc_ids, sage_ids = customer_map["gocardless_customer"], customer_map["sage_customer"]
    unresolved = (gc_ids.notna() & sage_ids.isna()).to_numpy()
    listed = zip(gc_ids[unresolved].tolist(), customer_map["candidates"][unresolved].tolist(), strict=True)
    return {g: tuple(c) for g, c in listed if isinstance(c, (list, tuple, np.ndarray)) and len(c)}


# --------------------------------------------------------------------------------------------------
# Amounts in home currency (money.to_home_cents, the array twin of money.to_home_amount).


def home_cents(payments: pd.DataFrame, settings: MatchSettings) -> tuple[np.ndarray, np.ndarray]:
    """Home-currency cents of every payment, and whether it has any (else ``currency_unsupported``)."""
    amount = _int_column(payments["amount"], "amount")
    if amount.isna().any():
        raise ValueError("payments without an amount")
    fx = _int_column(payments["fx_amount"], "fx_amount") if "fx_amount" in payments else None
    try:
        return money.to_home_cents(
            amount.to_numpy(dtype=np.int64),
            payments["currency"].to_numpy(dtype=object),
            settings.home_currency,
            payments["fx_currency"].to_numpy(dtype=object) if "fx_currency" in payments else None,
            None if fx is None else np.ma.masked_array(fx.fillna(0).to_numpy(dtype=np.int64), fx.isna().to_numpy()),
            settings.fx_rates,
        )
    except money.AmountTooLarge as exc:
        raise ValueError(f"payment {payments['id'].iloc[exc.row]}: {exc}") from None


def _int_column(column: pd.Series, name: str) -> pd.Series:
    """An integer-valued column as nullable Int64; float dtypes and values are refused."""
    if pd.api.types.is_float_dtype(column.dtype):
        raise TypeError(f"{name} column is {column.dtype}: money must be integer minor units (use Int64)")
    if pd.api.types.is_integer_dtype(column.dtype):
        return column.astype("Int64")
    values = [None if is_missing(v) else minor_units(v, name) for v in column.tolist()]
    return pd.Series(values, dtype="Int64")


# --------------------------------------------------------------------------------------------------
# Invoices.

_INVOICE_COLUMNS = {
    "ARDivisionNo": "div",
    "CustomerNo": "custno",
    "InvoiceNo": "no",
    "InvoiceType": "typ",
    "InvoiceDueDate": "due",
    "InvoiceDate": "dt",
    "Balance": "bal",
    "PaymentsToday": "pt",  # optional: missing means 0
}


def invoice_source(invoices: pd.DataFrame) -> pd.DataFrame:
    """The invoice columns under short names, plus ``rid`` (row number); text passes through untouched.

    Text columns become VARCHAR, dates sort like :func:`.inputs.date_key`, Balance and PaymentsToday are
    text for SQL to parse (the few it cannot go through :func:`.inputs.balance_cents` and
    :func:`.inputs.payments_today_cents`); without a PaymentsToday column every row's is missing (0).
    """
    frame: dict[str, pd.Series | np.ndarray] = {"rid": np.arange(len(invoices), dtype=np.int64)}
    for name, short in _INVOICE_COLUMNS.items():
        if short == "pt" and name not in invoices:
            frame[short] = pd.Series(pd.array([None] * len(invoices), dtype="string"))
            continue
        column = invoices[name]
        if short in ("due", "dt"):
            frame[short] = _date_column(column)
        elif short in ("bal", "pt"):
            frame[short] = _balance_column(column, name)
        else:
            frame[short] = _text_column(column)
    return pd.DataFrame(frame, copy=False)


def _is_text(column: pd.Series) -> bool:
    if isinstance(column.dtype, pd.StringDtype):
        return True
    return column.dtype == object and pd.api.types.infer_dtype(column, skipna=True) in ("string", "empty")


def _text_column(column: pd.Series) -> pd.Series:
    """Text as DuckDB VARCHAR; other types as their ``str()`` (what the one-payment path compares)."""
    if _is_text(column):
        return column
    return pd.Series([opt_str(v) for v in column.tolist()], dtype=object, index=column.index)


def _date_column(column: pd.Series) -> pd.Series:
    """Dates in a form DuckDB sorts exactly like :func:`.inputs.date_key` (strings as given, dates as dates)."""
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        dates: pd.Series[pd.Timestamp] = column
        return dates.dt.normalize()
    if _is_text(column):
        return column
    values = [None if is_missing(v) else date_key(v)[1] for v in column.tolist()]
    return pd.Series(values, dtype=object, index=column.index)


def _balance_column(column: pd.Series, name: str) -> pd.Series:
    """A Sage amount column (Balance, PaymentsToday) as text for DuckDB to parse; Decimals are written out
    exactly, floats refused, missing values kept missing."""
    if pd.api.types.is_float_dtype(column.dtype):
        raise TypeError(f"{name} column is {column.dtype}: pass Decimals or decimal strings")
    if pd.api.types.is_integer_dtype(column.dtype):
        return column.astype("Int64").astype("string")
    if _is_text(column):
        return column
    values = [v if isinstance(v, str) else _balance_text(v, name) for v in column.tolist()]
    return pd.Series(values, dtype=object, index=column.index)


def _balance_text(value: object, name: str) -> str | None:
    if isinstance(value, Decimal):
        return format(value, "f")
    if is_missing(value):  # None, NA or NaN: missing, as on the one-payment path
        return None
    if isinstance(value, (float, np.floating)):
        raise TypeError(f"{name} is a float; pass a Decimal or a decimal string")
    return opt_str(value)


# --------------------------------------------------------------------------------------------------
# Names: metadata names and the texts tokens are taken from.


def metadata_name_rows(payments: pd.DataFrame, live: np.ndarray) -> pd.DataFrame:
    """Invoice names of metadata ``sage_invoice``, as given: ``pidx``, ``raw`` and ``pos`` (their order).

    Comma-separated, each stripped of whitespace, empty ones dropped; SQL normalises and de-duplicates.
    """
    metadata: Sequence[object] = payments["metadata"].to_numpy(dtype=object)[live] if "metadata" in payments else []
    values = list(map(metadata_value, metadata, repeat("sage_invoice")))
    parts = [[raw for raw in map(str.strip, value.split(",")) if raw] for value in values if value is not None]
    given = [i for i, value in enumerate(values) if value is not None]
    counts = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    raws = [raw for found in parts for raw in found]
    return pd.DataFrame(
        {
            "pidx": np.repeat(live[given], counts).astype(np.int64),
            "raw": pd.Series(raws, dtype=object),
            "pos": np.arange(len(raws), dtype=np.int64),
        }
    )


def token_texts(payments: pd.DataFrame, live: np.ndarray, names: pd.DataFrame) -> pd.DataFrame:
    """Reference and description (joined by a space) of the payments that name no invoice in metadata."""
    rows = live[~np.isin(live, names["pidx"].to_numpy())]
    text = _text_or_empty(payments, "reference", rows) + " " + _text_or_empty(payments, "description", rows)
    return pd.DataFrame({"pidx": rows.astype(np.int64), "txt": text.to_numpy(dtype=object)})


def _text_or_empty(payments: pd.DataFrame, name: str, rows: np.ndarray) -> pd.Series:
    """A text column's ``rows`` as strings, "" where missing or not text (or the column is absent)."""
    if name not in payments:
        return pd.Series([""] * len(rows), dtype=object)
    column = payments[name].iloc[rows].reset_index(drop=True)
    if _is_text(column):
        return column.astype(object).where(column.notna(), "")
    return pd.Series([text_or_empty(v) for v in column.tolist()], dtype=object)
