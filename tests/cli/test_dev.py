"""`ml-connector dev`: the stand-ins, the receiver and `dg dev` together; `dev step`; a clean Ctrl-C."""

from __future__ import annotations

import json
import re
import socket
import stat
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlparse

import pytest
import requests
from click.testing import CliRunner, Result

from ml_connector_dagster.cli import main
from ml_connector_dagster.cli.dev_cmd import ENV_FILE, read_env_file, write_env_file
from ml_connector_dagster.cli.dev_dagster import child_environment
from ml_connector_dagster.httpserve import free_port
from ml_connector_dagster.sandbox.gocardless_api import GoCardlessStandIn, start_gocardless_stand_in
from ml_connector_dagster.sandbox.scenario import bundled
from ml_connector_dagster.sandbox.stack import Stack

from support.dev_process import DevProcess, alive, children_of, port_in_use

STOP_TIMEOUT = 60.0


def run(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


# --- dev.env ------------------------------------------------------------------------------------------------


def test_the_env_file_loads_in_a_shell_with_values_kept_exactly(tmp_path: Path) -> None:
    env = {"ML_CONNECTOR_A": "plain", "ML_CONNECTOR_B": "with space and 'quotes' $NOT_EXPANDED"}
    write_env_file(tmp_path / ENV_FILE, env)

    shell = subprocess.run(
        ["bash", "-c", f"set -a; . {tmp_path / ENV_FILE}; printf '%s' \"$ML_CONNECTOR_B\""],
        capture_output=True,
        text=True,
        check=True,
    )

    assert shell.stdout == env["ML_CONNECTOR_B"]
    assert read_env_file(tmp_path / ENV_FILE) == env


def test_the_env_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    write_env_file(tmp_path / ENV_FILE, {"ML_CONNECTOR_SAGE_PASSWORD": "sandbox"})

    assert stat.S_IMODE((tmp_path / ENV_FILE).stat().st_mode) == 0o600


def test_the_callers_own_connector_settings_never_reach_the_sandbox(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_DATABASE_URL", "postgresql://prod-db/connector")
    monkeypatch.setenv("ML_CONNECTOR_CONFIG", "/etc/ml-connector/production.toml")

    env = child_environment({"ML_CONNECTOR_HOME": str(tmp_path)}, tmp_path / "dagster")

    assert "ML_CONNECTOR_DATABASE_URL" not in env and "ML_CONNECTOR_CONFIG" not in env
    assert env["ML_CONNECTOR_HOME"] == str(tmp_path)
    assert env["DAGSTER_HOME"] == str(tmp_path / "dagster")


# --- dev step / status ----------------------------------------------------------------------------------------


@pytest.fixture
def stand_in() -> Iterator[GoCardlessStandIn]:
    running = start_gocardless_stand_in(bundled())
    try:
        yield running
    finally:
        running.stop()


def test_step_plays_the_next_step_and_says_what_happened(stand_in: GoCardlessStandIn) -> None:
    result = run("dev", "step", "--url", stand_in.url)

    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Step 1/{stand_in.world.total_steps}: ")
    assert "payments.created" in result.output
    assert stand_in.world.step_index == 1


def test_step_says_what_the_steps_changes_in_sage_did(make_stack: Callable[..., Stack]) -> None:
    stack = make_stack()  # the bundled busy_month: people key a receipt and add a customer at step 2
    stack.gocardless.play_step()

    result = run("dev", "step", "--url", stack.gocardless.url)

    assert result.exit_code == 0, result.output
    assert "  Sage: key_receipt 01-BRESLIN 0100041 IN 300.00 check 5521: applied (entered unposted in deposit" in (
        result.output
    )
    assert "  Sage: add_customer 01-NEWCO: applied (customer 01-NEWCO added)" in result.output


def test_step_finds_the_stand_in_through_dev_env(stand_in: GoCardlessStandIn, tmp_path: Path) -> None:
    write_env_file(tmp_path / ENV_FILE, {"ML_CONNECTOR_GOCARDLESS_API_URL": stand_in.url})

    result = run("dev", "step", "--home", str(tmp_path))
    status = run("dev", "--home", str(tmp_path), "status")

    assert result.exit_code == 0, result.output
    assert status.output.startswith(f"Step 1/{stand_in.world.total_steps}")


def test_step_after_the_last_step_says_the_scenario_is_finished(stand_in: GoCardlessStandIn) -> None:
    for _ in range(stand_in.world.total_steps):
        stand_in.play_step()

    result = run("dev", "step", "--url", stand_in.url)

    assert result.exit_code == 0
    assert "finished" in result.output


def test_step_without_a_dev_env_says_to_start_dev_first(tmp_path: Path) -> None:
    result = run("dev", "step", "--home", str(tmp_path))

    assert result.exit_code == 1
    assert "dev.env does not exist" in result.output and "ml-connector dev" in result.output
    assert "Traceback" not in result.output


def test_step_when_nothing_answers_asks_whether_dev_is_running(tmp_path: Path) -> None:
    write_env_file(tmp_path / ENV_FILE, {"ML_CONNECTOR_GOCARDLESS_API_URL": f"http://127.0.0.1:{free_port()}"})

    result = run("dev", "step", "--home", str(tmp_path))

    assert result.exit_code == 1
    assert "is `ml-connector dev` running?" in result.output


def test_dev_refuses_a_ui_port_already_in_use(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        result = run("dev", "--home", str(tmp_path), "--port", str(port))

    assert result.exit_code == 1
    assert f"port {port}" in result.output and "--port" in result.output


def test_dev_with_a_missing_scenario_folder_says_so_without_starting_anything(tmp_path: Path) -> None:
    result = run(
        "dev",
        "--home",
        str(tmp_path / "home"),
        "--port",
        str(free_port()),
        "--scenario",
        str(tmp_path / "no-such-scenario"),
    )

    assert result.exit_code == 1
    assert "no-such-scenario: not a folder" in result.output
    assert not (tmp_path / "home" / ENV_FILE).exists()


# --- the real thing (the session's `ml-connector dev`, tests/conftest.py) -------------------------------------------


def stand_in_ports(dev: DevProcess) -> set[int]:
    """Ports of the stand-ins and the receiver, from dev.env and the banner."""
    env = dev.env()
    urls = [
        env["ML_CONNECTOR_GOCARDLESS_API_URL"],
        env["ML_CONNECTOR_SAGE_AGENT_WSDL"],
        env["ML_CONNECTOR_SAGE_EBUSINESS_WSDL"],
        *re.findall(r"Webhook receiver:\s+(\S+)", dev.output()),
    ]
    return {urlparse(u).port for u in urls}


def scenario_status(dev: DevProcess) -> dict:
    """Where the running scenario is (the session's tests share it: read it, never assume it)."""
    return requests.get(dev.env()["ML_CONNECTOR_GOCARDLESS_API_URL"] + "/_sandbox/status", timeout=5).json()


@pytest.mark.slow
def test_dev_serves_the_ui_and_the_stand_ins_and_writes_dev_env(dev_stack: DevProcess) -> None:
    dev = dev_stack
    env = dev.env()

    assert requests.get(dev.url + "/server_info", timeout=5).ok
    assert env["DAGSTER_HOME"] == str((dev.home / "dagster").resolve())
    assert (dev.home / "dagster" / "dagster.yaml").is_file()
    assert f"({scenario_status(dev)['total_steps']} steps" in dev.output()  # the stand-in plays dev's scenario
    assert requests.get(env["ML_CONNECTOR_SAGE_AGENT_WSDL"], timeout=5).ok
    for shown in (dev.url, "ml-connector dev step", "Ctrl-C"):
        assert shown in dev.output()


@pytest.mark.slow
def test_dev_loads_the_code_location_with_its_sensors_running(dev_stack: DevProcess) -> None:
    data = dev_stack.graphql(
        '{ sensorsOrError(repositorySelector: {repositoryName: "__repository__", '
        'repositoryLocationName: "ml_connector_dagster"}) { ... on Sensors { results '
        "{ name sensorState { status } } } } }"
    )

    states = {s["name"]: s["sensorState"]["status"] for s in data["sensorsOrError"]["results"]}
    assert states["gocardless_inbox_sensor"] == "RUNNING"
    for name in ("sage100_poll", "reconciliation_automation", "post_cash_receipts_retry", "gocardless_events_sweep"):
        assert states[name] == "RUNNING", name


@pytest.mark.slow
def test_dev_step_advances_the_running_scenario(dev_stack: DevProcess) -> None:
    before = scenario_status(dev_stack)["step"]

    result = run("dev", "step", "--home", str(dev_stack.home))

    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Step {before + 1}/")
    assert scenario_status(dev_stack)["step"] == before + 1
    assert "webhooks delivered" in result.output


@pytest.mark.slow
def test_the_resources_page_names_the_variables_that_configure_each_resource(dev_stack: DevProcess) -> None:
    data = dev_stack.graphql(
        '{ allTopLevelResourceDetailsOrError(repositorySelector: {repositoryName: "__repository__", '
        'repositoryLocationName: "ml_connector_dagster"}) { ... on ResourceDetailsList { results '
        "{ name configuredValues { key value type } } } } }"
    )

    shown = {
        (r["name"], v["key"]): (v["type"], v["value"])
        for r in data["allTopLevelResourceDetailsOrError"]["results"]
        for v in r["configuredValues"]
    }
    assert shown[("sage_agent", "sage_agent_wsdl")] == ("ENV_VAR", "ML_CONNECTOR_SAGE_AGENT_WSDL")
    assert shown[("sage_agent", "sage_password")] == ("ENV_VAR", "ML_CONNECTOR_SAGE_PASSWORD")
    assert shown[("gocardless", "gocardless_access_token")] == ("ENV_VAR", "ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN")
    assert shown[("connector_settings", "home")] == ("ENV_VAR", "ML_CONNECTOR_HOME")
    secrets = [v for k, v in dev_stack.env().items() if k.endswith(("PASSWORD", "TOKEN", "SECRETS", "SECRET_KEY"))]
    assert secrets and [secret for secret in secrets if secret in json.dumps(data)] == []


@pytest.mark.slow
def test_dev_runs_dg_dev_and_dagster_does_not_say_it_is_superseded(dev_stack: DevProcess) -> None:
    assert dev_stack.process is not None
    commands = [_command_line(pid) for pid in children_of(dev_stack.process.pid)]

    assert any(c[1:3] == ["dev", "-w"] and Path(c[0]).name == "dg" for c in commands if len(c) > 2), commands
    assert "dg dev' instead" not in dev_stack.output()
    assert "superseded" not in dev_stack.output().lower()


def _command_line(pid: int) -> list[str]:
    """The process's argv (the interpreter left out for a script run through python)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")[:-1]
    except OSError:
        return []
    return argv[1:] if argv and Path(argv[0]).name.startswith("python") else argv


@pytest.mark.slow
def test_dev_keeps_dagster_storage_to_the_user(dev_stack: DevProcess) -> None:
    storage = dev_stack.home / "dagster"

    open_to_others = [str(p) for p in storage.rglob("*") if p.stat().st_mode & 0o077]

    assert any(storage.rglob("*.db")), "dagster dev has written its run storage"
    assert stat.S_IMODE(storage.stat().st_mode) == 0o700
    assert open_to_others == []


@pytest.mark.slow
@pytest.mark.stops_dev_stack
def test_ctrl_c_stops_dagster_and_the_stand_ins_and_frees_every_port(dev_stack: DevProcess) -> None:
    dev = dev_stack
    ports = stand_in_ports(dev) | {dev.port}
    started = dev.remember_processes()
    assert len(started) > 3, "expected dagster dev, its webserver, daemon and code server"

    dev.interrupt()

    assert dev.process is not None
    assert dev.process.wait(STOP_TIMEOUT) == 0, dev.tail()
    assert "Stopped." in dev.output()
    assert [pid for pid in started if alive(pid)] == []
    assert [port for port in ports if port_in_use(port)] == []
