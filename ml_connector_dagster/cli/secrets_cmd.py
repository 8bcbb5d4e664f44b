"""`ml-connector secrets set|list|generate-key`: secrets encrypted at rest under ML_CONNECTOR_HOME."""

from __future__ import annotations

import os
import sys

import click

from ..secrets import SECRET_NAMES, Secret, SecretsError, SecretStore, generate_key
from ..settings import PREFIX, home_folder


def _store() -> SecretStore:
    key = os.environ.get(PREFIX + "SECRET_KEY")
    return SecretStore(home_folder(), Secret(key) if key else None)


@click.group()
def secrets() -> None:
    """Store secrets encrypted under ML_CONNECTOR_HOME (key: ML_CONNECTOR_SECRET_KEY)."""


@secrets.command("set")
@click.argument("name", type=click.Choice(SECRET_NAMES))
def set_secret(name: str) -> None:
    """Store NAME, reading its value from standard input (never from the command line)."""
    if sys.stdin.isatty():
        value = click.prompt(f"{name}", hide_input=True, confirmation_prompt=True)
    else:
        value = sys.stdin.read().strip("\r\n")
    try:
        _store().set(name, value)
    except SecretsError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"stored {name} (encrypted)")


@secrets.command("list")
def list_secrets() -> None:
    """Show the names of stored secrets (never their values)."""
    try:
        names = _store().names()
    except SecretsError as exc:
        raise click.ClickException(str(exc)) from None
    for name in names:
        click.echo(name)
    if not names:
        click.echo("(no stored secrets)")


@secrets.command("generate-key")
def generate_key_cmd() -> None:
    """Print a new Fernet key for ML_CONNECTOR_SECRET_KEY."""
    click.echo(generate_key())
