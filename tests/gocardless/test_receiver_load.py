"""The receiver keeps up with 1,000 events/s at up to 50 deliveries in flight, answering p99 < 100 ms."""

from __future__ import annotations

import asyncio
import os
import time

import pytest

from ml_connector_dagster.bench.webhooks import ReceiverProcess
from ml_connector_dagster.gocardless.webhooks import sign
from ml_connector_dagster.httpserve import free_port
from ml_connector_dagster.settings import Settings
from ml_connector_dagster.store import Store

from support.gocardless import NEW_SECRET, body_of, event

EVENTS_PER_SECOND = 1000
EVENTS_PER_DELIVERY = 10
SECONDS = 3
CONNECTIONS = 50


class Connection:
    """HTTP/1.1 keep-alive over raw asyncio streams: a load generator cheap enough not to be the bottleneck."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def post(self, port: int, body: bytes) -> int:
        head = (f"POST /webhooks/gocardless HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
                f"Webhook-Signature: {sign(body, NEW_SECRET)}\r\nContent-Length: {len(body)}\r\n\r\n").encode()
        self.writer.write(head + body)
        await self.writer.drain()
        status = int((await self.reader.readline()).split()[1])
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            name, _, value = line.decode().partition(":")
            length = int(value) if name.lower() == "content-length" else length
        if length:
            await self.reader.readexactly(length)
        return status


async def offer_load(port: int, bodies: list[bytes], rate: float) -> tuple[list[float], list[int], float]:
    """Send each body at its scheduled time (open loop); latency counts from the scheduled time."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        pool.put_nowait(Connection(*await asyncio.open_connection("127.0.0.1", port)))
    latencies: list[float] = []
    statuses: list[int] = []
    start = time.perf_counter()

    async def send(index: int, body: bytes) -> None:
        scheduled = start + index / rate
        await asyncio.sleep(max(0.0, scheduled - time.perf_counter()))
        conn = await pool.get()  # at most CONNECTIONS deliveries in flight
        statuses.append(await conn.post(port, body))
        latencies.append(time.perf_counter() - scheduled)
        pool.put_nowait(conn)

    await asyncio.gather(*(send(i, b) for i, b in enumerate(bodies)))
    elapsed = time.perf_counter() - start
    while not pool.empty():
        pool.get_nowait().writer.close()
    return latencies, statuses, elapsed


def test_a_thousand_events_a_second_are_stored_with_p99_under_100_ms(receiver_settings: Settings, tmp_path) -> None:
    port = free_port()
    process = ReceiverProcess({**os.environ}, port, tmp_path / "receiver.log")
    process.wait_ready()
    total = EVENTS_PER_SECOND * SECONDS
    bodies = [body_of([event(f"EVL{n + i:07d}", resource_id=f"PM{n + i:07d}") for i in range(EVENTS_PER_DELIVERY)])
              for n in range(0, total, EVENTS_PER_DELIVERY)]
    try:
        latencies, statuses, elapsed = asyncio.run(offer_load(port, bodies, EVENTS_PER_SECOND / EVENTS_PER_DELIVERY))
    finally:
        process.kill()

    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99)]
    store = Store(receiver_settings.database_url)
    assert set(statuses) == {204}
    assert total / elapsed >= EVENTS_PER_SECOND * 0.95, f"{total / elapsed:.0f} events/s"
    assert p99 < 0.100, f"p99 {p99 * 1000:.0f} ms"
    assert len(store.inbox.list(limit=None)) == total
    store.dispose()
