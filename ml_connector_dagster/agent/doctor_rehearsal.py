"""`ml-connector agent doctor --rehearse`: a real deposit and cash receipt written through the agent's backend
and removed again, only ever on a test company (the command refuses others)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import date
from decimal import Decimal

from ..sage100.model import CashReceipt, CashReceiptRequest, Credentials, InvoiceRecord, ReceiptLine, SageRuleError
from .backends import Backend
from .doctor_report import FAIL, MATCHABLE, PASS, Check


def rehearse(
    backend: Backend,
    credentials: Credentials,
    customer: tuple[str, str],
    bank_code: str,
    today: date,
    amount: Decimal = Decimal("0.01"),
    discard_deposit: Callable[[str], bool] | None = None,
) -> list[Check]:
    """Write a cash receipt (and so a deposit) for the customer through the backend, see Sage count it, and
    remove both again: the write path end to end, on a test company."""
    checks: list[Check] = []
    division, customer_no = customer
    try:
        invoice = _open_invoice(backend.get_open_invoices(credentials, division, customer_no), amount)
    except SageRuleError as exc:
        return [Check(FAIL, "rehearse", f"cannot read customer {division}-{customer_no}'s invoices: {exc.message}")]
    if invoice is None:
        return [
            Check(
                FAIL,
                "rehearse",
                f"customer {division}-{customer_no} has no invoice with {amount} open: give --customer",
            )
        ]
    key = f"DOCTOR-{today:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    request = CashReceiptRequest(
        key,
        today,
        bank_code,
        division,
        customer_no,
        amount,
        "ml-connector agent doctor",
        (ReceiptLine(invoice.InvoiceNo, invoice.InvoiceType, amount),),
    )
    try:
        receipt = backend.create_cash_receipt(credentials, request)
    except SageRuleError as exc:
        return [Check(FAIL, "rehearse: write", f"Sage refused the receipt: {exc.code}: {exc.message}")]
    checks.append(
        Check(
            PASS,
            "rehearse: write",
            f"receipt {receipt.check_no} of {amount} on invoice {invoice.InvoiceNo} in deposit {receipt.deposit_no}",
        )
    )
    try:
        checks += _after_write(backend, credentials, receipt, invoice, amount)
    except SageRuleError as exc:
        checks.append(Check(FAIL, "rehearse: read back", f"{exc.code}: {exc.message}"))
    finally:
        checks += _remove(backend, credentials, receipt, invoice, discard_deposit)
    return checks


def _open_invoice(invoices: list[InvoiceRecord], amount: Decimal) -> InvoiceRecord | None:
    return next(
        (i for i in invoices if i.InvoiceType in MATCHABLE and i.Balance - i.PaymentsToday >= amount),
        None,
    )


def _invoice_now(backend: Backend, credentials: Credentials, invoice: InvoiceRecord) -> InvoiceRecord | None:
    now = backend.get_open_invoices(credentials, invoice.ARDivisionNo, invoice.CustomerNo)
    return next((i for i in now if i.key == invoice.key), None)


def _after_write(
    backend: Backend, credentials: Credentials, receipt: CashReceipt, invoice: InvoiceRecord, amount: Decimal
) -> list[Check]:
    checks: list[Check] = []
    found = backend.find_cash_receipt(credentials, receipt.idempotency_key)
    checks.append(
        Check(PASS, "rehearse: find", f"FindCashReceipt returns it ({found.status})")
        if found is not None and found.receipt_id == receipt.receipt_id
        else Check(FAIL, "rehearse: find", f"FindCashReceipt returned {found!r} for {receipt.idempotency_key}")
    )
    now = _invoice_now(backend, credentials, invoice)
    if now is None:
        checks.append(Check(FAIL, "rehearse: PaymentsToday", f"invoice {invoice.InvoiceNo} is no longer listed"))
    elif now.PaymentsToday - invoice.PaymentsToday == amount:
        checks.append(
            Check(
                PASS,
                "rehearse: PaymentsToday",
                f"invoice {invoice.InvoiceNo}: PaymentsToday {invoice.PaymentsToday} -> {now.PaymentsToday}, "
                f"Balance {invoice.Balance} -> {now.Balance}",
            )
        )
    else:
        checks.append(
            Check(
                FAIL,
                "rehearse: PaymentsToday",
                f"invoice {invoice.InvoiceNo}: PaymentsToday {invoice.PaymentsToday} -> {now.PaymentsToday}, not "
                f"raised by {amount}: the open amount the agent checks would be wrong (see payments_today)",
            )
        )
    return checks


def _remove(
    backend: Backend,
    credentials: Credentials,
    receipt: CashReceipt,
    invoice: InvoiceRecord,
    discard_deposit: Callable[[str], bool] | None,
) -> list[Check]:
    try:
        reversed_ = backend.reverse_cash_receipt(credentials, receipt.idempotency_key, "ml-connector agent doctor")
    except SageRuleError as exc:
        return [
            Check(
                FAIL,
                "rehearse: remove",
                f"the receipt {receipt.check_no} in deposit {receipt.deposit_no} could not be removed ({exc.message}): "
                "delete it in Sage's Cash Receipts Entry",
            )
        ]
    checks = [Check(PASS, "rehearse: remove", f"receipt {receipt.check_no} deleted from entry ({reversed_.status})")]
    now = _invoice_now(backend, credentials, invoice)
    if now is not None and now.PaymentsToday != invoice.PaymentsToday:
        checks.append(
            Check(
                FAIL,
                "rehearse: remove",
                f"invoice {invoice.InvoiceNo}'s PaymentsToday is {now.PaymentsToday}, was {invoice.PaymentsToday}",
            )
        )
    if discard_deposit is not None:
        try:
            gone = discard_deposit(receipt.deposit_no)
        except SageRuleError as exc:
            gone, why = False, exc.message
        else:
            why = "Sage no longer has it"
        checks.append(
            Check(PASS, "rehearse: deposit", f"deposit {receipt.deposit_no} deleted")
            if gone
            else Check(
                FAIL, "rehearse: deposit", f"deposit {receipt.deposit_no} not deleted ({why}): delete it in Sage"
            )
        )
    return checks
