"""The agent client (zeep) against the agent over the simulated company, over real SOAP on loopback."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from ml_connector_dagster.agent import agent_app
from ml_connector_dagster.httpserve import ServerHandle, serve_in_thread
from ml_connector_dagster.sage100 import (
    AgentClient,
    ReceiptLine,
    RetryPolicy,
    SageCompanyError,
    SageFault,
    SageKeyConflict,
    SageLogonError,
    SageNotFound,
    SageOutcomeUnknown,
    SageUnavailable,
    SageWriteRejected,
)
from ml_connector_dagster.sage100.clients import clear_wsdl_cache
from ml_connector_dagster.sandbox.sage_company import SageCompany
from ml_connector_dagster.sandbox.sage_services import SageStandIns
from ml_connector_dagster.sandbox.simulated_backend import SimulatedBackend

from support.sage import PAGE_SIZE, cash_receipt_request


def headers(company: SageCompany) -> list[dict]:
    return company.rows("AR_CashReceiptsHeader")


# --- reads --------------------------------------------------------------------------------------------------------


def test_ping_names_the_company_and_backend(agent: AgentClient) -> None:
    info = agent.ping()

    assert (info.company_code, info.company_name, info.backend) == ("ABC", "ABC Services Ltd", "simulated")


def test_invoices_come_in_pages_in_a_stable_order_and_the_last_page_has_no_token(
    agent: AgentClient, stand_ins: SageStandIns
) -> None:
    pages, token = [], None
    while True:
        page = agent.list_open_invoices(page_token=token)
        pages.append(page)
        token = page.next_page_token
        if token is None:
            break

    invoices = [i for p in pages for i in p.items]
    expected = stand_ins.company.list_open_invoices(None, None, 1000)
    assert invoices == expected
    assert all(len(p.items) == PAGE_SIZE for p in pages[:-1]) and 0 < len(pages[-1].items) <= PAGE_SIZE
    assert [(i.stamp, i.key) for i in invoices] == sorted((i.stamp, i.key) for i in invoices)


def test_invoice_fields_use_sages_names_and_exact_decimals(agent: AgentClient) -> None:
    first = agent.list_open_invoices().items[0]

    assert isinstance(first.Balance, Decimal) and isinstance(first.InvoiceDate, date)
    assert len(first.DateUpdated) == 8 and len(first.TimeUpdated) == 10


def test_after_one_invoice_changes_the_next_poll_returns_only_that_invoice(
    agent: AgentClient, stand_ins: SageStandIns
) -> None:
    newest = max(i.stamp for i in agent.iter_open_invoices())

    stand_ins.company.adjust_invoice_balance("01", "CAPITAL", "0100050", "IN", Decimal("10.00"))

    changed = list(agent.iter_open_invoices(updated_since=newest.to_datetime()))
    assert [(i.InvoiceNo, i.Balance) for i in changed] == [("0100050", Decimal("10.00"))]


def test_a_poll_with_no_changes_returns_nothing(agent: AgentClient) -> None:
    newest = max(i.stamp for i in agent.iter_open_invoices())

    assert agent.list_open_invoices(updated_since=newest.to_datetime()).items == []


def test_customers_are_listed_with_their_balances(agent: AgentClient) -> None:
    customers = {c.CustomerNo: c for c in agent.iter_customers()}

    assert customers["ABF"].CurrentBalance == Decimal("1650.00") and customers["ABF"].EmailAddress == "ap@abf.example"


def test_a_page_token_from_another_list_is_refused(agent: AgentClient) -> None:
    token = agent.list_customers().next_page_token

    with pytest.raises(SageFault, match="pageToken"):
        agent.list_open_invoices(page_token=token)


def test_get_open_invoices_gives_the_customers_current_rows_including_collected_ones(agent: AgentClient) -> None:
    invoices = agent.get_open_invoices("01", "ABF")

    assert [(i.InvoiceNo, i.Balance) for i in invoices] == [
        ("0100020", Decimal("0.00")),
        ("0100030", Decimal("1200.00")),
        ("0100031", Decimal("450.00")),
    ]


def test_an_unknown_customer_is_not_found(agent: AgentClient) -> None:
    with pytest.raises(SageNotFound):
        agent.get_open_invoices("01", "NOPE")
    with pytest.raises(SageNotFound):
        agent.get_unposted_receipts("01", "NOPE")


def test_unposted_receipts_name_a_persons_and_the_products_until_the_journal_update(
    agent: AgentClient, stand_ins: SageStandIns
) -> None:
    assert agent.get_unposted_receipts("01", "ABF") == []
    keyed = stand_ins.company.key_receipt("01", "ABF", "0100030", "IN", Decimal("200.00"), "4417", date(2026, 11, 24))
    ours = agent.create_cash_receipt(cash_receipt_request("PM0001"))

    lines = agent.get_unposted_receipts("01", "ABF")

    assert [
        (u.deposit_no, u.check_no, u.deposit_date, u.invoice_no, u.invoice_type, u.amount_posted, u.idempotency_key)
        for u in lines
    ] == [
        (keyed.deposit_no, "4417", date(2026, 11, 24), "0100030", "IN", Decimal("200.00"), ""),
        (ours.deposit_no, ours.check_no, date(2026, 11, 25), "0100031", "IN", Decimal("450.00"), "PM0001"),
    ]
    assert [u.ours for u in lines] == [False, True]
    assert all(isinstance(u.amount_posted, Decimal) for u in lines)
    assert agent.get_unposted_receipts("01", "CAPITAL") == []

    stand_ins.company.post_cash_receipts_journal()

    assert agent.get_unposted_receipts("01", "ABF") == []


@pytest.mark.parametrize(
    "change, error", [({"password": "Wr0ng-Pa55"}, SageLogonError), ({"company_code": "XYZ"}, SageCompanyError)]
)
def test_bad_credentials_are_typed_errors_on_every_operation(
    stand_ins: SageStandIns, change: dict, error: type
) -> None:
    values = {
        "username": stand_ins.username,
        "password": stand_ins.password,
        "company_code": stand_ins.company_code,
        **change,
    }
    client = AgentClient(stand_ins.agent_wsdl, **values)

    for call in (
        client.ping,
        lambda: client.get_open_invoices("01", "ABF"),
        lambda: client.create_cash_receipt(cash_receipt_request()),
        lambda: client.find_cash_receipt("PM1"),
    ):
        with pytest.raises(error):
            call()
    assert headers(stand_ins.company) == []


# --- writes -------------------------------------------------------------------------------------------------------


def test_create_cash_receipt_twice_with_one_key_gives_one_receipt(agent: AgentClient, stand_ins: SageStandIns) -> None:
    first = agent.create_cash_receipt(cash_receipt_request("PM1"))
    second = agent.create_cash_receipt(cash_receipt_request("PM1"))

    assert first.created and not second.created
    assert (second.receipt_id, second.deposit_no, second.check_no) == (
        first.receipt_id,
        first.deposit_no,
        first.check_no,
    )
    assert len(headers(stand_ins.company)) == 1
    paid = agent.get_open_invoices("01", "ABF")[2]
    assert (paid.Balance, paid.PaymentsToday) == (Decimal("450.00"), Decimal("450.00"))


def test_the_key_still_holds_after_the_agent_restarts(stand_ins: SageStandIns, retry: RetryPolicy) -> None:
    def serve() -> tuple[ServerHandle, AgentClient]:
        server = serve_in_thread(agent_app(SimulatedBackend(SageCompany(stand_ins.company.path))))
        return server, AgentClient(
            f"{server.url}/agent?wsdl", username="demo", password="demo-password", company_code="ABC", retry=retry
        )

    server, client = serve()
    first = client.create_cash_receipt(cash_receipt_request("PM1"))
    clear_wsdl_cache()
    server.stop()
    server, client = serve()
    try:
        again = client.create_cash_receipt(cash_receipt_request("PM1"))
    finally:
        clear_wsdl_cache()
        server.stop()

    assert again.receipt_id == first.receipt_id and not again.created
    assert len(headers(stand_ins.company)) == 1


def test_lines_not_adding_up_are_rejected_with_sages_message(agent: AgentClient, stand_ins: SageStandIns) -> None:
    with pytest.raises(SageWriteRejected) as caught:
        agent.create_cash_receipt(cash_receipt_request(amount="500.00"))

    assert str(caught.value) == "The distribution is out of balance."
    assert headers(stand_ins.company) == [] and agent.find_cash_receipt("PM0001") is None


def test_paying_more_than_an_invoices_balance_is_rejected(agent: AgentClient, stand_ins: SageStandIns) -> None:
    with pytest.raises(SageWriteRejected, match=re.escape("The invoice balance was exceeded. Invoice 0100031 (IN)")):
        agent.create_cash_receipt(cash_receipt_request(lines=(("0100031", "450.01"),)))

    assert headers(stand_ins.company) == []


@pytest.mark.parametrize(
    "kwargs", [{"customer": "NOPE"}, {"lines": (("0999999", "1.00"),)}], ids=["unknown-customer", "unknown-invoice"]
)
def test_unknown_customers_and_invoices_are_rejected_as_not_on_file(agent: AgentClient, kwargs: dict) -> None:
    with pytest.raises(SageWriteRejected) as caught:
        agent.create_cash_receipt(cash_receipt_request(**kwargs))

    assert caught.value.code == "CI_NOF" and "is not on file" in str(caught.value)


def test_find_returns_the_receipt_or_nothing(agent: AgentClient) -> None:
    lines = (("0100030", "200.00"), ("0100031", "450.00"))
    written = agent.create_cash_receipt(cash_receipt_request("PM1", lines=lines))

    found = agent.find_cash_receipt("PM1")

    assert found.lines == written.lines and found.amount == Decimal("650.00") and found.status == "entered"
    assert agent.find_cash_receipt("PM-never") is None


def test_reversing_restores_the_invoice_and_reversing_an_unknown_key_is_not_found(agent: AgentClient) -> None:
    agent.create_cash_receipt(cash_receipt_request("PM1"))

    reversed_ = agent.reverse_cash_receipt("PM1", "charged back")

    assert reversed_.status == "reversed" and reversed_.reversal_reason == "charged back"
    restored = agent.get_open_invoices("01", "ABF")[2]
    assert (restored.Balance, restored.PaymentsToday) == (Decimal("450.00"), Decimal("0.00"))
    with pytest.raises(SageNotFound):
        agent.reverse_cash_receipt("PM-never", "x")


def test_floats_are_refused_before_anything_is_sent() -> None:
    with pytest.raises(ValueError, match="floats are not accepted"):
        ReceiptLine("0100031", "IN", 450.0)


# --- failures on the wire -------------------------------------------------------------------------------------------


class Misbehave:
    """An ASGI wrapper in front of the agent that fails chosen calls the way networks do.

    plan: operation name -> list of actions, used one per call: "fail_before" (503, the agent never sees
    it), "fail_after" (the agent handles it, the answer is lost: 503), "slow" (answers after 1 s).
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.plan: dict[str, list[str]] = {}
        self.seen: list[str] = []
        self.wsdl_fetches = 0

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["method"] == "GET":
            self.wsdl_fetches += 1
            return await self.app(scope, receive, send)
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        operation = next(
            (
                op
                for op in ("CreateCashReceipt", "FindCashReceipt", "ListOpenInvoices", "Ping", "GetOpenInvoices")
                if f":{op}>".encode() in body or f"<{op}>".encode() in body
            ),
            "?",
        )
        self.seen.append(operation)
        action = (self.plan.get(operation) or [None]).pop(0) if self.plan.get(operation) else None

        async def replay() -> dict:
            return {"type": "http.request", "body": body, "more_body": False}

        if action == "fail_before":
            return await _unavailable(send)
        if action == "fail_after":

            async def discard(message: dict) -> None:
                pass

            await self.app(scope, replay, discard)
            return await _unavailable(send)
        if action == "slow":
            await asyncio.sleep(1)
        await self.app(scope, replay, send)


async def _unavailable(send: Any) -> None:
    await send({"type": "http.response.start", "status": 503, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"Service Unavailable"})


@pytest.fixture
def flaky(stand_ins: SageStandIns) -> Iterator[tuple[Misbehave, ServerHandle]]:
    proxy = Misbehave(agent_app(SimulatedBackend(stand_ins.company)))
    server = serve_in_thread(proxy)
    yield proxy, server
    clear_wsdl_cache()
    server.stop()


def flaky_client(server: ServerHandle, retry: RetryPolicy, timeout: float = 30) -> AgentClient:
    return AgentClient(
        f"{server.url}/agent?wsdl",
        username="demo",
        password="demo-password",
        company_code="ABC",
        retry=retry,
        timeout=timeout,
    )


def test_reads_are_retried_with_growing_jittered_waits(flaky, retry: RetryPolicy, sleeps: list[float]) -> None:
    proxy, server = flaky
    proxy.plan["GetOpenInvoices"] = ["fail_before", "fail_before", "fail_before"]

    invoices = flaky_client(server, retry).get_open_invoices("01", "ABF")

    assert len(invoices) == 3 and proxy.seen.count("GetOpenInvoices") == 4
    assert len(sleeps) == 3 and all(0 <= s <= 0.5 * 2**n for n, s in enumerate(sleeps))


def test_reads_give_up_as_unavailable_after_the_last_attempt(flaky, retry: RetryPolicy) -> None:
    proxy, server = flaky
    proxy.plan["Ping"] = ["fail_before"] * 4

    with pytest.raises(SageUnavailable, match="HTTP 503"):
        flaky_client(server, retry).ping()
    assert proxy.seen.count("Ping") == 4


def test_a_lost_answer_to_create_is_checked_with_find_and_not_written_again(
    flaky, retry: RetryPolicy, stand_ins: SageStandIns
) -> None:
    proxy, server = flaky
    proxy.plan["CreateCashReceipt"] = ["fail_after"]

    receipt = flaky_client(server, retry).create_cash_receipt(cash_receipt_request("PM1"))

    assert proxy.seen == ["CreateCashReceipt", "FindCashReceipt"]
    assert receipt.idempotency_key == "PM1" and len(headers(stand_ins.company)) == 1


def test_a_create_that_never_arrived_is_sent_again_once_find_says_it_did_not_happen(
    flaky, retry: RetryPolicy, stand_ins: SageStandIns
) -> None:
    proxy, server = flaky
    proxy.plan["CreateCashReceipt"] = ["fail_before"]

    receipt = flaky_client(server, retry).create_cash_receipt(cash_receipt_request("PM1"))

    assert proxy.seen == ["CreateCashReceipt", "FindCashReceipt", "CreateCashReceipt"]
    assert receipt.created and len(headers(stand_ins.company)) == 1


def test_after_a_lost_answer_a_receipt_found_for_another_request_is_a_conflict_not_a_success(
    flaky, retry: RetryPolicy, stand_ins: SageStandIns
) -> None:
    proxy, server = flaky
    client = flaky_client(server, retry)
    client.create_cash_receipt(cash_receipt_request("PM1"))
    proxy.plan["CreateCashReceipt"] = ["fail_after"]

    with pytest.raises(SageKeyConflict, match="customer 01-BRESLIN"):
        client.create_cash_receipt(cash_receipt_request("PM1", lines=(("0100040", "450.00"),), customer="BRESLIN"))

    assert proxy.seen[-2:] == ["CreateCashReceipt", "FindCashReceipt"] and len(headers(stand_ins.company)) == 1


def test_create_never_writes_blind_while_find_cannot_answer(flaky, retry: RetryPolicy, stand_ins: SageStandIns) -> None:
    proxy, server = flaky
    proxy.plan["CreateCashReceipt"] = ["fail_after"]
    proxy.plan["FindCashReceipt"] = ["fail_before"] * 20

    client = flaky_client(server, RetryPolicy(attempts=3, sleep=lambda s: None))

    with pytest.raises(SageOutcomeUnknown, match="call FindCashReceipt before retrying"):
        client.create_cash_receipt(cash_receipt_request("PM1"))

    assert proxy.seen.count("CreateCashReceipt") == 1


def test_a_timeout_is_retried_then_reported_as_unavailable(flaky, sleeps: list[float]) -> None:
    proxy, server = flaky
    proxy.plan["Ping"] = ["slow", "slow"]
    client = flaky_client(server, RetryPolicy(attempts=2, sleep=sleeps.append), timeout=0.3)
    client.get_open_invoices("01", "ABF")  # the WSDL is loaded before the clock matters

    with pytest.raises(SageUnavailable, match="did not answer in time"):
        client.ping()
    assert len(sleeps) == 1


def test_the_wsdl_is_fetched_once_for_many_clients_and_calls(flaky, retry: RetryPolicy) -> None:
    proxy, server = flaky

    for _ in range(3):
        flaky_client(server, retry).ping()

    assert proxy.wsdl_fetches == 1


def test_the_password_never_appears_in_logs_even_at_debug(
    agent: AgentClient, caplog: pytest.LogCaptureFixture, stand_ins: SageStandIns
) -> None:
    caplog.set_level(logging.DEBUG)

    agent.ping()
    agent.create_cash_receipt(cash_receipt_request("PM1"))
    with pytest.raises(SageLogonError) as caught:
        AgentClient(stand_ins.agent_wsdl, username="demo", password="Wr0ng-Pa55", company_code="ABC").ping()

    assert "zeep" in caplog.text or "Sage" in caplog.text  # logging really was on
    for secret in (stand_ins.password, "Wr0ng-Pa55"):
        assert secret not in caplog.text and secret not in repr(agent) and secret not in str(caught.value)


# --- a gateway in front of the agent ---------------------------------------------------------------------------------


@pytest.fixture
def gateway_page() -> Iterator[ServerHandle]:
    """A reverse proxy's own error page (well-formed markup, no SOAP fault in it) for every POST."""
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    async def bad_gateway(_request: Any) -> Response:
        return Response("<html><body><h1>502 Bad Gateway</h1></body></html>", status_code=502, media_type="text/html")

    handle = serve_in_thread(Starlette(routes=[Route("/agent", bad_gateway, methods=["POST"])]))
    yield handle
    handle.stop()


def test_a_gateway_error_page_on_a_read_is_sage_unavailable_and_retried(
    stand_ins: SageStandIns, gateway_page: ServerHandle, retry: RetryPolicy, sleeps: list[float]
) -> None:
    agent = AgentClient(
        stand_ins.agent_wsdl,
        username=stand_ins.username,
        password=stand_ins.password,
        company_code=stand_ins.company_code,
        retry=retry,
        address=f"{gateway_page.url}/agent",
    )

    with pytest.raises(SageUnavailable, match="not a SOAP fault"):
        agent.get_open_invoices("01", "ABF")
    assert len(sleeps) == retry.attempts - 1


def test_a_gateway_error_page_on_a_write_asks_sage_before_writing_again(
    stand_ins: SageStandIns, gateway_page: ServerHandle, retry: RetryPolicy
) -> None:
    agent = AgentClient(
        stand_ins.agent_wsdl,
        username=stand_ins.username,
        password=stand_ins.password,
        company_code=stand_ins.company_code,
        retry=retry,
        address=f"{gateway_page.url}/agent",
    )

    with pytest.raises(SageOutcomeUnknown, match="FindCashReceipt"):
        agent.create_cash_receipt(cash_receipt_request("PM0GATEWAY"))
    assert headers(stand_ins.company) == []
