"""One typed settings object, read from ML_CONNECTOR_* environment variables (and an optional TOML file).

Precedence for every setting: environment variable > stored encrypted secret (secrets only) > TOML file
named by ML_CONNECTOR_CONFIG > default. Everything is validated at load time, and every problem is
reported at once, naming the variable and how to fix it.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Mapping
from urllib.parse import urlparse

from .secrets import Secret, SecretStore, SecretsError

PREFIX = "ML_CONNECTOR_"
GOCARDLESS_URLS = {
    "live": "https://api.gocardless.com",
    "sandbox": "https://api-sandbox.gocardless.com",
}
DEFAULT_EVENT_WHITELIST = (
    "payments.confirmed",
    "payments.paid_out",
    "payments.failed",
    "payments.cancelled",
    "payments.charged_back",
    "payments.chargeback_cancelled",
    "payments.chargeback_settled",
    "payments.late_failure_settled",
    "refunds.created",
    "refunds.paid",
    "refunds.failed",
    "refunds.refund_settled",
    "refunds.funds_returned",
    "payouts.paid",
)
COMPANY_CODE = re.compile(r"^[A-Za-z0-9]{3}$")
CURRENCY = re.compile(r"^[A-Z]{3}$")
SECRET_SETTINGS = ("sage_password", "gocardless_access_token", "gocardless_webhook_secrets", "secret_key")


class SettingsError(Exception):
    """Settings are invalid; `problems` lists each one as 'VARIABLE: what is wrong; how to fix it'."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("invalid settings:\n  - " + "\n  - ".join(problems))


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    sage_ebusiness_wsdl: str | None = None
    sage_agent_wsdl: str | None = None
    sage_username: str | None = None
    sage_password: Secret | None = None
    sage_company_code: str | None = None
    sage_home_currency: str | None = None
    sage_bank_code: str | None = None
    sage_ca_bundle: str | None = None
    sage_timeout_seconds: Decimal = Decimal("30")
    gocardless_api_url: str = GOCARDLESS_URLS["live"]
    gocardless_access_token: Secret | None = None
    gocardless_webhook_secrets: tuple[Secret, ...] = ()
    gocardless_event_whitelist: frozenset[str] = frozenset(DEFAULT_EVENT_WHITELIST)
    webhook_max_bytes: int = 1024 * 1024
    # The receiver's and the agent's HTTP servers: a request head or body slower than this is cut off
    # (closed, or 408), and over this many open connections a request gets 503. GoCardless allows 10 s.
    http_header_timeout_seconds: Decimal = Decimal("3")
    http_body_timeout_seconds: Decimal = Decimal("5")
    http_max_connections: int = 128
    collect_on: str = "confirmed"
    on_tie: str = "oldest"
    sync_customer_metadata: bool = False
    auto_reversal: bool = False
    fx_rates: Mapping[str, Decimal] = field(default_factory=dict)
    secret_key: Secret | None = None

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    def require(self, *names: str) -> None:
        """Raise SettingsError naming every listed setting that a component needs but is unset."""
        missing = [n for n in names if not getattr(self, n)]
        if missing:
            raise SettingsError([f"{env_name(n)}: not set; {_HELP.get(n, 'set it')}" for n in missing])

    def masked(self) -> dict[str, str]:
        """Effective settings for display: secrets shown only as set/unset."""
        out: dict[str, str] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_SETTINGS:
                count = len(value) if isinstance(value, tuple) else int(bool(value))
                out[env_name(f.name)] = f"******** ({count} set)" if count else "(not set)"
            elif isinstance(value, (frozenset, set)):
                out[env_name(f.name)] = ",".join(sorted(value))
            elif isinstance(value, Mapping):
                out[env_name(f.name)] = ",".join(f"{k}={v}" for k, v in sorted(value.items())) or "(none)"
            else:
                out[env_name(f.name)] = "(not set)" if value is None else str(value)
        return out


_HELP = {
    "sage_ebusiness_wsdl": "the URL of Sage's eBusiness Web Services WSDL, e.g. https://sage.example/ebusiness?wsdl",
    "sage_agent_wsdl": "the URL of the local agent's WSDL, e.g. https://sage-server:8443/agent?wsdl",
    "sage_username": "the Sage 100 user enabled for web services",
    "sage_password": "export it or store it with `ml-connector secrets set sage_password`",
    "sage_company_code": "the 3-character Sage company code, e.g. ABC",
    "sage_home_currency": "the ISO 4217 code of the company's home currency, e.g. GBP",
    "sage_bank_code": "the 1-character Sage bank code cash receipts are deposited to, e.g. A",
    "gocardless_access_token": "export it or store it with `ml-connector secrets set gocardless_access_token`",
    "gocardless_webhook_secrets": "export it or store it with `ml-connector secrets set gocardless_webhook_secrets`",
    "secret_key": "create one with `ml-connector secrets generate-key`",
}


def env_name(setting: str) -> str:
    return PREFIX + setting.upper()


DEFAULT_HOME = "./.ml-connector"


def home_folder(environ: Mapping[str, str] | None = None) -> Path:
    """ML_CONNECTOR_HOME, or the default: for commands that need the folder before full settings load."""
    env = os.environ if environ is None else environ
    return Path(env.get(PREFIX + "HOME") or DEFAULT_HOME).expanduser()


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Read, validate and decrypt the settings; raise SettingsError listing every problem."""
    env = dict(os.environ if environ is None else environ)
    problems: list[str] = []
    raw = _read_toml(env, problems)
    raw.update({k[len(PREFIX):].lower(): v for k, v in env.items() if k.startswith(PREFIX) and v != ""})
    raw.pop("config", None)

    home = Path(str(raw.pop("home", DEFAULT_HOME))).expanduser()
    values: dict[str, object] = {"home": home}
    values["database_url"] = _database_url(raw.pop("database_url", None), home, problems)
    key = Secret(str(raw["secret_key"])) if raw.get("secret_key") else None
    values["secret_key"] = key
    _merge_stored_secrets(raw, home, key, problems)

    for name in ("sage_ebusiness_wsdl", "sage_agent_wsdl"):
        if raw.get(name):
            values[name] = _url(name, str(raw[name]), problems)
    for name in ("sage_username", "sage_ca_bundle"):
        if raw.get(name):
            values[name] = str(raw[name])
    if raw.get("sage_password"):
        values["sage_password"] = Secret(str(raw["sage_password"]))
    if raw.get("sage_company_code") is not None:
        code = str(raw["sage_company_code"])
        if COMPANY_CODE.match(code):
            values["sage_company_code"] = code.upper()
        else:
            problems.append(
                f"{env_name('sage_company_code')}: company code {code!r} is not exactly 3 letters or digits; "
                "use the 3-character code shown in Sage 100's Company Maintenance, e.g. ABC"
            )
    if raw.get("sage_home_currency"):
        values["sage_home_currency"] = _currency("sage_home_currency", str(raw["sage_home_currency"]), problems)
    if raw.get("sage_bank_code"):
        bank = str(raw["sage_bank_code"])
        if len(bank) == 1 and bank.isalnum():
            values["sage_bank_code"] = bank.upper()
        else:
            problems.append(f"{env_name('sage_bank_code')}: bank code {bank!r} must be 1 letter or digit, e.g. A")
    if raw.get("sage_timeout_seconds"):
        values["sage_timeout_seconds"] = _positive_decimal("sage_timeout_seconds", raw["sage_timeout_seconds"], problems)
    if raw.get("gocardless_api_url"):
        url = str(raw["gocardless_api_url"])
        values["gocardless_api_url"] = GOCARDLESS_URLS.get(url) or _url("gocardless_api_url", url, problems)
    if raw.get("gocardless_access_token"):
        values["gocardless_access_token"] = Secret(str(raw["gocardless_access_token"]))
    if raw.get("gocardless_webhook_secrets"):
        values["gocardless_webhook_secrets"] = tuple(
            Secret(s.strip()) for s in str(raw["gocardless_webhook_secrets"]).split(",") if s.strip()
        )
    if raw.get("gocardless_event_whitelist"):
        values["gocardless_event_whitelist"] = _whitelist(raw["gocardless_event_whitelist"], problems)
    if raw.get("webhook_max_bytes"):
        values["webhook_max_bytes"] = _positive_int("webhook_max_bytes", raw["webhook_max_bytes"], problems)
    for name in ("http_header_timeout_seconds", "http_body_timeout_seconds"):
        if raw.get(name):
            values[name] = _positive_decimal(name, raw[name], problems)
    if raw.get("http_max_connections"):
        values["http_max_connections"] = _positive_int("http_max_connections", raw["http_max_connections"], problems)
    _choice("collect_on", raw, ("confirmed", "paid_out"), values, problems)
    _choice("on_tie", raw, ("oldest", "hold"), values, problems)
    for name in ("sync_customer_metadata", "auto_reversal"):
        if raw.get(name) is not None:
            values[name] = _bool(name, raw[name], problems)
    if raw.get("fx_rates"):
        values["fx_rates"] = _fx_rates(raw["fx_rates"], problems)
    if problems:
        raise SettingsError(problems)
    return Settings(**values)  # type: ignore[arg-type]


def _read_toml(env: Mapping[str, str], problems: list[str]) -> dict[str, object]:
    path = env.get(PREFIX + "CONFIG")
    if not path:
        return {}
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        problems.append(f"{PREFIX}CONFIG: file {path} does not exist; fix the path or unset the variable")
        return {}
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{PREFIX}CONFIG: {path} is not valid TOML ({exc})")
        return {}
    out: dict[str, object] = {}
    for k, v in data.items():
        if isinstance(v, dict) and k == "fx_rates":
            v = ",".join(f"{c}={r}" for c, r in v.items())
        elif isinstance(v, list):
            v = ",".join(str(x) for x in v)
        out[k.lower()] = v
    return out


def _merge_stored_secrets(raw: dict, home: Path, key: Secret | None, problems: list[str]) -> None:
    store = SecretStore(home, key)
    if not store.path.exists():
        return
    for name in ("gocardless_access_token", "sage_password", "gocardless_webhook_secrets"):
        if raw.get(name):
            continue  # the environment overrides the stored value (container secrets)
        try:
            secret = store.get(name)
        except SecretsError as exc:
            problems.append(f"{env_name('secret_key')}: {exc}")
            return
        if secret is not None:
            raw[name] = secret.reveal()


def _database_url(value: object, home: Path, problems: list[str]) -> str:
    if not value:
        return f"sqlite:///{(home / 'ops.sqlite').as_posix()}"
    url = str(value)
    scheme = urlparse(url).scheme
    if scheme.split("+")[0] not in ("sqlite", "postgresql"):
        problems.append(
            f"{env_name('database_url')}: {_redact_url(url)!r} is not a sqlite:/// or postgresql:// URL"
        )
    return url


def _redact_url(url: str) -> str:
    parsed = urlparse(url)
    if parsed.password:
        return url.replace(f":{parsed.password}@", ":****@")
    return url


def _url(name: str, value: str, problems: list[str]) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        problems.append(f"{env_name(name)}: {value!r} is not an http(s) URL; {_HELP.get(name, 'give a full URL')}")
    return value.rstrip("/") if name == "gocardless_api_url" else value


def _currency(name: str, value: str, problems: list[str]) -> str:
    if not CURRENCY.match(value.upper()):
        problems.append(f"{env_name(name)}: {value!r} is not a 3-letter ISO 4217 currency code, e.g. GBP")
    return value.upper()


def _positive_int(name: str, value: object, problems: list[str]) -> int:
    try:
        number = int(str(value))
        if number > 0:
            return number
    except ValueError:
        pass
    problems.append(f"{env_name(name)}: {value!r} is not a positive whole number")
    return 1


def _positive_decimal(name: str, value: object, problems: list[str]) -> Decimal:
    try:
        number = Decimal(str(value))
        if number > 0:
            return number
    except InvalidOperation:
        pass
    problems.append(f"{env_name(name)}: {value!r} is not a positive number of seconds")
    return Decimal(1)


def _bool(name: str, value: object, problems: list[str]) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    problems.append(f"{env_name(name)}: {value!r} is not true or false")
    return False


def _choice(name: str, raw: dict, allowed: tuple[str, ...], values: dict, problems: list[str]) -> None:
    if raw.get(name) is None:
        return
    value = str(raw[name]).strip().lower()
    if value not in allowed:
        problems.append(f"{env_name(name)}: {raw[name]!r} is not one of {', '.join(allowed)}")
    values[name] = value


def _whitelist(value: object, problems: list[str]) -> frozenset[str]:
    items = frozenset(s.strip() for s in str(value).split(",") if s.strip())
    bad = sorted(i for i in items if not re.match(r"^[a-z_]+\.[a-z_]+$", i))
    if bad:
        problems.append(
            f"{env_name('gocardless_event_whitelist')}: {', '.join(bad)} not of the form resource_type.action "
            "(e.g. payments.confirmed)"
        )
    return items


def _fx_rates(value: object, problems: list[str]) -> dict[str, Decimal]:
    rates: dict[str, Decimal] = {}
    for pair in (p.strip() for p in str(value).split(",") if p.strip()):
        currency, _, rate = pair.partition("=")
        try:
            number = Decimal(rate.strip())
            if not CURRENCY.match(currency.strip().upper()) or number <= 0:
                raise InvalidOperation
            rates[currency.strip().upper()] = number
        except InvalidOperation:
            problems.append(f"{env_name('fx_rates')}: {pair!r} is not CUR=RATE with a positive rate, e.g. EUR=0.86")
    return rates
