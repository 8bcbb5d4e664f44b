"""Settings: read from ML_CONNECTOR_* variables (and a TOML file), validated with messages that say how to fix."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from ml_connector_dagster.secrets import SecretStore, generate_key, Secret
from ml_connector_dagster.settings import SettingsError, load_settings


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
        load_settings(base_env(tmp_path, ML_CONNECTOR_SAGE_COMPANY_CODE="TOOLONG", ML_CONNECTOR_ON_TIE="random",
                               ML_CONNECTOR_FX_RATES="EUR=abc", ML_CONNECTOR_SAGE_HOME_CURRENCY="pounds"))

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
    with pytest.raises(SettingsError, match="ML_CONNECTOR_CONFIG: file .* does not exist"):
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

    assert sorted(p.split(":")[0] for p in err.value.problems) == ["ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN",
                                                                   "ML_CONNECTOR_SAGE_PASSWORD"]
    assert "`ml-connector secrets set sage_password`" in str(err.value)


def test_require_names_each_missing_setting_and_how_to_set_it(tmp_path: Path) -> None:
    settings = load_settings(base_env(tmp_path))

    with pytest.raises(SettingsError) as err:
        settings.require("sage_agent_wsdl", "sage_password")

    assert "ML_CONNECTOR_SAGE_AGENT_WSDL: not set" in str(err.value)
    assert "ml-connector secrets set sage_password" in str(err.value)


def test_secrets_are_masked_in_repr_and_in_the_effective_settings(tmp_path: Path) -> None:
    settings = load_settings(base_env(tmp_path, ML_CONNECTOR_SAGE_PASSWORD="pw-123-secret",
                                      ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS="wh-1-secret,wh-2-secret"))

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
NUMBER_IDS = ["infinity", "inf", "nan", "1e400", "exponent", "negative", "plus-sign", "zero", "underscore",
              "arabic-indic-digits", "fullwidth-digits"]


@pytest.mark.parametrize("value", NOT_PLAIN_NUMBERS + ["3601"], ids=NUMBER_IDS + ["over-an-hour"])
def test_a_sage_timeout_that_is_not_a_plain_number_of_seconds_up_to_an_hour_is_refused(tmp_path: Path,
                                                                                        value: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(base_env(tmp_path, ML_CONNECTOR_SAGE_TIMEOUT_SECONDS=value))

    assert err.value.problems[0].startswith("ML_CONNECTOR_SAGE_TIMEOUT_SECONDS: ")
    assert "up to 3600" in err.value.problems[0]


@pytest.mark.parametrize("value, seconds", [("3600", Decimal(3600)), ("2.5", Decimal("2.5")), (" 30 ", Decimal(30))])
def test_a_sage_timeout_up_to_an_hour_is_accepted(tmp_path: Path, value: str, seconds: Decimal) -> None:
    assert load_settings(base_env(tmp_path, ML_CONNECTOR_SAGE_TIMEOUT_SECONDS=value)).sage_timeout_seconds == seconds


@pytest.mark.parametrize("value", NOT_PLAIN_NUMBERS + ["1.5", str(64 * 1024 * 1024 + 1), "9" * 5000],
                         ids=NUMBER_IDS + ["fraction", "over-64-MiB", "5000-digits"])
def test_a_webhook_size_limit_that_is_not_a_whole_number_up_to_64_mib_is_refused(tmp_path: Path, value: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(base_env(tmp_path, ML_CONNECTOR_WEBHOOK_MAX_BYTES=value))

    assert err.value.problems[0].startswith("ML_CONNECTOR_WEBHOOK_MAX_BYTES: ")


@pytest.mark.parametrize("rate", NOT_PLAIN_NUMBERS + ["0.0000001", "1000001"],
                         ids=NUMBER_IDS + ["below-the-range", "above-the-range"])
def test_an_fx_rate_that_is_not_a_plain_number_in_a_plausible_range_is_refused(tmp_path: Path, rate: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(base_env(tmp_path, ML_CONNECTOR_FX_RATES=f"USD=0.79,EUR={rate}"))

    assert err.value.problems == [f"ML_CONNECTOR_FX_RATES: 'EUR={rate}' is not CUR=RATE with a rate from 0.000001 to "
                                  "1000000 (digits 0-9), e.g. EUR=0.86"]


def test_fx_rates_at_the_ends_of_the_range_are_accepted(tmp_path: Path) -> None:
    settings = load_settings(base_env(tmp_path, ML_CONNECTOR_FX_RATES="IRR=1000000,KWD=0.000001"))

    assert settings.fx_rates == {"IRR": Decimal(1000000), "KWD": Decimal("0.000001")}


def test_a_currency_given_twice_in_fx_rates_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="ML_CONNECTOR_FX_RATES: EUR is given twice"):
        load_settings(base_env(tmp_path, ML_CONNECTOR_FX_RATES="EUR=0.86,eur=0.87"))


@pytest.mark.parametrize("variable, url", [
    ("ML_CONNECTOR_SAGE_AGENT_WSDL", "https://sage:\u0668\u0664\u0664\u0663/agent?wsdl"),
    ("ML_CONNECTOR_SAGE_EBUSINESS_WSDL", "https://sage:99999/ebusiness?wsdl"),
    ("ML_CONNECTOR_GOCARDLESS_API_URL", "https://gocardless.example:0"),
    ("ML_CONNECTOR_DATABASE_URL", "postgresql://db:abc/ops"),
], ids=["arabic-indic-digits", "over-65535", "zero", "not-a-number"])
def test_a_url_whose_port_is_not_a_number_from_1_to_65535_is_refused(tmp_path: Path, variable: str, url: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(base_env(tmp_path, **{variable: url}))

    assert err.value.problems == [f"{variable}: {url!r} has a port that is not a number from 1 to 65535"]


@pytest.mark.parametrize("variable, value", [
    ("ML_CONNECTOR_SAGE_BANK_CODE", "\u0661"),
    ("ML_CONNECTOR_SAGE_BANK_CODE", "\u00c4"),
    ("ML_CONNECTOR_SAGE_COMPANY_CODE", "AB\u0661"),
    ("ML_CONNECTOR_SAGE_COMPANY_CODE", "ABC\n"),
    ("ML_CONNECTOR_SAGE_HOME_CURRENCY", "EUR\n"),
    ("ML_CONNECTOR_SAGE_HOME_CURRENCY", "\u00dfxx"),
], ids=["bank-arabic-indic-digit", "bank-umlaut", "company-arabic-indic-digit", "company-newline",
        "currency-newline", "currency-sharp-s"])
def test_codes_take_ascii_letters_and_digits_only(tmp_path: Path, variable: str, value: str) -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(base_env(tmp_path, **{variable: value}))

    assert err.value.problems[0].startswith(f"{variable}: ")
