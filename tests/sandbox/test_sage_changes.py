"""People's work in Sage during a scenario: each step applies its Sage changes and its GoCardless actions in one
call (`POST /_sandbox/step`, `GoCardlessStandIn.play`), and the control API applies changes on demand."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from decimal import Decimal

import httpx

from ml_connector_dagster.sandbox.scenario import SageChange, Scenario, bundled, load_scenario
from ml_connector_dagster.sandbox.stack import Stack

from support.sage import agent_client, cash_receipt_request

MakeStack = Callable[..., Stack]


def invoice(stack: Stack, invoice_no: str) -> dict:
    return next(r for r in stack.sage.company.rows("AR_OpenInvoice") if r["InvoiceNo"] == invoice_no)


def test_a_played_step_applies_that_steps_sage_changes_and_its_gocardless_actions_in_one_call(
    make_stack: MakeStack,
) -> None:
    stack = make_stack()
    stack.gocardless.play_step()

    answer = httpx.post(f"{stack.gocardless.url}/_sandbox/step").json()

    assert [(c["step"], c["change"], c["outcome"]) for c in answer["sage_changes"]] == [
        (2, "key_receipt 01-BRESLIN 0100041 IN 300.00 check 5521", "applied"),
        (2, "add_customer 01-NEWCO", "applied"),
        (2, "add_invoice 01-NEWCO 0100090 IN 300.00", "applied"),
    ]
    assert {(e["links"]["payment"], e["action"]) for e in answer["events"]} >= {("PM0004", "created")}
    assert (invoice(stack, "0100041")["Balance"], invoice(stack, "0100041")["PaymentsToday"]) == ("300.00", "300.00")
    assert stack.sage.company.get_customer("01", "NEWCO")["CustomerName"] == "New Company Ltd"


def test_a_step_with_no_sage_changes_changes_nothing_in_sage(make_stack: MakeStack) -> None:
    stack = make_stack()
    before = stack.sage.company.rows("AR_OpenInvoice")

    played = stack.gocardless.play()

    assert played.sage_changes == [] and played.events
    assert stack.sage.company.rows("AR_OpenInvoice") == before


def test_the_play_lasts_as_long_as_the_longer_of_its_gocardless_actions_and_its_sage_changes(
    make_stack: MakeStack,
) -> None:
    small = load_scenario(bundled("small"))
    stack = make_stack(replace(small, sage_changes=(SageChange(12, "post_journal", line=2),)))
    for _ in range(11):
        stack.gocardless.play_step()

    last = stack.gocardless.play()

    assert (small.total_steps, stack.gocardless.status()["total_steps"]) == (7, 12)
    assert (last.step, last.finished, last.events) == (12, True, [])
    assert [c["message"] for c in last.sage_changes] == ["Cash Receipts Journal updated: 0 lines posted"]


def test_a_change_sage_refuses_is_reported_with_sages_message_and_the_play_goes_on(make_stack: MakeStack) -> None:
    stack = make_stack()
    stack.gocardless.play_step()
    agent_client(stack.sage).create_cash_receipt(
        cash_receipt_request("PMX", lines=(("0100041", "100.00"),), customer="BRESLIN")
    )

    played = stack.gocardless.play()

    refused = played.sage_changes[0]
    assert (refused["change"], refused["outcome"]) == ("key_receipt 01-BRESLIN 0100041 IN 300.00 check 5521", "refused")
    assert refused["message"].startswith("The invoice balance was exceeded. Invoice 0100041 (IN)")
    assert [c["outcome"] for c in played.sage_changes[1:]] == ["applied", "applied"] and played.events
    assert invoice(stack, "0100041")["PaymentsToday"] == "100.00"


def test_a_person_keying_a_receipt_for_an_inactive_customer_is_warned_and_the_receipt_entered(
    make_stack: MakeStack,
) -> None:
    stack = make_stack()
    change = {"action": "key_receipt", "ARDivisionNo": "01", "CustomerNo": "IVORY", "InvoiceNo": "0100080"}

    answer = httpx.post(
        f"{stack.gocardless.url}/_sandbox/sage/changes",
        json={"changes": [{**change, "InvoiceType": "IN", "Amount": "50.00", "CheckNo": "991"}]},
    )

    [result] = answer.json()["results"]
    assert (result["outcome"], result["step"]) == ("applied", None)
    assert result["message"].endswith("; warning: Customer 01-IVORY is inactive.")
    assert invoice(stack, "0100080")["PaymentsToday"] == "50.00"


def test_the_control_api_applies_peoples_changes_now_in_order(make_stack: MakeStack) -> None:
    stack = make_stack()
    keyed = {"ARDivisionNo": "01", "CustomerNo": "ABF", "InvoiceNo": "0100031", "InvoiceType": "IN"}

    answer = httpx.post(
        f"{stack.gocardless.url}/_sandbox/sage/changes",
        json={
            "changes": [
                {"action": "key_receipt", **keyed, "Amount": "150.00", "CheckNo": "4411"},
                {"action": "post_journal"},
            ]
        },
    )

    assert answer.status_code == 200
    assert [r["outcome"] for r in answer.json()["results"]] == ["applied", "applied"]
    assert (invoice(stack, "0100031")["Balance"], invoice(stack, "0100031")["PaymentsToday"]) == ("300.00", "0.00")
    assert (invoice(stack, "0100040")["Balance"], invoice(stack, "0100040")["PaymentsToday"]) == ("200.00", "0.00")


def test_a_malformed_change_is_refused_naming_what_is_wrong_and_nothing_is_applied(make_stack: MakeStack) -> None:
    stack = make_stack()
    before = stack.sage.company.rows("AR_OpenInvoice")

    answer = httpx.post(
        f"{stack.gocardless.url}/_sandbox/sage/changes",
        json={
            "changes": [
                {"action": "post_journal"},
                {
                    "action": "key_receipt",
                    "ARDivisionNo": "01",
                    "CustomerNo": "ABF",
                    "InvoiceNo": "0100031",
                    "InvoiceType": "IN",
                    "Amount": "1e2",
                    "Check": "1",
                },
            ]
        },
    )

    assert answer.status_code == 400
    assert answer.json()["problems"] == [
        "changes:2: Check: not a column of a Sage change; the columns are action, ARDivisionNo, CustomerNo, "
        "InvoiceNo, InvoiceType, InvoiceDate, InvoiceDueDate, Amount, CustomerName, EmailAddress, CheckNo",
        "changes:2: CheckNo: key_receipt needs this column",
        "changes:2: Amount: '1e2' is not a positive amount with at most 2 decimals, e.g. 1200.00",
    ]
    assert stack.sage.company.rows("AR_OpenInvoice") == before


def test_payments_today_in_the_scenario_starts_as_a_persons_unposted_receipt(make_stack: MakeStack) -> None:
    stack = make_stack()

    [header] = [h for h in stack.sage.company.rows("AR_CashReceiptsHeader") if h["CustomerNo"] == "BRESLIN"]

    assert (header["PostingAmt"], header["UDF_GC_PAYMENT_ID"]) == ("100.00", "")
    assert (invoice(stack, "0100040")["Balance"], invoice(stack, "0100040")["PaymentsToday"]) == ("300.00", "100.00")


def test_the_busy_month_has_keyed_receipts_a_mid_month_journal_update_and_two_payments_for_one_invoice() -> None:
    scenario: Scenario = load_scenario(bundled("busy_month"))
    steps = scenario.steps()

    confirmed = {a.id: k for k, step in enumerate(steps, 1) for a in step if a.action == "confirmed"}
    journal = [c.step for c in scenario.sage_changes if c.action == "post_journal"]
    assert {c.action for c in scenario.sage_changes} >= {"key_receipt", "post_journal", "add_invoice"}
    assert journal[0] < scenario.total_steps and confirmed["PM0002"] == confirmed["PM0003"] < journal[0]
    assert {p.metadata.get("sage_invoice") for p in scenario.gocardless_payments if p.id in ("PM0002", "PM0003")} == {
        "0100031"
    }
    assert sum(i.PaymentsToday for i in scenario.sage_invoices) == Decimal("100.00")
