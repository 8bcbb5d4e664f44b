"""The write-back's re-check and an operator's apply read the live open amount: Balance less PaymentsToday, as
the agent returns them right before the write. The simulated company's AR_OpenInvoice.PaymentsToday is set
directly to shape what the agent returns (receipts entered in Sage, not posted by the journal update yet).

Customer 01-ABF of the bundled company has invoices 0100030 (1200.00) and 0100031 (450.00).
"""

from __future__ import annotations

import dataclasses
import sqlite3
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from ml_connector_dagster.agent import agent_app
from ml_connector_dagster.agent.service import AgentService
from ml_connector_dagster.agent.soap import SoapService
from ml_connector_dagster.httpserve import serve_in_thread
from ml_connector_dagster.reconciliation.posting import Allocation, AllocationError, PostingOutcome
from ml_connector_dagster.reconciliation.write_back import post_payment
from ml_connector_dagster.sage100 import (
    AgentClient,
    InvoiceRecord,
    SageFault,
    SageUnavailable,
    UnpostedReceiptLine,
)
from ml_connector_dagster.sandbox.sage_services import SageStandIns
from ml_connector_dagster.sandbox.simulated_backend import SimulatedBackend
from ml_connector_dagster.settings import ReconciliationSettings
from ml_connector_dagster.store import Store

from support.sage import agent_client, cash_receipt_request

SETTINGS = ReconciliationSettings(home_currency="GBP", bank_code="A")


def unposted(stand_ins: SageStandIns, invoice_no: str, payments_today: str) -> None:
    """Receipts keyed in Sage against the invoice and not posted yet: its PaymentsToday, Balance unchanged."""
    with sqlite3.connect(stand_ins.company.path) as conn:
        conn.execute("UPDATE AR_OpenInvoice SET PaymentsToday = ? WHERE InvoiceNo = ?", [payments_today, invoice_no])


def payment(pid: str, amount: int, reference: str = "") -> dict[str, Any]:
    return {
        "id": pid,
        "amount": amount,
        "currency": "GBP",
        "status": "confirmed",
        "reference": reference or pid,
        "description": None,
        "metadata": "{}",
        "fx_currency": None,
        "fx_amount": None,
        "gocardless_customer": "CU1",
        "refunds": [],
    }


def post(
    store: Store,
    agent: AgentClient,
    p: dict[str, Any],
    allocations: Sequence[Allocation] | None = None,
) -> PostingOutcome:
    """The write-back of one payment the evaluation matched (or an operator's apply of a held one)."""
    status = "held" if allocations is not None else "matched"
    store.ledger.upsert(
        p["id"],
        status=status,
        sage_customer="01-ABF",
        amount_minor=p["amount"],
        currency="GBP",
        home_amount=str(Decimal(p["amount"]).scaleb(-2)),
    )
    return post_payment(store, agent, SETTINGS, store.ledger.entry(p["id"]), p, allocations=allocations)


def lines(stand_ins: SageStandIns, pid: str) -> list[tuple[str, str]]:
    receipt = stand_ins.company.find_cash_receipt(pid)
    return [] if receipt is None else [(line.invoice_no, str(line.amount)) for line in receipt.lines]


def test_the_recheck_holds_a_payment_whose_named_invoice_unposted_receipts_consumed(
    stand_ins: SageStandIns, store: Store
) -> None:
    unposted(stand_ins, "0100030", "1200.00")

    outcome = post(store, agent_client(stand_ins), payment("PM1", 120000, reference="INV-0100030"))

    assert (outcome.status, outcome.reason) == ("held", "invoice_already_collected")
    assert "consumed by unposted receipts" in (outcome.message or "")
    assert lines(stand_ins, "PM1") == []
    [item] = store.review.open_for("PM1")
    assert item.details["unposted"] == [
        {
            "invoice_no": "0100030",
            "invoice_type": "IN",
            "balance": "1200.00",
            "payments_today": "1200.00",
            "open_amount": "0.00",
            "entries": [],  # PaymentsToday was set directly here: no receipt in entry stands behind it
        }
    ]


def test_a_hold_names_the_receipts_in_entry_that_took_the_invoice_a_persons_and_ours(
    stand_ins: SageStandIns, store: Store
) -> None:
    ours = post(store, agent_client(stand_ins), payment("PM0", 25000, reference="INV-0100031"))
    keyed = stand_ins.company.key_receipt("01", "ABF", "0100031", "IN", Decimal("200.00"), "4417", date(2026, 11, 24))

    outcome = post(store, agent_client(stand_ins), payment("PM1", 20000, reference="INV-0100031"))

    assert ours.status == "posted" and outcome.status == "held"
    [held] = store.audit.list(subject="PM1", action="payment.held")
    [invoice] = held.details["unposted"]
    our_receipt = stand_ins.company.find_cash_receipt("PM0")
    assert our_receipt is not None
    assert (invoice["invoice_no"], invoice["open_amount"]) == ("0100031", "0.00")
    assert invoice["entries"] == [
        {"deposit": keyed.deposit_no, "check_no": "4417", "date": "2026-11-24", "amount": "200.00", "by": "person"},
        {
            "deposit": our_receipt.deposit_no,
            "check_no": our_receipt.check_no,
            "date": our_receipt.deposit_date.isoformat(),
            "amount": "250.00",
            "by": "PM0",
        },
    ]
    assert "entries_unavailable" not in held.details
    [item] = store.review.open_for("PM1")
    assert item.details["unposted"] == held.details["unposted"]


class AgentWithoutUnpostedReceipts(AgentClient):
    """An agent that cannot list the receipts in entry: `failure` is what the call raises."""

    failure: Exception

    def get_unposted_receipts(self, ar_division_no: str, customer_no: str) -> list[UnpostedReceiptLine]:
        raise self.failure


@pytest.mark.parametrize(
    ("failure", "said"),
    [
        (SageFault("Unknown operation 'GetUnpostedReceipts' (namespace urn:ml-connector:sage100:agent)."), "older"),
        (SageUnavailable("cannot connect to https://sage-server:8443/agent"), "could not list"),
    ],
)
def test_a_hold_stands_when_the_agent_cannot_name_the_receipts_and_the_audit_says_why(
    stand_ins: SageStandIns, store: Store, failure: Exception, said: str
) -> None:
    stand_ins.company.key_receipt("01", "ABF", "0100030", "IN", Decimal("1200.00"), "4417", date(2026, 11, 24))
    agent = AgentWithoutUnpostedReceipts(
        stand_ins.agent_wsdl,
        username=stand_ins.username,
        password=stand_ins.password,
        company_code=stand_ins.company_code,
    )
    agent.failure = failure

    outcome = post(store, agent, payment("PM1", 120000, reference="INV-0100030"))

    assert (outcome.status, outcome.reason) == ("held", "invoice_already_collected")
    [held] = store.audit.list(subject="PM1", action="payment.held")
    assert said in held.details["entries_unavailable"]
    assert [u["invoice_no"] for u in held.details["unposted"]] == ["0100030"]
    assert "entries" not in held.details["unposted"][0]


def test_an_older_agent_without_the_operation_leaves_the_hold_as_it_was(
    stand_ins: SageStandIns, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The agent answers GetUnpostedReceipts with its own fault for an operation it does not know."""
    real = AgentService.service

    def without(self: AgentService, path: str = "/agent") -> SoapService:
        service = real(self, path)
        operations = {k: v for k, v in service.operations.items() if k != "GetUnpostedReceipts"}
        return dataclasses.replace(service, operations=operations)

    monkeypatch.setattr(AgentService, "service", without)
    stand_ins.company.key_receipt("01", "ABF", "0100030", "IN", Decimal("1200.00"), "4417", date(2026, 11, 24))
    server = serve_in_thread(agent_app(SimulatedBackend(stand_ins.company)))
    try:
        agent = AgentClient(
            f"{server.url}/agent?wsdl",
            username=stand_ins.username,
            password=stand_ins.password,
            company_code=stand_ins.company_code,
        )
        outcome = post(store, agent, payment("PM1", 120000, reference="INV-0100030"))
    finally:
        server.stop()

    assert (outcome.status, outcome.reason) == ("held", "invoice_already_collected")
    [held] = store.audit.list(subject="PM1", action="payment.held")
    assert "GetUnpostedReceipts" in held.details["entries_unavailable"]


def test_a_recheck_that_applies_the_payment_otherwise_names_the_receipts_in_entry_on_its_invoices(
    stand_ins: SageStandIns, store: Store
) -> None:
    # what the evaluation decided on the warehouse copy (here simply another invoice than the re-check's)
    decided = [{"invoice_no": "0100030", "invoice_type": "IN", "amount": "200.00"}]
    store.ledger.upsert("PM1", status="matched", allocations=decided)
    keyed = stand_ins.company.key_receipt("01", "ABF", "0100031", "IN", Decimal("100.00"), "4417", date(2026, 11, 24))

    outcome = post(store, agent_client(stand_ins), payment("PM1", 20000, reference="INV-0100031"))

    assert outcome.status == "posted" and lines(stand_ins, "PM1") == [("0100031", "200.00")]
    [requested] = store.audit.list(subject="PM1", action="cash_receipt.requested")
    changed = requested.details["decision_changed"]
    assert changed["decided"] == decided
    [invoice] = changed["unposted"]
    assert (invoice["invoice_no"], invoice["open_amount"]) == ("0100031", "350.00")
    assert invoice["entries"] == [
        {"deposit": keyed.deposit_no, "check_no": "4417", "date": "2026-11-24", "amount": "100.00", "by": "person"}
    ]


def test_a_recheck_that_decides_as_the_evaluation_did_records_no_change(stand_ins: SageStandIns, store: Store) -> None:
    decided = [{"invoice_no": "0100031", "invoice_type": "IN", "amount": "200.00"}]
    store.ledger.upsert("PM1", status="matched", allocations=decided)
    stand_ins.company.key_receipt("01", "ABF", "0100031", "IN", Decimal("100.00"), "4417", date(2026, 11, 24))

    post(store, agent_client(stand_ins), payment("PM1", 20000, reference="INV-0100031"))

    [requested] = store.audit.list(subject="PM1", action="cash_receipt.requested")
    assert lines(stand_ins, "PM1") == [("0100031", "200.00")] and "decision_changed" not in requested.details


def test_the_recheck_applies_a_payment_to_what_is_still_open(stand_ins: SageStandIns, store: Store) -> None:
    unposted(stand_ins, "0100031", "250.00")

    outcome = post(store, agent_client(stand_ins), payment("PM1", 20000))

    assert outcome.status == "posted"
    assert lines(stand_ins, "PM1") == [("0100031", "200.00")]


def test_the_recheck_records_each_invoices_balance_payments_today_and_open_amount(
    stand_ins: SageStandIns, store: Store
) -> None:
    unposted(stand_ins, "0100031", "250.00")

    post(store, agent_client(stand_ins), payment("PM1", 20000))

    [record] = store.audit.list(subject="PM1", action="sage.open_invoices")
    by_no = {i["invoice_no"]: i for i in record.details["invoices"]}
    assert by_no["0100031"] == {
        "invoice_no": "0100031",
        "invoice_type": "IN",
        "balance": "450.00",
        "payments_today": "250.00",
        "open_amount": "200.00",
    }


class AgentWithSomeoneKeying(AgentClient):
    """The real agent; someone keys a receipt in Sage between our re-check and our write."""

    someone: Callable[[], object]

    def get_open_invoices(self, ar_division_no: str, customer_no: str) -> list[InvoiceRecord]:
        invoices = super().get_open_invoices(ar_division_no, customer_no)
        self.someone()
        return invoices


def test_a_write_sage_refuses_for_the_balance_is_held_sage_rejected_with_sages_message(
    stand_ins: SageStandIns, store: Store
) -> None:
    agent = AgentWithSomeoneKeying(
        stand_ins.agent_wsdl,
        username=stand_ins.username,
        password=stand_ins.password,
        company_code=stand_ins.company_code,
    )
    keyed = cash_receipt_request("KEYED-BY-A-PERSON", lines=(("0100031", "450.00"),))
    agent.someone = lambda: agent_client(stand_ins).create_cash_receipt(keyed)

    outcome = post(store, agent, payment("PM1", 45000, reference="INV-0100031"))

    entry = store.ledger.entry("PM1")
    assert (entry.status, entry.reason) == ("held", "sage_rejected")
    [item] = store.review.open_for("PM1")
    assert item.details["sage_message"] and item.details["sage_message"] in (outcome.message or "")
    assert lines(stand_ins, "PM1") == []


def test_an_operators_amount_above_the_open_amount_is_refused_naming_the_unposted_receipts(
    stand_ins: SageStandIns, store: Store
) -> None:
    unposted(stand_ins, "0100031", "400.00")

    with pytest.raises(AllocationError, match=r"open amount 50\.00 \(balance 450\.00 less 400\.00 of unposted"):
        post(store, agent_client(stand_ins), payment("PM1", 10000), [Allocation("0100031", Decimal("100.00"))])

    assert lines(stand_ins, "PM1") == [] and store.ledger.entry("PM1").status == "held"


def test_an_operators_invoice_consumed_by_unposted_receipts_is_refused_saying_so(
    stand_ins: SageStandIns, store: Store
) -> None:
    unposted(stand_ins, "0100031", "450.00")

    with pytest.raises(AllocationError, match="consumed by unposted receipts"):
        post(store, agent_client(stand_ins), payment("PM1", 10000), [Allocation("0100031")])


def test_an_operators_invoices_without_amounts_take_their_open_amounts_oldest_first(
    stand_ins: SageStandIns, store: Store
) -> None:
    unposted(stand_ins, "0100030", "1000.00")

    outcome = post(
        store, agent_client(stand_ins), payment("PM1", 30000), [Allocation("0100031"), Allocation("0100030")]
    )

    assert outcome.status == "posted"
    assert lines(stand_ins, "PM1") == [("0100030", "200.00"), ("0100031", "100.00")]
