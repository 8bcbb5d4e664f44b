"""`ml-connector agent`: starts a real process that answers SOAP; refuses unsafe or incomplete options."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from ml_connector_dagster.cli import main
from ml_connector_dagster.httpserve import free_port
from ml_connector_dagster.sage100 import AgentClient, RetryPolicy, SageLogonError, SageLogonLockedOut
from ml_connector_dagster.sage100.clients import clear_wsdl_cache
from ml_connector_dagster.sandbox.scenario import bundled

READY = "Uvicorn running on"


def start_agent(*args: str) -> tuple[subprocess.Popen, list[str]]:
    """Run the command in a child process and return once uvicorn says it is listening."""
    proc = subprocess.Popen(
        [sys.executable, "-c", "from ml_connector_dagster.cli import main; main()", "agent", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=dict(os.environ),
    )
    lines: queue.Queue[str | None] = queue.Queue()
    seen: list[str] = []

    def pump() -> None:
        for line in proc.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    while True:
        line = lines.get(timeout=60)
        if line is None:
            raise AssertionError("agent exited before listening:\n" + "".join(seen))
        seen.append(line)
        if READY in line:
            return proc, seen


@pytest.fixture
def stop_afterwards() -> Iterator[list[subprocess.Popen]]:
    procs: list[subprocess.Popen] = []
    yield procs
    clear_wsdl_cache()
    for proc in procs:
        proc.terminate()
        proc.wait(timeout=20)


@pytest.mark.slow
def test_the_agent_command_serves_a_scenario_company_loaded_under_the_home_folder(
    home: Path, stop_afterwards: list
) -> None:
    port = free_port()
    proc, output = start_agent("--backend", "simulated", "--port", str(port), "--scenario", str(bundled("small")))
    stop_afterwards.append(proc)

    info = AgentClient(
        f"http://127.0.0.1:{port}/agent?wsdl",
        username="demo",
        password="demo-password",
        company_code="ABC",
        retry=RetryPolicy(attempts=1),
    ).ping()

    assert (info.backend, info.company_name) == ("simulated", "ABC Services Ltd")
    assert (home / "sage" / "ABC" / "sage_company.sqlite").exists()
    assert any(f"http://127.0.0.1:{port}/agent?wsdl" in line for line in output)


@pytest.mark.slow
def test_the_agent_command_serves_https_with_a_certificate(
    home: Path, tls_files: tuple[Path, Path], stop_afterwards: list
) -> None:
    cert, key = tls_files
    port = free_port()
    proc, _ = start_agent("--backend", "simulated", "--port", str(port), "--tls-cert", str(cert), "--tls-key", str(key))
    stop_afterwards.append(proc)

    info = AgentClient(
        f"https://127.0.0.1:{port}/agent?wsdl",
        username="demo",
        password="demo-password",
        company_code="ABC",
        ca_bundle=str(cert),
        retry=RetryPolicy(attempts=1),
    ).ping()

    assert info.company_code == "ABC"


@pytest.mark.slow
def test_the_failed_logon_thresholds_are_options(home: Path, stop_afterwards: list) -> None:
    port = free_port()
    proc, _ = start_agent(
        "--backend", "simulated", "--port", str(port), "--max-failed-logons", "2", "--logon-lockout", "45"
    )
    stop_afterwards.append(proc)
    wrong = AgentClient(
        f"http://127.0.0.1:{port}/agent?wsdl",
        username="demo",
        password="Wr0ng-Pa55",
        company_code="ABC",
        retry=RetryPolicy(attempts=1),
    )
    for _ in range(2):
        with pytest.raises(SageLogonError):
            wrong.ping()

    with pytest.raises(SageLogonLockedOut, match="try again in 45 seconds"):
        wrong.ping()


@pytest.mark.parametrize(
    "args, words",
    [
        (["--backend", "simulated", "--host", "0.0.0.0"], "refusing plain HTTP on 0.0.0.0"),
        (["--backend", "simulated", "--tls-cert", __file__], "--tls-cert and --tls-key go together"),
        (["--backend", "boi"], "--backend boi needs --mas90-home"),
        (["--backend", "simulated", "--max-failed-logons", "0"], "--max-failed-logons"),
        (
            ["--backend", "boi", "--mas90-home", "C:/Sage", "--scenario", str(bundled("small"))],
            "are for --backend simulated",
        ),
        (["--backend", "simulated", "--boi-names", __file__], "are for --backend boi"),
        (["--backend", "simulated", "--batch-entry"], "are for --backend boi"),
        (["--backend", "simulated", "doctor"], "give the options after 'doctor'"),
        ([], "Missing option '--backend'"),
    ],
)
def test_unsafe_or_incomplete_options_are_refused_with_the_reason(home: Path, args: list[str], words: str) -> None:
    result = CliRunner().invoke(main, ["agent", *args])

    assert result.exit_code != 0 and words in result.output


def test_a_company_folder_without_a_database_says_how_to_create_one(home: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["agent", "--backend", "simulated", "--company-dir", str(tmp_path / "empty")])

    assert result.exit_code != 0 and "add --scenario DIR to create it" in result.output


@pytest.mark.skipif(sys.platform == "win32", reason="pywin32 may be installed on Windows")
def test_the_boi_backend_explains_that_it_needs_windows_and_pywin32(home: Path) -> None:
    result = CliRunner().invoke(main, ["agent", "--backend", "boi", "--mas90-home", "C:/Sage/MAS90/Home"])

    assert result.exit_code != 0 and "needs Windows with pywin32" in result.output


def test_a_boi_names_file_with_an_unknown_name_is_refused_naming_it(home: Path, tmp_path: Path) -> None:
    names = tmp_path / "names.toml"
    names.write_text('receipts_bus = "AR_CashReceipts_bus"\nline_invoice_typ = "InvoiceType$"\n')

    result = CliRunner().invoke(main, ["agent", "--backend", "boi", "--mas90-home", "C:/S", "--boi-names", str(names)])

    assert result.exit_code != 0
    assert "unknown name 'line_invoice_typ' (did you mean 'line_invoice_type'?)" in result.output
