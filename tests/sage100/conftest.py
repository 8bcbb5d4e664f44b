"""Fixtures for the Sage 100 clients, against both stand-ins (`stand_ins` is in tests/conftest.py)."""

from __future__ import annotations

import pytest

from ml_connector_dagster.sage100 import AgentClient, EBusinessClient, RetryPolicy
from ml_connector_dagster.sandbox.sage_services import SageStandIns

from support.sage import agent_client


@pytest.fixture
def sleeps() -> list[float]:
    """Backoff waits the clients asked for (recorded instead of slept, so tests stay fast)."""
    return []


@pytest.fixture
def retry(sleeps: list[float]) -> RetryPolicy:
    return RetryPolicy(attempts=4, base_delay=0.5, sleep=sleeps.append)


@pytest.fixture
def agent(stand_ins: SageStandIns, retry: RetryPolicy) -> AgentClient:
    return agent_client(stand_ins, retry)


@pytest.fixture
def ebusiness(stand_ins: SageStandIns, retry: RetryPolicy) -> EBusinessClient:
    return EBusinessClient(
        stand_ins.ebusiness_wsdl,
        username=stand_ins.username,
        password=stand_ins.password,
        company_code=stand_ins.company_code,
        retry=retry,
    )
