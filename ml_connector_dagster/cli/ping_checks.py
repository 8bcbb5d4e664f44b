"""The checks `ml-connector ping` runs: one per outside system, each a `Check` line, never an exception.

Each check calls the system the way the product will (same clients, same settings) but only reads, with a
short timeout and few retries (an operator is waiting), and says what was found or which setting to fix.
`ping_cmd.py` runs them in order, scrubs secrets from what they say and prints them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TypeVar

from cryptography.fernet import Fernet

from ..gocardless.client import (
    GoCardlessAuthError,
    GoCardlessClient,
    GoCardlessError,
    GoCardlessUnavailable,
)
from ..gocardless.client import RetryPolicy as GoCardlessRetry
from ..sage100 import (
    AgentClient,
    EBusinessClient,
    RetryPolicy,
    SageCompanyError,
    SageError,
    SageLogonError,
    SageNoAccess,
    SageNotFound,
    SageServerError,
    SageUnavailable,
)
from ..sage100.clients import SoapClient
from ..secrets import Secret, SecretsError, SecretStore
from ..settings import SageSettings, Settings, SettingsError, env_name

OK, WARN, FAIL, SKIP = "ok", "warn", "FAIL", "skip"
Client = TypeVar("Client", bound=SoapClient)
# GetCustomer on a key that almost certainly does not exist: CI_NoKey proves the logon was accepted
# (Sage checks logon and company before it looks for the record), and nothing is read that matters.
PROBE_DIVISION, PROBE_CUSTOMER = "01", "ZZMLPING"
PING_TIMEOUT_SECONDS = Decimal(10)
SAGE_RETRY = RetryPolicy(attempts=2, base_delay=0.2, max_delay=0.5)
GOCARDLESS_RETRY = GoCardlessRetry(
    max_attempts=2,
    base_delay_seconds=0.2,
    max_delay_seconds=0.5,
    max_total_seconds=20,
    connect_timeout_seconds=5,
    read_timeout_seconds=10,
)


@dataclass(frozen=True)
class Check:
    """One line of the report: which system, how it went, and what was found or what to fix."""

    name: str
    title: str
    status: str
    detail: str


# --- Sage 100 ------------------------------------------------------------------------------------------------


def _sage_client(cls: type[Client], sage: SageSettings) -> Client:
    """A client with ping's short timeout and retries (an operator is waiting), from the settings."""
    timeout = min(sage.timeout_seconds, PING_TIMEOUT_SECONDS)
    return cls.from_settings(dataclasses.replace(sage, timeout_seconds=timeout), retry=SAGE_RETRY)


def _missing(settings: Settings, *names: str) -> str:
    """The settings.require() message for the unset ones of `names` ("" when all are set)."""
    try:
        settings.require(*names)
    except SettingsError as exc:
        return "; ".join(exc.problems)
    return ""


def check_ebusiness(settings: Settings) -> Check:
    """GetContractInformation needs no logon: it proves the WSDL URL, TLS and the service itself."""
    title = "Sage eBusiness Web Services"
    wsdl = settings.sage_ebusiness_wsdl
    if not wsdl:
        return Check("sage_ebusiness", title, FAIL, _missing(settings, "sage_ebusiness_wsdl"))
    no_logon = SageSettings(wsdl, "", Secret(""), "", settings.sage_ca_bundle, settings.sage_timeout_seconds)
    try:
        info = _sage_client(EBusinessClient, no_logon).get_contract_information()
    except SageError as exc:
        return Check(
            "sage_ebusiness",
            title,
            FAIL,
            f"{exc.message}; check {env_name('sage_ebusiness_wsdl')} and that eBusiness Web Services "
            "is running on the Sage server",
        )
    return Check(
        "sage_ebusiness",
        title,
        OK,
        f"contract version {info.contract_version} ({info.assembly_version}) at {_where(wsdl)}",
    )


def check_sage_logon(settings: Settings, ebusiness: Check) -> Check:
    """GetCustomer on a key that does not exist: 'not found' means Sage accepted user, password and company."""
    title = "Sage logon"
    if ebusiness.status == FAIL:
        return Check("sage_logon", title, SKIP, "not checked: eBusiness Web Services did not answer (see above)")
    try:
        sage = settings.sage_ebusiness()
    except SettingsError as exc:
        return Check("sage_logon", title, FAIL, "; ".join(exc.problems))
    who = f"user {sage.username!r}, company {sage.company_code}"
    try:
        _sage_client(EBusinessClient, sage).get_customer(PROBE_DIVISION, PROBE_CUSTOMER)
    except SageNotFound:
        return Check("sage_logon", title, OK, f"logon accepted ({who})")
    except SageLogonError as exc:  # Sage answers the same for a wrong password and for web services turned off
        return Check(
            "sage_logon",
            title,
            FAIL,
            f"Sage refused the logon ({who}): {exc.message}; check {env_name('sage_username')} and "
            f"{env_name('sage_password')}, and that web services are enabled in Sage 100 for the system, for "
            f"company {sage.company_code} and for user {sage.username!r} (any of the three off gives this answer)",
        )
    except SageError as exc:
        return _sage_failure("sage_logon", title, exc, who)
    return Check("sage_logon", title, OK, f"logon accepted ({who})")


def check_agent(settings: Settings) -> Check:
    """Ping: the agent answers, accepts the logon and company, and says which backend it runs."""
    title = "Sage agent"
    try:
        sage = settings.sage_agent()
    except SettingsError as exc:
        return Check("sage_agent", title, FAIL, "; ".join(exc.problems))
    try:
        info = _sage_client(AgentClient, sage).ping()
    except SageUnavailable as exc:
        return Check(
            "sage_agent",
            title,
            FAIL,
            f"{exc.message}; check {env_name('sage_agent_wsdl')} and that the agent is running on the "
            "Sage server (`ml-connector agent`)",
        )
    except SageError as exc:
        return _sage_failure("sage_agent", title, exc, f"user {sage.username!r}, company {sage.company_code}")
    return Check(
        "sage_agent",
        title,
        OK,
        f"version {info.version}, company {info.company_code} ({info.company_name}), backend {info.backend}",
    )


def _sage_failure(name: str, title: str, exc: SageError, who: str) -> Check:
    """A Sage fault as a line that says which setting to fix."""
    if isinstance(exc, SageLogonError):
        return Check(
            name,
            title,
            FAIL,
            f"Sage refused the logon ({who}): {exc.message}; check "
            f"{env_name('sage_username')} and {env_name('sage_password')}, and that "
            "the user is allowed to use web services in Sage 100",
        )
    if isinstance(exc, SageCompanyError):
        return Check(
            name,
            title,
            FAIL,
            f"Sage refused the company code ({who}): {exc.message}; set "
            f"{env_name('sage_company_code')} to the 3-character code from Company "
            "Maintenance, and enable that company for web services",
        )
    if isinstance(exc, SageNoAccess):
        return Check(name, title, FAIL, f"logon accepted ({who}), but {exc.message}")
    if isinstance(exc, SageServerError):
        return Check(name, title, FAIL, exc.message)
    if isinstance(exc, SageUnavailable):
        return Check(name, title, FAIL, f"{exc.message}; check that the Sage service is running")
    return Check(name, title, WARN, f"logon not refused, but Sage answered a fault: {exc.code} {exc.message}".strip())


def _where(wsdl: str) -> str:
    return wsdl.split("?", 1)[0]


# --- GoCardless ----------------------------------------------------------------------------------------------


def check_gocardless(settings: Settings) -> Check:
    """GET /creditors: the token is valid for this API URL (live or sandbox) and has an account behind it."""
    title = "GoCardless API"
    try:
        gocardless = settings.gocardless()
    except SettingsError as exc:
        return Check("gocardless", title, FAIL, "; ".join(exc.problems))
    client = GoCardlessClient.from_settings(gocardless, GOCARDLESS_RETRY)
    try:
        creditors = client.get_creditors()
    except GoCardlessAuthError as exc:
        return Check(
            "gocardless",
            title,
            FAIL,
            f"GoCardless refused the access token ({exc}); create a read-write access token in the "
            f"GoCardless dashboard (Developers) and set {env_name('gocardless_access_token')}; a sandbox "
            f"token works only with {env_name('gocardless_api_url')}=sandbox",
        )
    except GoCardlessUnavailable as exc:
        return Check(
            "gocardless",
            title,
            FAIL,
            f"{exc}; check {env_name('gocardless_api_url')} ({settings.gocardless_api_url}) and the network or proxy",
        )
    except GoCardlessError as exc:
        return Check("gocardless", title, FAIL, f"{exc}; check {env_name('gocardless_api_url')}")
    finally:
        client.close()
    if not creditors:
        return Check("gocardless", title, WARN, "token accepted, but the account has no creditor yet")
    names = ", ".join(f"{c.get('id')} ({c.get('name')})" for c in creditors[:3])
    return Check("gocardless", title, OK, f"creditor {names} at {settings.gocardless_api_url}")


def check_webhook_secrets(settings: Settings) -> Check:
    """Without a secret the receiver refuses every webhook; whitespace inside one never matches a signature."""
    title = "GoCardless webhook secret"
    name = env_name("gocardless_webhook_secrets")
    secrets = settings.gocardless_webhook_secrets
    if not secrets:
        return Check(
            "webhook_secrets",
            title,
            FAIL,
            f"{name} is not set, so the receiver refuses every webhook; copy the secret of your webhook "
            "endpoint from the GoCardless dashboard (Developers > Webhook endpoints) and export it or "
            "store it with `ml-connector secrets set gocardless_webhook_secrets`",
        )
    spaced = [str(i) for i, s in enumerate(secrets, 1) if any(ch.isspace() for ch in s.reveal())]
    if spaced:
        return Check(
            "webhook_secrets",
            title,
            FAIL,
            f"secret number {', '.join(spaced)} in {name} contains whitespace, so no signature will "
            "match; copy it again from the GoCardless dashboard",
        )
    if len(secrets) == 1:
        return Check(
            "webhook_secrets",
            title,
            WARN,
            f"1 secret set; to rotate it without refusing webhooks, set the old and the new one "
            f"comma-separated in {name} until GoCardless signs with the new one only",
        )
    return Check("webhook_secrets", title, OK, f"{len(secrets)} secrets set (webhooks signed with any are accepted)")


# --- the secrets key -----------------------------------------------------------------------------------------


def check_secret_key(home: Path, key: Secret | None) -> Check:
    """The key is set, is a Fernet key, and decrypts every stored secret (not only those the settings use)."""
    title = "Secrets key"
    name = env_name("secret_key")
    if key is None or not key.reveal():
        return Check(
            "secret_key",
            title,
            FAIL,
            f"{name} is not set; create one with `ml-connector secrets "
            "generate-key`, export it, and keep it safe (stored secrets need it)",
        )
    store = SecretStore(home, key)
    try:
        names = store.names()
        for stored in names:
            store.get(stored)
    except SecretsError as exc:
        return Check("secret_key", title, FAIL, str(exc))
    if not names:
        if not _is_fernet_key(key):
            return Check(
                "secret_key",
                title,
                FAIL,
                f"{name} is not a valid key (32 url-safe base64-encoded "
                "bytes); create one with `ml-connector secrets generate-key`",
            )
        return Check("secret_key", title, OK, f"set; no secrets stored in {store.path}")
    return Check("secret_key", title, OK, f"decrypts all {len(names)} stored secrets ({', '.join(names)})")


def _is_fernet_key(key: Secret) -> bool:
    """With nothing stored there is nothing to decrypt; the key must still be usable for the first secret."""
    try:
        Fernet(key.reveal().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        return False
    return True
