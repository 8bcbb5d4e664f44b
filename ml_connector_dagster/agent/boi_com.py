"""Talking to Sage's BOI over COM: the session's objects, return codes, reading every record, by-reference
values and Sage's field formats, for the BOI backend (agent/boi.py, boi_entry.py, boi_recovery.py). Nothing
here knows about cash receipts or the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from ..sage100.model import CENT, CustomerRecord, InvoiceRecord, Listed, SageRuleError, Stamp, normalise_time_updated

L = TypeVar("L", bound=Listed)

log = logging.getLogger(__name__)
sage_warnings = logging.getLogger("ml_connector_dagster.agent.boi")  # the BOI backend's name, as operators know it


def win32_dispatch(progid: str) -> Any:
    """The real COM object for a ProgID (pywin32), initialising COM on this worker thread."""
    try:
        import pythoncom
        import win32com.client
    except ImportError:
        raise RuntimeError(
            "the boi backend needs Windows with pywin32 (pip install pywin32) and Sage 100 "
            "installed on this machine; use --backend simulated elsewhere"
        ) from None
    pythoncom.CoInitialize()  # each request runs on a worker thread; COM needs initialising per thread
    return win32com.client.Dispatch(progid)


class Session:
    """One logged-on ProvideX session; every object made through it is dropped when it ends."""

    def __init__(self, script: Any, ss: Any) -> None:
        self.script, self.ss = script, ss
        self.objects: list[Any] = []

    def new(self, name: str) -> Any:
        obj = self.script.NewObject(name, self.ss)
        self.objects.append(obj)
        return obj


def rc(value: Any) -> int:
    """A BOI return value as an int (pywin32 may hand back a tuple when there are by-reference arguments)."""
    if isinstance(value, tuple):
        value = value[0]
    return int(value)


def check(obj: Any, rc_value: Any, what: str) -> int:
    """BOI return codes: 1 success, -1 success with a warning (logged), 0 failure (sLastErrorMsg raised)."""
    code = rc(rc_value)
    if code == 0:
        error = str(getattr(obj, "sLastErrorNum", "") or "BOI_Error")
        raise SageRuleError(error, message(obj, f"{what} failed"))
    if code == -1:
        sage_warnings.warning("Sage warned on %s: %s", what, message(obj, "(no message)"))
    return code


def rows(obj: Any, fields: Sequence[str]) -> Iterator[dict[str, Any]]:
    """Every record of a service object: nMoveFirst, then nGetValue per field until nEOF."""
    obj.nMoveFirst()
    while not eof(obj):
        yield {name.rstrip("$"): get(obj, name) for name in fields}
        obj.nMoveNext()


def eof(obj: Any) -> bool:
    """nEOF is a property in every public example; read it as one, and call it if COM hands back a method."""
    value = obj.nEOF
    return bool(rc(value() if callable(value) else value))


def get(obj: Any, field: str) -> Any:
    """nGetValue(field, byref value): pywin32 returns (rc, value) for the by-reference argument."""
    result = obj.nGetValue(field, "" if field.endswith("$") else 0)
    if isinstance(result, tuple):
        code, value = result[0], result[1]
        if rc(code) == 0:
            raise SageRuleError(
                str(getattr(obj, "sLastErrorNum", "") or "BOI_Error"), message(obj, f"nGetValue({field}) failed")
            )
        return value
    return result


def message(obj: Any, default: str) -> str:
    return str(getattr(obj, "sLastErrorMsg", "") or default).strip()


def quietly(call: Callable[[], Any]) -> None:
    try:
        call()
    except Exception:
        log.debug("BOI cleanup call failed", exc_info=True)


def text(value: Any) -> str:
    """A string field as Sage may pad it."""
    return str(value or "").strip()


def key_of(row: dict[str, Any]) -> tuple[str, str, str]:
    """(division, customer, check number) of a receipt or history row."""
    return text(row["ARDivisionNo"]), text(row["CustomerNo"]), text(row["CheckNo"])


def decimal(value: Any) -> Decimal:
    """COM hands numbers over as doubles (or CURRENCY as Decimal): the one place a float becomes money."""
    if isinstance(value, float):
        return Decimal(repr(value)).quantize(CENT)
    return Decimal(str(value or 0)).quantize(CENT)


def sage_date(value: Any) -> date | None:
    text = str(value or "").strip()
    return datetime.strptime(text, "%Y%m%d").date() if text else None


def customer_record(r: dict[str, Any]) -> CustomerRecord:
    return CustomerRecord(
        r["ARDivisionNo"],
        r["CustomerNo"],
        r["CustomerName"],
        r["EmailAddress"],
        decimal(r["CurrentBalance"]),
        r["CustomerStatus"],
        r["DateUpdated"],
        normalise_time_updated(r["TimeUpdated"]),
    )


def invoice_record(r: dict[str, Any]) -> InvoiceRecord:
    return InvoiceRecord(
        r["ARDivisionNo"],
        r["CustomerNo"],
        r["InvoiceNo"],
        r["InvoiceType"],
        sage_date(r["InvoiceDate"]),
        sage_date(r["InvoiceDueDate"]),
        decimal(r["Balance"]),
        decimal(r["PaymentsToday"]),
        r["DateUpdated"],
        normalise_time_updated(r["TimeUpdated"]),
    )


def page(rows: Iterable[L], since: Stamp | None, after: tuple[str, ...] | None, limit: int) -> list[L]:
    """The in-memory equivalent of the simulated company's keyset query."""

    def position(r: L) -> tuple[str, ...]:
        return (*r.stamp, *r.key)

    chosen = [r for r in rows if (since is None or r.stamp > since) and (after is None or position(r) > after)]
    return sorted(chosen, key=position)[:limit]
