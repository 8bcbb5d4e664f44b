"""No secret is ever written in plaintext: files under the home folder, logs, command output or the reprs of
the Dagster resources."""

from __future__ import annotations

import logging
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner

from ml_connector_dagster.cli import main
from ml_connector_dagster.defs.gocardless import GoCardlessResource
from ml_connector_dagster.defs.resources import ConnectorSettings, environment_fields
from ml_connector_dagster.defs.sage100 import SageAgentResource, SageEBusinessResource
from ml_connector_dagster.settings import load_settings
from ml_connector_dagster.store import Store

KNOWN = {
    "sage_password": "S4ge-Pa55word-KNOWN",
    "gocardless_access_token": "live_T0ken-KNOWN",
    "gocardless_webhook_secrets": "Whk-Secret-KNOWN",
}


def files_containing(root: Path, needle: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle.encode() in p.read_bytes()]


def test_known_secrets_appear_nowhere_after_the_cli_and_store_are_used(
    home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capfd
) -> None:
    caplog.set_level(logging.DEBUG)
    runner = CliRunner()
    outputs = [
        runner.invoke(main, ["secrets", "set", name], input=value + "\n").output for name, value in KNOWN.items()
    ]
    monkeypatch.setenv("ML_CONNECTOR_SAGE_COMPANY_CODE", "ABC")

    settings = load_settings()
    store = Store(settings.database_url)
    store.audit.append("settings.loaded", None, {"settings": settings.masked(), "repr": repr(settings)})
    store.inbox.add([{"id": "EV1", "resource_type": "payments", "action": "confirmed", "links": {}}])
    outputs += [
        runner.invoke(main, args).output for args in (["config", "check"], ["secrets", "list"], ["inbox", "list"])
    ]
    logging.getLogger("ml_connector_dagster").debug("settings %r", settings)

    captured = capfd.readouterr()
    written = "\n".join(outputs) + captured.out + captured.err + caplog.text
    assert settings.sage_password.reveal() == KNOWN["sage_password"]  # they were really in play
    for value in KNOWN.values():
        assert value not in written
        assert files_containing(home, value) == []


def test_resources_never_show_a_secret_in_repr_str_or_logs(
    home: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("ML_CONNECTOR_SAGE_PASSWORD", KNOWN["sage_password"])
    monkeypatch.setenv("ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN", KNOWN["gocardless_access_token"])
    monkeypatch.setenv("ML_CONNECTOR_DATABASE_URL", "postgresql://connector:Db-Pa55-KNOWN@db.example/connector")
    settings = ConnectorSettings.from_environment()
    configured = {
        "gocardless": GoCardlessResource(settings=settings, **environment_fields(GoCardlessResource)),
        "sage_agent": SageAgentResource(settings=settings, **environment_fields(SageAgentResource)),
        "sage_ebusiness": SageEBusinessResource(settings=settings, **environment_fields(SageEBusinessResource)),
    }

    with dg.build_resources(configured) as resources:  # EnvVar fields resolved to the values, as in a run
        opened = [resources.gocardless, resources.sage_agent, resources.sage_ebusiness]
        shown = [repr(r) for r in opened] + [str(r) for r in opened]
        logging.getLogger("ml_connector_dagster").debug("resources %r %s", opened, opened)

    assert resources.gocardless.gocardless_access_token == KNOWN["gocardless_access_token"]  # really in play
    assert resources.sage_agent.settings.database_url.endswith("@db.example/connector")
    written = "\n".join(shown) + caplog.text
    for value in (KNOWN["sage_password"], KNOWN["gocardless_access_token"], "Db-Pa55-KNOWN"):
        assert value not in written
