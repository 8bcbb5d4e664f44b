"""What people do in the simulated Sage company while a scenario plays: its sage_changes.csv, step by step, and
the same changes on demand through the sandbox's control API.

`SageChanges.play_step(k)` is the hook the GoCardless stand-in calls at the start of step k, before that
step's GoCardless actions (see gocardless_api/play.py; `start_stack` and `ml-connector sandbox` wire it), so
one `POST /_sandbox/step` plays both. A change Sage refuses (a person keying more than is still open,
because the product's receipts took it first) is reported as refused, as Sage's screen would show it, and
the play goes on.

Control API, beside the GoCardless stand-in's (no auth; a local tool):
  POST /_sandbox/sage/changes   {"changes": [{"action": "key_receipt", "ARDivisionNo": "01", "CustomerNo": "ABF",
                                  "InvoiceNo": "0100031", "InvoiceType": "IN", "Amount": "100.00",
                                  "CheckNo": "1234"}, {"action": "post_journal"}]}
      applies the changes now, in order, with the columns and rules of sage_changes.csv; answers
      {"results": [...]} (400 with {"problems": [...]} when a change is malformed, and nothing is applied)
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import date
from typing import Literal, TypedDict

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..sage100.model import SageRuleError
from .gocardless_api.gate import CONTROL_PREFIX
from .sage_company import SageCompany
from .scenario import SageChange, Scenario
from .scenario.csv_files import OPTIONAL_COLUMNS
from .scenario.rows import Table, Validator, sage_change

CHANGES_PATH = f"{CONTROL_PREFIX}/sage/changes"


class ChangeResult(TypedDict):
    """One change as played: what it was, whether Sage took it, and what Sage answered."""

    step: int | None  # None for a change asked for through the control API
    change: str  # e.g. "key_receipt 01-ABF 0100031 IN 100.00 check 1234"
    outcome: Literal["applied", "refused"]
    message: str  # what it did ("deposit 00002"), or Sage's refusal


class SageChanges:
    """People's work in one simulated company: a scenario's changes by step, or changes asked for now."""

    def __init__(self, company: SageCompany, scenario: Scenario, today: Callable[[], date] = date.today) -> None:
        self.company, self.scenario, self.today = company, scenario, today

    def play_step(self, step: int) -> list[ChangeResult]:
        """The scenario's changes of step `step`, in file order."""
        return [self.apply(change, step) for change in self.scenario.sage_changes_at(step)]

    def apply(self, change: SageChange, step: int | None = None) -> ChangeResult:
        try:
            message = self._do(change)
        except SageRuleError as exc:
            return {"step": step, "change": change.describe(), "outcome": "refused", "message": exc.message}
        return {"step": step, "change": change.describe(), "outcome": "applied", "message": message}

    def _do(self, c: SageChange) -> str:
        company = self.company
        if c.action == "add_customer":
            company.create_customer(
                c.ARDivisionNo, c.CustomerNo, {"CustomerName": c.CustomerName, "EmailAddress": c.EmailAddress}
            )
            return f"customer {c.ARDivisionNo}-{c.CustomerNo} added"
        if c.action == "update_customer_email":
            company.update_customer(c.ARDivisionNo, c.CustomerNo, {"EmailAddress": c.EmailAddress})
            return f"customer {c.ARDivisionNo}-{c.CustomerNo}'s email is now {c.EmailAddress}"
        if c.action == "add_invoice":
            assert c.InvoiceDate is not None and c.Amount is not None, "a checked add_invoice has its date and amount"
            company.add_invoice(
                c.ARDivisionNo, c.CustomerNo, c.InvoiceNo, c.InvoiceType, c.InvoiceDate, c.InvoiceDueDate, c.Amount
            )
            return f"invoice {c.InvoiceNo} ({c.InvoiceType}) added with Balance {c.Amount}"
        if c.action == "key_receipt":
            assert c.Amount is not None, "a checked key_receipt has its amount"
            entered = company.key_receipt(
                c.ARDivisionNo, c.CustomerNo, c.InvoiceNo, c.InvoiceType, c.Amount, c.CheckNo, self.today()
            )
            warned = "".join(f"; warning: {w}" for w in entered.warnings)
            return f"entered unposted in deposit {entered.deposit_no}{warned}"
        if c.action == "post_journal":
            return f"Cash Receipts Journal updated: {company.post_cash_receipts_journal()} lines posted"
        raise ValueError(f"unknown Sage change {c.action!r}")  # the scenario's checks make this unreachable

    # -- the control API ------------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [Route(CHANGES_PATH, self._changes, methods=["POST"])]

    async def _changes(self, request: Request) -> Response:
        try:
            body = json.loads(await request.body() or b"{}")
            asked = body["changes"] if isinstance(body, dict) else None
            if not isinstance(asked, list) or not all(isinstance(c, dict) for c in asked):
                raise ValueError
        except (ValueError, KeyError):
            return JSONResponse(
                {"problems": ['the body must be {"changes": [{"action": "post_journal"}, ...]}']}, status_code=400
            )
        changes, problems = read_changes(asked)
        if problems:
            return JSONResponse({"problems": problems}, status_code=400)
        return JSONResponse({"results": [self.apply(change) for change in changes]})


def read_changes(asked: Sequence[dict[str, object]]) -> tuple[list[SageChange], list[str]]:
    """Changes given as objects with sage_changes.csv's columns but `step` (they happen now), checked by the
    same rules; a problem reads `changes:<n>: <column>: what is wrong` (n from 1)."""
    columns = ("action", *OPTIONAL_COLUMNS["sage_changes.csv"])
    problems: list[str] = []
    rows: list[tuple[int, dict[str, str]]] = []
    for n, change in enumerate(asked, start=1):
        for column in sorted(set(change) - set(columns)):
            problems.append(
                f"changes:{n}: {column}: not a column of a Sage change; the columns are {', '.join(columns)}"
            )
        rows.append((n, {"step": "1", **{k: str(v).strip() for k, v in change.items() if k in columns}}))
    changes = Validator(problems).rows(Table("changes", rows), sage_change)
    return changes, problems
