"""`ml-connector dev`: the stand-ins, the webhook receiver and `dg dev` together, for a newcomer.

One command gives the whole product on one machine: the Dagster UI (asset graph, runs, sensors,
schedules, checks, backfills) over live stand-ins for Sage 100 and GoCardless. The settings that point
the product at the stand-ins are written to `<home>/dev.env`, so another shell can use the CLI against
the same world (`set -a; . <home>/dev.env`), and `ml-connector dev step` advances the scenario.

Only loopback is used for the stand-ins (their control API has no auth); `--host` moves the Dagster UI.
`dev_dagster.py` prepares, starts and stops the `dg dev` process itself.
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import requests

from ..fileperms import private_folder, secure_home
from ..sandbox.scenario import ScenarioError, bundled
from .dev_dagster import (
    READY_TIMEOUT_SECONDS,
    child_environment,
    port_is_free,
    prepare_dagster_home,
    start_dagster,
    stop_process_group,
    ui_url,
    wait_until_ready,
)

DEFAULT_HOME = Path(".ml-connector-dev")
ENV_FILE = "dev.env"
STAND_IN_HOST = "127.0.0.1"
STEP_WAIT_SECONDS = 15.0


# --- the environment file ---------------------------------------------------------------------------------------


def write_env_file(path: Path, env: dict[str, str]) -> None:
    """KEY='value' lines that `set -a; . FILE` loads; 0600 because it holds the sandbox's credentials."""
    lines = [f"{name}={shlex.quote(value)}" for name, value in sorted(env.items())]
    private_folder(path.parent)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("# Written by `ml-connector dev`: load with  set -a; . " + str(path) + "; set +a\n")
        fh.write("\n".join(lines) + "\n")


def read_env_file(path: Path) -> dict[str, str]:
    """Parse what `write_env_file` wrote (comments and blank lines skipped)."""
    env: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, _, value = line.partition("=")
        parts = shlex.split(value) or [""]
        env[name.strip()] = parts[0]
    return env


# --- the command ------------------------------------------------------------------------------------------------


class _Terminated(Exception):
    """SIGTERM arrived: stop like on Ctrl-C."""


def _raise_terminated(_signum: int, _frame: Any) -> None:
    raise _Terminated()


@dataclass(frozen=True)
class DevOptions:
    scenario: Path
    home: Path
    host: str
    port: int


@click.group(invoke_without_command=True)
@click.option(
    "--scenario",
    "scenario_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Scenario folder (default: the bundled sample).",
)
@click.option(
    "--home",
    type=click.Path(file_okay=False, path_type=Path),
    default=DEFAULT_HOME,
    show_default=True,
    help="Folder for the sandbox's data, Dagster's instance and dev.env (delete it to start over).",
)
@click.option("--port", type=click.IntRange(1, 65535), default=3000, show_default=True, help="Port of the Dagster UI.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address the Dagster UI listens on.")
@click.pass_context
def dev(ctx: click.Context, scenario_dir: Path | None, home: Path, port: int, host: str) -> None:
    """Run the stand-ins, the webhook receiver and the Dagster UI (`dg dev`) together until Ctrl-C.

    Then open the UI, and advance the scenario from another shell with `ml-connector dev step`.
    """
    if ctx.invoked_subcommand is not None:
        return
    run_dev(DevOptions(scenario_dir or bundled(), home, host, port))


def run_dev(options: DevOptions) -> None:
    """Start everything, wait for Ctrl-C or SIGTERM (or dg dev exiting), stop everything."""
    from ..sandbox.stack import start_stack

    if not port_is_free(options.host, options.port):
        raise click.ClickException(
            f"port {options.port} on {options.host} is in use (another `dg dev`?); stop it or pass --port"
        )
    home = options.home.resolve()
    private_folder(home)
    secure_home(home)  # a dev home from an older version: close it before anything is written
    try:
        stack = start_stack(options.scenario, home, STAND_IN_HOST)
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from None
    # Our own handlers, whatever was inherited (a shell's background job starts with SIGINT ignored, and
    # dg dev's processes would inherit that too): Ctrl-C and SIGTERM both stop everything.
    previous = {
        sig: signal.signal(sig, handler)
        for sig, handler in ((signal.SIGINT, signal.default_int_handler), (signal.SIGTERM, _raise_terminated))
    }
    process: subprocess.Popen[bytes] | None = None
    try:
        dagster_home, workspace = prepare_dagster_home(home)
        env = child_environment(stack.env, dagster_home)
        write_env_file(home / ENV_FILE, {**stack.env, "DAGSTER_HOME": str(dagster_home)})
        url = ui_url(options.host, options.port)
        click.echo(f"Starting Dagster (dg dev) at {url} ...", err=True)
        process = start_dagster(workspace, options.host, options.port, env, dagster_home)
        if not wait_until_ready(url, process):
            raise click.ClickException(_not_ready_message(process, url))
        click.echo(banner(stack, url, home))
        _wait_for_exit(process)
    except (KeyboardInterrupt, _Terminated):
        click.echo("\nStopping Dagster and the stand-ins ...", err=True)
    finally:
        # Stopping is bounded (about half a minute at worst); a second Ctrl-C must not cut it short and
        # leave a stand-in or a Dagster process behind.
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        if process is not None:
            stop_process_group(process)
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    click.echo("Stopped.", err=True)


def _wait_for_exit(process: subprocess.Popen[bytes]) -> None:
    """Block until Ctrl-C/SIGTERM (raised out of here) or until dg dev exits on its own."""
    code = process.wait()
    raise click.ClickException(f"dg dev exited on its own (exit code {code}); its output above says why")


def _not_ready_message(process: subprocess.Popen[bytes], url: str) -> str:
    if process.poll() is not None:
        return f"dg dev exited (code {process.returncode}) before its UI answered; its output above says why"
    return f"the Dagster UI did not answer at {url}/server_info within {READY_TIMEOUT_SECONDS:.0f}s"


def banner(stack: Any, url: str, home: Path) -> str:
    """What a newcomer needs: where the UI is, what runs where, how to advance the scenario."""
    gc = stack.gocardless
    env_file = home / ENV_FILE
    return "\n".join(
        [
            "",
            f"Dagster UI:            {url}   (assets, runs, sensors, schedules, checks, backfills)",
            f"Scenario:              {stack.scenario.root} ({gc.world.total_steps} steps, "
            f"now at step {gc.world.step_index})",
            f"GoCardless stand-in:   {gc.url}   (status: {gc.url}/_sandbox/status)",
            f"Sage eBusiness WS:     {stack.sage.ebusiness_wsdl}",
            f"Sage agent:            {stack.sage.agent_wsdl}",
            f"Webhook receiver:      {stack.webhook_url}",
            f"Settings for a shell:  set -a; . {env_file}; set +a",
            "",
            f"Advance the scenario:  ml-connector dev step --home {shlex.quote(str(home))}",
            "  (each step sends its webhooks; the inbox sensor launches gocardless_inbox_job within seconds)",
            "Ctrl-C stops everything.",
            "",
        ]
    )


# --- stepping the scenario of a running `dev` -------------------------------------------------------------------


def control_url(url: str | None, home: Path) -> str:
    """The GoCardless stand-in's base URL: given, or read from `<home>/dev.env`."""
    if url:
        return url.rstrip("/")
    env_file = home / ENV_FILE
    if not env_file.is_file():
        raise click.ClickException(
            f"{env_file} does not exist: start `ml-connector dev --home {home}` first, "
            "or pass --url of the GoCardless stand-in"
        )
    api = read_env_file(env_file).get("ML_CONNECTOR_GOCARDLESS_API_URL")
    if not api:
        raise click.ClickException(f"{env_file} has no ML_CONNECTOR_GOCARDLESS_API_URL; restart `ml-connector dev`")
    return api.rstrip("/")


def _control(method: str, url: str, path: str, **kwargs: Any) -> dict[str, Any]:
    """Call the stand-in's control API; a stopped `dev` becomes a clear message, not a traceback."""
    try:
        response = requests.request(method, url + "/_sandbox" + path, timeout=STEP_WAIT_SECONDS + 10, **kwargs)
        response.raise_for_status()
        answer = response.json()
        if not isinstance(answer, dict):
            raise ValueError(f"not a JSON object: {str(answer)[:80]}")
        return answer
    except requests.ConnectionError:
        raise click.ClickException(
            f"nothing answers at {url}: is `ml-connector dev` running? (its dev.env may be from an earlier run)"
        ) from None
    except (requests.RequestException, ValueError) as exc:
        raise click.ClickException(f"the GoCardless stand-in at {url} answered badly: {exc}") from None


def _event_counts(events: list[dict[str, Any]]) -> Iterator[str]:
    counts: dict[str, int] = {}
    for event in events:
        key = f"{event.get('resource_type')}.{event.get('action')}"
        counts[key] = counts.get(key, 0) + 1
    return (f"{name} x{n}" for name, n in sorted(counts.items()))


_URL_OPTION = click.option(
    "--url", default=None, help="The GoCardless stand-in's URL (default: read from <home>/dev.env)."
)
_HOME_OPTION = click.option(
    "--home",
    "step_home",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help=f"The running `dev`'s --home (default: the one given to `dev`, else {DEFAULT_HOME}).",
)


def _home_of(ctx: click.Context, step_home: Path | None) -> Path:
    """--home of the step or status command, else the one given to `dev` (its --home, or the default)."""
    if step_home is not None:
        return step_home
    home = ctx.parent.params.get("home") if ctx.parent is not None else None
    return home if isinstance(home, Path) else DEFAULT_HOME


@dev.command()
@_URL_OPTION
@_HOME_OPTION
@click.option("--json", "as_json", is_flag=True, help="Print the stand-in's answer as JSON.")
@click.pass_context
def step(ctx: click.Context, url: str | None, step_home: Path | None, as_json: bool) -> None:
    """Advance the running scenario one step: its changes in Sage, then its events and their webhooks."""
    base = control_url(url, _home_of(ctx, step_home))
    answer = _control("POST", base, "/step", params={"wait": STEP_WAIT_SECONDS})
    if as_json:
        click.echo(json.dumps(answer, indent=2))
        return
    events = answer.get("events") or []
    changes = answer.get("sage_changes") or []
    if not events and not changes and answer.get("finished"):
        click.echo(f"The scenario is finished ({answer.get('total_steps')} steps played); nothing to do.")
        return
    settled = "delivered" if answer.get("deliveries_settled") else "still being delivered (the receiver may be slow)"
    click.echo(
        f"Step {answer.get('step')}/{answer.get('total_steps')}: {len(events)} events "
        f"({', '.join(_event_counts(events)) or 'none'}); webhooks {settled}."
    )
    for change in changes:
        click.echo(f"  Sage: {change.get('change')}: {change.get('outcome')} ({change.get('message')})")


@dev.command()
@_URL_OPTION
@_HOME_OPTION
@click.pass_context
def status(ctx: click.Context, url: str | None, step_home: Path | None) -> None:
    """Where the running scenario is: step, total steps, webhook deliveries."""
    answer = _control("GET", control_url(url, _home_of(ctx, step_home)), "/status")
    hooks = answer.get("webhooks") or {}
    click.echo(
        f"Step {answer.get('step')}/{answer.get('total_steps')}"
        f"{' (finished)' if answer.get('finished') else ''}; {answer.get('events')} events; "
        f"webhooks: {hooks.get('webhooks_sent', 0)} sent, {hooks.get('webhooks_delivered', 0)} delivered, "
        f"{hooks.get('webhooks_failed', 0)} failed, {hooks.get('pending', 0)} pending"
    )
