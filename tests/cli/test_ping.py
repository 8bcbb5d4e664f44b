"""`ml-connector ping` against the live stand-ins: one line per real system, what to fix, no secret shown."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ml_connector_dagster.cli import main
from ml_connector_dagster.cli.ping_cmd import scrub
from ml_connector_dagster.httpserve import free_port
from ml_connector_dagster.sandbox.ebusiness_controls import EBusinessControls
from ml_connector_dagster.sandbox.scenario import bundled
from ml_connector_dagster.sandbox.stack import Stack, start_stack
from ml_connector_dagster.secrets import Secret, SecretStore, generate_key


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Sage eBusiness + agent, GoCardless and the receiver, shared by every test here (ping only reads)."""
    with start_stack(bundled(), tmp_path_factory.mktemp("stack")) as running:
        yield running


@pytest.fixture
def configured(stack: Stack, home: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """The environment an operator would have: every setting pointing at the stand-ins, a fresh home."""
    env = {**stack.env, "ML_CONNECTOR_HOME": str(home)}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return env


@pytest.fixture
def ebusiness_controls(stack: Stack) -> Iterator[EBusinessControls]:
    """The shared eBusiness stand-in's security and failures, as the test leaves them, put back afterwards."""
    controls = stack.sage.ebusiness_controls
    yield controls
    controls.reset_security()
    controls.clear_failures()


def ping(*args: str) -> Result:
    return CliRunner().invoke(main, ["ping", *args], catch_exceptions=False)


def line(result: Result, title: str) -> str:
    """The output line of one check, found by its title."""
    found = [text for text in result.output.splitlines() if title in text]
    assert len(found) == 1, result.output
    return found[0]


def secrets_of(env: dict[str, str]) -> list[str]:
    names = (
        "ML_CONNECTOR_SAGE_PASSWORD",
        "ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN",
        "ML_CONNECTOR_SECRET_KEY",
        "ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS",
    )
    return [env[n] for n in names if env.get(n)]


def test_every_system_answers_so_ping_exits_zero(configured: dict[str, str]) -> None:
    result = ping()

    assert result.exit_code == 0, result.output
    assert line(result, "Sage eBusiness Web Services").startswith("ok")
    assert line(result, "Sage logon").startswith("ok")
    assert "backend simulated" in line(result, "Sage agent")
    assert line(result, "GoCardless API").startswith("ok")
    assert line(result, "Secrets key").startswith("ok")


def test_a_single_webhook_secret_is_a_warning_about_rotation_not_a_failure(configured: dict[str, str]) -> None:
    result = ping()

    assert result.exit_code == 0
    assert line(result, "GoCardless webhook secret").startswith("warn")
    assert "rotate" in line(result, "GoCardless webhook secret")


def test_two_webhook_secrets_are_ok(configured: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS", "old-secret-value,new-secret-value")

    result = ping()

    assert line(result, "GoCardless webhook secret").startswith("ok")
    assert "2 secrets" in line(result, "GoCardless webhook secret")


def test_a_wrong_sage_password_fails_the_logon_and_the_agent_naming_the_settings(
    configured: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_SAGE_PASSWORD", "not-the-password")

    result = ping()

    assert result.exit_code == 1
    assert line(result, "Sage eBusiness Web Services").startswith("ok")  # needs no logon
    for title in ("Sage logon", "Sage agent"):
        assert line(result, title).startswith("FAIL")
        assert "ML_CONNECTOR_SAGE_PASSWORD" in line(result, title)
    assert "not-the-password" not in result.output


def test_a_wrong_company_code_fails_naming_the_company_setting(
    configured: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_SAGE_COMPANY_CODE", "ZZZ")

    result = ping()

    assert result.exit_code == 1
    assert line(result, "Sage logon").startswith("FAIL")
    assert "ML_CONNECTOR_SAGE_COMPANY_CODE" in line(result, "Sage logon")
    assert "ZZZ" in line(result, "Sage agent")


@pytest.mark.parametrize("level", ["system", "company", "user"])
def test_web_services_off_in_sage_fails_the_logon_saying_to_check_all_three_places(
    configured: dict[str, str], ebusiness_controls: EBusinessControls, level: str
) -> None:
    ebusiness_controls.set_web_services(**{level: False})

    result = ping()

    assert result.exit_code == 1
    logon = line(result, "Sage logon")
    assert logon.startswith("FAIL") and "ML_CONNECTOR_SAGE_PASSWORD" in logon
    assert "web services are enabled in Sage 100 for the system, for company ABC and for user 'demo'" in logon
    assert line(result, "Sage agent").startswith("ok")  # the agent does not go through web services


def test_a_role_without_access_fails_the_logon_check_naming_the_operation_and_the_role(
    configured: dict[str, str], ebusiness_controls: EBusinessControls
) -> None:
    ebusiness_controls.set_no_access(["GetCustomer"])

    result = ping()

    assert result.exit_code == 1
    logon = line(result, "Sage logon")
    assert logon.startswith("FAIL") and "logon accepted" in logon
    assert "give the user's role access to GetCustomer" in logon


def test_sages_generic_fault_fails_the_logon_check_saying_the_cause_is_on_the_sage_server(
    configured: dict[str, str], ebusiness_controls: EBusinessControls
) -> None:
    ebusiness_controls.fail_next("GetCustomer")

    result = ping()

    assert result.exit_code == 1
    logon = line(result, "Sage logon")
    assert logon.startswith("FAIL") and '"An exception occurred."' in logon and "logs on the Sage server" in logon
    assert "running" not in logon


def test_a_wrong_gocardless_token_fails_saying_how_to_get_a_new_one(
    configured: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN", "wrong_token_abcdef")

    result = ping()

    assert result.exit_code == 1
    assert line(result, "GoCardless API").startswith("FAIL")
    assert "refused the access token" in line(result, "GoCardless API")
    assert "ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN" in line(result, "GoCardless API")
    assert "wrong_token_abcdef" not in result.output


def test_an_unreachable_agent_fails_naming_its_url_setting(
    configured: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/agent?wsdl"
    monkeypatch.setenv("ML_CONNECTOR_SAGE_AGENT_WSDL", nobody)

    result = ping()

    assert result.exit_code == 1
    assert line(result, "Sage agent").startswith("FAIL")
    assert "cannot connect" in line(result, "Sage agent")
    assert "ML_CONNECTOR_SAGE_AGENT_WSDL" in line(result, "Sage agent")
    assert line(result, "Sage logon").startswith("ok")  # the other systems are still checked


def test_an_unreachable_ebusiness_service_skips_the_logon_check(
    configured: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_SAGE_EBUSINESS_WSDL", f"http://127.0.0.1:{free_port()}/ebusiness?wsdl")

    result = ping()

    assert result.exit_code == 1
    assert line(result, "Sage eBusiness Web Services").startswith("FAIL")
    assert line(result, "Sage logon").startswith("skip")


def test_a_missing_webhook_secret_fails_saying_where_to_find_it(
    configured: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS")

    result = ping()

    assert result.exit_code == 1
    assert line(result, "GoCardless webhook secret").startswith("FAIL")
    assert "ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS is not set" in line(result, "GoCardless webhook secret")


def test_a_webhook_secret_with_whitespace_inside_fails(
    configured: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS", "half of a secret")

    result = ping()

    assert result.exit_code == 1
    assert "whitespace" in line(result, "GoCardless webhook secret")
    assert "half of a secret" not in result.output


def test_a_secrets_key_that_cannot_decrypt_a_stored_secret_fails(
    configured: dict[str, str], home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    SecretStore(home, Secret(generate_key())).set("gocardless_access_token", "stored-with-another-key")

    result = ping()

    assert result.exit_code == 1
    assert line(result, "Secrets key").startswith("FAIL")
    assert "cannot decrypt stored secret 'gocardless_access_token'" in line(result, "Secrets key")


def test_a_damaged_stored_secret_fails_naming_it(configured: dict[str, str], home: Path) -> None:
    (home / "secrets.json").write_text('{"sage_password": 5}')

    result = ping()

    assert result.exit_code == 1
    assert "stored secret 'sage_password'" in line(result, "Secrets key")
    assert "ml-connector secrets set sage_password" in line(result, "Secrets key")


def test_a_missing_secrets_key_fails_saying_how_to_make_one(
    configured: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("ML_CONNECTOR_SECRET_KEY")

    result = ping()

    assert result.exit_code == 1
    assert "ml-connector secrets generate-key" in line(result, "Secrets key")


def test_settings_that_do_not_load_are_reported_line_by_line_without_a_traceback(
    configured: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_SAGE_COMPANY_CODE", "TOOLONG")

    result = ping()

    assert result.exit_code == 1
    assert line(result, "ML_CONNECTOR_SAGE_COMPANY_CODE").startswith("FAIL")
    assert line(result, "GoCardless API").startswith("skip")
    assert "Traceback" not in result.output


def test_json_output_has_one_entry_per_check_and_an_overall_verdict(
    configured: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN", "wrong_token_abcdef")

    result = ping("--json")

    report = json.loads(result.output)
    assert result.exit_code == 1
    assert report["ok"] is False
    assert [c["name"] for c in report["checks"]] == [
        "sage_ebusiness",
        "sage_logon",
        "sage_agent",
        "gocardless",
        "webhook_secrets",
        "secret_key",
    ]
    assert {c["name"]: c["status"] for c in report["checks"]}["gocardless"] == "FAIL"


@pytest.mark.parametrize(
    "broken",
    [
        {},
        {"ML_CONNECTOR_SAGE_PASSWORD": "wrong-password-1"},
        {"ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN": "wrong-token-1"},
        {"ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS": "spaced secret 1"},
    ],
    ids=["all-ok", "wrong-password", "wrong-token", "spaced-webhook-secret"],
)
@pytest.mark.parametrize("as_json", [False, True], ids=["lines", "json"])
def test_no_secret_appears_in_the_output(
    configured: dict[str, str], monkeypatch: pytest.MonkeyPatch, broken: dict[str, str], as_json: bool
) -> None:
    for name, value in broken.items():
        monkeypatch.setenv(name, value)

    result = ping(*(["--json"] if as_json else []))

    for secret in secrets_of({**configured, **broken}):
        assert secret not in result.output


def test_the_database_password_appears_in_no_output(
    configured: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_DATABASE_URL", "postgresql+psycopg://ops:S3CRETPW@db.example/ops")

    result = ping()

    assert "S3CRETPW" not in result.output


def test_a_failing_connection_to_a_url_with_credentials_does_not_show_them(
    configured: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_SAGE_AGENT_WSDL", f"http://web:S3CRETPW@127.0.0.1:{free_port()}/agent?wsdl")

    result = ping()

    assert line(result, "Sage agent").startswith("FAIL")
    assert "S3CRETPW" not in result.output


def test_settings_that_do_not_load_are_reported_without_a_password_from_a_url(
    configured: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_SAGE_AGENT_WSDL", "ftp://sage:S3CRETPW@sage.example/agent?wsdl")

    result = ping()

    assert result.exit_code == 1
    assert line(result, "ML_CONNECTOR_SAGE_AGENT_WSDL").startswith("FAIL")
    assert "S3CRETPW" not in result.output


def test_a_secret_echoed_by_a_remote_system_is_masked() -> None:
    assert (
        scrub("Sage said: bad password 'hunter22' for user", ["hunter22"])
        == "Sage said: bad password '********' for user"
    )
