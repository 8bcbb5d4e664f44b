"""Reading the settings from the environment, the TOML file and the stored secrets, every value checked.

`load_settings` gathers the raw values (the TOML file first, stored secrets over it, then every non-empty
ML_CONNECTOR_* variable over both), checks each with `parse.py`, and raises one
SettingsError listing every problem, or returns `Settings`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path

from ..fileperms import secure_home
from ..secrets import DamagedSecret, Secret, SecretsError, SecretStore
from . import parse, toml_file
from .model import GOCARDLESS_URLS, Settings, SettingsError
from .names import PREFIX, env_name

DEFAULT_HOME = "./.ml-connector"


def home_folder(environ: Mapping[str, str] | None = None) -> Path:
    """ML_CONNECTOR_HOME, or the default: for commands that need the folder before full settings load."""
    env = os.environ if environ is None else environ
    return Path(env.get(PREFIX + "HOME") or DEFAULT_HOME).expanduser()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read, validate and decrypt the settings; raise SettingsError listing every problem."""
    env = dict(os.environ if environ is None else environ)
    problems: list[str] = []
    raw = toml_file.read(env, problems)
    from_env = {k[len(PREFIX) :].lower(): v for k, v in env.items() if k.startswith(PREFIX) and v != ""}
    raw.update(from_env)
    raw.pop("config", None)

    home = Path(str(raw.pop("home", DEFAULT_HOME))).expanduser()
    values: dict[str, object] = {"home": home}
    values["database_url"] = parse.database_url(raw.pop("database_url", None), home, problems)
    key = Secret(str(raw["secret_key"])) if raw.get("secret_key") else None
    values["secret_key"] = key
    _merge_stored_secrets(raw, set(from_env), home, key, problems)

    for name in ("sage_ebusiness_wsdl", "sage_agent_wsdl"):
        if raw.get(name):
            values[name] = parse.http_url(name, str(raw[name]), problems)
    for name in ("sage_username", "sage_ca_bundle"):
        if raw.get(name):
            values[name] = str(raw[name])
    if raw.get("sage_password"):
        values["sage_password"] = Secret(str(raw["sage_password"]))
    if raw.get("sage_company_code") is not None:
        values["sage_company_code"] = parse.company_code(str(raw["sage_company_code"]), problems)
    if raw.get("sage_home_currency"):
        values["sage_home_currency"] = parse.currency("sage_home_currency", str(raw["sage_home_currency"]), problems)
    if raw.get("sage_bank_code"):
        values["sage_bank_code"] = parse.bank_code(str(raw["sage_bank_code"]), problems)
    if raw.get("sage_timeout_seconds") is not None:
        timeout = raw["sage_timeout_seconds"]
        values["sage_timeout_seconds"] = parse.positive_decimal("sage_timeout_seconds", timeout, problems)
    if raw.get("gocardless_api_url"):
        url = str(raw["gocardless_api_url"])
        values["gocardless_api_url"] = GOCARDLESS_URLS.get(url) or parse.http_url("gocardless_api_url", url, problems)
    if raw.get("gocardless_access_token"):
        values["gocardless_access_token"] = Secret(str(raw["gocardless_access_token"]))
    if raw.get("gocardless_webhook_secrets"):
        values["gocardless_webhook_secrets"] = tuple(
            Secret(s.strip()) for s in str(raw["gocardless_webhook_secrets"]).split(",") if s.strip()
        )
    if raw.get("gocardless_event_whitelist"):
        values["gocardless_event_whitelist"] = parse.whitelist(raw["gocardless_event_whitelist"], problems)
    if raw.get("webhook_max_bytes") is not None:
        values["webhook_max_bytes"] = parse.positive_int(
            "webhook_max_bytes", raw["webhook_max_bytes"], problems, maximum=parse.MAX_WEBHOOK_BYTES
        )
    for name in ("http_header_timeout_seconds", "http_body_timeout_seconds"):
        if raw.get(name) is not None:  # GoCardless gives a delivery 10 s in all: a minute is already lenient
            values[name] = parse.positive_decimal(name, raw[name], problems, maximum=Decimal(60))
    if raw.get("http_max_connections") is not None:
        values["http_max_connections"] = parse.positive_int(
            "http_max_connections", raw["http_max_connections"], problems, maximum=100_000
        )
    if raw.get("max_queued_seconds") is not None:
        values["max_queued_seconds"] = parse.positive_int(
            "max_queued_seconds", raw["max_queued_seconds"], problems, maximum=parse.MAX_QUEUED_SECONDS
        )
    if raw.get("webhook_freshness_hours") is not None:
        values["webhook_freshness_hours"] = parse.positive_int(
            "webhook_freshness_hours", raw["webhook_freshness_hours"], problems, maximum=24 * 366
        )
    if raw.get("go_live_date"):
        values["go_live_date"] = parse.iso_date("go_live_date", raw["go_live_date"], problems)
    parse.choice("collect_on", raw, ("confirmed", "paid_out"), values, problems)
    parse.choice("on_tie", raw, ("oldest", "hold"), values, problems)
    for name in ("sync_customer_metadata", "auto_reversal"):
        if raw.get(name) is not None:
            values[name] = parse.boolean(name, raw[name], problems)
    if raw.get("fx_rates"):
        values["fx_rates"] = parse.fx_rates(raw["fx_rates"], problems)
    if problems:
        raise SettingsError(problems)
    secure_home(home)  # every process (CLI, Dagster run, agent) starts here: close what an older version left open
    return Settings(**values)  # type: ignore[arg-type]


def _merge_stored_secrets(
    raw: dict[str, object], from_env: set[str], home: Path, key: Secret | None, problems: list[str]
) -> None:
    """A stored secret wins over the TOML file (it was set on purpose with `secrets set`); the environment
    wins over both (container secrets)."""
    store = SecretStore(home, key)
    if not store.path.exists():
        return
    for name in ("gocardless_access_token", "sage_password", "gocardless_webhook_secrets"):
        if name in from_env:
            continue
        try:
            secret = store.get(name)
        except DamagedSecret as exc:
            problems.append(f"{env_name(exc.name)}: {exc}")
            continue
        except SecretsError as exc:  # the key: missing, malformed or not the one the secrets were stored with
            problems.append(f"{env_name('secret_key')}: {exc}")
            return
        if secret is not None:
            raw[name] = secret.reveal()
