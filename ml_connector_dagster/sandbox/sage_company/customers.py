"""Customers kept as eBusiness Web Services keeps them: the next customer number, a new customer, a change.

A person adding a customer in Sage (a scenario's `add_customer`) goes through here too, with nothing
required. Every function works inside the caller's write transaction; only CUSTOMER_FIELDS can be set.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping, Sequence

from ...sage100.model import FAULT_EXISTS, FAULT_INVALID, FAULT_NO_KEY, SageRuleError
from .rows import customer_row, meta, next_stamp, set_meta, update
from .schema import USER_KEY

NEXT_CUSTOMER_NO = "next_customer_no"  # ML_Meta: the company's "Next Customer Number" counter
CUSTOMER_FIELDS = (
    "CustomerName",
    "EmailAddress",
    "CreditLimit",
    "CreditHold",
    "CustomerStatus",
    "TermsCode",
    "SalespersonNo",
)


def reserve_customer_no(conn: sqlite3.Connection) -> str:
    """Sage's next customer number, reserved: the company's one counter moves past it (and past numbers
    already used in any division), so the next call answers another number even if this one is never used."""
    number = int(meta(conn, NEXT_CUSTOMER_NO, "1"))
    while conn.execute("SELECT 1 FROM AR_Customer WHERE CustomerNo = ?", (f"{number:07d}",)).fetchone():
        number += 1
    set_meta(conn, NEXT_CUSTOMER_NO, str(number + 1))
    return f"{number:07d}"


def create_customer(
    conn: sqlite3.Connection,
    ar_division_no: str,
    customer_no: str,
    fields: Mapping[str, object],
    required: Sequence[str] = (),
) -> None:
    """A new customer; WS_AlreadyExists for a key in use, then CI_Invalid for the first `required` field
    left empty (eBusiness Web Services requires some that a person keying in Sage may leave for later)."""
    _check_fields(fields)
    if customer_row(conn, ar_division_no, customer_no) is not None:
        raise SageRuleError(FAULT_EXISTS, f"Customer {ar_division_no}-{customer_no} already exists.")
    for name in required:
        if not fields.get(name):
            raise SageRuleError(FAULT_INVALID, f"{name} is required.")
    stamp = next_stamp(conn)
    values = {"CustomerName": "", "EmailAddress": "", **{k: str(v) for k, v in fields.items()}}
    columns = [
        "ARDivisionNo",
        "CustomerNo",
        *values,
        "DateCreated",
        "TimeCreated",
        "DateUpdated",
        "TimeUpdated",
        "UserUpdatedKey",
    ]
    conn.execute(
        f"INSERT INTO AR_Customer ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})",
        [ar_division_no, customer_no, *values.values(), *stamp, *stamp, USER_KEY],
    )


def update_customer(
    conn: sqlite3.Connection, ar_division_no: str, customer_no: str, fields: Mapping[str, object]
) -> None:
    """The given fields of an existing customer; CI_NoKey if there is none."""
    _check_fields(fields)
    if customer_row(conn, ar_division_no, customer_no) is None:
        raise SageRuleError(FAULT_NO_KEY, f"Customer {ar_division_no}-{customer_no} does not exist.")
    if fields:
        update(
            conn,
            "AR_Customer",
            {k: str(v) for k, v in fields.items()},
            next_stamp(conn),
            ARDivisionNo=ar_division_no,
            CustomerNo=customer_no,
        )


def _check_fields(fields: Mapping[str, object]) -> None:
    unknown = sorted(set(fields) - set(CUSTOMER_FIELDS))
    if unknown:
        raise SageRuleError(
            FAULT_INVALID,
            f"Column {unknown[0]} cannot be set through web services; settable: {', '.join(CUSTOMER_FIELDS)}.",
        )
