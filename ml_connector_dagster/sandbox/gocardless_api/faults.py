"""Misbehaviour on demand: queued faults and a fixed-window rate limit, set through the control API.

A fault is consumed by the next API request whose path starts with its `path`, `count` times: a delay,
a JSON 5xx, an HTML error page, a 429, or a dropped connection (the gate, gate.py, acts them out).
The state is shared between the server's threads, so every change happens under one lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any, TypedDict

FAULT_KINDS = ("status", "html", "drop", "delay", "rate_limit")
FAULT_FIELDS = frozenset({"kind", "count", "status", "seconds", "path", "reset_seconds"})


class FaultDescription(TypedDict):
    kind: str
    count: int  # how many more requests it will take
    status: int | None
    seconds: float
    path: str
    reset_seconds: float


class RateLimit(TypedDict):
    limit: int  # requests per window
    window_seconds: int


NOMINAL_RATE_LIMIT: RateLimit = {"limit": 1000, "window_seconds": 60}  # reported when no limit is set


class FaultsDescription(TypedDict):
    """The faults part of GET /_sandbox/status, and the answer of /_sandbox/faults."""

    faults: list[FaultDescription]
    rate_limit: RateLimit | None
    injected: int  # faults acted out so far


@dataclass
class Fault:
    kind: str
    count: int = 1
    status: int | None = None
    seconds: float = 0.0
    path: str = "/"
    reset_seconds: float = 1.0

    @classmethod
    def parse(cls, data: Any) -> Fault:
        if not isinstance(data, dict) or data.get("kind") not in FAULT_KINDS:
            raise ValueError(f'each fault needs "kind" one of {", ".join(FAULT_KINDS)}; got {data!r}')
        unknown = set(data) - FAULT_FIELDS
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        return cls(
            kind=data["kind"],
            count=int(data.get("count", 1)),
            status=data.get("status"),
            seconds=float(data.get("seconds", 0.0)),
            path=str(data.get("path", "/")),
            reset_seconds=float(data.get("reset_seconds", 1.0)),
        )


@dataclass
class Faults:
    """Queued faults (each consumed by a matching request) and an optional fixed-window rate limit."""

    queue: list[Fault] = field(default_factory=list)
    rate_limit: RateLimit | None = None
    injected: int = 0
    _window_start: float = 0.0
    _window_count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, faults: Sequence[Fault], rate_limit: Mapping[str, Any] | None) -> None:
        """Replace the queue and the rate limit; `rate_limit` as sent to the control API (JSON values)."""
        limits: RateLimit | None = None
        if rate_limit is not None:
            limit, window = int(rate_limit.get("limit", 0)), int(rate_limit.get("window_seconds", 60))
            if limit <= 0 or window <= 0:
                raise ValueError('rate_limit needs a positive "limit" and whole "window_seconds"')
            limits = {"limit": limit, "window_seconds": window}
        with self._lock:
            self.queue = list(faults)
            self.rate_limit = limits
            self._window_start, self._window_count = float(int(time.time())), 0

    def take(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.queue:
                if path.startswith(fault.path):
                    fault.count -= 1
                    if fault.count <= 0:
                        self.queue.remove(fault)
                    self.injected += 1
                    return fault
        return None

    def check_rate(self) -> tuple[bool, dict[str, str]]:
        """(allowed, RateLimit-* headers) for one more request in the current window.

        GoCardless sends the headers on every response: without a limit set, the stand-in counts against
        GoCardless's nominal 1000 requests a minute and reports it, but refuses nothing."""
        with self._lock:
            limits = self.rate_limit or NOMINAL_RATE_LIMIT
            now = time.time()
            window = limits["window_seconds"]
            if now - self._window_start >= window:  # windows start on whole seconds, as HTTP dates do
                self._window_start, self._window_count = float(int(now)), 0
            self._window_count += 1
            limit = limits["limit"]
            reset = datetime.fromtimestamp(self._window_start + window, tz=UTC)
            headers = {
                "RateLimit-Limit": str(limit),
                "RateLimit-Remaining": str(max(0, limit - self._window_count)),
                "RateLimit-Reset": format_datetime(reset, usegmt=True),
            }
            return self.rate_limit is None or self._window_count <= limit, headers

    def describe(self) -> FaultsDescription:
        with self._lock:
            return {
                "faults": [
                    {
                        "kind": f.kind,
                        "count": f.count,
                        "status": f.status,
                        "seconds": f.seconds,
                        "path": f.path,
                        "reset_seconds": f.reset_seconds,
                    }
                    for f in self.queue
                ],
                "rate_limit": self.rate_limit,
                "injected": self.injected,
            }
