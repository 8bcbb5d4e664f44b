"""An idempotency key names one receipt: asking it for another is a conflict, never the first receipt.

Through zeep against the agent over loopback, on both backends (the simulated company, and BOI over the
fake COM objects). A repeat of the same request still returns the first receipt and writes nothing; the
deposit date and reference may differ in a repeat (the product dates a retry by the day it runs), the
bank, customer, amount and lines may not.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date

import pytest

from ml_connector_dagster.agent import BOIBackend, agent_app
from ml_connector_dagster.httpserve import serve_in_thread
from ml_connector_dagster.sage100 import (
    AgentClient,
    RetryPolicy,
    SageKeyConflict,
    SageReceiptReversed,
    SageWriteRejected,
)
from ml_connector_dagster.sage100.clients import clear_wsdl_cache
from ml_connector_dagster.sandbox.sage_company import SageCompany
from ml_connector_dagster.sandbox.scenario import Scenario
from ml_connector_dagster.sandbox.simulated_backend import SimulatedBackend

from support.boi_fake import RECEIPTS, FakeSage
from support.sage import MakeRequest

Written = Callable[[], int]


@pytest.fixture(params=["simulated", "boi"])
def served(
    request: pytest.FixtureRequest, company: SageCompany, scenario: Scenario, backend: BOIBackend, sage: FakeSage
) -> Iterator[tuple[AgentClient, Written]]:
    """A zeep client of the agent over either backend, and a count of receipt headers written to Sage."""
    if request.param == "simulated":
        chosen, written = SimulatedBackend(company), lambda: len(company.rows("AR_CashReceiptsHeader"))
        c = scenario.company
        logon = (c.username, c.password, c.company_code)
    else:
        chosen, written = backend, lambda: len(sage.tables.get(RECEIPTS, []))
        logon = ("demo", "demo-password", "ABC")
    server = serve_in_thread(agent_app(chosen))
    client = AgentClient(
        f"{server.url}/agent?wsdl",
        username=logon[0],
        password=logon[1],
        company_code=logon[2],
        retry=RetryPolicy(attempts=1),
    )
    yield client, written
    clear_wsdl_cache()
    server.stop()


@pytest.mark.parametrize(
    "change, asked",
    [
        ({"customer": "BRESLIN", "lines": (("0100040", "450.00"),)}, "customer 01-BRESLIN"),
        ({"lines": (("0100031", "400.00"),)}, "400.00"),
        ({"lines": (("0100030", "450.00"),)}, "0100030"),
    ],
    ids=["another-customer", "another-amount", "other-lines"],
)
def test_a_key_reused_for_another_receipt_is_a_conflict_naming_both(
    served: tuple[AgentClient, Written], make_request: MakeRequest, change: dict, asked: str
) -> None:
    client, written = served
    first = client.create_cash_receipt(make_request("PM1"))

    with pytest.raises(SageKeyConflict) as caught:
        client.create_cash_receipt(make_request("PM1", **change))

    assert isinstance(caught.value, SageWriteRejected) and caught.value.code == "AR_IdempotencyConflict"
    message = caught.value.message
    assert "PM1" in message and first.receipt_id in message and "customer 01-ABF" in message and asked in message
    assert written() == 1


def test_the_same_request_again_returns_the_first_receipt(
    served: tuple[AgentClient, Written], make_request: MakeRequest
) -> None:
    client, written = served
    first = client.create_cash_receipt(make_request("PM1"))

    again = client.create_cash_receipt(
        replace(make_request("PM1"), deposit_date=date(2026, 11, 26), reference="retried next day")
    )

    assert (again.receipt_id, again.created) == (first.receipt_id, False) and written() == 1


def test_a_key_whose_receipt_was_reversed_is_refused_saying_so(
    served: tuple[AgentClient, Written], make_request: MakeRequest
) -> None:
    client, _written = served
    first = client.create_cash_receipt(make_request("PM1"))
    client.reverse_cash_receipt("PM1", "chargeback")

    with pytest.raises(SageReceiptReversed) as caught:
        client.create_cash_receipt(make_request("PM1"))

    assert isinstance(caught.value, SageWriteRejected) and caught.value.code == "AR_ReceiptReversed"
    assert "PM1" in caught.value.message and first.receipt_id in caught.value.message
    assert "reversed (chargeback)" in caught.value.message
