"""Start the simulated Sage company's eBusiness Web Services stand-in and agent, for the sandbox, demo and tests.

The company database lives in `data_dir` and survives restarts (the scenario is loaded only the first
time), so a sandbox restarted mid-month keeps the receipts it has written.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..agent.service import DEFAULT_PAGE_SIZE, agent_app
from ..agent.service import PATH as AGENT_PATH
from ..httpserve import ServerHandle, serve_in_thread
from .ebusiness import OPERATIONS, ebusiness_app
from .ebusiness import PATH as EBUSINESS_PATH
from .ebusiness_controls import EBusinessControls
from .sage_company import DB_FILE, SageCompany
from .scenario import Scenario, load_scenario
from .simulated_backend import SimulatedBackend


@dataclass
class SageStandIns:
    """Running stand-ins: their WSDL URLs, the logon and company code they accept, the company itself, and
    what can be changed on the eBusiness stand-in while it runs (`ebusiness_controls`)."""

    company: SageCompany
    ebusiness: ServerHandle
    agent: ServerHandle
    username: str
    password: str = field(repr=False)
    company_code: str = ""
    ebusiness_controls: EBusinessControls = field(default_factory=lambda: EBusinessControls(OPERATIONS))

    @property
    def ebusiness_wsdl(self) -> str:
        return f"{self.ebusiness.url}{EBUSINESS_PATH}?wsdl"

    @property
    def agent_wsdl(self) -> str:
        return f"{self.agent.url}{AGENT_PATH}?wsdl"

    def settings_env(self) -> dict[str, str]:
        """The ML_CONNECTOR_* variables that point the product at these stand-ins."""
        return {
            "ML_CONNECTOR_SAGE_EBUSINESS_WSDL": self.ebusiness_wsdl,
            "ML_CONNECTOR_SAGE_AGENT_WSDL": self.agent_wsdl,
            "ML_CONNECTOR_SAGE_USERNAME": self.username,
            "ML_CONNECTOR_SAGE_PASSWORD": self.password,
            "ML_CONNECTOR_SAGE_COMPANY_CODE": self.company_code,
            "ML_CONNECTOR_SAGE_BANK_CODE": self.company.info.bank_code,
            "ML_CONNECTOR_SAGE_HOME_CURRENCY": self.company.info.home_currency,
        }

    def stop(self) -> None:
        self.agent.stop()
        self.ebusiness.stop()

    def __enter__(self) -> SageStandIns:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_sage_stand_ins(
    scenario: Scenario | str | Path,
    host: str = "127.0.0.1",
    ebusiness_port: int = 0,
    agent_port: int = 0,
    data_dir: str | Path = ".",
    *,
    page_size: int = DEFAULT_PAGE_SIZE,
    ssl_certfile: str | None = None,
    ssl_keyfile: str | None = None,
) -> SageStandIns:
    """Serve both stand-ins over one company database (`<data_dir>/sage_company.sqlite`); port 0 = any free."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    company = SageCompany.open_or_create(Path(data_dir) / DB_FILE, scenario)
    controls = EBusinessControls(OPERATIONS)
    ebusiness = serve_in_thread(
        ebusiness_app(company, controls), host, ebusiness_port, ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile
    )
    try:
        agent = serve_in_thread(
            agent_app(SimulatedBackend(company), page_size),
            host,
            agent_port,
            ssl_certfile=ssl_certfile,
            ssl_keyfile=ssl_keyfile,
        )
    except BaseException:
        ebusiness.stop()
        raise
    c = scenario.company
    return SageStandIns(company, ebusiness, agent, c.username, c.password, c.company_code, controls)
