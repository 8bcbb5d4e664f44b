"""Shared fixtures: a fresh ML_CONNECTOR_HOME per test with settings in the environment."""

from __future__ import annotations

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
