"""`ml-connector ping`: is every real system reachable and accepting our credentials, with these settings?

The first thing an operator runs after configuring the connector, and the first thing support asks for.
Each check calls the system the way the product will (same clients, same settings) but only reads, and
prints one line: `ok`, `warn` or `FAIL`, with what was found or what to fix. Secrets are never printed:
every line is also scrubbed of the configured secret values, whatever a remote system echoes back, and of
any credential inside a URL.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path

import click

from ..secrets import MASK, Secret, mask_credentials
from ..settings import SettingsError, env_name, home_folder, load_settings
from .common import printable
from .ping_checks import (
    FAIL,
    SKIP,
    Check,
    check_agent,
    check_ebusiness,
    check_gocardless,
    check_sage_logon,
    check_secret_key,
    check_webhook_secrets,
)


def _key_from_environment() -> tuple[Path, Secret | None]:
    """Home and key as the settings would read them, for when the settings themselves do not load."""
    key = os.environ.get(env_name("secret_key"))
    return home_folder(), Secret(key) if key else None


def run_checks() -> list[Check]:
    """Every check in order; a settings problem that stops the others is reported, not raised."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        home, key = _key_from_environment()
        checks = [Check("settings", "Settings", FAIL, problem) for problem in exc.problems]
        skipped = [
            Check(name, title, SKIP, "not checked: the settings do not load (see above)")
            for name, title in (
                ("sage_ebusiness", "Sage eBusiness Web Services"),
                ("sage_logon", "Sage logon"),
                ("sage_agent", "Sage agent"),
                ("gocardless", "GoCardless API"),
                ("webhook_secrets", "GoCardless webhook secret"),
            )
        ]
        return checks + skipped + [check_secret_key(home, key)]
    ebusiness = check_ebusiness(settings)
    return [
        ebusiness,
        check_sage_logon(settings, ebusiness),
        check_agent(settings),
        check_gocardless(settings),
        check_webhook_secrets(settings),
        check_secret_key(settings.home, settings.secret_key),
    ]


def configured_secrets() -> list[str]:
    """Every secret value the configuration holds, for scrubbing the output."""
    values = [os.environ.get(env_name(n), "") for n in ("sage_password", "gocardless_access_token", "secret_key")]
    values += os.environ.get(env_name("gocardless_webhook_secrets"), "").split(",")
    try:
        settings = load_settings()
    except SettingsError:
        return [v.strip() for v in values if len(v.strip()) >= 4]
    found = [
        settings.sage_password,
        settings.gocardless_access_token,
        settings.secret_key,
        *settings.gocardless_webhook_secrets,
    ]
    values += [s.reveal() for s in found if s]
    return sorted({v.strip() for v in values if len(v.strip()) >= 4}, key=len, reverse=True)


def scrub(text: str, secrets: list[str]) -> str:
    """Mask URL credentials, then every configured secret value (a remote system may echo one back)."""
    text = mask_credentials(text)
    for secret in secrets:
        text = text.replace(secret, MASK)
    return text


@contextmanager
def _quiet_client_logs() -> Iterator[None]:
    """The clients log each retry; ping reports the outcome on its own line instead."""
    logger = logging.getLogger("ml_connector_dagster")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def format_line(check: Check, width: int) -> str:
    return f"{check.status:<4}  {check.title:<{width}}  {printable(check.detail)}"


@click.command()
@click.option("--json", "as_json", is_flag=True, help='Print {"ok": ..., "checks": [...]} instead of lines.')
def ping(as_json: bool) -> None:
    """Check each real system with the configured settings: Sage eBusiness Web Services (contract, then
    logon), the agent, GoCardless (GET /creditors), the webhook secret and the secrets key.

    One line per check, `ok`/`warn`/`FAIL` with what to fix; exits 1 if any check fails.
    """
    with _quiet_client_logs():
        checks = run_checks()
    secrets = configured_secrets()
    checks = [Check(c.name, c.title, c.status, scrub(c.detail, secrets)) for c in checks]
    failed = any(c.status == FAIL for c in checks)
    if as_json:
        click.echo(json.dumps({"ok": not failed, "checks": [asdict(c) for c in checks]}, indent=2))
    else:
        width = max(len(c.title) for c in checks)
        for check in checks:
            click.echo(format_line(check, width))
    if failed:
        raise SystemExit(1)


__all__ = ["Check", "ping", "run_checks"]
