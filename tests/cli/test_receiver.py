"""`ml-connector receiver`: a real process that loses nothing it acknowledged, and what it needs to start."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from ml_connector_dagster.bench.webhooks import ReceiverProcess
from ml_connector_dagster.cli import main
from ml_connector_dagster.gocardless.receiver import WEBHOOK_PATH
from ml_connector_dagster.httpserve import free_port
from ml_connector_dagster.settings import Settings
from ml_connector_dagster.store import Store

from support.gocardless import body_of, deliver, event


@pytest.fixture
def receiver_env(receiver_settings: Settings) -> dict[str, str]:
    return {**os.environ, "PYTHONUNBUFFERED": "1"}


@pytest.mark.slow
def test_a_killed_receiver_loses_nothing_it_acknowledged(
    receiver_env: dict[str, str], receiver_settings: Settings, tmp_path: Path
) -> None:
    port = free_port()
    events = [event(f"EVR{n:05d}", resource_id=f"PM{n:05d}") for n in range(600)]
    batches = [events[i : i + 5] for i in range(0, len(events), 5)]
    first = ReceiverProcess(receiver_env, port, tmp_path / "first.log")
    first.wait_ready()
    acknowledged: list[str] = []
    lock = threading.Lock()

    def send(batch: list[dict]) -> None:
        try:
            with httpx.Client(timeout=5) as client:
                response = deliver(client, first.url + WEBHOOK_PATH, body_of(batch))
        except httpx.HTTPError:
            return  # the receiver died mid-request: GoCardless would retry
        if response.status_code == 204:
            with lock:
                acknowledged.extend(e["id"] for e in batch)
                if len(acknowledged) >= 150 and first.proc.poll() is None:
                    first.kill()

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(send, batches))
    first.stop()

    store = Store(receiver_settings.database_url)
    after_crash = {r.event_id for r in store.inbox.list(limit=None)}
    assert len(acknowledged) >= 150
    assert set(acknowledged) <= after_crash
    assert len(after_crash) < len(events)  # the kill really interrupted the stream

    second = ReceiverProcess(receiver_env, port, tmp_path / "second.log")
    second.wait_ready()
    with httpx.Client(timeout=5) as client:  # GoCardless retries everything that was not acknowledged
        statuses = {deliver(client, second.url + WEBHOOK_PATH, body_of(batch)).status_code for batch in batches}
    second.stop()

    assert statuses == {204}
    assert sorted(r.event_id for r in store.inbox.list(limit=None)) == sorted(e["id"] for e in events)
    store.dispose()


def test_the_receiver_command_explains_a_missing_webhook_secret(home: Path) -> None:
    result = CliRunner().invoke(main, ["receiver", "--port", str(free_port())])

    assert result.exit_code == 1
    assert "ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS: not set" in result.output
