"""Failed logons to the agent: logged, and an address that keeps failing is refused for a growing while.

Every agent call carries the Sage password, so the agent is a password oracle: without this, anyone who
can reach its port may try passwords as fast as the server answers. After `max_failures` failed logons in
a row from one source address, further calls from it are refused *before any password is checked*, with
a fault saying when to try again; each further failure after a refusal doubles the next refusal, up to
`max_lockout_seconds`. A successful logon clears the address's count; a quiet address is forgotten.

Refusing is immediate (no sleeping in the request, which would tie up the worker threads an attacker
wants tied up). Failures are logged with the user, source address and company code - never the password.

Known limits: the address is the TCP peer, so behind a reverse proxy every caller shares the proxy's
address (one attacker there locks out everyone, including the product); and a burst of simultaneous
attempts can exceed `max_failures` by up to the number of worker threads before the first refusal.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from ..sage100.model import FAULT_LOGON_LOCKED, SageRuleError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LogonPolicy:
    """When to refuse: after `max_failures` in a row, for `lockout_seconds`, doubling per further failure."""

    max_failures: int = 5
    lockout_seconds: float = 30
    max_lockout_seconds: float = 3600
    forget_after_seconds: float = 900  # an address quiet this long (after any refusal) starts over
    max_addresses: int = 10_000  # addresses remembered at once; the stalest is dropped beyond it

    def __post_init__(self) -> None:
        for name in ("max_failures", "lockout_seconds", "max_lockout_seconds", "forget_after_seconds", "max_addresses"):
            if getattr(self, name) <= 0:
                raise ValueError(f"LogonPolicy.{name} must be greater than 0, not {getattr(self, name)}")
        if self.max_lockout_seconds < self.lockout_seconds:
            raise ValueError("LogonPolicy.max_lockout_seconds must be at least lockout_seconds")

    def lockout(self, failures: int) -> float:
        """Seconds refused after `failures` in a row (0 below the threshold)."""
        if failures < self.max_failures:
            return 0.0
        doublings = min(failures - self.max_failures, 32)  # 2**32 * any lockout is past every cap
        return min(self.lockout_seconds * 2.0**doublings, self.max_lockout_seconds)


@dataclass
class _Address:
    failures: int = 0
    last_failure: float = 0.0
    refused_until: float = 0.0


class LogonGuard:
    """The failed-logon record of one service, per source address; safe to share between worker threads."""

    def __init__(self, policy: LogonPolicy = LogonPolicy(), clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self._clock = clock
        self._lock = threading.Lock()
        self._addresses: dict[str, _Address] = {}

    def check(self, address: str) -> None:
        """Raise the refusal fault if `address` is being refused now; call before any password is checked."""
        now = self._clock()
        with self._lock:
            state = self._current(address, now)
            wait = 0.0 if state is None else state.refused_until - now
        if wait > 0:
            seconds = math.ceil(wait)
            raise SageRuleError(
                FAULT_LOGON_LOCKED, f"too many failed logons from {address}; try again in {seconds} seconds"
            )

    def failed(self, address: str, username: str, company_code: str) -> None:
        """Record and log one failed logon; start or lengthen the address's refusal past the threshold."""
        now = self._clock()
        with self._lock:
            state = self._current(address, now) or self._remember(address)
            state.failures += 1
            state.last_failure = now
            lockout = self.policy.lockout(state.failures)
            state.refused_until = now + lockout if lockout else 0.0
            failures = state.failures
        log.warning(
            "Failed agent logon for user %r from %s (company %r); %d in a row from this address",
            username[:64],
            address,
            company_code[:16],
            failures,
        )
        if lockout:
            log.warning(
                "Refusing agent logons from %s for %d seconds after %d failed logons in a row",
                address,
                math.ceil(lockout),
                failures,
            )

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._addresses.pop(address, None)

    def _current(self, address: str, now: float) -> _Address | None:
        """The address's record, unless it has been quiet long enough to be forgotten."""
        state = self._addresses.get(address)
        if state is not None and now > max(state.last_failure, state.refused_until) + self.policy.forget_after_seconds:
            del self._addresses[address]
            return None
        return state

    def _remember(self, address: str) -> _Address:
        if len(self._addresses) >= self.policy.max_addresses:
            stalest = min(self._addresses, key=lambda a: self._addresses[a].last_failure)
            del self._addresses[stalest]
        state = self._addresses[address] = _Address()
        return state
