"""Deposits and the unposted receipts in them, as Sage's Cash Receipts Entry writes them.

Deposits are numbered from Sage's "Next Deposit Number" counter; whoever opens a deposit owns it
(ML_DepositOwner), and an owner's receipts go only into a deposit it opened: the product's (PRODUCT)
never into a person's. Entering a receipt writes its header and lines and raises each invoice's
`PaymentsToday` (a negative receipt lowers it); deleting one puts it back. Every helper works inside the
caller's write transaction, after Sage's checks (checks.py) have passed.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from decimal import Decimal

from ...sage100.model import CENT, CashReceipt, ReceiptLine
from .rows import CompanyOptions, invoice_row, next_stamp, sage_date, take_counter, update

DEPOSIT_TYPE = "C"  # cash/check deposit; GoCardless is not Sage's own ACH processing
ENTRY_KEY = "DepositNo = ? AND ARDivisionNo = ? AND CustomerNo = ? AND CheckNo = ?"
PRODUCT = "product"  # ML_DepositOwner.Owner of the deposits the product (through the agent) opens
PERSON = "person"  # the owner of a deposit keyed by a person in Sage, unless named
NEXT_DEPOSIT_NO = "next_deposit_no"  # Sage's "Next Deposit Number" (ML_Meta)
NEXT_BATCH_NO = "next_batch_no"


def deposit_of(
    conn: sqlite3.Connection, owner: str, bank_code: str, deposit_date: date, options: CompanyOptions
) -> tuple[str, str]:
    """The owner's open deposit for this bank and date, or a new one numbered from Sage's Next Deposit Number;
    never a deposit someone else opened. Returns its DepositNo and BatchNo ("" without batch entry)."""
    row = conn.execute(
        "SELECT d.DepositNo, d.BatchNo FROM AR_CashReceiptsDeposit d JOIN ML_DepositOwner o USING (DepositNo) "
        "WHERE o.Owner = ? AND d.BankCode = ? AND d.DepositDate = ? ORDER BY d.DepositNo DESC LIMIT 1",
        (owner, bank_code, sage_date(deposit_date)),
    ).fetchone()
    if row is not None:
        return str(row["DepositNo"]), str(row["BatchNo"])
    deposit_no = f"{take_counter(conn, NEXT_DEPOSIT_NO):05d}"
    batch_no = _batch_of(conn, owner) if options.batch_entry else ""
    description = f"GoCardless {deposit_date.isoformat()}" if owner == PRODUCT else f"Keyed by {owner}"
    conn.execute(
        "INSERT INTO AR_CashReceiptsDeposit (DepositNo, BankCode, DepositDate, DepositDesc, CashDepositAmt, "
        "BatchNo, DateUpdated, TimeUpdated) VALUES (?, ?, ?, ?, '0.00', ?, ?, ?)",
        (deposit_no, bank_code, sage_date(deposit_date), description[:30], batch_no, *next_stamp(conn)),
    )
    conn.execute(
        "INSERT INTO ML_DepositOwner (DepositNo, Owner, AmountEntered) VALUES (?, ?, ?)",
        (deposit_no, owner, "Y" if options.require_deposit_amount else "N"),
    )
    return deposit_no, batch_no


def _batch_of(conn: sqlite3.Connection, owner: str) -> str:
    """With batch entry: the owner's open batch (that of another of its unposted deposits), or a new one."""
    row = conn.execute(
        "SELECT d.BatchNo FROM AR_CashReceiptsDeposit d JOIN ML_DepositOwner o USING (DepositNo) "
        "WHERE o.Owner = ? AND d.BatchNo != '' ORDER BY d.DepositNo DESC LIMIT 1",
        (owner,),
    ).fetchone()
    return str(row["BatchNo"]) if row is not None else f"{take_counter(conn, NEXT_BATCH_NO):05d}"


def enter(
    conn: sqlite3.Connection,
    deposit_no: str,
    batch_no: str,
    who: tuple[str, str, str],
    lines: tuple[ReceiptLine, ...],
    comment: str = "",
    payment_id: str = "",
) -> None:
    """Write one unposted receipt (header and lines) into a deposit, raise its invoices' PaymentsToday by the
    lines (a negative receipt lowers it), and bring the deposit's total up to date."""
    div, cust, check_no = who
    amount = sum((line.amount for line in lines), Decimal(0))
    stamp = next_stamp(conn)
    conn.execute(
        "INSERT INTO AR_CashReceiptsHeader (DepositNo, ARDivisionNo, CustomerNo, CheckNo, DepositType, PostingAmt, "
        "Comment, UDF_GC_PAYMENT_ID, BatchNo, DateUpdated, TimeUpdated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (deposit_no, div, cust, check_no, DEPOSIT_TYPE, str(amount), comment[:30], payment_id, batch_no, *stamp),
    )
    for sequence, line in enumerate(lines, start=1):
        conn.execute(
            "INSERT INTO AR_CashReceiptsDetail (DepositNo, ARDivisionNo, CustomerNo, CheckNo, SequenceNo, InvoiceNo, "
            "InvoiceType, AmountPosted, DateUpdated, TimeUpdated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                deposit_no,
                div,
                cust,
                check_no,
                f"{sequence:06d}",
                line.invoice_no,
                line.invoice_type,
                str(line.amount),
                *stamp,
            ),
        )
        _add_payments_today(conn, div, cust, line, line.amount)
    _total_deposit(conn, deposit_no)


def delete_entry(conn: sqlite3.Connection, receipt: CashReceipt) -> None:
    """An unposted receipt is deleted from entry: its rows go, its invoices' PaymentsToday falls back."""
    key = (receipt.deposit_no, receipt.ar_division_no, receipt.customer_no, receipt.check_no)
    conn.execute(f"DELETE FROM AR_CashReceiptsDetail WHERE {ENTRY_KEY}", key)
    conn.execute(f"DELETE FROM AR_CashReceiptsHeader WHERE {ENTRY_KEY}", key)
    for line in receipt.lines:
        _add_payments_today(conn, receipt.ar_division_no, receipt.customer_no, line, -line.amount)
    _total_deposit(conn, receipt.deposit_no)


def _add_payments_today(conn: sqlite3.Connection, div: str, cust: str, line: ReceiptLine, amount: Decimal) -> None:
    row = invoice_row(conn, div, cust, line.invoice_no, line.invoice_type)
    assert row is not None, f"invoice {line.invoice_no} of a receipt vanished inside its transaction"
    update(
        conn,
        "AR_OpenInvoice",
        {"PaymentsToday": str((Decimal(row["PaymentsToday"]) + amount).quantize(CENT))},
        next_stamp(conn),
        ARDivisionNo=div,
        CustomerNo=cust,
        InvoiceNo=line.invoice_no,
        InvoiceType=line.invoice_type,
    )


def _total_deposit(conn: sqlite3.Connection, deposit_no: str) -> None:
    """The deposit's CashDepositAmt: entered by whoever opened it when the company requires a deposit amount,
    computed by Sage otherwise; either way the total of its receipts here. An emptied deposit is closed."""
    headers = conn.execute("SELECT PostingAmt FROM AR_CashReceiptsHeader WHERE DepositNo = ?", (deposit_no,)).fetchall()
    if not headers:
        conn.execute("DELETE FROM AR_CashReceiptsDeposit WHERE DepositNo = ?", (deposit_no,))
        conn.execute("DELETE FROM ML_DepositOwner WHERE DepositNo = ?", (deposit_no,))
        return
    total = sum((Decimal(h["PostingAmt"]) for h in headers), Decimal(0))
    update(conn, "AR_CashReceiptsDeposit", {"CashDepositAmt": str(total)}, next_stamp(conn), DepositNo=deposit_no)
