"""Hand-built SOAP requests for the agent, for tests that need exact bytes on the wire (zeep would refuse them)."""

from __future__ import annotations

import requests
from lxml import etree

from ml_connector_dagster.agent.service import NAMESPACE
from ml_connector_dagster.httpserve import ServerHandle

SOAP = "http://schemas.xmlsoap.org/soap/envelope/"


def envelope(body: str) -> str:
    return (
        f'<?xml version="1.0" encoding="utf-8"?><s:Envelope xmlns:s="{SOAP}" xmlns:a="{NAMESPACE}">'
        f"<s:Body>{body}</s:Body></s:Envelope>"
    )


def logon(password: str = "demo-password", user: str = "demo", company: str = "ABC") -> str:
    return (
        f"<a:logon><a:Username>{user}</a:Username><a:Password>{password}</a:Password></a:logon>"
        f"<a:companyCode>{company}</a:companyCode>"
    )


def post(server: ServerHandle, payload: str | bytes) -> requests.Response:
    data = payload.encode("utf-8") if isinstance(payload, str) else payload
    return requests.post(f"{server.url}/agent", data=data, headers={"Content-Type": "text/xml"}, timeout=10)


def fault(response: requests.Response) -> dict[str, str]:
    root = etree.fromstring(response.content)
    out = {el.tag.rsplit("}", 1)[-1]: (el.text or "") for el in root.iter() if isinstance(el.tag, str)}
    return {k: out.get(k, "") for k in ("faultcode", "faultstring", "ErrorCode", "ErrorMessage")}


def create_receipt_body(
    amount: str = "450.00",
    line_amount: str | None = None,
    deposit_date: str = "2026-11-25",
    key: str = "PM1",
    customer: str = "ABF",
    invoice: str = "0100031",
) -> str:
    """A CreateCashReceipt for 01-ABF paying one invoice, with each value exactly as given."""
    return (
        f"<a:CreateCashReceipt>{logon()}<a:idempotencyKey>{key}</a:idempotencyKey>"
        f"<a:depositDate>{deposit_date}</a:depositDate><a:bankCode>A</a:bankCode>"
        f"<a:arDivisionNo>01</a:arDivisionNo><a:customerNo>{customer}</a:customerNo><a:amount>{amount}</a:amount>"
        f"<a:lines><a:line><a:invoiceNo>{invoice}</a:invoiceNo><a:invoiceType>IN</a:invoiceType>"
        f"<a:amount>{line_amount or amount}</a:amount></a:line></a:lines></a:CreateCashReceipt>"
    )
