"""`ml-connector agent doctor`: the check a customer runs on the Sage server before going live.

Read-only: it goes through what the BOI backend does, in the same order and with the same names
(`BOINames`, overrides included), and writes nothing. ProvideX reachable, the logon, the company, each task,
each business object, every field the backend reads or sets (set on a new record that is then cleared,
never written), which form of the by-reference `nGetValue` works on this machine, how `nEOF` reads, the
methods the backend calls, and the company options that change entry. One `Check` per line: PASS, FAIL
with what to change (most often the BOINames key to write in a --boi-names file), or SKIP (not used with
these options, or only a rehearsal can try it).

`rehearse` then writes a real deposit and cash receipt through the agent's backend and removes them again:
only ever on a test company (the command refuses others).

COM is reached through `dispatch` and by-reference VARIANTs through `variant`: pywin32 on the Sage server, the
recording fake in the tests, the simulated company's stand-in with `--backend simulated`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from ..sage100.model import CashReceipt, CashReceiptRequest, Credentials, InvoiceRecord, ReceiptLine, SageRuleError
from . import boi_com as com
from .backends import Backend
from .boi_entry import DEPOSIT_DESC, EntryOptions, OptionSettings, flag
from .boi_names import KEY, SET, USES, BOINames, Field, Use

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
PROBE_CHECK_NO = "MLDOCTOR"  # the check number set on the new receipt the doctor never writes
SENTINEL = "\x00ml-connector doctor"  # what a by-reference argument holds until Sage fills it
MATCHABLE = ("IN", "DM", "FC")


@dataclass(frozen=True)
class Check:
    status: str
    title: str
    detail: str


@dataclass(frozen=True)
class Probe:
    """The values the read-only checks set on new records, real ones so that Sage's validation lets the field
    names be tried: the bank code the product deposits to, a customer (None: the first Sage lists)."""

    today: date
    bank_code: str | None
    customer: tuple[str, str] | None = None


def rename_hint(key: str) -> str:
    return f'If Sage names it otherwise, write {key} = "<Sage\'s name>" in a --boi-names file.'


class Stop(Exception):
    """A check failed that the rest depend on (no ProvideX, no logon, ...)."""


@dataclass
class _Found:
    """What the checks learn on the way, for the checks after them."""

    customer: tuple[str, str] | None = None
    invoice: tuple[str, str] | None = None
    options: dict[str, bool] = field(default_factory=dict)
    deposits: list[str] = field(default_factory=list)


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
        self.found = _Found(customer=probe.customer)
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
            self.add(FAIL, "doctor", f"stopped: {_said(exc)}")
        finally:
            for obj in reversed(session.objects if session else []):
                com.quietly(obj.DropObject)
            if ss is not None:
                com.quietly(ss.nCleanup)
                com.quietly(ss.DropObject)
        return self.checks

    @property
    def options(self) -> EntryOptions:
        return EntryOptions(
            self.found.options.get("require_deposit_amount", False), self.found.options.get("batch_entry", False)
        )

    # --- ProvideX, the session ----------------------------------------------------------------------------

    def _script(self) -> Any:
        progid = self.names.script_progid
        try:
            script = self.dispatch(progid)
        except Exception as exc:  # noqa: BLE001 - whatever COM (or its absence) raised, said in one line
            self.add(
                FAIL,
                "ProvideX",
                f"cannot create COM object {progid} ({_said(exc)}): Sage 100 must be installed on this machine "
                f"and its company set to allow external access. {rename_hint('script_progid')}",
            )
            raise Stop from None
        try:
            script.Init(self.home)
        except Exception as exc:  # noqa: BLE001
            self.add(FAIL, "ProvideX", f"Init({self.home}) failed ({_said(exc)}): give --mas90-home Sage's MAS90\\Home")
            raise Stop from None
        self.add(PASS, "ProvideX", f"{progid} created; Init({self.home}) accepted")
        return script

    def _session(self, script: Any) -> Any:
        n, c = self.names, self.credentials
        try:
            ss = script.NewObject(n.session)
        except Exception as exc:  # noqa: BLE001
            self.add(FAIL, "session", f"NewObject({n.session}) failed ({_said(exc)}). {rename_hint('session')}")
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
            self.add(FAIL, title, f"{refused}: {_said_by(obj, 'no reason given')}. {fix}")
            raise Stop
        self.add(PASS, title, ok)

    def _task(self, ss: Any, task_key: str) -> bool:
        task = self.names.name(task_key)
        title = f"task {task}"
        try:
            found = ss.nLookupTask(task)
            if not found:
                return self.add(
                    FAIL, title, f"nLookupTask found no task {task}: {_said_by(ss, '')}. {rename_hint(task_key)}"
                )
            if com.rc(ss.nSetProgram(found)) == 0:
                return self.add(
                    FAIL,
                    title,
                    f"nSetProgram refused it: {_said_by(ss, 'no reason given')}. The user may lack rights "
                    "to the task in Sage's role maintenance.",
                )
        except Exception as exc:  # noqa: BLE001
            return self.add(FAIL, title, f"looking it up failed ({_said(exc)}). {rename_hint(task_key)}")
        return self.add(PASS, title, f"nLookupTask found it; nSetProgram accepted it ({task_key})")

    # --- business objects ----------------------------------------------------------------------------------

    def _object(self, s: com.Session, use: Use, task_key: str) -> None:
        name = self.names.name(use.key)
        title = f"object {name}"
        try:
            obj = s.new(name)
        except Exception as exc:  # noqa: BLE001
            self.add(FAIL, title, f"NewObject({name}) failed ({_said(exc)}). {rename_hint(use.key)}")
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
                self._deposit(s, use, obj)
            else:
                self._receipt(s, use, obj)
        except Exception as exc:  # noqa: BLE001 - a COM error the checks did not expect: said, and go on
            self.add(FAIL, title, f"checking its fields failed ({_said(exc)})")

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
                problems[f.key] = self._set(obj, "nSetKeyValue", f, self._key_value(f))
            self._field_line(use, f, problems[f.key], "read, key part set" if f.access == KEY else "read")
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
            return f"nGetValue refused it: {_clause(exc.message)}"
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
                problem = _clause(exc.message)
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
            self.add(FAIL, "nEOF", f"reading it failed ({_said(exc)})")
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

    # --- the entry objects, on new records never written ---------------------------------------------------------

    def _deposit(self, s: com.Session, use: Use, obj: Any) -> None:
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

    def _receipt(self, s: com.Session, use: Use, obj: Any) -> None:
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
                    problems[f.key] = self._set(obj, "nSetKeyValue", f, values[f.key])
            answer = com.rc(obj.nSetKey())
            if answer != 2:
                reason = _said_by(obj, "no reason given") if answer == 0 else "an existing record (1)"
                self.add(
                    FAIL,
                    f"object {self.names.name(use.key)}",
                    f"nSetKey on a new {what} gave {reason}; its other fields were not tried: run --rehearse on "
                    "a test company to try the whole write",
                )
                for f in fields:
                    if f.access == KEY:
                        self._field_line(use, f, problems[f.key], "key part")
                return
            for f in fields:
                if f.access == SET and (not f.when or self.found.options.get(f.when, False)):
                    problems[f.key] = self._set(obj, "nSetValue", f, values[f.key])
            for f in fields:
                if problems.get(f.key) is None:
                    problems[f.key] = self._try_read(s, obj, f)
            for f in fields:
                self._field_line(use, f, problems.get(f.key), _did(f, self.found.options))
            if use.lines:
                self._lines(s, use, obj, values)
        finally:
            com.quietly(obj.nClear)

    def _lines(self, s: com.Session, use: Use, header: Any, values: dict[str, Any]) -> None:
        lines = header.oLines
        if com.rc(lines.nAddLine()) == 0:
            self.add(FAIL, f"{self.names.name(use.key)} oLines", f"nAddLine refused: {_said_by(lines, '')}")
            return
        for f in use.lines:
            problem = self._set(lines, "nSetValue", f, values[f.key]) or self._try_read(s, lines, f)
            self._field_line(use, f, problem, "set on a new line, read", lines=True)

    def _set(self, obj: Any, method: str, f: Field, value: Any) -> str | None:
        if value is None:
            return "not tried: give --bank-code (the bank code the product deposits to)"
        answer = com.rc(getattr(obj, method)(self.names.name(f.key), value))
        if answer == 0:
            return f"{method} refused it: {_said_by(obj, 'no reason given')}"
        return None

    def _try_read(self, s: com.Session, obj: Any, f: Field) -> str | None:
        try:
            s.get(obj, self.names.name(f.key))
        except SageRuleError as exc:
            return f"nGetValue refused it: {_clause(exc.message)}"
        return None

    def _field_line(self, use: Use, f: Field, problem: str | None, did: str, lines: bool = False) -> None:
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


def _did(f: Field, options: dict[str, bool]) -> str:
    if f.access == KEY:
        return "key part set, read"
    if f.access == SET and (not f.when or options.get(f.when, False)):
        return "set on a new record, read"
    if f.access == SET:
        return f"read (set only when {f.when.replace('_', ' ')} is on)"
    return "read"


def _clause(text: str) -> str:
    """Sage's message as a clause, so that a sentence can follow it."""
    return text.strip().rstrip(".") or "no reason given"


def _said_by(obj: Any, default: str) -> str:
    return _clause(com.message(obj, default))


def _said(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]


# --- the rehearsal: a real receipt written and removed -----------------------------------------------------------


def rehearse(
    backend: Backend,
    credentials: Credentials,
    customer: tuple[str, str],
    bank_code: str,
    today: date,
    amount: Decimal = Decimal("0.01"),
    discard_deposit: Callable[[str], bool] | None = None,
) -> list[Check]:
    """Write a cash receipt (and so a deposit) for the customer through the backend, see Sage count it, and
    remove both again: the write path end to end, on a test company."""
    checks: list[Check] = []
    division, customer_no = customer
    try:
        invoice = _open_invoice(backend.get_open_invoices(credentials, division, customer_no), amount)
    except SageRuleError as exc:
        return [Check(FAIL, "rehearse", f"cannot read customer {division}-{customer_no}'s invoices: {exc.message}")]
    if invoice is None:
        return [
            Check(
                FAIL,
                "rehearse",
                f"customer {division}-{customer_no} has no invoice with {amount} open: give --customer",
            )
        ]
    key = f"DOCTOR-{today:%Y%m%d}-{uuid.uuid4().hex[:8]}"
    request = CashReceiptRequest(
        key,
        today,
        bank_code,
        division,
        customer_no,
        amount,
        "ml-connector agent doctor",
        (ReceiptLine(invoice.InvoiceNo, invoice.InvoiceType, amount),),
    )
    try:
        receipt = backend.create_cash_receipt(credentials, request)
    except SageRuleError as exc:
        return [Check(FAIL, "rehearse: write", f"Sage refused the receipt: {exc.code}: {exc.message}")]
    checks.append(
        Check(
            PASS,
            "rehearse: write",
            f"receipt {receipt.check_no} of {amount} on invoice {invoice.InvoiceNo} in deposit {receipt.deposit_no}",
        )
    )
    try:
        checks += _after_write(backend, credentials, receipt, invoice, amount)
    except SageRuleError as exc:
        checks.append(Check(FAIL, "rehearse: read back", f"{exc.code}: {exc.message}"))
    finally:
        checks += _remove(backend, credentials, receipt, invoice, discard_deposit)
    return checks


def _open_invoice(invoices: list[InvoiceRecord], amount: Decimal) -> InvoiceRecord | None:
    return next(
        (i for i in invoices if i.InvoiceType in MATCHABLE and i.Balance - i.PaymentsToday >= amount),
        None,
    )


def _invoice_now(backend: Backend, credentials: Credentials, invoice: InvoiceRecord) -> InvoiceRecord | None:
    now = backend.get_open_invoices(credentials, invoice.ARDivisionNo, invoice.CustomerNo)
    return next((i for i in now if i.key == invoice.key), None)


def _after_write(
    backend: Backend, credentials: Credentials, receipt: CashReceipt, invoice: InvoiceRecord, amount: Decimal
) -> list[Check]:
    checks: list[Check] = []
    found = backend.find_cash_receipt(credentials, receipt.idempotency_key)
    checks.append(
        Check(PASS, "rehearse: find", f"FindCashReceipt returns it ({found.status})")
        if found is not None and found.receipt_id == receipt.receipt_id
        else Check(FAIL, "rehearse: find", f"FindCashReceipt returned {found!r} for {receipt.idempotency_key}")
    )
    now = _invoice_now(backend, credentials, invoice)
    if now is None:
        checks.append(Check(FAIL, "rehearse: PaymentsToday", f"invoice {invoice.InvoiceNo} is no longer listed"))
    elif now.PaymentsToday - invoice.PaymentsToday == amount:
        checks.append(
            Check(
                PASS,
                "rehearse: PaymentsToday",
                f"invoice {invoice.InvoiceNo}: PaymentsToday {invoice.PaymentsToday} -> {now.PaymentsToday}, "
                f"Balance {invoice.Balance} -> {now.Balance}",
            )
        )
    else:
        checks.append(
            Check(
                FAIL,
                "rehearse: PaymentsToday",
                f"invoice {invoice.InvoiceNo}: PaymentsToday {invoice.PaymentsToday} -> {now.PaymentsToday}, not "
                f"raised by {amount}: the open amount the agent checks would be wrong (see payments_today)",
            )
        )
    return checks


def _remove(
    backend: Backend,
    credentials: Credentials,
    receipt: CashReceipt,
    invoice: InvoiceRecord,
    discard_deposit: Callable[[str], bool] | None,
) -> list[Check]:
    try:
        reversed_ = backend.reverse_cash_receipt(credentials, receipt.idempotency_key, "ml-connector agent doctor")
    except SageRuleError as exc:
        return [
            Check(
                FAIL,
                "rehearse: remove",
                f"the receipt {receipt.check_no} in deposit {receipt.deposit_no} could not be removed ({exc.message}): "
                "delete it in Sage's Cash Receipts Entry",
            )
        ]
    checks = [Check(PASS, "rehearse: remove", f"receipt {receipt.check_no} deleted from entry ({reversed_.status})")]
    now = _invoice_now(backend, credentials, invoice)
    if now is not None and now.PaymentsToday != invoice.PaymentsToday:
        checks.append(
            Check(
                FAIL,
                "rehearse: remove",
                f"invoice {invoice.InvoiceNo}'s PaymentsToday is {now.PaymentsToday}, was {invoice.PaymentsToday}",
            )
        )
    if discard_deposit is not None:
        try:
            gone = discard_deposit(receipt.deposit_no)
        except SageRuleError as exc:
            gone, why = False, exc.message
        else:
            why = "Sage no longer has it"
        checks.append(
            Check(PASS, "rehearse: deposit", f"deposit {receipt.deposit_no} deleted")
            if gone
            else Check(
                FAIL, "rehearse: deposit", f"deposit {receipt.deposit_no} not deleted ({why}): delete it in Sage"
            )
        )
    return checks


def failed(checks: list[Check]) -> bool:
    return any(c.status == FAIL for c in checks)


__all__ = ["FAIL", "PASS", "SKIP", "Check", "Doctor", "Probe", "failed", "rehearse"]
