"""Starting the GoCardless stand-in: a world from a scenario, its webhook sender, the app on a free port.

`GoCardlessStandIn` is what tests, the demo and `ml-connector sandbox` hold: the URL and credentials
to configure the product with, and in-process shortcuts to the control API. A step hook (play.py) makes
each step apply what happens in Sage at its start too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.routing import Route

from ...httpserve import ServerHandle, serve_in_thread
from ..gocardless_shapes import Event
from ..gocardless_state import GoCardlessWorld
from ..scenario import Scenario, load_scenario
from ..webhook_sender import GOCARDLESS_RETRY_INTERVALS, WebhookSender
from .faults import Fault, Faults
from .play import StepHook, StepPlayed, StepPlayer
from .routes import SandboxStatus, create_app, sandbox_status

DEFAULT_TOKEN = "sandbox_token"
DEFAULT_WEBHOOK_SECRET = "sandbox_webhook_secret"


@dataclass
class GoCardlessStandIn:
    """A running stand-in: its URL and credentials, and in-process shortcuts to the control API."""

    server: ServerHandle
    world: GoCardlessWorld
    sender: WebhookSender
    faults: Faults
    token: str = field(repr=False)
    webhook_url: str | None
    webhook_secret: str = field(repr=False)
    name: str = "gocardless"
    player: StepPlayer | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.player is None:
            self.player = StepPlayer(self.world, self.sender)

    @property
    def url(self) -> str:
        return self.server.url

    def __repr__(self) -> str:
        return f"GoCardlessStandIn({self.url!r}, step {self.world.step_index}/{self.world.total_steps})"

    def credentials(self) -> dict[str, str]:
        """What to configure the connector with (these are sandbox values, shown on purpose)."""
        return {
            "ML_CONNECTOR_GOCARDLESS_API_URL": self.url,
            "ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN": self.token,
            "ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS": self.webhook_secret,
        }

    def play_step(self) -> list[Event]:
        """Play the next step - its Sage changes, then its GoCardless actions - and queue its webhooks (same as
        POST /_sandbox/step); returns the events."""
        return self.play().events

    def play(self) -> StepPlayed:
        """Play the next step, as `play_step`, and tell everything it did (the Sage changes too)."""
        assert self.player is not None  # set in __post_init__
        return self.player.play()

    def wait_deliveries(self, timeout: float | None = None) -> bool:
        return self.sender.wait_idle(timeout)

    def set_faults(self, faults: Sequence[dict[str, Any]] = (), rate_limit: dict[str, Any] | None = None) -> None:
        self.faults.configure([Fault.parse(f) for f in faults], rate_limit)

    def status(self) -> SandboxStatus:
        return sandbox_status(self.world, self.sender, self.faults)

    def stop(self) -> None:
        self.server.stop()
        self.sender.close()


def start_gocardless_stand_in(
    scenario: Scenario | str | Path,
    host: str = "127.0.0.1",
    port: int = 0,
    token: str = DEFAULT_TOKEN,
    webhook_url: str | None = None,
    webhook_secret: str = DEFAULT_WEBHOOK_SECRET,
    *,
    retry_intervals: Sequence[float] = GOCARDLESS_RETRY_INTERVALS,
    seed: int | None = None,
    clock: Callable[[], datetime] | None = None,
    before_step: StepHook | None = None,
    control_routes: Sequence[Route] = (),
) -> GoCardlessStandIn:
    """Load the scenario and serve the stand-in; webhooks go to `webhook_url` when one is given.

    `before_step(k)` runs at the start of step k, before its GoCardless actions (the Sage changes);
    `control_routes` join the control API (the Sage changes' own route)."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    world = GoCardlessWorld(scenario, clock=clock, seed=seed)
    sender = WebhookSender(webhook_url, webhook_secret, retry_intervals=retry_intervals)
    faults = Faults()
    player = StepPlayer(world, sender, before_step)
    try:
        server = serve_in_thread(create_app(world, sender, faults, token, player, control_routes), host, port)
    except Exception:
        sender.close()
        raise
    return GoCardlessStandIn(server, world, sender, faults, token, webhook_url, webhook_secret, player=player)
