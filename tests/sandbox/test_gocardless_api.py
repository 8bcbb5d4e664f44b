"""The GoCardless stand-in: scenario play, API shapes, webhooks it sends, control API."""

from __future__ import annotations

import json
import re
from collections import Counter
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from ml_connector_dagster.gocardless.receiver import create_app
from ml_connector_dagster.gocardless.webhooks import sign
from ml_connector_dagster.httpserve import free_port, serve_in_thread
from ml_connector_dagster.sandbox.gocardless_api import GoCardlessStandIn, start_gocardless_stand_in
from ml_connector_dagster.sandbox.scenario import bundled
from ml_connector_dagster.settings import DEFAULT_EVENT_WHITELIST, Settings
from ml_connector_dagster.store import Store

from support.gocardless import FAST_RETRIES, NEW_SECRET, TOKEN

HEADERS = {"Authorization": f"Bearer {TOKEN}", "GoCardless-Version": "2015-07-06"}
WHITELISTED_IN_SAMPLE = set(DEFAULT_EVENT_WHITELIST)  # what the receiver keeps by default


def api(stand_in: GoCardlessStandIn, path: str, **params: Any) -> httpx.Response:
    return httpx.get(stand_in.url + path, params=params, headers=HEADERS)


def play_all(stand_in: GoCardlessStandIn) -> list[dict]:
    events = []
    while step := stand_in.play_step():
        events.extend(step)
    return events


# -- play -------------------------------------------------------------------------------------------------


def test_payments_appear_when_created_and_end_in_their_last_lifecycle_status(stand_in: GoCardlessStandIn) -> None:
    assert api(stand_in, "/payments").json()["payments"] == []

    play_all(stand_in)

    statuses = {p["id"]: p["status"] for p in api(stand_in, "/payments", limit=500).json()["payments"]}
    assert statuses["PM0001"] == "paid_out" and statuses["PM0003"] == "confirmed"
    assert statuses["PM0013"] == "failed" and statuses["PM0014"] == "submitted"
    assert statuses["PM0015"] == "charged_back" and statuses["PM0016"] == "failed"
    assert api(stand_in, "/refunds/RF0001").json()["refunds"]["status"] == "paid"
    assert api(stand_in, "/payments/PM0005").json()["payments"]["amount_refunded"] == 10000


def test_each_action_creates_the_event_gocardless_would(stand_in: GoCardlessStandIn) -> None:
    events = play_all(stand_in)

    kinds = Counter(f"{e['resource_type']}.{e['action']}" for e in events)
    assert kinds["payments.created"] == 16 and kinds["payments.paid_out"] == 8 and kinds["payouts.paid"] == 3
    assert all(re.fullmatch(r"EV[0-9A-Z]{12}", e["id"]) for e in events)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", e["created_at"]) for e in events)
    assert [e["created_at"] for e in events] == sorted({e["created_at"] for e in events})  # strictly increasing
    failed = next(e for e in events if e["action"] == "failed" and e["links"]["payment"] == "PM0013")
    assert failed["details"] | {"description": None} == {
        "origin": "bank",
        "cause": "refer_to_payer",
        "scheme": "bacs",
        "reason_code": "ARUDD-0",
        "will_attempt_retry": False,
        "description": None,
    }
    paid_out = next(e for e in events if e["action"] == "paid_out" and e["links"]["payment"] == "PM0002")
    assert paid_out["links"]["payout"].startswith("PO")
    assert paid_out["resource_metadata"] == {"sage_invoice": "100031"}


def test_payouts_group_paid_out_payments_per_currency_with_fee_items_vat_included(
    stand_in: GoCardlessStandIn,
) -> None:
    play_all(stand_in)
    payouts = api(stand_in, "/payouts").json()["payouts"]

    by_currency = {(p["currency"], p["fx"]["fx_currency"] or ""): p for p in payouts}
    assert sorted(by_currency) == [("EUR", ""), ("EUR", "GBP"), ("GBP", "")]
    for payout in payouts:
        items = api(stand_in, "/payout_items", payout=payout["id"]).json()["payout_items"]
        assert all(re.fullmatch(r"-?\d+\.\d", i["amount"]) for i in items)
        total = sum(Decimal(i["amount"]) for i in items)
        fees = -sum(Decimal(i["amount"]) for i in items if i["type"] == "gocardless_fee")
        assert payout["amount"] == int(total.to_integral_value()) and payout["deducted_fees"] == int(fees)
    gbp = api(stand_in, "/payout_items", payout=by_currency[("GBP", "")]["id"]).json()["payout_items"]
    assert {i["links"]["payment"] for i in gbp} == {"PM0001", "PM0002", "PM0004", "PM0005", "PM0010", "PM0015"}
    vat = {
        "amount": "44.0",
        "currency": "GBP",
        "destination_amount": "44.0",
        "destination_currency": "GBP",
        "exchange_rate": None,
        "tax_rate_id": "GB_VAT_1",
    }
    assert {"amount": "-264.0", "type": "gocardless_fee", "links": {"payment": "PM0002"}, "taxes": [vat]} in gbp
    fx = by_currency[("EUR", "GBP")]
    assert (fx["fx"]["exchange_rate"], api(stand_in, "/payments/PM0006").json()["payments"]["fx"]["fx_amount"]) == (
        "0.8600000000",
        86000,
    )


# -- API shapes -------------------------------------------------------------------------------------------


def test_events_filter_by_type_action_resource_and_time(stand_in: GoCardlessStandIn) -> None:
    events = play_all(stand_in)
    middle = events[len(events) // 2]["created_at"]

    def ids(**params: Any) -> set[str]:
        return {e["id"] for e in api(stand_in, "/events", limit=500, **params).json()["events"]}

    assert ids(resource_type="payouts") == {e["id"] for e in events if e["resource_type"] == "payouts"}
    assert ids(resource_type="payments", action="confirmed") == {
        e["id"] for e in events if (e["resource_type"], e["action"]) == ("payments", "confirmed")
    }
    assert ids(payment="PM0015") == {e["id"] for e in events if e["links"].get("payment") == "PM0015"}
    assert ids(**{"created_at[gt]": middle}) == {e["id"] for e in events if e["created_at"] > middle}
    assert ids(**{"created_at[lte]": middle}) == {e["id"] for e in events if e["created_at"] <= middle}


def test_cursors_page_forwards_and_backwards(stand_in: GoCardlessStandIn) -> None:
    first = api(stand_in, "/customers", limit=3).json()
    second = api(stand_in, "/customers", limit=3, after=first["meta"]["cursors"]["after"]).json()
    last = api(stand_in, "/customers", limit=3, after=second["meta"]["cursors"]["after"]).json()
    back = api(stand_in, "/customers", limit=3, before=second["meta"]["cursors"]["before"]).json()

    assert first["meta"] == {"cursors": {"before": None, "after": "CU0006"}, "limit": 3}
    assert [c["id"] for c in second["customers"]] == ["CU0005", "CU0004", "CU0003"]
    assert [c["id"] for c in last["customers"]] == ["CU0002", "CU0001"] and last["meta"]["cursors"]["after"] is None
    assert back["customers"] == first["customers"]


@pytest.mark.parametrize(
    "path, params, headers, status, what",
    [
        ("/payments", {"limit": "501"}, HEADERS, 400, "invalid_limit"),
        ("/payments", {"created_at": "gte"}, HEADERS, 400, "invalid_filters"),
        ("/payments", {"created_at[gte]": "yesterday"}, HEADERS, 422, "created_at[gte]"),
        ("/payments", {"after": "PM_NOPE"}, HEADERS, 400, "cursor_invalid"),
        ("/payments", {}, {"Authorization": f"Bearer {TOKEN}"}, 400, "missing_version_header"),
        ("/payments", {}, {"GoCardless-Version": "2015-07-06"}, 401, "missing_authorization_header"),
        ("/payments/PM0001", {}, HEADERS, 404, "resource_not_found"),
        ("/payout_items", {}, HEADERS, 422, "payout"),
        ("/subscriptions", {}, HEADERS, 404, "path_not_found"),
    ],
)
def test_bad_requests_get_gocardless_error_bodies(
    stand_in: GoCardlessStandIn, path: str, params: dict, headers: dict, status: int, what: str
) -> None:
    response = httpx.get(stand_in.url + path, params=params, headers=headers)

    assert response.status_code == status
    error = response.json()["error"]
    first = error["errors"][0]
    assert error["code"] == status
    if status == 422:  # validation errors name the field, as GoCardless's do
        assert (error["type"], first["field"]) == ("validation_failed", what)
    else:
        assert first["reason"] == what
    assert set(error) == {"message", "documentation_url", "type", "request_id", "code", "errors"}


# -- webhooks ---------------------------------------------------------------------------------------------


class Capture:
    """A webhook endpoint for tests that records what arrives and answers 204."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], bytes]] = []

    async def handle(self, request: Request) -> Response:
        self.requests.append((dict(request.headers), await request.body()))
        return Response(status_code=204)


def test_webhooks_are_signed_batches_with_a_webhook_id() -> None:
    capture = Capture()
    server = serve_in_thread(Starlette(routes=[Route("/hook", capture.handle, methods=["POST"])]))
    stand_in = start_gocardless_stand_in(
        bundled("small"), webhook_url=server.url + "/hook", webhook_secret=NEW_SECRET, retry_intervals=FAST_RETRIES
    )
    try:
        events = stand_in.play_step()
        assert stand_in.wait_deliveries(10)
    finally:
        stand_in.stop()
        server.stop()

    [(headers, body)] = capture.requests
    payload = json.loads(body)
    assert headers["webhook-signature"] == sign(body, NEW_SECRET)
    assert headers["user-agent"] == "gocardless-webhook-service/1.1"
    assert headers["content-type"] == "application/json"
    assert re.fullmatch(r"WB[0-9A-Z]{12}", payload["meta"]["webhook_id"])
    assert payload["events"] == events


def test_played_events_reach_the_receiver_and_only_whitelisted_ones_are_stored(
    webhook_url: str, receiver_store: Store
) -> None:
    stand_in = start_gocardless_stand_in(
        bundled("small"), webhook_url=webhook_url, webhook_secret=NEW_SECRET, retry_intervals=FAST_RETRIES
    )
    try:
        events = play_all(stand_in)
        assert stand_in.wait_deliveries(20)
        status = stand_in.status()["webhooks"]
    finally:
        stand_in.stop()

    expected = {e["id"] for e in events if f"{e['resource_type']}.{e['action']}" in WHITELISTED_IN_SAMPLE}
    assert {r.event_id for r in receiver_store.inbox.list(limit=None)} == expected
    assert (status["webhooks_delivered"], status["webhooks_failed"]) == (7, 0)


def test_a_failed_delivery_is_retried_until_the_receiver_is_back(
    receiver_settings: Settings, receiver_store: Store
) -> None:
    port = free_port()
    stand_in = start_gocardless_stand_in(
        bundled("small"),
        webhook_url=f"http://127.0.0.1:{port}/webhooks/gocardless",
        webhook_secret=NEW_SECRET,
        retry_intervals=(0.05,) * 100,
    )
    receiver = None
    try:
        for _ in range(3):
            stand_in.play_step()  # step 3 confirms payments: whitelisted
        assert stand_in.sender.wait_for(lambda s: s["failed_attempts"] >= 3, 10)  # nobody listening yet
        receiver = serve_in_thread(create_app(receiver_settings.webhooks(), receiver_store), port=port)
        assert stand_in.wait_deliveries(10)
        status = stand_in.status()["webhooks"]
    finally:
        stand_in.stop()
        if receiver:
            receiver.stop()

    assert status["webhooks_delivered"] == 3 and status["webhooks_failed"] == 0
    assert len(receiver_store.inbox.list(limit=None)) == 15  # step 3: 14 payments confirmed, PM0013 failed


def test_a_delivery_refused_every_time_is_given_up_after_the_last_retry(webhook_url: str) -> None:
    stand_in = start_gocardless_stand_in(
        bundled("small"), webhook_url=webhook_url, webhook_secret="not-the-secret", retry_intervals=(0.01, 0.01, 0.01)
    )
    try:
        stand_in.play_step()
        assert stand_in.wait_deliveries(10)
        status = stand_in.status()["webhooks"]
    finally:
        stand_in.stop()

    assert (status["webhooks_failed"], status["attempts"], status["last_error"].endswith("HTTP 401")) == (1, 4, True)


# -- control API ------------------------------------------------------------------------------


def test_the_control_api_plays_steps_and_reports_status(webhook_url: str) -> None:
    stand_in = start_gocardless_stand_in(
        bundled("small"), webhook_url=webhook_url, webhook_secret=NEW_SECRET, retry_intervals=FAST_RETRIES
    )
    try:
        step = httpx.post(stand_in.url + "/_sandbox/step", params={"wait": 10}).json()
        status = httpx.get(stand_in.url + "/_sandbox/status").json()
        refused = httpx.post(stand_in.url + "/_sandbox/faults", json={"faults": [{"kind": "explode"}]})
        faults = httpx.post(stand_in.url + "/_sandbox/faults", json={"faults": [{"kind": "drop", "count": 2}]}).json()
    finally:
        stand_in.stop()

    assert (step["step"], step["total_steps"], len(step["events"]), step["deliveries_settled"]) == (1, 7, 16, True)
    assert (status["step"], status["webhooks"]["webhooks_delivered"], status["finished"]) == (1, 1, False)
    assert refused.status_code == 400 and "kind" in refused.json()["error"]
    assert faults["faults"][0]["kind"] == "drop" and faults["faults"][0]["count"] == 2
