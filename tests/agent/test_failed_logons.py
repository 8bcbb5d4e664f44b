"""Failed logons to the agent: each is logged (never the password), and an address that keeps failing is
refused for a growing while, with a fault that says so, before any password is checked again.

Through SOAP over loopback (zeep, or raw requests for the burst); the service's clock is injected, so no
test sleeps.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest

from ml_connector_dagster.agent import BOIBackend, agent_app
from ml_connector_dagster.agent.logons import LogonPolicy
from ml_connector_dagster.httpserve import ServerHandle, serve_in_thread
from ml_connector_dagster.sage100 import AgentClient, RetryPolicy, SageLogonError, SageLogonLockedOut
from ml_connector_dagster.sage100.clients import clear_wsdl_cache
from ml_connector_dagster.sandbox.sage_company import SageCompany
from ml_connector_dagster.sandbox.simulated_backend import SimulatedBackend

from support.boi_fake import FakeSage
from support.raw_soap import envelope, fault, logon, post

WRONG = "Wr0ng-Pa55word"
POLICY = LogonPolicy(max_failures=3, lockout_seconds=30, max_lockout_seconds=600)


class Clock:
    """The service's monotonic clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def server(backend: BOIBackend, clock: Clock) -> Iterator[ServerHandle]:
    """The agent over the BOI fake (so the tests can count the passwords Sage was asked to check)."""
    handle = serve_in_thread(agent_app(backend, logon_policy=POLICY, clock=clock))
    yield handle
    clear_wsdl_cache()
    handle.stop()


def client(server: ServerHandle, password: str = "demo-password") -> AgentClient:
    return AgentClient(
        f"{server.url}/agent?wsdl",
        username="demo",
        password=password,
        company_code="ABC",
        retry=RetryPolicy(attempts=1),
    )


def fail_logons(server: ServerHandle, times: int) -> None:
    for _ in range(times):
        with pytest.raises(SageLogonError):
            client(server, WRONG).ping()


def test_each_failed_logon_is_logged_with_user_address_and_company_but_never_the_password(
    server: ServerHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)

    fail_logons(server, 1)

    failed = [r.getMessage() for r in caplog.records if "failed agent logon" in r.getMessage().lower()]
    assert len(failed) == 1 and "'demo'" in failed[0] and "127.0.0.1" in failed[0] and "'ABC'" in failed[0]
    assert WRONG not in caplog.text and "demo-password" not in caplog.text


def test_an_address_that_keeps_failing_is_refused_with_a_fault_saying_when_to_try_again(server: ServerHandle) -> None:
    fail_logons(server, 3)

    with pytest.raises(SageLogonLockedOut) as caught:
        client(server).ping()  # even the right password is not checked now

    assert caught.value.message == "too many failed logons from 127.0.0.1; try again in 30 seconds"
    assert caught.value.code == "CI_LogonLockedOut" and caught.value.retry_after == 30


def test_no_password_is_checked_while_an_address_is_refused(server: ServerHandle, sage: FakeSage) -> None:
    fail_logons(server, 3)

    for _ in range(5):
        with pytest.raises(SageLogonLockedOut):
            client(server, WRONG).ping()

    assert sage.methods("SY_Session").count("nSetUser") == 3


def test_the_refusal_ends_when_its_time_is_up(server: ServerHandle, clock: Clock) -> None:
    fail_logons(server, 3)
    clock.now += 30

    info = client(server).ping()

    assert info.company_code == "ABC"


def test_each_failure_after_a_refusal_doubles_the_next_one_up_to_the_limit(server: ServerHandle, clock: Clock) -> None:
    fail_logons(server, 3)
    waits = []
    for _ in range(6):
        clock.now += 600
        fail_logons(server, 1)
        with pytest.raises(SageLogonLockedOut) as caught:
            client(server).ping()
        waits.append(caught.value.retry_after)

    assert waits == [60, 120, 240, 480, 600, 600]


def test_a_successful_logon_clears_the_failures(server: ServerHandle) -> None:
    fail_logons(server, 2)
    client(server).ping()

    fail_logons(server, 2)

    assert client(server).ping().company_code == "ABC"


def test_failures_from_one_address_do_not_refuse_another(server: ServerHandle) -> None:
    fail_logons(server, 3)
    other = httpx.Client(transport=httpx.HTTPTransport(local_address="127.0.0.2"), timeout=10)

    try:
        response = other.post(
            f"{server.url}/agent",
            content=envelope(f"<a:Ping>{logon()}</a:Ping>").encode(),
            headers={"Content-Type": "text/xml"},
        )
    finally:
        other.close()

    assert response.status_code == 200, response.text


def test_a_burst_of_300_wrong_passwords_is_cut_short_with_defaults(
    company: SageCompany, credentials, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO)
    handle = serve_in_thread(agent_app(SimulatedBackend(company)))
    bad = envelope(f"<a:Ping>{logon(WRONG, credentials.username, credentials.company_code)}</a:Ping>")
    try:
        answers = [fault(post(handle, bad))["ErrorCode"] for _ in range(300)]
    finally:
        handle.stop()

    assert answers[:5] == ["CI_LogonFailure"] * 5 and set(answers[5:]) == {"CI_LogonLockedOut"}
    assert len([r for r in caplog.records if "failed agent logon" in r.getMessage().lower()]) == 5
    assert any("refusing agent logons from 127.0.0.1" in r.getMessage().lower() for r in caplog.records)
    assert WRONG not in caplog.text


def test_the_policy_refuses_nonsense_thresholds() -> None:
    with pytest.raises(ValueError, match="max_failures"):
        LogonPolicy(max_failures=0)
