"""`ml-connector config check`."""

from __future__ import annotations

import click

from ..settings import SettingsError, load_settings

REQUIRED_FOR_PRODUCTION = (
    "sage_ebusiness_wsdl", "sage_agent_wsdl", "sage_username", "sage_password", "sage_company_code",
    "sage_home_currency", "sage_bank_code", "gocardless_access_token", "gocardless_webhook_secrets",
)


@click.group()
def config() -> None:
    """Inspect the effective settings."""


@config.command("check")
def check() -> None:
    """Print the effective settings (secrets masked); exit non-zero with the reasons if they are invalid."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        click.echo("Settings are invalid:", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise SystemExit(1)
    for name, value in settings.masked().items():
        click.echo(f"{name} = {value}")
    try:
        settings.require(*REQUIRED_FOR_PRODUCTION)
    except SettingsError as exc:
        click.echo("\nMissing settings:", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise SystemExit(1)
    click.echo("\nSettings are valid.")
