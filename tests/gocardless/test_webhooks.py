"""Webhook signature verification and delivery parsing (the pure core)."""

from __future__ import annotations

import json

import pytest

from ml_connector_dagster.gocardless.webhooks import (
    PayloadError,
    SignatureError,
    parse_delivery,
    sign,
    verify_signature,
)

from support.gocardless import NEW_SECRET, VECTOR, VECTOR_SECRET, VECTOR_SIGNATURE, body_of, event


def test_signing_the_published_vector_gives_the_published_signature() -> None:
    body = VECTOR.read_bytes()

    assert len(body) == 550
    assert sign(body, VECTOR_SECRET) == VECTOR_SIGNATURE


def accepted(body: bytes, signature: str, secrets: list[str]) -> bool:
    try:
        verify_signature(body, signature, secrets)
    except SignatureError:
        return False
    return True


def test_a_signature_by_any_configured_secret_is_accepted() -> None:
    body = VECTOR.read_bytes()
    by_old, by_new = VECTOR_SIGNATURE, sign(body, NEW_SECRET)

    both = [accepted(body, signature, [NEW_SECRET, VECTOR_SECRET]) for signature in (by_old, by_new)]

    assert both == [True, True]
    assert [accepted(body, by_old, [NEW_SECRET]), accepted(body, by_new, [VECTOR_SECRET])] == [False, False]


@pytest.mark.parametrize(
    "signature, reason",
    [
        (None, "missing"),
        ("", "missing"),
        ("not-hex", "64 lowercase hex"),
        (VECTOR_SIGNATURE.upper(), "64 lowercase hex"),
        (VECTOR_SIGNATURE[:-2], "64 lowercase hex"),
        ("0" * 64, "does not match"),
    ],
)
def test_missing_malformed_or_wrong_signatures_are_refused_with_a_reason(signature: str | None, reason: str) -> None:
    with pytest.raises(SignatureError, match=reason) as caught:
        verify_signature(VECTOR.read_bytes(), signature, [VECTOR_SECRET])

    assert VECTOR_SECRET not in str(caught.value)


def test_a_tampered_body_does_not_verify() -> None:
    tampered = VECTOR.read_bytes().replace(b"mandates", b"payments")

    with pytest.raises(SignatureError, match="does not match"):
        verify_signature(tampered, VECTOR_SIGNATURE, [VECTOR_SECRET])


def test_without_a_configured_secret_nothing_verifies() -> None:
    with pytest.raises(SignatureError, match="no webhook secret"):
        verify_signature(b"{}", sign(b"{}", "x"), [])


def test_only_whitelisted_event_kinds_are_accepted_the_rest_are_ignored() -> None:
    body = body_of([event("EV1", "payments.confirmed"), event("EV2", "mandates.created", "MD1")], "WB123")

    delivery = parse_delivery(body, {"payments.confirmed"})

    assert [e["id"] for e in delivery.accepted] == ["EV1"]
    assert [e["id"] for e in delivery.ignored] == ["EV2"]
    assert delivery.webhook_id == "WB123"
    assert delivery.event_count == 2


@pytest.mark.parametrize(
    "body, problem",
    [
        (b"not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"meta": {}}', '"events": a list'),
        (b'{"events": {"id": "EV1"}}', '"events": a list'),
        (b'{"events": [42]}', r"events\[0\] must be a JSON object"),
        (b'{"events": [{"resource_type": "payments", "action": "confirmed"}]}', r"events\[0\]\.id"),
        (b'{"events": [{"id": "EV1", "action": "confirmed"}]}', r"events\[0\]\.resource_type"),
        (b'{"events": [{"id": "EV1", "resource_type": "payments", "action": "confirmed", "links": []}]}', "links"),
        (b"\xff\xfe", "not valid JSON"),
    ],
)
def test_bodies_that_are_not_events_are_refused_naming_the_problem(body: bytes, problem: str) -> None:
    with pytest.raises(PayloadError, match=problem):
        parse_delivery(body, {"payments.confirmed"})


def _one(**fields: object) -> bytes:
    return body_of([{**event("EV00BD05S5VM2T"), **fields}])


@pytest.mark.parametrize(
    "fields, problem",
    [
        ({"created_at": None}, r"events\[0\]\.created_at must be a UTC timestamp .*; it is missing"),
        ({"created_at": "2026-02-30T10:00:00.000Z"}, r"events\[0\]\.created_at .* not a real date"),
        ({"created_at": "2026-11-05T10:00:00.000+01:00"}, r"events\[0\]\.created_at .*; it has other characters"),
        ({"created_at": "٢٠٢٦-11-05T10:00:00.000Z"}, r"events\[0\]\.created_at .*; it contains U\+0662 at position 0"),
        ({"id": 42}, r"events\[0\]\.id must be a GoCardless id.*; it is a number"),
        ({"id": "E1234"}, r"events\[0\]\.id .*; it has other characters"),
        ({"resource_type": "Payments\n"}, r"events\[0\]\.resource_type must be a lower-case name"),
        ({"links": {"payment": ["PM1"]}}, r"events\[0\]\.links\.payment .*; it is a JSON list"),
        ({"links": {"Payment\x1b": "PM1"}}, r"events\[0\]\.links has a key that is not a lower-case name"),
        ({"links": None}, r"events\[0\]\.links must be a JSON object of resource ids; it is null"),
    ],
)
def test_a_kept_event_with_a_field_out_of_shape_is_refused_naming_the_field(fields: dict, problem: str) -> None:
    with pytest.raises(PayloadError, match=problem):
        parse_delivery(_one(**fields), {"payments.confirmed"})


def test_ids_of_every_gocardless_form_are_kept() -> None:
    links = {"payment": "PM00BD05S5VM2T", "billing_request": "BRQ0005QVWHYB9J", "parent_event": "EV1", "mandate": None}

    delivery = parse_delivery(_one(links=links), {"payments.confirmed"})

    assert delivery.accepted[0]["links"] == links


def test_links_and_created_at_of_an_ignored_event_are_not_checked_as_they_are_not_stored() -> None:
    body = body_of([{**event("EV1", "mandates.created"), "created_at": {"odd": True}, "links": {"mandate": "md-1"}}])

    delivery = parse_delivery(body, {"payments.confirmed"})

    assert [e["id"] for e in delivery.ignored] == ["EV1"]


@pytest.mark.parametrize(
    "meta, webhook_id", [(None, None), ({}, None), ({"webhook_id": None}, None), ({"webhook_id": "WB0001"}, "WB0001")]
)
def test_a_delivery_may_come_without_a_webhook_id(meta: dict | None, webhook_id: str | None) -> None:
    body = json.dumps({"events": [event("EV1")], "meta": meta}).encode()

    assert parse_delivery(body, {"payments.confirmed"}).webhook_id == webhook_id


def test_a_meta_that_is_not_an_object_is_refused() -> None:
    with pytest.raises(PayloadError, match="meta must be a JSON object; it is a JSON list"):
        parse_delivery(json.dumps({"events": [], "meta": []}).encode(), {"payments.confirmed"})
