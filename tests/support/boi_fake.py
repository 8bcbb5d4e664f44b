"""A recording fake of Sage 100's BOI COM objects (`ProvideX.Script` and what it makes), for the BOI backend tests.

It answers like ProvideX does (1 success, 0 failure with sLastErrorMsg, -1 warning), records every call,
and keeps what is written: `nSetKeyValue`/`nSetKey` find a record (1) or start a new one (2), `nWrite`
stores the record in `tables[<object name>]`, `nDelete` removes it. `update_journal()` does what Sage's
Cash Receipts Journal update does: unposted entries move into the history tables. `nEOF` is a property,
as in every public example. Answers for chosen calls can be scripted through `answers`.
"""

from __future__ import annotations

from datetime import date
from typing import Any

HOME = r"C:\Sage\Sage 100\MAS90\Home"
TODAY = date(2026, 11, 25)
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
RECEIPTS = "AR_CashReceipts_bus"
DEPOSITS = "AR_CashReceiptsDeposit_bus"
HISTORY = "AR_CashReceiptsHistory_svc"
PAYMENT_HISTORY = "AR_TransactionPaymentHistory_svc"


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
            self.oLines = FakeObject(sage, "lines")
            self.oLines._header = self

    @property
    def nEOF(self) -> int:
        self._sage.calls.append((self._name, "nEOF", ()))
        return int(self._cursor >= len(self._rows))

    @property
    def _rows(self) -> list[dict[str, Any]]:
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
                self._default(method, args)
                return rc
            return self._default(method, args)

        return call

    def _default(self, method: str, args: tuple) -> Any:
        if method == "NewObject":
            return FakeObject(self._sage, args[0])
        if method == "nMoveFirst":
            self._cursor = 0
        elif method == "nMoveNext":
            self._cursor += 1
        elif method == "nGetValue":
            row = self._rows[self._cursor] if self._cursor < len(self._rows) else self._values
            return (1, row.get(args[0]))
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
            self._rows.remove(self._find_row())
            self._clear()
        elif method == "nClear":
            self._clear()
        elif method == "nLookupTask":
            return f"task:{args[0]}"
        elif method in ("Init", "DropObject"):
            return None
        return 1

    def _find_row(self) -> dict[str, Any] | None:
        return next((r for r in self._rows if all(r.get(k) == v for k, v in self._key.items())), None)

    def _find(self) -> int:
        """nSetKey: 1 and the record's values for an existing key, 2 for a new record."""
        row = self._find_row()
        self._values = {**(row or {}), **self._key}
        return 1 if row is not None else 2

    def _write(self) -> None:
        if self._name == "lines":
            self._header._lines.append(dict(self._values))
            return
        row = self._find_row()
        if row is not None:
            self._rows.remove(row)
        self._rows.append({**self._values, "lines": list(self._lines)} if self._lines else dict(self._values))
        self._clear()

    def _clear(self) -> None:
        self._key, self._values, self._lines = {}, {}, []


class FakeSage:
    """The COM side: `dispatch` is what the backend calls instead of win32com.client.Dispatch."""

    def __init__(self, invoices: list[dict[str, Any]] = INVOICES) -> None:
        self.calls: list[tuple[str, str, tuple]] = []
        self.answers: dict[tuple[str, str], Any] = {
            ("SY_Session", "nSetUser"): lambda obj, user, pw: (
                1 if (user, pw) == ("demo", "demo-password") else fail(obj, "Invalid user logon or password.")
            ),
            ("SY_Session", "nSetCompany"): lambda obj, code: 1 if code == "ABC" else fail(obj, "Company not found."),
        }
        self.tables: dict[str, list[dict[str, Any]]] = {"AR_OpenInvoice_svc": list(invoices)}

    def dispatch(self, progid: str) -> FakeObject:
        self.calls.append(("Dispatch", progid, ()))
        return FakeObject(self, progid)

    def methods(self, obj: str | None = None) -> list[str]:
        return [m for o, m, _ in self.calls if obj is None or o == obj]

    def args(self, obj: str, method: str) -> list[tuple]:
        return [a for o, m, a in self.calls if (o, m) == (obj, method)]

    def update_journal(self) -> None:
        """Sage's Cash Receipts Journal update: every unposted receipt line moves into both history tables.

        The header's Comment$ is not carried over: nothing public says it reaches history.
        """
        deposits = {d["DepositNo$"]: d for d in self.tables.get(DEPOSITS, [])}
        for header in self.tables.get(RECEIPTS, []):
            deposit = deposits[header["DepositNo$"]]
            for sequence, line in enumerate(header.get("lines", []), start=1):
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


def fail(obj: FakeObject, message: str) -> int:
    obj.sLastErrorMsg = message
    return 0
