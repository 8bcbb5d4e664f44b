"""Run an ASGI app with uvicorn: in a background thread (stand-ins, the demo, tests) or in the foreground
(`ml-connector receiver` and `ml-connector agent`), always with the same limits on slow or numerous clients.

`port=0` picks a free loopback port; the handle's `url` says which. `stop()` shuts down gracefully
(in-flight requests finish) and waits for the thread.

uvicorn alone keeps a connection as long as its client trickles bytes: it has no timeout for reading a
request's head or body, and no connection cap unless asked. `ServerLimits` adds all three:
- the head (request line and headers) must be complete `header_timeout` seconds after the connection
  opens, or after the first byte of the next request on a kept-alive connection; otherwise the connection
  is closed (a protocol subclass: uvicorn reads heads in its protocol, below the ASGI app);
- the body must be complete `body_timeout` seconds after the head; otherwise the client gets a 408 and the
  connection is closed (`BodyDeadline`, around the app's ASGI `receive`);
- with `max_connections` connections open, a further connection is answered 503 and closed as it opens.
  (uvicorn's own `limit_concurrency` counts request tasks too, and a kept-alive client's next request
  starts before its previous task has ended, so it refused clients well below the cap.)
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from uvicorn.config import HTTP_PROTOCOLS
from uvicorn.importer import import_from_string

from .settings import Settings

log = logging.getLogger("uvicorn.error")  # beside uvicorn's own warnings (e.g. "Exceeded concurrency limit.")
BODY_TIMED_OUT = "ml_connector.body_timed_out"  # set in the ASGI scope when BodyDeadline answered 408
OVER_CAP_RESPONSE = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 34\r\nconnection: close\r\n\r\ntoo many connections; retry later\n"
)
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


@dataclass(frozen=True)
class ServerLimits:
    """How long a client may take to send a request, and how many connections are served at once.

    The defaults are those of the ML_CONNECTOR_HTTP_* settings: together well inside the 10 s GoCardless
    gives a delivery, which no client of ours needs more than a fraction of.
    """

    header_timeout: float = float(Settings.http_header_timeout_seconds)
    body_timeout: float = float(Settings.http_body_timeout_seconds)
    max_connections: int = Settings.http_max_connections

    @classmethod
    def from_settings(cls, settings: Settings) -> ServerLimits:
        return cls(
            float(settings.http_header_timeout_seconds),
            float(settings.http_body_timeout_seconds),
            settings.http_max_connections,
        )


@dataclass
class ServerHandle:
    server: uvicorn.Server
    thread: threading.Thread
    host: str
    port: int
    scheme: str = "http"
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    def stop(self, timeout: float = 10.0) -> None:
        self.server.should_exit = True
        self.thread.join(timeout)

    def kill(self) -> None:
        """Stop at once, dropping in-flight requests (for crash tests)."""
        self.server.force_exit = True
        self.server.should_exit = True
        self.thread.join(10)


class _HeadDeadline(asyncio.Protocol):
    """Mixed into uvicorn's HTTP protocol: closes a connection whose request head is late.

    The clock starts when the connection opens, and again at the first byte of each later request; it
    stops when uvicorn has parsed a head, which it shows by starting a new request cycle (`self.cycle`).
    Between requests, uvicorn's own keep-alive timeout closes idle connections.
    """

    header_timeout: float
    max_connections: int
    connections: set[Any]
    cycle: Any
    transport: asyncio.Transport
    client: tuple[str, int] | None
    _head_timer: asyncio.TimerHandle | None = None
    _over_cap = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if len(self.connections) > self.max_connections:
            self._refuse_over_cap()
            return
        self._start_head_clock()

    def _refuse_over_cap(self) -> None:
        """Answer 503 at once, then read and drop what the client sends until it closes (or the head time
        is up): closing with its request unread would reset the connection before it reads the 503."""
        log.warning(
            "refusing a connection from %s: %s connections are open (the cap)",
            self.client[0] if self.client else "?",
            self.max_connections,
        )
        self._over_cap = True
        self.transport.write(OVER_CAP_RESPONSE)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        asyncio.get_running_loop().call_later(self.header_timeout, self.transport.close)

    def data_received(self, data: bytes) -> None:
        if self._over_cap:
            return
        cycle = self.cycle
        super().data_received(data)
        if self.cycle is not cycle:
            self._stop_head_clock()  # a head was parsed; the body has BodyDeadline
        elif self._between_requests():
            self._start_head_clock()  # part of the next request's head (a no-op if already running)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_clock()
        super().connection_lost(exc)

    def _between_requests(self) -> bool:
        return self.cycle is None or self.cycle.response_complete

    def _start_head_clock(self) -> None:
        if self._head_timer is None:
            self._head_timer = asyncio.get_running_loop().call_later(self.header_timeout, self._head_is_late)

    def _stop_head_clock(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_is_late(self) -> None:
        self._head_timer = None
        if self._between_requests() and not self.transport.is_closing():
            log.warning(
                "closing a connection from %s: no complete request head within %s s",
                self.client[0] if self.client else "?",
                self.header_timeout,
            )
            self.transport.close()


def _protocol_class(http: str, limits: ServerLimits) -> type[asyncio.Protocol]:
    """uvicorn's HTTP protocol (`auto`: httptools when installed, else h11) with the head deadline and cap."""
    base = import_from_string(HTTP_PROTOCOLS[http])
    return type(
        f"HeadDeadline{base.__name__}",
        (_HeadDeadline, base),
        {"header_timeout": limits.header_timeout, "max_connections": limits.max_connections},
    )


class BodyDeadline:
    """ASGI middleware: a request body still incomplete `seconds` after the app was called gets a 408.

    Only reads of the body are timed (not a later wait for a disconnect). On time-out the client gets
    408 with `Connection: close` (unless the app has begun its answer), the app sees the client as gone
    (`http.disconnect`) and its own answer is dropped, and the scope says why (`BODY_TIMED_OUT`) for
    the app's log.
    """

    def __init__(self, app: Callable[..., Awaitable[None]], seconds: float) -> None:
        self.app = app
        self.seconds = seconds

    async def __call__(self, scope: dict[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = _TimedRequest(scope, receive, send, self.seconds)
        await self.app(scope, request.receive, request.send)


class _TimedRequest:
    """One request seen through BodyDeadline: `receive` with the deadline, `send` unless the 408 went first."""

    def __init__(self, scope: dict[str, Any], receive: Receive, send: Send, seconds: float) -> None:
        self.scope, self._receive, self._send, self.seconds = scope, receive, send, seconds
        self.deadline = asyncio.get_running_loop().time() + seconds
        self.body_done = self.timed_out = self.started = self.answered = False

    async def receive(self) -> Message:
        if self.timed_out:
            return {"type": "http.disconnect"}
        if self.body_done:
            return await self._receive()
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self._receive()
        except TimeoutError:
            await self._time_out()
            return {"type": "http.disconnect"}
        self.body_done = message["type"] != "http.request" or not message.get("more_body", False)
        return message

    async def send(self, message: Message) -> None:
        if not self.answered:
            self.started = True
            await self._send(message)

    async def _time_out(self) -> None:
        self.timed_out = self.scope[BODY_TIMED_OUT] = True
        if self.started:
            return  # the app is answering already: let it finish
        self.answered = True
        body = (
            '{"error":{"code":408,"reason":"body_timeout","message":"the request body did not arrive within '
            f'{self.seconds:g} s"}}}}'
        ).encode()
        await self._send(
            {
                "type": "http.response.start",
                "status": 408,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await self._send({"type": "http.response.body", "body": body})


def _uvicorn_options(limits: ServerLimits, http: str) -> dict[str, Any]:
    """What serve_in_thread and run_forever both give uvicorn: the limits, no websockets, no lifespan."""
    return {
        "http": _protocol_class(http, limits),
        "ws": "none",
        "lifespan": "off",
        "access_log": False,
        "timeout_graceful_shutdown": 5,
    }


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]  # (host, port) for AF_INET
        return port


def serve_in_thread(
    app: Any,
    host: str = "127.0.0.1",
    port: int = 0,
    *,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    log_level: str = "warning",
    startup_timeout: float = 15.0,
    limits: ServerLimits | None = None,
    http: str = "auto",
) -> ServerHandle:
    """Start `app` and return once it accepts connections. `http` picks uvicorn's HTTP implementation."""
    limits = limits or ServerLimits()
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(2048)
    sock.set_inheritable(True)
    config = uvicorn.Config(
        BodyDeadline(app, limits.body_timeout),
        log_level=log_level,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        backlog=2048,
        **_uvicorn_options(limits, http),
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name=f"uvicorn-{host}")
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(f"server on {host}:{sock.getsockname()[1]} did not start")
        time.sleep(0.01)
    return ServerHandle(server, thread, host, sock.getsockname()[1], "https" if ssl_certfile else "http")


def run_forever(
    app: Any,
    host: str,
    port: int,
    *,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
    log_level: str = "info",
    limits: ServerLimits | None = None,
) -> None:
    """Serve in the foreground until Ctrl-C (for `ml-connector receiver` / `agent`)."""
    limits = limits or ServerLimits()
    uvicorn.run(
        BodyDeadline(app, limits.body_timeout),
        host=host,
        port=port,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        log_level=log_level,
        **_uvicorn_options(limits, "auto"),
    )


__all__ = [
    "BODY_TIMED_OUT",
    "BodyDeadline",
    "ServerHandle",
    "ServerLimits",
    "free_port",
    "run_forever",
    "serve_in_thread",
]
