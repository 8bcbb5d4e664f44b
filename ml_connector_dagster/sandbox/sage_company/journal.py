"""Sage's Cash Receipts Journal update, as a person runs it: every unposted receipt is posted.

Until the update, a receipt (the product's or a person's) only raises its invoices' `PaymentsToday`; the
update lowers each invoice's `Balance` by what was applied and returns `PaymentsToday` to 0, lowers the
customers' `CurrentBalance` and sets their last payment, moves the lines to AR_CashReceiptsHistory,
closes the deposits, and marks the product's receipts `posted`. Every row changed is restamped, so an
incremental poll sees it.
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from datetime import date, datetime
from decimal import Decimal

from .deposits import DEPOSIT_TYPE
from .rows import add_to_customer_balance, invoice_row, next_stamp, update

CREDIT_CARD_ENTRY_NO = "000000"  # part of the history key; cash receipts have none


def post_journal(conn: sqlite3.Connection) -> int:
    """Post every unposted receipt, people's and the product's: lines move to AR_CashReceiptsHistory, each
    invoice's Balance falls by what was applied and its PaymentsToday returns to 0, customers' balances and
    last payment follow, the deposits are closed, and every row changed is restamped. Returns lines posted."""
    details = conn.execute(
        "SELECT d.*, p.BankCode, p.DepositDate FROM AR_CashReceiptsDetail d "
        "JOIN AR_CashReceiptsDeposit p USING (DepositNo) "
        "ORDER BY p.DepositDate, d.DepositNo, d.ARDivisionNo, d.CustomerNo, d.CheckNo, d.SequenceNo"
    ).fetchall()
    stamp = next_stamp(conn)
    applied: dict[tuple[str, str, str, str], Decimal] = defaultdict(Decimal)
    last_check: dict[tuple[str, str, str, str], str] = {}
    for d in details:
        conn.execute(
            "INSERT INTO AR_CashReceiptsHistory (BankCode, DepositDate, DepositNo, DepositType, ARDivisionNo, "
            "CustomerNo, CreditCardEntryNo, CheckNo, SequenceNo, InvoiceNo, InvoiceType, CashAmountApplied, "
            "DateUpdated, TimeUpdated) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                d["BankCode"],
                d["DepositDate"],
                d["DepositNo"],
                DEPOSIT_TYPE,
                d["ARDivisionNo"],
                d["CustomerNo"],
                CREDIT_CARD_ENTRY_NO,
                d["CheckNo"],
                d["SequenceNo"],
                d["InvoiceNo"],
                d["InvoiceType"],
                d["AmountPosted"],
                *stamp,
            ),
        )
        invoice = (d["ARDivisionNo"], d["CustomerNo"], d["InvoiceNo"], d["InvoiceType"])
        applied[invoice] += Decimal(d["AmountPosted"])
        if Decimal(d["AmountPosted"]) > 0:
            last_check[invoice] = d["CheckNo"]
    for (div, cust, invoice_no, invoice_type), amount in applied.items():
        row = invoice_row(conn, div, cust, invoice_no, invoice_type)
        assert row is not None, f"invoice {invoice_no} of an unposted receipt vanished"
        values = {"Balance": str(Decimal(row["Balance"]) - amount), "PaymentsToday": "0.00"}
        if (div, cust, invoice_no, invoice_type) in last_check:
            values["CheckNo"] = last_check[(div, cust, invoice_no, invoice_type)]
        update(
            conn,
            "AR_OpenInvoice",
            values,
            next_stamp(conn),
            ARDivisionNo=div,
            CustomerNo=cust,
            InvoiceNo=invoice_no,
            InvoiceType=invoice_type,
        )
    _post_to_customers(conn)
    for table in ("AR_CashReceiptsDetail", "AR_CashReceiptsHeader", "AR_CashReceiptsDeposit", "ML_DepositOwner"):
        conn.execute(f"DELETE FROM {table}")
    conn.execute("UPDATE ML_Idempotency SET Status = 'posted' WHERE Status = 'entered'")
    return len(details)


def _post_to_customers(conn: sqlite3.Connection) -> None:
    """Each customer's CurrentBalance falls by its posted receipts; its last payment is its latest positive one."""
    headers = conn.execute(
        "SELECT h.ARDivisionNo, h.CustomerNo, h.PostingAmt, p.DepositDate FROM AR_CashReceiptsHeader h "
        "JOIN AR_CashReceiptsDeposit p USING (DepositNo) ORDER BY p.DepositDate, h.DepositNo, h.CheckNo"
    ).fetchall()
    totals: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    last: dict[tuple[str, str], tuple[Decimal, date]] = {}
    for h in headers:
        customer, amount = (h["ARDivisionNo"], h["CustomerNo"]), Decimal(h["PostingAmt"])
        totals[customer] += amount
        if amount > 0:
            last[customer] = (amount, datetime.strptime(h["DepositDate"], "%Y%m%d").date())
    for (div, cust), total in totals.items():
        payment, paid_on = last.get((div, cust), (None, None))
        add_to_customer_balance(conn, div, cust, -total, next_stamp(conn), payment, paid_on)
