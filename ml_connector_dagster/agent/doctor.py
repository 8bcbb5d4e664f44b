"""`ml-connector agent doctor`: the check a customer runs on the Sage server before going live.

Read-only: it goes through what the BOI backend does, in the same order and with the same names
(`BOINames`, overrides included), and writes nothing. ProvideX reachable, the logon, the company, each task,
each business object, every field the backend reads or sets (set on a new record that is then cleared,
never written), which form of the by-reference `nGetValue` works on this machine, how `nEOF` reads, the
methods the backend calls, and the company options that change entry. One `Check` per line: PASS, FAIL
with what to change (most often the BOINames key to write in a --boi-names file), or SKIP (not used with
these options, or only a rehearsal can try it).

The entry objects' checks are in doctor_entry.py; the `Check` lines and what the checks share in
doctor_report.py. `rehearse` (doctor_rehearsal.py) then writes a real deposit and cash receipt through the
agent's backend and removes them again: only ever on a test company (the command refuses others).

COM is reached through `dispatch` and by-reference VARIANTs through `variant`: pywin32 on the Sage server, the
recording fake in the tests, the simulated company's stand-in with `--backend simulated`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..sage100.model import Credentials, SageRuleError
from . import boi_com as com
from .boi_entry import OptionSettings, flag
from .boi_names import KEY, USES, BOINames, Field, Use
from .doctor_entry import EntryChecks
from .doctor_report import FAIL, MATCHABLE, PASS, SKIP, Check, Found, Probe, Stop, clause, rename_hint, said, said_by

SENTINEL = "\x00ml-connector doctor"  # what a by-reference argument holds until Sage fills it


class Doctor:
    """The read-only checks, in the order the backend works."""

    def __init__(
        self,
        dispatch: Callable[[str], Any],
        home: str,
        names: BOINames,
        credentials: Credentials,
        probe: Probe,
        variant: Callable[[Any], Any] = com.win32_variant,
        option_settings: OptionSettings | None = None,
    ) -> None:
        self.dispatch, self.home, self.names = dispatch, home, names
        self.credentials, self.probe = credentials, probe
        self.variant = variant
        self.option_settings = option_settings or OptionSettings()
        self.checks: list[Check] = []
        self.found = Found(customer=probe.customer)
        self.entry = EntryChecks(names, probe, self.found, self.add)
        self._form_checked = False

    def add(self, status: str, title: str, detail: str) -> bool:
        self.checks.append(Check(status, title, detail))
        return status != FAIL

    def run(self) -> list[Check]:
        script = ss = None
        session: com.Session | None = None
        try:
            script = self._script()
            ss = self._session(script)
            session = com.Session(script, ss, com.ByRef(self.names.get_value_form, self.variant))
            for task_key in ("read_task", "receipts_task"):
                task_works = self._task(ss, task_key)
                for use in (u for u in USES if task_key in u.tasks):
                    if task_works:
                        self._object(session, use, task_key)
                    elif use.tasks.index(task_key) == 0:
                        self.add(
                            SKIP,
                            f"object {self.names.name(use.key)}",
                            f"not tried: it is opened under {self.names.name(task_key)} (see above)",
                        )
        except Stop:
            pass
        except Exception as exc:  # noqa: BLE001 - a COM error no check expected: said in one line, not a traceback
            self.add(FAIL, "doctor", f"stopped: {said(exc)}")
        finally:
            for obj in reversed(session.objects if session else []):
                com.quietly(obj.DropObject)
            if ss is not None:
                com.quietly(ss.nCleanup)
                com.quietly(ss.DropObject)
        return self.checks

    # --- ProvideX, the session ----------------------------------------------------------------------------

    def _script(self) -> Any:
        progid = self.names.script_progid
        try:
            script = self.dispatch(progid)
        except Exception as exc:  # noqa: BLE001 - whatever COM (or its absence) raised, said in one line
            self.add(
                FAIL,
                "ProvideX",
                f"cannot create COM object {progid} ({said(exc)}): Sage 100 must be installed on this machine "
                f"and its company set to allow external access. {rename_hint('script_progid')}",
            )
            raise Stop from None
        try:
            script.Init(self.home)
        except Exception as exc:  # noqa: BLE001
            self.add(FAIL, "ProvideX", f"Init({self.home}) failed ({said(exc)}): give --mas90-home Sage's MAS90\\Home")
            raise Stop from None
        self.add(PASS, "ProvideX", f"{progid} created; Init({self.home}) accepted")
        return script

    def _session(self, script: Any) -> Any:
        n, c = self.names, self.credentials
        try:
            ss = script.NewObject(n.session)
        except Exception as exc:  # noqa: BLE001
            self.add(FAIL, "session", f"NewObject({n.session}) failed ({said(exc)}). {rename_hint('session')}")
            raise Stop from None
        self.add(PASS, "session", f"{n.session} created")
        self._require(
            ss,
            ss.nSetUser(c.username, c.password),
            "logon",
            f"user {c.username} accepted",
            f"Sage refused user {c.username}",
            "check the user and password (a Sage user, not Windows')",
        )
        self._require(
            ss,
            ss.nSetCompany(c.company_code),
            "company",
            f"company {c.company_code} opened",
            f"Sage refused company {c.company_code}",
            "check the company code and that the company allows external access",
        )
        day = self.probe.today.strftime("%Y%m%d")
        self._require(
            ss,
            ss.nSetDate(n.module, day),
            "module and date",
            f"nSetDate({n.module}, {day}) accepted",
            f"nSetDate({n.module}, {day}) refused",
            rename_hint("module"),
        )
        self._require(
            ss,
            ss.nSetModule(n.module),
            "module and date",
            f"nSetModule({n.module}) accepted",
            f"nSetModule({n.module}) refused",
            "is Accounts Receivable installed for this company?",
        )
        return ss

    def _require(self, obj: Any, answer: Any, title: str, ok: str, refused: str, fix: str) -> None:
        if com.rc(answer) == 0:
            self.add(FAIL, title, f"{refused}: {said_by(obj, 'no reason given')}. {fix}")
            raise Stop
        self.add(PASS, title, ok)

    def _task(self, ss: Any, task_key: str) -> bool:
        task = self.names.name(task_key)
        title = f"task {task}"
        try:
            found = ss.nLookupTask(task)
            if not found:
                return self.add(
                    FAIL, title, f"nLookupTask found no task {task}: {said_by(ss, '')}. {rename_hint(task_key)}"
                )
            if com.rc(ss.nSetProgram(found)) == 0:
                return self.add(
                    FAIL,
                    title,
                    f"nSetProgram refused it: {said_by(ss, 'no reason given')}. The user may lack rights "
                    "to the task in Sage's role maintenance.",
                )
        except Exception as exc:  # noqa: BLE001
            return self.add(FAIL, title, f"looking it up failed ({said(exc)}). {rename_hint(task_key)}")
        return self.add(PASS, title, f"nLookupTask found it; nSetProgram accepted it ({task_key})")

    # --- business objects ----------------------------------------------------------------------------------

    def _object(self, s: com.Session, use: Use, task_key: str) -> None:
        name = self.names.name(use.key)
        title = f"object {name}"
        try:
            obj = s.new(name)
        except Exception as exc:  # noqa: BLE001
            self.add(FAIL, title, f"NewObject({name}) failed ({said(exc)}). {rename_hint(use.key)}")
            return
        task = self.names.name(task_key)
        if use.tasks.index(task_key) > 0:  # its fields were checked under the first task
            self.add(PASS, title, f"opened under {task} too")
            return
        self.add(PASS, title, f"opened under {task} ({use.key})")
        try:
            if not name.endswith("_bus"):
                self._service(s, use, obj)
            elif use.key == "deposit_bus":
                self.entry.deposit(s, use, obj)
            else:
                self.entry.receipt(s, use, obj)
        except Exception as exc:  # noqa: BLE001 - a COM error the checks did not expect: said, and go on
            self.add(FAIL, title, f"checking its fields failed ({said(exc)})")

    def _service(self, s: com.Session, use: Use, obj: Any) -> None:
        """A service object: its first record read field by field (an empty table still names its fields)."""
        if not self._form_checked:
            self._form_checked = True
            self._eof_form(obj)
            self._get_value_form(obj, self.names.name(use.fields[0].key))
        obj.nMoveFirst()
        at_end = com.eof(obj)
        values: dict[str, Any] = {}
        problems = {f.key: self._read(s, obj, f, values) for f in use.fields}
        if use.key == "options_svc":
            for f in use.fields:
                self._option(f, values.get(f.row), problems[f.key])
            return
        if use.key == "customer_svc" and self.found.customer is None and not at_end:
            self.found.customer = (com.text(values.get("ARDivisionNo")), com.text(values.get("CustomerNo")))
        for f in use.fields:
            if f.access == KEY and problems[f.key] is None and self.found.customer is not None:
                problems[f.key] = self.entry.set(obj, "nSetKeyValue", f, self._key_value(f))
            self.entry.field_line(use, f, problems[f.key], "read, key part set" if f.access == KEY else "read")
        if use.key == "customer_svc":
            self._customer(obj)
        if use.key == "open_invoice_svc":
            self._pick_invoice(s, obj)

    def _customer(self, obj: Any) -> None:
        customer = self.found.customer
        if customer is None:
            self.add(FAIL, "test customer", "Sage lists no customer: give --customer DIVISION-NUMBER")
        elif com.rc(obj.nFind()) == 1:
            self.add(PASS, "test customer", f"{'-'.join(customer)} found (new records below are tried for it)")
        else:
            self.add(FAIL, "test customer", f"{'-'.join(customer)} is not on file: give --customer DIVISION-NUMBER")
            self.found.customer = None

    def _read(self, s: com.Session, obj: Any, f: Field, values: dict[str, Any]) -> str | None:
        try:
            values[f.row] = s.get(obj, self.names.name(f.key))
        except SageRuleError as exc:
            return f"nGetValue refused it: {clause(exc.message)}"
        return None

    def _key_value(self, f: Field) -> str:
        customer = self.found.customer or ("", "")
        return {"ar_division_no": customer[0], "customer_no": customer[1]}[f.key]

    def _pick_invoice(self, s: com.Session, obj: Any) -> None:
        """The probe customer's first invoice that can take a receipt line (for the line fields)."""
        n = self.names
        wanted = {"customer": n.customer_no, "division": n.ar_division_no, "no": n.invoice_no, "type": n.invoice_type}
        try:
            for row in s.rows(obj, wanted):
                if (com.text(row["division"]), com.text(row["customer"])) == self.found.customer and com.text(
                    row["type"]
                ) in MATCHABLE:
                    self.found.invoice = (com.text(row["no"]), com.text(row["type"]))
                    return
        except SageRuleError:
            return  # the field lines above already say which name Sage refused

    def _option(self, f: Field, value: Any, problem: str | None) -> None:
        setting = getattr(self.option_settings, f.row)
        sage_name = self.names.name(f.key)
        label = {"require_deposit_amount": "Require Deposit Amount", "batch_entry": "batch entry"}[f.row]
        if setting is not None:
            self.found.options[f.row] = setting
            self.add(
                PASS if problem is None else SKIP,
                f"option {label}",
                f"{'on' if setting else 'off'}, as the agent is told (--{'' if setting else 'no-'}"
                f"{f.row.replace('_', '-')}); {sage_name} "
                + ("reads too" if problem is None else f"is not read: {problem}"),
            )
            return
        if problem is None:
            try:
                self.found.options[f.row] = flag(value, sage_name)
            except SageRuleError as exc:
                problem = clause(exc.message)
        if problem is not None:
            self.add(
                FAIL,
                f"option {label}",
                f"{self.names.options_svc} {sage_name}: {problem}. {rename_hint(f.key)} Or tell the agent: "
                f"--{f.row.replace('_', '-')} or --no-{f.row.replace('_', '-')}.",
            )
            return
        on = self.found.options[f.row]
        effect = {
            "require_deposit_amount": "the agent enters CashDepositAmt" if on else "Sage totals the deposit",
            "batch_entry": "each deposit of the agent's goes into a batch of its own" if on else "no batches",
        }[f.row]
        self.add(
            PASS,
            f"option {label}",
            f"{'on' if on else 'off'} ({self.names.options_svc} {sage_name} = {com.text(value)!r}): {effect}",
        )

    # --- the forms pywin32 presents ------------------------------------------------------------------------

    def _eof_form(self, obj: Any) -> None:
        try:
            value = obj.nEOF
            how = "read as a property"
            if callable(value):
                com.property_get(obj, "nEOF")
                how = "pywin32 made it a method: read through IDispatch's property-get instead, never called"
        except Exception as exc:  # noqa: BLE001
            self.add(FAIL, "nEOF", f"reading it failed ({said(exc)})")
            return
        self.add(PASS, "nEOF", how)

    def _get_value_form(self, obj: Any, field_name: str) -> None:
        """Both forms tried on one field: a plain call answering (ret, value), and a by-reference VARIANT."""
        initial: Any = SENTINEL if field_name.endswith("$") else 0
        tuple_works = variant_works = False
        try:
            answer = obj.nGetValue(field_name, initial)
            tuple_works = isinstance(answer, tuple) and com.rc(answer) != 0
        except Exception:  # noqa: BLE001 - this form does not work here
            pass
        try:
            holder = self.variant(initial)
            answer = obj.nGetValue(field_name, holder)
            variant_works = com.rc(answer) != 0 and (isinstance(answer, tuple) or holder.value != initial)
        except Exception:  # noqa: BLE001 - this form does not work here (or no pywin32 VARIANT)
            pass
        configured = self.names.get_value_form
        works = {"auto": tuple_works or variant_works, "tuple": tuple_works, "variant": variant_works}[configured]
        found = (
            f"tuple (ret, value): {'works' if tuple_works else 'no value back'}; "
            f"by-reference VARIANT: {'works' if variant_works else 'no value back'}"
        )
        if works:
            self.add(PASS, "nGetValue by reference", f"{found}; get_value_form {configured} works here")
        elif tuple_works or variant_works:
            working = "tuple" if tuple_works else "variant"
            self.add(
                FAIL,
                "nGetValue by reference",
                f'{found}; get_value_form {configured} does not: write get_value_form = "{working}" '
                '(or "auto") in a --boi-names file',
            )
        else:
            self.add(
                FAIL, "nGetValue by reference", f"{found}: no form hands a value back ({field_name} on this object)"
            )
