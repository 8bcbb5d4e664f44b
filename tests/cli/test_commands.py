"""The `ml-connector` command: help everywhere, config check, secrets, inbox listing."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from ml_connector_dagster.cli import main
from ml_connector_dagster.httpserve import free_port
from ml_connector_dagster.secrets import Secret, SecretStore
from ml_connector_dagster.store import Store


def run(*args: str, input: str | None = None):
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def all_commands(group: click.Group, prefix: tuple[str, ...] = ()):
    for name, command in group.commands.items():
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from all_commands(command, (*prefix, name))


@pytest.mark.parametrize("path", [(), *sorted(all_commands(main))], ids=lambda p: " ".join(p) or "main")
def test_every_subcommand_has_help(path: tuple[str, ...]) -> None:
    result = run(*path, "--help")

    assert result.exit_code == 0
    assert "Usage:" in result.output


def test_config_check_prints_masked_settings_and_fails_on_missing_ones(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("ML_CONNECTOR_SAGE_PASSWORD", "pw-visible-nowhere")

    result = run("config", "check")

    assert result.exit_code == 1
    assert "ML_CONNECTOR_SAGE_PASSWORD = ******** (1 set)" in result.output
    assert "ML_CONNECTOR_SAGE_AGENT_WSDL: not set" in result.output
    assert "pw-visible-nowhere" not in result.output


DB_URL_WITH_PASSWORD = "postgresql+psycopg://ops:S3CRETPW@db.example:5432/ops"


def test_config_check_masks_the_password_in_the_database_url(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("ML_CONNECTOR_DATABASE_URL", DB_URL_WITH_PASSWORD)

    result = run("config", "check")

    assert "ML_CONNECTOR_DATABASE_URL = postgresql+psycopg://ops:********@db.example:5432/ops" in result.output
    assert "S3CRETPW" not in result.output


def test_config_check_masks_a_password_given_as_a_url_parameter(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("ML_CONNECTOR_DATABASE_URL", "postgresql://db.example/ops?user=ops&password=S3CRETPW")

    result = run("config", "check")

    assert "password=********" in result.output
    assert "S3CRETPW" not in result.output


def test_config_check_masks_the_password_of_a_refused_url(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("ML_CONNECTOR_SAGE_AGENT_WSDL", "ftp://sage:S3CRETPW@sage.example/agent?wsdl")

    result = run("config", "check")

    assert result.exit_code == 1
    assert "ML_CONNECTOR_SAGE_AGENT_WSDL" in result.output
    assert "S3CRETPW" not in result.output


def test_a_failing_store_connection_does_not_show_the_database_password(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("ML_CONNECTOR_DATABASE_URL", f"postgresql+psycopg://ops:S3CRETPW@127.0.0.1:{free_port()}/none")

    result = CliRunner().invoke(main, ["inbox", "list"])

    assert result.exit_code == 1
    assert "cannot open the operational store" in result.output
    assert "S3CRETPW" not in result.output


def test_config_check_names_an_invalid_setting(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("ML_CONNECTOR_SAGE_COMPANY_CODE", "ABCD")

    result = run("config", "check")

    assert result.exit_code == 1
    assert "ML_CONNECTOR_SAGE_COMPANY_CODE" in result.output
    assert "Traceback" not in result.output


def test_config_check_passes_with_everything_set(home: Path, monkeypatch) -> None:
    for name, value in {
        "SAGE_EBUSINESS_WSDL": "https://sage.example/ebusiness?wsdl",
        "SAGE_AGENT_WSDL": "https://sage.example/agent?wsdl",
        "SAGE_USERNAME": "web",
        "SAGE_PASSWORD": "pw",
        "SAGE_COMPANY_CODE": "ABC",
        "SAGE_HOME_CURRENCY": "GBP",
        "SAGE_BANK_CODE": "A",
        "GOCARDLESS_ACCESS_TOKEN": "tok",
        "GOCARDLESS_WEBHOOK_SECRETS": "wh",
    }.items():
        monkeypatch.setenv(f"ML_CONNECTOR_{name}", value)

    result = run("config", "check")

    assert result.exit_code == 0
    assert "Settings are valid." in result.output


def test_secrets_set_reads_stdin_and_list_shows_names_only(home: Path) -> None:
    stored = run("secrets", "set", "gocardless_access_token", input="live_token_from_stdin\n")
    listed = run("secrets", "list")

    assert stored.exit_code == 0
    assert listed.output.split() == ["gocardless_access_token"]
    assert "live_token_from_stdin" not in (home / "secrets.json").read_text()


def test_secrets_set_does_not_accept_the_value_on_the_command_line(home: Path) -> None:
    result = CliRunner().invoke(main, ["secrets", "set", "sage_password", "on-argv"])

    assert result.exit_code != 0


def test_secrets_set_without_a_key_explains_how_to_make_one(home: Path, monkeypatch) -> None:
    monkeypatch.delenv("ML_CONNECTOR_SECRET_KEY")

    result = run("secrets", "set", "sage_password", input="pw\n")

    assert result.exit_code == 1
    assert "ml-connector secrets generate-key" in result.output


def test_config_check_names_a_damaged_stored_secret_without_a_traceback(home: Path) -> None:
    (home / "secrets.json").write_text('{"sage_password": 5}')

    result = run("config", "check")  # an exception (not a message) would be raised here

    assert result.exit_code == 1
    assert "stored secret 'sage_password'" in result.output and "damaged" in result.output
    assert "ml-connector secrets set sage_password" in result.output


def test_generate_key_prints_a_usable_key(home: Path, monkeypatch) -> None:
    key = run("secrets", "generate-key").output.strip()
    monkeypatch.setenv("ML_CONNECTOR_SECRET_KEY", key)

    stored = run("secrets", "set", "sage_password", input="pw\n")

    assert stored.exit_code == 0, stored.output
    assert SecretStore(home, Secret(key)).get("sage_password").reveal() == "pw"


def test_inbox_list_shows_events_as_table_and_json(home: Path, settings) -> None:
    Store(settings.database_url).inbox.add(
        [
            {"id": f"EV{n}", "resource_type": "payments", "action": "confirmed", "links": {"payment": f"PM{n}"}}
            for n in range(3)
        ]
    )

    table = run("inbox", "list")
    limited = json.loads(run("inbox", "list", "--json", "--limit", "2").output)
    everything = json.loads(run("inbox", "list", "--json", "--limit", "0").output)
    processed = json.loads(run("inbox", "list", "--json", "--status", "processed").output)

    assert "EV2" in table.output and "resource_type" in table.output
    assert [r["event_id"] for r in limited] == ["EV2", "EV1"]
    assert len(everything) == 3
    assert processed == []


def test_a_bad_database_url_is_a_message_not_a_traceback(home: Path, monkeypatch) -> None:
    monkeypatch.setenv("ML_CONNECTOR_DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none")

    result = CliRunner().invoke(main, ["inbox", "list"])

    assert result.exit_code == 1
    assert "cannot open the operational store" in result.output


def test_audit_lists_records_for_one_payment_and_verify_reports_intact(home: Path, settings) -> None:
    store = Store(settings.database_url)
    store.audit.append("payment.fetched", "PM1", {"status": "confirmed"})
    store.audit.append("payment.fetched", "PM2", {"status": "confirmed"})

    listed = json.loads(run("audit", "--payment", "PM1", "--json").output)
    verified = run("audit", "verify")

    assert [(r["subject"], r["action"]) for r in listed] == [("PM1", "payment.fetched")]
    assert verified.exit_code == 0 and "2 records" in verified.output


def test_audit_verify_exits_non_zero_on_tampering(home: Path, settings) -> None:
    import sqlite3

    store = Store(settings.database_url)
    store.audit.append("cash_receipt.created", "PM1", {"amount": "10.00"})
    conn = sqlite3.connect(settings.database_url.removeprefix("sqlite:///"))
    conn.executescript("DROP TRIGGER audit_log_no_update; UPDATE audit_log SET actor = 'mallory';")
    conn.close()

    result = CliRunner().invoke(main, ["audit", "verify"])

    assert result.exit_code == 1
    assert "TAMPERED" in result.output


def test_payments_lists_the_ledger_with_status_and_allocations(home: Path, settings) -> None:
    Store(settings.database_url).ledger.upsert(
        "PM1",
        status="posted",
        sage_customer="01-ABF",
        home_amount="120.00",
        allocations=[{"invoice_no": "0100030", "invoice_type": "IN", "amount": "120.00"}],
        receipt={"deposit_no": "00001", "check_no": "PM1", "receipt_id": "R1"},
    )

    data = json.loads(run("payments", "--json").output)
    table = run("payments").output

    assert data[0]["status"] == "posted"
    assert data[0]["allocations"] == [{"invoice": "0100030", "amount": "120.00"}]
    assert "0100030:120.00" in table
