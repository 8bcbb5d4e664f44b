"""The whole local world on loopback: Sage stand-ins, GoCardless stand-in and our webhook receiver.

Used by `ml-connector demo`, `ml-connector dev` and the end-to-end tests. Everything talks over real
HTTP/SOAP; `env` holds the ML_CONNECTOR_* settings that point the product at these services, exactly
as an operator would configure it for the real Sage 100 and GoCardless. Each step of the scenario starts
with what people do in Sage (sage_changes.py, wired into the GoCardless stand-in's step), then plays its
GoCardless actions.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..gocardless.receiver import create_app
from ..httpserve import ServerHandle, serve_in_thread
from ..secrets import generate_key
from ..settings import load_settings
from ..store import Store
from .gocardless_api import GoCardlessStandIn, start_gocardless_stand_in
from .sage_changes import SageChanges
from .sage_services import SageStandIns, start_sage_stand_ins
from .scenario import Scenario, load_scenario

WEBHOOK_PATH = "/webhooks/gocardless"
SANDBOX_TOKEN = "sandbox_token"
SANDBOX_WEBHOOK_SECRET = "sandbox_webhook_secret"


@dataclass
class Stack:
    scenario: Scenario
    home: Path
    sage: SageStandIns
    gocardless: GoCardlessStandIn
    receiver: ServerHandle
    store: Store
    env: dict[str, str] = field(repr=False)

    @property
    def webhook_url(self) -> str:
        return self.receiver.url + WEBHOOK_PATH

    def stop(self) -> None:
        for stop in (self.gocardless.stop, self.receiver.stop, self.sage.stop, self.store.dispose):
            try:
                stop()
            except Exception:  # noqa: BLE001 - stopping the rest matters more than one failure
                pass

    def __enter__(self) -> Stack:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def product_env(scenario: Scenario, home: Path) -> dict[str, str]:
    """Settings from the scenario's company: policy, FX rates, a fresh secrets key."""
    company = scenario.company
    policy = company.settings
    env = {
        "ML_CONNECTOR_HOME": str(home),
        "ML_CONNECTOR_SECRET_KEY": generate_key(),
        "ML_CONNECTOR_COLLECT_ON": str(policy.get("collect_on", "confirmed")),
        "ML_CONNECTOR_ON_TIE": str(policy.get("on_tie", "oldest")),
        "ML_CONNECTOR_SYNC_CUSTOMER_METADATA": str(company.option("sync_customer_metadata")).lower(),
        "ML_CONNECTOR_AUTO_REVERSAL": str(company.option("auto_reversal")).lower(),
    }
    if company.fx_rates:
        env["ML_CONNECTOR_FX_RATES"] = ",".join(f"{c}={r}" for c, r in company.fx_rates.items())
    return env


def start_stack(
    scenario: Scenario | str | Path,
    home: Path,
    host: str = "127.0.0.1",
    *,
    receiver_port: int = 0,
    gocardless_port: int = 0,
    ebusiness_port: int = 0,
    agent_port: int = 0,
    webhook_retry_intervals: tuple[float, ...] = (0.5, 1.0, 2.0, 5.0, 10.0),
) -> Stack:
    """Start everything on free ports (by default) under `home`; stop it with `stop()` or a with-block."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    started: list[Callable[[], None]] = []
    try:
        sage = start_sage_stand_ins(scenario, host, ebusiness_port, agent_port, data_dir=home / "sandbox")
        started.append(sage.stop)
        env = {
            **product_env(scenario, home),
            **sage.settings_env(),
            "ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS": SANDBOX_WEBHOOK_SECRET,
        }
        settings = load_settings(env)
        store = Store(settings.database_url)
        started.append(store.dispose)
        receiver = serve_in_thread(create_app(settings.webhooks(), store), host, receiver_port)
        started.append(receiver.stop)
        people = SageChanges(sage.company, scenario)
        gocardless = start_gocardless_stand_in(
            scenario,
            host,
            gocardless_port,
            SANDBOX_TOKEN,
            receiver.url + WEBHOOK_PATH,
            SANDBOX_WEBHOOK_SECRET,
            retry_intervals=webhook_retry_intervals,
            before_step=people.play_step,
            control_routes=people.routes(),
        )
    except BaseException:
        for stop in reversed(started):
            stop()
        raise
    env.update(gocardless.credentials())
    return Stack(scenario, home, sage, gocardless, receiver, store, env)
