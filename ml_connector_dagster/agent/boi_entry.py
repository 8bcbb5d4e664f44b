"""Cash receipt entry through BOI: the company options, the agent's own deposits, the receipt header and its lines
written; an unposted receipt or an empty deposit of ours deleted.

Deposits: the agent adds receipts only to deposits it opened itself (kept in its ledger), never to one a
person keyed. A new one is numbered by Sage, from its "Next Deposit Number" (the deposit object's
`next_deposit_no_method`, by reference) or, with that name empty, by `nSetKey` on a deposit given no
number. With batch entry the deposit and the receipt are entered in the deposit's batch (a new batch per
new deposit). `CashDepositAmt` is entered only when the company requires a deposit amount, and only once
the receipt is written, so a refused receipt leaves the deposit's total as it was.

Nothing of a receipt reaches Sage's files until the header's nWrite succeeds. A reversal of a posted receipt
is the same entry with `sign` -1 (a negative receipt). The backend (boi.py) checks the request first and
keeps the ledger's receipts; these functions only write through a logged-on session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from ..sage100.model import FAULT_EXISTS, CashReceipt, CashReceiptRequest, SageRuleError
from . import boi_com as com
from .boi_names import OPTIONS, BOINames
from .ledger import AgentLedger, OwnDeposit

DEPOSIT_DESC = "GoCardless"  # the description of the deposits the agent opens
FAULT_OPTIONS = "BOI_Options"  # ours: the AR options could not be read
YES, NO = frozenset({"Y", "YES", "1", "TRUE"}), frozenset({"N", "NO", "0", "FALSE", ""})


@dataclass(frozen=True)
class EntryOptions:
    """The company options that change cash receipt entry."""

    require_deposit_amount: bool = False  # Sage's "Require Deposit Amount": CashDepositAmt is entered
    batch_entry: bool = False  # batch entry for cash receipts: deposits go into batches


@dataclass(frozen=True)
class OptionSettings:
    """Agent settings standing in for options Sage's AR options record cannot give (None: read it from Sage)."""

    require_deposit_amount: bool | None = None
    batch_entry: bool | None = None


def read_options(s: com.Session, names: BOINames, settings: OptionSettings) -> EntryOptions:
    """The options: each one from the agent's settings if given there, else from Sage's AR options record."""
    if settings.require_deposit_amount is not None and settings.batch_entry is not None:
        return EntryOptions(settings.require_deposit_amount, settings.batch_entry)
    values: dict[str, bool] = {}
    try:
        obj = s.new(names.options_svc)
        obj.nMoveFirst()
        for field in OPTIONS.fields:
            if getattr(settings, field.row) is None:
                values[field.row] = flag(s.get(obj, names.name(field.key)), names.name(field.key))
    except SageRuleError as exc:
        raise SageRuleError(
            FAULT_OPTIONS,
            f"Cannot read the AR options ({names.options_svc}): {exc.message}. Fix the name in the BOI names "
            "file, or give the agent --require-deposit-amount/--no-require-deposit-amount and "
            "--batch-entry/--no-batch-entry.",
        ) from None
    return EntryOptions(
        values.get("require_deposit_amount", bool(settings.require_deposit_amount)),
        values.get("batch_entry", bool(settings.batch_entry)),
    )


def flag(value: Any, field: str) -> bool:
    """A Sage check box: Y or N (1 or 0)."""
    text = com.text(value).upper()
    if text in YES:
        return True
    if text in NO:
        return False
    raise SageRuleError(FAULT_OPTIONS, f"{field} is {text!r}, expected Y or N")


# --- deposits -------------------------------------------------------------------------------------------------


def own_deposit(
    s: com.Session, names: BOINames, ledger: AgentLedger, options: EntryOptions, bank_code: str, deposit_date: date
) -> OwnDeposit:
    """A deposit the agent opened for this bank code and date that Sage still has in entry, or a new one."""
    dep = s.new(names.deposit_bus)
    for deposit in ledger.open_deposits(bank_code, deposit_date):
        if _still_in_entry(s, names, dep, deposit, options):
            return deposit
        ledger.closed_deposit(deposit.deposit_no)  # posted by the journal update (or deleted in Sage)
    return _open_deposit(s, names, ledger, options, dep, bank_code, deposit_date)


def _still_in_entry(s: com.Session, names: BOINames, dep: Any, deposit: OwnDeposit, options: EntryOptions) -> bool:
    select_batch = getattr(dep, names.select_batch_method) if options.batch_entry and deposit.batch_no else None
    if select_batch is not None and com.rc(select_batch(deposit.batch_no)) == 0:
        return False  # its batch is gone: posted
    s.check(dep, dep.nSetKeyValue(names.deposit_no, deposit.deposit_no), "deposit nSetKeyValue")
    try:
        if s.check(dep, dep.nSetKey(), "deposit nSetKey") != 1:
            return False
        same = (com.text(s.get(dep, names.bank_code)), com.text(s.get(dep, names.deposit_date)))
        return same == (deposit.bank_code, deposit.deposit_date.strftime("%Y%m%d"))
    finally:
        com.quietly(dep.nClear)


def _open_deposit(
    s: com.Session,
    names: BOINames,
    ledger: AgentLedger,
    options: EntryOptions,
    dep: Any,
    bank_code: str,
    deposit_date: date,
) -> OwnDeposit:
    """A new deposit numbered by Sage, in a new batch with batch entry; recorded as ours once Sage wrote it.
    (Were the agent stopped between the two, Sage keeps an empty deposit the agent never adds to.)"""
    batch_no = ""
    if options.batch_entry:
        _, batch = s.call(dep, names.new_batch_method, "", "N", DEPOSIT_DESC, out=0)
        batch_no = com.text(batch)
    if names.next_deposit_no_method:
        _, number = s.call(dep, names.next_deposit_no_method, "", out=0)
        deposit_no = com.text(number)
        s.check(dep, dep.nSetKeyValue(names.deposit_no, deposit_no), "deposit nSetKeyValue")
        is_new = s.check(dep, dep.nSetKey(), "deposit nSetKey") == 2
    else:  # no next-number method: a deposit given no number, numbered by Sage at nSetKey
        is_new = s.check(dep, dep.nSetKey(), "deposit nSetKey") == 2
        deposit_no = com.text(s.get(dep, names.deposit_no)) if is_new else ""
    if not is_new or not deposit_no:
        com.quietly(dep.nClear)
        raise SageRuleError(
            FAULT_EXISTS,
            f"Sage gave deposit number {deposit_no!r}, which is not a new deposit; check next_deposit_no_method "
            "in the BOI names (ml-connector agent doctor).",
        )
    try:
        s.check(dep, dep.nSetValue(names.bank_code, bank_code), f"deposit {names.bank_code}")
        day = deposit_date.strftime("%Y%m%d")
        s.check(dep, dep.nSetValue(names.deposit_date, day), f"deposit {names.deposit_date}")
        s.check(dep, dep.nSetValue(names.deposit_desc, DEPOSIT_DESC), f"deposit {names.deposit_desc}")
        s.check(dep, dep.nWrite(), "deposit nWrite")
    except SageRuleError:
        com.quietly(dep.nClear)
        raise
    deposit = OwnDeposit(deposit_no, bank_code, deposit_date, batch_no)
    ledger.opened_deposit(deposit)
    return deposit


def add_to_deposit_amount(s: com.Session, names: BOINames, deposit: OwnDeposit, delta: Decimal) -> None:
    """Raise (or lower) the deposit's CashDepositAmt: only for a company that requires a deposit amount."""
    dep = s.new(names.deposit_bus)
    _select_batch(s, names, dep, deposit)
    s.check(dep, dep.nSetKeyValue(names.deposit_no, deposit.deposit_no), "deposit nSetKeyValue")
    if s.check(dep, dep.nSetKey(), "deposit nSetKey") != 1:
        com.quietly(dep.nClear)
        raise SageRuleError(FAULT_EXISTS, f"Deposit {deposit.deposit_no} is no longer in entry.")
    try:
        current = com.decimal(s.get(dep, names.cash_deposit_amt))
        s.check(dep, dep.nSetValue(names.cash_deposit_amt, current + delta), f"deposit {names.cash_deposit_amt}")
        s.check(dep, dep.nWrite(), "deposit nWrite")
    except SageRuleError:
        com.quietly(dep.nClear)
        raise


def delete_deposit(s: com.Session, names: BOINames, ledger: AgentLedger, deposit: OwnDeposit) -> bool:
    """Delete one of the agent's deposits from entry (the doctor's rehearsal); False if Sage no longer has it."""
    dep = s.new(names.deposit_bus)
    _select_batch(s, names, dep, deposit)
    s.check(dep, dep.nSetKeyValue(names.deposit_no, deposit.deposit_no), "deposit nSetKeyValue")
    if s.check(dep, dep.nSetKey(), "deposit nSetKey") != 1:
        com.quietly(dep.nClear)
        ledger.closed_deposit(deposit.deposit_no)
        return False
    s.check(dep, dep.nDelete(), "deposit nDelete")
    ledger.closed_deposit(deposit.deposit_no)
    return True


def _select_batch(s: com.Session, names: BOINames, obj: Any, deposit: OwnDeposit) -> None:
    if deposit.batch_no:
        s.check(obj, getattr(obj, names.select_batch_method)(deposit.batch_no), names.select_batch_method)


# --- receipts -------------------------------------------------------------------------------------------------


def write_receipt(
    s: com.Session,
    names: BOINames,
    request: CashReceiptRequest,
    deposit: OwnDeposit,
    check_no: str,
    sign: Decimal = Decimal(1),
) -> None:
    """Header keys, PostingAmt and the key in the comment, then each line, then the header's nWrite."""
    cr = s.new(names.receipts_bus)
    _select_batch(s, names, cr, deposit)
    for key, value in (
        (names.deposit_no, deposit.deposit_no),
        (names.ar_division_no, request.ar_division_no),
        (names.customer_no, request.customer_no),
        (names.check_no, check_no),
    ):
        s.check(cr, cr.nSetKeyValue(key, value), f"receipt {key}")
    if s.check(cr, cr.nSetKey(), "receipt nSetKey") != 2:
        com.quietly(cr.nClear)
        raise SageRuleError(FAULT_EXISTS, f"Cash receipt {check_no} already exists in deposit {deposit.deposit_no}.")
    try:
        s.check(cr, cr.nSetValue(names.posting_amt, sign * request.amount), f"receipt {names.posting_amt}")
        s.check(cr, cr.nSetValue(names.comment_field, request.idempotency_key), f"receipt {names.comment_field}")
        lines = cr.oLines
        for line in request.lines:
            s.check(lines, lines.nAddLine(), "line nAddLine")
            s.check(lines, lines.nSetValue(names.line_invoice_no, line.invoice_no), f"line {names.line_invoice_no}")
            s.check(
                lines, lines.nSetValue(names.line_invoice_type, line.invoice_type), f"line {names.line_invoice_type}"
            )
            s.check(
                lines, lines.nSetValue(names.line_amount_posted, sign * line.amount), f"line {names.line_amount_posted}"
            )
            s.check(lines, lines.nWrite(), "line nWrite")
        s.check(cr, cr.nWrite(), "receipt nWrite")
    except SageRuleError:
        com.quietly(cr.nClear)  # nothing reaches Sage's files until the header's nWrite succeeds
        raise


def delete_entry(s: com.Session, names: BOINames, receipt: CashReceipt, deposit: OwnDeposit | None) -> bool:
    """Delete the receipt if it is still in entry; False once the journal has posted it."""
    cr = s.new(names.receipts_bus)
    batch_no = deposit.batch_no if deposit is not None else ""
    if batch_no and com.rc(getattr(cr, names.select_batch_method)(batch_no)) == 0:
        return False  # its batch is gone: the journal update posted it
    for key, value in (
        (names.deposit_no, receipt.deposit_no),
        (names.ar_division_no, receipt.ar_division_no),
        (names.customer_no, receipt.customer_no),
        (names.check_no, receipt.check_no),
    ):
        s.check(cr, cr.nSetKeyValue(key, value), f"receipt {key}")
    if s.check(cr, cr.nSetKey(), "receipt nSetKey") != 1:
        com.quietly(cr.nClear)
        return False  # no longer in entry: the journal has posted it
    s.check(cr, cr.nDelete(), "receipt nDelete")
    return True
