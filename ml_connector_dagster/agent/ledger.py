"""The BOI backend's own record of cash receipts by idempotency key (SQLite beside the agent).

Sage has no place to look a receipt up by the GoCardless payment id, so the agent keeps one. A receipt is
recorded `pending` before anything is written to Sage and completed after; a `pending` row found later
means the agent stopped mid-write, and the backend looks for the receipt in Sage before writing again:
among unposted entries (the key is in the header's Comment) and, because the Cash Receipts Journal may
have been updated since, in posted history (by the check number reserved here, or the key). Check
numbers come from here, so they never repeat.
"""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Iterator

from ..sage100.model import CashReceipt, CashReceiptRequest, lines_from_json, lines_to_json

SCHEMA = """
CREATE TABLE IF NOT EXISTS receipts (
  idempotency_key TEXT PRIMARY KEY, status TEXT NOT NULL, receipt_id TEXT NOT NULL DEFAULT '',
  deposit_no TEXT NOT NULL DEFAULT '', check_no TEXT NOT NULL, bank_code TEXT NOT NULL, deposit_date TEXT NOT NULL,
  ar_division_no TEXT NOT NULL, customer_no TEXT NOT NULL, amount TEXT NOT NULL, reference TEXT NOT NULL,
  lines TEXT NOT NULL, reversal_reason TEXT NOT NULL DEFAULT '', updated_at TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


class AgentLedger:
    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._tx() as conn:
            conn.executescript(SCHEMA)

    @contextlib.contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30)
        conn.row_factory = sqlite3.Row
        try:
            with conn:
                yield conn
        finally:
            conn.close()

    def get(self, key: str) -> tuple[str, CashReceipt] | None:
        """(ledger status, receipt) for a key; status is pending, entered, posted or reversed."""
        with self._tx() as conn:
            row = conn.execute("SELECT * FROM receipts WHERE idempotency_key = ?", (key,)).fetchone()
        return None if row is None else (row["status"], _receipt(row))

    def begin(self, request: CashReceiptRequest) -> str:
        """Record the intent before writing to Sage; returns the check number reserved for it."""
        with self._tx() as conn:
            number = conn.execute("INSERT INTO counters VALUES ('check_no', 2) ON CONFLICT (name) DO UPDATE "
                                  "SET value = value + 1 RETURNING value - 1").fetchone()[0]
            check_no = f"GC{number:08d}"
            conn.execute(
                "INSERT INTO receipts (idempotency_key, status, check_no, bank_code, deposit_date, ar_division_no, "
                "customer_no, amount, reference, lines, updated_at) VALUES (?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (request.idempotency_key, check_no, request.bank_code, request.deposit_date.isoformat(),
                 request.ar_division_no, request.customer_no, str(request.amount), request.reference,
                 lines_to_json(request.lines), _now()))
        return check_no

    def complete(self, receipt: CashReceipt) -> None:
        self._set(receipt.idempotency_key, status=receipt.status, receipt_id=receipt.receipt_id,
                  deposit_no=receipt.deposit_no)

    def abandon(self, key: str) -> None:
        """Sage refused the write: nothing was written, so the key is free again."""
        with self._tx() as conn:
            conn.execute("DELETE FROM receipts WHERE idempotency_key = ? AND status = 'pending'", (key,))

    def reversed(self, key: str, reason: str) -> None:
        self._set(key, status="reversed", reversal_reason=reason)

    def _set(self, key: str, **values: str) -> None:
        assignments = ", ".join(f"{name} = ?" for name in values)
        with self._tx() as conn:
            conn.execute(f"UPDATE receipts SET {assignments}, updated_at = ? WHERE idempotency_key = ?",
                         (*values.values(), _now(), key))


def _now() -> str:
    return datetime.now().isoformat(timespec="seconds")


def _receipt(row: sqlite3.Row) -> CashReceipt:
    status = row["status"] if row["status"] != "pending" else "entered"
    receipt = CashReceipt(row["idempotency_key"], row["receipt_id"], row["deposit_no"], row["check_no"],
                          row["bank_code"], date.fromisoformat(row["deposit_date"]), row["ar_division_no"],
                          row["customer_no"], Decimal(row["amount"]), row["reference"], status,
                          lines_from_json(row["lines"]))
    return replace(receipt, reversal_reason=row["reversal_reason"])
