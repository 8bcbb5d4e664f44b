"""Shared fixtures: a fresh ML_CONNECTOR_HOME per test with settings in the environment."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ml_connector_dagster.secrets import generate_key
from ml_connector_dagster.settings import Settings, load_settings
from ml_connector_dagster.store import Store


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ML_CONNECTOR_HOME with a fresh secret key; other ML_CONNECTOR_* variables cleared."""
    import os

    for name in list(os.environ):
        if name.startswith("ML_CONNECTOR_"):
            monkeypatch.delenv(name)
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("ML_CONNECTOR_HOME", str(path))
    monkeypatch.setenv("ML_CONNECTOR_SECRET_KEY", generate_key())
    return path


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings()


@pytest.fixture
def store(settings: Settings) -> Store:
    s = Store(settings.database_url)
    yield s
    s.dispose()


POSTGRES_URL = os.environ.get("ML_CONNECTOR_TEST_POSTGRES_URL")
if os.environ.get("CI") and not POSTGRES_URL:
    raise RuntimeError("CI must set ML_CONNECTOR_TEST_POSTGRES_URL (see .ci/run): the store is tested on PostgreSQL too")
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


def _reset_postgres(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, settings: Settings) -> str:
    """The operational store's URL on each backend the run has: SQLite always, PostgreSQL when configured."""
    if request.param == "sqlite":
        return settings.database_url
    _reset_postgres(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture
def any_store(store_url: str) -> Store:
    s = Store(store_url)
    yield s
    s.dispose()
