"""Fixtures for the GoCardless side: a receiver and a GoCardless stand-in on loopback, real HTTP only."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from ml_connector_dagster.gocardless.receiver import WEBHOOK_PATH, create_app
from ml_connector_dagster.httpserve import ServerHandle, serve_in_thread
from ml_connector_dagster.sandbox.gocardless_api import GoCardlessStandIn, start_gocardless_stand_in
from ml_connector_dagster.sandbox.scenario import bundled
from ml_connector_dagster.settings import Settings, load_settings
from ml_connector_dagster.store import Store

from support.gocardless import FAST_RETRIES, NEW_SECRET, TOKEN, VECTOR_SECRET, write_scenario


@pytest.fixture
def receiver_settings(home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Two webhook secrets configured at once, as during a rotation."""
    monkeypatch.setenv("ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS", f"{VECTOR_SECRET},{NEW_SECRET}")
    return load_settings()


@pytest.fixture
def receiver_store(receiver_settings: Settings) -> Iterator[Store]:
    store = Store(receiver_settings.database_url)
    yield store
    store.dispose()


@pytest.fixture
def receiver(receiver_settings: Settings, receiver_store: Store) -> Iterator[ServerHandle]:
    handle = serve_in_thread(create_app(receiver_settings, receiver_store))
    yield handle
    handle.stop()


@pytest.fixture
def webhook_url(receiver: ServerHandle) -> str:
    return receiver.url + WEBHOOK_PATH


@pytest.fixture
def stand_in() -> Iterator[GoCardlessStandIn]:
    handle = start_gocardless_stand_in(bundled("small"), token=TOKEN, retry_intervals=FAST_RETRIES)
    yield handle
    handle.stop()


@pytest.fixture
def api_env(stand_in: GoCardlessStandIn, home: Path, monkeypatch: pytest.MonkeyPatch) -> GoCardlessStandIn:
    """Settings pointing the connector at the stand-in."""
    monkeypatch.setenv("ML_CONNECTOR_GOCARDLESS_API_URL", stand_in.url)
    monkeypatch.setenv("ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN", TOKEN)
    return stand_in


@pytest.fixture
def big_stand_in(tmp_path: Path) -> Iterator[GoCardlessStandIn]:
    handle = start_gocardless_stand_in(write_scenario(tmp_path / "big", 1100), token=TOKEN,
                                       retry_intervals=FAST_RETRIES)
    yield handle
    handle.stop()
