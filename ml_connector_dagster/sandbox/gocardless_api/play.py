"""One step of the sandbox's play: what happens in Sage at its start (a hook), then its GoCardless actions and
their webhooks.

The GoCardless stand-in owns the step counter (the world's), but a scenario's step is more than GoCardless:
people work in Sage too (sage_changes.csv). The hook, given the step's number, applies that step's Sage
changes and returns what they did; `start_stack` and `ml-connector sandbox` wire it to the simulated company.
`POST /_sandbox/step` and `GoCardlessStandIn.play_step` both come here, so one call plays both sides, one
step at a time (steps never overlap).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..gocardless_shapes import Event
from ..gocardless_state import GoCardlessWorld
from ..webhook_sender import WebhookSender

StepHook = Callable[[int], list[Any]]  # step number (from 1) -> what it did, as JSON values


@dataclass
class StepPlayed:
    """What one step did: its number, the hook's results (the Sage changes), the events and their webhooks."""

    step: int
    total_steps: int
    finished: bool
    sage_changes: list[Any] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    webhook_ids: list[str] = field(default_factory=list)


class StepPlayer:
    """Plays the next step: the hook first, then the world's actions; their webhooks are queued to send."""

    def __init__(self, world: GoCardlessWorld, sender: WebhookSender, before_step: StepHook | None = None) -> None:
        self.world, self.sender, self.before_step = world, sender, before_step
        self._lock = threading.Lock()

    def play(self) -> StepPlayed:
        with self._lock:
            number = self.world.step_index + 1
            changes = self.before_step(number) if self.before_step and number <= self.world.total_steps else []
            events = self.world.play_next_step()
            webhook_ids = self.sender.send(events)
            status = self.world.status()
        return StepPlayed(status["step"], status["total_steps"], status["finished"], changes, events, webhook_ids)
