"""`ml-connector agent`: run the agent's SOAP service on the Sage server (BOI) or over a simulated company."""

from __future__ import annotations

import importlib.util
import ipaddress
from pathlib import Path

import click

from ..agent.backends import Backend, BOIBackend
from ..agent.ledger import AgentLedger
from ..agent.logons import LogonPolicy
from ..agent.service import DEFAULT_PAGE_SIZE, PATH, agent_app
from ..httpserve import ServerLimits, run_forever
from .common import settings_or_exit

DEFAULT_PORT = 8090


@click.command()
@click.option(
    "--backend",
    type=click.Choice(["boi", "simulated"]),
    required=True,
    help="boi: Sage 100 on this Windows server through ProvideX.Script; simulated: a SQLite company.",
)
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
def agent(
    backend: str,
    host: str,
    port: int,
    tls_cert: str | None,
    tls_key: str | None,
    company_dir: Path | None,
    scenario: Path | None,
    mas90_home: str | None,
    page_size: int,
    allow_plain_http: bool,
    max_failed_logons: int,
    logon_lockout: float,
) -> None:
    """Serve the agent's SOAP API (WSDL at /agent?wsdl) until Ctrl-C.

    Slow clients are cut off and connections capped by the ML_CONNECTOR_HTTP_* settings, as for the receiver.
    """
    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together: give both to serve HTTPS, or neither")
    if not tls_cert and not _is_loopback(host) and not allow_plain_http:
        raise click.UsageError(
            f"refusing plain HTTP on {host}: every call carries the Sage password; give "
            "--tls-cert/--tls-key (or --allow-plain-http if TLS ends in front of the agent)"
        )
    limits = ServerLimits.from_settings(settings_or_exit())
    if backend == "simulated":
        chosen, what = _simulated(company_dir, scenario)
    else:
        chosen, what = _boi(mas90_home, company_dir, scenario)
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


def _simulated(company_dir: Path | None, scenario: Path | None) -> tuple[Backend, str]:
    """The company database: --company-dir as is, or --scenario (default: the bundled sample) loaded once.

    The simulated backend is sandbox code: it is imported here, where the command wires it in, and only then.
    """
    from ..sandbox.sage_company import DB_FILE, SageCompany
    from ..sandbox.scenario import ScenarioError, bundled, load_scenario
    from ..sandbox.simulated_backend import SimulatedBackend

    if company_dir is not None and scenario is None:
        path = company_dir / DB_FILE
        if not path.exists():
            raise click.UsageError(f"no company database at {path}; add --scenario DIR to create it from a scenario")
        company = SageCompany(path)
    else:
        try:
            loaded = load_scenario(scenario or bundled())
        except ScenarioError as exc:
            raise click.ClickException(str(exc)) from None
        folder = company_dir or settings_or_exit().home / "sage" / loaded.company.company_code
        company = SageCompany.open_or_create(folder / DB_FILE, loaded)
    return SimulatedBackend(company), f"simulated company {company.info.code} ({company.path})"


def _boi(mas90_home: str | None, company_dir: Path | None, scenario: Path | None) -> tuple[BOIBackend, str]:
    if company_dir or scenario:
        raise click.UsageError("--company-dir and --scenario are for --backend simulated")
    if not mas90_home:
        raise click.UsageError(r"--backend boi needs --mas90-home, e.g. C:\Sage\Sage 100\MAS90\Home")
    if importlib.util.find_spec("win32com") is None:
        raise click.ClickException(
            "the boi backend needs Windows with pywin32 (pip install pywin32) and Sage 100 "
            "installed on this machine; use --backend simulated elsewhere"
        )
    try:
        ledger = AgentLedger(settings_or_exit().home / "agent" / "agent_ledger.sqlite")
    except RuntimeError as exc:  # another agent process owns the ledger
        raise click.ClickException(str(exc)) from None
    return BOIBackend(mas90_home, ledger), f"Sage 100 BOI at {mas90_home} (ledger {ledger.path})"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host
