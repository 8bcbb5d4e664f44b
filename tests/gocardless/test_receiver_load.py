"""`ml-connector receiver` under concurrent load: with 50 signed deliveries in flight at once over keep-alive
connections, every delivery is acknowledged and every event is stored exactly once.

How fast it does so is the webhook benchmark's business (`ml-connector bench webhooks`, docs/benchmarks.md).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from ml_connector_dagster.bench.webhooks import ReceiverProcess
from ml_connector_dagster.gocardless.webhooks import sign
from ml_connector_dagster.httpserve import free_port
from ml_connector_dagster.settings import Settings
from ml_connector_dagster.store import Store

from support.gocardless import NEW_SECRET, body_of, event

pytestmark = pytest.mark.slow  # a real process under load

DELIVERIES = 300
EVENTS_PER_DELIVERY = 10
CONNECTIONS = 50


class Connection:
    """HTTP/1.1 keep-alive over raw asyncio streams: a load generator cheap enough not to be the bottleneck."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def post(self, port: int, body: bytes) -> int:
        head = (
            f"POST /webhooks/gocardless HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Webhook-Signature: {sign(body, NEW_SECRET)}\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
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


async def offer_load(port: int, bodies: list[bytes]) -> list[int]:
    """Send every body over CONNECTIONS open connections, each sending its next body as soon as the last is answered;
    the status of each delivery, in the order of `bodies`."""
    pool: asyncio.Queue[Connection] = asyncio.Queue()
    for _ in range(CONNECTIONS):
        pool.put_nowait(Connection(*await asyncio.open_connection("127.0.0.1", port)))

    async def send(body: bytes) -> int:
        conn = await pool.get()  # at most CONNECTIONS deliveries in flight
        try:
            return await conn.post(port, body)
        finally:
            pool.put_nowait(conn)

    statuses = await asyncio.gather(*(send(body) for body in bodies))
    while not pool.empty():
        pool.get_nowait().writer.close()
    return list(statuses)


def test_fifty_deliveries_in_flight_at_once_are_all_acknowledged_and_each_event_is_stored_once(
    receiver_settings: Settings, tmp_path: Path
) -> None:
    ids = [f"EVL{n:07d}" for n in range(DELIVERIES * EVENTS_PER_DELIVERY)]
    bodies = [
        body_of([event(i, resource_id=f"PM{i[3:]}") for i in ids[n : n + EVENTS_PER_DELIVERY]])
        for n in range(0, len(ids), EVENTS_PER_DELIVERY)
    ]
    port = free_port()
    receiver = ReceiverProcess({**os.environ}, port, tmp_path / "receiver.log")
    try:
        receiver.wait_ready()

        statuses = asyncio.run(offer_load(port, bodies))
    finally:
        receiver.stop()

    store = Store(receiver_settings.database_url)
    try:
        stored = [row.event_id for row in store.inbox.list(limit=None)]
    finally:
        store.dispose()
    assert statuses == [204] * DELIVERIES
    assert sorted(stored) == ids
