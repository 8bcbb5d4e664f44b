"""Benchmark of payment matching: the vectorised matcher against per-payment baselines, on a synthetic company.

    python -c "from ml_connector_dagster.bench.matching import run; print(run(1_000_000, 200_000))"

The company comes from :func:`~ml_connector_dagster.bench.matching_company.generate_company`.
Two per-payment loops are timed against the vectorised matcher, both deciding one payment after another
in payment order, each against its customer's invoices less what the earlier payments took
(:func:`~ml_connector_dagster.matching.decide_in_order`, which calls
:func:`~ml_connector_dagster.matching.decide_for_customer`):

- ``baseline_match(...)``, the straightforward loop: each payment looks its customer's rows up in the
  invoice table (a mask over the customer-key column, computed once), then decides;
- ``grouped_baseline_match(...)``, the best loop we could write: the invoices are grouped by customer
  once, then each payment takes its group.

``run(...)`` times all three (the loops on samples, scaled) and checks that they decide alike. A sample is
every payment of some customers: a payment's decision depends on the earlier payments of its customer.
"""

from __future__ import annotations

import gc
import json
import os
import resource
import time
from collections import defaultdict
from collections.abc import Callable, Hashable
from typing import Any, TypeGuard

import numpy as np
import pandas as pd

from ml_connector_dagster.matching import (
    Decision,
    MatchSettings,
    decide_in_order,
    match_payments,
    resolve_customers,
)

from .matching_company import Company, generate_company

__all__ = ["baseline_match", "grouped_baseline_match", "run"]

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
    """The loop both baselines share: per payment, its Sage customer, that customer's rows less what the
    earlier payments took, a decision."""
    gc_ids = customer_map["gocardless_customer"].tolist()
    sage: dict[str, str | None] = dict(zip(gc_ids, customer_map["sage_customer"].tolist(), strict=True))
    cands: dict[str, list[str]] = dict(zip(gc_ids, customer_map["candidates"].tolist(), strict=True))
    records = _records(payments)
    for payment in records:
        gc_customer = str(payment["gocardless_customer"])
        payment["sage_customer"] = sage.get(gc_customer)
        payment["customer_candidates"] = cands.get(gc_customer)
    return decide_in_order(records, rows_of, settings)


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
    sample = _sample(company, customer_map, size)
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
    sample = _sample(company, customer_map, size)
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


def _sample(company: Company, customer_map: pd.DataFrame, size: int | None) -> np.ndarray:
    """About ``size`` payments: those drawn, with every other payment of their Sage customers (in order)."""
    n = len(company.payments)
    if size is None or size >= n:
        return np.arange(n)
    drawn = np.random.default_rng(7).choice(n, size=size, replace=False)
    by_gc = customer_map.set_index("gocardless_customer")["sage_customer"]
    customers = company.payments["gocardless_customer"].map(by_gc).to_numpy(dtype=object)
    known = pd.notna(customers)
    same = known & np.isin(customers, customers[drawn][known[drawn]])
    picked = np.zeros(n, dtype=bool)
    picked[drawn] = True
    return np.flatnonzero(picked | same)


def _peak_rss_mib() -> float:
    """Peak resident set size of this process so far (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _outcomes(result: pd.DataFrame) -> dict[str, int]:
    labels = result["reason"].fillna(result["rule"].astype(object)).astype(str)
    return {str(k): int(v) for k, v in labels.value_counts().sort_index().items()}


if __name__ == "__main__":  # pragma: no cover
    print(json.dumps(run(), indent=2))
