"""Generated malformed input against the webhook endpoint and both SOAP services, over real HTTP on loopback.

What must hold for every input:
- webhook receiver: no 500 (the only 5xx is 503, and only when the store itself fails); a bad or missing
  signature is 401 whatever the body; validly signed junk is 400 (or 204 when it is a well-formed delivery
  with nothing to keep); nothing from bad input reaches the inbox.
- SOAP services (the agent and the eBusiness stand-in): every answer is a well-formed SOAP 1.1 fault the
  client can read - a client fault (400/413) for malformed requests, a Sage fault (500, SOAP's status for
  faults) for requests Sage's rules refuse - and never the service's "Internal error" fault (an unhandled
  exception); nothing in the company changes. XXE and entity-expansion ("billion laughs") payloads are
  refused before any entity is resolved.

Servers run in threads of this process (uvicorn on 127.0.0.1); example counts are bounded so the file
runs in well under a minute.
"""

from __future__ import annotations

import base64
import json
import re
import sqlite3
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from ml_connector_dagster.bench.e2e import write_matching_scenario
from ml_connector_dagster.gocardless.receiver import WEBHOOK_PATH, create_app
from ml_connector_dagster.gocardless.webhooks import sign
from ml_connector_dagster.httpserve import ServerHandle, serve_in_thread
from ml_connector_dagster.sandbox.sage_services import SageStandIns, start_sage_stand_ins
from ml_connector_dagster.secrets import generate_key
from ml_connector_dagster.settings import load_settings
from ml_connector_dagster.store import Store
from ml_connector_dagster.store.schema import inbox as inbox_table

pytestmark = pytest.mark.slow  # fuzzing over real HTTP

SECRET = "fuzz-webhook-secret"
FUZZ = settings(
    max_examples=150,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
AGENT_NS = "urn:ml-connector:sage100:agent"
EBUSINESS_NS = "http://sage.com/Sage100/eBusinessWebServices"
INTERNAL_ERROR = "Internal error; see the service log."


# --- the webhook receiver --------------------------------------------------------------------------------------------


class Receiver:
    """The receiver app served on loopback over its own SQLite store."""

    def __init__(self, root: Path, max_bytes: int = 65536) -> None:
        env = {
            "ML_CONNECTOR_HOME": str(root),
            "ML_CONNECTOR_SECRET_KEY": generate_key(),
            "ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS": SECRET,
            "ML_CONNECTOR_WEBHOOK_MAX_BYTES": str(max_bytes),
        }
        self.settings = load_settings(env)
        self.store = Store(self.settings.database_url)
        self.server: ServerHandle = serve_in_thread(create_app(self.settings.webhooks(), self.store))
        self.url = self.server.url + WEBHOOK_PATH
        self.client = httpx.Client(timeout=10)

    def post(
        self, body: bytes, signature: str | None = "sign", headers: dict[str, str] | None = None
    ) -> httpx.Response:
        all_headers = {"Content-Type": "application/json", **(headers or {})}
        if signature == "sign":
            signature = sign(body, SECRET)
        if signature is not None:
            all_headers["Webhook-Signature"] = signature
        return self.client.post(self.url, content=body, headers=all_headers)

    def stored(self) -> int:
        return len(self.store.inbox.list(limit=None))

    def close(self) -> None:
        self.client.close()
        self.server.stop()
        self.store.dispose()


@pytest.fixture(scope="module")
def receiver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    handle = Receiver(tmp_path_factory.mktemp("fuzz-receiver"))
    yield handle
    handle.close()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=20,
)
header_values = st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=80).map(
    str.strip
)  # h11 refuses padding
extra_headers = st.dictionaries(
    st.sampled_from(
        ["Content-Type", "Content-Encoding", "User-Agent", "Origin", "X-Forwarded-For", "Accept", "Webhook-Id"]
    ),
    header_values,
    max_size=3,
)


@FUZZ
@given(
    body=st.binary(max_size=2000),
    signature=st.none() | header_values | st.text("0123456789abcdef", min_size=64, max_size=64),
    headers=extra_headers,
)
def test_unsigned_or_wrongly_signed_deliveries_are_401_and_store_nothing(
    receiver: Receiver, body: bytes, signature: str | None, headers: dict
) -> None:
    response = receiver.post(body, signature, headers)

    assert response.status_code == 401, response.text
    assert receiver.stored() == 0


@FUZZ
@given(body=st.binary(max_size=2000) | json_values.map(lambda v: json.dumps(v).encode()), headers=extra_headers)
def test_validly_signed_junk_is_refused_or_acknowledged_never_a_server_error(
    receiver: Receiver, body: bytes, headers: dict
) -> None:
    response = receiver.post(body, headers=headers)

    assert response.status_code in (204, 400), (response.status_code, response.text, body[:200])
    assert receiver.stored() == 0


def _event(**overrides: Any) -> dict[str, Any]:
    event = {
        "id": "EVFUZZ0001",
        "created_at": "2026-11-25T10:00:00.000Z",
        "resource_type": "payments",
        "action": "confirmed",
        "links": {"payment": "PM0001"},
        "details": {},
        "metadata": {},
    }
    event.update(overrides)
    return {k: v for k, v in event.items() if v is not _MISSING}


_MISSING = object()
not_a_nonempty_string = (
    st.none() | st.integers() | st.booleans() | st.just("") | st.lists(st.text(max_size=3), max_size=2) | st.just({})
)
bad_events = st.one_of(
    st.builds(lambda v: _event(id=v), not_a_nonempty_string | st.text(min_size=65, max_size=300) | st.just(_MISSING)),
    st.builds(lambda v: _event(resource_type=v), not_a_nonempty_string | st.just(_MISSING)),
    st.builds(lambda v: _event(action=v), not_a_nonempty_string | st.just(_MISSING)),
    st.builds(
        lambda v: _event(links=v), st.lists(st.text(max_size=5), max_size=2) | st.text(max_size=5) | st.integers()
    ),
    json_values.filter(lambda v: not isinstance(v, dict)),
)


@FUZZ
@given(good=st.integers(0, 3), bad=bad_events, position=st.integers(0, 3))
def test_a_signed_delivery_with_one_malformed_event_is_400_and_stores_none_of_its_events(
    receiver: Receiver, good: int, bad: Any, position: int
) -> None:
    events = [_event(id=f"EVFUZZOK{n}") for n in range(good)]
    events.insert(min(position, len(events)), bad)
    body = json.dumps({"events": events, "meta": {"webhook_id": "WBFUZZ"}}).encode()

    response = receiver.post(body)

    assert response.status_code == 400, (response.status_code, response.text)
    assert receiver.stored() == 0


@pytest.mark.parametrize(
    "body",
    [b"[" * 100_000, b'{"events": ' + b"[" * 50_000 + b"]" * 50_000 + b"}", b'{"a":' * 30_000 + b"1" + b"}" * 30_000],
    ids=["list", "events", "object"],
)
def test_deeply_nested_json_is_a_400_not_a_crash(tmp_path: Path, body: bytes) -> None:
    handle = Receiver(tmp_path, max_bytes=1024 * 1024)  # the default limit: these bodies are read and parsed
    try:
        response = handle.post(body)

        assert response.status_code == 400, response.text
        assert handle.stored() == 0
    finally:
        handle.close()


def test_a_body_over_the_limit_is_413_before_it_is_read(receiver: Receiver) -> None:
    response = receiver.post(b"x" * 70_000)

    assert response.status_code == 413
    assert receiver.stored() == 0


def test_the_only_5xx_is_503_when_the_store_itself_fails(tmp_path: Path) -> None:
    handle = Receiver(tmp_path)
    try:
        with sqlite3.connect(Path(handle.settings.database_url.removeprefix("sqlite:///"))) as db:
            db.execute("DROP TABLE inbox")  # the store breaks under the running receiver
        body = json.dumps({"events": [_event()], "meta": {"webhook_id": "WBFUZZ"}}).encode()

        response = handle.post(body)

        assert response.status_code == 503
        assert response.json()["error"]["reason"] == "store_unavailable"
    finally:
        handle.close()


@pytest.mark.parametrize("links", [{"payment": {"id": "PM1"}}, {"payment": ["PM1"]}], ids=["object", "list"])
def test_a_signed_event_with_a_non_string_link_is_refused_with_400(receiver: Receiver, links: dict) -> None:
    body = json.dumps({"events": [_event(id="EVFUZZLINK", links=links)], "meta": {}}).encode()

    response = receiver.post(body)

    assert response.status_code == 400, response.status_code
    assert receiver.stored() == 0


# --- the webhook receiver: what the inbox stores (issue 16) ---------------------------------------------------------
#
# Signed deliveries whose events are well formed except, sometimes, for a field or two set to something hostile:
# control characters, NUL, lone surrogates, right-to-left overrides, long strings, objects where strings belong.
# While the store is up, every one is 204 or 400 (never 5xx, so GoCardless is never asked to redeliver something
# that can never be stored), a 400 names the field, and whatever is stored fits the inbox's columns on any backend
# (the lengths come from the schema; PostgreSQL also refuses NUL and lone surrogates, which SQLite would keep).

KINDS = ["payments.confirmed", "payments.paid_out", "refunds.paid", "payouts.paid", "mandates.created"]  # last: ignored
gocardless_ids = st.from_regex(r"[A-Z]{2}[A-Z0-9]{1,30}", fullmatch=True)
timestamps = st.datetimes(min_value=datetime(2014, 1, 1), max_value=datetime(2099, 12, 31)).map(
    lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
)
hostile_text = st.one_of(
    st.text(st.characters(exclude_categories=()), max_size=30),  # every category, surrogates included
    st.sampled_from(
        [
            "EV\x00X",
            "EV\ud800",
            "EV\udfff",
            "EV\x07X",
            "EV\nX",
            "EV\u202eX",
            "EV\x1b[2J",
            "ev0001",
            "EV 0001",
            "EV0001\n",
            "２０２６-11-25T10:00:00.000Z",
            "2026-11-25T10:00:00.000+00:00",
            "2026-02-30T10:00:00.000Z",
            "2026-11-25T10:00:00.000Z" + "0" * 20,
        ]
    ),
    st.builds(lambda n: "PM" + "0" * n, st.integers(63, 3000)),
)
hostile_values = (
    hostile_text
    | st.none()
    | st.integers()
    | st.booleans()
    | st.lists(st.text(max_size=3), max_size=2)
    | st.dictionaries(st.text(max_size=5), st.text(max_size=5), max_size=2)
)
FIELDS = [
    "id",
    "created_at",
    "resource_type",
    "action",
    "links",
    "links.payment",
    "links.hostile_key",
    "meta",
    "meta.webhook_id",
]


@st.composite
def events(draw: st.DrawFn) -> dict[str, Any]:
    resource_type, action = draw(st.sampled_from(KINDS)).split(".")
    links = draw(
        st.dictionaries(
            st.sampled_from(["payment", "refund", "payout", "mandate", "parent_event"]),
            gocardless_ids | st.none(),
            max_size=3,
        )
    )
    return {
        "id": draw(gocardless_ids),
        "created_at": draw(timestamps),
        "resource_type": resource_type,
        "action": action,
        "links": links,
        "details": draw(json_values),
        "metadata": {},
    }


def _corrupt(delivery: dict[str, Any], index: int, field: str, value: Any) -> None:
    """Set one field of the delivery (of its event `index`, or of its meta) to `value`."""
    event = delivery["events"][index]
    if field == "meta":
        delivery["meta"] = value
    elif field == "meta.webhook_id":
        delivery["meta"] = {**(delivery["meta"] if isinstance(delivery["meta"], dict) else {}), "webhook_id": value}
    elif field == "links.hostile_key":
        event["links"] = {**_links(event), str(value): "PM0001"}
    elif field == "links.payment":
        event["links"] = {**_links(event), "payment": value}
    else:
        event[field] = value


def _links(event: dict[str, Any]) -> dict[str, Any]:
    return event["links"] if isinstance(event.get("links"), dict) else {}


@st.composite
def deliveries(draw: st.DrawFn) -> dict[str, Any]:
    delivery = {
        "events": draw(st.lists(events(), min_size=1, max_size=4)),
        "meta": {"webhook_id": draw(gocardless_ids)},
    }
    for field, value, index in draw(
        st.lists(st.tuples(st.sampled_from(FIELDS), hostile_values, st.integers(0, 3)), max_size=2)
    ):
        _corrupt(delivery, index % len(delivery["events"]), field, value)
    return delivery


def stored_rows(receiver: Receiver, after_seq: int = 0, ids: set[str] | None = None) -> list[sqlite3.Row]:
    """Inbox rows stored after `after_seq` (and with one of `ids`), read with sqlite3: the columns as stored."""
    query, params = "SELECT * FROM inbox WHERE seq > ?", [after_seq]
    if ids is not None:
        query += f" AND event_id IN ({', '.join('?' * len(ids))})"
        params += sorted(ids)
    with sqlite3.connect(receiver.settings.database_url.removeprefix("sqlite:///")) as db:
        db.row_factory = sqlite3.Row
        return db.execute(query, params).fetchall()


def fits_its_column(column: str, value: str) -> bool:
    """Would PostgreSQL take `value` for this String(n) column: no longer than n, no NUL, no lone surrogate?"""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return len(value) <= inbox_table.c[column].type.length and "\x00" not in value


def assert_well_formed(row: sqlite3.Row) -> None:
    for column in ("event_id", "resource_type", "action", "resource_id", "event_created_at", "webhook_id"):
        value = row[column]
        if value is None and column in ("resource_id", "webhook_id"):
            continue
        assert isinstance(value, str) and fits_its_column(column, value), (column, value)
        assert value.isascii() and value.isprintable(), (column, value)  # nothing a terminal would act on
    assert re.fullmatch(r"[A-Z]{2}[A-Z0-9]+", row["event_id"])
    assert row["resource_id"] is None or re.fullmatch(r"[A-Z]{2}[A-Z0-9]+", row["resource_id"])
    datetime.fromisoformat(row["event_created_at"].replace("Z", "+00:00"))  # a real time: sweeps start from it


FIELD_NAMED = re.compile(r"(events\[\d+\](\.[a-z_]+)*|meta(\.webhook_id)?) ")


@FUZZ
@given(delivery=deliveries())
def test_any_signed_delivery_is_204_or_400_and_only_well_formed_events_are_stored(
    receiver: Receiver, delivery: dict
) -> None:
    before = receiver.store.inbox.max_seq()
    body = json.dumps(delivery).encode()  # lone surrogates travel as \ud800 escapes, as any JSON sender's would

    response = receiver.post(body)

    assert response.status_code in (204, 400), (response.status_code, response.text)
    if response.status_code == 400:
        assert FIELD_NAMED.match(response.json()["error"]["message"]), response.text
        assert stored_rows(receiver, before) == []
        return
    kept = {e["id"] for e in delivery["events"] if f"{e['resource_type']}.{e['action']}" in KINDS[:-1]}
    rows = stored_rows(receiver, ids=kept)  # this delivery's events, stored now or by an earlier example
    assert {row["event_id"] for row in rows} == kept
    for row in rows:
        assert_well_formed(row)


@FUZZ
@given(depth=st.integers(900, 1100))
def test_details_nested_about_as_deep_as_the_json_parser_allows_are_204_or_400_never_503(
    receiver: Receiver, depth: int
) -> None:
    details = '{"a":' * depth + "1" + "}" * depth  # written out: json.dumps would itself stop at this depth
    event = json.dumps(_event(id=f"EVDEEP{depth}", details=None))
    body = ('{"events":[' + event.replace('"details": null', f'"details": {details}') + "]}").encode()

    response = receiver.post(body)

    assert response.status_code in (204, 400), (response.status_code, response.text)
    assert receiver.store.inbox.known([f"EVDEEP{depth}"]) == (
        {f"EVDEEP{depth}"} if response.status_code == 204 else set()
    )


# --- the SOAP services ------------------------------------------------------------------------------------------------


class Snapshot(dict):
    """Every row of the company's tables; compares by content, prints briefly (hypothesis shows its arguments)."""

    def __repr__(self) -> str:
        return f"Snapshot({', '.join(f'{t}: {len(rows)} rows' for t, rows in self.items())})"


class Sage:
    def __init__(self, root: Path) -> None:
        self.stand_ins: SageStandIns = start_sage_stand_ins(
            write_matching_scenario(root / "scenario", 2), data_dir=root / "sage"
        )
        self.client = httpx.Client(timeout=10)
        self.agent_url = self.stand_ins.agent.url + "/agent"
        self.ebusiness_url = self.stand_ins.ebusiness.url + "/ebusiness"

    def post(self, url: str, body: bytes) -> httpx.Response:
        return self.client.post(url, content=body, headers={"Content-Type": "text/xml; charset=utf-8"})

    def snapshot(self) -> Snapshot:
        company = self.stand_ins.company
        return Snapshot(
            {
                t: company.rows(t)
                for t in (
                    "AR_Customer",
                    "AR_OpenInvoice",
                    "AR_CashReceiptsHeader",
                    "AR_CashReceiptsDetail",
                    "AR_CashReceiptsDeposit",
                    "ML_Idempotency",
                )
            }
        )

    def close(self) -> None:
        self.client.close()
        self.stand_ins.stop()


@pytest.fixture(scope="module")
def sage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sage]:
    handle = Sage(tmp_path_factory.mktemp("fuzz-sage"))
    yield handle
    handle.close()


@pytest.fixture(scope="module")
def untouched(sage: Sage) -> Snapshot:
    return sage.snapshot()


def assert_readable_fault(response: httpx.Response) -> etree._Element:
    """A SOAP 1.1 fault a client can act on, with a status that says whose fault it is; never an internal error."""
    assert response.status_code in (400, 413, 500), response.status_code
    root = etree.fromstring(response.content)
    fault = root.find(f"{{{SOAP_ENV}}}Body/{{{SOAP_ENV}}}Fault")
    assert fault is not None, response.text[:300]
    message = fault.findtext("faultstring")
    assert message and message != INTERNAL_ERROR, response.text[:500]
    client_fault = fault.findtext("faultcode").startswith("s:Client")
    assert client_fault == (response.status_code in (400, 413)), response.text[:500]
    return fault


def envelope(ns: str, operation: str, fields: dict[str, Any]) -> bytes:
    env = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"s": SOAP_ENV})
    body = etree.SubElement(env, f"{{{SOAP_ENV}}}Body")
    _add(etree.SubElement(body, f"{{{ns}}}{operation}", nsmap={None: ns}), ns, fields)
    return etree.tostring(env, xml_declaration=True, encoding="utf-8")


def _add(parent: etree._Element, ns: str, fields: dict[str, Any]) -> None:
    for name, value in fields.items():
        if value is _MISSING:
            continue
        for item in value if isinstance(value, list) else [value]:
            el = etree.SubElement(parent, f"{{{ns}}}{name}")
            if isinstance(item, dict):
                _add(el, ns, item)
            elif item is not None:
                el.text = str(item)


def _logon(good: bool = True) -> dict[str, Any]:
    return {"logon": {"Username": "bench", "Password": "bench-password" if good else "wrong"}, "companyCode": "BEN"}


def receipt_request(**overrides: Any) -> dict[str, Any]:
    """A CreateCashReceipt Sage would refuse anyway (its lines add up to less than its amount), so no single
    malformed field can turn it into a receipt that gets written."""
    fields = {
        **_logon(),
        "idempotencyKey": "PMFUZZ0001",
        "depositDate": date(2026, 11, 25).isoformat(),
        "bankCode": "A",
        "arDivisionNo": "01",
        "customerNo": "B000000",
        "amount": "100.01",
        "reference": "FUZZ",
        "lines": {"line": [{"invoiceNo": "0000001", "invoiceType": "IN", "amount": "100.00"}]},
    }
    for path, value in overrides.items():
        target = fields
        *parents, leaf = path.split(".")
        for part in parents:
            target = target[part]
            if isinstance(target, list):
                target = target[0]
        target[leaf] = value
    return fields


xml_text = st.text(st.characters(blacklist_categories=("Cc", "Cs")), max_size=40)  # what XML text can hold
# Huge values: long text everywhere; numbers beyond Decimal's 28 digits have their own test below.
bad_scalars = st.one_of(
    st.just(_MISSING),
    st.just(""),
    st.just("   "),
    st.just("9" * 20),
    st.just("-1"),
    st.just("NaN"),
    st.just("Infinity"),
    st.just("1e-999"),
    st.just("0.001"),
    st.just("12,50"),
    st.just("2026-13-45"),
    st.just({"nested": "element"}),
    xml_text,
    st.just("x" * 200_000),
)
receipt_fields = st.sampled_from(
    [
        "logon.Username",
        "logon.Password",
        "companyCode",
        "idempotencyKey",
        "depositDate",
        "bankCode",
        "arDivisionNo",
        "customerNo",
        "amount",
        "lines.line.invoiceNo",
        "lines.line.invoiceType",
        "lines.line.amount",
        "lines",
        "logon",
    ]
)


@FUZZ
@given(field=receipt_fields, value=bad_scalars)
def test_agent_create_cash_receipt_with_a_malformed_field_is_a_readable_fault_and_writes_nothing(
    sage: Sage, untouched: dict, field: str, value: Any
) -> None:
    body = envelope(AGENT_NS, "CreateCashReceipt", receipt_request(**{field: value}))

    response = sage.post(sage.agent_url, body)

    assert_readable_fault(response)
    assert sage.snapshot() == untouched


@pytest.mark.parametrize("field", ["amount", "lines.line.amount"])
@pytest.mark.parametrize("value", ["9" * 28, "9" * 5000, "1e999"], ids=["28-digits", "5000-digits", "1e999"])
def test_agent_amount_beyond_decimal_precision_is_a_client_fault(
    sage: Sage, untouched: dict, field: str, value: str
) -> None:
    response = sage.post(sage.agent_url, envelope(AGENT_NS, "CreateCashReceipt", receipt_request(**{field: value})))

    assert sage.snapshot() == untouched
    assert_readable_fault(response)


agent_reads = st.sampled_from(
    [
        ("FindCashReceipt", {"idempotencyKey": "PMFUZZ"}),
        ("GetOpenInvoices", {"arDivisionNo": "01", "customerNo": "B000000"}),
        ("GetUnpostedReceipts", {"arDivisionNo": "01", "customerNo": "B000000"}),
        ("ListOpenInvoices", {"updatedSince": "2026-11-01T00:00:00", "pageToken": "eyJ4Ijp9"}),
        ("ListCustomers", {"updatedSince": "2026-11-01T00:00:00"}),
        ("ReverseCashReceipt", {"idempotencyKey": "PMFUZZ", "reason": "fuzz"}),
        ("Ping", {}),
    ]
)


@FUZZ
@given(
    call=agent_reads,
    field=st.sampled_from(
        ["updatedSince", "pageToken", "idempotencyKey", "arDivisionNo", "customerNo", "reason", "companyCode", "logon"]
    ),
    value=bad_scalars,
    good_logon=st.booleans(),
)
def test_agent_reads_and_reversals_with_malformed_fields_never_crash_or_write(
    sage: Sage, untouched: dict, call: tuple, field: str, value: Any, good_logon: bool
) -> None:
    operation, fields = call
    request = {**_logon(good_logon), **fields, field: value}

    response = sage.post(sage.agent_url, envelope(AGENT_NS, operation, request))

    if response.status_code != 200:  # a read with a harmless extra or odd-but-valid value may just answer
        assert_readable_fault(response)
    assert sage.snapshot() == untouched


ebusiness_calls = st.sampled_from(
    [
        ("GetCustomer", {"arDivisionNo": "01", "customerNo": "B000000"}, True),
        ("GetNextCustomerNo", {}, True),
        ("CreateCustomer", {"customer": {"ARDivisionNo": "01", "CustomerNo": "FUZZ1", "CustomerName": "Fuzz"}}, False),
        (
            "UpdateCustomer",
            {"customer": {"ARDivisionNo": "01", "CustomerNo": "B000000", "CustomerName": "Fuzz"}},
            False,
        ),
    ]
)


@FUZZ
@given(
    call=ebusiness_calls,
    field=st.sampled_from(["arDivisionNo", "customerNo", "customer", "companyCode", "logon"]),
    value=bad_scalars,
)
def test_ebusiness_requests_with_malformed_fields_never_crash_or_write(
    sage: Sage, untouched: dict, call: tuple, field: str, value: Any
) -> None:
    operation, fields, good_logon = call  # writes always carry a wrong password: no bad input may get through
    request = {**_logon(good_logon), **fields, field: value}

    response = sage.post(sage.ebusiness_url, envelope(EBUSINESS_NS, operation, request))

    if response.status_code != 200:
        assert_readable_fault(response)
    assert sage.snapshot() == untouched


xml_junk = st.one_of(
    st.binary(max_size=3000),
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=500).map(str.encode),
    st.builds(
        lambda tag, text: f"<{tag}>{text}</{tag}>".encode(),
        st.from_regex(r"[A-Za-z][A-Za-z0-9]{0,10}", fullmatch=True),
        xml_text,
    ),
    st.builds(
        lambda op, ns: envelope(ns, op, {}),
        st.from_regex(r"[A-Za-z]{1,20}", fullmatch=True),
        st.sampled_from([AGENT_NS, EBUSINESS_NS, "urn:other", SOAP_ENV]),
    ),
    st.just(b'<?xml version="1.0"?><s:Envelope xmlns:s="' + SOAP_ENV.encode() + b'"><s:Body/></s:Envelope>'),
)


@FUZZ
@given(body=xml_junk, service=st.sampled_from(["agent", "ebusiness"]))
def test_any_bytes_posted_to_either_soap_service_get_a_readable_fault(
    sage: Sage, untouched: dict, body: bytes, service: str
) -> None:
    url = sage.agent_url if service == "agent" else sage.ebusiness_url

    response = sage.post(url, body)

    if response.status_code != 200:  # e.g. an empty GetContractInformation is a valid call
        assert_readable_fault(response)
    assert sage.snapshot() == untouched


XXE = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
    b'<s:Envelope xmlns:s="'
    + SOAP_ENV.encode()
    + b'"><s:Body><FindCashReceipt xmlns="'
    + AGENT_NS.encode()
    + b'"><logon><Username>&xxe;</Username><Password>x</Password></logon><companyCode>BEN</companyCode>'
    b"<idempotencyKey>&xxe;</idempotencyKey></FindCashReceipt></s:Body></s:Envelope>"
)
XXE_PARAMETER = (
    b'<?xml version="1.0"?><!DOCTYPE r [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd">%remote;]>'
    b'<s:Envelope xmlns:s="' + SOAP_ENV.encode() + b'"><s:Body/></s:Envelope>'
)
LAUGHS = (
    b'<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">'
    + b"".join(b'<!ENTITY lol%d "%s">' % (n, (b"&lol%d;" % (n - 1) if n > 1 else b"&lol;") * 10) for n in range(1, 10))
    + b']><s:Envelope xmlns:s="'
    + SOAP_ENV.encode()
    + b'"><s:Body><Ping xmlns="'
    + AGENT_NS.encode()
    + b'"><logon><Username>&lol9;</Username></logon></Ping></s:Body></s:Envelope>'
)
LOWER_CASE_DOCTYPE = XXE.replace(b"<!DOCTYPE", b"<!doctype")


@pytest.mark.parametrize("service", ["agent", "ebusiness"])
@pytest.mark.parametrize(
    "payload",
    [XXE, XXE_PARAMETER, LAUGHS, LOWER_CASE_DOCTYPE],
    ids=["xxe-file", "xxe-parameter-entity", "billion-laughs", "lower-case-doctype"],
)
def test_xxe_and_entity_expansion_payloads_are_refused(
    sage: Sage, untouched: dict, payload: bytes, service: str
) -> None:
    url = sage.agent_url if service == "agent" else sage.ebusiness_url

    response = sage.post(url, payload)

    assert response.status_code == 400
    fault = assert_readable_fault(response)
    assert "root:" not in response.text and "lollol" not in response.text
    assert "DOCTYPE" in fault.findtext("faultstring") or "not well-formed" in fault.findtext("faultstring")
    assert sage.snapshot() == untouched


# --- the agent's field checks (issue 16): whole values, ASCII digits, held keys ---------------------------------------
# Its own company and agent (not `sage` above, whose address other tests lock out with wrong passwords).
# Every bad value is a client fault (400) naming its element; a key that holds a receipt answers that
# receipt for the same request and a conflict fault naming both for any other; nothing is written.

XML_SPACE = " \t\r\n"
HELD_KEY = "PMFUZZHELD"


class Agent:
    """The agent over a company holding one receipt (key PMFUZZHELD: 01-B000000 pays 0000001 100.00)."""

    def __init__(self, root: Path) -> None:
        from ml_connector_dagster.agent import agent_app
        from ml_connector_dagster.sandbox.sage_company import DB_FILE, SageCompany
        from ml_connector_dagster.sandbox.scenario import load_scenario
        from ml_connector_dagster.sandbox.simulated_backend import SimulatedBackend

        self.company = SageCompany.create(root / DB_FILE, load_scenario(write_matching_scenario(root / "scenario", 2)))
        self.server = serve_in_thread(agent_app(SimulatedBackend(self.company)))
        self.client = httpx.Client(timeout=10)
        held = self.post("CreateCashReceipt", held_request())
        assert held.status_code == 200, held.text
        self.receipt_id = etree.fromstring(held.content).findtext(f".//{{{AGENT_NS}}}receiptId")

    def post(self, operation: str, fields: dict[str, Any]) -> httpx.Response:
        return self.client.post(
            self.server.url + "/agent",
            content=envelope(AGENT_NS, operation, fields),
            headers={"Content-Type": "text/xml; charset=utf-8"},
        )

    def snapshot(self) -> Snapshot:
        return Snapshot(
            {
                t: self.company.rows(t)
                for t in ("AR_OpenInvoice", "AR_CashReceiptsHeader", "AR_CashReceiptsDetail", "ML_Idempotency")
            }
        )

    def close(self) -> None:
        self.client.close()
        self.server.stop()


@pytest.fixture(scope="module")
def agent(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Agent]:
    handle = Agent(tmp_path_factory.mktemp("fuzz-agent"))
    yield handle
    handle.close()


@pytest.fixture(scope="module")
def agent_untouched(agent: Agent) -> Snapshot:
    return agent.snapshot()


def held_request(**overrides: Any) -> dict[str, Any]:
    """The request that wrote the held receipt; overrides as in `receipt_request`."""
    return receipt_request(**{"idempotencyKey": HELD_KEY, "amount": "100.00", **overrides})


def assert_client_fault_naming(response: httpx.Response, element: str, value: str | None = None) -> None:
    fault = assert_readable_fault(response)
    message = fault.findtext("faultstring")
    assert response.status_code == 400 and f"'{element}'" in message, message
    assert value is None or value in message, (value, message)


other_digits = st.characters(whitelist_categories=("Nd",)).filter(lambda c: not c.isascii())
ascii_digits = st.sampled_from("0123456789")
non_ascii_numbers = st.text(other_digits | ascii_digits, min_size=1, max_size=6).filter(lambda t: not t.isascii())
digit_scripts = st.sampled_from(
    ["٠١٢٣٤٥٦٧٨٩", "۰۱۲۳۴۵۶۷۸۹", "०१२३४५६७८९", "০১২৩৪৫৬৭৮৯", "０１２３４５６７８９", "𝟎𝟏𝟐𝟑𝟒𝟓𝟔𝟕𝟖𝟗"]
)
junk = xml_text.filter(lambda t: t.strip(XML_SPACE) != "")


@FUZZ
@given(
    number=non_ascii_numbers,
    decimals=st.sampled_from(["", ".00", ".5"]),
    field=st.sampled_from(["amount", "lines.line.amount"]),
)
def test_agent_amounts_with_any_digit_outside_0_to_9_are_client_faults_naming_them(
    agent: Agent, agent_untouched: Snapshot, number: str, decimals: str, field: str
) -> None:
    amount = number + decimals

    response = agent.post("CreateCashReceipt", receipt_request(**{"idempotencyKey": "PMFUZZNEW", field: amount}))

    assert_client_fault_naming(response, "amount", repr(amount)[1:-1])
    assert agent.snapshot() == agent_untouched


@FUZZ
@given(day=st.dates(), after=junk, script=digit_scripts, form=st.sampled_from(["suffix", "other-digits"]))
def test_agent_deposit_dates_not_exactly_yyyy_mm_dd_in_ascii_are_client_faults_naming_them(
    agent: Agent, agent_untouched: Snapshot, day: date, after: str, script: str, form: str
) -> None:
    value = (
        day.isoformat() + after if form == "suffix" else day.isoformat().translate(str.maketrans("0123456789", script))
    )

    response = agent.post("CreateCashReceipt", receipt_request(idempotencyKey="PMFUZZNEW", depositDate=value))

    assert_client_fault_naming(response, "depositDate")
    assert agent.snapshot() == agent_untouched


@FUZZ
@given(
    moment=st.datetimes() | st.sampled_from([datetime.min, datetime.max]),
    offset_minutes=st.integers(-14 * 60, 14 * 60) | st.sampled_from([-14 * 60, 14 * 60]),
    zone=st.sampled_from(["", "Z", "offset"]),
    after=st.just("") | junk,
)
def test_agent_updated_since_anywhere_in_the_calendar_is_an_answer_or_a_client_fault_never_a_crash(
    agent: Agent, moment: datetime, offset_minutes: int, zone: str, after: str
) -> None:
    sign, minutes = "+" if offset_minutes >= 0 else "-", abs(offset_minutes)
    suffix = {"": "", "Z": "Z", "offset": f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"}[zone]
    value = moment.isoformat() + suffix + after

    response = agent.post("ListOpenInvoices", {**_logon(), "updatedSince": value})

    if after or response.status_code != 200:
        assert_client_fault_naming(response, "updatedSince", repr(value.strip(XML_SPACE)[:40])[1:-1])
    else:  # an answer: the invoices changed since then
        assert etree.fromstring(response.content).find(f".//{{{AGENT_NS}}}ListOpenInvoicesResponse") is not None


def _not_an_invoice_position(token: str) -> bool:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except Exception:  # noqa: BLE001 - anything undecodable is certainly not a handed-out token
        return True
    return not (isinstance(data, list) and data[:1] == ["invoice"])


page_tokens = st.one_of(
    junk,
    st.binary(min_size=1, max_size=300).map(lambda b: base64.urlsafe_b64encode(b).decode()),
    json_values.map(lambda v: base64.urlsafe_b64encode(json.dumps(v).encode()).decode()),
    st.integers(1, 50_000).map(lambda n: base64.urlsafe_b64encode(b"[" * n).decode()),
).filter(_not_an_invoice_position)


@FUZZ
@given(token=page_tokens)
def test_agent_page_tokens_it_never_handed_out_are_client_faults(agent: Agent, token: str) -> None:
    response = agent.post("ListOpenInvoices", {**_logon(), "pageToken": token})

    assert_client_fault_naming(response, "pageToken")


@FUZZ
@given(
    customer=st.sampled_from(["B000000", "B000001", "ABF"]),
    amount=st.sampled_from(["100.00", "100.0", "100", "99.99"]),
    line_amount=st.sampled_from(["100.00", "100", "100.01"]),
    invoice=st.sampled_from(["0000001", "9000001"]),
    deposit_date=st.dates(min_value=date(2026, 1, 1), max_value=date(2027, 12, 31)),
    reference=xml_text,
)
def test_agent_a_held_key_answers_its_receipt_for_the_same_request_and_a_conflict_naming_both_otherwise(
    agent: Agent,
    agent_untouched: Snapshot,
    customer: str,
    amount: str,
    line_amount: str,
    invoice: str,
    deposit_date: date,
    reference: str,
) -> None:
    same = (customer, Decimal(amount), Decimal(line_amount), invoice) == ("B000000", 100, 100, "0000001")

    response = agent.post(
        "CreateCashReceipt",
        held_request(
            **{
                "customerNo": customer,
                "amount": amount,
                "lines.line.amount": line_amount,
                "lines.line.invoiceNo": invoice,
                "depositDate": deposit_date.isoformat(),
                "reference": reference or _MISSING,
            }
        ),
    )

    if same:
        assert response.status_code == 200, response.text
        assert etree.fromstring(response.content).findtext(f".//{{{AGENT_NS}}}receiptId") == agent.receipt_id
    else:
        fault = assert_readable_fault(response)
        assert fault.findtext(".//{*}ErrorCode") == "AR_IdempotencyConflict", response.text
        assert HELD_KEY in fault.findtext("faultstring") and agent.receipt_id in fault.findtext("faultstring")
    assert agent.snapshot() == agent_untouched
