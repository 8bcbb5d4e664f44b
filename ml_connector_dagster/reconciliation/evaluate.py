"""Evaluate new or changed payments set-wise: lifecycle step, customer, invoice rules, ledger, review, audit.

Reads the warehouse (payments, customers, invoices as last polled) and the ledger (what this product has
applied that the copy of Sage does not show yet: open_amounts.py), writes the ledger, the review queue and
the audit trail (operational store) and the `payment_matches` table (warehouse). Payments are decided in
payment order (`created_at`, `id`), each seeing what the earlier ones took. Posting to Sage is separate
(`write_back.py`): it re-checks the invoices through the agent right before writing.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

import duckdb
import pandas as pd

from .. import money
from ..lifecycle import next_step
from ..matching import Decision, MatchSettings, match_payments, resolve_customers
from ..matching.model import Allocation as DecidedAllocation
from ..settings import ReconciliationSettings
from ..store import Store
from ..store.utc import utcnow
from .open_amounts import UnpostedAmounts, open_invoices
from .tables import ensure_tables, typed_rows

PAYMENT_COLUMNS = """p.id, p.amount, p.currency, p.status, p.reference, p.description,
    CAST(p.metadata AS VARCHAR) AS metadata, p.fx_currency, p.fx_amount, p.customer AS gocardless_customer,
    p.fetched_at, p.amount_refunded, coalesce(p.retry_expected, false) AS retry_expected"""


class _Payment(NamedTuple):
    """A changed payment as the evaluation reads it: its PAYMENT_COLUMNS, its ledger status and next step."""

    id: str
    amount: int
    currency: str
    status: str
    reference: str | None
    description: str | None
    metadata: str | None
    fx_currency: str | None
    fx_amount: int | None
    gocardless_customer: str | None
    ledger_status: str | None
    action: str
    cause: str | None


@dataclass
class EvaluationSummary:
    evaluated: int = 0
    by_action: Counter[str] = field(default_factory=Counter)
    held_by_reason: Counter[str | None] = field(default_factory=Counter)
    refunds_evaluated: int = 0
    reversals_required: int = 0

    def as_metadata(self) -> dict[str, Any]:
        return {
            "evaluated": self.evaluated,
            "by_action": dict(self.by_action),
            "held_by_reason": dict(self.held_by_reason),
            "refunds_evaluated": self.refunds_evaluated,
            "reversals_required": self.reversals_required,
        }


def match_settings(settings: ReconciliationSettings) -> MatchSettings:
    return MatchSettings(home_currency=settings.home_currency, on_tie=settings.on_tie, fx_rates=settings.fx_rates)


def changed_payments(conn: duckdb.DuckDBPyConnection, payment_ids: list[str] | None = None) -> pd.DataFrame:
    """Payments fetched since they were last evaluated (or the named ones, whatever their state), in payment
    order: oldest first (`created_at`, then `id`)."""
    if payment_ids is not None:
        return conn.execute(
            f"""SELECT {PAYMENT_COLUMNS} FROM gocardless_payments p WHERE p.id IN (SELECT unnest(?))
            ORDER BY p.created_at, p.id""",
            [payment_ids],
        ).df()
    return conn.execute(f"""
        SELECT {PAYMENT_COLUMNS} FROM gocardless_payments p LEFT JOIN payment_matches m ON m.payment_id = p.id
        WHERE m.payment_id IS NULL OR p.fetched_at > m.source_fetched_at ORDER BY p.created_at, p.id""").df()


def customer_map_for(conn: duckdb.DuckDBPyConnection, gocardless_customers: list[str]) -> pd.DataFrame:
    """Resolve the given GoCardless customers against every Sage customer (rules 1-3)."""
    gc = conn.execute(
        """SELECT id, email, given_name, family_name, company_name, CAST(metadata AS VARCHAR) AS metadata
        FROM gocardless_customers WHERE id IN (SELECT unnest(?))""",
        [gocardless_customers],
    ).df()
    sage = conn.execute("SELECT ARDivisionNo, CustomerNo, CustomerName, EmailAddress FROM sage_customers").df()
    return resolve_customers(gc, sage)


def evaluate_payments(
    conn: duckdb.DuckDBPyConnection,
    store: Store,
    settings: ReconciliationSettings,
    actor: str = "system",
    payment_ids: list[str] | None = None,
) -> EvaluationSummary:
    """Bring every changed payment to its next status; return what happened."""
    ensure_tables(conn)
    summary = EvaluationSummary()
    payments = changed_payments(conn, payment_ids)
    if payments.empty:
        return summary
    statuses = store.ledger.statuses(payments["id"].tolist())
    payments["ledger_status"] = payments["id"].map(statuses)
    steps = _steps(payments, settings.collect_on)
    payments["action"], payments["cause"] = steps["action"], steps["cause"]

    to_match = payments[payments["action"] == "match"]
    decisions, unposted = _decide(conn, store, to_match, settings) if not to_match.empty else (pd.DataFrame(), None)
    ledger_rows, audit, held, reversals, closing = _outcomes(payments, decisions, unposted, settings)

    written = store.ledger.apply_many(ledger_rows)
    skipped = {r["payment_id"] for r in ledger_rows} - written  # moved on meanwhile: look again next time
    if skipped:
        payments = payments[~payments["id"].isin(skipped)]
        held = [i for i in held if i["payment_id"] not in skipped]
        reversals = [i for i in reversals if i["payment_id"] not in skipped]
        audit = [a for a in audit if a[1] not in skipped]
    for item in held:
        store.review.open_item(item["payment_id"], "held", item["reason"], item)
    for item in reversals:
        store.review.open_item(item["payment_id"], "reversal_required", item["cause"], item)
    for payment_id in closing:
        for open_item in store.review.open_for(payment_id):
            if open_item.kind == "held":
                store.review.close(open_item.id, "resolved", by=actor, note="payment not collected")
    store.audit.append_many(audit, actor=actor)
    _write_matches(conn, payments, decisions, settings)

    summary.evaluated = len(payments)
    summary.by_action.update(payments["action"].tolist())
    summary.held_by_reason.update(i["reason"] for i in held)
    summary.reversals_required = len(reversals)
    return summary


def _steps(payments: pd.DataFrame, collect_on: str) -> pd.DataFrame:
    """The lifecycle table applied per distinct (ledger status, GoCardless status, retry) triple, not per row."""
    pairs = payments[["ledger_status", "status", "retry_expected"]].astype(object)
    pairs = pairs.where(pairs.notna(), None)
    distinct = pairs.drop_duplicates()
    table = {
        (ls, gs, retry): next_step(ls, gs, collect_on, retry_expected=bool(retry))
        for ls, gs, retry in distinct.itertuples(index=False)
    }
    keys = list(zip(pairs["ledger_status"], pairs["status"], pairs["retry_expected"], strict=True))
    return pd.DataFrame(
        {"action": [table[k].action for k in keys], "cause": [table[k].cause for k in keys]}, index=payments.index
    )


def _decide(
    conn: duckdb.DuckDBPyConnection, store: Store, to_match: pd.DataFrame, settings: ReconciliationSettings
) -> tuple[pd.DataFrame, UnpostedAmounts]:
    """The decisions (in payment order, against the open amounts) and what unposted reduced for their audit."""
    customer_map = customer_map_for(conn, to_match["gocardless_customer"].dropna().unique().tolist())
    known = customer_map["sage_customer"].dropna().unique().tolist()
    invoices = open_invoices(conn, store, known, exclude=to_match["id"].tolist())
    decisions = match_payments(to_match, customer_map, invoices, match_settings(settings))
    unposted = UnpostedAmounts(invoices, typed_rows(decisions, Decision, Decision._fields))
    return decisions.set_index("payment_id", drop=False), unposted


class _Outcomes(NamedTuple):
    ledger_rows: list[dict[str, Any]]
    audit: list[tuple[str, str | None, dict[str, Any]]]
    held: list[dict[str, Any]]
    reversals: list[dict[str, Any]]
    closing: list[str]


def _outcomes(
    payments: pd.DataFrame,
    decisions: pd.DataFrame,
    unposted: UnpostedAmounts | None,
    settings: ReconciliationSettings,
) -> _Outcomes:
    """Ledger rows, audit records, review items and payments whose held item closes (one pass, in payment order)."""
    out = _Outcomes([], [], [], [], [])
    ledger_rows, audit, held, reversals, closing = out
    by_id = {} if decisions.empty else {d.payment_id: d for d in typed_rows(decisions, Decision, Decision._fields)}
    for p in typed_rows(payments, _Payment, _Payment._fields):
        base = {
            "payment_id": p.id,
            "expected_status": p.ledger_status,
            "gocardless_customer": p.gocardless_customer,
            "amount_minor": p.amount,
            "currency": p.currency,
            "gocardless_status": p.status,
        }
        if p.action == "match":
            d = by_id[p.id]
            status = "matched" if d.status == "matched" else "held"
            row = {
                **base,
                "status": status,
                "reason": d.reason,
                "sage_customer": d.sage_customer,
                "home_amount": _text(d.home_amount),
                "allocations": _allocations(d.allocations),
                "rule": d.rule,
                "explanation": d.explanation,
            }
            ledger_rows.append(row)
            reduced = {"unposted": named} if unposted is not None and (named := unposted.of(d)) else {}
            audit.append(
                (
                    "payment.matched" if status == "matched" else "payment.held",
                    p.id,
                    {**row, "inputs": _inputs(p), "candidates": list(d.candidates), **reduced},
                )
            )
            if status == "held":
                held.append({**_review_details(p, d), **reduced})
        elif p.action in ("pending", "not_collected"):
            ledger_rows.append(
                {
                    **base,
                    "status": p.action,
                    "reason": None if p.action == "pending" else p.cause,
                    "home_amount": _text(_home_amount(p, settings)),
                }
            )
            audit.append((f"payment.{p.action}", p.id, {"gocardless_status": p.status, "cause": p.cause}))
            if p.action == "not_collected":
                closing.append(p.id)
        elif p.action == "reversal_required":
            ledger_rows.append({**base, "status": "reversal_required", "reason": p.cause})  # keeps the receipt
            item = reversal_details(p.id, p.cause, p.amount, p.currency, settings)
            reversals.append(item)
            audit.append(("payment.reversal_required", p.id, item))
        else:
            audit.append(("payment.unchanged", p.id, {"gocardless_status": p.status, "ledger_status": p.ledger_status}))
    return out


def _write_matches(
    conn: duckdb.DuckDBPyConnection, payments: pd.DataFrame, decisions: pd.DataFrame, settings: ReconciliationSettings
) -> None:
    now = utcnow().replace(tzinfo=None)
    frame = pd.DataFrame(
        {
            "payment_id": payments["id"],
            "status": payments["action"],
            "gocardless_customer": payments["gocardless_customer"],
            "amount": payments["amount"],
            "currency": payments["currency"],
            "gocardless_status": payments["status"],
            "source_fetched_at": payments["fetched_at"],
        }
    )
    if not decisions.empty:
        d = decisions.reindex(frame["payment_id"].tolist())
        d.index = frame.index
        matched = frame["status"] == "match"
        frame.loc[matched, "status"] = d.loc[matched, "status"]
        frame["reason"] = d["reason"].where(matched, None)
        frame["sage_customer"] = d["sage_customer"].where(matched, None)
        frame["home_amount"] = d["home_amount"].map(_text).where(matched, None)
        frame["allocations"] = d["allocations"].map(
            lambda a: json.dumps(_allocations(a)) if isinstance(a, list) else None
        )
        frame["rule"] = d["rule"].where(matched, None)
        frame["explanation"] = d["explanation"].where(matched, None)
        frame["candidates"] = d["candidates"].map(lambda c: json.dumps(list(c)) if isinstance(c, list) else None)
    else:
        for column in ("reason", "sage_customer", "home_amount", "allocations", "rule", "explanation", "candidates"):
            frame[column] = None
    frame["evaluated_at"] = now
    conn.register("new_matches", frame)
    conn.execute("""
        INSERT OR REPLACE INTO payment_matches
        SELECT payment_id, status, reason, sage_customer, gocardless_customer, amount, currency,
               CAST(home_amount AS DECIMAL(18, 2)), CAST(allocations AS JSON), rule, explanation,
               CAST(candidates AS JSON), gocardless_status, source_fetched_at, evaluated_at FROM new_matches""")
    conn.unregister("new_matches")


def _review_details(p: _Payment, d: Decision) -> dict[str, Any]:
    """What the spec asks a held item to carry, for the operator."""
    return {
        "payment_id": p.id,
        "gocardless_customer": p.gocardless_customer,
        "amount_minor": p.amount,
        "currency": p.currency,
        "home_amount": _text(d.home_amount),
        "reference": p.reference,
        "reason": d.reason,
        "explanation": d.explanation,
        "sage_customer": d.sage_customer,
        "candidates": list(d.candidates),
    }


def _home_amount(p: _Payment, settings: ReconciliationSettings) -> Decimal | None:
    """The amount in Sage's currency, for display of payments that are not matched (pending, not collected)."""
    try:
        return money.to_home_amount(
            p.amount, p.currency, settings.home_currency, p.fx_currency, p.fx_amount, settings.fx_rates
        )
    except money.UnsupportedCurrency:
        return None


def reversal_details(
    payment_id: str, cause: str | None, amount_minor: int, currency: str, settings: ReconciliationSettings
) -> dict[str, Any]:
    home = money.to_home_amount(amount_minor, currency, settings.home_currency, None, None, settings.fx_rates)
    return {
        "payment_id": payment_id,
        "cause": cause,
        "amount_minor": amount_minor,
        "currency": currency,
        "amount": str(money.to_decimal(amount_minor, currency)),
        "home_amount": _text(home),
    }


def _inputs(p: _Payment) -> dict[str, Any]:
    return {
        "amount": p.amount,
        "currency": p.currency,
        "reference": p.reference,
        "description": p.description,
        "metadata": p.metadata,
        "fx_currency": p.fx_currency,
        "fx_amount": p.fx_amount,
        "gocardless_status": p.status,
    }


def _allocations(allocations: Sequence[DecidedAllocation] | None) -> list[dict[str, str]]:
    return [
        {"invoice_no": a["invoice_no"], "invoice_type": a["invoice_type"], "amount": str(a["amount"])}
        for a in (allocations or [])
    ]


def _text(value: Decimal | float | None) -> str | None:
    """An amount as exact text; None when missing (None, or the NaN pandas fills a gap in a column with)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)
