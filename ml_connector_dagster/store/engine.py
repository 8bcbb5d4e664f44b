"""Engine setup: SQLite in WAL mode with a busy timeout and IMMEDIATE write transactions; PostgreSQL by URL."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import ConnectionPoolEntry

from ..fileperms import SQLITE_SIDECARS, private_file
from . import schema

BUSY_TIMEOUT_MS = 30_000
_migrate_lock = threading.Lock()


def create_engine(url: str) -> sa.Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:" and not parsed.database.startswith("file:"):
            private_file(Path(parsed.database), SQLITE_SIDECARS)  # SQLite gives its -wal and -shm the same mode
        engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False})
        _sqlite_pragmas(engine)
    else:
        engine = sa.create_engine(url, pool_pre_ping=True)
    return engine


def _sqlite_pragmas(engine: sa.Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: sqlite3.Connection, _record: ConnectionPoolEntry) -> None:  # pysqlite's connection
        dbapi_conn.isolation_level = None  # we issue BEGIN ourselves, below
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        cur.execute("PRAGMA synchronous=FULL")  # an acknowledged webhook survives power loss
        cur.execute("PRAGMA foreign_keys=ON")
        cur.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        # A write starts with the write lock, so two writers queue on busy_timeout instead of
        # deadlocking on a read-to-write upgrade.
        mode = "IMMEDIATE" if conn.get_execution_options().get("write", True) else "DEFERRED"
        conn.exec_driver_sql(f"BEGIN {mode}")


@contextlib.contextmanager
def write(engine: sa.Engine) -> Iterator[sa.Connection]:
    with engine.connect() as conn, conn.begin():
        yield conn


@contextlib.contextmanager
def read(engine: sa.Engine) -> Iterator[sa.Connection]:
    with engine.connect().execution_options(write=False) as conn, conn.begin():
        yield conn


def ensure_schema(engine: sa.Engine) -> None:
    """Create or migrate the schema; cheap when it is current (one read), safe from many processes."""
    with _migrate_lock, write(engine) as conn:
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SELECT pg_advisory_xact_lock(77100451)")
        schema.migrate(conn)
