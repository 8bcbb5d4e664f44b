"""The agent over HTTPS: passwords never cross the network in clear, and the client checks who it talks to."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests

from ml_connector_dagster.agent import agent_app
from ml_connector_dagster.httpserve import serve_in_thread
from ml_connector_dagster.sage100 import AgentClient, RetryPolicy, SageUnavailable
from ml_connector_dagster.sage100.clients import clear_wsdl_cache
from ml_connector_dagster.sandbox.sage_company import SageCompany
from ml_connector_dagster.sandbox.simulated_backend import SimulatedBackend


@pytest.fixture
def https_agent(company: SageCompany, tls_files: tuple[Path, Path]):
    cert, key = tls_files
    server = serve_in_thread(agent_app(SimulatedBackend(company)), ssl_certfile=str(cert), ssl_keyfile=str(key))
    yield server
    clear_wsdl_cache()  # close the client's keep-alive connection, or shutdown waits for it
    server.stop()


def client(url: str, ca_bundle: str | None, sleeps: list[float]) -> AgentClient:
    return AgentClient(
        f"{url}/agent?wsdl",
        username="demo",
        password="demo-password",
        company_code="ABC",
        ca_bundle=ca_bundle,
        retry=RetryPolicy(attempts=3, sleep=sleeps.append),
    )


def test_the_client_verifies_the_agents_certificate_with_the_ca_bundle(
    https_agent, tls_files, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", requests.certs.where())  # the configured bundle must still win

    info = client(https_agent.url, str(tls_files[0]), []).ping()

    assert https_agent.url.startswith("https://") and info.company_code == "ABC"


def test_a_certificate_not_in_the_bundle_is_refused_at_once(https_agent) -> None:
    sleeps: list[float] = []

    with pytest.raises(SageUnavailable) as caught:
        client(https_agent.url, None, sleeps).ping()

    assert not caught.value.transient and sleeps == []
    assert "ML_CONNECTOR_SAGE_CA_BUNDLE" in str(caught.value)
