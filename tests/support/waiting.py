"""Waiting for something to happen: poll a condition until it holds, and fail naming it after a bound.

The bound is only ever reached when the code under test is broken; it is not a measure of speed. Never sleep a
fixed time in place of waiting for the event itself.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_for(
    condition: Callable[[], T],
    timeout: float,
    what: str,
    interval: float = 0.5,
    on_timeout: Callable[[], str] = lambda: "",
) -> T:
    """Poll `condition` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{on_timeout()}")
        time.sleep(interval)
