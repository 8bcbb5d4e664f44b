"""Every ProvideX name the BOI backend uses: objects, tasks, methods and fields, in one place, overridable from a file.

Names marked (unconfirmed) follow Sage's naming convention but were not found in Sage's documentation or any
public code. A wrong one is fixed without a release: write the right name in a JSON or TOML file of
overrides (`ml-connector agent --boi-names FILE`), keyed by the field of `BOINames`. `ml-connector agent
doctor` tries every name below on the Sage server and names the key to override when Sage refuses one.

`USES` lists, object by object, which fields the backend reads, sets as key parts, or sets on a new record:
the backend's reads take their columns from it and the doctor checks exactly that list.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

GET_VALUE_FORMS = ("auto", "tuple", "variant")
MAY_BE_EMPTY = frozenset({"next_deposit_no_method"})  # empty: nSetKey numbers a new deposit


@dataclass(frozen=True)
class BOINames:
    """Every ProvideX name the BOI backend uses (Sage's field names end in `$` for strings)."""

    # ProvideX and the session (public code)
    script_progid: str = "ProvideX.Script"
    session: str = "SY_Session"
    module: str = "A/R"
    # tasks (nLookupTask): the program a session runs as
    read_task: str = "AR_Customer_ui"  # Sage's naming convention
    receipts_task: str = "AR_CashReceipts_ui"  # (unconfirmed)
    # business objects
    customer_svc: str = "AR_Customer_svc"
    open_invoice_svc: str = "AR_OpenInvoice_svc"
    options_svc: str = "AR_Options_svc"  # (unconfirmed) the AR options record
    deposit_bus: str = "AR_CashReceiptsDeposit_bus"  # (unconfirmed)
    receipts_bus: str = "AR_CashReceipts_bus"  # (unconfirmed) header; its lines are oLines
    history_svc: str = "AR_CashReceiptsHistory_svc"  # (unconfirmed) posted receipt lines
    payment_history_svc: str = "AR_TransactionPaymentHistory_svc"  # (unconfirmed) posted payments per invoice
    unposted_deposit_svc: str = "AR_CashReceiptsDeposit_svc"  # (unconfirmed) deposits in entry, read only
    unposted_header_svc: str = "AR_CashReceiptsHeader_svc"  # (unconfirmed) receipt headers in entry, read only
    unposted_detail_svc: str = "AR_CashReceiptsDetail_svc"  # (unconfirmed) receipt lines in entry, read only
    # methods
    next_deposit_no_method: str = "nGetNextDepositNo"  # (unconfirmed) Sage's "Next Deposit Number", by reference
    select_batch_method: str = "nSelectBatch"  # (unconfirmed) with batch entry: an existing batch
    new_batch_method: str = "nSelectNewBatch"  # (unconfirmed) with batch entry: a new batch, number by reference
    # how this machine's pywin32 hands back a by-reference argument: auto (detected once), tuple or variant
    get_value_form: str = "auto"
    # AR_Customer
    ar_division_no: str = "ARDivisionNo$"
    customer_no: str = "CustomerNo$"
    customer_name: str = "CustomerName$"
    email_address: str = "EmailAddress$"
    current_balance: str = "CurrentBalance"
    customer_status: str = "CustomerStatus$"
    date_updated: str = "DateUpdated$"
    time_updated: str = "TimeUpdated$"
    # AR_OpenInvoice
    invoice_no: str = "InvoiceNo$"
    invoice_type: str = "InvoiceType$"
    invoice_date: str = "InvoiceDate$"
    invoice_due_date: str = "InvoiceDueDate$"
    balance: str = "Balance"
    payments_today: str = "PaymentsToday"
    # AR options (unconfirmed): "Require Deposit Amount" and batch entry for cash receipts, Y or N
    option_require_deposit_amount: str = "RequireDepositAmt$"
    option_batch_entry: str = "CashReceiptsBatchEntry$"
    # AR_CashReceiptsDeposit
    deposit_no: str = "DepositNo$"
    bank_code: str = "BankCode$"
    deposit_date: str = "DepositDate$"
    deposit_desc: str = "DepositDesc$"
    cash_deposit_amt: str = "CashDepositAmt"
    # AR_CashReceiptsHeader (the key also has deposit_no, ar_division_no, customer_no)
    check_no: str = "CheckNo$"
    posting_amt: str = "PostingAmt"
    comment_field: str = "Comment$"  # where the idempotency key (GoCardless payment id) is kept
    # AR_CashReceiptsDetail (the receipt's oLines)
    line_invoice_no: str = "InvoiceNo$"
    line_invoice_type: str = "InvoiceType$"  # (unconfirmed)
    line_amount_posted: str = "AmountPosted"
    # AR_TransactionPaymentHistory
    payment_reference_field: str = "PaymentReference$"

    def __post_init__(self) -> None:
        problems = [
            f"{key} must be text, not {type(value).__name__}"
            for key, value in dataclasses.asdict(self).items()
            if not isinstance(value, str)
        ]
        problems += [
            f"{key} must not be empty"
            for key, value in dataclasses.asdict(self).items()
            if value == "" and key not in MAY_BE_EMPTY
        ]
        if self.get_value_form not in GET_VALUE_FORMS:
            problems.append(f"get_value_form must be one of {', '.join(GET_VALUE_FORMS)}, not {self.get_value_form!r}")
        if problems:
            raise ValueError("; ".join(problems))

    def name(self, key: str) -> str:
        """Sage's name held under `key` (a field of this class)."""
        value = getattr(self, key)
        assert isinstance(value, str)
        return value

    def changed(self) -> dict[str, str]:
        """The names that differ from the defaults (what an overrides file changed)."""
        default = BOINames()
        return {k: v for k, v in dataclasses.asdict(self).items() if v != getattr(default, k)}


KEYS = tuple(f.name for f in dataclasses.fields(BOINames))


def load_names(path: str | Path) -> BOINames:
    """BOINames with the overrides of a JSON (`.json`) or TOML (`.toml`) file: a flat table of BOINames keys
    to Sage's names. An unknown key is refused by name (a typo must not leave the default silently in use)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read BOI names file {path}: {exc.strerror or exc}") from None
    data: Any
    try:
        if path.suffix.lower() == ".json":
            data = json.loads(text)
        elif path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        else:
            raise ValueError(f"BOI names file {path}: name it .json or .toml")
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"BOI names file {path} is not valid {path.suffix[1:].upper()}: {exc}") from None
    if not isinstance(data, dict):
        raise ValueError(f'BOI names file {path}: expected a table of names, e.g. receipts_bus = "AR_CashReceipts_bus"')
    unknown = [key for key in data if key not in KEYS]
    if unknown:
        raise ValueError(f"BOI names file {path}: " + "; ".join(_unknown(key) for key in unknown))
    try:
        return BOINames(**data)
    except ValueError as exc:
        raise ValueError(f"BOI names file {path}: {exc}") from None


def _unknown(key: str) -> str:
    close = difflib.get_close_matches(key, KEYS, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown name {key!r}{hint}; the names are the fields of BOINames, listed in docs/sage100.md"


# --- what the backend uses, object by object ---------------------------------------------------------------

READ, KEY, SET = "read", "key", "set"  # read with nGetValue; also set as a key part; also set on a new record


@dataclass(frozen=True)
class Field:
    """One field the backend uses: `key` is the BOINames field holding Sage's name, `row` the name in the rows
    the backend reads. `when`: set only when that company option is on (read always)."""

    key: str
    row: str
    access: str = READ
    when: str = ""


@dataclass(frozen=True)
class Use:
    """A business object the backend opens (`key`: its BOINames field), under which tasks, and its fields;
    `lines`: the fields of its oLines."""

    key: str
    tasks: tuple[str, ...]
    fields: tuple[Field, ...]
    lines: tuple[Field, ...] = ()


CUSTOMERS = Use(
    "customer_svc",
    ("read_task",),
    (
        Field("ar_division_no", "ARDivisionNo", KEY),
        Field("customer_no", "CustomerNo", KEY),
        Field("customer_name", "CustomerName"),
        Field("email_address", "EmailAddress"),
        Field("current_balance", "CurrentBalance"),
        Field("customer_status", "CustomerStatus"),
        Field("date_updated", "DateUpdated"),
        Field("time_updated", "TimeUpdated"),
    ),
)
INVOICES = Use(
    "open_invoice_svc",
    ("read_task", "receipts_task"),  # listed for the product; checked before a receipt is written
    (
        Field("ar_division_no", "ARDivisionNo"),
        Field("customer_no", "CustomerNo"),
        Field("invoice_no", "InvoiceNo"),
        Field("invoice_type", "InvoiceType"),
        Field("invoice_date", "InvoiceDate"),
        Field("invoice_due_date", "InvoiceDueDate"),
        Field("balance", "Balance"),
        Field("payments_today", "PaymentsToday"),
        Field("date_updated", "DateUpdated"),
        Field("time_updated", "TimeUpdated"),
    ),
)
OPTIONS = Use(
    "options_svc",
    ("receipts_task",),
    (
        Field("option_require_deposit_amount", "require_deposit_amount"),
        Field("option_batch_entry", "batch_entry"),
    ),
)
DEPOSITS = Use(
    "deposit_bus",
    ("receipts_task",),
    (
        Field("deposit_no", "DepositNo", KEY),
        Field("bank_code", "BankCode", SET),
        Field("deposit_date", "DepositDate", SET),
        Field("deposit_desc", "DepositDesc", SET),
        Field("cash_deposit_amt", "CashDepositAmt", SET, when="require_deposit_amount"),
    ),
)
RECEIPTS = Use(
    "receipts_bus",
    ("receipts_task",),
    (
        Field("deposit_no", "DepositNo", KEY),
        Field("ar_division_no", "ARDivisionNo", KEY),
        Field("customer_no", "CustomerNo", KEY),
        Field("check_no", "CheckNo", KEY),
        Field("posting_amt", "PostingAmt", SET),
        Field("comment_field", "Comment", SET),
    ),
    lines=(
        Field("line_invoice_no", "InvoiceNo", SET),
        Field("line_invoice_type", "InvoiceType", SET),
        Field("line_amount_posted", "AmountPosted", SET),
    ),
)
HISTORY = Use(
    "history_svc",
    ("receipts_task",),
    (
        Field("deposit_no", "DepositNo"),
        Field("ar_division_no", "ARDivisionNo"),
        Field("customer_no", "CustomerNo"),
        Field("check_no", "CheckNo"),
    ),
)
PAYMENT_HISTORY = Use(
    "payment_history_svc",
    ("receipts_task",),
    (
        Field("ar_division_no", "ARDivisionNo"),
        Field("customer_no", "CustomerNo"),
        Field("check_no", "CheckNo"),
        Field("payment_reference_field", "PaymentReference"),
    ),
)
# The receipts in entry, people's and ours, as GetUnpostedReceipts reads them (never written through these).
UNPOSTED_DEPOSITS = Use(
    "unposted_deposit_svc",
    ("receipts_task",),
    (
        Field("deposit_no", "DepositNo"),
        Field("deposit_date", "DepositDate"),
    ),
)
UNPOSTED_HEADERS = Use(
    "unposted_header_svc",
    ("receipts_task",),
    (
        Field("deposit_no", "DepositNo"),
        Field("ar_division_no", "ARDivisionNo"),
        Field("customer_no", "CustomerNo"),
        Field("check_no", "CheckNo"),
        Field("comment_field", "Comment"),
    ),
)
UNPOSTED_LINES = Use(
    "unposted_detail_svc",
    ("receipts_task",),
    (
        Field("deposit_no", "DepositNo"),
        Field("ar_division_no", "ARDivisionNo"),
        Field("customer_no", "CustomerNo"),
        Field("check_no", "CheckNo"),
        Field("line_invoice_no", "InvoiceNo"),
        Field("line_invoice_type", "InvoiceType"),
        Field("line_amount_posted", "AmountPosted"),
    ),
)
USES = (
    CUSTOMERS,
    INVOICES,
    OPTIONS,
    DEPOSITS,
    RECEIPTS,
    HISTORY,
    PAYMENT_HISTORY,
    UNPOSTED_DEPOSITS,
    UNPOSTED_HEADERS,
    UNPOSTED_LINES,
)


def columns(names: BOINames, use: Use) -> dict[str, str]:
    """{row name: Sage's field name} of an object's fields, for reading its records."""
    return {f.row: names.name(f.key) for f in use.fields}
