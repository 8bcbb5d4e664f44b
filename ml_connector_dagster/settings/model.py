"""The settings object and the parts of it each component asks for.

`Settings` holds every setting, validated (see `load.py`); the ones a deployment may leave unset are
optional. A component asks for the part it needs as a sub-object whose fields cannot be None:
`sage_agent()`, `sage_ebusiness()`, `gocardless()`, `webhooks()`, `reconciliation()`, each raising
SettingsError naming every missing variable and how to set it. Reprs mask URL credentials, and secrets
mask themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import Field, dataclass, field, fields
from decimal import Decimal
from pathlib import Path
from typing import Any, ClassVar

from ..secrets import Secret, mask_credentials
from .names import HELP, env_name

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
    "payments.resubmission_requested",
    "payments.surcharge_fee_debited",
    "refunds.created",
    "refunds.paid",
    "refunds.failed",
    "refunds.refund_settled",
    "refunds.funds_returned",
    "payouts.paid",
    "payouts.fx_rate_confirmed",
    "payouts.tax_exchange_rates_confirmed",
)
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
    webhook_freshness_hours: int = 24  # the webhooks_arriving check warns when none arrived for longer than this
    go_live_date: str | None = None  # YYYY-MM-DD: gocardless/payments' first daily partition (settings/go_live.py)

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
        return [f"{env_name(n)}: not set; {HELP.get(n, 'set it')}" for n in names if not getattr(self, n)]

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
