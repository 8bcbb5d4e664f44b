"""`ml-connector config check`."""

from __future__ import annotations

from pathlib import Path

import click

from ..fileperms import exposed
from ..settings import SettingsError, env_name, load_settings

REQUIRED_FOR_PRODUCTION = (
    "sage_ebusiness_wsdl",
    "sage_agent_wsdl",
    "sage_username",
    "sage_password",
    "sage_company_code",
    "sage_home_currency",
    "sage_bank_code",
    "gocardless_access_token",
    "gocardless_webhook_secrets",
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
        raise SystemExit(1) from None
    for name, value in settings.masked().items():
        click.echo(f"{name} = {value}")
    _warn_about_open_data(settings.home)
    try:
        settings.require(*REQUIRED_FOR_PRODUCTION)
    except SettingsError as exc:
        click.echo("\nMissing settings:", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        raise SystemExit(1) from None
    click.echo("\nSettings are valid.")


def _warn_about_open_data(home: Path) -> None:
    """Data that other local users can reach: the start-up tightening could not close it (not our folder,
    a read-only mount), so say so, with the command that closes it."""
    found = exposed(home)
    if not found:
        return
    click.echo(f"\nWarning: {env_name('home')} holds data that other users on this machine can reach:", err=True)
    for path, mode in found:
        kind = "folder" if path.is_dir() else "file"
        click.echo(f"  - {path} ({kind}, mode {mode:04o})", err=True)
    click.echo(
        f"  Close it with `chmod -R go-rwx {home}`, or set {env_name('home')} to a folder of the service user's own.",
        err=True,
    )
