"""`ml-connector audit [--payment ID] [--json]` and `ml-connector audit verify`."""

from __future__ import annotations

from typing import Any

import click

from .common import echo_json, echo_table, store_or_exit


@click.group(invoke_without_command=True)
@click.option("--payment", "payment_id", help="Only records about this GoCardless payment (PM...).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--limit", type=click.IntRange(min=0), default=0, help="At most this many records (0: all).")
@click.pass_context
def audit(ctx: click.Context, payment_id: str | None, as_json: bool, limit: int) -> None:
    """The audit trail: every event, decision, Sage call and review action, oldest first."""
    if ctx.invoked_subcommand:
        return
    records = store_or_exit().audit.list(subject=payment_id, limit=limit or None)
    data = [
        {
            "seq": r.seq,
            "recorded_at": r.recorded_at,
            "actor": r.actor,
            "action": r.action,
            "subject": r.subject,
            "details": r.details,
        }
        for r in records
    ]
    if as_json:
        echo_json(data)
        return
    echo_table(
        [{**d, "details": _short(r.details)} for d, r in zip(data, records, strict=True)],
        ["seq", "recorded_at", "actor", "action", "subject", "details"],
    )


@audit.command("verify")
def verify() -> None:
    """Recompute the hash chain; exit non-zero if any record was changed or deleted."""
    result = store_or_exit().audit.verify()
    if result.ok:
        click.echo(f"audit trail intact: {result.records} records, hash chain verified")
        return
    click.echo(f"audit trail TAMPERED: {result.problem}", err=True)
    raise SystemExit(1)


def _short(details: dict[str, Any]) -> str:
    text = ", ".join(f"{k}={v}" for k, v in details.items())
    return text if len(text) <= 80 else text[:77] + "..."
