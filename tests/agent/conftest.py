"""Fixtures for the agent: the agent serving the bundled company (`company` is in tests/conftest.py), and the
BOI backend over a fake of Sage's COM objects."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ml_connector_dagster.agent import BOIBackend, agent_app
from ml_connector_dagster.agent.ledger import AgentLedger
from ml_connector_dagster.httpserve import ServerHandle, serve_in_thread
from ml_connector_dagster.sage100.model import Credentials
from ml_connector_dagster.sandbox.sage_company import SageCompany
from ml_connector_dagster.sandbox.simulated_backend import SimulatedBackend

from support.boi_fake import HOME, TODAY, FakeSage, FakeVariant


@pytest.fixture
def sage() -> FakeSage:
    """Sage's COM objects as the BOI backend sees them (the real ones exist only on a Windows Sage server)."""
    return FakeSage()


@pytest.fixture
def backend(sage: FakeSage, tmp_path: Path) -> Iterator[BOIBackend]:
    backend = BOIBackend(
        HOME,
        AgentLedger(tmp_path / "ledger.sqlite"),
        dispatch=sage.dispatch,
        today=lambda: TODAY,
        variant=FakeVariant,
    )
    yield backend
    backend.ledger.close()


@pytest.fixture
def creds() -> Credentials:
    """The logon the fake's SY_Session accepts."""
    return Credentials("demo", "demo-password", "ABC")


@pytest.fixture
def agent_server(company: SageCompany) -> Iterator[ServerHandle]:
    handle = serve_in_thread(agent_app(SimulatedBackend(company), page_size=3))
    yield handle
    handle.stop()
