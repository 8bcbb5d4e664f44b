"""Finding an interrupted cash receipt write in Sage: still in entry, or posted into history.

A write that failed other than by Sage's refusal leaves the ledger's row pending, because it may have reached
Sage. Where it can be: in entry (the key in the header's comment) or, once the Cash Receipts Journal has been
updated, in history (the check number reserved for it, or the key as the payment reference). History has no
index here, so it is read whole. The backend (boi.py) records what is found in the ledger.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from ..sage100.model import CashReceipt, receipt_id
from . import boi_com as com
from .boi_names import HISTORY, PAYMENT_HISTORY, RECEIPTS, BOINames, columns


def recovered(s: com.Session, names: BOINames, pending: CashReceipt) -> CashReceipt | None:
    """The pending receipt as Sage has it (entered or posted, with its deposit and check number), or None."""
    found = _in_entry(s, names, pending) or _in_history(s, names, pending)
    if found is None:
        return None
    deposit_no, check_no, status = found
    return replace(
        pending,
        deposit_no=deposit_no,
        check_no=check_no,
        status=status,
        created=False,
        receipt_id=receipt_id(pending.bank_code, deposit_no, pending.ar_division_no, pending.customer_no, check_no),
    )


def header_with_comment(s: com.Session, names: BOINames, comment: str) -> dict[str, Any] | None:
    """The receipt header in entry whose comment is `comment` (where the backend keeps the key)."""
    cr = s.new(names.receipts_bus)
    rows = s.rows(cr, columns(names, RECEIPTS))
    return next((r for r in rows if com.text(r["Comment"]) == comment), None)


def _in_entry(s: com.Session, names: BOINames, pending: CashReceipt) -> tuple[str, str, str] | None:
    row = header_with_comment(s, names, pending.idempotency_key)
    return None if row is None else (com.text(row["DepositNo"]), com.text(row["CheckNo"]), "entered")


def _in_history(s: com.Session, names: BOINames, pending: CashReceipt) -> tuple[str, str, str] | None:
    """Posted lines carry the receipt's check number (unique: the ledger reserves each once); payment
    history may also carry the key as its PaymentReference. Both are read whole: history has no index here."""
    ours = (pending.ar_division_no, pending.customer_no, pending.check_no)
    for row in s.rows(s.new(names.history_svc), columns(names, HISTORY)):
        if com.key_of(row) == ours:
            return com.text(row["DepositNo"]), com.text(row["CheckNo"]), "posted"
    for row in s.rows(s.new(names.payment_history_svc), columns(names, PAYMENT_HISTORY)):
        if com.key_of(row) == ours or com.text(row["PaymentReference"]) == pending.idempotency_key:
            return pending.deposit_no, com.text(row["CheckNo"]), "posted"
    return None
