"""Tables of the operational store: everything that several processes write.

SQLAlchemy Core keeps one schema for SQLite (default, WAL) and PostgreSQL (multi-host). The schema is
versioned in `schema_version`; `MIGRATIONS[i]` brings version i to i+1 and runs once, in order.
"""

from __future__ import annotations

from collections.abc import Callable

import sqlalchemy as sa

metadata = sa.MetaData()

schema_version = sa.Table(
    "schema_version",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
)

inbox = sa.Table(
    "inbox",
    metadata,
    # Monotonic sequence for sensor cursors; AUTOINCREMENT so SQLite never reuses a number.
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("event_id", sa.String(64), nullable=False, unique=True),
    sa.Column("resource_type", sa.String(64), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("resource_id", sa.String(64)),
    sa.Column("event_created_at", sa.String(40)),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("webhook_id", sa.String(64)),
    sa.Column("source", sa.String(16), nullable=False, server_default="webhook"),
    sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(16), nullable=False, server_default="received"),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("next_attempt_at", sa.DateTime(timezone=True)),
    sa.Column("claimed_by", sa.String(64)),
    sa.Column("claimed_at", sa.DateTime(timezone=True)),
    sa.Column("last_error", sa.Text),
    sa.Column("processed_at", sa.DateTime(timezone=True)),
    sqlite_autoincrement=True,
)
sa.Index("ix_inbox_status_next", inbox.c.status, inbox.c.next_attempt_at)
sa.Index("ix_inbox_resource", inbox.c.resource_id)

ledger = sa.Table(
    "ledger",
    metadata,
    # One row per GoCardless payment: its status and, once posted, its Sage cash receipt.
    sa.Column("payment_id", sa.String(64), primary_key=True),
    sa.Column("status", sa.String(32), nullable=False),
    sa.Column("reason", sa.String(64)),
    sa.Column("gocardless_customer", sa.String(64)),
    sa.Column("sage_customer", sa.String(32)),
    sa.Column("amount_minor", sa.BigInteger),
    sa.Column("currency", sa.String(3)),
    sa.Column("home_amount", sa.String(32)),
    sa.Column("allocations", sa.Text),
    sa.Column("rule", sa.String(32)),
    sa.Column("explanation", sa.Text),
    sa.Column("receipt", sa.Text),
    sa.Column("gocardless_status", sa.String(40)),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    # Since version 2: who is posting the payment and until when (a lease), and the receipt it asked for.
    sa.Column("claimed_by", sa.String(128)),
    sa.Column("lease_until", sa.DateTime(timezone=True)),
    sa.Column("request", sa.Text),
    # Since version 3: when the payment was recorded posted (our clock), to compare with the warehouse's copy.
    sa.Column("posted_at", sa.DateTime(timezone=True)),
)
sa.Index("ix_ledger_status", ledger.c.status)
sa.Index("ix_ledger_sage_customer", ledger.c.sage_customer)

review = sa.Table(
    "review",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("subject", sa.String(64), nullable=False),  # payment id, or event id for failed events
    sa.Column("kind", sa.String(32), nullable=False),  # held | reversal_required | processing_failed
    sa.Column("reason", sa.String(64)),
    sa.Column("details", sa.Text, nullable=False, server_default="{}"),
    sa.Column("status", sa.String(16), nullable=False, server_default="open"),
    sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("resolved_by", sa.String(128)),
    sa.Column("resolved_at", sa.DateTime(timezone=True)),
    sa.Column("note", sa.Text),
    sqlite_autoincrement=True,
)
sa.Index("ix_review_subject_kind", review.c.subject, review.c.kind)
sa.Index("ix_review_status", review.c.status)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("recorded_at", sa.String(40), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("action", sa.String(64), nullable=False),
    sa.Column("subject", sa.String(64)),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("hash", sa.String(64), nullable=False),
    sqlite_autoincrement=True,
)
sa.Index("ix_audit_subject", audit_log.c.subject)

# A single row locked by every audit append, so the hash chain is extended by one writer at a time.
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("appends", sa.BigInteger, nullable=False),
)

_SQLITE_APPEND_ONLY = [
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log "
    "BEGIN SELECT RAISE(ABORT, 'audit_log is append-only'); END",
]
_POSTGRES_APPEND_ONLY = [
    "CREATE OR REPLACE FUNCTION audit_log_append_only() RETURNS trigger AS $$ "
    "BEGIN RAISE EXCEPTION 'audit_log is append-only'; END; $$ LANGUAGE plpgsql",
    "DROP TRIGGER IF EXISTS audit_log_append_only ON audit_log",
    "CREATE TRIGGER audit_log_append_only BEFORE UPDATE OR DELETE ON audit_log "
    "FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()",
]


def _v1(conn: sa.Connection) -> None:
    metadata.create_all(conn)
    statements = _POSTGRES_APPEND_ONLY if conn.dialect.name == "postgresql" else _SQLITE_APPEND_ONLY
    for statement in statements:
        conn.exec_driver_sql(statement)
    conn.execute(audit_head.insert().values(id=1, appends=0))


def _v2(conn: sa.Connection) -> None:
    """Ledger claims get an owner and a lease, and the cash receipt request is kept before it is sent.

    Why: a payment left `posting` may be taken over only once its claim's lease has expired, and whoever
    takes it over compares the receipt Sage holds with what was asked. Columns `_v1` already created
    (a fresh store is created from the current tables) are skipped.
    """
    present = {column["name"] for column in sa.inspect(conn).get_columns("ledger")}
    for column in (ledger.c.claimed_by, ledger.c.lease_until, ledger.c.request):
        if column.name not in present:
            kind = column.type.compile(dialect=conn.dialect)
            conn.exec_driver_sql(f"ALTER TABLE ledger ADD COLUMN {column.name} {kind}")


def _v3(conn: sa.Connection) -> None:
    """The ledger records when a payment was posted, and is indexed by Sage customer.

    Why: a receipt written after the warehouse last copied an invoice counts against the invoice's open
    amount until the next poll shows it (reconciliation/open_amounts.py), so the evaluation reads the
    customers' posted payments with their posting time. A store written by an older release gets each
    written payment's last update as its posting time (it was set when it was recorded posted).
    """
    present = {column["name"] for column in sa.inspect(conn).get_columns("ledger")}
    if "posted_at" not in present:
        kind = ledger.c.posted_at.type.compile(dialect=conn.dialect)
        conn.exec_driver_sql(f"ALTER TABLE ledger ADD COLUMN posted_at {kind}")
        conn.execute(
            ledger.update()
            .where(ledger.c.status.in_(["posted", "reversal_required", "reversed"]))
            .values(posted_at=ledger.c.updated_at)
        )
    indexes = {index["name"] for index in sa.inspect(conn).get_indexes("ledger")}
    if "ix_ledger_sage_customer" not in indexes:
        conn.exec_driver_sql("CREATE INDEX ix_ledger_sage_customer ON ledger (sage_customer)")


MIGRATIONS: list[Callable[[sa.Connection], None]] = [_v1, _v2, _v3]
SCHEMA_VERSION = len(MIGRATIONS)


def migrate(conn: sa.Connection) -> int:
    """Bring the schema to SCHEMA_VERSION inside the caller's transaction; return the version found."""
    schema_version.create(conn, checkfirst=True)
    row = conn.execute(sa.select(schema_version.c.version).where(schema_version.c.id == 1)).first()
    found = row.version if row else 0
    if found > SCHEMA_VERSION:
        raise RuntimeError(
            f"the operational store is at schema version {found}, newer than this ml-connector "
            f"({SCHEMA_VERSION}); upgrade ml-connector-dagster"
        )
    for version in range(found, SCHEMA_VERSION):
        MIGRATIONS[version](conn)
    if row is None:
        conn.execute(schema_version.insert().values(id=1, version=SCHEMA_VERSION))
    elif found != SCHEMA_VERSION:
        conn.execute(schema_version.update().where(schema_version.c.id == 1).values(version=SCHEMA_VERSION))
    return found
