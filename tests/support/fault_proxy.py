"""A fault-injecting HTTP/1.1 proxy in front of the Sage agent, acting on each request's SOAP operation.

Shared by the fault-injection proofs: answer 5xx without forwarding, forward and answer too late, forward
and then run a callback (kill the agent, kill the run worker) and drop the connection without answering.
"""

from __future__ import annotations

import asyncio
import os
import re
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ml_connector_dagster.httpserve import free_port

SOAP_OPERATION = re.compile(rb"<(?:[\w.-]+:)?Body[^>]*>\s*<(?:[\w.-]+:)?(\w+)")


@dataclass
class Rule:
    """What to do with the next `count` requests of one SOAP operation.

    kinds: `status` answers `status` with an HTML error page without forwarding; `late` forwards, then
    answers only after `seconds` (after the client has given up); `drop_after` forwards (the agent
    commits), calls `then()` and closes the connection without answering; `drop_before` calls `then()`
    and closes the connection without forwarding. `peer` is the (host, port) of the client connection the
    rule last acted on, set before `then()` runs, so `then()` can find the process that sent the request.
    """

    operation: str
    kind: str
    count: int = 1
    status: int = 503
    seconds: float = 0.0
    then: Callable[[], None] | None = None
    peer: tuple[str, int] | None = None


@dataclass
class FaultProxy:
    upstream_port: int
    rules: list[Rule] = field(default_factory=list)
    seen: list[tuple[str, str]] = field(default_factory=list)  # (operation, what the proxy did)

    def __post_init__(self) -> None:
        self.port = free_port()
        self._lock = threading.Lock()
        self._tasks: set[asyncio.Task] = set()
        self._loop = asyncio.new_event_loop()
        started = threading.Event()
        self._thread = threading.Thread(target=self._serve, args=(started,), daemon=True, name="fault-proxy")
        self._thread.start()
        assert started.wait(10), "the fault proxy did not start"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def injected(self, kind: str | None = None) -> int:
        with self._lock:
            return sum(1 for _, what in self.seen if what != "pass" and (kind is None or what == kind))

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _shutdown(self) -> None:
        self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def _serve(self, started: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", self.port))
        started.set()
        self._loop.run_forever()

    def _take(self, operation: str) -> Rule | None:
        with self._lock:
            for rule in self.rules:
                if rule.operation == operation:
                    rule.count -= 1
                    if rule.count <= 0:
                        self.rules.remove(rule)
                    return rule
        return None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        try:
            while (request := await _read_message(reader)) is not None:
                head, body = request
                operation = "GET" if head.startswith(b"GET") else _operation(body)
                rule = self._take(operation)
                what = rule.kind if rule else "pass"
                if rule:
                    rule.peer = writer.get_extra_info("peername")[:2]
                with self._lock:
                    self.seen.append((operation, what))
                if what == "status":
                    page = f"<html><body><h1>{rule.status} Service Unavailable</h1></body></html>".encode()
                    writer.write(
                        f"HTTP/1.1 {rule.status} Error\r\nContent-Type: text/html\r\n"
                        f"Content-Length: {len(page)}\r\n\r\n".encode()
                        + page
                    )
                    await writer.drain()
                    continue
                if what == "drop_before":
                    rule.then and await asyncio.get_running_loop().run_in_executor(None, rule.then)
                    writer.transport.abort()
                    return
                response = await self._forward(head, body)
                if what == "drop_after":
                    rule.then and await asyncio.get_running_loop().run_in_executor(None, rule.then)
                    writer.transport.abort()
                    return
                if what == "late":
                    await asyncio.sleep(rule.seconds)
                writer.write(response)
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass
        finally:
            writer.close()
            self._tasks.discard(task)

    async def _forward(self, head: bytes, body: bytes) -> bytes:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        try:
            up_writer.write(head + body)
            await up_writer.drain()
            response = await _read_message(up_reader)
            assert response is not None, "the agent closed the connection without answering"
            return response[0] + response[1]
        finally:
            up_writer.close()


async def _read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes] | None:
    """One HTTP/1.1 message with a Content-Length body (all our services send one); None at EOF."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    body = await reader.readexactly(int(match.group(1))) if match else b""
    return head, body


def _operation(body: bytes) -> str:
    match = SOAP_OPERATION.search(body)
    return match.group(1).decode() if match else "?"


def process_of_client(peer: tuple[str, int], pids: Iterable[int]) -> int | None:
    """Which of `pids` owns the client end of the TCP connection `peer` (Linux /proc): the process that sent
    the request a rule acted on, found by the socket, not by what any bookkeeping says it is."""
    sockets = _socket_links(peer[1])
    for pid in pids:
        try:
            fds = list(Path(f"/proc/{pid}/fd").iterdir())
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(fd) in sockets:
                    return pid
            except OSError:
                continue
    return None


def _socket_links(local_port: int) -> set[str]:
    """`socket:[inode]` of every TCP socket bound to `local_port`."""
    links = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == local_port:
                links.add(f"socket:[{fields[9]}]")
    return links
