"""A recording fake of Sage 100's BOI COM objects (`ProvideX.Script` and what it makes), for the BOI backend tests.

It answers like ProvideX does (1 success, 0 failure with sLastErrorMsg, -1 warning), records every call,
and keeps what is written: `nSetKeyValue`/`nSetKey` find a record (1) or start a new one (2), `nWrite`
stores the record in `tables[<object name>]`, `nDelete` removes it. As in Sage, a receipt written raises the
`PaymentsToday` of the invoices it applies to (deleting it lowers it again), and `update_journal()` does what
Sage's Cash Receipts Journal update does: `Balance` falls, `PaymentsToday` returns to 0, and unposted entries
move into the history tables. Answers for chosen calls
can be scripted through `answers`.

It knows Sage's names the way a real installation would: the objects (`objects`), tasks (`tasks`) and
each object's fields (`columns`; a name it does not know is refused with rc 0 and a message), the methods
(`missing_methods` are unknown to IDispatch). It answers in the forms public code shows and pywin32 may
present:
- `nEOF` is a property; with `eof="method"`, a type library made it a method (pywin32 hands back a callable
  that must not be called), and the property is read through `_oleobj_.Invoke(..., DISPATCH_PROPERTYGET)`;
- a by-reference argument (`nGetValue(name, value)`, `nGetNextDepositNo(number)`, `nSelectNewBatch(batch,
  ...)`) comes back as a tuple `(ret, value)` (`get_value_form="tuple"`, a type-library dispatch), or, late
  bound (`"variant"`), only through a by-reference `FakeVariant` passed in (a plain value is lost).
"""

from __future__ import annotations

from datetime import date
from typing import Any

HOME = r"C:\Sage\Sage 100\MAS90\Home"
TODAY = date(2026, 11, 25)
CUSTOMERS = [
    {
        "ARDivisionNo$": "01",
        "CustomerNo$": "ABF",
        "CustomerName$": "American Business Futures",
        "EmailAddress$": "ap@abf.example",
        "CurrentBalance": 1650.0,
        "CustomerStatus$": "A",
        "DateUpdated$": "20261120",
        "TimeUpdated$": "9.5",
    }
]
INVOICES = [
    {
        "ARDivisionNo$": "01",
        "CustomerNo$": "ABF",
        "InvoiceNo$": "0100030",
        "InvoiceType$": "IN",
        "InvoiceDate$": "20261001",
        "InvoiceDueDate$": "20261031",
        "Balance": 1200.0,
        "PaymentsToday": 0.0,
        "DateUpdated$": "20261120",
        "TimeUpdated$": "9.5",
    },
    {
        "ARDivisionNo$": "01",
        "CustomerNo$": "ABF",
        "InvoiceNo$": "0100031",
        "InvoiceType$": "IN",
        "InvoiceDate$": "20261015",
        "InvoiceDueDate$": "20261114",
        "Balance": 450.1 - 0.1,
        "PaymentsToday": 0.0,
        "DateUpdated$": "20261121",
        "TimeUpdated$": "13:45:00",
    },
]
CUSTOMERS_SVC = "AR_Customer_svc"
INVOICES_SVC = "AR_OpenInvoice_svc"
OPTIONS = "AR_Options_svc"
RECEIPTS = "AR_CashReceipts_bus"
DEPOSITS = "AR_CashReceiptsDeposit_bus"
HISTORY = "AR_CashReceiptsHistory_svc"
PAYMENT_HISTORY = "AR_TransactionPaymentHistory_svc"
# Read-only views of what is in entry (GetUnpostedReceipts): the deposits, headers and lines written above.
UNPOSTED_DEPOSITS = "AR_CashReceiptsDeposit_svc"
UNPOSTED_HEADERS = "AR_CashReceiptsHeader_svc"
UNPOSTED_LINES = "AR_CashReceiptsDetail_svc"
LINES = "lines"  # the receipt's oLines
# Sage's names as this fake installation has them.
COLUMNS: dict[str, set[str]] = {
    CUSTOMERS_SVC: set(CUSTOMERS[0]),
    INVOICES_SVC: set(INVOICES[0]),
    OPTIONS: {"RequireDepositAmt$", "CashReceiptsBatchEntry$"},
    DEPOSITS: {"DepositNo$", "BankCode$", "DepositDate$", "DepositDesc$", "CashDepositAmt", "BatchNo$"},
    RECEIPTS: {"DepositNo$", "ARDivisionNo$", "CustomerNo$", "CheckNo$", "PostingAmt", "Comment$", "BatchNo$"},
    LINES: {"InvoiceNo$", "InvoiceType$", "AmountPosted"},
    HISTORY: {
        "BankCode$",
        "DepositDate$",
        "DepositNo$",
        "DepositType$",
        "ARDivisionNo$",
        "CustomerNo$",
        "CreditCardEntryNo$",
        "CheckNo$",
        "SequenceNo$",
        "InvoiceNo$",
        "CashAmountApplied",
    },
    PAYMENT_HISTORY: {"ARDivisionNo$", "CustomerNo$", "InvoiceNo$", "CheckNo$", "PaymentReference$", "TransactionAmt"},
    UNPOSTED_DEPOSITS: {"DepositNo$", "BankCode$", "DepositDate$", "DepositDesc$", "CashDepositAmt", "BatchNo$"},
    UNPOSTED_HEADERS: {"DepositNo$", "ARDivisionNo$", "CustomerNo$", "CheckNo$", "PostingAmt", "Comment$", "BatchNo$"},
    UNPOSTED_LINES: {
        "DepositNo$",
        "ARDivisionNo$",
        "CustomerNo$",
        "CheckNo$",
        "SequenceNo$",
        "InvoiceNo$",
        "InvoiceType$",
        "AmountPosted",
    },
}
# Each read-only view of entry: the object whose columns it shares, and the key columns it adds.
VIEWS: dict[str, tuple[str, set[str]]] = {
    UNPOSTED_DEPOSITS: (DEPOSITS, set()),
    UNPOSTED_HEADERS: (RECEIPTS, set()),
    UNPOSTED_LINES: (LINES, {"DepositNo$", "ARDivisionNo$", "CustomerNo$", "CheckNo$", "SequenceNo$"}),
}
TASKS = {"AR_Customer_ui", "AR_CashReceipts_ui"}
BYREF = {"nGetValue": 1, "nGetNextDepositNo": 0, "nSelectNewBatch": 0}  # the by-reference argument's position
DISPATCH_PROPERTYGET = 2


class FakeComError(Exception):
    """What pywin32 raises when COM refuses a call (pywintypes.com_error)."""


class FakeVariant:
    """win32com.client.VARIANT(VT_BYREF | VT_VARIANT, value): a by-reference argument a late-bound call fills."""

    def __init__(self, value: Any) -> None:
        self.value = value


class FakeOle:
    """The IDispatch underneath (pywin32's `_oleobj_`): names looked up, properties read as properties."""

    def __init__(self, obj: FakeObject) -> None:
        self._obj = obj

    def GetIDsOfNames(self, name: str) -> int:
        self._obj._sage.calls.append((self._obj._name, "GetIDsOfNames", (name,)))
        if name in self._obj._sage.missing_methods:
            raise FakeComError(f"Unknown name: {name}")
        return abs(hash(name)) % 10_000 + 1

    def Invoke(self, dispid: int, lcid: int, flags: int, want_result: bool) -> Any:
        assert flags == DISPATCH_PROPERTYGET and dispid == self.GetIDsOfNames("nEOF")
        self._obj._sage.calls.append((self._obj._name, "GetProperty", ("nEOF",)))
        return self._obj._at_end()


class FakeObject:
    """One COM object: every method call is recorded; answers come from `answers`, the tables or the default 1."""

    def __init__(self, sage: FakeSage, name: str) -> None:
        self._sage, self._name, self._cursor = sage, name, 0
        self._key: dict[str, Any] = {}
        self._values: dict[str, Any] = {}
        self._lines: list[dict[str, Any]] = []
        self.sLastErrorMsg = ""
        self.sLastErrorNum = ""
        if name.endswith("_bus"):
            self.oLines = FakeObject(sage, LINES)
            self.oLines._header = self

    @property
    def _oleobj_(self) -> FakeOle:
        return FakeOle(self)

    @property
    def nEOF(self) -> Any:
        if self._sage.eof == "method":  # what pywin32 hands back when a type library calls nEOF a method

            def called_as_a_method(*args: Any) -> Any:
                self._sage.calls.append((self._name, "nEOF()", args))
                raise FakeComError("Member not found.")

            return called_as_a_method
        self._sage.calls.append((self._name, "nEOF", ()))
        return self._at_end()

    def _at_end(self) -> int:
        return int(self._cursor >= len(self._rows))

    @property
    def _rows(self) -> list[dict[str, Any]]:
        if self._name == UNPOSTED_DEPOSITS:
            return self._sage.tables.setdefault(DEPOSITS, [])
        if self._name == UNPOSTED_HEADERS:
            return self._sage.tables.setdefault(RECEIPTS, [])
        if self._name == UNPOSTED_LINES:
            return [
                {
                    **{k: header[k] for k in ("DepositNo$", "ARDivisionNo$", "CustomerNo$", "CheckNo$")},
                    "SequenceNo$": f"{sequence:06d}",
                    **line,
                }
                for header in self._sage.tables.get(RECEIPTS, [])
                for sequence, line in enumerate(header.get("lines", []), start=1)
            ]
        return self._sage.tables.setdefault(self._name, [])

    def __getattr__(self, method: str) -> Any:
        if method.startswith("_"):
            raise AttributeError(method)

        def call(*args: Any) -> Any:
            self._sage.calls.append((self._name, method, args))
            answer = self._sage.answers.get((self._name, method))
            if callable(answer):
                return answer(self, *args)
            if answer is not None:
                rc, message = answer if isinstance(answer, tuple) else (answer, "")
                self.sLastErrorMsg = message
                if rc == 0:
                    return rc
                self._answer(method, args)
                return rc
            return self._answer(method, args)

        return call

    def _answer(self, method: str, args: tuple) -> Any:
        """The default answer, by-reference values handed back in the form this fake installation uses."""
        if method not in BYREF:
            return self._default(method, args)
        position = BYREF[method]
        holder = args[position]
        plain = (*args[:position], holder.value if isinstance(holder, FakeVariant) else holder, *args[position + 1 :])
        rc, value = self._default(method, plain)
        if self._sage.get_value_form == "tuple":
            return rc, value
        if isinstance(holder, FakeVariant):
            holder.value = value
        return rc

    def _default(self, method: str, args: tuple) -> Any:
        if method == "NewObject":
            if args[0] not in self._sage.objects:
                raise FakeComError(f"NewObject: {args[0]} is not a ProvideX object")
            return FakeObject(self._sage, args[0])
        if method in ("nGetValue", "nSetValue", "nSetKeyValue") and not self._knows(args[0]):
            self.sLastErrorMsg = f"Column {args[0]} not found."
            return (0, None) if method == "nGetValue" else 0
        if method == "nMoveFirst":
            self._cursor = 0
        elif method == "nMoveNext":
            self._cursor += 1
        elif method == "nGetValue":
            row = self._rows[self._cursor] if self._cursor < len(self._rows) else self._values
            return 1, row.get(args[0])
        elif method == "nSetKeyValue":
            self._key[args[0]] = args[1]
        elif method == "nSetKey":
            return self._find()
        elif method == "nSetValue":
            self._values[args[0]] = args[1]
        elif method == "nAddLine":
            self._values = {}
        elif method == "nWrite":
            self._write()
        elif method == "nDelete":
            row = self._find_row()
            self._rows.remove(row)
            if self._name == RECEIPTS:
                self._sage.apply(row, -1)
            self._clear()
        elif method == "nClear":
            self._clear()
        elif method == "nLookupTask":
            if args[0] not in self._sage.tasks:
                self.sLastErrorMsg = f"Task {args[0]} not found."
                return 0
            return f"task:{args[0]}"
        elif method == "nGetNextDepositNo":
            self._sage.next_deposit_no += 1
            return 1, f"{self._sage.next_deposit_no - 1:05d}"
        elif method == "nSelectNewBatch":
            self._sage.next_batch_no += 1
            batch = f"{self._sage.next_batch_no - 1:05d}"
            self._sage.batches.add(batch)
            self._sage.selected_batch = batch
            return 1, batch
        elif method == "nSelectBatch":
            if args[0] not in self._sage.batches:
                self.sLastErrorMsg = f"Batch {args[0]} is not on file."
                return 0
            self._sage.selected_batch = args[0]
        elif method in ("Init", "DropObject"):
            return None
        return 1

    def _knows(self, field: str) -> bool:
        """A read-only view knows the columns of what it shows (one table in Sage: renaming one renames both)."""
        if self._name in VIEWS:
            underlying, extra = VIEWS[self._name]
            return field in self._sage.columns.get(underlying, set()) | extra
        known = self._sage.columns.get(self._name)
        return known is None or field in known

    def _find_row(self) -> dict[str, Any] | None:
        return next((r for r in self._rows if all(r.get(k) == v for k, v in self._key.items())), None)

    def _find(self) -> int:
        """nSetKey: 1 and the record's values for an existing key, 2 for a new record (a deposit given no
        number is numbered from the counter, as Sage's screen does)."""
        if self._name == DEPOSITS and "DepositNo$" not in self._key:
            self._sage.next_deposit_no += 1
            self._key["DepositNo$"] = f"{self._sage.next_deposit_no - 1:05d}"
        row = self._find_row()
        self._values = {**(row or {}), **self._key}
        return 1 if row is not None else 2

    def _write(self) -> None:
        if self._name == LINES:
            self._header._lines.append(dict(self._values))
            return
        row = self._find_row()
        if row is not None:
            self._rows.remove(row)
        if self._name in (DEPOSITS, RECEIPTS) and self._sage.selected_batch:
            self._values.setdefault("BatchNo$", self._sage.selected_batch)
        written = {**self._values, "lines": list(self._lines)} if self._lines else dict(self._values)
        self._rows.append(written)
        if self._name == RECEIPTS:
            self._sage.apply(written, 1)
        self._clear()

    def _clear(self) -> None:
        self._key, self._values, self._lines = {}, {}, []


class FakeSage:
    """The COM side: `dispatch` is what the backend calls instead of win32com.client.Dispatch."""

    def __init__(
        self,
        invoices: list[dict[str, Any]] = INVOICES,
        get_value_form: str = "tuple",
        eof: str = "property",
    ) -> None:
        self.get_value_form, self.eof = get_value_form, eof
        self.calls: list[tuple[str, str, tuple]] = []
        self.answers: dict[tuple[str, str], Any] = {
            ("SY_Session", "nSetUser"): lambda obj, user, pw: (
                1 if (user, pw) == ("demo", "demo-password") else fail(obj, "Invalid user logon or password.")
            ),
            ("SY_Session", "nSetCompany"): lambda obj, code: 1 if code == "ABC" else fail(obj, "Company not found."),
        }
        self.tables: dict[str, list[dict[str, Any]]] = {
            CUSTOMERS_SVC: [dict(c) for c in CUSTOMERS],
            INVOICES_SVC: [dict(i) for i in invoices],
            OPTIONS: [{"RequireDepositAmt$": "N", "CashReceiptsBatchEntry$": "N"}],
        }
        self.objects = {"ProvideX.Script", "SY_Session", *COLUMNS} - {LINES}
        self.tasks = set(TASKS)
        self.columns = {name: set(fields) for name, fields in COLUMNS.items()}
        self.missing_methods: set[str] = set()
        self.next_deposit_no, self.next_batch_no = 1, 1
        self.batches: set[str] = set()
        self.selected_batch = ""

    def dispatch(self, progid: str) -> FakeObject:
        self.calls.append(("Dispatch", progid, ()))
        if progid not in self.objects:
            raise FakeComError(f"Invalid class string: {progid}")
        return FakeObject(self, progid)

    def set_options(self, require_deposit_amount: bool = False, batch_entry: bool = False) -> None:
        """The company's AR options, as a person sets them in Sage."""
        self.tables[OPTIONS] = [
            {
                "RequireDepositAmt$": "Y" if require_deposit_amount else "N",
                "CashReceiptsBatchEntry$": "Y" if batch_entry else "N",
            }
        ]

    def apply(self, receipt: dict[str, Any], sign: int) -> None:
        """A receipt entered (1) or deleted (-1): the PaymentsToday of each invoice it applies to moves."""
        for line in receipt.get("lines", []):
            invoice = self.invoice(receipt, line)
            if invoice is not None:
                invoice["PaymentsToday"] = invoice["PaymentsToday"] + sign * float(line["AmountPosted"])

    def invoice(self, receipt: dict[str, Any], line: dict[str, Any]) -> dict[str, Any] | None:
        key = (receipt["ARDivisionNo$"], receipt["CustomerNo$"], line["InvoiceNo$"], line.get("InvoiceType$", "IN"))
        return next(
            (
                i
                for i in self.tables[INVOICES_SVC]
                if (i["ARDivisionNo$"], i["CustomerNo$"], i["InvoiceNo$"], i["InvoiceType$"]) == key
            ),
            None,
        )

    def methods(self, obj: str | None = None) -> list[str]:
        return [m for o, m, _ in self.calls if obj is None or o == obj]

    def args(self, obj: str, method: str) -> list[tuple]:
        return [a for o, m, a in self.calls if (o, m) == (obj, method)]

    def key_deposit(self, deposit_no: str, bank_code: str = "A", deposit_date: str = "20261125") -> None:
        """A person opens a deposit in Sage (it is not the agent's)."""
        self.tables.setdefault(DEPOSITS, []).append(
            {
                "DepositNo$": deposit_no,
                "BankCode$": bank_code,
                "DepositDate$": deposit_date,
                "DepositDesc$": "Counter",
                "CashDepositAmt": 0.0,
            }
        )

    def key_receipt(
        self, deposit_no: str, check_no: str, invoice_no: str, amount: float, customer: tuple[str, str] = ("01", "ABF")
    ) -> None:
        """A person keys a receipt for one invoice into their deposit (opened first with `key_deposit`)."""
        receipt = {
            "DepositNo$": deposit_no,
            "ARDivisionNo$": customer[0],
            "CustomerNo$": customer[1],
            "CheckNo$": check_no,
            "PostingAmt": amount,
            "Comment$": "",
            "lines": [{"InvoiceNo$": invoice_no, "InvoiceType$": "IN", "AmountPosted": amount}],
        }
        self.tables.setdefault(RECEIPTS, []).append(receipt)
        self.apply(receipt, 1)

    def update_journal(self) -> None:
        """Sage's Cash Receipts Journal update: every unposted receipt line moves into both history tables.

        The header's Comment$ is not carried over: nothing public says it reaches history.
        """
        deposits = {d["DepositNo$"]: d for d in self.tables.get(DEPOSITS, [])}
        for header in self.tables.get(RECEIPTS, []):
            deposit = deposits[header["DepositNo$"]]
            for sequence, line in enumerate(header.get("lines", []), start=1):
                invoice = self.invoice(header, line)
                if invoice is not None:
                    invoice["Balance"] -= float(line["AmountPosted"])
                    invoice["PaymentsToday"] -= float(line["AmountPosted"])
                self.tables.setdefault(HISTORY, []).append(
                    {
                        "BankCode$": deposit["BankCode$"],
                        "DepositDate$": deposit["DepositDate$"],
                        "DepositNo$": header["DepositNo$"],
                        "DepositType$": "C",
                        "ARDivisionNo$": header["ARDivisionNo$"],
                        "CustomerNo$": header["CustomerNo$"],
                        "CreditCardEntryNo$": "000000",
                        "CheckNo$": header["CheckNo$"],
                        "SequenceNo$": f"{sequence:06d}",
                        "InvoiceNo$": line["InvoiceNo$"],
                        "CashAmountApplied": float(line["AmountPosted"]),
                    }
                )
                self.tables.setdefault(PAYMENT_HISTORY, []).append(
                    {
                        "ARDivisionNo$": header["ARDivisionNo$"],
                        "CustomerNo$": header["CustomerNo$"],
                        "InvoiceNo$": line["InvoiceNo$"],
                        "CheckNo$": header["CheckNo$"],
                        "PaymentReference$": "",
                        "TransactionAmt": float(line["AmountPosted"]),
                    }
                )
        self.tables[RECEIPTS], self.tables[DEPOSITS] = [], []
        self.batches.clear()


def fail(obj: FakeObject, message: str) -> int:
    obj.sLastErrorMsg = message
    return 0
