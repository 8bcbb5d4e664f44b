"""Slow and numerous clients over real loopback sockets: the receiver cuts off late request heads and bodies and
answers 503 over its connection cap, with either of uvicorn's HTTP implementations.

Timeouts are set small here; each wait for the server to act is bounded generously (BOUND), never measured.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import logging
import select
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from ml_connector_dagster.gocardless.receiver import WEBHOOK_PATH, create_app
from ml_connector_dagster.gocardless.webhooks import sign
from ml_connector_dagster.httpserve import ServerHandle, ServerLimits, serve_in_thread
from ml_connector_dagster.settings import Settings
from ml_connector_dagster.store import Store

from support.gocardless import body_of, deliver, event

SHORT = 0.5  # seconds: the timeout under test
LONG = 60.0  # seconds: a timeout that must not be what ends a test
BOUND = 15.0  # seconds: how long a test waits for the server to act before failing
HTTP_IMPLEMENTATIONS = ["h11"] + (["httptools"] if importlib.util.find_spec("httptools") else [])
HEAD = b"POST /webhooks/gocardless HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"


@pytest.fixture(params=HTTP_IMPLEMENTATIONS)
def http(request: pytest.FixtureRequest) -> str:
    return request.param


def start(settings: Settings, store: Store, http: str, **limits: float) -> ServerHandle:
    values = {"header_timeout": LONG, "body_timeout": LONG, "max_connections": 100, **limits}
    return serve_in_thread(create_app(settings.webhooks(), store), limits=ServerLimits(**values), http=http)


@pytest.fixture
def head_limited(receiver_settings: Settings, receiver_store: Store, http: str) -> Iterator[ServerHandle]:
    handle = start(receiver_settings, receiver_store, http, header_timeout=SHORT)
    yield handle
    handle.stop()


@pytest.fixture
def body_limited(receiver_settings: Settings, receiver_store: Store, http: str) -> Iterator[ServerHandle]:
    handle = start(receiver_settings, receiver_store, http, body_timeout=SHORT)
    yield handle
    handle.stop()


@pytest.fixture
def capped(receiver_settings: Settings, receiver_store: Store, http: str) -> Iterator[ServerHandle]:
    handle = start(receiver_settings, receiver_store, http, max_connections=2)
    yield handle
    handle.stop()


def connect(server: ServerHandle) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=BOUND)


def read_until_closed(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection; socket.timeout if it has not within BOUND."""
    received = b""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        try:
            chunk = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not chunk:
            return received
        received += chunk
    raise TimeoutError(f"the server kept the connection open for {BOUND} s")


def trickle_until_closed(sock: socket.socket, data: bytes, pause: float = 0.05) -> bytes:
    """Send `data` a byte at a time, each after `pause` unless the server has closed the connection meanwhile."""
    deadline = time.monotonic() + BOUND
    for byte in data:
        readable, _, _ = select.select([sock], [], [], pause)
        if readable or time.monotonic() > deadline:
            return read_until_closed(sock)
        try:
            sock.sendall(bytes([byte]))
        except (BrokenPipeError, ConnectionResetError):
            return b""
    return read_until_closed(sock)


def healthz_keeping_alive(sock: socket.socket) -> bytes:
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    response = b""
    while not response.endswith(b'{"status":"ok"}'):
        chunk = sock.recv(65536)
        assert chunk, "the server closed a kept-alive connection"
        response += chunk
    return response


def test_a_connection_that_sends_nothing_is_closed_after_the_header_timeout(head_limited: ServerHandle) -> None:
    with connect(head_limited) as sock:
        assert read_until_closed(sock) == b""


def test_a_connection_that_sends_one_byte_and_waits_is_closed_after_the_header_timeout(
    head_limited: ServerHandle,
) -> None:
    with connect(head_limited) as sock:
        sock.sendall(b"P")

        assert read_until_closed(sock) == b""


def test_a_connection_that_keeps_trickling_its_head_is_closed_after_the_header_timeout(
    head_limited: ServerHandle, receiver_store: Store
) -> None:
    with connect(head_limited) as sock:
        received = trickle_until_closed(sock, HEAD + b"X-Padding: " + b"a" * 100_000)

    assert received == b""
    assert receiver_store.inbox.list(limit=None) == []


def test_a_kept_alive_connection_whose_next_head_trickles_is_closed_after_the_header_timeout(
    head_limited: ServerHandle,
) -> None:
    with connect(head_limited) as sock:
        healthz_keeping_alive(sock)
        sock.sendall(b"P")

        assert read_until_closed(sock) == b""


def test_a_body_that_trickles_gets_408_and_is_closed_after_the_body_timeout(
    body_limited: ServerHandle, receiver_store: Store
) -> None:
    body = body_of([event("EVSLOWBODY")])
    with connect(body_limited) as sock:
        sock.sendall(HEAD + b"Webhook-Signature: " + b"0" * 64 + b"\r\nContent-Length: %d\r\n\r\n" % len(body))

        received = trickle_until_closed(sock, body, pause=0.2)

    assert received.startswith(b"HTTP/1.1 408 ")
    assert json.loads(received.partition(b"\r\n\r\n")[2])["error"]["reason"] == "body_timeout"
    assert receiver_store.inbox.list(limit=None) == []


def test_a_body_timeout_is_logged_as_a_408(body_limited: ServerHandle, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="ml_connector_dagster.gocardless.receiver")
    with connect(body_limited) as sock:
        sock.sendall(HEAD + b"Webhook-Signature: " + b"0" * 64 + b"\r\nContent-Length: 100\r\n\r\n{")
        read_until_closed(sock)
    body_limited.stop()  # the handler's log line is written once its request has finished

    assert '"status":408,"reason":"body_timeout"' in caplog.text


def test_a_request_over_the_connection_cap_gets_503(capped: ServerHandle, receiver_store: Store) -> None:
    held = [connect(capped), connect(capped)]
    for sock in held:
        healthz_keeping_alive(sock)  # served: these two are the connections the cap allows
        sock.sendall(b"P")  # and now they hold them, sending a head slowly
    try:
        with httpx.Client() as client:
            response = deliver(client, capped.url + WEBHOOK_PATH, body_of([event("EVOVERCAP")]))
    finally:
        for sock in held:
            sock.close()

    assert response.status_code == 503
    assert receiver_store.inbox.list(limit=None) == []


def test_a_delivery_is_stored_once_a_connection_under_the_cap_is_free(
    capped: ServerHandle, receiver_store: Store
) -> None:
    held = [connect(capped), connect(capped)]
    for sock in held:
        healthz_keeping_alive(sock)
    for sock in held:
        sock.close()

    with httpx.Client() as client:
        response = _deliver_when_free(client, capped.url + WEBHOOK_PATH, body_of([event("EVUNDERCAP")]))

    assert response.status_code == 204
    assert [r.event_id for r in receiver_store.inbox.list(limit=None)] == ["EVUNDERCAP"]


def _deliver_when_free(client: httpx.Client, url: str, body: bytes) -> httpx.Response:
    """Deliver as GoCardless does: again after a 503 (the server learns of closed connections asynchronously)."""
    deadline = time.monotonic() + BOUND
    while (response := deliver(client, url, body)).status_code == 503 and time.monotonic() < deadline:
        pass
    return response


def test_kept_alive_clients_up_to_the_cap_are_all_served(
    receiver_settings: Settings, receiver_store: Store, http: str
) -> None:
    """A kept-alive client sends its next delivery as soon as the last is answered: the cap counts
    connections, not the request tasks still finishing behind them."""
    server = start(receiver_settings, receiver_store, http, max_connections=40)
    try:
        statuses = asyncio.run(_deliver_on_kept_alive_connections(receiver_settings, server.port, clients=38, each=10))
    finally:
        server.stop()

    assert set(statuses) == {204}, sorted(set(statuses))


async def _deliver_on_kept_alive_connections(settings: Settings, port: int, clients: int, each: int) -> list[int]:
    secret = settings.gocardless_webhook_secrets[0].reveal()

    async def client(number: int) -> list[int]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        statuses = []
        for index in range(each):
            body = body_of([event(f"EVKA{number:04d}{index:04d}")])
            writer.write(
                HEAD + f"Webhook-Signature: {sign(body, secret)}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
            )
            await writer.drain()
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            statuses.append(status)
        writer.close()
        return statuses

    return [s for result in await asyncio.gather(*(client(n) for n in range(clients))) for s in result]
