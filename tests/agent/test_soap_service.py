"""The agent's SOAP endpoint at the HTTP level: WSDL, Sage-shaped faults, and hostile XML refused."""

from __future__ import annotations

import logging

import pytest
import requests
from lxml import etree

from ml_connector_dagster.agent import agent_app
from ml_connector_dagster.httpserve import ServerHandle, serve_in_thread

from support.raw_soap import envelope, fault, logon, post


def test_the_wsdl_is_served_with_the_address_it_was_fetched_from(agent_server: ServerHandle) -> None:
    response = requests.get(f"{agent_server.url}/agent?wsdl", timeout=10)

    wsdl = etree.fromstring(response.content)
    address = wsdl.find(".//{http://schemas.xmlsoap.org/wsdl/soap/}address").get("location")
    assert response.status_code == 200 and address == f"{agent_server.url}/agent"


def test_unposted_receipts_without_a_customer_is_a_client_fault_naming_it(agent_server: ServerHandle) -> None:
    body = f"<a:GetUnpostedReceipts>{logon()}<a:arDivisionNo>01</a:arDivisionNo></a:GetUnpostedReceipts>"

    response = post(agent_server, envelope(body))

    assert response.status_code == 400 and "customerNo" in response.text


def test_a_sage_error_is_a_soap_fault_with_masfault_detail(agent_server: ServerHandle) -> None:
    customer = "<a:arDivisionNo>01</a:arDivisionNo><a:customerNo>NOPE</a:customerNo>"
    body = f"<a:GetOpenInvoices>{logon()}{customer}</a:GetOpenInvoices>"

    response = post(agent_server, envelope(body))

    assert response.status_code == 500
    assert fault(response) == {
        "faultcode": "a:CI_NoKey",
        "faultstring": "Customer 01-NOPE does not exist.",
        "ErrorCode": "CI_NoKey",
        "ErrorMessage": "Customer 01-NOPE does not exist.",
    }


def test_a_wrong_password_faults_with_sages_text(agent_server: ServerHandle) -> None:
    response = post(agent_server, envelope(f"<a:Ping>{logon('wrong')}</a:Ping>"))

    assert fault(response)["faultstring"].startswith("Logon failure: The user logon or password does not match")


def test_a_missing_parameter_is_named(agent_server: ServerHandle) -> None:
    response = post(
        agent_server, envelope(f"<a:GetOpenInvoices>{logon()}<a:arDivisionNo>01</a:arDivisionNo></a:GetOpenInvoices>")
    )

    assert response.status_code == 400
    assert fault(response)["faultstring"] == "The element 'customerNo' is required."


def test_an_amount_with_three_decimals_is_refused_before_anything_is_written(agent_server: ServerHandle) -> None:
    body = (
        f"<a:CreateCashReceipt>{logon()}<a:idempotencyKey>PM1</a:idempotencyKey><a:depositDate>2026-11-25</a:depositDate>"
        "<a:bankCode>A</a:bankCode><a:arDivisionNo>01</a:arDivisionNo><a:customerNo>ABF</a:customerNo>"
        "<a:amount>450.001</a:amount><a:lines><a:line><a:invoiceNo>0100031</a:invoiceNo><a:invoiceType>IN</a:invoiceType>"
        "<a:amount>450.001</a:amount></a:line></a:lines></a:CreateCashReceipt>"
    )

    response = post(agent_server, envelope(body))

    assert response.status_code == 400 and "at most 2 decimals" in fault(response)["faultstring"]


def test_an_unknown_operation_is_a_client_fault(agent_server: ServerHandle) -> None:
    response = post(agent_server, envelope(f"<a:DropTables>{logon()}</a:DropTables>"))

    assert (response.status_code, fault(response)["faultcode"]) == (400, "s:Client")


XXE = """<?xml version="1.0"?>
<!DOCTYPE s:Envelope [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/" xmlns:a="urn:ml-connector:sage100:agent">
<s:Body><a:GetOpenInvoices><a:logon><a:Username>&xxe;</a:Username><a:Password>x</a:Password></a:logon>
<a:companyCode>ABC</a:companyCode><a:arDivisionNo>01</a:arDivisionNo><a:customerNo>ABF</a:customerNo>
</a:GetOpenInvoices></s:Body></s:Envelope>"""

LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body>&lol3;</s:Body></s:Envelope>"""


@pytest.mark.parametrize(
    "payload",
    [
        XXE.encode(),
        LAUGHS.encode(),
        XXE.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="utf-16"?>').encode("utf-16"),
    ],
    ids=["external-entity", "entity-expansion", "doctype-in-utf16"],
)
def test_doctypes_and_entities_are_refused(agent_server: ServerHandle, payload: bytes) -> None:
    response = post(agent_server, payload)

    assert response.status_code == 400
    assert "not allowed" in fault(response)["faultstring"]
    assert b"root:" not in response.content


def test_an_oversized_request_is_refused_before_parsing(agent_server: ServerHandle) -> None:
    response = post(agent_server, envelope("<a:Ping>" + "x" * (1024 * 1024 + 1) + "</a:Ping>"))

    assert response.status_code == 413


def test_malformed_xml_is_a_client_fault(agent_server: ServerHandle) -> None:
    response = post(agent_server, b"<s:Envelope><unclosed>")

    assert response.status_code == 400 and "not well-formed" in fault(response)["faultstring"]


def test_an_unexpected_error_is_logged_without_the_request_and_answered_generically(
    caplog: pytest.LogCaptureFixture,
) -> None:
    class Broken:
        name = "broken"

        def company_name(self, credentials):
            raise RuntimeError("boom")

    server = serve_in_thread(agent_app(Broken()))
    caplog.set_level(logging.DEBUG)
    try:
        response = post(server, envelope(f"<a:Ping>{logon('S3cret-Known')}</a:Ping>"))
    finally:
        server.stop()

    assert response.status_code == 500 and fault(response)["faultstring"] == "Internal error; see the service log."
    assert "SOAP operation Ping failed" in caplog.text and "S3cret-Known" not in caplog.text
