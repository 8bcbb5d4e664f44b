"""Benchmark of the webhook receiver: signed deliveries over loopback into a real `ml-connector receiver`.

    ml-connector bench webhooks --deliveries 2000 --concurrency 50 --events-per-delivery 10

The receiver runs as its own process (as in production), on a fresh SQLite store under a temporary home
unless `database_url` names another store. The load generator keeps `concurrency` HTTP/1.1 keep-alive
connections busy (closed loop: each sends its next delivery as soon as the previous one is answered),
or, with `rate` (events per second), sends each delivery at its scheduled time with at most
`concurrency` in flight (open loop: latency counts from the scheduled time, so queueing is included).

Afterwards every acknowledged event is looked up in the inbox: `lost` counts those that are not there.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx

from ..gocardless.webhooks import sign
from ..httpserve import free_port
from ..store import Store

SECRET = "bench-webhook-secret"
ML_CONNECTOR = [sys.executable, "-c", "from ml_connector_dagster.cli import main; main()"]


class BenchError(RuntimeError):
    """The benchmark could not produce a valid figure (e.g. the receiver refused deliveries)."""


def run(
    deliveries: int = 2000,
    concurrency: int = 50,
    events_per_delivery: int = 10,
    *,
    rate: float | None = None,
    database_url: str | None = None,
) -> dict[str, object]:
    """Drive a receiver process; return deliveries, events, seconds, events_per_second, p50_ms, p99_ms, lost."""
    if deliveries < 1 or concurrency < 1 or events_per_delivery < 1:
        raise ValueError("deliveries, concurrency and events-per-delivery must each be at least 1")
    tag = uuid.uuid4().hex[:10].upper()
    bodies, ids = _deliveries(tag, deliveries, events_per_delivery)
    home = Path(tempfile.mkdtemp(prefix="ml-connector-bench-webhooks-"))
    env = {
        **os.environ,
        "ML_CONNECTOR_HOME": str(home),
        "ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS": SECRET,
        "PYTHONUNBUFFERED": "1",
        # the receiver's connection cap must not turn the offered load itself into 503s
        "ML_CONNECTOR_HTTP_MAX_CONNECTIONS": str(max(128, concurrency + 8)),
    }
    if database_url:
        env["ML_CONNECTOR_DATABASE_URL"] = database_url
    else:
        env.pop("ML_CONNECTOR_DATABASE_URL", None)
    port = free_port()
    receiver = ReceiverProcess(env, port, home / "receiver.log")
    try:
        receiver.wait_ready()
        latencies, statuses, seconds = asyncio.run(_offer(port, bodies, concurrency, rate, events_per_delivery))
    finally:
        receiver.stop()
    refused = [s for s in statuses if s != 204]
    if refused:  # the home folder is kept for its receiver.log
        raise BenchError(
            f"{len(refused)} of {deliveries} deliveries were not acknowledged "
            f"(statuses {sorted(set(refused))}); see {home / 'receiver.log'}"
        )
    lost = _lost(env, ids)
    shutil.rmtree(home, ignore_errors=True)
    latencies.sort()
    events = deliveries * events_per_delivery
    return {
        "deliveries": deliveries,
        "events": events,
        "seconds": round(seconds, 3),
        "events_per_second": round(events / seconds),
        "p50_ms": round(_quantile(latencies, 0.50) * 1000, 1),
        "p99_ms": round(_quantile(latencies, 0.99) * 1000, 1),
        "lost": lost,
    }


def _deliveries(tag: str, deliveries: int, per: int) -> tuple[list[bytes], list[str]]:
    bodies, ids = [], []
    for d in range(deliveries):
        events = []
        for e in range(per):
            n = d * per + e
            event_id = f"EVB{tag}{n:09d}"
            ids.append(event_id)
            events.append(
                {
                    "id": event_id,
                    "created_at": "2026-11-25T10:00:00.000Z",
                    "resource_type": "payments",
                    "action": "confirmed",
                    "links": {"payment": f"PMB{tag}{n:09d}"},
                    "details": {"origin": "gocardless", "cause": "payment_confirmed"},
                    "metadata": {},
                }
            )
        bodies.append(
            json.dumps({"events": events, "meta": {"webhook_id": f"WB{tag}{d:09d}"}}, separators=(",", ":")).encode()
        )
    return bodies, ids


def _quantile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return 0.0
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def _lost(env: dict[str, str], ids: list[str]) -> int:
    """Acknowledged events that are not in the inbox (every event was acknowledged when we get here)."""
    from ..settings import load_settings

    store = Store(load_settings(env).database_url)
    try:
        stored = {row.event_id for row in store.inbox.list(limit=None)}
    finally:
        store.dispose()
    return sum(1 for i in ids if i not in stored)


class ReceiverProcess:
    """`ml-connector receiver` as a child process in its own process group; output goes to `log`."""

    def __init__(self, env: dict[str, str], port: int, log: Path) -> None:
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self._log = log.open("ab")
        self.proc = subprocess.Popen(
            [*ML_CONNECTOR, "receiver", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 60.0) -> None:
        """Until GET /healthz answers (or the process dies, or `timeout` passes)."""
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1.0) as client:
            while True:
                if self.proc.poll() is not None:
                    raise BenchError(f"the receiver exited with {self.proc.returncode} before it was ready")
                try:
                    if client.get(self.url + "/healthz").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    raise BenchError(f"the receiver did not answer /healthz within {timeout:.0f} s")
                time.sleep(0.05)

    def kill(self) -> None:
        """kill -9 the whole process group (a crash: nothing is flushed or answered)."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)

    def stop(self) -> None:
        """SIGINT (uvicorn's graceful shutdown), then SIGKILL if it is still there after 10 s."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
            except ProcessLookupError:
                pass
        self.kill()
        self._log.close()


class _Connection:
    """HTTP/1.1 keep-alive over raw asyncio streams: cheap enough that the generator is not the bottleneck."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, port: int) -> None:
        self.reader, self.writer, self.port = reader, writer, port

    async def post(self, body: bytes) -> int:
        head = (
            f"POST /webhooks/gocardless HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Content-Type: application/json\r\nUser-Agent: gocardless-webhook-service/1.1\r\n"
            f"Webhook-Signature: {sign(body, SECRET)}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        self.writer.write(head + body)
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-length":
                length = int(value)
        if length:
            await self.reader.readexactly(length)
        return status


async def _offer(
    port: int, bodies: list[bytes], concurrency: int, rate: float | None, per: int
) -> tuple[list[float], list[int], float]:
    connections = [_Connection(*await asyncio.open_connection("127.0.0.1", port), port) for _ in range(concurrency)]
    latencies: list[float] = []
    statuses: list[int] = []
    next_index = 0
    start = time.perf_counter()
    interval = per / rate if rate else 0.0

    async def worker(conn: _Connection) -> None:
        nonlocal next_index
        while next_index < len(bodies):
            index = next_index
            next_index += 1
            if interval:
                scheduled = start + index * interval
                await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
                began = scheduled
            else:
                began = time.perf_counter()
            statuses.append(await conn.post(bodies[index]))
            latencies.append(time.perf_counter() - began)

    try:
        await asyncio.gather(*(worker(c) for c in connections))
    finally:
        for conn in connections:
            conn.writer.close()
    return latencies, statuses, time.perf_counter() - start
