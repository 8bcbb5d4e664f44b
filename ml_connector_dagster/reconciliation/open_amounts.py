"""Open amounts: the money still available on each invoice, as the evaluation and the checks count it.

Sage lowers an invoice's `Balance` only when a person runs the Cash Receipts Journal update; entering a
receipt (a person's or ours) raises its `PaymentsToday`. So what is still open is `Balance - PaymentsToday`
less what this product has applied that Sage's copy in the warehouse (`sage_ar_invoices`) does not show yet,
read from the ledger:

- payments decided and not written yet, or whose write's outcome is unknown (`matched`, `posting`; for a
  `posting` payment the lines it asked Sage for);
- payments written (`posted`, `reversal_required`) after the invoice's row was copied: the ledger's
  `posted_at` later than the row's `synced_at` (both our clock, UTC). Writing a receipt restamps the
  invoice in Sage, so the next poll rewrites the row, and from then its `PaymentsToday` has the receipt.

Everything is counted set-wise in DuckDB: the ledger's rows go in as one frame and are joined with the copy.
`UnpostedAmounts` then names, for each decision's audit record, the unposted amounts that reduced the
invoices that mattered to it, including what earlier payments of the same evaluation took.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any, NamedTuple

import duckdb
import pandas as pd

from ..matching import Decision
from ..sage100 import sync as sage_sync
from ..store import Store
from ..store.ledger import UNWRITTEN, AppliedRow

__all__ = ["OverApplied", "UnpostedAmounts", "open_invoices", "over_applied"]

_KEY = "i.ARDivisionNo || '-' || i.CustomerNo"

# Each ledger payment's lines (a `posting` payment's: what it asked Sage for, when it has asked), one row each.
_LINES_SQL = """
SELECT o.payment_id, o.status, o.sage_customer, o.posted_at,
       l->>'invoice_no' AS invoice_no, l->>'invoice_type' AS invoice_type,
       CAST(l->>'amount' AS DECIMAL(18, 2)) AS amount
FROM ours_df o,
     unnest(CAST(CASE WHEN o.status = 'posting' THEN coalesce(json_extract(o.request, '$.lines'), o.allocations)
                      ELSE o.allocations END AS JSON[])) AS t(l)
WHERE o.payment_id NOT IN (SELECT unnest(?::VARCHAR[]))
"""
# Our lines Sage's copy of their invoice cannot show yet, per invoice: the sum, and who (JSON).
_COUNTED_SQL = f"""
SELECT i.ARDivisionNo, i.CustomerNo, i.InvoiceNo, i.InvoiceType, sum(l.amount) AS amount,
       CAST(to_json(list({{'payment_id': l.payment_id, 'amount': CAST(l.amount AS VARCHAR), 'status': l.status}}
                         ORDER BY l.payment_id)) AS VARCHAR) AS ours
FROM ({_LINES_SQL}) l JOIN sage_ar_invoices i
     ON {_KEY} = l.sage_customer AND i.InvoiceNo = l.invoice_no AND i.InvoiceType = l.invoice_type
WHERE l.status IN {UNWRITTEN} OR l.posted_at > i.synced_at
GROUP BY i.ARDivisionNo, i.CustomerNo, i.InvoiceNo, i.InvoiceType
"""
_OPEN_SQL = f"""
SELECT i.ARDivisionNo, i.CustomerNo, i.InvoiceNo, i.InvoiceType, i.InvoiceDate, i.InvoiceDueDate,
       CAST(i.Balance AS VARCHAR) AS Balance,
       CAST(coalesce(i.PaymentsToday, 0) + coalesce(c.amount, 0) AS VARCHAR) AS PaymentsToday,
       CAST(coalesce(i.PaymentsToday, 0) AS VARCHAR) AS SagePaymentsToday,
       c.ours,
       coalesce(i.Balance > 0 AND (coalesce(i.PaymentsToday, 0) <> 0 OR c.amount IS NOT NULL), FALSE) AS reduced
FROM sage_ar_invoices i
LEFT JOIN ({_COUNTED_SQL}) c USING (ARDivisionNo, CustomerNo, InvoiceNo, InvoiceType)
WHERE {_KEY} IN (SELECT unnest(?::VARCHAR[]))
"""
# Debit items our not-yet-shown lines take more from than the copy has open (Balance - PaymentsToday).
_OVER_SQL = f"""
SELECT concat_ws('/', i.ARDivisionNo, i.CustomerNo, i.InvoiceNo, i.InvoiceType), c.amount,
       i.Balance - coalesce(i.PaymentsToday, 0) AS open_amount, c.ours
FROM ({_COUNTED_SQL}) c JOIN sage_ar_invoices i USING (ARDivisionNo, CustomerNo, InvoiceNo, InvoiceType)
WHERE c.amount > i.Balance - coalesce(i.PaymentsToday, 0)
ORDER BY 1
"""


def open_invoices(
    conn: duckdb.DuckDBPyConnection, store: Store, sage_customers: Sequence[str], exclude: Iterable[str] = ()
) -> pd.DataFrame:
    """The customers' `sage_ar_invoices` rows as matching reads them, with what else is known unposted.

    Columns: the invoice's key and dates, `Balance` and `PaymentsToday` as decimal text - `PaymentsToday` is
    Sage's copy's plus our lines the copy cannot show yet (so matching's `Balance - PaymentsToday` is the
    open amount) - `SagePaymentsToday` (the copy's alone), `ours` (JSON list of our payments counted:
    `payment_id`, `amount`, `status`; NULL when none) and `reduced` (Balance above 0 and something
    unposted against it). Payments in `exclude` (those being decided now) are not counted.
    """
    customers = list(dict.fromkeys(sage_customers))
    conn.register("ours_df", _ours_frame(store, conn, customers))
    try:
        return conn.execute(_OPEN_SQL, [list(exclude), customers]).df()
    finally:
        conn.unregister("ours_df")


class OverApplied(NamedTuple):
    """An invoice our payments take more from than Sage's copy has open."""

    invoice: str  # DD/CUSTNO/InvoiceNo/InvoiceType
    ours: Decimal  # what our payments the copy does not show yet take from it
    open_amount: Decimal  # Balance less PaymentsToday in the copy
    payments: list[dict[str, str]]  # payment_id, amount, status

    def describe(self) -> str:
        who = ", ".join(f"{p['payment_id']} {p['amount']} ({p['status']})" for p in self.payments)
        return f"{self.invoice}: ours {self.ours} > open {self.open_amount}: {who}"


def over_applied(conn: duckdb.DuckDBPyConnection, store: Store) -> list[OverApplied]:
    """Invoices our lines not in Sage's copy yet take more from than the copy has open (Balance less
    PaymentsToday); ours are what the evaluation counts against it (matched, posting, and written since the
    row was copied). The evaluation never decides so: one found means the copy changed since (a person
    keyed a receipt), or a bug."""
    sage_sync.ensure_table(conn, sage_sync.INVOICES)
    customers = [
        r[0]
        for r in conn.execute(f"SELECT DISTINCT {_KEY} FROM {sage_sync.INVOICES.name} i").fetchall()
        if r[0] is not None
    ]
    conn.register("ours_df", _ours_frame(store, conn, customers))
    try:
        rows = conn.execute(_OVER_SQL, [[]]).fetchall()
    finally:
        conn.unregister("ours_df")
    return [OverApplied(str(k), Decimal(a), Decimal(o), json.loads(w)) for k, a, o, w in rows]


def _ours_frame(store: Store, conn: duckdb.DuckDBPyConnection, customers: list[str]) -> pd.DataFrame:
    """The ledger's payments of the customers whose lines Sage's copy may not show, as a typed frame."""
    rows: list[AppliedRow] = []
    if customers:
        [(oldest,)] = conn.execute(
            f"SELECT min(synced_at) FROM sage_ar_invoices i WHERE {_KEY} IN (SELECT unnest(?::VARCHAR[]))",
            [customers],
        ).fetchall()
        since = None if oldest is None else pd.Timestamp(oldest).tz_localize("UTC")
        if since is not None:  # no row copied: nothing to count against
            rows = store.ledger.applied(customers, written_since=since.to_pydatetime())
    frame = pd.DataFrame.from_records(rows, columns=list(AppliedRow._fields))
    typed = frame.drop(columns="posted_at").astype("string")  # typed even when empty, for DuckDB
    typed["posted_at"] = pd.to_datetime(frame["posted_at"], utc=True).dt.tz_convert(None).astype("datetime64[us]")
    return typed


# --- the audit: what reduced the invoices that mattered to a decision -------------------------------------------


class _Invoice(NamedTuple):
    balance: Decimal
    payments_today: Decimal  # Sage's copy: receipts entered, not posted (people's and ours)
    ours: tuple[dict[str, str], ...]  # our payments the copy cannot show yet


InvoiceKey = tuple[str, str, str]  # (DD-CUSTNO, InvoiceNo, InvoiceType)


class UnpostedAmounts:
    """For each decision, taken in payment order, the unposted amounts against the invoices that mattered to it.

    An invoice mattered to a matched decision if the decision pays it; to a held one, if it is the
    customer's (the hold is about what was open). It is named when something unposted reduced it:
    `payments_today` (Sage's copy) or our payments, those the ledger has and the earlier payments of this
    evaluation (`status` `matched`). `of` must be called for the decisions in payment order.
    """

    def __init__(self, invoices: pd.DataFrame, decisions: Iterable[Decision]) -> None:
        decided = [d for d in decisions if d.sage_customer is not None]
        several = {c for c, n in Counter(d.sage_customer for d in decided).items() if n > 1}
        allocated = {  # what an earlier payment of this evaluation may take from a later one's invoices
            (d.sage_customer, a["invoice_no"], a["invoice_type"])
            for d in decided
            if d.matched and d.sage_customer in several
            for a in d.allocations
        }
        self._invoices: dict[InvoiceKey, _Invoice] = {}
        self._reduced: defaultdict[str, list[InvoiceKey]] = defaultdict(list)
        self._taken: defaultdict[InvoiceKey, list[dict[str, str]]] = defaultdict(list)
        self._taken_of: defaultdict[str, list[InvoiceKey]] = defaultdict(list)
        if invoices.empty:
            return
        keys = pd.MultiIndex.from_arrays(
            [invoices["ARDivisionNo"] + "-" + invoices["CustomerNo"], invoices["InvoiceNo"], invoices["InvoiceType"]]
        )
        wanted = invoices["reduced"].fillna(False).to_numpy(dtype=bool) | keys.isin(list(allocated))
        rows = invoices.loc[wanted, ["Balance", "SagePaymentsToday", "ours", "reduced"]]
        for key, (balance, payments_today, ours, reduced) in zip(
            keys[wanted], rows.itertuples(index=False), strict=True
        ):
            self._invoices[key] = _Invoice(
                Decimal(balance), Decimal(payments_today), tuple(json.loads(ours)) if isinstance(ours, str) else ()
            )
            if reduced:
                self._reduced[key[0]].append(key)

    def of(self, decision: Decision) -> list[dict[str, Any]]:
        """The unposted amounts against the invoices that mattered to `decision` (then its own are counted)."""
        customer = decision.sage_customer
        if customer is None:
            return []
        if decision.matched:
            keys = [(customer, a["invoice_no"], a["invoice_type"]) for a in decision.allocations]
        else:
            keys = list(dict.fromkeys([*self._reduced.get(customer, ()), *self._taken_of.get(customer, ())]))
        named = [entry for key in keys if (entry := self._entry(key)) is not None]
        if decision.matched:
            for key, a in zip(keys, decision.allocations, strict=True):
                if key not in self._taken:
                    self._taken_of[customer].append(key)
                took = {"payment_id": decision.payment_id, "amount": str(a["amount"]), "status": "matched"}
                self._taken[key].append(took)
        return named

    def _entry(self, key: InvoiceKey) -> dict[str, Any] | None:
        invoice = self._invoices.get(key)
        if invoice is None or invoice.balance <= 0:
            return None
        ours = [*invoice.ours, *self._taken.get(key, ())]
        if not ours and invoice.payments_today == 0:
            return None
        ours_total = sum((Decimal(o["amount"]) for o in ours), Decimal("0"))
        return {
            "invoice_no": key[1],
            "invoice_type": key[2],
            "balance": str(invoice.balance),
            "payments_today": str(invoice.payments_today),
            "ours": ours,
            "open_amount": str(invoice.balance - invoice.payments_today - ours_total),
        }
