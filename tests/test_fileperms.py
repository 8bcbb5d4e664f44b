"""The home folder and its data are the service user's only: 0700 folders, 0600 files, from the start."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner

from ml_connector_dagster import warehouse
from ml_connector_dagster.agent.ledger import AgentLedger
from ml_connector_dagster.cli import main
from ml_connector_dagster.cli.dev_dagster import prepare_dagster_home
from ml_connector_dagster.secrets import Secret, SecretStore
from ml_connector_dagster.settings import load_settings


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def modes_under(root: Path) -> dict[str, int]:
    """Every folder and file under root (root included), relative name -> mode."""
    found = {".": mode(root)}
    for path in root.rglob("*"):
        found[str(path.relative_to(root))] = mode(path)
    return found


@pytest.fixture
def new_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """ML_CONNECTOR_HOME two levels below a folder that does not exist yet, under a permissive umask."""
    path = home.parent / "fresh" / "home"
    monkeypatch.setenv("ML_CONNECTOR_HOME", str(path))
    previous = os.umask(0o022)
    yield path
    os.umask(previous)


def test_the_first_command_creates_the_home_and_the_store_private(new_home: Path) -> None:
    result = CliRunner().invoke(main, ["inbox", "list"], catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert modes_under(new_home.parent) == {
        ".": 0o700,
        "home": 0o700,
        "home/ops.sqlite": 0o600,
        "home/ops.sqlite-wal": 0o600,
        "home/ops.sqlite-shm": 0o600,
    }


def test_stored_secrets_in_a_new_home_are_private(new_home: Path) -> None:
    result = CliRunner().invoke(main, ["secrets", "set", "sage_password"], input="pw\n", catch_exceptions=False)

    assert result.exit_code == 0, result.output
    assert modes_under(new_home) == {".": 0o700, "secrets.json": 0o600}


def test_the_warehouse_is_private_once_written(new_home: Path) -> None:
    path = load_settings().warehouse_path

    with warehouse.connect(path) as conn:
        conn.execute("CREATE TABLE t (x INTEGER)")
        conn.execute("INSERT INTO t VALUES (1)")

    modes = modes_under(new_home)
    assert (modes.pop("."), modes.pop("warehouse.duckdb")) == (0o700, 0o600)
    assert all(m == 0o600 for m in modes.values()), modes  # its write-ahead log, if DuckDB kept one


def test_the_agent_ledger_is_private(new_home: Path) -> None:
    AgentLedger(new_home / "agent" / "agent_ledger.sqlite").close()  # closed: no lock journal comes or goes

    modes = modes_under(new_home)

    assert modes.pop("agent/agent_ledger.sqlite") == 0o600
    assert {path: mode for path, mode in modes.items() if mode != 0o600} == {".": 0o700, "agent": 0o700}


def test_dagster_storage_of_a_new_dev_home_is_private(tmp_path: Path) -> None:
    dagster_home, _ = prepare_dagster_home(tmp_path / "dev-home")

    assert (mode(tmp_path / "dev-home"), mode(dagster_home)) == (0o700, 0o700)


def test_start_up_closes_an_open_home_and_the_data_an_older_version_left_open(home: Path) -> None:
    SecretStore(home, Secret(os.environ["ML_CONNECTOR_SECRET_KEY"])).set("sage_password", "pw")
    (home / "ops.sqlite").write_bytes(b"")
    (home / "dagster").mkdir()
    for path, old in (
        (home, 0o755),
        (home / "ops.sqlite", 0o644),
        (home / "secrets.json", 0o644),
        (home / "dagster", 0o755),
    ):
        path.chmod(old)

    load_settings()

    assert modes_under(home) == {".": 0o700, "ops.sqlite": 0o600, "secrets.json": 0o600, "dagster": 0o700}


def test_start_up_leaves_a_shared_sticky_folder_open(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = home / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    monkeypatch.setenv("ML_CONNECTOR_HOME", str(shared))

    load_settings()

    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777


def test_config_check_warns_about_data_other_users_can_reach(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shared = home / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    monkeypatch.setenv("ML_CONNECTOR_HOME", str(shared))

    result = CliRunner().invoke(main, ["config", "check"], catch_exceptions=False)

    assert "holds data that other users on this machine can reach" in result.output
    assert f"{shared} (folder, mode 1777)" in result.output
    assert f"chmod -R go-rwx {shared}" in result.output


def test_config_check_is_silent_about_a_private_home(home: Path) -> None:
    result = CliRunner().invoke(main, ["config", "check"], catch_exceptions=False)

    assert "other users" not in result.output
