"""`ml-connector agent`: run the agent's SOAP service on the Sage server (BOI) or over a simulated company;
`ml-connector agent doctor` (agent_doctor_cmd.py) checks a Sage server before it goes live."""

from __future__ import annotations

import importlib.util
import ipaddress
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..agent import boi_com
from ..agent.backends import Backend, BOIBackend
from ..agent.boi_entry import OptionSettings
from ..agent.boi_names import BOINames, load_names
from ..agent.ledger import AgentLedger
from ..agent.logons import LogonPolicy
from ..agent.service import DEFAULT_PAGE_SIZE, PATH, agent_app
from ..httpserve import ServerLimits, run_forever
from .common import settings_or_exit

if TYPE_CHECKING:
    from ..sandbox.sage_company import SageCompany
    from ..sandbox.scenario import Scenario

DEFAULT_PORT = 8090


BACKEND_HELP = "boi: Sage 100 on this Windows server through ProvideX.Script; simulated: a SQLite company."
BOI_NAMES_HELP = (
    'boi: a JSON or TOML file of BOINames overrides (e.g. receipts_bus = "AR_CashReceipts_bus"), for a name '
    "this Sage installation spells otherwise; `ml-connector agent doctor` says which to write."
)


def boi_names_or_exit(path: Path | None) -> BOINames:
    """BOINames with the overrides of --boi-names, or a one-line error naming what is wrong in the file."""
    if path is None:
        return BOINames()
    try:
        return load_names(path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None


def entry_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """--require-deposit-amount and --batch-entry: the AR options, for when Sage's cannot be read."""
    func = click.option(
        "--batch-entry/--no-batch-entry",
        default=None,
        help="boi: whether the company uses batch entry for cash receipts (default: read Sage's AR options).",
    )(func)
    return click.option(
        "--require-deposit-amount/--no-require-deposit-amount",
        default=None,
        help="boi: whether the company requires a deposit amount (default: read Sage's AR options).",
    )(func)


@click.group(invoke_without_command=True)
@click.option("--backend", type=click.Choice(["boi", "simulated"]), help=BACKEND_HELP + " Required.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(1, 65535), default=DEFAULT_PORT, show_default=True)
@click.option("--tls-cert", type=click.Path(exists=True, dir_okay=False), help="PEM certificate: serve HTTPS.")
@click.option("--tls-key", type=click.Path(exists=True, dir_okay=False), help="PEM private key of --tls-cert.")
@click.option(
    "--company-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="simulated: folder holding sage_company.sqlite.",
)
@click.option(
    "--scenario",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="simulated: scenario folder loaded into the company database if it does not exist yet.",
)
@click.option("--mas90-home", help=r"boi: Sage 100's MAS90\Home folder, e.g. C:\Sage\Sage 100\MAS90\Home.")
@click.option("--boi-names", type=click.Path(exists=True, dir_okay=False, path_type=Path), help=BOI_NAMES_HELP)
@entry_options
@click.option(
    "--page-size",
    type=click.IntRange(1, 10_000),
    default=DEFAULT_PAGE_SIZE,
    show_default=True,
    help="Records per page of ListCustomers/ListOpenInvoices.",
)
@click.option(
    "--allow-plain-http",
    is_flag=True,
    help="Serve plain HTTP on a non-loopback address (passwords would cross the network in clear).",
)
@click.option(
    "--max-failed-logons",
    type=click.IntRange(min=1),
    default=LogonPolicy.max_failures,
    show_default=True,
    help="Failed logons in a row from one address before its calls are refused for a while.",
)
@click.option(
    "--logon-lockout",
    type=click.FloatRange(min=1),
    default=LogonPolicy.lockout_seconds,
    show_default=True,
    help="Seconds the first refusal lasts; each further failure doubles it (up to an hour).",
)
@click.pass_context
def agent(
    ctx: click.Context,
    backend: str | None,
    host: str,
    port: int,
    tls_cert: str | None,
    tls_key: str | None,
    company_dir: Path | None,
    scenario: Path | None,
    mas90_home: str | None,
    boi_names: Path | None,
    require_deposit_amount: bool | None,
    batch_entry: bool | None,
    page_size: int,
    allow_plain_http: bool,
    max_failed_logons: int,
    logon_lockout: float,
) -> None:
    """Serve the agent's SOAP API (WSDL at /agent?wsdl) until Ctrl-C; `agent doctor` checks a Sage server first.

    Slow clients are cut off and connections capped by the ML_CONNECTOR_HTTP_* settings, as for the receiver.
    """
    if ctx.invoked_subcommand is not None:
        if ctx.get_parameter_source("backend") is click.core.ParameterSource.COMMANDLINE:
            raise click.UsageError(
                f"give the options after '{ctx.invoked_subcommand}': agent {ctx.invoked_subcommand} --backend ..."
            )
        return
    if backend is None:
        raise click.UsageError("Missing option '--backend' (boi or simulated).")
    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together: give both to serve HTTPS, or neither")
    if not tls_cert and not _is_loopback(host) and not allow_plain_http:
        raise click.UsageError(
            f"refusing plain HTTP on {host}: every call carries the Sage password; give "
            "--tls-cert/--tls-key (or --allow-plain-http if TLS ends in front of the agent)"
        )
    limits = ServerLimits.from_settings(settings_or_exit())
    if backend == "simulated":
        if boi_names or require_deposit_amount is not None or batch_entry is not None:
            raise click.UsageError("--boi-names, --require-deposit-amount and --batch-entry are for --backend boi")
        chosen, what = _simulated(company_dir, scenario)
    else:
        names = boi_names_or_exit(boi_names)
        chosen, what = _boi(
            mas90_home, company_dir, scenario, names, OptionSettings(require_deposit_amount, batch_entry)
        )
    scheme = "https" if tls_cert else "http"
    click.echo(f"agent: {what}; WSDL at {scheme}://{_url_host(host)}:{port}{PATH}?wsdl")
    policy = LogonPolicy(
        max_failures=max_failed_logons,
        lockout_seconds=logon_lockout,
        max_lockout_seconds=max(LogonPolicy.max_lockout_seconds, logon_lockout),
    )
    run_forever(
        agent_app(chosen, page_size, policy), host, port, ssl_certfile=tls_cert, ssl_keyfile=tls_key, limits=limits
    )


def simulated_company(company_dir: Path | None, scenario: Path | None) -> tuple[SageCompany, Scenario | None]:
    """The company database: --company-dir as is, or --scenario (default: the bundled sample) loaded once;
    with the scenario it was loaded from (None for --company-dir alone).

    The simulated company is sandbox code: it is imported here, where the command wires it in, and only then.
    """
    from ..sandbox.sage_company import DB_FILE, SageCompany
    from ..sandbox.scenario import ScenarioError, bundled, load_scenario

    if company_dir is not None and scenario is None:
        path = company_dir / DB_FILE
        if not path.exists():
            raise click.UsageError(f"no company database at {path}; add --scenario DIR to create it from a scenario")
        return SageCompany(path), None
    try:
        loaded = load_scenario(scenario or bundled())
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from None
    folder = company_dir or settings_or_exit().home / "sage" / loaded.company.company_code
    return SageCompany.open_or_create(folder / DB_FILE, loaded), loaded


def _simulated(company_dir: Path | None, scenario: Path | None) -> tuple[Backend, str]:
    from ..sandbox.simulated_backend import SimulatedBackend

    company, _ = simulated_company(company_dir, scenario)
    return SimulatedBackend(company), f"simulated company {company.info.code} ({company.path})"


def require_pywin32() -> None:
    if importlib.util.find_spec("win32com") is None:
        raise click.ClickException(boi_com.NO_PYWIN32)


def _boi(
    mas90_home: str | None,
    company_dir: Path | None,
    scenario: Path | None,
    names: BOINames,
    options: OptionSettings,
) -> tuple[BOIBackend, str]:
    if company_dir or scenario:
        raise click.UsageError("--company-dir and --scenario are for --backend simulated")
    if not mas90_home:
        raise click.UsageError(r"--backend boi needs --mas90-home, e.g. C:\Sage\Sage 100\MAS90\Home")
    require_pywin32()
    try:
        ledger = AgentLedger(settings_or_exit().home / "agent" / "agent_ledger.sqlite")
    except RuntimeError as exc:  # another agent process owns the ledger
        raise click.ClickException(str(exc)) from None
    changed = f"; BOI names changed: {', '.join(sorted(names.changed()))}" if names.changed() else ""
    return (
        BOIBackend(mas90_home, ledger, names, options=options),
        f"Sage 100 BOI at {mas90_home} (ledger {ledger.path}){changed}",
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
