"""`ml-connector sandbox`: run the local stand-ins for the outside systems until stopped.

`start_stand_ins()` starts every stand-in and returns their handles; each stand-in adds itself there
and the command prints what each returns. The Sage stand-ins start first: each step of the GoCardless
stand-in begins with that step's changes in the simulated Sage company (sandbox/sage_changes.py), and its
control API takes changes on demand too (`POST /_sandbox/sage/changes`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..sandbox.scenario import Scenario, ScenarioError, bundled, load_scenario
from ..settings import home_folder

if TYPE_CHECKING:
    from ..sandbox.sage_services import SageStandIns


@dataclass
class StandInHandle:
    """A running stand-in as the command shows it: its URL, what to configure, how to stop it."""

    name: str
    url: str
    settings: dict[str, str]
    notes: list[str] = field(default_factory=list)
    stop: Callable[[], None] = lambda: None
    handle: object = None


@dataclass
class SandboxOptions:
    host: str = "127.0.0.1"
    gocardless_port: int = 8010
    gocardless_token: str = "sandbox_token"
    webhook_url: str | None = None
    webhook_secret: str = "sandbox_webhook_secret"
    ebusiness_port: int = 8011
    agent_port: int = 8012
    data_dir: Path = Path("./.ml-connector/sandbox")


def start_stand_ins(scenario: Scenario, options: SandboxOptions) -> list[StandInHandle]:
    """Start every stand-in on the scenario; on a failure, stop those already started and re-raise."""
    started: list[StandInHandle] = []
    try:
        sage, handles = _start_sage(scenario, options)
        started.extend(handles)
        started.insert(0, _start_gocardless(scenario, options, sage))
    except Exception:
        for handle in started:
            handle.stop()
        raise
    return started


def _start_gocardless(scenario: Scenario, options: SandboxOptions, sage: SageStandIns) -> StandInHandle:
    from ..sandbox.gocardless_api import CONTROL_PREFIX, start_gocardless_stand_in
    from ..sandbox.sage_changes import CHANGES_PATH, SageChanges

    people = SageChanges(sage.company, scenario)
    gc = start_gocardless_stand_in(
        scenario,
        options.host,
        options.gocardless_port,
        options.gocardless_token,
        options.webhook_url,
        options.webhook_secret,
        before_step=people.play_step,
        control_routes=people.routes(),
    )
    notes = [
        f"webhooks: signed and sent to {options.webhook_url}"
        if options.webhook_url
        else "webhooks: not sent (pass --webhook-url http://127.0.0.1:8000/webhooks/gocardless)",
        f"{gc.world.total_steps} steps to play (each one's Sage changes, then its GoCardless actions): "
        f"curl -X POST {gc.url}{CONTROL_PREFIX}/step",
        f"status: curl {gc.url}{CONTROL_PREFIX}/status",
        f"people's work in Sage now: curl -X POST {gc.url}{CHANGES_PATH} "
        """-d '{"changes": [{"action": "post_journal"}]}'""",
    ]
    return StandInHandle("GoCardless API", gc.url, gc.credentials(), notes, gc.stop, gc)


def _start_sage(scenario: Scenario, options: SandboxOptions) -> tuple[SageStandIns, list[StandInHandle]]:
    from ..sandbox.sage_services import start_sage_stand_ins

    sage = start_sage_stand_ins(scenario, options.host, options.ebusiness_port, options.agent_port, options.data_dir)
    env = sage.settings_env()
    common = {k: v for k, v in env.items() if "WSDL" not in k}
    ebusiness = StandInHandle(
        "Sage 100 eBusiness Web Services",
        sage.ebusiness_wsdl,
        {"ML_CONNECTOR_SAGE_EBUSINESS_WSDL": sage.ebusiness_wsdl},
        [
            f"company {sage.company_code}: simulated in {options.data_dir}",
            f"Sage's security and failures: curl {sage.ebusiness.url}/_sandbox/security (and /_sandbox/faults)",
        ],
        lambda: None,
        sage,
    )
    agent = StandInHandle(
        "Sage 100 agent (simulated backend)",
        sage.agent_wsdl,
        {"ML_CONNECTOR_SAGE_AGENT_WSDL": sage.agent_wsdl, **common},
        [],
        sage.stop,
        sage,
    )
    return sage, [ebusiness, agent]


@click.command()
@click.option(
    "--scenario",
    "scenario_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Scenario folder (default: the bundled sample).",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--gocardless-port",
    type=click.IntRange(0, 65535),
    default=8010,
    show_default=True,
    help="Port of the GoCardless stand-in (0 picks a free one).",
)
@click.option(
    "--gocardless-token",
    default="sandbox_token",
    show_default=True,
    help="The access token the GoCardless stand-in accepts.",
)
@click.option("--webhook-url", default=None, help="Where to deliver webhooks (the receiver's /webhooks/gocardless).")
@click.option(
    "--webhook-secret", default="sandbox_webhook_secret", show_default=True, help="The secret webhooks are signed with."
)
@click.option(
    "--ebusiness-port",
    type=click.IntRange(0, 65535),
    default=8011,
    show_default=True,
    help="Port of the Sage eBusiness Web Services stand-in (0 picks a free one).",
)
@click.option(
    "--agent-port",
    type=click.IntRange(0, 65535),
    default=8012,
    show_default=True,
    help="Port of the Sage agent (simulated company) (0 picks a free one).",
)
def sandbox(
    scenario_dir: Path | None,
    host: str,
    gocardless_port: int,
    gocardless_token: str,
    webhook_url: str | None,
    webhook_secret: str,
    ebusiness_port: int,
    agent_port: int,
) -> None:
    """Run local stand-ins for GoCardless and Sage 100 (eBusiness Web Services, agent) until Ctrl-C.

    The simulated Sage company lives under ML_CONNECTOR_HOME/sandbox and survives restarts."""
    try:
        scenario = load_scenario(scenario_dir or bundled())
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from None
    home = home_folder()
    options = SandboxOptions(
        host,
        gocardless_port,
        gocardless_token,
        webhook_url,
        webhook_secret,
        ebusiness_port,
        agent_port,
        home / "sandbox",
    )
    handles = start_stand_ins(scenario, options)
    click.echo(f"Scenario: {scenario.root} ({scenario.company.company_code} {scenario.company.company_name})")
    for handle in handles:
        click.echo(f"\n{handle.name}: {handle.url}")
        for name, value in handle.settings.items():
            click.echo(f"  {name}={value}")
        for note in handle.notes:
            click.echo(f"  {note}")
    click.echo("\nSandbox running; Ctrl-C stops it.")
    _wait_for_interrupt()
    for handle in reversed(handles):
        handle.stop()
    click.echo("Sandbox stopped.")


def _wait_for_interrupt() -> None:
    stopped = threading.Event()
    try:
        while not stopped.wait(3600):
            pass
    except KeyboardInterrupt:
        pass
