"""Cash receipt entry through BOI: the deposit, the receipt header and its lines written; an unposted one deleted.

Nothing reaches Sage's files until the header's nWrite succeeds. A reversal of a posted receipt is the same
entry with `sign` -1 (an offsetting negative receipt). The backend (boi.py) checks the request first and
keeps the ledger; these functions only write through a logged-on session.
"""

from __future__ import annotations

from decimal import Decimal

from ..sage100.model import FAULT_EXISTS, CashReceipt, CashReceiptRequest, SageRuleError
from . import boi_com as com
from .boi_names import BOINames


def deposit(s: com.Session, names: BOINames, request: CashReceiptRequest, sign: Decimal = Decimal(1)) -> str:
    """The unposted deposit for this bank code and date, or a new one; its amount grows by the receipt's."""
    dep = s.new(names.deposit_bus)
    wanted = (request.bank_code, request.deposit_date.strftime("%Y%m%d"))
    rows = list(com.rows(dep, ("DepositNo$", "BankCode$", "DepositDate$")))
    match = next((r["DepositNo"] for r in rows if (r["BankCode"], r["DepositDate"]) == wanted), None)
    deposit_no = (
        match or f"{max((int(r['DepositNo']) for r in rows if str(r['DepositNo']).isdigit()), default=0) + 1:05d}"
    )
    com.check(dep, dep.nSetKeyValue("DepositNo$", deposit_no), "deposit nSetKeyValue")
    is_new = com.check(dep, dep.nSetKey(), "deposit nSetKey") == 2
    current = Decimal(0) if is_new else com.decimal(com.get(dep, "CashDepositAmt"))
    if is_new:
        com.check(dep, dep.nSetValue("BankCode$", request.bank_code), "deposit BankCode$")
        com.check(dep, dep.nSetValue("DepositDate$", wanted[1]), "deposit DepositDate$")
        com.check(dep, dep.nSetValue("DepositDesc$", "GoCardless"), "deposit DepositDesc$")
    com.check(dep, dep.nSetValue("CashDepositAmt", current + sign * request.amount), "deposit CashDepositAmt")
    com.check(dep, dep.nWrite(), "deposit nWrite")
    return deposit_no


def write_receipt(
    s: com.Session,
    names: BOINames,
    request: CashReceiptRequest,
    deposit_no: str,
    check_no: str,
    sign: Decimal = Decimal(1),
) -> None:
    """Header keys, PostingAmt and the key in Comment$, then each line, then the header's nWrite."""
    cr = s.new(names.receipts_bus)
    for field, value in (
        ("DepositNo$", deposit_no),
        ("ARDivisionNo$", request.ar_division_no),
        ("CustomerNo$", request.customer_no),
        ("CheckNo$", check_no),
    ):
        com.check(cr, cr.nSetKeyValue(field, value), f"receipt {field}")
    if com.check(cr, cr.nSetKey(), "receipt nSetKey") != 2:
        raise SageRuleError(FAULT_EXISTS, f"Cash receipt {check_no} already exists in deposit {deposit_no}.")
    com.check(cr, cr.nSetValue("PostingAmt", sign * request.amount), "receipt PostingAmt")
    com.check(cr, cr.nSetValue(names.comment_field, request.idempotency_key), "receipt comment")
    lines = cr.oLines
    try:
        for line in request.lines:
            com.check(lines, lines.nAddLine(), "line nAddLine")
            com.check(lines, lines.nSetValue("InvoiceNo$", line.invoice_no), "line InvoiceNo$")
            com.check(lines, lines.nSetValue(names.line_invoice_type, line.invoice_type), "line InvoiceType")
            com.check(lines, lines.nSetValue("AmountPosted", sign * line.amount), "line AmountPosted")
            com.check(lines, lines.nWrite(), "line nWrite")
        com.check(cr, cr.nWrite(), "receipt nWrite")
    except SageRuleError:
        com.quietly(cr.nClear)  # nothing reaches Sage's files until the header's nWrite succeeds
        raise


def delete_entry(s: com.Session, names: BOINames, receipt: CashReceipt) -> bool:
    """Delete the receipt if it is still in entry; False once the journal has posted it."""
    cr = s.new(names.receipts_bus)
    for field, value in (
        ("DepositNo$", receipt.deposit_no),
        ("ARDivisionNo$", receipt.ar_division_no),
        ("CustomerNo$", receipt.customer_no),
        ("CheckNo$", receipt.check_no),
    ):
        com.check(cr, cr.nSetKeyValue(field, value), f"receipt {field}")
    if com.check(cr, cr.nSetKey(), "receipt nSetKey") != 1:
        com.quietly(cr.nClear)
        return False  # no longer in entry: the journal has posted it
    com.check(cr, cr.nDelete(), "receipt nDelete")
    return True
