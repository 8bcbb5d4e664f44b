"""Settings: read from ML_CONNECTOR_* variables (and a TOML file), validated with messages that say how to fix."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from ml_connector_dagster.secrets import Secret, SecretStore, generate_key
from ml_connector_dagster.settings import (
    GoCardlessSettings,
    ReconciliationSettings,
    SageSettings,
    SettingsError,
    load_settings,
)


def base_env(home: Path, **extra: str) -> dict[str, str]:
    return {"ML_CONNECTOR_HOME": str(home), **extra}


def test_defaults_put_the_store_and_warehouse_under_home(tmp_path: Path) -> None:
    settings = load_settings(base_env(tmp_path))

    assert settings.database_url == f"sqlite:///{tmp_path.as_posix()}/ops.sqlite"
    assert settings.warehouse_path == tmp_path / "warehouse.duckdb"
    assert settings.gocardless_api_url == "https://api.gocardless.com"
    assert "payments.confirmed" in settings.gocardless_event_whitelist
    assert "mandates.created" not in settings.gocardless_event_whitelist


@pytest.mark.parametrize("code", ["AB", "ABCD", "A-C", "", "ÄBC"])
def test_a_company_code_that_is_not_three_letters_or_digits_is_refused(tmp_path: Path, code: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(base_env(tmp_path, ML_CONNECTOR_SAGE_COMPANY_CODE=code or " "))

    assert "ML_CONNECTOR_SAGE_COMPANY_CODE" in str(err.value)
    assert "company code" in str(err.value)


def test_a_valid_company_code_is_accepted_and_upper_cased(tmp_path: Path) -> None:
    assert load_settings(base_env(tmp_path, ML_CONNECTOR_SAGE_COMPANY_CODE="abc")).sage_company_code == "ABC"


@pytest.mark.parametrize(
    "variable, value",
    [
        ("ML_CONNECTOR_SAGE_AGENT_WSDL", "not a url"),
        ("ML_CONNECTOR_SAGE_EBUSINESS_WSDL", "ftp://sage/ebusiness?wsdl"),
        ("ML_CONNECTOR_GOCARDLESS_API_URL", "api.gocardless.com"),
        ("ML_CONNECTOR_DATABASE_URL", "mysql://db/ops"),
    ],
)
def test_a_malformed_url_is_refused_naming_the_variable(tmp_path: Path, variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(base_env(tmp_path, **{variable: value}))

    assert variable in str(err.value)


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(
            base_env(
                tmp_path,
                ML_CONNECTOR_SAGE_COMPANY_CODE="TOOLONG",
                ML_CONNECTOR_ON_TIE="random",
                ML_CONNECTOR_FX_RATES="EUR=abc",
                ML_CONNECTOR_SAGE_HOME_CURRENCY="pounds",
            )
        )

    assert len(err.value.problems) == 4


def test_gocardless_environment_names_resolve_to_their_urls(tmp_path: Path) -> None:
    assert load_settings(base_env(tmp_path, ML_CONNECTOR_GOCARDLESS_API_URL="sandbox")).gocardless_api_url == (
        "https://api-sandbox.gocardless.com"
    )


def test_several_webhook_secrets_are_accepted_for_rotation(tmp_path: Path) -> None:
    settings = load_settings(base_env(tmp_path, ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS="old-secret, new-secret"))

    assert [s.reveal() for s in settings.gocardless_webhook_secrets] == ["old-secret", "new-secret"]


def test_fx_rates_are_decimals(tmp_path: Path) -> None:
    settings = load_settings(base_env(tmp_path, ML_CONNECTOR_FX_RATES="EUR=0.8600,usd=0.79"))

    assert settings.fx_rates == {"EUR": Decimal("0.8600"), "USD": Decimal("0.79")}


def test_a_toml_file_supplies_settings_and_the_environment_overrides_it(tmp_path: Path) -> None:
    config = tmp_path / "connector.toml"
    config.write_text('sage_company_code = "XYZ"\nsage_bank_code = "B"\n[fx_rates]\nEUR = "0.85"\n')

    settings = load_settings(base_env(tmp_path, ML_CONNECTOR_CONFIG=str(config), ML_CONNECTOR_SAGE_BANK_CODE="C"))

    assert (settings.sage_company_code, settings.sage_bank_code) == ("XYZ", "C")
    assert settings.fx_rates == {"EUR": Decimal("0.85")}


def test_a_missing_toml_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match=r"ML_CONNECTOR_CONFIG: file .* does not exist"):
        load_settings(base_env(tmp_path, ML_CONNECTOR_CONFIG=str(tmp_path / "nope.toml")))


def test_stored_secrets_are_decrypted_with_the_key(tmp_path: Path) -> None:
    key = generate_key()
    SecretStore(tmp_path, Secret(key)).set("gocardless_access_token", "stored-token")

    settings = load_settings(base_env(tmp_path, ML_CONNECTOR_SECRET_KEY=key))

    assert settings.gocardless_access_token.reveal() == "stored-token"


def test_an_environment_variable_overrides_the_stored_secret(tmp_path: Path) -> None:
    key = generate_key()
    SecretStore(tmp_path, Secret(key)).set("sage_password", "stored-password")

    settings = load_settings(base_env(tmp_path, ML_CONNECTOR_SECRET_KEY=key, ML_CONNECTOR_SAGE_PASSWORD="from-env"))

    assert settings.sage_password.reveal() == "from-env"


def test_a_stored_secret_overrides_the_toml_file(tmp_path: Path) -> None:
    key = generate_key()
    SecretStore(tmp_path, Secret(key)).set("gocardless_access_token", "stored-token")
    config = tmp_path / "connector.toml"
    config.write_text('gocardless_access_token = "toml-token"\n')

    settings = load_settings(base_env(tmp_path, ML_CONNECTOR_SECRET_KEY=key, ML_CONNECTOR_CONFIG=str(config)))

    assert settings.gocardless_access_token.reveal() == "stored-token"


def test_stored_secrets_without_the_key_give_a_clear_error(tmp_path: Path) -> None:
    SecretStore(tmp_path, Secret(generate_key())).set("sage_password", "stored-password")

    with pytest.raises(SettingsError) as err:
        load_settings(base_env(tmp_path))

    assert "ML_CONNECTOR_SECRET_KEY is not set" in str(err.value)


def test_stored_secrets_with_the_wrong_key_give_a_clear_error(tmp_path: Path) -> None:
    SecretStore(tmp_path, Secret(generate_key())).set("sage_password", "stored-password")

    with pytest.raises(SettingsError) as err:
        load_settings(base_env(tmp_path, ML_CONNECTOR_SECRET_KEY=generate_key()))

    assert "not the key it was stored with" in str(err.value)


def test_a_damaged_stored_secret_is_named_with_how_to_store_it_again(tmp_path: Path) -> None:
    (tmp_path / "secrets.json").write_text('{"sage_password": 5, "gocardless_access_token": "garbage"}')

    with pytest.raises(SettingsError) as err:
        load_settings(base_env(tmp_path, ML_CONNECTOR_SECRET_KEY=generate_key()))

    assert sorted(p.split(":")[0] for p in err.value.problems) == [
        "ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN",
        "ML_CONNECTOR_SAGE_PASSWORD",
    ]
    assert "`ml-connector secrets set sage_password`" in str(err.value)


def test_require_names_each_missing_setting_and_how_to_set_it(tmp_path: Path) -> None:
    settings = load_settings(base_env(tmp_path))

    with pytest.raises(SettingsError) as err:
        settings.require("sage_agent_wsdl", "sage_password")

    assert "ML_CONNECTOR_SAGE_AGENT_WSDL: not set" in str(err.value)
    assert "ml-connector secrets set sage_password" in str(err.value)


SAGE = {
    "ML_CONNECTOR_SAGE_AGENT_WSDL": "https://sage:8443/agent?wsdl",
    "ML_CONNECTOR_SAGE_USERNAME": "web",
    "ML_CONNECTOR_SAGE_PASSWORD": "pw-123-secret",
    "ML_CONNECTOR_SAGE_COMPANY_CODE": "abc",
}


def test_the_agents_settings_are_the_wsdl_the_logon_and_how_to_reach_it(tmp_path: Path) -> None:
    settings = load_settings(
        base_env(tmp_path, **SAGE, ML_CONNECTOR_SAGE_CA_BUNDLE="/etc/ca.pem", ML_CONNECTOR_SAGE_TIMEOUT_SECONDS="12")
    )

    assert settings.sage_agent() == SageSettings(
        "https://sage:8443/agent?wsdl", "web", Secret("pw-123-secret"), "ABC", "/etc/ca.pem", Decimal(12)
    )
    assert "pw-123-secret" not in repr(settings.sage_agent())


def test_each_part_names_every_setting_it_lacks_and_how_to_set_it(tmp_path: Path) -> None:
    settings = load_settings(base_env(tmp_path, ML_CONNECTOR_SAGE_USERNAME="web"))

    def problems(part: Callable[[], object]) -> list[str]:
        with pytest.raises(SettingsError) as err:
            part()
        return [p.split(":")[0] for p in err.value.problems]

    assert problems(settings.sage_agent) == [
        "ML_CONNECTOR_SAGE_AGENT_WSDL",
        "ML_CONNECTOR_SAGE_PASSWORD",
        "ML_CONNECTOR_SAGE_COMPANY_CODE",
    ]
    assert problems(settings.sage_ebusiness) == [
        "ML_CONNECTOR_SAGE_EBUSINESS_WSDL",
        "ML_CONNECTOR_SAGE_PASSWORD",
        "ML_CONNECTOR_SAGE_COMPANY_CODE",
    ]
    assert problems(settings.gocardless) == ["ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN"]
    assert problems(settings.webhooks) == ["ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS"]
    assert problems(settings.reconciliation) == ["ML_CONNECTOR_SAGE_HOME_CURRENCY", "ML_CONNECTOR_SAGE_BANK_CODE"]
    with pytest.raises(SettingsError) as err:
        settings.sage_agent()
    assert "ml-connector secrets set sage_password" in str(err.value)


def test_the_gocardless_webhook_and_reconciliation_parts_carry_their_settings(tmp_path: Path) -> None:
    settings = load_settings(
        base_env(
            tmp_path,
            ML_CONNECTOR_GOCARDLESS_API_URL="sandbox",
            ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN="tok-secret",
            ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS="wh-1,wh-2",
            ML_CONNECTOR_WEBHOOK_MAX_BYTES="2048",
            ML_CONNECTOR_SAGE_HOME_CURRENCY="gbp",
            ML_CONNECTOR_SAGE_BANK_CODE="b",
            ML_CONNECTOR_ON_TIE="hold",
            ML_CONNECTOR_FX_RATES="EUR=0.86",
            ML_CONNECTOR_AUTO_REVERSAL="true",
        )
    )

    assert settings.gocardless() == GoCardlessSettings("https://api-sandbox.gocardless.com", Secret("tok-secret"))
    webhooks = settings.webhooks()
    assert ([s.reveal() for s in webhooks.secrets], webhooks.max_bytes) == (["wh-1", "wh-2"], 2048)
    assert webhooks.event_whitelist == settings.gocardless_event_whitelist
    assert settings.reconciliation() == ReconciliationSettings(
        "GBP", "B", "confirmed", "hold", {"EUR": Decimal("0.86")}, auto_reversal=True
    )


def test_the_run_queue_threshold_is_a_setting(tmp_path: Path) -> None:
    assert load_settings(base_env(tmp_path)).max_queued_seconds == 600
    assert load_settings(base_env(tmp_path, ML_CONNECTOR_MAX_QUEUED_SECONDS="900")).max_queued_seconds == 900


def test_secrets_are_masked_in_repr_and_in_the_effective_settings(tmp_path: Path) -> None:
    settings = load_settings(
        base_env(
            tmp_path,
            ML_CONNECTOR_SAGE_PASSWORD="pw-123-secret",
            ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS="wh-1-secret,wh-2-secret",
        )
    )

    shown = repr(settings) + str(settings.masked())

    assert "pw-123-secret" not in shown and "wh-1-secret" not in shown
    assert settings.masked()["ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS"] == "******** (2 set)"


def test_the_settings_repr_masks_the_password_in_the_database_url(tmp_path: Path) -> None:
    settings = load_settings(base_env(tmp_path, ML_CONNECTOR_DATABASE_URL="postgresql+psycopg://ops:S3CRETPW@db/ops"))

    assert "postgresql+psycopg://ops:********@db/ops" in repr(settings)
    assert "S3CRETPW" not in repr(settings) + str(settings)


def test_a_refused_url_is_quoted_in_the_error_without_its_password(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(base_env(tmp_path, ML_CONNECTOR_SAGE_EBUSINESS_WSDL="ftp://web:S3CRETPW@sage/ebusiness?wsdl"))

    assert "ftp://web:********@sage/ebusiness?wsdl" in str(err.value)
    assert "S3CRETPW" not in str(err.value) + repr(err.value.problems)


# --- numbers: finite, positive, bounded, ASCII digits only -------------------------------------------------------

NOT_PLAIN_NUMBERS = ["Infinity", "inf", "NaN", "1e400", "1e3", "-5", "+5", "0", "1_0", "\u0661\u0660", "\uff11\uff10"]
NUMBER_IDS = [
    "infinity",
    "inf",
    "nan",
    "1e400",
    "exponent",
    "negative",
    "plus-sign",
    "zero",
    "underscore",
    "arabic-indic-digits",
    "fullwidth-digits",
]


@pytest.mark.parametrize("value", [*NOT_PLAIN_NUMBERS, "3601"], ids=[*NUMBER_IDS, "over-an-hour"])
def test_a_sage_timeout_that_is_not_a_plain_number_of_seconds_up_to_an_hour_is_refused(
    tmp_path: Path, value: str
) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(base_env(tmp_path, ML_CONNECTOR_SAGE_TIMEOUT_SECONDS=value))

    assert err.value.problems[0].startswith("ML_CONNECTOR_SAGE_TIMEOUT_SECONDS: ")
    assert "up to 3600" in err.value.problems[0]


@pytest.mark.parametrize("value, seconds", [("3600", Decimal(3600)), ("2.5", Decimal("2.5")), (" 30 ", Decimal(30))])
def test_a_sage_timeout_up_to_an_hour_is_accepted(tmp_path: Path, value: str, seconds: Decimal) -> None:
    assert load_settings(base_env(tmp_path, ML_CONNECTOR_SAGE_TIMEOUT_SECONDS=value)).sage_timeout_seconds == seconds


@pytest.mark.parametrize(
    "value",
    [*NOT_PLAIN_NUMBERS, "1.5", str(64 * 1024 * 1024 + 1), "9" * 5000],
    ids=[*NUMBER_IDS, "fraction", "over-64-MiB", "5000-digits"],
)
def test_a_webhook_size_limit_that_is_not_a_whole_number_up_to_64_mib_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(base_env(tmp_path, ML_CONNECTOR_WEBHOOK_MAX_BYTES=value))

    assert err.value.problems[0].startswith("ML_CONNECTOR_WEBHOOK_MAX_BYTES: ")


@pytest.mark.parametrize(
    "rate", [*NOT_PLAIN_NUMBERS, "0.0000001", "1000001"], ids=[*NUMBER_IDS, "below-the-range", "above-the-range"]
)
def test_an_fx_rate_that_is_not_a_plain_number_in_a_plausible_range_is_refused(tmp_path: Path, rate: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(base_env(tmp_path, ML_CONNECTOR_FX_RATES=f"USD=0.79,EUR={rate}"))

    assert err.value.problems == [
        f"ML_CONNECTOR_FX_RATES: 'EUR={rate}' is not CUR=RATE with a rate from 0.000001 to "
        "1000000 (digits 0-9), e.g. EUR=0.86"
    ]


def test_fx_rates_at_the_ends_of_the_range_are_accepted(tmp_path: Path) -> None:
    settings = load_settings(base_env(tmp_path, ML_CONNECTOR_FX_RATES="IRR=1000000,KWD=0.000001"))

    assert settings.fx_rates == {"IRR": Decimal(1000000), "KWD": Decimal("0.000001")}


def test_a_currency_given_twice_in_fx_rates_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="ML_CONNECTOR_FX_RATES: EUR is given twice"):
        load_settings(base_env(tmp_path, ML_CONNECTOR_FX_RATES="EUR=0.86,eur=0.87"))


@pytest.mark.parametrize(
    "variable, url",
    [
        ("ML_CONNECTOR_SAGE_AGENT_WSDL", "https://sage:\u0668\u0664\u0664\u0663/agent?wsdl"),
        ("ML_CONNECTOR_SAGE_EBUSINESS_WSDL", "https://sage:99999/ebusiness?wsdl"),
        ("ML_CONNECTOR_GOCARDLESS_API_URL", "https://gocardless.example:0"),
        ("ML_CONNECTOR_DATABASE_URL", "postgresql://db:abc/ops"),
    ],
    ids=["arabic-indic-digits", "over-65535", "zero", "not-a-number"],
)
def test_a_url_whose_port_is_not_a_number_from_1_to_65535_is_refused(tmp_path: Path, variable: str, url: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(base_env(tmp_path, **{variable: url}))

    assert err.value.problems == [f"{variable}: {url!r} has a port that is not a number from 1 to 65535"]


@pytest.mark.parametrize(
    "variable, value",
    [
        ("ML_CONNECTOR_SAGE_BANK_CODE", "\u0661"),
        ("ML_CONNECTOR_SAGE_BANK_CODE", "\u00c4"),
        ("ML_CONNECTOR_SAGE_COMPANY_CODE", "AB\u0661"),
        ("ML_CONNECTOR_SAGE_COMPANY_CODE", "ABC\n"),
        ("ML_CONNECTOR_SAGE_HOME_CURRENCY", "EUR\n"),
        ("ML_CONNECTOR_SAGE_HOME_CURRENCY", "\u00dfxx"),
    ],
    ids=[
        "bank-arabic-indic-digit",
        "bank-umlaut",
        "company-arabic-indic-digit",
        "company-newline",
        "currency-newline",
        "currency-sharp-s",
    ],
)
def test_codes_take_ascii_letters_and_digits_only(tmp_path: Path, variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(base_env(tmp_path, **{variable: value}))

    assert err.value.problems[0].startswith(f"{variable}: ")


# --- the TOML file: known keys, typed values ----------------------------------------------------------------------


def load_toml(tmp_path: Path, text: str):
    config = tmp_path / "connector.toml"
    config.write_text(text, encoding="utf-8")
    return load_settings(base_env(tmp_path, ML_CONNECTOR_CONFIG=str(config)))


def toml_problems(tmp_path: Path, text: str) -> list[str]:
    with pytest.raises(SettingsError) as err:
        load_toml(tmp_path, text)
    return err.value.problems


def test_a_home_that_is_not_a_string_is_refused_not_made_a_folder(tmp_path: Path) -> None:
    problems = toml_problems(tmp_path, "home = 5\n")

    assert problems == [
        f"ML_CONNECTOR_CONFIG: home must be a string (a folder path), got a number; "
        f"fix it in {tmp_path / 'connector.toml'}"
    ]
    assert not (tmp_path / "5").exists()


@pytest.mark.parametrize(
    "line, expected",
    [
        ('sage_timeout_seconds = "30"', "sage_timeout_seconds must be a number, got a string"),
        ("sage_username = 7", "sage_username must be a string, got a number"),
        ('auto_reversal = "yes"', "auto_reversal must be a boolean (true or false), got a string"),
        ("webhook_max_bytes = true", "webhook_max_bytes must be a number, got a boolean"),
        (
            'gocardless_event_whitelist = "payments.confirmed"',
            "gocardless_event_whitelist must be a list of strings, got a string",
        ),
        (
            "gocardless_webhook_secrets = [1, 2]",
            "gocardless_webhook_secrets must be a list of strings, got a list with a number",
        ),
        ('fx_rates = "EUR=0.86"', "fx_rates must be a table of CUR = rate, got a string"),
        ("fx_rates = { EUR = true }", "fx_rates.EUR must be a number, got a boolean"),
        (
            "database_url = 2024-01-01",
            "database_url must be a string (a sqlite:/// or postgresql:// URL), got a date or time",
        ),
    ],
    ids=[
        "number-as-string",
        "string-as-number",
        "boolean-as-string",
        "number-as-boolean",
        "list-as-string",
        "list-of-numbers",
        "table-as-string",
        "table-of-booleans",
        "string-as-date",
    ],
)
def test_a_toml_value_of_the_wrong_type_is_refused_naming_the_key_and_the_types(
    tmp_path: Path, line: str, expected: str
) -> None:
    assert toml_problems(tmp_path, line + "\n") == [
        f"ML_CONNECTOR_CONFIG: {expected}; fix it in {tmp_path / 'connector.toml'}"
    ]


def test_an_unknown_toml_key_is_refused_suggesting_the_likely_one(tmp_path: Path) -> None:
    problems = toml_problems(tmp_path, 'sage_company_cod = "ABC"\n')

    assert problems == [
        f"ML_CONNECTOR_CONFIG: unknown setting 'sage_company_cod' in {tmp_path / 'connector.toml'}; "
        "did you mean 'sage_company_code'?"
    ]


def test_an_unknown_toml_table_is_refused(tmp_path: Path) -> None:
    problems = toml_problems(tmp_path, '[sage]\nusername = "web"\n')

    assert problems[0].startswith("ML_CONNECTOR_CONFIG: unknown setting 'sage' in ")


def test_every_toml_type_is_read_into_its_setting(tmp_path: Path) -> None:
    settings = load_toml(
        tmp_path,
        """
sage_timeout_seconds = 2.5
webhook_max_bytes = 2048
auto_reversal = true
gocardless_event_whitelist = ["payments.confirmed", "payments.paid_out"]
gocardless_webhook_secrets = ["old-secret", "new-secret"]
[fx_rates]
EUR = 0.86
KWD = 0.00001
JPY = "0.0055"
""",
    )

    assert settings.sage_timeout_seconds == Decimal("2.5") and settings.webhook_max_bytes == 2048
    assert settings.auto_reversal is True
    assert settings.gocardless_event_whitelist == {"payments.confirmed", "payments.paid_out"}
    assert [s.reveal() for s in settings.gocardless_webhook_secrets] == ["old-secret", "new-secret"]
    assert settings.fx_rates == {"EUR": Decimal("0.86"), "KWD": Decimal("0.00001"), "JPY": Decimal("0.0055")}


@pytest.mark.parametrize(
    "line, variable",
    [
        ("sage_timeout_seconds = inf", "ML_CONNECTOR_SAGE_TIMEOUT_SECONDS"),
        ("sage_timeout_seconds = nan", "ML_CONNECTOR_SAGE_TIMEOUT_SECONDS"),
        ("sage_timeout_seconds = 0", "ML_CONNECTOR_SAGE_TIMEOUT_SECONDS"),
        ("webhook_max_bytes = 1.5", "ML_CONNECTOR_WEBHOOK_MAX_BYTES"),
        ("fx_rates = { EUR = inf }", "ML_CONNECTOR_FX_RATES"),
        ("fx_rates = { EUR = 1e400 }", "ML_CONNECTOR_FX_RATES"),
    ],
    ids=["inf", "nan", "zero", "fractional-bytes", "inf-rate", "1e400-rate"],
)
def test_a_toml_number_out_of_its_range_is_refused(tmp_path: Path, line: str, variable: str) -> None:
    problems = toml_problems(tmp_path, line + "\n")

    assert [p.split(":")[0] for p in problems] == [variable]


def test_a_config_file_that_is_not_utf8_is_reported(tmp_path: Path) -> None:
    config = tmp_path / "connector.toml"
    config.write_bytes(b'sage_username = "\xff"\n')

    with pytest.raises(SettingsError, match=r"ML_CONNECTOR_CONFIG: .* is not valid TOML"):
        load_settings(base_env(tmp_path, ML_CONNECTOR_CONFIG=str(config)))


def test_a_config_path_that_is_a_folder_is_reported(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="ML_CONNECTOR_CONFIG: cannot read"):
        load_settings(base_env(tmp_path, ML_CONNECTOR_CONFIG=str(tmp_path)))


# --- the webhook freshness window -------------------------------------------------------------------------------------


@pytest.mark.parametrize(("value", "hours"), [(None, 24), (" 6 ", 6)])
def test_the_webhook_freshness_window_defaults_to_a_day_and_is_read_from_its_variable(
    tmp_path: Path, value: str | None, hours: int
) -> None:
    env = {"ML_CONNECTOR_HOME": str(tmp_path)} | ({"ML_CONNECTOR_WEBHOOK_FRESHNESS_HOURS": value} if value else {})

    assert load_settings(env).webhook_freshness_hours == hours


@pytest.mark.parametrize("value", ["day", "0", "1.5", "8785"])
def test_a_webhook_freshness_window_that_is_not_a_whole_number_of_hours_is_refused_naming_the_variable(
    tmp_path: Path, value: str
) -> None:
    with pytest.raises(SettingsError) as refused:
        load_settings({"ML_CONNECTOR_HOME": str(tmp_path), "ML_CONNECTOR_WEBHOOK_FRESHNESS_HOURS": value})

    assert refused.value.problems == [
        f"ML_CONNECTOR_WEBHOOK_FRESHNESS_HOURS: {value!r} is not a whole number from 1 to 8784 (digits 0-9)"
    ]
