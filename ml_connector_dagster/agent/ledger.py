"""The BOI backend's own record of cash receipts by idempotency key (SQLite beside the agent).

Sage has no place to look a receipt up by the GoCardless payment id, so the agent keeps one. A key is
claimed (`pending`, with a check number reserved for it) before anything is written to Sage and completed
after; a `pending` row found later means the agent stopped mid-write, and the backend looks for the
receipt in Sage before writing again: among unposted entries (the key is in the header's Comment) and,
because the Cash Receipts Journal may have been updated since, in posted history (by the check number
reserved here, or the key). Check numbers come from here, so they never repeat.

It also remembers the deposits the agent opened in Sage (numbered by Sage), because people key their own
deposits in Sage and the agent adds receipts only to its own: a deposit is `open` here until Sage no longer
has it in entry (the Cash Receipts Journal update posted it), then `closed`.

One agent process owns a ledger at a time (an exclusive lock on `<ledger>.lock`, released when the process
ends, however it ends): so a `pending` row that no call of this process is writing is a stopped write,
never another process's write in progress. Within the process, `KeyLocks` lets one call at a time work
on a key.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

from ..fileperms import private_file
from ..sage100.model import CashReceipt, CashReceiptRequest, lines_from_json, lines_to_json

SCHEMA = """
CREATE TABLE IF NOT EXISTS receipts (
  idempotency_key TEXT PRIMARY KEY, status TEXT NOT NULL, receipt_id TEXT NOT NULL DEFAULT '',
  deposit_no TEXT NOT NULL DEFAULT '', check_no TEXT NOT NULL, bank_code TEXT NOT NULL, deposit_date TEXT NOT NULL,
  ar_division_no TEXT NOT NULL, customer_no TEXT NOT NULL, amount TEXT NOT NULL, reference TEXT NOT NULL,
  lines TEXT NOT NULL, reversal_reason TEXT NOT NULL DEFAULT '', updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS deposits (
  deposit_no TEXT PRIMARY KEY, bank_code TEXT NOT NULL, deposit_date TEXT NOT NULL, batch_no TEXT NOT NULL,
  status TEXT NOT NULL, opened_at TEXT NOT NULL);
"""


@dataclass(frozen=True)
class OwnDeposit:
    """A deposit the agent opened in Sage: its number (Sage's), bank code, date and batch ("" without batch entry)."""

    deposit_no: str
    bank_code: str
    deposit_date: date
    batch_no: str = ""


class AgentLedger:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        private_file(self.path, ("-wal", "-shm", "-journal"))  # receipts and customers: the service user's only
        self._owner = _own(private_file(self.path.with_name(self.path.name + ".lock")))
        with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as conn:
            conn.executescript(SCHEMA)

    def close(self) -> None:
        """Let another agent process use this ledger (ending the process does the same)."""
        self._owner.close()

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taken at once (BEGIN IMMEDIATE): a read-then-write inside it is atomic."""
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        conn.row_factory = sqlite3.Row
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def get(self, key: str) -> tuple[str, CashReceipt] | None:
        """(ledger status, receipt) for a key; status is pending, entered, posted or reversed."""
        with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as conn:
            conn.row_factory = sqlite3.Row
            row = conn.execute("SELECT * FROM receipts WHERE idempotency_key = ?", (key,)).fetchone()
        return None if row is None else (row["status"], _receipt(row))

    def key_of_entry(self, deposit_no: str, ar_division_no: str, customer_no: str, check_no: str) -> str:
        """The idempotency key of the receipt the agent wrote at this place in entry; "" for one it did not."""
        with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as conn:
            row = conn.execute(
                "SELECT idempotency_key FROM receipts WHERE deposit_no = ? AND ar_division_no = ? AND customer_no = ? "
                "AND check_no = ? AND status != 'pending'",
                (deposit_no, ar_division_no, customer_no, check_no),
            ).fetchone()
        return "" if row is None else str(row[0])

    def claim(self, request: CashReceiptRequest) -> str | None:
        """Record the intent before writing to Sage, atomically: the check number reserved for it, or None
        when the key already has a row (a receipt, or a claim of its own)."""
        with self._tx() as conn:
            if conn.execute("SELECT 1 FROM receipts WHERE idempotency_key = ?", (request.idempotency_key,)).fetchone():
                return None
            number = conn.execute(
                "INSERT INTO counters VALUES ('check_no', 2) ON CONFLICT (name) DO UPDATE "
                "SET value = value + 1 RETURNING value - 1"
            ).fetchone()[0]
            check_no = f"GC{number:08d}"
            conn.execute(
                "INSERT INTO receipts (idempotency_key, status, check_no, bank_code, deposit_date, ar_division_no, "
                "customer_no, amount, reference, lines, updated_at) VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    request.idempotency_key,
                    check_no,
                    request.bank_code,
                    request.deposit_date.isoformat(),
                    request.ar_division_no,
                    request.customer_no,
                    str(request.amount),
                    request.reference,
                    lines_to_json(request.lines),
                    _now(),
                ),
            )
        return check_no

    def complete(self, receipt: CashReceipt) -> None:
        self._set(
            receipt.idempotency_key,
            status=receipt.status,
            receipt_id=receipt.receipt_id,
            deposit_no=receipt.deposit_no,
            check_no=receipt.check_no,
        )

    def abandon(self, key: str) -> None:
        """Sage refused the write, or never received it: nothing was written, so the key is free again."""
        with self._tx() as conn:
            conn.execute("DELETE FROM receipts WHERE idempotency_key = ? AND status = 'pending'", (key,))

    def reversed(self, key: str, reason: str) -> None:
        self._set(key, status="reversed", reversal_reason=reason)

    # --- the agent's own deposits ---------------------------------------------------------------------------

    def open_deposits(self, bank_code: str, deposit_date: date) -> list[OwnDeposit]:
        """The agent's deposits for a bank code and date not yet known to be posted, newest first."""
        with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as conn:
            rows = conn.execute(
                "SELECT deposit_no, bank_code, deposit_date, batch_no FROM deposits WHERE status = 'open' "
                "AND bank_code = ? AND deposit_date = ? ORDER BY opened_at DESC, deposit_no DESC",
                (bank_code, deposit_date.isoformat()),
            ).fetchall()
        return [OwnDeposit(no, bank, date.fromisoformat(day), batch) for no, bank, day, batch in rows]

    def deposit(self, deposit_no: str) -> OwnDeposit | None:
        """One of the agent's deposits, open or closed; None for a deposit it did not open."""
        with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as conn:
            row = conn.execute(
                "SELECT deposit_no, bank_code, deposit_date, batch_no FROM deposits WHERE deposit_no = ?", (deposit_no,)
            ).fetchone()
        return None if row is None else OwnDeposit(row[0], row[1], date.fromisoformat(row[2]), row[3])

    def opened_deposit(self, deposit: OwnDeposit) -> None:
        """Sage wrote a new deposit for the agent (a number Sage may hand out again after posting is reused)."""
        with self._tx() as conn:
            conn.execute(
                "INSERT INTO deposits VALUES (?, ?, ?, ?, 'open', ?) ON CONFLICT (deposit_no) DO UPDATE SET "
                "bank_code = excluded.bank_code, deposit_date = excluded.deposit_date, batch_no = excluded.batch_no, "
                "status = 'open', opened_at = excluded.opened_at",
                (deposit.deposit_no, deposit.bank_code, deposit.deposit_date.isoformat(), deposit.batch_no, _now()),
            )

    def closed_deposit(self, deposit_no: str) -> None:
        """Sage no longer has the deposit in entry (posted, or deleted): nothing is added to it again."""
        with self._tx() as conn:
            conn.execute("UPDATE deposits SET status = 'closed' WHERE deposit_no = ?", (deposit_no,))

    def _set(self, key: str, **values: str) -> None:
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._tx() as conn:
            conn.execute(
                f"UPDATE receipts SET {assignments}, updated_at = ? WHERE idempotency_key = ?",
                (*values.values(), _now(), key),
            )


class KeyLocks:
    """One lock per key within this process, made on demand and dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._entries: dict[str, tuple[threading.Lock, list[int]]] = {}

    @contextlib.contextmanager
    def hold(self, key: str, timeout: float) -> Iterator[bool]:
        """Hold the key's lock, waiting at most `timeout` seconds (0: not at all); yields whether it is held."""
        with self._guard:
            lock, users = self._entries.setdefault(key, (threading.Lock(), [0]))
            users[0] += 1
        held = lock.acquire(timeout=timeout) if timeout > 0 else lock.acquire(blocking=False)
        try:
            yield held
        finally:
            if held:
                lock.release()
            with self._guard:
                users[0] -= 1
                if users[0] == 0:
                    del self._entries[key]

    def users(self, key: str) -> int:
        """Calls holding or waiting for the key."""
        with self._guard:
            entry = self._entries.get(key)
            return entry[1][0] if entry else 0


def _own(lock_path: Path) -> sqlite3.Connection:
    """An exclusive SQLite lock on `lock_path`, held while the returned connection stays open."""
    conn = sqlite3.connect(lock_path, timeout=0, isolation_level=None, check_same_thread=False)
    try:
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        conn.execute("BEGIN EXCLUSIVE")
        conn.execute("CREATE TABLE IF NOT EXISTS owner (started_at TEXT)")
        conn.execute("COMMIT")
    except sqlite3.OperationalError:
        conn.close()
        raise RuntimeError(
            f"another agent is using the ledger at {lock_path.with_suffix('')} (it holds "
            f"{lock_path.name}); stop it first, or give this agent its own home folder"
        ) from None
    return conn


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


def _receipt(row: sqlite3.Row) -> CashReceipt:
    status = row["status"] if row["status"] != "pending" else "entered"
    receipt = CashReceipt(
        row["idempotency_key"],
        row["receipt_id"],
        row["deposit_no"],
        row["check_no"],
        row["bank_code"],
        date.fromisoformat(row["deposit_date"]),
        row["ar_division_no"],
        row["customer_no"],
        Decimal(row["amount"]),
        row["reference"],
        status,
        lines_from_json(row["lines"]),
    )
    return replace(receipt, reversal_reason=row["reversal_reason"])
