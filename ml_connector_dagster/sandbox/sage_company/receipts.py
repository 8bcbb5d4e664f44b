"""The product's cash receipts (through the agent), as Sage enters and reverses them.

A receipt is checked as Sage checks it (checks.py), then entered unposted into a deposit the product
opened (deposits.py): each invoice's `PaymentsToday` rises, and `Balance` waits for the Cash Receipts
Journal update (journal.py). A posted receipt is reversed Sage's documented way, by a new negative
receipt with the same check number on the same invoices; an unposted one is deleted. Everything happens
inside the caller's write transaction, checks first, so a refused receipt writes nothing; the
ML_Idempotency row keyed by the GoCardless payment id makes a repeated request return the first receipt
and write nothing, across restarts.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

from ...sage100.model import (
    FAULT_NO_KEY,
    CashReceipt,
    CashReceiptRequest,
    ReceiptLine,
    SageRuleError,
    UnpostedReceiptLine,
    entered_receipt,
    lines_from_json,
    lines_to_json,
    repeat_of,
)
from .checks import check_request
from .deposits import PRODUCT, delete_entry, deposit_of, enter
from .rows import CompanyOptions, customer_row, from_sage_date, take_counter

NEXT_CHECK_NO = "next_check_no"  # the product's check numbers, GC + 8 digits


def find(conn: sqlite3.Connection, idempotency_key: str) -> CashReceipt | None:
    """The receipt written for this idempotency key, whatever its status; None if there is none."""
    row = conn.execute("SELECT * FROM ML_Idempotency WHERE IdempotencyKey = ?", (idempotency_key,)).fetchone()
    if row is None:
        return None
    return CashReceipt(
        row["IdempotencyKey"],
        row["ReceiptId"],
        row["DepositNo"],
        row["CheckNo"],
        row["BankCode"],
        date.fromisoformat(row["DepositDate"]),
        row["ARDivisionNo"],
        row["CustomerNo"],
        Decimal(row["Amount"]),
        row["Reference"],
        row["Status"],
        lines_from_json(row["Lines"]),
        created=False,
        reversal_reason=row["ReversalReason"],
        warnings=tuple(json.loads(row["Warnings"])),
    )


def create(
    conn: sqlite3.Connection, request: CashReceiptRequest, bank_code: str, options: CompanyOptions
) -> CashReceipt:
    """Enter a cash receipt in a deposit of the product's own, or return the one already written for this
    idempotency key (if the request asks for that receipt: see `repeat_of`)."""
    existing = find(conn, request.idempotency_key)
    if existing is not None:
        return repeat_of(existing, request)
    warnings = check_request(conn, request, bank_code)
    deposit_no, batch_no = deposit_of(conn, PRODUCT, request.bank_code, request.deposit_date, options)
    check_no = f"GC{take_counter(conn, NEXT_CHECK_NO):08d}"
    receipt = entered_receipt(request, deposit_no, check_no, warnings)
    enter(
        conn,
        deposit_no,
        batch_no,
        (receipt.ar_division_no, receipt.customer_no, check_no),
        receipt.lines,
        comment=receipt.reference,
        payment_id=receipt.idempotency_key,
    )
    _remember(conn, receipt)
    return receipt


def reverse(conn: sqlite3.Connection, idempotency_key: str, reason: str, options: CompanyOptions) -> CashReceipt:
    """Undo a receipt as Sage's users do: an unposted one is deleted from entry; a posted one is reversed by a
    new negative receipt with the same check number on the same invoices, which lowers their PaymentsToday
    now and gives the money back to Balance at the next journal update.

    Reversing twice returns the reversed receipt and changes nothing the second time.
    """
    receipt = find(conn, idempotency_key)
    if receipt is None:
        raise SageRuleError(FAULT_NO_KEY, f"There is no cash receipt for idempotency key {idempotency_key}.")
    if receipt.status == "reversed":
        return receipt
    if receipt.status == "entered":
        delete_entry(conn, receipt)
        reversal_deposit = ""
    else:
        reversal_deposit, batch_no = deposit_of(conn, PRODUCT, receipt.bank_code, date.today(), options)
        negative = tuple(ReceiptLine(line.invoice_no, line.invoice_type, -line.amount) for line in receipt.lines)
        enter(
            conn,
            reversal_deposit,
            batch_no,
            (receipt.ar_division_no, receipt.customer_no, receipt.check_no),
            negative,
            comment=f"Reversal: {reason}",
            payment_id=receipt.idempotency_key,
        )
    conn.execute(
        "UPDATE ML_Idempotency SET Status = 'reversed', ReversalReason = ?, ReversalDepositNo = ? "
        "WHERE IdempotencyKey = ?",
        (reason, reversal_deposit, idempotency_key),
    )
    return replace(receipt, status="reversed", reversal_reason=reason, created=False)


def _remember(conn: sqlite3.Connection, receipt: CashReceipt) -> None:
    conn.execute(
        "INSERT INTO ML_Idempotency (IdempotencyKey, ReceiptId, BankCode, DepositNo, CheckNo, DepositDate, "
        "ARDivisionNo, CustomerNo, Amount, Reference, Lines, Status, ReversalReason, CreatedAt, Warnings) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, ?)",
        (
            receipt.idempotency_key,
            receipt.receipt_id,
            receipt.bank_code,
            receipt.deposit_no,
            receipt.check_no,
            receipt.deposit_date.isoformat(),
            receipt.ar_division_no,
            receipt.customer_no,
            str(receipt.amount),
            receipt.reference,
            lines_to_json(receipt.lines),
            receipt.status,
            datetime.now().isoformat(timespec="seconds"),
            json.dumps(list(receipt.warnings)),
        ),
    )


def unposted_for(conn: sqlite3.Connection, div: str, cust: str) -> list[UnpostedReceiptLine]:
    """The customer's receipt lines in entry (not posted yet), oldest deposit first. A receipt is the product's
    when it sits in a deposit the product opened and ML_Idempotency holds it (its key is then given)."""
    if customer_row(conn, div, cust) is None:
        raise SageRuleError(FAULT_NO_KEY, f"Customer {div}-{cust} does not exist.")
    rows = conn.execute(
        "SELECT d.DepositNo, d.CheckNo, p.DepositDate, d.InvoiceNo, d.InvoiceType, d.AmountPosted, "
        "  CASE WHEN o.Owner = ? THEN COALESCE(("
        "    SELECT i.IdempotencyKey FROM ML_Idempotency i WHERE i.ARDivisionNo = d.ARDivisionNo "
        "    AND i.CustomerNo = d.CustomerNo AND i.CheckNo = d.CheckNo "
        "    AND (i.DepositNo = d.DepositNo OR i.ReversalDepositNo = d.DepositNo)), '') ELSE '' END AS IdempotencyKey "
        "FROM AR_CashReceiptsDetail d JOIN AR_CashReceiptsDeposit p USING (DepositNo) "
        "LEFT JOIN ML_DepositOwner o USING (DepositNo) "
        "WHERE d.ARDivisionNo = ? AND d.CustomerNo = ? "
        "ORDER BY p.DepositDate, d.DepositNo, d.CheckNo, d.SequenceNo",
        (PRODUCT, div, cust),
    ).fetchall()
    return [
        UnpostedReceiptLine(
            str(r["DepositNo"]),
            str(r["CheckNo"]),
            from_sage_date(str(r["DepositDate"])),
            div,
            cust,
            str(r["InvoiceNo"]),
            str(r["InvoiceType"]),
            Decimal(str(r["AmountPosted"])),
            str(r["IdempotencyKey"]),
        )
        for r in rows
    ]
