"""Evaluate new or changed payments set-wise: lifecycle step, customer, invoice rules, ledger, review, audit.

Reads the warehouse (payments, customers, invoices as last polled) and the ledger (what this product has
applied that the copy of Sage does not show yet: open_amounts.py), writes the ledger, the review queue and
the audit trail (operational store) and the `payment_matches` table (warehouse). Payments are decided in
payment order (`created_at`, `id`), each seeing what the earlier ones took. Posting to Sage is separate
(`write_back.py`): it re-checks the invoices through the agent right before writing.

Decisions heal: a held payment is decided again when the payment changes in GoCardless, and when the Sage
invoices or customers or the customer map rows it depends on change (heal.py finds those set-wise); a
foreign payment with no company rate waits (`pending`, awaiting_fx_amount) for GoCardless's converted
amount. A review item automation makes moot closes as resolved, naming the change; a held payment whose
item an operator applied or dismissed is never decided again by automation.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import duckdb
import pandas as pd

from ..lifecycle import next_step
from ..matching import Decision, MatchSettings, match_payments, resolve_customers
from ..settings import ReconciliationSettings
from ..store import Store
from ..store.review import ReviewItem
from ..store.utc import utcnow
from . import heal
from .open_amounts import UnpostedAmounts, open_invoices
from .outcomes import Closing, Outcomes, allocations, outcomes, reversal_details, text
from .tables import ensure_tables, typed_rows
from .waits import awaits_converted_amount

__all__ = ["PAYMENT_COLUMNS", "EvaluationSummary", "evaluate_payments", "match_settings", "reversal_details"]

PAYMENT_COLUMNS = """p.id, p.amount, p.currency, p.status, p.reference, p.description,
    CAST(p.metadata AS VARCHAR) AS metadata, p.fx_currency, p.fx_amount, p.customer AS gocardless_customer,
    p.fetched_at, p.amount_refunded, coalesce(p.retry_expected, false) AS retry_expected"""
#: The evaluation also reads the GoCardless customer's email (for what a held decision waits for).
EVALUATED_COLUMNS = f"""{PAYMENT_COLUMNS},
    (SELECT c.email FROM gocardless_customers c WHERE c.id = p.customer) AS email"""


@dataclass
class EvaluationSummary:
    evaluated: int = 0
    by_action: Counter[str] = field(default_factory=Counter)
    held_by_reason: Counter[str | None] = field(default_factory=Counter)
    refunds_evaluated: int = 0
    reversals_required: int = 0
    decided_again: int = 0
    resolved_automatically: int = 0

    def as_metadata(self) -> dict[str, Any]:
        return {
            "evaluated": self.evaluated,
            "by_action": dict(self.by_action),
            "held_by_reason": dict(self.held_by_reason),
            "refunds_evaluated": self.refunds_evaluated,
            "reversals_required": self.reversals_required,
            "decided_again": self.decided_again,
            "resolved_automatically": self.resolved_automatically,
        }


def match_settings(settings: ReconciliationSettings) -> MatchSettings:
    return MatchSettings(home_currency=settings.home_currency, on_tie=settings.on_tie, fx_rates=settings.fx_rates)


def changed_payments(
    conn: duckdb.DuckDBPyConnection, payment_ids: list[str] | None = None, also: list[str] | None = None
) -> pd.DataFrame:
    """Payments fetched since they were last evaluated, plus the `also` ones (or only the named
    `payment_ids`, whatever their state), in payment order: oldest first (`created_at`, then `id`)."""
    if payment_ids is not None:
        return conn.execute(
            f"""SELECT {EVALUATED_COLUMNS} FROM gocardless_payments p WHERE p.id IN (SELECT unnest(?))
            ORDER BY p.created_at, p.id""",
            [payment_ids],
        ).df()
    return conn.execute(
        f"""SELECT {EVALUATED_COLUMNS} FROM gocardless_payments p
        LEFT JOIN payment_matches m ON m.payment_id = p.id
        WHERE m.payment_id IS NULL OR p.fetched_at > m.source_fetched_at OR p.id IN (SELECT unnest(?))
        ORDER BY p.created_at, p.id""",
        [also or []],
    ).df()


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
    """Bring every changed payment to its next status, and decide again the held payments whose Sage or
    customer data changed since the last evaluation; return what happened."""
    ensure_tables(conn)
    summary = EvaluationSummary()
    looked_at = heal.window(conn) if payment_ids is None else None
    changes = _changes(conn, looked_at)
    payments = changed_payments(conn, payment_ids, also=list(changes))
    if not payments.empty:
        done = _evaluate(conn, store, settings, actor, _with_state(store, payments, changes), summary)
        freed = _freed(conn, store, done)
        if freed:  # invoices our own payments had taken are open again: their customers' held payments
            again = changed_payments(conn, list(freed))
            _evaluate(conn, store, settings, actor, _with_state(store, again, freed), summary)
    if looked_at is not None:  # after the decisions are stored: a run that dies here looks again next time
        heal.remember(conn, looked_at)
    return summary


def _changes(conn: duckdb.DuckDBPyConnection, looked_at: heal.Window | None) -> dict[str, str]:
    if looked_at is None:
        return {}
    found = heal.affected(conn, looked_at)
    return dict(zip(found["payment_id"].tolist(), found["change"].tolist(), strict=True))


def _with_state(store: Store, payments: pd.DataFrame, changes: dict[str, str]) -> pd.DataFrame:
    """The payments with their ledger status and reason, and the change that brings each back (if any)."""
    states = store.ledger.states(payments["id"].tolist())
    payments["ledger_status"] = payments["id"].map(lambda i: states[i][0] if i in states else None)
    payments["ledger_reason"] = payments["id"].map(lambda i: states[i][1] if i in states else None)
    payments["change"] = payments["id"].map(changes).astype(object)
    own = payments["change"].isna() & payments["ledger_status"].notna()
    payments.loc[own, "change"] = _payment_change(payments.loc[own])
    return payments


def _payment_change(payments: pd.DataFrame) -> pd.Series:
    """The words for a payment that comes back because GoCardless's copy of it changed."""
    words = "GoCardless payment re-read: status " + payments["status"].astype(str)
    converted = payments["fx_amount"].notna()
    words = words.where(
        ~converted,
        words
        + ", converted amount "
        + payments["fx_amount"].astype("string")
        + " "
        + payments["fx_currency"].astype("string"),
    )
    return words.where(~payments["retry_expected"].astype(bool), words + ", a retry is coming")


def _evaluate(
    conn: duckdb.DuckDBPyConnection,
    store: Store,
    settings: ReconciliationSettings,
    actor: str,
    payments: pd.DataFrame,
    summary: EvaluationSummary,
) -> pd.DataFrame:
    """Decide the payments, store the outcomes, add them to `summary`; return the payments evaluated."""
    steps = _steps(payments, settings)
    payments["action"], payments["cause"] = steps["action"], steps["cause"]
    held_before = payments.loc[payments["ledger_status"] == "held", "id"].tolist()
    closed = {pid: f"{i.status} by {i.resolved_by}" for pid, i in store.review.operator_closed(held_before).items()}
    payments.loc[payments["id"].isin(list(closed)), "action"] = "none"  # operators win

    to_match = payments[payments["action"] == "match"]
    decisions, unposted = _decide(conn, store, to_match, settings) if not to_match.empty else (pd.DataFrame(), None)
    out = outcomes(payments, decisions, unposted, settings, closed)

    written = store.ledger.apply_many(out.ledger_rows)
    skipped = {r["payment_id"] for r in out.ledger_rows} - written  # moved on meanwhile: look again next time
    if skipped:
        payments = payments[~payments["id"].isin(skipped)]
        out = out.without(skipped)
    _review(store, out, actor)
    store.audit.append_many(out.audit, actor=actor)
    _write_matches(conn, payments, decisions)

    summary.evaluated += len(payments)
    summary.by_action.update(payments["action"].tolist())
    summary.held_by_reason.update(i["reason"] for i in out.held)
    summary.reversals_required += len(out.reversals)
    summary.decided_again += int(payments["ledger_status"].isin(["held"]).sum()) - len(closed)
    summary.resolved_automatically += sum(1 for c in out.closing if c.note.startswith("resolved automatically"))
    return payments


def _freed(conn: duckdb.DuckDBPyConnection, store: Store, done: pd.DataFrame) -> dict[str, str]:
    """Held payments of the Sage customers whose matched payment just left (not collected, or pending a
    retry): the invoices it had taken are open again. Keyed by payment id, with the change in words."""
    left = done.loc[(done["ledger_status"] == "matched") & done["action"].isin(["not_collected", "pending"]), "id"]
    if left.empty:
        return {}
    by_customer = {e.sage_customer: e.payment_id for e in store.ledger.many(left.tolist()) if e.sage_customer}
    held = conn.execute(
        "SELECT payment_id, sage_customer FROM payment_matches WHERE status = 'held' AND sage_customer IN "
        "(SELECT unnest(?)) ORDER BY payment_id",
        [list(by_customer)],
    ).fetchall()
    return {
        pid: f"our payment {by_customer[customer]} of {customer} was not collected: the invoices it had taken "
        "are open again"
        for pid, customer in held
    }


def _review(store: Store, out: Outcomes, actor: str) -> None:
    """Open or refresh held and reversal items (one per payment and kind: a new reason replaces the old), and
    close the items automation made moot; each change to an item someone has open is said in the audit."""
    opened = store.review.open_items(
        [(i["payment_id"], "held", i["reason"], i) for i in out.held]
        + [(i["payment_id"], "reversal_required", i["cause"], i) for i in out.reversals]
    )  # one transaction for all: one commit, not one per item
    for item, (item_id, before) in zip(out.held, opened, strict=False):
        if before is not None and before.reason != item["reason"]:
            change = (item.get("decided_again") or {}).get("change")
            record = {"item": item_id, "from": before.reason, "to": item["reason"], "change": change}
            out.audit.append(("review.reason_changed", item["payment_id"], {**record, **_viewer(store, before)}))
    for closing in out.closing:
        _close(store, out, closing, actor)


def _close(store: Store, out: Outcomes, closing: Closing, actor: str) -> None:
    for item in store.review.open_for(closing.payment_id):
        if item.kind != closing.kind:
            continue
        viewer = _viewer(store, item)
        note = closing.note + (f" (changed while {viewer['while_open_by']} had it open)" if viewer else "")
        if store.review.close(item.id, "resolved", by=actor, note=note):
            out.audit.append(("review.resolved", closing.payment_id, {"item": item.id, "note": note, **viewer}))


def _viewer(store: Store, item: ReviewItem) -> dict[str, str]:
    """Who opened this item (`review show`) and when, if anyone did: a change under them is said so."""
    opened = [
        r for r in store.audit.list(subject=item.subject, action="review.opened") if r.details.get("item") == item.id
    ]
    if not opened:
        return {}
    return {"while_open_by": opened[-1].actor, "opened_at": opened[-1].recorded_at}


def _steps(payments: pd.DataFrame, settings: ReconciliationSettings) -> pd.DataFrame:
    """The lifecycle table applied per distinct (ledger status, reason, GoCardless status, retry), not per
    row; then a foreign payment with no way to its home amount yet waits for GoCardless's conversion."""
    keys_frame = payments[["ledger_status", "ledger_reason", "status", "retry_expected"]].astype(object)
    keys_frame = keys_frame.where(keys_frame.notna(), None)
    table = {
        (ls, lr, gs, retry): next_step(ls, gs, settings.collect_on, retry_expected=bool(retry), ledger_reason=lr)
        for ls, lr, gs, retry in keys_frame.drop_duplicates().itertuples(index=False)
    }
    keys = list(keys_frame.itertuples(index=False, name=None))
    steps = pd.DataFrame(
        {"action": [table[k].action for k in keys], "cause": [table[k].cause for k in keys]}, index=payments.index
    )
    waiting = (steps["action"] == "match") & _awaiting_fx(payments, settings)
    still = waiting & (payments["ledger_status"] == "pending") & (payments["ledger_reason"] == "awaiting_fx_amount")
    steps.loc[waiting, ["action", "cause"]] = ["pending", "awaiting_fx_amount"]
    steps.loc[still, "action"] = "none"
    return steps


def _awaiting_fx(payments: pd.DataFrame, settings: ReconciliationSettings) -> pd.Series:
    """`waits.awaits_converted_amount` per distinct (currency, fx_currency, has fx_amount), not per row."""
    keys = pd.DataFrame(
        {
            "currency": payments["currency"].astype(object),
            "fx_currency": payments["fx_currency"].astype(object).where(payments["fx_currency"].notna(), None),
            "has_fx_amount": payments["fx_amount"].notna(),
        },
        index=payments.index,
    )
    table = {
        k: awaits_converted_amount(k[0], k[1], bool(k[2]), settings.home_currency, settings.fx_rates)
        for k in keys.drop_duplicates().itertuples(index=False, name=None)
    }
    return pd.Series([table[k] for k in keys.itertuples(index=False, name=None)], index=payments.index, dtype=bool)


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


def _write_matches(conn: duckdb.DuckDBPyConnection, payments: pd.DataFrame, decisions: pd.DataFrame) -> None:
    """Upsert the evaluated payments' rows: the decision for those decided, else the status they are in."""
    now = utcnow().replace(tzinfo=None)
    frame = pd.DataFrame(
        {
            "payment_id": payments["id"],
            "status": _status_after(payments),
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
        frame["home_amount"] = d["home_amount"].map(text).where(matched, None)
        frame["allocations"] = d["allocations"].map(
            lambda a: json.dumps(allocations(a)) if isinstance(a, list) else None
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
        INSERT OR REPLACE INTO payment_matches (payment_id, status, reason, sage_customer, gocardless_customer,
            amount, currency, home_amount, allocations, rule, explanation, candidates, gocardless_status,
            source_fetched_at, evaluated_at)
        SELECT payment_id, status, reason, sage_customer, gocardless_customer, amount, currency,
               CAST(home_amount AS DECIMAL(18, 2)), CAST(allocations AS JSON), rule, explanation,
               CAST(candidates AS JSON), gocardless_status, source_fetched_at, evaluated_at FROM new_matches""")
    conn.unregister("new_matches")


def _status_after(payments: pd.DataFrame) -> pd.Series:
    """The status each payment is in after this pass (a decided one's is filled in from its decision)."""
    action = payments["action"].astype(object)
    status = action.replace({"restore": "posted"})
    unchanged = action == "none"
    return status.where(
        ~unchanged, payments["ledger_status"].astype(object).where(payments["ledger_status"].notna(), "none")
    )
