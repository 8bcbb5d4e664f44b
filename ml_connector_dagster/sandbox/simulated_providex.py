"""The simulated company seen through ProvideX's COM objects, read-only: what `ml-connector agent doctor --backend
simulated` checks, so that every BOI name and field is tried against the simulated company's own tables and
columns rather than taken on trust.

It answers the way the agent's BOI backend and its doctor call ProvideX (`ProvideX.Script`, `SY_Session`,
business objects, return codes 1/0 with `sLastErrorMsg`, `nEOF` as a property, `nGetValue` handing its value
back as a type-library dispatch does, `(ret, value)`), and writes nothing: `nWrite`, `nDelete` and the
methods that would take a number answer 0. What it has:

- objects `<Table>_svc` (read) and `<Table>_bus` (read, keys, new records) for each of the company's Sage
  tables (not the stand-in's own `ML_*`); `AR_CashReceipts_bus` is the receipt header (AR_CashReceiptsHeader)
  with its lines (AR_CashReceiptsDetail) as `oLines`, as in Sage;
- `AR_Options_svc`, one record holding the company options the simulated company keeps (ML_Meta), under the
  names Sage's AR options use for them as far as the project knows (`RequireDepositAmt`,
  `CashReceiptsBatchEntry`, `Y`/`N`);
- `AR_TransactionPaymentHistory_svc`, derived from AR_CashReceiptsHistory (the simulated company keeps
  posted payments there only; `PaymentReference` is empty);
- a field is a column of the object's table, named with or without Sage's `$` (the simulated tables keep
  every value as text, so the `$` of a string field is not checked); a key part must be part of the table's
  primary key;
- tasks `<object stem>_ui` for each object it has, `nGetNextDepositNo` on the deposit object (the company
  numbers deposits from its own "Next Deposit Number"), `nSelectBatch`/`nSelectNewBatch` on the deposit and
  receipt objects only where the tables carry a `BatchNo`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .sage_company import SageCompany

PROGID = "ProvideX.Script"
MODULE = "A/R"
OPTION_COLUMNS = {"RequireDepositAmt": "require_deposit_amount", "CashReceiptsBatchEntry": "batch_entry"}
PAYMENT_HISTORY_SQL = (
    "SELECT ARDivisionNo, CustomerNo, InvoiceNo, CheckNo, CashAmountApplied AS TransactionAmt, "
    "'' AS PaymentReference FROM AR_CashReceiptsHistory"
)
RECEIPTS = "AR_CashReceipts"
DEPOSITS = "AR_CashReceiptsDeposit"


class ComError(Exception):
    """What pywin32 raises when COM refuses a call (pywintypes.com_error)."""


class Variant:
    """A by-reference argument (win32com.client.VARIANT) for the doctor to try; this stand-in answers in the
    type-library form, so it never fills one."""

    def __init__(self, value: Any) -> None:
        self.value = value


@dataclass(frozen=True)
class Table:
    """What an object reads: its columns, its key, and how its rows are selected."""

    name: str
    columns: tuple[str, ...]
    key: tuple[str, ...]
    select: str


class SimulatedProvideX:
    """`dispatch` is what the doctor calls instead of win32com.client.Dispatch."""

    def __init__(self, company: SageCompany) -> None:
        self.company = company

    def dispatch(self, progid: str) -> Script:
        if progid != PROGID:
            raise ComError(f"Invalid class string: {progid}")
        return Script(self)

    @contextlib.contextmanager
    def connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.company.path, timeout=30)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA query_only = ON")
        try:
            yield conn
        finally:
            conn.close()

    def table(self, name: str) -> Table | None:
        """The table behind a Sage table name, if the simulated company keeps it."""
        with self.connect() as conn:
            if name == "AR_Options":
                return Table(name, tuple(OPTION_COLUMNS), (), "")
            if name == "AR_TransactionPaymentHistory":
                if self._info(conn, "AR_CashReceiptsHistory") is None:
                    return None
                return Table(name, ("ARDivisionNo", "CustomerNo", "InvoiceNo", "CheckNo", "TransactionAmt",
                                    "PaymentReference"), (), PAYMENT_HISTORY_SQL)  # fmt: skip
            if name.startswith("ML_"):
                return None  # the stand-in's own tables: Sage has none of them
            info = self._info(conn, name)
        if info is None:
            return None
        columns = tuple(row["name"] for row in info)
        key = tuple(row["name"] for row in sorted(info, key=lambda r: r["pk"]) if row["pk"])
        return Table(name, columns, key, f"SELECT * FROM {name}")

    @staticmethod
    def _info(conn: sqlite3.Connection, name: str) -> list[sqlite3.Row] | None:
        exists = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone()
        return conn.execute(f"PRAGMA table_info({name})").fetchall() if exists else None

    def rows(self, table: Table) -> list[dict[str, Any]]:
        with self.connect() as conn:
            if table.name == "AR_Options":
                values = {r["Name"]: r["Value"] for r in conn.execute("SELECT Name, Value FROM ML_Meta")}
                return [{column: values.get(name, "N") for column, name in OPTION_COLUMNS.items()}]
            return [dict(r) for r in conn.execute(table.select)]

    def stems(self) -> set[str]:
        """Every object stem this stand-in has (for its tasks)."""
        with self.connect() as conn:
            tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        stems = {t for t in tables if not t.startswith("ML_")} | {"AR_Options", "AR_TransactionPaymentHistory"}
        return stems | ({RECEIPTS} if "AR_CashReceiptsHeader" in tables else set())


class Script:
    """ProvideX.Script: Init, then NewObject for the session and, under a set program, business objects."""

    def __init__(self, pvx: SimulatedProvideX) -> None:
        self._pvx = pvx

    def Init(self, home: str) -> None:
        return None

    def NewObject(self, name: str, session: Session | None = None) -> Any:
        if name == "SY_Session":
            return Session(self._pvx)
        if session is None or not session.program:
            raise ComError(f"NewObject({name}): no session with a program set (nSetProgram)")
        stem, suffix = name[:-4], name[-4:]
        if suffix not in ("_svc", "_bus"):
            raise ComError(f"Error #200: {name} is not a ProvideX business object")
        if stem == RECEIPTS:
            header, lines = self._pvx.table("AR_CashReceiptsHeader"), self._pvx.table("AR_CashReceiptsDetail")
            if header is not None and lines is not None:
                return BusinessObject(self._pvx, header, suffix == "_bus", lines)
        table = self._pvx.table(stem)
        if table is None:
            raise ComError(f"Error #200: {name} not found (the simulated company has no table {stem})")
        return BusinessObject(self._pvx, table, suffix == "_bus")


class Session:
    """SY_Session: the logon, company, date, module and program, checked as Sage would."""

    def __init__(self, pvx: SimulatedProvideX) -> None:
        self._pvx = pvx
        self._user: tuple[str, str] | None = None
        self.program = ""
        self.sLastErrorMsg = ""

    def _fail(self, message: str) -> int:
        self.sLastErrorMsg = message
        return 0

    def nSetUser(self, username: str, password: str) -> int:
        if not self._pvx.company.check_logon(username, password):
            return self._fail("Invalid user logon or password.")
        self._user = (username, password)
        return 1

    def nSetCompany(self, code: str) -> int:
        if self._user is None:
            return self._fail("No user logged on.")
        if (code or "").upper() != self._pvx.company.info.code:
            return self._fail(f"Company {code} not found.")
        return 1

    def nSetDate(self, module: str, day: str) -> int:
        try:
            datetime.strptime(day, "%Y%m%d")
        except ValueError:
            return self._fail(f"Invalid date {day}.")
        return 1 if module == MODULE else self._fail(f"Module {module} is not installed.")

    def nSetModule(self, module: str) -> int:
        return 1 if module == MODULE else self._fail(f"Module {module} is not installed.")

    def nLookupTask(self, task: str) -> str:
        stem = task[:-3] if task.lower().endswith("_ui") else ""
        if stem and stem in self._pvx.stems():
            return f"TASK:{stem}"
        self.sLastErrorMsg = f"Task {task} not found."
        return ""

    def nSetProgram(self, task_id: str) -> int:
        if not task_id:
            return self._fail("No program given.")
        self.program = task_id
        return 1

    def nCleanup(self) -> int:
        return 1

    def DropObject(self) -> None:
        return None


class Dispatch:
    """The IDispatch underneath (pywin32's `_oleobj_`): which names an object knows, and property reads."""

    def __init__(self, obj: BusinessObject) -> None:
        self._obj = obj

    def GetIDsOfNames(self, name: str) -> int:
        if name.startswith("_") or not callable(getattr(self._obj, name, None)) or name in self._obj.missing:
            raise ComError(f"Unknown name: {name}")
        return sorted(dir(self._obj)).index(name) + 1

    def Invoke(self, dispid: int, lcid: int, flags: int, want_result: bool) -> Any:
        return getattr(self._obj, sorted(dir(self._obj))[dispid - 1])


class BusinessObject:
    """A `_svc` or `_bus` object over one table (and, for the receipt, its lines)."""

    def __init__(self, pvx: SimulatedProvideX, table: Table, writable: bool, lines: Table | None = None) -> None:
        self._pvx, self._table, self._writable = pvx, table, writable
        self._rows = pvx.rows(table)
        self._cursor = 0
        self._key: dict[str, Any] = {}
        self._values: dict[str, Any] | None = None
        self.sLastErrorMsg = ""
        self.sLastErrorNum = ""
        if lines is not None:
            self.oLines = BusinessObject(pvx, lines, writable)
        batches = "BatchNo" in table.columns and table.name in ("AR_CashReceiptsDeposit", "AR_CashReceiptsHeader")
        self.missing = set()
        if table.name != DEPOSITS:
            self.missing.add("nGetNextDepositNo")
        if not batches:
            self.missing |= {"nSelectBatch", "nSelectNewBatch"}
        if table.name != DEPOSITS:
            self.missing.add("nSelectNewBatch")

    @property
    def _oleobj_(self) -> Dispatch:
        return Dispatch(self)

    def _fail(self, message: str) -> int:
        self.sLastErrorMsg = message
        return 0

    def _column(self, field: str) -> str | None:
        column = field[:-1] if field.endswith("$") else field
        return column if column in self._table.columns else None

    # reading
    @property
    def nEOF(self) -> int:
        return int(self._values is None and self._cursor >= len(self._rows))

    def nMoveFirst(self) -> int:
        self._cursor, self._values = 0, None
        return 1 if self._rows else 0

    def nMoveNext(self) -> int:
        self._cursor += 1
        return 1 if self._cursor < len(self._rows) else 0

    def nGetValue(self, field: str, value: Any = None) -> tuple[int, Any]:
        column = self._column(field)
        if column is None:
            return self._fail(f"Column {field} is not in {self._table.name}."), None
        if self._values is not None:
            record: dict[str, Any] = self._values
        else:
            record = self._rows[self._cursor] if self._cursor < len(self._rows) else {}
        got = record.get(column)
        if got is None:
            return 1, "" if field.endswith("$") else 0
        return 1, got if field.endswith("$") else _number(got)

    def nSetKeyValue(self, field: str, value: Any) -> int:
        column = self._column(field)
        if column is None:
            return self._fail(f"Column {field} is not in {self._table.name}.")
        if self._table.key and column not in self._table.key:
            return self._fail(f"{field} is not part of the key of {self._table.name}.")
        self._key[column] = value
        return 1

    def nFind(self) -> int:
        found = self._find()
        self._values = dict(found) if found is not None else None
        return 1 if found is not None else 0

    def nSetKey(self) -> int:
        if not self._writable:
            return self._fail(f"{self._table.name} is read through a service object: nSetKey needs _bus.")
        found = self._find()
        self._values = dict(found) if found is not None else {**self._key}
        return 1 if found is not None else 2

    def _find(self) -> dict[str, Any] | None:
        return next((r for r in self._rows if all(str(r.get(k)) == str(v) for k, v in self._key.items())), None)

    # a new record, never written
    def nSetValue(self, field: str, value: Any) -> int:
        column = self._column(field)
        if column is None:
            return self._fail(f"Column {field} is not in {self._table.name}.")
        if not self._writable or self._values is None:
            return self._fail("No record: nSetKey (or nAddLine) first.")
        if column == "BankCode" and value != self._pvx.company.info.bank_code:
            return self._fail(f"Bank code {value} is not on file.")
        self._values[column] = value
        return 1

    def nAddLine(self) -> int:
        if not self._writable:
            return self._fail("No record.")
        self._values = {}
        return 1

    def nClear(self) -> int:
        self._key, self._values = {}, None
        return 1

    def nWrite(self) -> int:
        return self._fail("The simulated ProvideX is read-only (the doctor's rehearsal writes through the agent).")

    def nDelete(self) -> int:
        return self.nWrite()

    def nGetNextDepositNo(self, number: Any = None) -> tuple[int, str]:
        return self.nWrite(), ""

    def nSelectBatch(self, batch_no: str) -> int:
        return 1

    def nSelectNewBatch(self, batch_no: Any = None, private: str = "N", comment: str = "") -> tuple[int, str]:
        return self.nWrite(), ""

    def DropObject(self) -> None:
        return None


def _number(text: Any) -> Any:
    try:
        return float(text)
    except (TypeError, ValueError):
        return text
