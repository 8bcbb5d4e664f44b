"""The doctor's checks of the entry objects, on new records never written (agent/doctor.py): the deposit and
cash receipt objects' fields set on a new record and read back, then cleared; the methods the backend calls on
them, looked up without calling them. Also how any field is set, read and said."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from ..sage100.model import SageRuleError
from . import boi_com as com
from .boi_entry import DEPOSIT_DESC, EntryOptions
from .boi_names import KEY, SET, BOINames, Field, Use
from .doctor_report import FAIL, PASS, SKIP, Found, Probe, clause, did, rename_hint, said_by

PROBE_CHECK_NO = "MLDOCTOR"  # the check number set on the new receipt the doctor never writes


@dataclass
class EntryChecks:
    """The Doctor's parts these checks use: the names, the probe values, what the checks found, where a line goes."""

    names: BOINames
    probe: Probe
    found: Found
    add: Callable[[str, str, str], bool]

    @property
    def options(self) -> EntryOptions:
        return EntryOptions(
            self.found.options.get("require_deposit_amount", False), self.found.options.get("batch_entry", False)
        )

    def deposit(self, s: com.Session, use: Use, obj: Any) -> None:
        n = self.names
        self._methods(obj, use)
        try:
            self.found.deposits = [com.text(r["no"]) for r in s.rows(obj, {"no": n.deposit_no})]
        except SageRuleError:
            self.found.deposits = []
        probe = next(f"{i:05d}" for i in range(99999, 0, -1) if f"{i:05d}" not in self.found.deposits)
        values = {
            "deposit_no": probe,
            "bank_code": self.probe.bank_code,
            "deposit_date": self.probe.today.strftime("%Y%m%d"),
            "deposit_desc": DEPOSIT_DESC,
            "cash_deposit_amt": Decimal("0.01"),
        }
        self._new_record(s, use, obj, use.fields, values, f"deposit {probe}")

    def receipt(self, s: com.Session, use: Use, obj: Any) -> None:
        self._methods(obj, use)
        customer = self.found.customer or ("", "")
        invoice = self.found.invoice or ("MLDOCTOR", "IN")
        probe = next(f"{i:05d}" for i in range(99999, 0, -1) if f"{i:05d}" not in self.found.deposits)
        values = {
            "deposit_no": probe,
            "ar_division_no": customer[0],
            "customer_no": customer[1],
            "check_no": PROBE_CHECK_NO,
            "posting_amt": Decimal("0.01"),
            "comment_field": "ml-connector agent doctor",
            "line_invoice_no": invoice[0],
            "line_invoice_type": invoice[1],
            "line_amount_posted": Decimal("0.01"),
        }
        if self.found.customer is None:
            self.add(FAIL, f"object {self.names.name(use.key)}", "no customer to try a receipt on: give --customer")
            return
        self._new_record(s, use, obj, use.fields, values, f"receipt {PROBE_CHECK_NO} of {'-'.join(customer)}")

    def _new_record(
        self, s: com.Session, use: Use, obj: Any, fields: tuple[Field, ...], values: dict[str, Any], what: str
    ) -> None:
        """Key parts set, nSetKey (a new record: 2), the other fields set and every field read back; then
        nClear: nothing is written."""
        problems: dict[str, str | None] = {}
        try:
            for f in fields:
                if f.access == KEY:
                    problems[f.key] = self.set(obj, "nSetKeyValue", f, values[f.key])
            answer = com.rc(obj.nSetKey())
            if answer != 2:
                reason = said_by(obj, "no reason given") if answer == 0 else "an existing record (1)"
                self.add(
                    FAIL,
                    f"object {self.names.name(use.key)}",
                    f"nSetKey on a new {what} gave {reason}; its other fields were not tried: run --rehearse on "
                    "a test company to try the whole write",
                )
                for f in fields:
                    if f.access == KEY:
                        self.field_line(use, f, problems[f.key], "key part")
                return
            for f in fields:
                if f.access == SET and (not f.when or self.found.options.get(f.when, False)):
                    problems[f.key] = self.set(obj, "nSetValue", f, values[f.key])
            for f in fields:
                if problems.get(f.key) is None:
                    problems[f.key] = self.try_read(s, obj, f)
            for f in fields:
                self.field_line(use, f, problems.get(f.key), did(f, self.found.options))
            if use.lines:
                self._lines(s, use, obj, values)
        finally:
            com.quietly(obj.nClear)

    def _lines(self, s: com.Session, use: Use, header: Any, values: dict[str, Any]) -> None:
        lines = header.oLines
        if com.rc(lines.nAddLine()) == 0:
            self.add(FAIL, f"{self.names.name(use.key)} oLines", f"nAddLine refused: {said_by(lines, '')}")
            return
        for f in use.lines:
            problem = self.set(lines, "nSetValue", f, values[f.key]) or self.try_read(s, lines, f)
            self.field_line(use, f, problem, "set on a new line, read", lines=True)

    def set(self, obj: Any, method: str, f: Field, value: Any) -> str | None:
        if value is None:
            return "not tried: give --bank-code (the bank code the product deposits to)"
        answer = com.rc(getattr(obj, method)(self.names.name(f.key), value))
        if answer == 0:
            return f"{method} refused it: {said_by(obj, 'no reason given')}"
        return None

    def try_read(self, s: com.Session, obj: Any, f: Field) -> str | None:
        try:
            s.get(obj, self.names.name(f.key))
        except SageRuleError as exc:
            return f"nGetValue refused it: {clause(exc.message)}"
        return None

    def field_line(self, use: Use, f: Field, problem: str | None, did: str, lines: bool = False) -> None:
        title = f"{self.names.name(use.key)}{' oLines' if lines else ''} {self.names.name(f.key)}"
        if problem is None:
            self.add(PASS, title, f"{did} ({f.key})")
        else:
            self.add(FAIL, title, f"{problem}. {rename_hint(f.key)}")

    def _methods(self, obj: Any, use: Use) -> None:
        """The methods the backend calls on an entry object, looked up without calling them."""
        n = self.names
        object_name = n.name(use.key)
        if use.key == "deposit_bus":
            method = n.next_deposit_no_method
            if not method:
                self.add(
                    SKIP,
                    "deposit numbering",
                    "next_deposit_no_method is empty: nSetKey numbers a new deposit (--rehearse tries it)",
                )
            elif com.has_method(obj, method):
                self.add(
                    PASS,
                    f"{object_name} {method}",
                    "the object has it (not called here: it takes Sage's next deposit number; --rehearse calls it)",
                )
            else:
                self.add(
                    FAIL,
                    f"{object_name} {method}",
                    f'the object has no {method}: write next_deposit_no_method = "<Sage\'s method>", or '
                    'next_deposit_no_method = "" to let nSetKey number a new deposit, in a --boi-names file',
                )
        batch_methods = [n.select_batch_method] + ([n.new_batch_method] if use.key == "deposit_bus" else [])
        if not self.options.batch_entry:
            self.add(SKIP, f"{object_name} batches", f"batch entry is off: {', '.join(batch_methods)} not used")
            return
        for method, key in zip(batch_methods, ("select_batch_method", "new_batch_method"), strict=False):
            if com.has_method(obj, method):
                self.add(PASS, f"{object_name} {method}", "the object has it (batch entry is on)")
            else:
                self.add(FAIL, f"{object_name} {method}", f"the object has no {method}. {rename_hint(key)}")
