"""Short-lived DuckDB connections to the warehouse file, retried while another process holds its lock.

DuckDB allows one writing process per file. Dagster runs are the only writers; the CLI and the review
actions read. A connection is opened per unit of work and closed at once, so a waiting process gets in.
DuckDB creates its files itself (it refuses an empty one), so they are made private once it has: inside a
0700 folder they are out of other users' reach in between.
"""

from __future__ import annotations

import contextlib
import random
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import duckdb

from .fileperms import private_folder, tighten


@contextlib.contextmanager
def connect(
    path: Path, read_only: bool = False, lock_timeout_seconds: float = 60.0
) -> Iterator[duckdb.DuckDBPyConnection]:
    path = Path(path)
    private_folder(path.parent)
    if read_only and not path.exists():
        read_only = False  # nothing written yet: create the empty file rather than fail
    deadline = time.monotonic() + lock_timeout_seconds
    delay = 0.05
    while True:
        try:
            conn = duckdb.connect(str(path), read_only=read_only)
            break
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)
    tighten(path, _wal(path))
    try:
        yield conn
    finally:
        conn.close()
        tighten(path, _wal(path))


def _wal(path: Path) -> Path:
    return path.with_name(path.name + ".wal")


def count(conn: duckdb.DuckDBPyConnection, sql: str, parameters: Sequence[object] = ()) -> int:
    """The whole number a query of one row and one column answers (a count(*), the rows a DELETE removed)."""
    row = conn.execute(sql, parameters).fetchone()
    if row is None:
        raise ValueError(f"the query answered no row: {sql[:200]}")
    return int(row[0])


def table_exists(conn: duckdb.DuckDBPyConnection, name: str) -> bool:
    return count(conn, "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [name]) > 0
