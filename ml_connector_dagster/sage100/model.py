"""The Sage 100 contract shared by the agent, its clients and the simulated company: records, stamps, money.

Pure data, no I/O: the agent (server side), the zeep clients and the stand-ins all speak these types, so a
field name or a rounding rule is defined once. Field names of records are Sage's own (`ARDivisionNo`,
`Balance`, ...) because they travel unchanged into the warehouse tables.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from typing import NamedTuple, Protocol

CENT = Decimal("0.01")
MAX_AMOUNT_DIGITS = 13  # more than DECIMAL(18,2) or any real receipt holds: refused, never rounded
# An amount written as text: ASCII digits only. Python's Decimal also reads other scripts' digits ("١٠" is 10)
# and exponents ("1e3"); neither is how an amount is written in Sage, a CSV or a command line.
ASCII_SPACE = " \t\n\r\x0b\x0c"
AMOUNT_TEXT = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?|[+-]?\.[0-9]+", re.ASCII)

# --- faults Sage (and our stand-ins) answer with --------------------------------------------------------
# Codes marked "ours" are not confirmed from Sage's documentation; clients match on these *and* on the
# message text, so a real server answering with another code still maps to the right error.
LOGON_FAILURE_TEXT = (
    "Logon failure: The user logon or password does not match or the user logon is not enabled for web services."
)
FAULT_LOGON = "CI_LogonFailure"  # ours
FAULT_NO_ACCESS = "CI_NoAccess"  # ours: Sage's role security refuses the user this operation
NO_ACCESS_TEXT = "No Access"  # how Sage's role security answers; matched at the start of a message
# eBusiness Web Services' only answer to an unexpected error inside Sage (its fault code is not known).
EXCEPTION_TEXT = "An exception occurred."
FAULT_COMPANY = "CI_InvalidCompany"  # ours
FAULT_LOGON_LOCKED = "CI_LogonLockedOut"  # ours: the agent refuses an address after repeated failed logons
FAULT_NO_KEY = "CI_NoKey"  # record does not exist
FAULT_NOT_ON_FILE = "CI_NOF"  # a value refers to something not on file
FAULT_EXISTS = "WS_AlreadyExists"
FAULT_INVALID = "CI_Invalid"  # a value is not acceptable
FAULT_OUT_OF_BALANCE = "AR_OutOfBalance"  # ours; the text is Sage's
FAULT_OVER_APPLIED = "AR_OverApplied"  # ours; the text is Sage's, followed by the invoice and its amounts
OVER_APPLIED_TEXT = "The invoice balance was exceeded."
OUT_OF_BALANCE_TEXT = "The distribution is out of balance."
FAULT_IN_PROGRESS = "AR_WriteInProgress"  # ours: another call is writing the receipt for this key; ask again
FAULT_KEY_CONFLICT = "AR_IdempotencyConflict"  # ours: the key already holds a different receipt
FAULT_KEY_REVERSED = "AR_ReceiptReversed"  # ours: the key's receipt was reversed; it is not entered again


class SageRuleError(Exception):
    """Sage (real or simulated) refused a request: `code` is the fault code, `message` Sage's words."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Credentials:
    """What every call carries: Sage's `logon` {Username, Password} and the 3-character `companyCode`."""

    username: str
    password: str = field(repr=False)
    company_code: str


# --- money ------------------------------------------------------------------------------------------------


def money(value: object, what: str = "amount") -> Decimal:
    """An exact 2-decimal amount from a Decimal, int or decimal string; floats are refused, never rounded.

    Why: a float has already lost the cents (0.1 + 0.2), so accepting one would hide the bug upstream.
    """
    if isinstance(value, (float, bool)) or value is None:
        raise ValueError(f"{what}: {value!r} is not a Decimal or decimal string (floats are not accepted for money)")
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int):
        number = Decimal(value)
    else:
        text = str(value).strip(ASCII_SPACE)  # str.strip() would also drop U+00A0 and other scripts' spaces
        if not AMOUNT_TEXT.fullmatch(text):
            raise ValueError(
                f"{what}: {str(value)[:40]!r} is not an amount written with the digits 0-9 "
                "and an optional decimal point, e.g. 250.00"
            )
        number = Decimal(text)
    if not number.is_finite():
        raise ValueError(f"{what}: {value!r} is not an amount with at most 2 decimals")
    if number.adjusted() >= MAX_AMOUNT_DIGITS:  # beyond any Sage amount column (and Decimal's precision)
        raise ValueError(
            f"{what}: {str(value)[:40]!r} is too large for a Sage amount (at most {MAX_AMOUNT_DIGITS} "
            "digits before the decimal point)"
        )
    if number != number.quantize(CENT):
        raise ValueError(f"{what}: {value!r} is not an amount with at most 2 decimals")
    return number.quantize(CENT)


# --- change stamps (DateUpdated + TimeUpdated) ----------------------------------------------------------
# TimeUpdated is kept as decimal hours (what one source says Sage stores; unconfirmed) written with a
# fixed width, "HH.hhhhhhh", so that (DateUpdated, TimeUpdated) sorts as text in SQLite and DuckDB.
TIME_UNIT = Decimal("0.0000001")  # hours: 0.36 ms, fine enough to order changes within a second
LAST_TIME = Decimal(24) - TIME_UNIT
_HMS = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2})(\.\d+)?)?$")


class Stamp(NamedTuple):
    """Sage's last-updated pair; tuples compare in time order because both parts have a fixed width."""

    DateUpdated: str  # YYYYMMDD
    TimeUpdated: str  # HH.hhhhhhh decimal hours

    @classmethod
    def of(cls, moment: datetime) -> Stamp:
        midnight = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        seconds = Decimal((moment - midnight) // timedelta(microseconds=1)) / Decimal(1_000_000)
        hours = min((seconds / 3600).quantize(TIME_UNIT, ROUND_HALF_EVEN), LAST_TIME)  # never "24.0000000"
        return cls(f"{moment.year:04d}{moment.month:02d}{moment.day:02d}", _format_hours(hours))  # strftime: "999"

    def to_datetime(self) -> datetime:
        day = datetime.strptime(self.DateUpdated, "%Y%m%d")
        micros = (Decimal(self.TimeUpdated) * 3600 * 1_000_000).to_integral_value(ROUND_HALF_EVEN)
        return day + timedelta(microseconds=int(micros))

    def next(self) -> Stamp:
        """The smallest stamp after this one (used to keep stamps strictly increasing)."""
        hours = Decimal(self.TimeUpdated) + TIME_UNIT
        if hours < 24:
            return Stamp(self.DateUpdated, _format_hours(hours))
        day = datetime.strptime(self.DateUpdated, "%Y%m%d") + timedelta(days=1)
        return Stamp(day.strftime("%Y%m%d"), _format_hours(Decimal(0)))


def _format_hours(hours: Decimal) -> str:
    return format(hours.quantize(TIME_UNIT), "010.7f")


def normalise_time_updated(text: str) -> str:
    """Sage's TimeUpdated in any form seen ("9.5", "09.5000000", "13:45:10") -> fixed-width decimal hours."""
    value = str(text).strip()
    match = _HMS.match(value)
    try:
        if match:
            h, m, s, frac = match.groups()
            seconds = int(h) * 3600 + int(m) * 60 + int(s or 0) + Decimal(frac or 0)
            hours = seconds / 3600
        else:
            hours = Decimal(value or "0")
    except InvalidOperation:
        raise ValueError(f"TimeUpdated: {text!r} is neither decimal hours nor HH:MM:SS") from None
    if not (0 <= hours < 24):
        raise ValueError(f"TimeUpdated: {text!r} is not a time of day")
    return _format_hours(hours.quantize(TIME_UNIT, ROUND_HALF_EVEN))


# --- records (Sage field names) ---------------------------------------------------------------------------


@dataclass(frozen=True)
class CustomerRecord:
    ARDivisionNo: str
    CustomerNo: str
    CustomerName: str
    EmailAddress: str
    CurrentBalance: Decimal
    CustomerStatus: str
    DateUpdated: str
    TimeUpdated: str

    @property
    def key(self) -> tuple[str, str]:
        return (self.ARDivisionNo, self.CustomerNo)

    @property
    def stamp(self) -> Stamp:
        return Stamp(self.DateUpdated, self.TimeUpdated)


@dataclass(frozen=True)
class InvoiceRecord:
    ARDivisionNo: str
    CustomerNo: str
    InvoiceNo: str
    InvoiceType: str
    InvoiceDate: date | None
    InvoiceDueDate: date | None
    Balance: Decimal  # lowered only by Sage's Cash Receipts Journal update
    PaymentsToday: Decimal  # applied by receipts entered but not yet posted (people's and ours)
    DateUpdated: str
    TimeUpdated: str

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.ARDivisionNo, self.CustomerNo, self.InvoiceNo, self.InvoiceType)

    @property
    def stamp(self) -> Stamp:
        return Stamp(self.DateUpdated, self.TimeUpdated)


class Listed(Protocol):
    """A record as lists page through it: in change-stamp order, then by key."""

    @property
    def key(self) -> tuple[str, ...]: ...

    @property
    def stamp(self) -> Stamp: ...


CUSTOMER_KEY = ("ARDivisionNo", "CustomerNo")
INVOICE_KEY = ("ARDivisionNo", "CustomerNo", "InvoiceNo", "InvoiceType")


# --- cash receipts ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReceiptLine:
    invoice_no: str
    invoice_type: str
    amount: Decimal

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", money(self.amount, f"line for invoice {self.invoice_no}: amount"))
        if not self.invoice_no:
            raise ValueError("line: invoice_no is empty")
        if not re.fullmatch(r"[A-Z]{2}", self.invoice_type or ""):
            raise ValueError(
                f"line for invoice {self.invoice_no}: invoice_type {self.invoice_type!r} is not a "
                "2-letter Sage invoice type such as IN"
            )


@dataclass(frozen=True)
class CashReceiptRequest:
    """One cash receipt to write: the GoCardless payment id is the idempotency key."""

    idempotency_key: str
    deposit_date: date
    bank_code: str
    ar_division_no: str
    customer_no: str
    amount: Decimal
    reference: str
    lines: tuple[ReceiptLine, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount", money(self.amount, "amount"))
        object.__setattr__(self, "lines", tuple(self.lines))
        problems = [
            message
            for ok, message in (
                (
                    bool(self.idempotency_key) and len(self.idempotency_key) <= 64,
                    f"idempotency_key {self.idempotency_key!r} must be 1 to 64 characters",
                ),
                (isinstance(self.deposit_date, date), f"deposit_date {self.deposit_date!r} is not a date"),
                (len(self.bank_code or "") == 1, f"bank_code {self.bank_code!r} must be 1 character"),
                (
                    bool(re.fullmatch(r"[0-9A-Za-z]{2}", self.ar_division_no or "")),
                    f"ar_division_no {self.ar_division_no!r} must be 2 characters, e.g. 01",
                ),
                (bool(self.customer_no), "customer_no is empty"),
                (self.amount > 0, f"amount {self.amount} must be positive"),
                (bool(self.lines), "lines: a cash receipt needs at least one line"),
            )
            if not ok
        ]
        if problems:
            raise ValueError("cash receipt request: " + "; ".join(problems))


@dataclass(frozen=True)
class CashReceipt:
    """A receipt as written: `status` is entered (unposted), posted (journal updated) or reversed.

    `created` is False when the request was a repeat and this is the receipt written the first time.
    `warnings` are what Sage warned about while entering it and wrote it anyway (e.g. an inactive customer).
    """

    idempotency_key: str
    receipt_id: str
    deposit_no: str
    check_no: str
    bank_code: str
    deposit_date: date
    ar_division_no: str
    customer_no: str
    amount: Decimal
    reference: str
    status: str
    lines: tuple[ReceiptLine, ...]
    created: bool = False
    reversal_reason: str = field(default="")
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class UnpostedReceiptLine:
    """One line of a cash receipt entered in Sage and not yet posted by the Cash Receipts Journal update: what
    `PaymentsToday` of its invoice is made of. `idempotency_key` is the product's key (the GoCardless payment
    id) when the receipt is the product's, empty for one a person keyed."""

    deposit_no: str
    check_no: str
    deposit_date: date | None
    ar_division_no: str
    customer_no: str
    invoice_no: str
    invoice_type: str
    amount_posted: Decimal
    idempotency_key: str = ""

    @property
    def ours(self) -> bool:
        return bool(self.idempotency_key)


def repeat_of(existing: CashReceipt, request: CashReceiptRequest) -> CashReceipt:
    """What a create for a key that already holds `existing` answers: that receipt, if `request` asks for it.

    The same receipt means the same bank, customer, amount and lines (in any order); the deposit date and
    reference may differ, because the product dates a retry by the day it runs. Anything else is a
    conflict fault naming both, and a reversed receipt is never handed back to a create.
    """
    key = existing.idempotency_key
    if existing.status == "reversed":
        raise SageRuleError(
            FAULT_KEY_REVERSED,
            f"The cash receipt {existing.receipt_id} for idempotency key {key} "
            f"was reversed ({existing.reversal_reason or 'no reason given'}); a "
            "reversed payment is not entered again under the same key.",
        )
    if _substance(existing) != _substance(request):
        raise SageRuleError(
            FAULT_KEY_CONFLICT,
            f"Idempotency key {key} already holds cash receipt "
            f"{existing.receipt_id} ({_describe(existing)}); this request asks "
            f"for {_describe(request)}. A different receipt needs a different key.",
        )
    return replace(existing, created=False)


def _substance(r: CashReceipt | CashReceiptRequest) -> tuple[object, ...]:
    """What makes two receipts the same receipt: bank, customer, amount and lines (in any order)."""
    lines = sorted((line.invoice_no, line.invoice_type, line.amount) for line in r.lines)
    return (r.bank_code, r.ar_division_no, r.customer_no, r.amount, tuple(lines))


def _describe(r: CashReceipt | CashReceiptRequest) -> str:
    lines = ", ".join(f"{line.invoice_no} {line.invoice_type} {line.amount}" for line in r.lines)
    return f"bank {r.bank_code}, customer {r.ar_division_no}-{r.customer_no}, amount {r.amount}, lines {lines}"


def receipt_id(bank_code: str, deposit_no: str, ar_division_no: str, customer_no: str, check_no: str) -> str:
    """Sage has no single receipt id; this joins the header's key so it can be found in Sage by hand."""
    return f"{bank_code}-{deposit_no}-{ar_division_no}-{customer_no}-{check_no}"


def entered_receipt(
    request: CashReceiptRequest, deposit_no: str, check_no: str, warnings: tuple[str, ...] = ()
) -> CashReceipt:
    """The receipt a backend has just entered for `request` in deposit `deposit_no` under `check_no`."""
    return CashReceipt(
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


def lines_to_json(lines: tuple[ReceiptLine, ...]) -> str:
    """Receipt lines as stored beside an idempotency key (amounts as strings: exact)."""
    return json.dumps(
        [
            {"invoice_no": line.invoice_no, "invoice_type": line.invoice_type, "amount": str(line.amount)}
            for line in lines
        ]
    )


def lines_from_json(text: str) -> tuple[ReceiptLine, ...]:
    return tuple(
        ReceiptLine(line["invoice_no"], line["invoice_type"], Decimal(line["amount"])) for line in json.loads(text)
    )
