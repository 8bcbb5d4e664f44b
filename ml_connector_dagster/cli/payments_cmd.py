"""`ml-connector payments [--json]`: every payment the product knows, with its status from the spec."""

from __future__ import annotations

from typing import Any

import click

from ..store.ledger import STATUSES, LedgerEntry
from .common import echo_json, echo_table, store_or_exit


def payment_view(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "id": entry.payment_id,
        "status": entry.status,
        "reason": entry.reason,
        "customer": entry.sage_customer,
        "gocardless_customer": entry.gocardless_customer,
        "amount": entry.home_amount,
        "amount_minor": entry.amount_minor,
        "currency": entry.currency,
        "allocations": [{"invoice": a.get("invoice_no"), "amount": str(a.get("amount"))} for a in entry.allocations],
        "receipt": entry.receipt,
        "rule": entry.rule,
        "explanation": entry.explanation,
        "updated_at": entry.updated_at.isoformat(timespec="seconds"),
    }


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--status", type=click.Choice(STATUSES), help="Only payments in this status.")
def payments(as_json: bool, status: str | None) -> None:
    """List payments with status, reason, Sage customer, allocations and receipt."""
    data = [payment_view(e) for e in store_or_exit().ledger.list(status=status)]
    if as_json:
        echo_json(data)
        return
    echo_table(
        [
            {
                **d,
                "allocations": " ".join(f"{a['invoice']}:{a['amount']}" for a in d["allocations"]),
                "receipt": (d["receipt"] or {}).get("receipt_id"),
            }
            for d in data
        ],
        ["id", "status", "reason", "customer", "amount", "allocations", "receipt"],
    )
