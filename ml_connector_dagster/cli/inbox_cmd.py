"""`ml-connector inbox list`: the stored webhook events and their processing state."""

from __future__ import annotations

import click

from ..store.inbox import STATUSES
from .common import echo_json, echo_table, store_or_exit

COLUMNS = ["seq", "event_id", "resource_type", "action", "resource_id", "status", "attempts", "received_at"]


@click.group()
def inbox() -> None:
    """The webhook inbox."""


@inbox.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.option("--status", type=click.Choice(STATUSES), help="Only events in this status.")
@click.option("--limit", type=click.IntRange(min=0), default=50, show_default=True, help="0 lists everything.")
def list_inbox(as_json: bool, status: str | None, limit: int) -> None:
    """List stored events, newest first."""
    rows = store_or_exit().inbox.list(status=status, limit=limit or None)
    data = [
        {
            "seq": r.seq,
            "event_id": r.event_id,
            "resource_type": r.resource_type,
            "action": r.action,
            "resource_id": r.resource_id,
            "status": r.status,
            "attempts": r.attempts,
            "received_at": r.received_at.isoformat(timespec="seconds"),
            "last_error": r.last_error,
        }
        for r in rows
    ]
    if as_json:
        echo_json(data)
    else:
        echo_table(data, COLUMNS)
