"""The operational store: webhook inbox, posting ledger, review queue and audit log.

Everything that more than one process writes lives here (never in DuckDB, which allows one writer).
"""

from __future__ import annotations

import sqlalchemy as sa

from .audit import AuditLog
from .engine import create_engine, ensure_schema
from .inbox import Inbox
from .ledger import Ledger
from .review import ReviewQueue


class Store:
    """One handle on the operational store; cheap to build, safe to share across threads."""

    def __init__(self, url: str, engine: sa.Engine | None = None) -> None:
        self.url = url
        self.engine = engine or create_engine(url)
        ensure_schema(self.engine)
        self.inbox = Inbox(self.engine)
        self.ledger = Ledger(self.engine)
        self.review = ReviewQueue(self.engine)
        self.audit = AuditLog(self.engine)

    def __repr__(self) -> str:
        return f"Store({self.engine.url.render_as_string(hide_password=True)!r})"

    def dispose(self) -> None:
        self.engine.dispose()


__all__ = ["AuditLog", "Inbox", "Ledger", "ReviewQueue", "Store"]
