"""UTC timestamps: what the store writes and reads back (aware datetimes; SQLite keeps them as ISO text).

Public helpers for the store and for the modules that pass it times (``reconciliation``): every time the
product records is an aware UTC datetime.
"""

from datetime import UTC, datetime
from typing import overload

__all__ = ["as_utc", "utcnow"]


def utcnow() -> datetime:
    """Now, as an aware UTC datetime."""
    return datetime.now(UTC)


@overload
def as_utc(value: datetime) -> datetime: ...
@overload
def as_utc(value: None) -> None: ...
def as_utc(value: datetime | None) -> datetime | None:
    """A stored time as an aware UTC datetime: SQLite returns naive datetimes, and every stored time is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)
