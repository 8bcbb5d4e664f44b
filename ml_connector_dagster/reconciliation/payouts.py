"""Payouts as month-end bank reconciliation needs them: each payout's payments, fees and refunds, whether
its items add up to the amount on the bank statement, and the posting status of each of its payments."""

from __future__ import annotations

from collections.abc import Sized
from typing import NamedTuple

import duckdb
import pandas as pd

from ..store import Store
from .tables import ensure_tables, typed_rows

PAYMENT_TYPES = ("payment_paid_out",)
FEE_TYPES = ("gocardless_fee", "app_fee", "revenue_share", "surcharge_fee")
REFUND_TYPES = ("refund", "refund_funds_returned", "payment_refunded")


def build(conn: duckdb.DuckDBPyConnection, store: Store, write: bool = True) -> pd.DataFrame:
    """One row per payout (set-wise SQL); with `write`, replace the `payout_reconciliation` table."""
    ensure_tables(conn)
    items = conn.execute("SELECT payout, payment FROM gocardless_payout_items WHERE payment IS NOT NULL").df()
    statuses = store.ledger.statuses(items["payment"].unique().tolist()) if len(items) else {}
    conn.register(
        "payment_status",
        pd.DataFrame(
            {"payment": list(statuses), "ledger_status": list(statuses.values())}, columns=["payment", "ledger_status"]
        ),
    )
    frame = conn.execute(f"""
        WITH items AS (
            SELECT i.payout, i.type, i.amount, i.payment, s.ledger_status
            FROM gocardless_payout_items i LEFT JOIN payment_status s ON s.payment = i.payment),
        totals AS (
            SELECT payout,
                   round(sum(amount)) AS items_total,
                   sum(amount) FILTER (WHERE type IN {_in(PAYMENT_TYPES)}) AS payments_amount,
                   sum(amount) FILTER (WHERE type IN {_in(FEE_TYPES)}) AS fees,
                   sum(amount) FILTER (WHERE type IN {_in(REFUND_TYPES)}) AS refunds,
                   sum(amount) FILTER (WHERE type NOT IN {_in(PAYMENT_TYPES + FEE_TYPES + REFUND_TYPES)}) AS other,
                   list(DISTINCT payment ORDER BY payment) FILTER (WHERE payment IS NOT NULL) AS payments,
                   list(DISTINCT payment ORDER BY payment)
                       FILTER (WHERE ledger_status IN ('posted', 'posting')) AS posted,
                   list(DISTINCT payment ORDER BY payment) FILTER (WHERE ledger_status = 'held') AS held,
                   list(DISTINCT payment ORDER BY payment) FILTER (WHERE payment IS NOT NULL AND
                        coalesce(ledger_status, '') NOT IN ('posted', 'posting', 'held')) AS other_status
            FROM items GROUP BY payout)
        SELECT p.id AS payout_id, p.currency, p.amount, p.arrival_date, p.reference, p.status,
               coalesce(t.items_total, 0)::BIGINT AS items_total,
               coalesce(t.items_total, 0) = p.amount AS items_add_up,
               coalesce(t.payments_amount, 0)::BIGINT AS payments_amount, coalesce(t.fees, 0)::BIGINT AS fees,
               coalesce(t.refunds, 0)::BIGINT AS refunds, coalesce(t.other, 0)::BIGINT AS other,
               coalesce(t.payments, []) AS payments, coalesce(t.posted, []) AS posted,
               coalesce(t.held, []) AS held, coalesce(t.other_status, []) AS other_status
        FROM gocardless_payouts p LEFT JOIN totals t ON t.payout = p.id ORDER BY p.arrival_date, p.id""").df()
    conn.unregister("payment_status")
    if write:
        conn.register("new_payouts", frame)
        conn.execute("CREATE OR REPLACE TABLE payout_reconciliation AS SELECT * FROM new_payouts")
        conn.unregister("new_payouts")
    return frame


def _in(values: tuple[str, ...]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


class _Line(NamedTuple):
    """What the UI table shows of a payout (the lists of payment ids are counted)."""

    payout_id: str
    currency: str
    amount: int
    items_add_up: bool
    payments: Sized
    posted: Sized
    held: Sized
    fees: int
    reference: str | None


def markdown(frame: pd.DataFrame, limit: int = 50) -> str:
    """A UI table (amounts in minor units, as GoCardless reports them)."""
    if frame.empty:
        return "No payouts yet."
    lines = [
        "| payout | currency | amount | items add up | payments | posted | held | fees | reference |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in typed_rows(frame.head(limit), _Line, _Line._fields):
        lines.append(
            f"| {r.payout_id} | {r.currency} | {r.amount} | {'yes' if r.items_add_up else 'NO'} | "
            f"{len(r.payments)} | {len(r.posted)} | {len(r.held)} | {r.fees} | {r.reference or ''} |"
        )
    return "\n".join(lines)
