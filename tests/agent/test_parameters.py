"""Every request value is read whole and strictly: a bad one is a client fault naming the element and the value.

Over real SOAP on loopback against the agent serving the simulated company; nothing is written for a
refused request.
"""

from __future__ import annotations

import base64

import pytest

from ml_connector_dagster.agent.service import encode_page_token
from ml_connector_dagster.httpserve import ServerHandle
from ml_connector_dagster.sandbox.sage_company import SageCompany

from support.raw_soap import create_receipt_body, envelope, fault, logon, post


def list_invoices(server: ServerHandle, since: str | None = None, token: str | None = None):
    body = "".join(
        [
            logon(),
            f"<a:updatedSince>{since}</a:updatedSince>" if since else "",
            f"<a:pageToken>{token}</a:pageToken>" if token else "",
        ]
    )
    return post(server, envelope(f"<a:ListOpenInvoices>{body}</a:ListOpenInvoices>"))


def assert_client_fault_naming(response, *words: str) -> None:
    message = fault(response)["faultstring"]
    assert response.status_code == 400, (response.status_code, message)
    assert all(word in message for word in words), message


@pytest.mark.parametrize("since", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
def test_an_updated_since_beyond_the_calendar_once_converted_is_a_client_fault_naming_it(
    agent_server: ServerHandle, since: str
) -> None:
    response = list_invoices(agent_server, since)

    assert_client_fault_naming(response, "updatedSince", since)


@pytest.mark.parametrize(
    "since",
    [
        "2026-11-20",
        "2026-11-20T10:00:00ZZ",
        "2026-11-20T10:00:00+01:00junk",
        "20261120T100000",
        "２０２６-11-20T10:00:00",
        "2026-11-20T10:00",
        "2026-W47-5",
    ],
)
def test_an_updated_since_that_is_not_exactly_an_xsd_datetime_is_refused(
    agent_server: ServerHandle, since: str
) -> None:
    response = list_invoices(agent_server, since)

    assert_client_fault_naming(response, "updatedSince", since)


@pytest.mark.parametrize("since", ["2026-11-20T10:00:00", "2026-11-20T10:00:00Z", "2026-11-20T10:00:00.25+01:00"])
def test_an_updated_since_in_any_xsd_datetime_form_is_accepted(agent_server: ServerHandle, since: str) -> None:
    response = list_invoices(agent_server, since)

    assert response.status_code == 200, fault(response)


def test_an_updated_since_before_the_year_1000_lists_everything(agent_server: ServerHandle) -> None:
    everything = list_invoices(agent_server)

    early = list_invoices(agent_server, "0999-01-01T00:00:00")

    assert early.status_code == 200 and early.content == everything.content


@pytest.mark.parametrize(
    "token",
    [
        base64.urlsafe_b64encode(b"[" * 100_000).decode(),  # nested past the JSON parser's recursion limit
        "x" * 5000,
        encode_page_token("invoice", ["1"] * 6) + "=",
    ],
    ids=["deeply-nested", "long", "padded-wrong"],
)
def test_a_mangled_page_token_is_a_client_fault(agent_server: ServerHandle, token: str) -> None:
    response = list_invoices(agent_server, token=token)

    assert_client_fault_naming(response, "pageToken")


@pytest.mark.parametrize("amount", ["١٠", "４５０.00", "1e3", "450.00\u00a0", "0x1C2", "450,00", "+-450"])
def test_an_amount_not_written_with_ascii_digits_is_refused_naming_it(
    agent_server: ServerHandle, company: SageCompany, amount: str
) -> None:
    response = post(agent_server, envelope(create_receipt_body(amount=amount)))

    assert_client_fault_naming(response, "'amount'", repr(amount)[1:-1])
    assert company.rows("AR_CashReceiptsHeader") == []


def test_a_line_amount_in_arabic_indic_digits_is_refused_naming_the_line_amount(
    agent_server: ServerHandle, company: SageCompany
) -> None:
    response = post(agent_server, envelope(create_receipt_body(amount="10.00", line_amount="١٠")))

    assert_client_fault_naming(response, "amount", "١٠")
    assert company.rows("AR_CashReceiptsHeader") == []


@pytest.mark.parametrize(
    "deposit_date",
    ["2026-11-20ZZZZ", "2026-11-20T00:00:00", "20261120", "2026-11-20Z", "٢٠٢٦-١١-٢٠", "2026-11-2", "2026-02-30"],
)
def test_a_deposit_date_that_is_not_exactly_yyyy_mm_dd_is_refused_naming_it(
    agent_server: ServerHandle, company: SageCompany, deposit_date: str
) -> None:
    response = post(agent_server, envelope(create_receipt_body(deposit_date=deposit_date)))

    assert_client_fault_naming(response, "depositDate", deposit_date)
    assert company.rows("AR_CashReceiptsHeader") == []


def test_a_comment_inside_an_amount_does_not_cut_it_short(agent_server: ServerHandle, company: SageCompany) -> None:
    response = post(agent_server, envelope(create_receipt_body(amount="4<!-- split -->50.00")))

    assert response.status_code == 200, fault(response)
    assert [h["PostingAmt"] for h in company.rows("AR_CashReceiptsHeader")] == ["450.00"]


def test_an_element_inside_a_value_is_refused_naming_it(agent_server: ServerHandle, company: SageCompany) -> None:
    response = post(agent_server, envelope(create_receipt_body(amount="450<a:x/>.00")))

    assert_client_fault_naming(response, "'amount'", "text only")
    assert company.rows("AR_CashReceiptsHeader") == []
