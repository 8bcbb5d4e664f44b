"""Many payments at once: the matching rules set-wise, in one in-memory DuckDB database.

The paying customers' invoices are ranked oldest first with window functions (row number, running open
total, open rank).  Names, tokens and amounts are joined against that table - rule 3 is a join on the
running total - and the rules' precedence, explanation and allocations of every payment are SQL too
(table ``kinds``, then three result sets: verdicts, allocation rows, candidate rows).  Python reads the
payments' metadata, converts amounts per currency with numpy, and turns the result columns into
Decimals, dicts and lists in bulk.  The one-payment twin is :func:`.rules.decide_for_customer`; the
property tests hold both to identical decisions.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import repeat
from typing import Any, NamedTuple

import duckdb
import numpy as np
import pandas as pd

from ml_connector_dagster import money
from ml_connector_dagster.matching.rules import (
    AMBIGUOUS_MATCH,
    AMOUNT_MISMATCH,
    CANDIDATE_LIMIT,
    CURRENCY_UNSUPPORTED,
    CUSTOMER_NOT_FOUND,
    DECISION_COLUMNS,
    HELD,
    INVOICE_ALREADY_COLLECTED,
    INVOICE_NOT_FOUND,
    INVOICE_TYPES,
    MATCHED,
    RULE_EXACT_AMOUNT,
    RULE_NAMED_INVOICES,
    RULE_OLDEST_FIRST,
    MatchSettings,
    _balance_cents,
    _date_key,
    _gc_paused,
    _is_missing,
    _metadata_value,
    _minor,
    _no_home_amount,
    _no_sage_customer,
    _opt_str,
    _text,
)

__all__ = ["match_payments"]

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
-- str(money.from_cents(c)): sign, whole units, two decimals
CREATE MACRO amt(c) AS CASE WHEN c < 0 THEN '-' ELSE '' END || (abs(c) // 100)::VARCHAR || '.'
    || lpad((abs(c) % 100)::VARCHAR, 2, '0');
"""


# What each kind of verdict means: (status, reason, rule).  Kinds 0-11 are decided in SQL (``_KIND_SQL``).
_KINDS = (
    (HELD, AMOUNT_MISMATCH, None),  # 0: amount not positive
    (HELD, INVOICE_NOT_FOUND, None),  # 1: a metadata name the customer does not have
    (HELD, INVOICE_ALREADY_COLLECTED, None),  # 2: a named invoice has balance 0
    (HELD, AMOUNT_MISMATCH, None),  # 3: more than the named invoices' balance
    (MATCHED, None, RULE_NAMED_INVOICES),  # 4: named invoices paid in full
    (MATCHED, None, RULE_NAMED_INVOICES),  # 5: named invoices, the last one partly
    (MATCHED, None, RULE_EXACT_AMOUNT),  # 6: one invoice of that balance
    (HELD, AMBIGUOUS_MATCH, None),  # 7: several, and on_tie = hold
    (MATCHED, None, RULE_EXACT_AMOUNT),  # 8: several, the oldest paid
    (MATCHED, None, RULE_OLDEST_FIRST),  # 9: a run of the oldest adds up
    (HELD, AMOUNT_MISMATCH, None),  # 10: nothing open
    (HELD, AMOUNT_MISMATCH, None),  # 11: nothing adds up
    (HELD, CURRENCY_UNSUPPORTED, None),  # 12: no home-currency amount (decided in Python)
    (HELD, CUSTOMER_NOT_FOUND, None),  # 13: no Sage customer (decided in Python)
)
_UNSUPPORTED, _NOT_FOUND = 12, 13
_STATUS, _REASON, _RULE = (np.array([k[i] for k in _KINDS], dtype=object) for i in range(3))


def match_payments(
    payments: pd.DataFrame, customer_map: pd.DataFrame, invoices: pd.DataFrame, settings: MatchSettings
) -> pd.DataFrame:
    """Decide every payment at once (one row per payment, input order); see the package docstring."""
    with _gc_paused():
        n = len(payments)
        gcs = _texts_or_none(payments["gocardless_customer"])
        sage = _sage_customers(gcs, customer_map)
        cents, known = _home_cents(payments, settings)
        kind = np.where(known, np.where(pd.isna(sage), _NOT_FOUND, -1), _UNSUPPORTED)
        explanation = np.empty(n, dtype=object)
        live = np.flatnonzero(kind == -1)
        found = _decide_in_sql(payments, invoices, settings, live, sage[live], cents[live])
        kind[found.pidx], explanation[found.pidx] = found.kind, found.explanation
        amounts = _decimals(np.concatenate([cents[known], found.alloc_cents]))  # one Decimal per distinct amount
        home_amount = np.full(n, None, dtype=object)
        home_amount[known], alloc_amounts = np.split(amounts, [int(known.sum())])
        allocations = _lists(n, found.alloc_pidx, list(map(
            _allocation, found.alloc_no.tolist(), found.alloc_typ.tolist(), alloc_amounts.tolist())))
        candidates = _lists(n, found.cand_pidx, found.cand_no.tolist())
        _explain_unmatched(payments, gcs, settings, kind, explanation, candidates, customer_map)
        ids = payments["id"].tolist()
        columns = {
            "payment_id": np.array([pid if type(pid) is str else str(pid) for pid in ids], dtype=object),
            "status": _STATUS[kind],
            "reason": _REASON[kind],
            "sage_customer": sage,
            "home_amount": home_amount,
            "allocations": allocations,
            "rule": _RULE[kind],
            "explanation": explanation,
            "candidates": candidates,
        }
        return pd.DataFrame({c: pd.Series(columns[c], dtype=object) for c in DECISION_COLUMNS})


def _decimals(cents: np.ndarray) -> np.ndarray:
    """``money.from_cents`` of each value, made once per distinct value (amounts repeat a lot)."""
    distinct, inverse = np.unique(cents, return_inverse=True)
    made = map(Decimal.scaleb, map(Decimal, distinct.tolist()), repeat(-money.SAGE_EXPONENT))
    return np.fromiter(made, dtype=object, count=len(distinct))[inverse]


def _allocation(no: str, typ: str, amount: Decimal) -> dict[str, Any]:
    return {"invoice_no": no, "invoice_type": typ, "amount": amount}


def _lists(n: int, pidx: np.ndarray, items: list[Any]) -> np.ndarray:
    """One list per payment: the ``items`` whose ``pidx`` (sorted) is that payment, else an empty list."""
    out = np.empty(n, dtype=object)
    out[:] = [[] for _ in range(n)]
    if len(pidx):
        starts = np.flatnonzero(np.r_[True, pidx[1:] != pidx[:-1]])
        ends = np.r_[starts[1:], len(pidx)]
        out[pidx[starts]] = [items[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    return out


def _texts_or_none(column: pd.Series) -> list[str | None]:
    """A column as a list of strings, missing values as None."""
    if _is_text(column):
        return column.astype(object).where(column.notna(), None).tolist()
    return [_opt_str(v) for v in column.tolist()]


def _sage_customers(gcs: list[str | None], customer_map: pd.DataFrame) -> np.ndarray:
    """The Sage customer key of each payment's GoCardless customer (None when the map has none)."""
    gc_ids, sage_ids = customer_map["gocardless_customer"], customer_map["sage_customer"]
    known = (gc_ids.notna() & sage_ids.notna()).to_numpy()
    lookup = dict(zip(gc_ids[known].tolist(), map(str, sage_ids[known].tolist()), strict=True))
    return np.fromiter(map(lookup.get, gcs), dtype=object, count=len(gcs))


def _explain_unmatched(
    payments: pd.DataFrame,
    gcs: list[str | None],
    settings: MatchSettings,
    kind: np.ndarray,
    explanation: np.ndarray,
    candidates: np.ndarray,
    customer_map: pd.DataFrame,
) -> None:
    """Explanations of the payments decided without invoices: no home amount, no Sage customer."""
    rows = np.flatnonzero(kind == _UNSUPPORTED)
    currencies = payments["currency"].to_numpy(dtype=object)[rows].tolist()
    explanation[rows] = [_no_home_amount(str(currency), settings) for currency in currencies]
    rows = np.flatnonzero(kind == _NOT_FOUND)
    explanation[rows] = [_no_sage_customer(gcs[i]) for i in rows.tolist()]
    if len(rows):
        by_gc = _candidates_by_gc(customer_map)
        candidates[rows] = [list(by_gc.get(gcs[i], ())) for i in rows.tolist()]


def _candidates_by_gc(customer_map: pd.DataFrame) -> dict[Any, tuple[str, ...]]:
    """Likely Sage customers of each unresolved GoCardless customer in the map."""
    if "candidates" not in customer_map:
        return {}
    gc_ids, sage_ids = customer_map["gocardless_customer"], customer_map["sage_customer"]
    unresolved = (gc_ids.notna() & sage_ids.isna()).to_numpy()
    listed = zip(gc_ids[unresolved].tolist(), customer_map["candidates"][unresolved].tolist(), strict=True)
    return {g: tuple(c) for g, c in listed if isinstance(c, (list, tuple, np.ndarray)) and len(c)}


# --------------------------------------------------------------------------------------------------
# Amounts in home currency (money.to_home_cents, the array twin of money.to_home_amount).


def _home_cents(payments: pd.DataFrame, settings: MatchSettings) -> tuple[np.ndarray, np.ndarray]:
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
    values = [None if _is_missing(v) else _minor(v, name) for v in column.tolist()]
    return pd.Series(values, dtype="Int64")


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


# --------------------------------------------------------------------------------------------------
# The rules in SQL.


class _Found(NamedTuple):
    """What SQL decided: a verdict per payment, its allocation rows and its candidate rows (by payment)."""

    pidx: np.ndarray
    kind: np.ndarray
    explanation: np.ndarray
    alloc_pidx: np.ndarray
    alloc_no: np.ndarray
    alloc_typ: np.ndarray
    alloc_cents: np.ndarray
    cand_pidx: np.ndarray
    cand_no: np.ndarray


_NOTHING_FOUND = _Found(*(np.empty(0, dtype=d) for d in (np.int64, np.int64, object, np.int64, object, object,
                                                           np.int64, np.int64, object)))


def _decide_in_sql(
    payments: pd.DataFrame,
    invoices: pd.DataFrame,
    settings: MatchSettings,
    live: np.ndarray,
    sage: np.ndarray,
    cents: np.ndarray,
) -> _Found:
    """Decide the payments that have a Sage customer and a home amount (``live``, with those)."""
    if not len(live):
        return _NOTHING_FOUND
    codes, keys = pd.factorize(pd.Series(sage, dtype=object))
    names = _metadata_names(payments, live)
    con = duckdb.connect(":memory:", config={"preserve_insertion_order": False})
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(_MACROS)
        con.register("key_df", pd.DataFrame({"cid": np.arange(len(keys), dtype=np.int64),
                                             "sage": pd.Series(keys, dtype=object)}))
        con.execute(_CUSTOMERS_SQL)
        con.register("inv_df", _invoice_source(invoices))
        _load_invoices(con)
        con.register("pay_df", pd.DataFrame({
            "pidx": live.astype(np.int64), "cid": codes.astype(np.int64), "cents": cents,
            "use_tokens": ~np.isin(live, names["pidx"].to_numpy()),
        }))
        con.register("raw_names_df", names)
        con.register("txt_df", _token_texts(payments, live, names))
        for statement in _KIND_SQL.replace("{hold}", str(settings.on_tie == "hold")).split(";\n"):
            if statement.strip():
                con.execute(statement)
        verdicts = con.execute(_VERDICT_SQL).fetchnumpy()
        allocs = con.execute(_ALLOCATION_SQL).fetchnumpy()
        cands = con.execute(_CANDIDATE_SQL).fetchnumpy()
    finally:
        con.close()
    return _Found(
        verdicts["pidx"], verdicts["kind"], verdicts["explanation"],
        allocs["pidx"], allocs["no"], allocs["typ"], allocs["cents"],
        cands["pidx"], cands["no"],
    )


_CUSTOMERS_SQL = """
CREATE TEMP TABLE cust_df AS  -- "DD-CUSTNO" split at its first "-" (no "-": a division only, no customer)
SELECT cid, sage,
       CASE WHEN strpos(sage, '-') > 0 THEN substr(sage, 1, strpos(sage, '-') - 1) ELSE sage END AS div,
       CASE WHEN strpos(sage, '-') > 0 THEN substr(sage, strpos(sage, '-') + 1) END AS custno
FROM key_df
"""


def _metadata_names(payments: pd.DataFrame, live: np.ndarray) -> pd.DataFrame:
    """Invoice names of metadata ``sage_invoice``, as given: ``pidx``, ``raw`` and ``pos`` (their order).

    Comma-separated, each stripped of whitespace, empty ones dropped; SQL normalises and de-duplicates.
    """
    metadata = payments["metadata"].to_numpy(dtype=object)[live] if "metadata" in payments else []
    values = list(map(_metadata_value, metadata, repeat("sage_invoice")))
    given = [i for i, value in enumerate(values) if value is not None]
    parts = [[raw for raw in map(str.strip, values[i].split(",")) if raw] for i in given]
    counts = np.fromiter(map(len, parts), dtype=np.int64, count=len(parts))
    raws = [raw for found in parts for raw in found]
    return pd.DataFrame({
        "pidx": np.repeat(live[given], counts).astype(np.int64),
        "raw": pd.Series(raws, dtype=object),
        "pos": np.arange(len(raws), dtype=np.int64),
    })


def _token_texts(payments: pd.DataFrame, live: np.ndarray, names: pd.DataFrame) -> pd.DataFrame:
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
    return pd.Series([_text(v) for v in column.tolist()], dtype=object)


# Tables ``hits`` (every name and token of a payment, with the invoice it names, if any), ``named`` (the
# named invoices, with the running total before each) and ``kinds`` (the verdict of every payment, with
# the facts its explanation shows).  ``{hold}`` is whether on_tie = hold.
_KIND_SQL = """
CREATE TEMP TABLE hits AS
WITH tok AS (  -- tokens longer than every invoice number cannot name one: dropped before the join
    SELECT x.pidx, p.cid, x.norm, NULL::VARCHAR AS raw, NULL::BIGINT AS pos
    FROM (
        SELECT pidx, unzeroed(t) AS norm
        FROM (SELECT pidx, unnest(regexp_extract_all(ascii_upper(txt), '[\\pL\\pN]+')) AS t FROM txt_df)
    ) x
    JOIN pay_df p USING (pidx)
    WHERE length(x.norm) <= (SELECT max(length(norm)) FROM ranked)
),
meta AS (  -- the first spelling of each normalised name
    SELECT pidx, norm, arg_min(raw, pos) AS raw, min(pos) AS pos
    FROM (SELECT pidx, invoice_norm(raw) AS norm, raw, pos FROM raw_names_df) GROUP BY pidx, norm
),
names AS (
    SELECT m.pidx, p.cid, m.norm, m.raw, m.pos FROM meta m JOIN pay_df p USING (pidx)
    UNION ALL
    SELECT * FROM tok
)
SELECT n.pidx, n.raw, n.pos, r.ord, r.no, r.typ, r.cents
FROM names n LEFT JOIN ranked r ON r.cid = n.cid AND r.norm = n.norm
WHERE r.ord IS NOT NULL OR n.raw IS NOT NULL;

CREATE TEMP TABLE named AS
SELECT h.pidx, h.ord, h.no, h.typ, h.cents, p.cents AS paid,
       coalesce(sum(h.cents) OVER (PARTITION BY h.pidx ORDER BY h.ord
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
FROM (SELECT DISTINCT pidx, ord, no, typ, cents FROM hits WHERE ord IS NOT NULL) h JOIN pay_df p USING (pidx);

CREATE TEMP TABLE kinds AS
WITH
missing AS (
    SELECT pidx, string_agg(raw, ', ' ORDER BY pos) AS raws FROM hits
    WHERE ord IS NULL AND raw IS NOT NULL GROUP BY pidx
),
named_agg AS (
    SELECT pidx, sum(cents) AS total,
           count(*) FILTER (WHERE cents <= 0) AS n_collected,
           string_agg(no, ', ' ORDER BY ord) AS nos,
           string_agg(no, ', ' ORDER BY ord) FILTER (WHERE cents <= 0) AS collected_nos,
           string_agg(no, ', ' ORDER BY ord) FILTER (WHERE before < paid) AS paid_nos,
           arg_max(no, ord) FILTER (WHERE before < paid) AS last_no,
           arg_max(cents, ord) FILTER (WHERE before < paid) AS last_cents,
           arg_max(paid - before, ord) FILTER (WHERE before < paid) AS last_part
    FROM named GROUP BY pidx
),
unnamed AS (SELECT pidx, cid, cents FROM pay_df WHERE use_tokens AND pidx NOT IN (SELECT pidx FROM named)),
exact AS (
    SELECT u.pidx, count(*) AS n, min(r.ord) AS first_ord, arg_min(r.no, r.ord) AS first_no,
           arg_min(r.typ, r.ord) AS first_typ
    FROM unnamed u JOIN ranked r ON r.cid = u.cid AND r.cents = u.cents AND r.cents > 0
    GROUP BY u.pidx
),
run AS (  -- open balances are > 0, so at most one running total equals the amount
    SELECT u.pidx, r.ord AS last, r.rank AS n
    FROM unnamed u JOIN ranked r ON r.cid = u.cid AND r.cum = u.cents AND r.cents > 0
),
opens AS (  -- open invoices of the customers whose payments may need the count
    SELECT cid, max(rank) AS n FROM ranked
    WHERE cid IN (SELECT cid FROM unnamed WHERE pidx NOT IN (SELECT pidx FROM exact)) GROUP BY cid
)
SELECT p.pidx, p.cid, p.cents, c.sage, m.raws,
       a.total, a.nos, a.collected_nos, a.paid_nos, a.last_no, a.last_cents, a.last_part,
       e.n AS n_exact, e.first_ord, e.first_no, e.first_typ, r.last AS run_last, r.n AS n_run,
       coalesce(o.n, 0) AS n_open,
       CASE WHEN p.cents <= 0 THEN 0
            WHEN m.pidx IS NOT NULL THEN 1
            WHEN a.pidx IS NOT NULL THEN
                CASE WHEN a.n_collected > 0 THEN 2 WHEN p.cents > a.total THEN 3 WHEN p.cents = a.total THEN 4 ELSE 5 END
            WHEN e.pidx IS NOT NULL THEN CASE WHEN e.n = 1 THEN 6 WHEN {hold} THEN 7 ELSE 8 END
            WHEN r.pidx IS NOT NULL THEN 9
            WHEN coalesce(o.n, 0) = 0 THEN 10
            ELSE 11 END AS kind
FROM pay_df p JOIN cust_df c USING (cid)
LEFT JOIN missing m USING (pidx) LEFT JOIN named_agg a USING (pidx) LEFT JOIN exact e USING (pidx)
LEFT JOIN run r USING (pidx) LEFT JOIN opens o ON o.cid = p.cid;

CREATE TEMP TABLE allocs AS  -- oldest first; the last named invoice may be paid in part
SELECT n.pidx, k.kind, n.ord, n.no, n.typ, least(n.cents, n.paid - n.before) AS cents
FROM named n JOIN kinds k USING (pidx) WHERE k.kind IN (4, 5) AND n.before < n.paid
UNION ALL
SELECT pidx, kind, first_ord, first_no, first_typ, cents FROM kinds WHERE kind IN (6, 8)
UNION ALL
SELECT k.pidx, k.kind, r.ord, r.no, r.typ, r.cents
FROM kinds k JOIN ranked r ON r.cid = k.cid AND r.ord <= k.run_last AND r.cents > 0 WHERE k.kind = 9
"""

_VERDICT_SQL = """
SELECT k.pidx, k.kind, CASE k.kind
    WHEN 0 THEN 'amount ' || amt(k.cents) || ' is not positive: nothing to apply'
    WHEN 1 THEN 'named invoice ' || k.raws || ' not found for customer ' || k.sage
    WHEN 2 THEN 'named invoice ' || k.collected_nos || ' already collected (balance 0)'
    WHEN 3 THEN 'amount ' || amt(k.cents) || ' exceeds the ' || amt(k.total) || ' open on named invoice ' || k.nos
    WHEN 4 THEN 'named invoices: ' || k.nos || ' paid in full'
    WHEN 5 THEN 'named invoices: ' || amt(k.cents) || ' applied oldest first to ' || k.paid_nos || ', '
                || k.last_no || ' partly (' || amt(k.last_part) || ' of ' || amt(k.last_cents) || ')'
    WHEN 6 THEN 'exact amount: invoice ' || k.first_no || ' of ' || amt(k.cents)
    WHEN 7 THEN 'exact amount: ' || k.n_exact || ' invoices of ' || amt(k.cents) || ' and on_tie = hold'
    WHEN 8 THEN 'exact amount: oldest of ' || k.n_exact || ' invoices of ' || amt(k.cents) || ' (' || k.first_no || ')'
    WHEN 9 THEN 'oldest first: the ' || k.n_run || ' oldest open invoices (' || r.nos || ') add up to ' || amt(k.cents)
    WHEN 10 THEN 'customer ' || k.sage || ' has no open invoice to apply ' || amt(k.cents) || ' to'
    ELSE 'amount ' || amt(k.cents) || ': no invoice named, none of that balance, and no run of the oldest of '
         || k.n_open || ' open invoices adds up to it'
    END AS explanation
FROM kinds k
LEFT JOIN (SELECT pidx, string_agg(no, ', ' ORDER BY ord) AS nos FROM allocs WHERE kind = 9 GROUP BY pidx) r
    USING (pidx)
"""

_ALLOCATION_SQL = "SELECT pidx, no, typ, cents FROM allocs ORDER BY pidx, ord"

_CANDIDATE_SQL = f"""
SELECT pidx, no FROM (
    SELECT k.pidx, r.ord, r.no FROM kinds k
    JOIN ranked r ON r.cid = k.cid AND r.cents > 0 AND r.rank <= {CANDIDATE_LIMIT} WHERE k.kind IN (1, 11)
    UNION ALL
    SELECT n.pidx, n.ord, n.no FROM named n JOIN kinds k USING (pidx)
    WHERE (k.kind = 2 AND n.cents <= 0) OR k.kind = 3
    UNION ALL
    SELECT k.pidx, r.ord, r.no FROM kinds k
    JOIN ranked r ON r.cid = k.cid AND r.cents = k.cents AND r.cents > 0 WHERE k.kind = 7
)
ORDER BY pidx, ord
"""
