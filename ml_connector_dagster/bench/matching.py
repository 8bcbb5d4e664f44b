"""Benchmark of payment matching: a synthetic company, the vectorised matcher and a per-payment baseline.

    python -c "from ml_connector_dagster.bench.matching import run; print(run(1_000_000, 200_000))"

``generate_company(invoices, payments, seed)`` builds N open-invoice rows over N/10 Sage customers
(one GoCardless customer each) and M payments that exercise every rule and reason code.
Two per-payment loops are timed against the vectorised matcher, both calling
:func:`~ml_connector_dagster.matching.decide_for_customer` for one payment after another:

- ``baseline_match(...)``, the straightforward loop: each payment looks its customer's rows up in the
  invoice table (a mask over the customer-key column, computed once), then decides;
- ``grouped_baseline_match(...)``, the best loop we could write: the invoices are grouped by customer
  once, then each payment takes its group.

``run(...)`` times all three (the loops on samples, scaled) and checks that they decide alike.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import time
from collections import defaultdict
from collections.abc import Callable, Hashable
from decimal import Decimal
from typing import Any, NamedTuple, TypeGuard

import numpy as np
import pandas as pd

from ml_connector_dagster.matching import (
    Decision,
    MatchSettings,
    decide_for_customer,
    match_payments,
    resolve_customers,
)

__all__ = ["Company", "baseline_match", "generate_company", "grouped_baseline_match", "run"]

HOME = "GBP"
RATES = {"EUR": Decimal("0.8600"), "DKK": Decimal("0.1000")}
_POPULAR_CENTS = np.array([12000, 25000, 50000, 9999])  # shared balances make exact-amount ties
_SCENARIOS = {  # payment kind -> weight
    "exact": 34,
    "meta_named": 8,
    "meta_partial": 4,
    "meta_two": 4,
    "ref_named": 8,
    "desc_named": 4,
    "oldest_first": 10,
    "mismatch": 6,
    "meta_missing": 3,
    "collected": 3,
    "fx_fields": 4,
    "fx_rate": 4,
    "fx_rate_random": 2,
    "unsupported": 2,
    "unknown_customer": 4,
}


class _Invoices(NamedTuple):
    """Generated ``AR_OpenInvoice`` rows, and what the generator knows of each row."""

    frame: pd.DataFrame
    cust: np.ndarray  # customer index
    cents: np.ndarray  # balance in cents
    is_open: np.ndarray  # an IN/DM/FC row with a balance above zero
    numbers: np.ndarray  # InvoiceNo
    types: np.ndarray  # InvoiceType


_Row = dict[str, object]  # a row of a frame whose column names are strings


def _records(frame: pd.DataFrame) -> list[_Row]:
    """The frame's rows as plain dicts (what the loops were always given), keyed by its string column names."""
    rows = frame.to_dict("records")
    if not _keyed_by_names(rows, frame.columns):
        raise TypeError(f"column names must be strings: {list(frame.columns)!r}")
    return rows


def _keyed_by_names(rows: list[dict[Hashable, Any]], columns: pd.Index) -> TypeGuard[list[_Row]]:
    """Every record's keys are the frame's column names: when those are all strings, so are the keys."""
    return all(isinstance(name, str) for name in columns)


class Company(NamedTuple):
    """A synthetic company: the inputs of customer resolution and of matching."""

    gc_customers: pd.DataFrame
    sage_customers: pd.DataFrame
    invoices: pd.DataFrame
    payments: pd.DataFrame
    settings: MatchSettings


def generate_company(invoices: int = 10_000, payments: int = 2_000, seed: int = 0) -> Company:
    """N invoices over N/10 customers and M payments exercising every rule and reason code."""
    rng = np.random.default_rng(seed)
    n_cust = max(invoices // 10, 2)
    sage, gc_cust, unresolved = _customers(rng, n_cust)
    inv, keys = _invoices(rng, invoices, n_cust)
    pays = _payments(rng, payments, inv, keys, gc_cust, unresolved)
    settings = MatchSettings(home_currency=HOME, on_tie="oldest", fx_rates=RATES)
    return Company(gc_cust, sage, inv.frame, pays, settings)


def _customers(rng: np.random.Generator, n: int) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray]:
    """Sage customers and one GoCardless customer each, resolvable in every way the rules know."""
    idx = np.arange(n)
    div = np.where(idx % 10 == 9, "02", "01").astype(object)
    custno = np.array([f"C{i:06d}" for i in idx], dtype=object)
    keys = div + "-" + custno
    emails = np.array([f"ap{i}@example{i % 97}.com" for i in idx], dtype=object)
    shared = np.flatnonzero(idx % 50 == 7)  # each shares its email with the next customer
    shared = shared[shared + 1 < n]
    emails[shared + 1] = emails[shared]
    sage = pd.DataFrame(
        {
            "ARDivisionNo": div,
            "CustomerNo": custno,
            "CustomerName": [f"Customer {i} Ltd" for i in idx],
            "EmailAddress": emails,
        }
    )
    mode = rng.choice(4, size=n, p=[0.70, 0.24, 0.03, 0.03])  # metadata, email, bad metadata, nothing
    mode[shared] = 1  # email only, and that email is shared: ambiguous
    mode[shared + 1] = 1
    gc_email = np.array([f"  {e.upper()} " if i % 3 == 0 else e for i, e in enumerate(emails)], dtype=object)
    gc_email[mode >= 2] = [f"someone{i}@elsewhere.test" for i in np.flatnonzero(mode >= 2)]
    metadata = [
        {"sage_customer": k} if m == 0 else {"sage_customer": f"09-NOPE{i}"} if m == 2 else {}
        for i, (k, m) in enumerate(zip(keys, mode, strict=True))
    ]
    gc_cust = pd.DataFrame(
        {
            "id": [f"CU{i:08d}" for i in idx],
            "email": gc_email,
            "given_name": None,
            "family_name": None,
            "company_name": [f"Customer {i} Ltd" for i in idx],
            "metadata": metadata,
        }
    )
    unresolved = np.zeros(n, dtype=bool)
    unresolved[mode >= 2] = True
    unresolved[shared] = unresolved[shared + 1] = True
    return sage, gc_cust, unresolved


def _invoices(rng: np.random.Generator, n: int, n_cust: int) -> tuple[_Invoices, np.ndarray]:
    """Open-invoice rows sorted by customer and age, with ties, collected rows and non-invoice types."""
    cust = np.sort(rng.integers(0, n_cust, n))
    types = rng.choice(np.array(["IN", "DM", "FC", "CM", "PP"], dtype=object), size=n, p=[0.9, 0.04, 0.03, 0.02, 0.01])
    day = rng.integers(0, 365, n)
    order = np.lexsort((day, cust))  # oldest first within each customer
    cust, types, day = cust[order], types[order], day[order]
    cents = rng.integers(1_000, 500_000, n)
    popular = rng.random(n) < 0.12
    cents[popular] = rng.choice(_POPULAR_CENTS, size=popular.sum())
    cents[rng.random(n) < 0.08] = 0
    cents[np.isin(cust, np.flatnonzero(np.arange(n_cust) % 100 == 3))] = 0  # customers with nothing open
    dates = pd.date_range("2025-01-01", periods=400, freq="D").strftime("%Y-%m-%d").to_numpy(dtype=object)
    div = np.where(cust % 10 == 9, "02", "01").astype(object)
    custnos = np.array([f"C{i:06d}" for i in range(n_cust)], dtype=object)
    numbers = [f"{i:07d}" for i in rng.permutation(n) + 1]
    frame = pd.DataFrame(
        {
            "ARDivisionNo": div,
            "CustomerNo": custnos[cust],
            "InvoiceNo": numbers,
            "InvoiceType": types,
            "InvoiceDate": dates[day],
            "InvoiceDueDate": dates[day + 30],
            "Balance": [f"{c // 100}.{c % 100:02d}" for c in cents.tolist()],
        }
    )
    is_open = np.isin(types, ["IN", "DM", "FC"]) & (cents > 0)
    inv = _Invoices(frame, cust, cents, is_open, np.asarray(numbers, dtype=object), types)
    return inv, np.where(np.arange(n_cust) % 10 == 9, "02", "01").astype(object) + "-" + custnos


def _payments(
    rng: np.random.Generator,
    m: int,
    inv: _Invoices,
    keys: np.ndarray,
    gc_cust: pd.DataFrame,
    unresolved: np.ndarray,
) -> pd.DataFrame:
    """M payments; each kind targets one rule or reason (others arise from the data's accidents)."""
    kinds = list(_SCENARIOS)
    weights = np.array(list(_SCENARIOS.values()), dtype=float)
    kind = rng.choice(len(kinds), size=m, p=weights / weights.sum())
    open_idx = np.flatnonzero(inv.is_open)
    closed_idx = np.flatnonzero(~inv.is_open & np.isin(inv.types, ["IN", "DM", "FC"]))
    pick = open_idx[rng.integers(0, len(open_idx), m)]
    cust, cents = inv.cust[pick].tolist(), inv.cents[pick].tolist()
    runs = _oldest_runs(inv)
    rows = [
        _payment(i, kinds[k], rng, int(pick[i]), cust[i], cents[i], inv, runs, closed_idx, unresolved)
        for i, k in enumerate(kind.tolist())
    ]
    frame = pd.DataFrame(
        rows,
        columns=[
            "id",
            "amount",
            "currency",
            "reference",
            "description",
            "metadata",
            "fx_currency",
            "fx_amount",
            "customer",
        ],
    )
    frame["amount"] = frame["amount"].astype("int64")
    frame["fx_amount"] = frame["fx_amount"].astype("Int64")
    gc_ids = gc_cust["id"].to_numpy(dtype=object)
    frame["gocardless_customer"] = gc_ids[frame.pop("customer").to_numpy(dtype=np.int64)]
    return frame


def _oldest_runs(inv: _Invoices) -> dict[int, list[int]]:
    """Per customer, running totals of the first few open invoices (oldest first)."""
    runs: dict[int, list[int]] = defaultdict(list)
    for i in np.flatnonzero(inv.is_open).tolist():
        c = int(inv.cust[i])
        if len(runs[c]) < 4:
            runs[c].append((runs[c][-1] if runs[c] else 0) + int(inv.cents[i]))
    return runs


_PaymentRow = tuple[str, int, str, str, str, dict[str, str], str | None, int | None, int]


def _payment(
    i: int,
    kind: str,
    rng: np.random.Generator,
    j: int,
    cust: int,
    cents: int,
    inv: _Invoices,
    runs: dict[int, list[int]],
    closed_idx: np.ndarray,
    unresolved: np.ndarray,
) -> _PaymentRow:
    """One payment row ``(id, amount, currency, reference, description, metadata, fx_ccy, fx_amt, cust)``."""
    pid, ref, desc, meta = f"PM{i:010d}", f"GC{i:08d}", "Monthly services", {}
    amount, currency, fx_ccy, fx_amt = cents, HOME, None, None
    nos = inv.numbers
    no = str(nos[j])
    if kind == "meta_named":
        meta = {"sage_invoice": no.lstrip("0")}
    elif kind == "meta_partial":
        meta, amount = {"sage_invoice": no}, max(cents // 2, 1)
    elif kind == "meta_two":
        other = j + 1 if j + 1 < len(nos) and inv.cust[j + 1] == cust else j
        meta = {"sage_invoice": f"{no}, {nos[other]}"}
        amount = cents + (int(inv.cents[other]) if other != j else 0) - 1
    elif kind == "ref_named":
        ref = f"INV-{no}"
    elif kind == "desc_named":
        desc = f"Payment for invoice {no.lstrip('0')} - thank you"
    elif kind == "oldest_first":
        run = runs.get(cust, [])
        amount = run[min(len(run) - 1, 1 + int(rng.integers(0, 3)))] if run else amount
    elif kind == "mismatch":
        amount = cents * 3 + 7
    elif kind == "meta_missing":
        meta = {"sage_invoice": "9" + no[1:] if no[0] != "9" else "8" + no[1:]}
    elif kind == "collected" and len(closed_idx):
        c = closed_idx[rng.integers(0, len(closed_idx))]
        cust, ref = int(inv.cust[c]), f"INV {nos[c]}"
    elif kind == "fx_fields":
        currency, fx_ccy, fx_amt, amount = "USD", HOME, cents, cents * 127 // 100
    elif kind == "fx_rate":
        currency, amount = "DKK", cents * 10
    elif kind == "fx_rate_random":
        currency, amount = "EUR", int(rng.integers(1_000, 100_000))
    elif kind == "unsupported":
        currency = "SEK"
    elif kind == "unknown_customer":
        cands = np.flatnonzero(unresolved)
        cust = int(cands[rng.integers(0, len(cands))]) if len(cands) else cust
    return pid, amount, currency, ref, desc, meta, fx_ccy, fx_amt, cust


# --------------------------------------------------------------------------------------------------


def baseline_match(
    payments: pd.DataFrame, customer_map: pd.DataFrame, invoices: pd.DataFrame, settings: MatchSettings
) -> list[Decision]:
    """The straightforward way: for each payment, select its customer's rows from the invoice table and decide."""
    return _scan_one_by_one(payments, customer_map, invoices, _customer_keys(invoices), settings)


def grouped_baseline_match(
    payments: pd.DataFrame, customer_map: pd.DataFrame, invoices: pd.DataFrame, settings: MatchSettings
) -> list[Decision]:
    """The best loop: group the invoices by customer once, then decide payment after payment."""
    return _decide_one_by_one(payments, customer_map, _group_invoices(invoices), settings)


def _customer_keys(invoices: pd.DataFrame) -> np.ndarray:
    return (invoices["ARDivisionNo"] + "-" + invoices["CustomerNo"]).to_numpy(dtype=object)


def _scan_one_by_one(
    payments: pd.DataFrame,
    customer_map: pd.DataFrame,
    invoices: pd.DataFrame,
    keys: np.ndarray,
    settings: MatchSettings,
) -> list[Decision]:
    def rows_of(customer: str | None) -> list[_Row]:
        return _records(invoices[keys == customer]) if customer is not None else []

    return _one_by_one(payments, customer_map, rows_of, settings)


def _group_invoices(invoices: pd.DataFrame) -> dict[str, list[_Row]]:
    by_customer: dict[str, list[_Row]] = defaultdict(list)
    for row in _records(invoices):
        by_customer[f"{row['ARDivisionNo']}-{row['CustomerNo']}"].append(row)
    return by_customer


def _decide_one_by_one(
    payments: pd.DataFrame, customer_map: pd.DataFrame, by_customer: dict[str, list[_Row]], settings: MatchSettings
) -> list[Decision]:
    def rows_of(customer: str | None) -> list[_Row]:
        return by_customer.get(customer, []) if customer is not None else []

    return _one_by_one(payments, customer_map, rows_of, settings)


def _one_by_one(
    payments: pd.DataFrame,
    customer_map: pd.DataFrame,
    rows_of: Callable[[str | None], list[_Row]],
    settings: MatchSettings,
) -> list[Decision]:
    """The loop both baselines share: per payment, its Sage customer, that customer's rows, a decision."""
    gc_ids = customer_map["gocardless_customer"].tolist()
    sage: dict[str, str | None] = dict(zip(gc_ids, customer_map["sage_customer"].tolist(), strict=True))
    cands: dict[str, list[str]] = dict(zip(gc_ids, customer_map["candidates"].tolist(), strict=True))
    decisions = []
    for payment in _records(payments):
        gc_customer = str(payment["gocardless_customer"])
        customer = sage.get(gc_customer)
        payment["sage_customer"] = customer
        payment["customer_candidates"] = cands.get(gc_customer)
        decisions.append(decide_for_customer(payment, rows_of(customer), settings))
    return decisions


def run(
    invoices: int = 1_000_000,
    payments: int = 200_000,
    baseline_sample: int | None = 200,
    grouped_sample: int | None = 5_000,
) -> dict[str, object]:
    """Time resolve_customers + match_payments on a synthetic company, and both loops on samples.

    ``seconds`` is wall-clock time for both calls; ``peak_rss_mib`` is the process's peak resident
    size after them (generation included, loops not).  ``baseline_seconds`` is the straightforward
    loop's time on ``baseline_sample`` payments, scaled to all of them (plus the one-off key column);
    ``grouped_baseline_seconds`` is the grouped loop's, on ``grouped_sample`` payments (grouping scaled
    by invoices, deciding by payments).  ``identical`` says whether both loops decided their samples
    exactly as the matcher did.
    """
    t = time.perf_counter()
    company = generate_company(invoices, payments, seed=20261125)
    generate_seconds = time.perf_counter() - t
    gc.collect()
    load_before = os.getloadavg()[0]
    t, cpu = time.perf_counter(), time.process_time()
    customer_map = resolve_customers(company.gc_customers, company.sage_customers)
    resolve_seconds = time.perf_counter() - t
    result = match_payments(company.payments, customer_map, company.invoices, company.settings)
    seconds, cpu_seconds = time.perf_counter() - t, time.process_time() - cpu
    peak = _peak_rss_mib()

    baseline_seconds, scan_same, scan_n = _time_scan(company, customer_map, result, baseline_sample)
    grouped_seconds, grouped_same, grouped_n = _time_grouped(company, customer_map, result, grouped_sample)
    return {
        "invoices": len(company.invoices),
        "payments": len(company.payments),
        "seconds": round(seconds, 3),
        "payments_per_second": round(len(company.payments) / seconds),
        "peak_rss_mib": round(peak, 1),
        "baseline_seconds": round(baseline_seconds, 3),
        "speedup": round(baseline_seconds / seconds, 1),
        "grouped_baseline_seconds": round(grouped_seconds, 3),
        "grouped_speedup": round(grouped_seconds / seconds, 1),
        "baseline_sample": scan_n,
        "grouped_sample": grouped_n,
        "identical": scan_same and grouped_same,
        "resolve_seconds": round(resolve_seconds, 3),  # the customer-resolution part of seconds
        "cpu_seconds": round(cpu_seconds, 3),  # all threads; compare with seconds on a busy machine
        "load_average": round(load_before, 2),  # other work on the machine when the timing started
        "generate_seconds": round(generate_seconds, 3),
        "outcomes": _outcomes(result),
    }


def _time_scan(
    company: Company, customer_map: pd.DataFrame, result: pd.DataFrame, size: int | None
) -> tuple[float, bool, int]:
    """The straightforward loop on a sample: (seconds scaled to all payments, decided alike, sample size)."""
    sample = _sample(len(company.payments), size)
    t = time.perf_counter()
    keys = _customer_keys(company.invoices)
    keying = time.perf_counter() - t
    decisions = _scan_one_by_one(company.payments.iloc[sample], customer_map, company.invoices, keys, company.settings)
    deciding = time.perf_counter() - t - keying
    same = [d.as_row() for d in decisions] == result.iloc[sample].to_dict("records")
    return keying + deciding * len(company.payments) / max(len(sample), 1), same, len(sample)


def _time_grouped(
    company: Company, customer_map: pd.DataFrame, result: pd.DataFrame, size: int | None
) -> tuple[float, bool, int]:
    """The grouped loop on a sample (and its customers' invoices), each part scaled to the full size."""
    sample = _sample(len(company.payments), size)
    sample_pays = company.payments.iloc[sample]
    sample_customers = set(customer_map["sage_customer"].dropna()) & set(
        customer_map.set_index("gocardless_customer").loc[sample_pays["gocardless_customer"], "sage_customer"].dropna()
    )
    sample_invoices = company.invoices[pd.Series(_customer_keys(company.invoices)).isin(sample_customers).to_numpy()]
    t = time.perf_counter()
    by_customer = _group_invoices(sample_invoices)
    grouping = time.perf_counter() - t
    decisions = _decide_one_by_one(sample_pays, customer_map, by_customer, company.settings)
    deciding = time.perf_counter() - t - grouping
    seconds = grouping * len(company.invoices) / max(len(sample_invoices), 1) + deciding * len(company.payments) / max(
        len(sample), 1
    )
    same = [d.as_row() for d in decisions] == result.iloc[sample].to_dict("records")
    return seconds, same, len(sample)


def _sample(n: int, size: int | None) -> np.ndarray:
    if size is None or size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(7).choice(n, size=size, replace=False))


def _peak_rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _outcomes(result: pd.DataFrame) -> dict[str, int]:
    labels = result["reason"].fillna(result["rule"].astype(object)).astype(str)
    return {str(k): int(v) for k, v in labels.value_counts().sort_index().items()}


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(run(), indent=2))
