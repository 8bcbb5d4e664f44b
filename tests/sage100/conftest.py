"""Fixtures for the Sage 100 clients: both stand-ins on loopback over the bundled scenario's company."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from ml_connector_dagster.sage100 import AgentClient, EBusinessClient, RetryPolicy
from ml_connector_dagster.sage100.clients import clear_wsdl_cache
from ml_connector_dagster.sandbox.sage_services import SageStandIns, start_sage_stand_ins
from ml_connector_dagster.sandbox.scenario import bundled

from support.sage import PAGE_SIZE


@pytest.fixture
def sleeps() -> list[float]:
    """Backoff waits the clients asked for (recorded instead of slept, so tests stay fast)."""
    return []


@pytest.fixture
def retry(sleeps: list[float]) -> RetryPolicy:
    return RetryPolicy(attempts=4, base_delay=0.5, sleep=sleeps.append)


@pytest.fixture
def stand_ins(tmp_path: Path) -> Iterator[SageStandIns]:
    handle = start_sage_stand_ins(bundled("small"), data_dir=tmp_path / "sage", page_size=PAGE_SIZE)
    yield handle
    clear_wsdl_cache()
    handle.stop()


@pytest.fixture
def agent(stand_ins: SageStandIns, retry: RetryPolicy) -> AgentClient:
    return AgentClient(stand_ins.agent_wsdl, username=stand_ins.username, password=stand_ins.password,
                       company_code=stand_ins.company_code, retry=retry)


@pytest.fixture
def ebusiness(stand_ins: SageStandIns, retry: RetryPolicy) -> EBusinessClient:
    return EBusinessClient(stand_ins.ebusiness_wsdl, username=stand_ins.username, password=stand_ins.password,
                           company_code=stand_ins.company_code, retry=retry)
