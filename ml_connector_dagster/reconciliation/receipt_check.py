"""A cash receipt as asked and as Sage has it: the request's record, the receipt's view, how they differ.

The write-back keeps the request in the ledger before it is sent, and compares the receipt Sage returns (or
already holds under the payment's key) with it before the payment is marked posted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from ..sage100 import CashReceipt, CashReceiptRequest


def request_record(request: CashReceiptRequest) -> dict[str, Any]:
    """The request as kept in the ledger before it is sent (amounts as exact text)."""
    return {
        "customer": f"{request.ar_division_no}-{request.customer_no}",
        "amount": str(request.amount),
        "lines": [
            {"invoice_no": line.invoice_no, "invoice_type": line.invoice_type, "amount": str(line.amount)}
            for line in request.lines
        ],
        "deposit_date": request.deposit_date.isoformat(),
        "reference": request.reference,
    }


def receipt_view(receipt: CashReceipt) -> dict[str, Any]:
    """What Sage holds, shown beside what was asked in a held payment's details."""
    return {
        "receipt_id": receipt.receipt_id,
        "customer": f"{receipt.ar_division_no}-{receipt.customer_no}",
        "amount": str(receipt.amount),
        "lines": lines_of(receipt),
        "deposit_date": str(receipt.deposit_date),
        "status": receipt.status,
    }


def lines_of(receipt: CashReceipt) -> list[dict[str, str]]:
    """The receipt's lines as the ledger keeps them (amounts as exact text)."""
    return [
        {"invoice_no": line.invoice_no, "invoice_type": line.invoice_type, "amount": str(line.amount)}
        for line in receipt.lines
    ]


def receipt_differences(asked: dict[str, Any], receipt: CashReceipt) -> list[str]:
    """How Sage's receipt differs from what was asked: customer, amount and (when known) lines; and a
    receipt reversed in Sage is not this payment's receipt any more."""
    out = []
    if receipt.status == "reversed":
        out.append(f"it is reversed in Sage ({receipt.reversal_reason or 'no reason given'})")
    has_customer = f"{receipt.ar_division_no}-{receipt.customer_no}"
    if asked.get("customer") and _key(asked["customer"]) != _key(has_customer):
        out.append(f"customer {has_customer}, asked {asked['customer']}")
    if asked.get("amount") is not None and Decimal(asked["amount"]) != receipt.amount:
        out.append(f"amount {receipt.amount}, asked {asked['amount']}")
    if asked.get("lines") is not None and _line_set(asked["lines"]) != _line_set(lines_of(receipt)):
        out.append(f"lines {_line_text(lines_of(receipt))}, asked {_line_text(asked['lines'])}")
    return out


def _key(customer: str) -> str:
    return customer.strip().upper()


def _line_set(lines: Iterable[dict[str, Any]]) -> Counter[tuple[str, str, Decimal]]:
    return Counter(
        (invoice_key(line["invoice_no"]), line["invoice_type"], Decimal(str(line["amount"]))) for line in lines
    )


def _line_text(lines: Iterable[dict[str, Any]]) -> str:
    return ", ".join(f"{line['invoice_no']} {line['amount']}" for line in lines) or "none"


def invoice_key(invoice_no: str) -> str:
    """An invoice number as compared: trimmed, upper case, leading zeros dropped."""
    return invoice_no.strip().upper().lstrip("0")
