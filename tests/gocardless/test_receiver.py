"""The webhook receiver over real HTTP: what it refuses, what it stores, and that it stores it once."""

from __future__ import annotations

import http.client
import json
import logging
import random
import sqlite3
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from ml_connector_dagster.gocardless.receiver import create_app
from ml_connector_dagster.gocardless.webhooks import sign
from ml_connector_dagster.httpserve import ServerHandle
from ml_connector_dagster.settings import Settings, SettingsError
from ml_connector_dagster.store import Store

from support.gocardless import NEW_SECRET, VECTOR, VECTOR_SECRET, VECTOR_SIGNATURE, body_of, deliver, event

RECEIVER_LOG = "ml_connector_dagster.gocardless.receiver"


def delivery_logs(caplog: pytest.LogCaptureFixture) -> list[dict]:
    return [json.loads(r.getMessage()) for r in caplog.records if r.name == RECEIVER_LOG]


def test_the_published_vector_is_acknowledged_and_nothing_is_stored(webhook_url: str, receiver_store: Store) -> None:
    with httpx.Client() as client:
        response = deliver(client, webhook_url, VECTOR.read_bytes(), signature=VECTOR_SIGNATURE)

    assert response.status_code == 204
    assert receiver_store.inbox.list(limit=None) == []  # subscriptions.created, mandates.created: not whitelisted


@pytest.mark.parametrize("case", ["tampered body", "wrong secret", "missing header", "non-hex header", "uppercase hex"])
def test_unverifiable_deliveries_get_401_and_nothing_is_stored(
    case: str, webhook_url: str, receiver_store: Store
) -> None:
    body = body_of([event("EV401")])
    kwargs = {
        "tampered body": {"body": body.replace(b"PM0001", b"PM0002"), "signature": sign(body, NEW_SECRET)},
        "wrong secret": {"body": body, "secret": "not-a-configured-secret"},
        "missing header": {"body": body, "secret": None},
        "non-hex header": {"body": body, "signature": "sha256=" + "z" * 57},
        "uppercase hex": {"body": body, "signature": sign(body, NEW_SECRET).upper()},
    }[case]

    with httpx.Client() as client:
        response = deliver(client, webhook_url, kwargs.pop("body"), **kwargs)

    assert response.status_code == 401
    assert response.json()["error"]["reason"] == "bad_signature"
    assert receiver_store.inbox.list(limit=None) == []


def test_either_of_two_rotated_secrets_is_accepted(webhook_url: str, receiver_store: Store) -> None:
    with httpx.Client() as client:
        old = deliver(client, webhook_url, body_of([event("EVOLD")]), secret=VECTOR_SECRET)
        new = deliver(client, webhook_url, body_of([event("EVNEW")]), secret=NEW_SECRET)

    assert (old.status_code, new.status_code) == (204, 204)
    assert {r.event_id for r in receiver_store.inbox.list(limit=None)} == {"EVOLD", "EVNEW"}


@pytest.mark.parametrize(
    "body, problem",
    [
        (b"this is not json", "not valid JSON"),
        (b'{"events": "none"}', '"events"'),
        (b'{"events": [{"id": "EV1"}]}', "resource_type"),
    ],
)
def test_signed_bodies_that_are_not_events_get_400_naming_the_problem(
    body: bytes, problem: str, webhook_url: str, receiver_store: Store
) -> None:
    with httpx.Client() as client:
        response = deliver(client, webhook_url, body)

    assert response.status_code == 400
    assert problem in response.json()["error"]["message"]
    assert receiver_store.inbox.list(limit=None) == []


def test_a_body_declared_over_the_limit_gets_413_before_it_is_sent(receiver: ServerHandle) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", receiver.port, timeout=5)
    conn.putrequest("POST", "/webhooks/gocardless")
    conn.putheader("Content-Length", str(10 * 1024**3))  # 10 GiB declared, nothing sent
    conn.putheader("Webhook-Signature", "0" * 64)
    conn.endheaders()

    response = conn.getresponse()

    assert response.status == 413
    conn.close()


def test_a_streamed_body_over_the_limit_gets_413(home, monkeypatch: pytest.MonkeyPatch) -> None:
    from ml_connector_dagster.httpserve import serve_in_thread
    from ml_connector_dagster.settings import load_settings

    monkeypatch.setenv("ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS", NEW_SECRET)
    monkeypatch.setenv("ML_CONNECTOR_WEBHOOK_MAX_BYTES", "1000")
    settings = load_settings()
    store = Store(settings.database_url)
    handle = serve_in_thread(create_app(settings.webhooks(), store))
    chunks = [b'{"events": [' + b" " * 400, b" " * 400, b" " * 400, b"]}"]  # chunked: no Content-Length
    try:
        with httpx.Client() as client:
            response = client.post(
                handle.url + "/webhooks/gocardless", content=iter(chunks), headers={"Webhook-Signature": "0" * 64}
            )
    finally:
        handle.stop()
        store.dispose()

    assert response.status_code == 413
    assert store.inbox.list(limit=None) == []


def test_whitelisted_events_are_stored_once_and_others_only_counted(
    webhook_url: str, receiver_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=RECEIVER_LOG)
    body = body_of(
        [
            event("EVA", "payments.confirmed", "PM0001"),
            event("EVB", "refunds.paid", "RF0001"),
            event("EVC", "mandates.active", "MD0001"),
        ],
        "WBFIRST",
    )

    with httpx.Client() as client:
        first = deliver(client, webhook_url, body)
        again = deliver(client, webhook_url, body)

    assert (first.status_code, again.status_code) == (204, 204)
    rows = {r.event_id: r for r in receiver_store.inbox.list(limit=None)}
    assert sorted(rows) == ["EVA", "EVB"]
    assert (rows["EVA"].resource_id, rows["EVA"].status, rows["EVB"].resource_id) == ("PM0001", "received", "RF0001")
    logs = delivery_logs(caplog)
    assert [(log["stored"], log["duplicates"], log["ignored"]) for log in logs] == [(2, 0, 1), (0, 2, 1)]
    assert logs[0]["webhook_id"] == "WBFIRST" and logs[0]["events"] == 3 and "latency_ms" in logs[0]


def test_a_thousand_events_delivered_with_duplicates_out_of_order_and_concurrently_are_stored_once_each(
    webhook_url: str, receiver_store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=RECEIVER_LOG)
    rng = random.Random(3)
    events = [
        event(
            f"EV{n:06d}",
            rng.choice(["payments.confirmed", "payments.paid_out", "refunds.paid"]),
            f"PM{n % 97:04d}",
            f"2026-11-{1 + n % 28:02d}T10:00:00.000Z",
        )
        for n in range(1000)
    ]
    deliveries = _batches(rng, events) + _batches(rng, rng.sample(events, 400))  # 400 sent twice
    rng.shuffle(deliveries)

    with ThreadPoolExecutor(max_workers=16) as pool, httpx.Client(limits=httpx.Limits(max_connections=16)) as client:
        statuses = list(pool.map(lambda batch: deliver(client, webhook_url, body_of(batch)).status_code, deliveries))

    assert set(statuses) == {204}
    stored = receiver_store.inbox.list(limit=None)
    assert len(stored) == 1000
    assert sorted(r.event_id for r in stored) == sorted(e["id"] for e in events)
    logs = delivery_logs(caplog)
    assert sum(log["stored"] for log in logs) == 1000
    assert sum(log["duplicates"] for log in logs) == sum(len(b) for b in deliveries) - 1000


def _batches(rng: random.Random, events: list[dict]) -> list[list[dict]]:
    shuffled = rng.sample(events, len(events))
    out, start = [], 0
    while start < len(shuffled):
        size = rng.randint(1, 40)
        out.append(shuffled[start : start + size])
        start += size
    return out


def test_when_the_store_fails_the_receiver_answers_503_and_a_retry_succeeds(
    webhook_url: str, receiver_settings: Settings, receiver_store: Store
) -> None:
    path = receiver_settings.database_url.removeprefix("sqlite:///")
    body = body_of([event("EV503")])
    with sqlite3.connect(path) as db:
        db.execute("ALTER TABLE inbox RENAME TO inbox_unavailable")

    with httpx.Client() as client:
        failed = deliver(client, webhook_url, body)
        with sqlite3.connect(path) as db:
            db.execute("ALTER TABLE inbox_unavailable RENAME TO inbox")
        retried = deliver(client, webhook_url, body)

    assert failed.status_code == 503
    assert retried.status_code == 204
    assert [r.event_id for r in receiver_store.inbox.list(limit=None)] == ["EV503"]


def test_log_lines_never_contain_a_secret_or_the_body(webhook_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    with httpx.Client() as client:
        deliver(client, webhook_url, body_of([event("EVLOG", resource_id="PMSENSITIVE0001")]))
        deliver(client, webhook_url, body_of([event("EVBAD")]), secret="wrong")

    assert VECTOR_SECRET not in caplog.text and NEW_SECRET not in caplog.text
    assert "PMSENSITIVE0001" not in caplog.text
    assert [log["status"] for log in delivery_logs(caplog)] == [204, 401]


def test_the_health_check_answers(receiver: ServerHandle) -> None:
    assert httpx.get(receiver.url + "/healthz").json() == {"status": "ok"}


def test_the_receiver_refuses_to_start_without_a_webhook_secret(settings: Settings, store: Store) -> None:
    with pytest.raises(SettingsError, match="ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS"):
        create_app(settings.webhooks(), store)


def _with(field: str, value: object) -> dict:
    """A whitelisted event with one field replaced; `links.payment` and `meta.webhook_id` reach inside."""
    base = event("EV00BD05S5VM2T")
    if field.startswith("links."):
        base["links"] = {field.split(".", 1)[1]: value}
    else:
        base[field] = value
    return base


# Each signed event below once got 503 (or was stored raw): the store could not hold it, or should not.
UNSTORABLE = [
    ("created_at", {"at": "2026-11-05"}, "events[0].created_at", "created_at is an object"),
    ("created_at", ["2026-11-05T10:00:00.000Z"], "events[0].created_at", "created_at is a list"),
    ("created_at", "2026-11-05T10:00:00.000Z" + "0" * 20, "events[0].created_at", "created_at over 40 characters"),
    ("created_at", "yesterday", "events[0].created_at", "created_at not a timestamp"),
    ("id", "EV\ud800X", "events[0].id", "id with a lone surrogate"),
    ("id", "EV\x00X", "events[0].id", "id with NUL"),
    ("id", "EV\x07X", "events[0].id", "id with BEL"),
    ("id", "EV\nX", "events[0].id", "id with a newline"),
    ("id", "EV\u202eX", "events[0].id", "id with a right-to-left override"),
    ("id", "ev00bd05s5vm2t", "events[0].id", "id in lower case"),
    ("links.payment", "PM" + "0" * 63, "events[0].links.payment", "link over 64 characters"),
    ("links.payment", "PM" + "0" * 499_998, "events[0].links.payment", "link of 500,000 characters"),
    ("links.payment", "PM\x00X", "events[0].links.payment", "link with NUL"),
    ("links.payment", "PM\ud800", "events[0].links.payment", "link with a lone surrogate"),
]


@pytest.mark.parametrize("field, value, named", [c[:3] for c in UNSTORABLE], ids=[c[3] for c in UNSTORABLE])
def test_a_signed_event_that_does_not_fit_the_store_is_400_naming_the_field(
    field: str, value: object, named: str, webhook_url: str, receiver_store: Store
) -> None:
    body = body_of([_with(field, value)])

    with httpx.Client() as client:
        response = deliver(client, webhook_url, body)

    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert (error["reason"], error["message"].split(" ")[0]) == ("bad_payload", named)
    assert receiver_store.inbox.list(limit=None) == []


@pytest.mark.parametrize(
    "webhook_id",
    ["WB\ud800", "WB\x00", "WB" + "0" * 63, "WB-FIRST"],
    ids=["lone surrogate", "NUL", "over 64 characters", "hyphen"],
)
def test_a_signed_delivery_with_a_malformed_webhook_id_is_400_naming_it(
    webhook_id: str, webhook_url: str, receiver_store: Store
) -> None:
    body = body_of([event("EV00BD05S5VM2T")], webhook_id)

    with httpx.Client() as client:
        response = deliver(client, webhook_url, body)

    assert response.status_code == 400, response.text
    assert response.json()["error"]["message"].startswith("meta.webhook_id ")
    assert receiver_store.inbox.list(limit=None) == []


def test_the_400_for_a_malformed_field_does_not_echo_its_value(webhook_url: str) -> None:
    body = body_of([_with("links.payment", "PMSENSITIVE0001\x07")])

    with httpx.Client() as client:
        response = deliver(client, webhook_url, body)

    assert response.status_code == 400
    assert "SENSITIVE" not in response.text and "U+0007" in response.text


def test_the_endpoint_with_a_trailing_slash_is_the_same_endpoint(webhook_url: str, receiver_store: Store) -> None:
    with httpx.Client(follow_redirects=False) as client:
        response = deliver(client, webhook_url + "/", body_of([event("EVSLASH")]))

    assert response.status_code == 204
    assert [r.event_id for r in receiver_store.inbox.list(limit=None)] == ["EVSLASH"]
