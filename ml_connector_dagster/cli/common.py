"""What every subcommand shares: settings and store loading with clear errors instead of tracebacks."""

from __future__ import annotations

import json
from typing import Any

import click
from sqlalchemy.exc import SQLAlchemyError

from ..secrets import mask_credentials
from ..settings import Settings, SettingsError, load_settings
from ..store import Store


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except SettingsError as exc:
        raise click.ClickException(str(exc)) from None


def store_or_exit(settings: Settings | None = None) -> Store:
    settings = settings or settings_or_exit()
    try:
        return Store(settings.database_url)
    # The database is unreachable, its driver missing, its URL malformed or the schema not ours: say which.
    except (SQLAlchemyError, OSError, RuntimeError, ImportError, ValueError) as exc:
        raise click.ClickException(
            f"cannot open the operational store ({exc.__class__.__name__}: "
            f"{mask_credentials(str(exc).splitlines()[0][:200]) if str(exc) else ''}); "
            "check ML_CONNECTOR_DATABASE_URL and ML_CONNECTOR_HOME"
        ) from None


def printable(value: Any) -> str:
    """`value` as text a terminal shows and does not act on: escape sequences, BEL, line breaks, tabs, NUL,
    right-to-left overrides and lone surrogates are written as Python escapes (\\x07, \\u202e); the rest,
    accented letters included, is kept. For values that came from outside (GoCardless, Sage, the store)."""
    text = "" if value is None else str(value)
    return text if text.isprintable() else "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


def echo_json(data: Any) -> None:
    """JSON with every non-ASCII character escaped (json's default), so it is safe on a terminal as is."""
    click.echo(json.dumps(data, indent=2, default=str))


def echo_table(rows: list[dict[str, Any]], columns: list[str]) -> None:
    """A plain aligned text table, every cell `printable`; prints '(none)' for no rows."""
    if not rows:
        click.echo("(none)")
        return
    cells = [[printable(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(c), *(len(row[i]) for row in cells)) for i, c in enumerate(columns)]
    click.echo("  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip())
    for row in cells:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=False)).rstrip())
