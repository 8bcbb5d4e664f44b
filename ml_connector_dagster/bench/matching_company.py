"""The matching benchmark's synthetic company: Sage customers, open invoices and GoCardless payments.

``generate_company(invoices, payments, seed)`` builds N open-invoice rows over N/10 Sage customers
(one GoCardless customer each) and M payments that exercise every rule and reason code: each payment
kind (``_SCENARIOS``, by weight) targets one rule or reason, and others arise from the data's accidents
(shared emails, shared balances, collected rows, non-invoice types, receipts entered but not posted, and
payments of one customer competing for the same invoice). The same arguments build the same company.
matching.py times the matcher and the per-payment loops on it.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import NamedTuple

import numpy as np
import pandas as pd

from ml_connector_dagster.matching import MatchSettings

__all__ = ["Company", "generate_company"]

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
    cents: np.ndarray  # open amount in cents: Balance less PaymentsToday
    is_open: np.ndarray  # an IN/DM/FC row with an open amount above zero
    numbers: np.ndarray  # InvoiceNo
    types: np.ndarray  # InvoiceType


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
    unposted = np.zeros(n, dtype=np.int64)  # PaymentsToday: receipts entered in Sage, not posted yet
    part = rng.random(n) < 0.04
    unposted[part] = rng.integers(0, cents[part] + 1)
    whole = rng.random(n) < 0.02
    unposted[whole] = cents[whole]
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
            "PaymentsToday": [f"{c // 100}.{c % 100:02d}" for c in unposted.tolist()],
        }
    )
    left = cents - unposted
    is_open = np.isin(types, ["IN", "DM", "FC"]) & (left > 0)
    inv = _Invoices(frame, cust, left, is_open, np.asarray(numbers, dtype=object), types)
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
