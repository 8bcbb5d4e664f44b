"""Cash receipts in the simulated company, as Sage enters and posts them.

Entering a receipt (the product's through the agent, or a person's keyed in Sage) writes an unposted entry
- deposit, header, lines - and raises each invoice's `PaymentsToday`; `Balance`, and the customer's
`CurrentBalance`, `DateLastPayment` and `LastPaymentAmt`, change only at the Cash Receipts Journal update
(`post_journal`), which posts every unposted entry to AR_CashReceiptsHistory. Until then the money still
open on an invoice is `Balance - PaymentsToday`, and a line beyond it is refused with Sage's "The invoice
balance was exceeded".

Deposits are numbered from Sage's "Next Deposit Number" counter; whoever opens a deposit owns it
(ML_DepositOwner), and the product's receipts go only into a deposit the product opened. A posted receipt
is reversed Sage's documented way, by a new negative receipt with the same check number on the same
invoices; an unposted one is deleted. Everything happens inside the caller's write transaction, checks
first, so a refused receipt writes nothing; the ML_Idempotency row keyed by the GoCardless payment id
makes a repeated request return the first receipt and write nothing, across restarts.
"""

from __future__ import annotations

import json
import sqlite3
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal

from ...sage100.model import (
    CENT,
    FAULT_EXISTS,
    FAULT_INVALID,
    FAULT_NO_KEY,
    FAULT_NOT_ON_FILE,
    FAULT_OUT_OF_BALANCE,
    FAULT_OVER_APPLIED,
    OUT_OF_BALANCE_TEXT,
    OVER_APPLIED_TEXT,
    CashReceipt,
    CashReceiptRequest,
    ReceiptLine,
    SageRuleError,
    lines_from_json,
    lines_to_json,
    receipt_id,
    repeat_of,
)
from .rows import (
    CompanyOptions,
    add_to_customer_balance,
    customer_row,
    invoice_row,
    next_stamp,
    sage_date,
    take_counter,
    update,
)

DEPOSIT_TYPE = "C"  # cash/check deposit; GoCardless is not Sage's own ACH processing
CREDIT_CARD_ENTRY_NO = "000000"  # part of the history key; cash receipts have none
ENTRY_KEY = "DepositNo = ? AND ARDivisionNo = ? AND CustomerNo = ? AND CheckNo = ?"
PRODUCT = "product"  # ML_DepositOwner.Owner of the deposits the product (through the agent) opens
PERSON = "person"  # the owner of a deposit keyed by a person in Sage, unless named
NEXT_DEPOSIT_NO = "next_deposit_no"  # Sage's "Next Deposit Number" (ML_Meta)
NEXT_BATCH_NO = "next_batch_no"
NEXT_CHECK_NO = "next_check_no"  # the product's check numbers, GC + 8 digits


@dataclass(frozen=True)
class KeyedReceipt:
    """A receipt a person keys in Sage's Cash Receipts Entry: one invoice, their own check number."""

    ar_division_no: str
    customer_no: str
    invoice_no: str
    invoice_type: str
    amount: Decimal
    check_no: str
    deposit_date: date
    keyed_by: str = PERSON


@dataclass(frozen=True)
class EnteredReceipt:
    """What Sage shows once a person's receipt is entered: where it went, and what Sage warned about."""

    deposit_no: str
    check_no: str
    warnings: tuple[str, ...] = ()


# --- the product's receipts ------------------------------------------------------------------------------------


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
    warnings = check(conn, request, bank_code)
    deposit_no, batch_no = _deposit_of(conn, PRODUCT, request.bank_code, request.deposit_date, options)
    check_no = f"GC{take_counter(conn, NEXT_CHECK_NO):08d}"
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
        warnings=warnings,
    )
    _enter(
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
        _delete_entry(conn, receipt)
        reversal_deposit = ""
    else:
        reversal_deposit, batch_no = _deposit_of(conn, PRODUCT, receipt.bank_code, date.today(), options)
        negative = tuple(ReceiptLine(line.invoice_no, line.invoice_type, -line.amount) for line in receipt.lines)
        _enter(
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


# --- a person's receipts -----------------------------------------------------------------------------------------


def key(conn: sqlite3.Connection, keyed: KeyedReceipt, bank_code: str, options: CompanyOptions) -> EnteredReceipt:
    """A person keys a receipt in Sage: into their own open deposit of that date (opened if needed), checked
    as Sage checks every receipt; the invoice's PaymentsToday rises, its Balance does not."""
    line = ReceiptLine(keyed.invoice_no, keyed.invoice_type, keyed.amount)
    div, cust = keyed.ar_division_no, keyed.customer_no
    warnings = _check_customer(conn, div, cust)
    _check_lines(conn, div, cust, (line,))
    if not keyed.check_no or len(keyed.check_no) > 10:
        raise SageRuleError(FAULT_INVALID, f"The check number {keyed.check_no!r} must be 1 to 10 characters.")
    deposit_no, batch_no = _deposit_of(conn, keyed.keyed_by, bank_code, keyed.deposit_date, options)
    if conn.execute(
        f"SELECT 1 FROM AR_CashReceiptsHeader WHERE {ENTRY_KEY}", (deposit_no, div, cust, keyed.check_no)
    ).fetchone():
        raise SageRuleError(
            FAULT_EXISTS, f"Check {keyed.check_no} of customer {div}-{cust} is already in deposit {deposit_no}."
        )
    _enter(conn, deposit_no, batch_no, (div, cust, keyed.check_no), (line,))
    return EnteredReceipt(deposit_no, keyed.check_no, warnings)


# --- the Cash Receipts Journal update ----------------------------------------------------------------------------


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


# --- Sage's checks, in Sage's order ----------------------------------------------------------------------------


def check(conn: sqlite3.Connection, request: CashReceiptRequest, bank_code: str) -> tuple[str, ...]:
    """The bank, the customer, each line as it is added, then the distribution; returns Sage's warnings."""
    if request.bank_code != bank_code:
        raise SageRuleError(FAULT_NOT_ON_FILE, f"Bank code {request.bank_code} is not on file.")
    warnings = _check_customer(conn, request.ar_division_no, request.customer_no)
    _check_lines(conn, request.ar_division_no, request.customer_no, request.lines)
    if sum((line.amount for line in request.lines), Decimal(0)) != request.amount:
        raise SageRuleError(FAULT_OUT_OF_BALANCE, OUT_OF_BALANCE_TEXT)
    return warnings


def _check_customer(conn: sqlite3.Connection, div: str, cust: str) -> tuple[str, ...]:
    """The customer must be on file; an inactive one is a warning (Sage lets the user go on), not a refusal."""
    customer = customer_row(conn, div, cust)
    if customer is None:
        raise SageRuleError(FAULT_NOT_ON_FILE, f"Customer {div}-{cust} is not on file.")
    return (f"Customer {div}-{cust} is inactive.",) if customer["CustomerStatus"] == "I" else ()


def _check_lines(conn: sqlite3.Connection, div: str, cust: str, lines: tuple[ReceiptLine, ...]) -> None:
    """Each line names an invoice of the customer (never a silent prepayment), posts more than zero, and (with
    the lines before it) stays within what is still open: Balance less PaymentsToday, which counts every
    unposted receipt, people's and the product's."""
    applied: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for line in lines:
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
        invoice = (line.invoice_no, line.invoice_type)
        applied[invoice] += line.amount
        balance, unposted = Decimal(row["Balance"]), Decimal(row["PaymentsToday"])
        if applied[invoice] > balance - unposted:
            raise SageRuleError(
                FAULT_OVER_APPLIED,
                f"{OVER_APPLIED_TEXT} Invoice {line.invoice_no} ({line.invoice_type}) of customer {div}-{cust}: "
                f"Balance {balance}, PaymentsToday {unposted} (unposted receipts), {balance - unposted} open; "
                f"this receipt applies {applied[invoice]}.",
            )


# --- deposits and entries ----------------------------------------------------------------------------------------


def _deposit_of(
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


def _enter(
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


def _delete_entry(conn: sqlite3.Connection, receipt: CashReceipt) -> None:
    """An unposted receipt is deleted from entry: its rows go, its invoices' PaymentsToday falls back."""
    key = (receipt.deposit_no, receipt.ar_division_no, receipt.customer_no, receipt.check_no)
    conn.execute(f"DELETE FROM AR_CashReceiptsDetail WHERE {ENTRY_KEY}", key)
    conn.execute(f"DELETE FROM AR_CashReceiptsHeader WHERE {ENTRY_KEY}", key)
    for line in receipt.lines:
        _add_payments_today(conn, receipt.ar_division_no, receipt.customer_no, line, -line.amount)
    _total_deposit(conn, receipt.deposit_no)


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
