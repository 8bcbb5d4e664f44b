"""Cash receipts in the simulated company: entry with Sage's checks, reversal, and the journal update.

A receipt is written whole or not at all, inside the caller's write transaction: deposit, header, lines,
invoice and customer balances, and the ML_Idempotency row keyed by the GoCardless payment id, which
makes a repeated request return the first receipt and write nothing, across restarts. Checks run in
Sage's order and fail with Sage's fault codes, before anything is written.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import replace
from datetime import date, datetime
from decimal import Decimal

from ...sage100.model import (
    FAULT_INVALID,
    FAULT_NO_KEY,
    FAULT_NOT_ON_FILE,
    FAULT_OUT_OF_BALANCE,
    FAULT_OVER_APPLIED,
    OUT_OF_BALANCE_TEXT,
    CashReceipt,
    CashReceiptRequest,
    SageRuleError,
    Stamp,
    lines_from_json,
    lines_to_json,
    receipt_id,
    repeat_of,
)
from .rows import add_to_customer_balance, customer_row, invoice_row, next_stamp, sage_date, take_counter, update

DEPOSIT_TYPE = "C"  # cash/check deposit; GoCardless is not Sage's own ACH processing
ENTRY_KEY = "DepositNo = ? AND ARDivisionNo = ? AND CustomerNo = ? AND CheckNo = ?"


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
    )


def create(conn: sqlite3.Connection, request: CashReceiptRequest, bank_code: str) -> CashReceipt:
    """Write a cash receipt entry, or return the one already written for this idempotency key (if the
    request asks for that receipt: see `repeat_of`)."""
    existing = find(conn, request.idempotency_key)
    if existing is not None:
        return repeat_of(existing, request)
    check(conn, request, bank_code)
    stamp = next_stamp(conn)
    deposit_no = _deposit_for(conn, request, stamp)
    check_no = f"GC{take_counter(conn, 'next_check_no'):08d}"
    receipt = CashReceipt(
        request.idempotency_key,
        receipt_id(request.bank_code, deposit_no, request.ar_division_no, request.customer_no, check_no),
        deposit_no,
        check_no,
        request.bank_code,
        request.deposit_date,
        request.ar_division_no,
        request.customer_no,
        request.amount,
        request.reference,
        "entered",
        request.lines,
        created=True,
    )
    _write_entry(conn, receipt, stamp)
    _apply_to_invoices(conn, receipt, stamp)
    _remember(conn, receipt)
    return receipt


def reverse(conn: sqlite3.Connection, idempotency_key: str, reason: str) -> CashReceipt:
    """Undo a receipt: invoices get their balance back; unposted entry rows go, posted history is offset.

    Reversing twice returns the reversed receipt and changes nothing the second time.
    """
    receipt = find(conn, idempotency_key)
    if receipt is None:
        raise SageRuleError(FAULT_NO_KEY, f"There is no cash receipt for idempotency key {idempotency_key}.")
    if receipt.status == "reversed":
        return receipt
    stamp = next_stamp(conn)
    if receipt.status == "entered":
        _delete_entry(conn, receipt, stamp)
    else:
        _offset_history(conn, receipt, stamp)
    _apply_to_invoices(conn, receipt, stamp, sign=Decimal(-1))
    conn.execute(
        "UPDATE ML_Idempotency SET Status = 'reversed', ReversalReason = ? WHERE IdempotencyKey = ?",
        (reason, idempotency_key),
    )
    return replace(receipt, status="reversed", reversal_reason=reason, created=False)


def post_journal(conn: sqlite3.Connection) -> int:
    """Sage's Cash Receipts Journal update: entries move to AR_CashReceiptsHistory; returns lines posted."""
    stamp = next_stamp(conn)
    details = conn.execute(
        "SELECT d.*, p.BankCode, p.DepositDate FROM AR_CashReceiptsDetail d "
        "JOIN AR_CashReceiptsDeposit p USING (DepositNo)"
    ).fetchall()
    for d in details:
        conn.execute(
            "INSERT INTO AR_CashReceiptsHistory VALUES (?, ?, ?, ?, ?, ?, '000000', ?, ?, ?, ?, ?, ?, ?)",
            (
                d["BankCode"],
                d["DepositDate"],
                d["DepositNo"],
                DEPOSIT_TYPE,
                d["ARDivisionNo"],
                d["CustomerNo"],
                d["CheckNo"],
                d["SequenceNo"],
                d["InvoiceNo"],
                d["InvoiceType"],
                d["AmountPosted"],
                *stamp,
            ),
        )
    for table in ("AR_CashReceiptsDetail", "AR_CashReceiptsHeader", "AR_CashReceiptsDeposit"):
        conn.execute(f"DELETE FROM {table}")
    conn.execute("UPDATE AR_OpenInvoice SET PaymentsToday = '0.00' WHERE PaymentsToday != '0.00'")
    conn.execute("UPDATE ML_Idempotency SET Status = 'posted' WHERE Status = 'entered'")
    return len(details)


# --- Sage's checks, in Sage's order --------------------------------------------------------------------------


def check(conn: sqlite3.Connection, request: CashReceiptRequest, bank_code: str) -> None:
    """The bank, the customer, each line as it is added, then the distribution."""
    div, cust = request.ar_division_no, request.customer_no
    if request.bank_code != bank_code:
        raise SageRuleError(FAULT_NOT_ON_FILE, f"Bank code {request.bank_code} is not on file.")
    customer = customer_row(conn, div, cust)
    if customer is None:
        raise SageRuleError(FAULT_NOT_ON_FILE, f"Customer {div}-{cust} is not on file.")
    if customer["CustomerStatus"] == "I":
        raise SageRuleError(FAULT_INVALID, f"Customer {div}-{cust} is inactive.")
    _check_lines(conn, request)
    if sum((line.amount for line in request.lines), Decimal(0)) != request.amount:
        raise SageRuleError(FAULT_OUT_OF_BALANCE, OUT_OF_BALANCE_TEXT)


def _check_lines(conn: sqlite3.Connection, request: CashReceiptRequest) -> None:
    """Each line names an invoice of the customer, posts more than zero, and (with the lines before it)
    does not take the invoice beyond its balance."""
    div, cust = request.ar_division_no, request.customer_no
    applied: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for line in request.lines:
        row = invoice_row(conn, div, cust, line.invoice_no, line.invoice_type)
        if row is None:
            raise SageRuleError(
                FAULT_NOT_ON_FILE,
                f"Invoice {line.invoice_no} ({line.invoice_type}) is not on file for customer {div}-{cust}.",
            )
        if line.amount <= 0:
            raise SageRuleError(
                FAULT_INVALID, f"The amount posted to invoice {line.invoice_no} must be greater than zero."
            )
        applied[(line.invoice_no, line.invoice_type)] += line.amount
        balance = Decimal(row["Balance"])
        if applied[(line.invoice_no, line.invoice_type)] > balance:
            raise SageRuleError(
                FAULT_OVER_APPLIED,
                f"The amount posted to invoice {line.invoice_no} "
                f"({applied[(line.invoice_no, line.invoice_type)]}) exceeds "
                f"its balance of {balance}.",
            )


# --- writing and undoing an entry ----------------------------------------------------------------------------


def _deposit_for(conn: sqlite3.Connection, request: CashReceiptRequest, stamp: Stamp) -> str:
    """The open deposit for this bank code and date (one per posting date), created if needed."""
    deposit_date = sage_date(request.deposit_date)
    row = conn.execute(
        "SELECT DepositNo, CashDepositAmt FROM AR_CashReceiptsDeposit WHERE BankCode = ? AND DepositDate = ?",
        (request.bank_code, deposit_date),
    ).fetchone()
    if row is None:
        deposit_no = f"{take_counter(conn, 'next_deposit_no'):05d}"
        conn.execute(
            "INSERT INTO AR_CashReceiptsDeposit VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                deposit_no,
                request.bank_code,
                deposit_date,
                f"GoCardless {request.deposit_date.isoformat()}",
                str(request.amount),
                *stamp,
            ),
        )
        return deposit_no
    total = Decimal(row["CashDepositAmt"]) + request.amount
    update(conn, "AR_CashReceiptsDeposit", {"CashDepositAmt": str(total)}, stamp, DepositNo=row["DepositNo"])
    return str(row["DepositNo"])


def _write_entry(conn: sqlite3.Connection, receipt: CashReceipt, stamp: Stamp) -> None:
    key = (receipt.deposit_no, receipt.ar_division_no, receipt.customer_no, receipt.check_no)
    conn.execute(
        "INSERT INTO AR_CashReceiptsHeader VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (*key, DEPOSIT_TYPE, str(receipt.amount), receipt.reference[:30], receipt.idempotency_key, *stamp),
    )
    for sequence, line in enumerate(receipt.lines, start=1):
        conn.execute(
            "INSERT INTO AR_CashReceiptsDetail VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (*key, f"{sequence:06d}", line.invoice_no, line.invoice_type, str(line.amount), *stamp),
        )


def _apply_to_invoices(
    conn: sqlite3.Connection, receipt: CashReceipt, stamp: Stamp, sign: Decimal = Decimal(1)
) -> None:
    """Lower (or, reversing, raise) each invoice's Balance and the customer's, restamping both."""
    div, cust = receipt.ar_division_no, receipt.customer_no
    for line in receipt.lines:
        row = invoice_row(conn, div, cust, line.invoice_no, line.invoice_type)
        assert row is not None, f"invoice {line.invoice_no} of a written receipt vanished"
        values = {
            "Balance": str(Decimal(row["Balance"]) - sign * line.amount),
            "PaymentsToday": str(Decimal(row["PaymentsToday"]) + sign * line.amount),
            "CheckNo": "" if sign < 0 else receipt.check_no,
        }
        update(
            conn,
            "AR_OpenInvoice",
            values,
            stamp,
            ARDivisionNo=div,
            CustomerNo=cust,
            InvoiceNo=line.invoice_no,
            InvoiceType=line.invoice_type,
        )
    if sign > 0:
        add_to_customer_balance(conn, div, cust, -receipt.amount, stamp, receipt.amount, receipt.deposit_date)
    else:
        add_to_customer_balance(conn, div, cust, receipt.amount, stamp)


def _remember(conn: sqlite3.Connection, receipt: CashReceipt) -> None:
    conn.execute(
        "INSERT INTO ML_Idempotency VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?)",
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
        ),
    )


def _delete_entry(conn: sqlite3.Connection, receipt: CashReceipt, stamp: Stamp) -> None:
    """An unposted receipt's rows go; its deposit shrinks by its amount, or goes too if nothing else is in it."""
    key = (receipt.deposit_no, receipt.ar_division_no, receipt.customer_no, receipt.check_no)
    conn.execute(f"DELETE FROM AR_CashReceiptsDetail WHERE {ENTRY_KEY}", key)
    conn.execute(f"DELETE FROM AR_CashReceiptsHeader WHERE {ENTRY_KEY}", key)
    deposit = conn.execute(
        "SELECT CashDepositAmt FROM AR_CashReceiptsDeposit WHERE DepositNo = ?", (receipt.deposit_no,)
    ).fetchone()
    remaining = Decimal(deposit["CashDepositAmt"]) - receipt.amount
    if remaining == 0:
        conn.execute("DELETE FROM AR_CashReceiptsDeposit WHERE DepositNo = ?", (receipt.deposit_no,))
    else:
        update(conn, "AR_CashReceiptsDeposit", {"CashDepositAmt": str(remaining)}, stamp, DepositNo=receipt.deposit_no)


def _offset_history(conn: sqlite3.Connection, receipt: CashReceipt, stamp: Stamp) -> None:
    """A posted receipt cannot be deleted: history gets offsetting (negative) rows, as a returned check does."""
    first = (
        conn.execute(
            "SELECT COUNT(*) FROM AR_CashReceiptsHistory WHERE DepositNo = ? AND CheckNo = ?",
            (receipt.deposit_no, receipt.check_no),
        ).fetchone()[0]
        + 1
    )
    for offset, line in enumerate(receipt.lines):
        conn.execute(
            "INSERT INTO AR_CashReceiptsHistory VALUES (?, ?, ?, ?, ?, ?, '000000', ?, ?, ?, ?, ?, ?, ?)",
            (
                receipt.bank_code,
                sage_date(receipt.deposit_date),
                receipt.deposit_no,
                DEPOSIT_TYPE,
                receipt.ar_division_no,
                receipt.customer_no,
                receipt.check_no,
                f"{first + offset:06d}",
                line.invoice_no,
                line.invoice_type,
                str(-line.amount),
                *stamp,
            ),
        )
