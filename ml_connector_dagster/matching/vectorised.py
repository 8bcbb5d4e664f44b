"""Many payments at once: the matching rules set-wise, and their results turned into decisions.

Python reads the payments' amounts (numpy, per currency) and customers and decides the payments that
have no home amount or no Sage customer; everything else is decided in one in-memory DuckDB database
(:mod:`.sql_text` the statements, :mod:`.sql_run` running them, :mod:`.frames` preparing the inputs).
Here the result columns become Decimals, dicts and lists in bulk, with status, reason and rule read
from :data:`.kinds.KIND_TABLE`.  The one-payment twin is :func:`.rules.decide_for_customer`; the
property tests hold both to identical decisions.
"""

from __future__ import annotations

from decimal import Decimal
from itertools import repeat

import numpy as np
import pandas as pd

from ml_connector_dagster import money
from ml_connector_dagster.matching.bulk import gc_paused
from ml_connector_dagster.matching.frames import candidates_by_gc, home_cents, sage_customers, texts_or_none
from ml_connector_dagster.matching.kinds import KIND_TABLE, Kind, Listing, explain
from ml_connector_dagster.matching.model import DECISION_COLUMNS, Allocation, MatchSettings
from ml_connector_dagster.matching.sql_run import decide_in_sql

__all__ = ["match_payments"]

_UNDECIDED = -1


def match_payments(
    payments: pd.DataFrame, customer_map: pd.DataFrame, invoices: pd.DataFrame, settings: MatchSettings
) -> pd.DataFrame:
    """Decide every payment at once (one row per payment, input order); see the package docstring."""
    with gc_paused():
        n = len(payments)
        gcs = texts_or_none(payments["gocardless_customer"])
        sage = sage_customers(gcs, customer_map)
        cents, known = home_cents(payments, settings)
        no_customer = np.where(pd.isna(sage), int(Kind.CUSTOMER_NOT_FOUND), _UNDECIDED)
        kind = np.where(known, no_customer, int(Kind.CURRENCY_UNSUPPORTED))
        explanation = np.empty(n, dtype=object)
        live = np.flatnonzero(kind == _UNDECIDED)
        found = decide_in_sql(payments, invoices, settings, live, sage[live], cents[live])
        kind[found.pidx], explanation[found.pidx] = found.kind, found.explanation
        amounts = _decimals(np.concatenate([cents[known], found.alloc_cents]))  # one Decimal per distinct amount
        home_amount = np.full(n, None, dtype=object)
        home_amount[known], alloc_amounts = np.split(amounts, [int(known.sum())])
        made = map(_allocation, found.alloc_no.tolist(), found.alloc_typ.tolist(), alloc_amounts.tolist())
        allocations = _lists(n, found.alloc_pidx, list(made))
        candidates = _lists(n, found.cand_pidx, found.cand_no.tolist())
        _explain_before_sql(payments, gcs, settings, kind, explanation, candidates, customer_map)
        ids = payments["id"].tolist()
        status, reason, rule = _by_kind()
        columns = {
            "payment_id": np.array([pid if type(pid) is str else str(pid) for pid in ids], dtype=object),
            "status": status[kind],
            "reason": reason[kind],
            "sage_customer": sage,
            "home_amount": home_amount,
            "allocations": allocations,
            "rule": rule[kind],
            "explanation": explanation,
            "candidates": candidates,
        }
        return pd.DataFrame({c: pd.Series(columns[c], dtype=object) for c in DECISION_COLUMNS})


def _by_kind() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Status, reason and rule of every kind, as arrays indexed by kind (read from the table now)."""
    specs = [KIND_TABLE[kind] for kind in Kind]
    status = np.array([spec.status for spec in specs], dtype=object)
    reason = np.array([spec.reason for spec in specs], dtype=object)
    rule = np.array([spec.rule for spec in specs], dtype=object)
    return status, reason, rule


def _decimals(cents: np.ndarray) -> np.ndarray:
    """``money.from_cents`` of each value, made once per distinct value (amounts repeat a lot)."""
    distinct, inverse = np.unique(cents, return_inverse=True)
    made = map(Decimal.scaleb, map(Decimal, distinct.tolist()), repeat(-money.SAGE_EXPONENT))
    return np.fromiter(made, dtype=object, count=len(distinct))[inverse]


def _allocation(no: str, typ: str, amount: Decimal) -> Allocation:
    return {"invoice_no": no, "invoice_type": typ, "amount": amount}


def _lists(n: int, pidx: np.ndarray, items: list[Allocation] | list[str]) -> np.ndarray:
    """One list per payment: the ``items`` whose ``pidx`` (sorted) is that payment, else an empty list."""
    out = np.empty(n, dtype=object)
    out[:] = [[] for _ in range(n)]
    if len(pidx):
        starts = np.flatnonzero(np.r_[True, pidx[1:] != pidx[:-1]])
        ends = np.r_[starts[1:], len(pidx)]
        out[pidx[starts]] = [items[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)]
    return out


def _explain_before_sql(
    payments: pd.DataFrame,
    gcs: list[str | None],
    settings: MatchSettings,
    kind: np.ndarray,
    explanation: np.ndarray,
    candidates: np.ndarray,
    customer_map: pd.DataFrame,
) -> None:
    """Explanations (and candidates) of the payments decided before SQL: no home amount, no Sage customer."""
    home = settings.home_currency.upper()
    rows = np.flatnonzero(kind == Kind.CURRENCY_UNSUPPORTED)
    currencies = payments["currency"].to_numpy(dtype=object)[rows].tolist()
    words = [{"home": home, "currency": str(currency)} for currency in currencies]
    explanation[rows] = [explain(Kind.CURRENCY_UNSUPPORTED, w) for w in words]
    rows = np.flatnonzero(kind == Kind.CUSTOMER_NOT_FOUND)
    explanation[rows] = [explain(Kind.CUSTOMER_NOT_FOUND, {"gocardless_customer": gcs[i]}) for i in rows.tolist()]
    for before_sql in (Kind.CURRENCY_UNSUPPORTED, Kind.CUSTOMER_NOT_FOUND):
        listing = KIND_TABLE[before_sql].candidates
        rows = np.flatnonzero(kind == before_sql)
        if listing is None or not len(rows):
            continue
        if listing is not Listing.CUSTOMER_KEYS:
            raise ValueError(f"{before_sql.name} is decided before SQL and can list customer keys only")
        by_gc = candidates_by_gc(customer_map)
        candidates[rows] = [list(by_gc.get(gc, ())) if (gc := gcs[i]) is not None else [] for i in rows.tolist()]
