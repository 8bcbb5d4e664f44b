"""Talking to Sage's BOI over COM: the session's objects, return codes and warnings, reading every record,
by-reference arguments in both forms pywin32 presents them, nEOF as a property, and Sage's field formats, for
the BOI backend (agent/boi.py, boi_entry.py, boi_recovery.py) and the doctor (agent/doctor.py, doctor_entry.py,
doctor_report.py). Nothing here knows about cash receipts or the ledger.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any, TypeVar

from ..sage100.model import CENT, CustomerRecord, InvoiceRecord, Listed, SageRuleError, Stamp, normalise_time_updated

L = TypeVar("L", bound=Listed)

log = logging.getLogger(__name__)
sage_warnings = logging.getLogger("ml_connector_dagster.agent.boi")  # the BOI backend's name, as operators know it
NO_PYWIN32 = (
    "the boi backend needs Windows with pywin32 (pip install pywin32) and Sage 100 "
    "installed on this machine; use --backend simulated elsewhere"
)


def win32_dispatch(progid: str) -> Any:
    """The real COM object for a ProgID (pywin32), initialising COM on this worker thread."""
    try:
        import pythoncom
        import win32com.client
    except ImportError:
        raise RuntimeError(NO_PYWIN32) from None
    pythoncom.CoInitialize()  # each request runs on a worker thread; COM needs initialising per thread
    return win32com.client.Dispatch(progid)


def win32_variant(initial: Any) -> Any:
    """A by-reference VARIANT holding `initial` (pywin32), for a late-bound call to hand a value back through."""
    import pythoncom
    import win32com.client

    return win32com.client.VARIANT(pythoncom.VT_BYREF | pythoncom.VT_VARIANT, initial)


class ByRef:
    """Calls with one by-reference argument (`nGetValue(name, value)`, `nGetNextDepositNo(number)`), in the
    form this machine's pywin32 presents them:

    - tuple: under a type-library (makepy) dispatch pywin32 returns `(ret, value)`;
    - variant: a late-bound dispatch returns only `ret`, so the argument is passed as a by-reference VARIANT
      and read back from it;
    - auto: the first call passes a VARIANT and takes whichever form comes back; later calls use that form.
    """

    def __init__(self, form: str = "auto", variant: Callable[[Any], Any] = win32_variant) -> None:
        self.form = form
        self._variant = variant

    def call(self, obj: Any, method: str, *args: Any, out: int) -> tuple[Any, Any]:
        """(return value, the by-reference argument `args[out]` as the call left it)."""
        fn = getattr(obj, method)
        if self.form == "tuple":
            result = fn(*args)
            if not isinstance(result, tuple):
                raise SageRuleError(
                    "BOI_ByRef",
                    f"{method} handed no value back by reference: this pywin32 dispatch is late-bound; "
                    'set get_value_form = "variant" (or "auto") in the BOI names file',
                )
            return result[0], result[1]
        try:
            holder = self._variant(args[out])
        except ImportError:  # no pywin32 (only a stand-in COM can be here): its answer must be the tuple
            if self.form == "variant":
                raise RuntimeError(NO_PYWIN32) from None
            self.form = "tuple"
            return self.call(obj, method, *args, out=out)
        try:
            result = fn(*args[:out], holder, *args[out + 1 :])
        except TypeError:  # a typed (makepy) wrapper that takes no VARIANT: then it answers with the tuple
            if self.form != "auto":
                raise
            self.form = "tuple"
            return self.call(obj, method, *args, out=out)
        if isinstance(result, tuple):  # a type-library dispatch: the value comes back in the answer
            if self.form == "auto":
                self.form = "tuple"
            return result[0], result[1]
        if self.form == "auto":
            self.form = "variant"
        return result, holder.value


class Session:
    """One logged-on ProvideX session; every object made through it is dropped when it ends. What Sage warned
    about (return code -1) during the session is kept in `warnings`."""

    def __init__(self, script: Any, ss: Any, byref: ByRef | None = None) -> None:
        self.script, self.ss = script, ss
        self.byref = byref or ByRef()
        self.objects: list[Any] = []
        self.warnings: list[str] = []

    def new(self, name: str) -> Any:
        obj = self.script.NewObject(name, self.ss)
        self.objects.append(obj)
        return obj

    def check(self, obj: Any, rc_value: Any, what: str) -> int:
        """BOI return codes: 1 success, -1 success with a warning (logged and kept), 0 failure (raised)."""
        code = check(obj, rc_value, what)
        if code == -1:
            self.warnings.append(message(obj, f"{what}: (no message)"))
        return code

    def get(self, obj: Any, field: str) -> Any:
        """nGetValue(field, byref value): the value, in whichever form pywin32 hands it back."""
        code, value = self.byref.call(obj, "nGetValue", field, "" if field.endswith("$") else 0, out=1)
        if rc(code) == 0:
            raise SageRuleError(
                str(getattr(obj, "sLastErrorNum", "") or "BOI_Error"), message(obj, f"nGetValue({field}) failed")
            )
        return value

    def rows(self, obj: Any, columns: Mapping[str, str]) -> Iterator[dict[str, Any]]:
        """Every record of a service object: nMoveFirst, then nGetValue per column until nEOF; rows keyed by
        the names in `columns` ({row name: Sage's field name})."""
        obj.nMoveFirst()
        while not eof(obj):
            yield {row: self.get(obj, field) for row, field in columns.items()}
            obj.nMoveNext()

    def call(self, obj: Any, method: str, *args: Any, out: int) -> tuple[int, Any]:
        """A method with a by-reference argument, its return code checked: (code, the argument's value)."""
        code, value = self.byref.call(obj, method, *args, out=out)
        return self.check(obj, code, method), value


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


DISPATCH_PROPERTYGET = 2  # pythoncom.DISPATCH_PROPERTYGET


def eof(obj: Any) -> bool:
    """nEOF is a property in every public example: read, never called. If a type library made it a method,
    pywin32 hands back the method; then the property is asked for through IDispatch (GetProperty)."""
    value = obj.nEOF
    if callable(value):
        value = property_get(obj, "nEOF")
    return bool(rc(value))


def property_get(obj: Any, name: str) -> Any:
    """A COM property read as such (IDispatch::Invoke with DISPATCH_PROPERTYGET)."""
    ole = obj._oleobj_
    return ole.Invoke(ole.GetIDsOfNames(name), 0, DISPATCH_PROPERTYGET, True)


def has_method(obj: Any, name: str) -> bool:
    """Whether a COM object knows a name (IDispatch::GetIDsOfNames), without calling it."""
    try:
        obj._oleobj_.GetIDsOfNames(name)
    except Exception:  # noqa: BLE001 - pywintypes.com_error (DISP_E_UNKNOWNNAME), whatever COM raised
        return False
    return True


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
