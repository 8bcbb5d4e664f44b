"""One typed settings object, read from ML_CONNECTOR_* environment variables (and an optional TOML file).

Precedence for every setting: environment variable > stored encrypted secret (secrets only) > TOML file
named by ML_CONNECTOR_CONFIG > default. Everything is validated at load time, and every problem is
reported at once, naming the variable and how to fix it.

Settings a component cannot work without but a deployment may leave unset (a receiver host has no Sage
password) are optional in `Settings`; each component asks for the part it needs as a sub-object whose
fields cannot be None: `sage_agent()`, `sage_ebusiness()`, `gocardless()`, `webhooks()`, `reconciliation()`.
Each raises SettingsError naming every missing variable and how to set it.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections import abc
from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from types import UnionType
from typing import Any, ClassVar, Union, get_args, get_origin, get_type_hints
from urllib.parse import urlparse

from .fileperms import secure_home
from .secrets import DamagedSecret, Secret, SecretsError, SecretStore, mask_credentials

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
COMPANY_CODE = re.compile(r"[A-Za-z0-9]{3}")  # fullmatch: ASCII only, no trailing newline
CURRENCY = re.compile(r"[A-Z]{3}")
# Numbers in settings: ASCII digits with an optional decimal point. No sign, exponent, underscore, NaN or
# Infinity, and no other script's digits (Python's int() and Decimal() would read '١٠' as 10).
DECIMAL_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
WHOLE_TEXT = re.compile(r"[0-9]+")
MAX_TIMEOUT_SECONDS = Decimal(3600)  # an hour: past that a call is hung, not slow
MAX_COUNT = 1_000_000  # the default bound of a whole-number setting
MAX_WEBHOOK_BYTES = 64 * 1024 * 1024  # a GoCardless webhook is a few KiB; the default is 1 MiB
MAX_QUEUED_SECONDS = 7 * 24 * 3600  # a week: a run queued longer than that was forgotten, not slow
FX_RATE_MIN, FX_RATE_MAX = Decimal("0.000001"), Decimal(1_000_000)  # home units per foreign unit, any pair
SECRET_SETTINGS = ("sage_password", "gocardless_access_token", "gocardless_webhook_secrets", "secret_key")


class SettingsError(Exception):
    """Settings are invalid; `problems` lists each one as 'VARIABLE: what is wrong; how to fix it'."""

    def __init__(self, problems: list[str]) -> None:
        self.problems = [mask_credentials(p) for p in problems]  # a bad URL is quoted back: never its password
        super().__init__("invalid settings:\n  - " + "\n  - ".join(self.problems))


class _MaskedRepr:
    """For dataclasses: their repr with the credentials of URLs masked (secrets mask themselves)."""

    __dataclass_fields__: ClassVar[dict[str, Field[Any]]]

    def __repr__(self) -> str:
        shown = ", ".join(f"{f.name}={getattr(self, f.name)!r}" for f in fields(self))
        return mask_credentials(f"{type(self).__name__}({shown})")


@dataclass(frozen=True, repr=False)
class SageSettings(_MaskedRepr):
    """One Sage-style SOAP service (the agent, or eBusiness Web Services) and the logon every call carries."""

    wsdl: str
    username: str
    password: Secret
    company_code: str
    ca_bundle: str | None = None  # None: the system's CAs
    timeout_seconds: Decimal = Decimal("30")


@dataclass(frozen=True, repr=False)
class GoCardlessSettings(_MaskedRepr):
    """The GoCardless API: where, and the access token."""

    api_url: str
    access_token: Secret


@dataclass(frozen=True, repr=False)
class WebhookSettings(_MaskedRepr):
    """What the webhook receiver checks: the signing secrets (at least one), the event types it keeps and
    the largest body it reads."""

    secrets: tuple[Secret, ...]
    event_whitelist: frozenset[str]
    max_bytes: int


@dataclass(frozen=True, repr=False)
class ReconciliationSettings(_MaskedRepr):
    """Deciding payments and posting them: Sage's home currency, the bank code receipts are deposited to,
    FX rates and the policy choices."""

    home_currency: str
    bank_code: str
    collect_on: str = "confirmed"
    on_tie: str = "oldest"
    fx_rates: Mapping[str, Decimal] = field(default_factory=dict)
    auto_reversal: bool = False


@dataclass(frozen=True, repr=False)
class Settings(_MaskedRepr):
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
    max_queued_seconds: int = 600  # run_queue_watchdog warns about runs queued longer than this

    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    def require(self, *names: str) -> None:
        """Raise SettingsError naming every listed setting that is unset (for `config check` and `ping`,
        which report settings one by one; components ask for their sub-object instead)."""
        if problems := self._unset(*names):
            raise SettingsError(problems)

    def _unset(self, *names: str) -> list[str]:
        """'VARIABLE: not set; how to set it' for each listed setting that is unset."""
        return [f"{env_name(n)}: not set; {_HELP.get(n, 'set it')}" for n in names if not getattr(self, n)]

    def sage_agent(self) -> SageSettings:
        """The agent on the Sage server and the logon; SettingsError naming whatever is unset."""
        return self._sage(self.sage_agent_wsdl, "sage_agent_wsdl")

    def sage_ebusiness(self) -> SageSettings:
        """Sage's eBusiness Web Services and the logon; SettingsError naming whatever is unset."""
        return self._sage(self.sage_ebusiness_wsdl, "sage_ebusiness_wsdl")

    def _sage(self, wsdl: str | None, wsdl_setting: str) -> SageSettings:
        username, password, company_code = self.sage_username, self.sage_password, self.sage_company_code
        if wsdl and username and password and company_code:
            return SageSettings(wsdl, username, password, company_code, self.sage_ca_bundle, self.sage_timeout_seconds)
        raise SettingsError(self._unset(wsdl_setting, "sage_username", "sage_password", "sage_company_code"))

    def gocardless(self) -> GoCardlessSettings:
        """The GoCardless API URL and access token; SettingsError when no token is configured."""
        if token := self.gocardless_access_token:
            return GoCardlessSettings(self.gocardless_api_url, token)
        raise SettingsError(self._unset("gocardless_access_token"))

    def webhooks(self) -> WebhookSettings:
        """The receiver's checks; SettingsError when no webhook secret is configured (it could verify nothing)."""
        if not self.gocardless_webhook_secrets:
            raise SettingsError(self._unset("gocardless_webhook_secrets"))
        return WebhookSettings(self.gocardless_webhook_secrets, self.gocardless_event_whitelist, self.webhook_max_bytes)

    def reconciliation(self) -> ReconciliationSettings:
        """Deciding and posting payments; SettingsError naming the home currency or bank code if unset."""
        home_currency, bank_code = self.sage_home_currency, self.sage_bank_code
        if home_currency and bank_code:
            return ReconciliationSettings(
                home_currency, bank_code, self.collect_on, self.on_tie, self.fx_rates, self.auto_reversal
            )
        raise SettingsError(self._unset("sage_home_currency", "sage_bank_code"))

    def masked(self) -> dict[str, str]:
        """Effective settings for display: secrets shown only as set/unset, credentials in URLs masked."""
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
                out[env_name(f.name)] = "(not set)" if value is None else mask_credentials(str(value))
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
    raw.update({k[len(PREFIX) :].lower(): v for k, v in env.items() if k.startswith(PREFIX) and v != ""})
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
        if COMPANY_CODE.fullmatch(code):
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
        if len(bank) == 1 and bank.isascii() and bank.isalnum():
            values["sage_bank_code"] = bank.upper()
        else:
            problems.append(f"{env_name('sage_bank_code')}: bank code {bank!r} must be 1 letter or digit, e.g. A")
    if raw.get("sage_timeout_seconds") is not None:
        timeout = raw["sage_timeout_seconds"]
        values["sage_timeout_seconds"] = _positive_decimal("sage_timeout_seconds", timeout, problems)
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
    if raw.get("webhook_max_bytes") is not None:
        values["webhook_max_bytes"] = _positive_int(
            "webhook_max_bytes", raw["webhook_max_bytes"], problems, maximum=MAX_WEBHOOK_BYTES
        )
    for name in ("http_header_timeout_seconds", "http_body_timeout_seconds"):
        if raw.get(name) is not None:  # GoCardless gives a delivery 10 s in all: a minute is already lenient
            values[name] = _positive_decimal(name, raw[name], problems, maximum=Decimal(60))
    if raw.get("http_max_connections") is not None:
        values["http_max_connections"] = _positive_int(
            "http_max_connections", raw["http_max_connections"], problems, maximum=100_000
        )
    if raw.get("max_queued_seconds") is not None:
        values["max_queued_seconds"] = _positive_int(
            "max_queued_seconds", raw["max_queued_seconds"], problems, maximum=MAX_QUEUED_SECONDS
        )
    _choice("collect_on", raw, ("confirmed", "paid_out"), values, problems)
    _choice("on_tie", raw, ("oldest", "hold"), values, problems)
    for name in ("sync_customer_metadata", "auto_reversal"):
        if raw.get(name) is not None:
            values[name] = _bool(name, raw[name], problems)
    if raw.get("fx_rates"):
        values["fx_rates"] = _fx_rates(raw["fx_rates"], problems)
    if problems:
        raise SettingsError(problems)
    secure_home(home)  # every process (CLI, Dagster run, agent) starts here: close what an older version left open
    return Settings(**values)  # type: ignore[arg-type]


# --- the TOML file: every key known, every value of its setting's type ------------------------------------------

_TOML_HINTS = {"home": "a folder path", "database_url": "a sqlite:/// or postgresql:// URL"}
_TOML_KIND_PHRASES = {
    "string": "a string",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "list": "a list of strings",
    "table": "a table of CUR = rate",
}


def _toml_kind(annotation: object) -> str:
    """The TOML type of a Settings field, read from its annotation, so a new setting needs no entry here."""
    options = (
        [a for a in get_args(annotation) if a is not type(None)]
        if get_origin(annotation) in (Union, UnionType)
        else [annotation]
    )
    kind = get_origin(options[0]) or options[0]
    if kind in (tuple, frozenset, set, list):
        return "list"
    if kind is bool:
        return "boolean"
    if kind in (int, float, Decimal):
        return "number"
    if isinstance(kind, type) and issubclass(kind, abc.Mapping):
        return "table"
    return "string"


def _toml_kinds() -> dict[str, str]:
    return {name: _toml_kind(hint) for name, hint in get_type_hints(Settings).items()}


def _toml_type(value: object) -> str:
    """What a TOML value is, in the words of the error message."""
    for kind, phrase in (
        (bool, "a boolean"),
        ((int, float), "a number"),
        (str, "a string"),
        (list, "a list"),
        (dict, "a table"),
    ):
        if isinstance(value, kind):
            return phrase
    return "a date or time"


def _toml_problem(key: str, kind: str, value: object) -> str | None:
    """Why `value` is not of `kind` (None when it is); a list and a table are checked item by item."""
    if kind == "list" and isinstance(value, list):
        wrong = next((v for v in value if not isinstance(v, str)), None)
        return None if wrong is None else f"{key} must be a list of strings, got a list with {_toml_type(wrong)}"
    if kind == "table" and isinstance(value, dict):
        wrong = next(
            ((k, v) for k, v in value.items() if isinstance(v, bool) or not isinstance(v, (int, float, str))), None
        )
        return None if wrong is None else f"{key}.{wrong[0]} must be a number, got {_toml_type(wrong[1])}"
    expected = {"string": (str,), "number": (int, float), "boolean": (bool,), "list": (list,), "table": (dict,)}[kind]
    if isinstance(value, expected) and not (kind == "number" and isinstance(value, bool)):
        return None
    hint = f" ({_TOML_HINTS[key]})" if key in _TOML_HINTS else ""
    return f"{key} must be {_TOML_KIND_PHRASES[kind]}{hint}, got {_toml_type(value)}"


def _toml_number_text(value: object) -> str:
    """A TOML number as plain digits (0.00001, not 1e-05); anything else as it is, to be checked later."""
    if isinstance(value, float) and math.isfinite(value):
        return format(Decimal(repr(value)), "f")
    return str(value)


def _read_toml(env: Mapping[str, str], problems: list[str]) -> dict[str, object]:
    """The TOML file's settings, type-checked; an unknown key (a typo) or a wrong type is a problem."""
    path = env.get(PREFIX + "CONFIG")
    if not path:
        return {}
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        problems.append(f"{PREFIX}CONFIG: file {path} does not exist; fix the path or unset the variable")
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        problems.append(f"{PREFIX}CONFIG: {path} is not valid TOML ({exc})")
        return {}
    except OSError as exc:
        problems.append(f"{PREFIX}CONFIG: cannot read {path} ({exc.strerror or exc.__class__.__name__})")
        return {}
    kinds = _toml_kinds()
    out: dict[str, object] = {}
    for key, value in ((k.lower(), v) for k, v in data.items()):
        if key not in kinds:
            close = difflib.get_close_matches(key, kinds, n=1)
            fix = f"did you mean {close[0]!r}?" if close else "remove it (the settings are listed in the README)"
            problems.append(f"{PREFIX}CONFIG: unknown setting {key!r} in {path}; {fix}")
        elif problem := _toml_problem(key, kinds[key], value):
            problems.append(f"{PREFIX}CONFIG: {problem}; fix it in {path}")
        elif isinstance(value, dict):
            out[key] = ",".join(f"{c}={_toml_number_text(r)}" for c, r in value.items())
        elif isinstance(value, list):
            out[key] = ",".join(value)
        elif value != "":  # an empty string means unset, as in the environment
            out[key] = value
    return out


def _merge_stored_secrets(raw: dict[str, object], home: Path, key: Secret | None, problems: list[str]) -> None:
    store = SecretStore(home, key)
    if not store.path.exists():
        return
    for name in ("gocardless_access_token", "sage_password", "gocardless_webhook_secrets"):
        if raw.get(name):
            continue  # the environment overrides the stored value (container secrets)
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


def _database_url(value: object, home: Path, problems: list[str]) -> str:
    if not value:
        return f"sqlite:///{(home / 'ops.sqlite').as_posix()}"
    url = str(value)
    scheme = urlparse(url).scheme
    if scheme.split("+")[0] not in ("sqlite", "postgresql"):
        problems.append(f"{env_name('database_url')}: {url!r} is not a sqlite:/// or postgresql:// URL")
    else:
        _port("database_url", url, problems)
    return url


def _port(name: str, url: str, problems: list[str]) -> None:
    """A URL's port, if it has one, is a number from 1 to 65535 (a bad one would fail much later, in a client)."""
    try:
        port = urlparse(url).port
    except ValueError:  # not ASCII digits, or out of range
        port = -1
    if port is not None and not 0 < port <= 65535:
        problems.append(f"{env_name(name)}: {url!r} has a port that is not a number from 1 to 65535")


def _url(name: str, value: str, problems: list[str]) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        problems.append(f"{env_name(name)}: {value!r} is not an http(s) URL; {_HELP.get(name, 'give a full URL')}")
    else:
        _port(name, value, problems)
    return value.rstrip("/") if name == "gocardless_api_url" else value


def _currency(name: str, value: str, problems: list[str]) -> str:
    if not (value.isascii() and CURRENCY.fullmatch(value.upper())):
        problems.append(f"{env_name(name)}: {value!r} is not a 3-letter ISO 4217 currency code, e.g. GBP")
    return value.upper()


def _decimal(value: object) -> Decimal | None:
    """A finite Decimal from a TOML number or from plain ASCII-digit text; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    text = str(value).strip()
    return Decimal(text) if DECIMAL_TEXT.fullmatch(text) else None


def _whole(value: object) -> Decimal | None:
    """A whole number from a TOML integer or from ASCII-digit text (as a Decimal, so a huge one stays cheap)."""
    if isinstance(value, (bool, float)):
        return None
    text = str(value).strip()
    return Decimal(text) if WHOLE_TEXT.fullmatch(text) else None


def _positive_int(name: str, value: object, problems: list[str], maximum: int = MAX_COUNT) -> int:
    number = _whole(value)
    if number is not None and 0 < number <= maximum:
        return int(number)
    problems.append(f"{env_name(name)}: {value!r} is not a whole number from 1 to {maximum} (digits 0-9)")
    return 1


def _positive_decimal(name: str, value: object, problems: list[str], maximum: Decimal = MAX_TIMEOUT_SECONDS) -> Decimal:
    number = _decimal(value)
    if number is not None and 0 < number <= maximum:
        return number
    problems.append(
        f"{env_name(name)}: {value!r} is not a positive number of seconds up to {maximum} (digits 0-9, e.g. 30 or 2.5)"
    )
    return Decimal(1)


def _bool(name: str, value: object, problems: list[str]) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    problems.append(f"{env_name(name)}: {value!r} is not true or false")
    return False


def _choice(
    name: str, raw: dict[str, object], allowed: tuple[str, ...], values: dict[str, object], problems: list[str]
) -> None:
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
        currency, _, rate = (part.strip() for part in pair.partition("="))
        number = _decimal(rate)
        if (
            not (currency.isascii() and CURRENCY.fullmatch(currency.upper()))
            or number is None
            or not (FX_RATE_MIN <= number <= FX_RATE_MAX)
        ):
            problems.append(
                f"{env_name('fx_rates')}: {pair!r} is not CUR=RATE with a rate from {FX_RATE_MIN} to "
                f"{FX_RATE_MAX} (digits 0-9), e.g. EUR=0.86"
            )
        elif currency.upper() in rates:
            problems.append(f"{env_name('fx_rates')}: {currency.upper()} is given twice; keep one rate for it")
        else:
            rates[currency.upper()] = number
    return rates
