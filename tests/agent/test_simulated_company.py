"""Sage's cash receipt rules as the product sees them: the agent serving the simulated company, called with zeep
(the product's AgentClient) over real SOAP on loopback.

Entering a receipt raises the invoice's PaymentsToday and leaves Balance to the Cash Receipts Journal update;
the money still open is Balance less every unposted receipt, people's included; deposits are the product's
own; reversal follows Sage's practice; an inactive customer is a warning the product gets back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from ml_connector_dagster.agent import agent_app
from ml_connector_dagster.httpserve import ServerHandle, serve_in_thread
from ml_connector_dagster.sage100 import AgentClient, InvoiceRecord, SageWriteRejected
from ml_connector_dagster.sage100.clients import clear_wsdl_cache
from ml_connector_dagster.sage100.model import FAULT_OVER_APPLIED, OVER_APPLIED_TEXT
from ml_connector_dagster.sandbox.sage_company import SageCompany
from ml_connector_dagster.sandbox.scenario import Scenario
from ml_connector_dagster.sandbox.simulated_backend import SimulatedBackend

from support.sage import cash_receipt_request

TODAY = date(2026, 11, 25)


def client_of(server: ServerHandle) -> AgentClient:
    return AgentClient(f"{server.url}/agent?wsdl", username="demo", password="demo-password", company_code="ABC")


@pytest.fixture
def agent(agent_server: ServerHandle) -> Iterator[AgentClient]:
    yield client_of(agent_server)
    clear_wsdl_cache()


@pytest.fixture
def agent_over(tmp_path: Path, scenario: Scenario) -> Iterator[Callable[[Scenario], AgentClient]]:
    """An agent over a company loaded from a changed copy of the bundled scenario."""
    servers: list[ServerHandle] = []

    def start(changed: Scenario) -> AgentClient:
        company = SageCompany.create(tmp_path / f"company{len(servers)}.sqlite", changed)
        servers.append(serve_in_thread(agent_app(SimulatedBackend(company), page_size=3)))
        return client_of(servers[-1])

    yield start
    clear_wsdl_cache()
    for server in servers:
        server.stop()


def invoice(agent: AgentClient, invoice_no: str) -> InvoiceRecord:
    return next(i for i in agent.get_open_invoices("01", "ABF") if i.InvoiceNo == invoice_no)


# --- entry and the journal update -------------------------------------------------------------------------------


def test_after_create_cash_receipt_the_balance_is_unchanged_and_payments_today_is_up(agent: AgentClient) -> None:
    agent.create_cash_receipt(cash_receipt_request("PM1", lines=(("0100030", "200.00"),)))

    entered = invoice(agent, "0100030")

    assert (entered.Balance, entered.PaymentsToday) == (Decimal("1200.00"), Decimal("200.00"))


def test_after_the_journal_update_the_balance_is_down_and_payments_today_is_zero(
    agent: AgentClient, company: SageCompany
) -> None:
    agent.create_cash_receipt(cash_receipt_request("PM1", lines=(("0100030", "200.00"),)))

    company.post_cash_receipts_journal()

    posted = invoice(agent, "0100030")
    assert (posted.Balance, posted.PaymentsToday) == (Decimal("1000.00"), Decimal("0.00"))
    assert agent.find_cash_receipt("PM1").status == "posted"


def test_a_second_receipt_beyond_the_open_amount_is_refused_with_sages_message(agent: AgentClient) -> None:
    agent.create_cash_receipt(cash_receipt_request("PM1", lines=(("0100031", "300.00"),)))

    with pytest.raises(SageWriteRejected) as caught:
        agent.create_cash_receipt(cash_receipt_request("PM2", lines=(("0100031", "300.00"),)))

    assert caught.value.code == FAULT_OVER_APPLIED
    assert caught.value.message == (
        f"{OVER_APPLIED_TEXT} Invoice 0100031 (IN) of customer 01-ABF: Balance 450.00, PaymentsToday 300.00 "
        "(unposted receipts), 150.00 open; this receipt applies 300.00."
    )
    assert agent.find_cash_receipt("PM2") is None


def test_after_the_journal_update_only_what_is_left_can_be_applied(agent: AgentClient, company: SageCompany) -> None:
    agent.create_cash_receipt(cash_receipt_request("PM1", lines=(("0100031", "300.00"),)))
    company.post_cash_receipts_journal()

    with pytest.raises(SageWriteRejected, match=r"Balance 150\.00, PaymentsToday 0\.00"):
        agent.create_cash_receipt(cash_receipt_request("PM2", lines=(("0100031", "300.00"),)))


# --- people's receipts ------------------------------------------------------------------------------------------


def test_a_receipt_a_person_keyed_counts_against_the_open_amount(agent: AgentClient, company: SageCompany) -> None:
    company.key_receipt("01", "ABF", "0100031", "IN", Decimal("400.00"), "1234", TODAY)

    with pytest.raises(SageWriteRejected, match=r"PaymentsToday 400\.00 \(unposted receipts\), 50\.00 open"):
        agent.create_cash_receipt(cash_receipt_request("PM1"))

    assert invoice(agent, "0100031").PaymentsToday == Decimal("400.00")


def test_the_product_never_adds_its_receipt_to_a_deposit_a_person_keyed(
    agent: AgentClient, company: SageCompany
) -> None:
    keyed = company.key_receipt("01", "ABF", "0100030", "IN", Decimal("100.00"), "1234", TODAY)

    receipt = agent.create_cash_receipt(cash_receipt_request("PM1"))

    assert receipt.deposit_no != keyed.deposit_no
    assert [h["CheckNo"] for h in company.rows("AR_CashReceiptsHeader") if h["DepositNo"] == keyed.deposit_no] == [
        "1234"
    ]


# --- reversal ----------------------------------------------------------------------------------------------------


def test_reversing_an_unposted_receipt_deletes_it(agent: AgentClient, company: SageCompany) -> None:
    agent.create_cash_receipt(cash_receipt_request("PM1"))

    reversed_ = agent.reverse_cash_receipt("PM1", "cancelled")

    assert reversed_.status == "reversed" and company.rows("AR_CashReceiptsHeader") == []
    assert invoice(agent, "0100031").PaymentsToday == Decimal("0.00")


def test_reversing_a_posted_receipt_enters_a_negative_receipt_with_the_same_check_number(
    agent: AgentClient, company: SageCompany
) -> None:
    original = agent.create_cash_receipt(cash_receipt_request("PM1"))
    company.post_cash_receipts_journal()

    reversed_ = agent.reverse_cash_receipt("PM1", "late failure")

    [negative] = company.rows("AR_CashReceiptsHeader")
    assert (negative["CheckNo"], negative["PostingAmt"]) == (original.check_no, "-450.00")
    assert (reversed_.status, agent.find_cash_receipt("PM1").status) == ("reversed", "reversed")
    entered = invoice(agent, "0100031")
    assert (entered.Balance, entered.PaymentsToday) == (Decimal("0.00"), Decimal("-450.00"))


def test_a_reversed_posted_receipt_gives_the_balance_back_at_the_next_journal_update(
    agent: AgentClient, company: SageCompany
) -> None:
    agent.create_cash_receipt(cash_receipt_request("PM1"))
    company.post_cash_receipts_journal()
    agent.reverse_cash_receipt("PM1", "late failure")

    company.post_cash_receipts_journal()

    restored = invoice(agent, "0100031")
    assert (restored.Balance, restored.PaymentsToday) == (Decimal("450.00"), Decimal("0.00"))


def test_reversing_twice_changes_nothing(agent: AgentClient, company: SageCompany) -> None:
    agent.create_cash_receipt(cash_receipt_request("PM1"))
    company.post_cash_receipts_journal()
    agent.reverse_cash_receipt("PM1", "late failure")
    headers = company.rows("AR_CashReceiptsHeader")

    again = agent.reverse_cash_receipt("PM1", "late failure")

    assert again.status == "reversed" and company.rows("AR_CashReceiptsHeader") == headers
    assert invoice(agent, "0100031").PaymentsToday == Decimal("-450.00")


# --- warnings -----------------------------------------------------------------------------------------------------


def test_an_inactive_customers_receipt_is_written_and_the_warning_comes_back(
    agent_over: Callable[[Scenario], AgentClient], scenario: Scenario
) -> None:
    inactive = tuple(replace(c, CustomerStatus="I") if c.CustomerNo == "ABF" else c for c in scenario.sage_customers)
    agent = agent_over(replace(scenario, sage_customers=inactive))

    receipt = agent.create_cash_receipt(cash_receipt_request("PM1"))

    assert receipt.created and receipt.warnings == ("Customer 01-ABF is inactive.",)
    assert agent.find_cash_receipt("PM1").warnings == ("Customer 01-ABF is inactive.",)
    assert invoice(agent, "0100031").PaymentsToday == Decimal("450.00")


def test_a_receipt_without_warnings_carries_none(agent: AgentClient) -> None:
    assert agent.create_cash_receipt(cash_receipt_request("PM1")).warnings == ()


def test_an_invoice_the_customer_does_not_have_is_refused_not_taken_as_a_prepayment(
    agent: AgentClient, company: SageCompany
) -> None:
    with pytest.raises(SageWriteRejected, match=r"Invoice 0100040 \(IN\) is not on file for customer 01-ABF"):
        agent.create_cash_receipt(cash_receipt_request("PM1", lines=(("0100040", "100.00"),)))

    assert [i["InvoiceType"] for i in company.rows("AR_OpenInvoice") if i["CustomerNo"] == "ABF"] == ["IN"] * 3
