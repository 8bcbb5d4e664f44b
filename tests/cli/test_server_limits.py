"""`ml-connector receiver` and `ml-connector agent` apply the ML_CONNECTOR_HTTP_* limits to their servers.

Real processes on loopback with the timeouts set small; each wait for the server to act is bounded generously.
"""

from __future__ import annotations

import os
import queue
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ml_connector_dagster.cli import main
from ml_connector_dagster.httpserve import free_port

pytestmark = pytest.mark.slow  # real processes

BOUND = 30.0  # seconds a test waits for a process to start or for the server to act
READY = "Uvicorn running on"


class Served:
    """An `ml-connector` server command in a child process, started once uvicorn says it is listening."""

    def __init__(self, args: list[str], env: dict[str, str]) -> None:
        self.port = free_port()
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from ml_connector_dagster.cli import main; main()",
                *args,
                "--port",
                str(self.port),
            ],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        self.lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        self.output = self._wait_for(READY)

    def _pump(self) -> None:
        for line in self.proc.stdout:  # type: ignore[union-attr]
            self.lines.put(line)
        self.lines.put(None)

    def _wait_for(self, text: str) -> str:
        seen = ""
        while (line := self.lines.get(timeout=BOUND)) is not None:
            seen += line
            if text in line:
                return seen
        raise AssertionError(f"the command exited before {text!r}:\n{seen}")

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=BOUND)

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(timeout=BOUND)


def read_until_closed(sock: socket.socket) -> bytes:
    """What the server sends until it closes the connection; socket.timeout if it has not within BOUND."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    return received


@pytest.fixture
def env(home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS": "limits-secret",
        "ML_CONNECTOR_HTTP_HEADER_TIMEOUT_SECONDS": "0.5",
        "ML_CONNECTOR_HTTP_BODY_TIMEOUT_SECONDS": "0.5",
    }


@pytest.fixture
def receiver(env: dict[str, str]) -> Iterator[Served]:
    served = Served(["receiver"], env)
    yield served
    served.stop()


@pytest.fixture
def agent(env: dict[str, str]) -> Iterator[Served]:
    served = Served(["agent", "--backend", "simulated"], env)
    yield served
    served.stop()


def test_the_receiver_command_closes_a_connection_whose_head_is_late(receiver: Served) -> None:
    with receiver.connect() as sock:
        sock.sendall(b"P")

        assert read_until_closed(sock) == b""


def test_the_receiver_command_answers_408_to_a_body_that_is_late(receiver: Served) -> None:
    with receiver.connect() as sock:
        sock.sendall(b"POST /webhooks/gocardless HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")

        assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")


def test_the_agent_command_closes_a_connection_whose_head_is_late(agent: Served) -> None:
    with agent.connect() as sock:
        sock.sendall(b"P")

        assert read_until_closed(sock) == b""


def test_the_agent_command_answers_408_to_a_body_that_is_late(agent: Served) -> None:
    with agent.connect() as sock:
        sock.sendall(b"POST /agent HTTP/1.1\r\nHost: x\r\nContent-Type: text/xml\r\nContent-Length: 100\r\n\r\n<")

        assert read_until_closed(sock).startswith(b"HTTP/1.1 408 ")


def test_the_receiver_command_answers_503_over_its_connection_cap(env: dict[str, str]) -> None:
    served = Served(
        ["receiver"],
        {**env, "ML_CONNECTOR_HTTP_HEADER_TIMEOUT_SECONDS": "60", "ML_CONNECTOR_HTTP_MAX_CONNECTIONS": "1"},
    )
    try:
        with served.connect() as held:
            held.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert held.recv(65536).startswith(b"HTTP/1.1 200 ")  # served: it is the one connection allowed
            held.sendall(b"G")  # and now holds it
            with served.connect() as over:
                over.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")

                assert read_until_closed(over).startswith(b"HTTP/1.1 503 ")
    finally:
        served.stop()


@pytest.mark.parametrize(
    "variable, value",
    [
        ("ML_CONNECTOR_HTTP_HEADER_TIMEOUT_SECONDS", "0"),
        ("ML_CONNECTOR_HTTP_BODY_TIMEOUT_SECONDS", "soon"),
        ("ML_CONNECTOR_HTTP_MAX_CONNECTIONS", "-5"),
    ],
)
def test_a_bad_server_limit_is_named_by_config_check(
    variable: str, value: str, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(variable, value)

    result = CliRunner().invoke(main, ["config", "check"])

    assert result.exit_code == 1
    assert f"{variable}: {value!r} is not a" in result.output


def test_config_check_shows_the_server_limits_defaults(home: Path) -> None:
    result = CliRunner().invoke(main, ["config", "check"])

    assert "ML_CONNECTOR_HTTP_HEADER_TIMEOUT_SECONDS = 3" in result.output
    assert "ML_CONNECTOR_HTTP_BODY_TIMEOUT_SECONDS = 5" in result.output
    assert "ML_CONNECTOR_HTTP_MAX_CONNECTIONS = 128" in result.output
