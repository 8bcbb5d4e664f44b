"""What can be changed on the eBusiness stand-in while it runs, so that it fails the ways Sage's service fails.

- **Web services enabled.** Sage lets a user call web services only when they are enabled for the system, for
  the company and for the user. With any of the three off, every call with a logon is refused with Sage's
  logon-failure text, whatever the password (GetContractInformation, which takes no logon, still answers).
- **Role security.** Operations the user's role has no access to are refused with "No Access" (after the
  logon and company are accepted).
- **Failures inside Sage.** The next `count` calls of an operation fail inside Sage, which answers only its
  generic fault "An exception occurred." (as it does for any unexpected error).

Set from Python (`SageStandIns.ebusiness_controls`, as tests do) or over HTTP at the stand-in's own address:

    GET    /_sandbox/security {"web_services": {"system": true, "company": true, "user": true}, "no_access": []}
    POST   /_sandbox/security the same shape, replacing it (a level left out is on, no_access left out is [])
    DELETE /_sandbox/security everything enabled, every operation allowed
    GET    /_sandbox/faults   {"faults": [{"operation": "GetCustomer", "count": 1}], "injected": 0}
    POST   /_sandbox/faults   {"faults": [{"operation": "GetCustomer", "count": 1}]}  replaces the queue
    DELETE /_sandbox/faults   clears it

The state is shared between the server's threads, so every change happens under one lock.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable, Mapping
from typing import Any, TypedDict

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

CONTROL_PREFIX = "/_sandbox"
LEVELS = ("system", "company", "user")  # where Sage enables web services
NO_LOGON = frozenset({"GetContractInformation"})  # takes no logon, so role security does not reach it


class SecurityDescription(TypedDict):
    web_services: dict[str, bool]  # each of LEVELS: enabled?
    no_access: list[str]  # operations the user's role may not run


class FailureDescription(TypedDict):
    operation: str
    count: int  # how many more calls of it will fail


class FaultsDescription(TypedDict):
    faults: list[FailureDescription]
    injected: int  # failures acted out so far


class InjectedFailure(RuntimeError):
    """An error inside Sage, made on request (the stand-in answers it like any unexpected error)."""


class EBusinessControls:
    """Sage's web-services security and queued failures, over the stand-in's operations (the names it serves)."""

    def __init__(self, operations: Iterable[str]) -> None:
        self.operations = tuple(operations)
        self._lock = threading.Lock()
        self._web_services = dict.fromkeys(LEVELS, True)
        self._no_access: frozenset[str] = frozenset()
        self._failures: dict[str, int] = {}
        self._injected = 0

    # --- Sage's security ------------------------------------------------------------------------------------------

    def set_web_services(
        self, *, system: bool | None = None, company: bool | None = None, user: bool | None = None
    ) -> None:
        """Turn web services on or off for the system, the company or the user (None leaves a level as it is)."""
        with self._lock:
            for level, enabled in (("system", system), ("company", company), ("user", user)):
                if enabled is not None:
                    self._web_services[level] = enabled

    def set_no_access(self, operations: Iterable[str]) -> None:
        """The operations the user's role may not run (replacing the previous set)."""
        denied = frozenset(self._operation(op) for op in operations)
        if denied & NO_LOGON:
            raise ValueError(f"{', '.join(sorted(denied & NO_LOGON))} takes no logon, so role security cannot deny it")
        with self._lock:
            self._no_access = denied

    def reset_security(self) -> None:
        with self._lock:
            self._web_services = dict.fromkeys(LEVELS, True)
            self._no_access = frozenset()

    def web_services_enabled(self) -> bool:
        """True when web services are enabled for the system, the company and the user alike."""
        with self._lock:
            return all(self._web_services.values())

    def may_run(self, operation: str) -> bool:
        with self._lock:
            return operation not in self._no_access

    def security(self) -> SecurityDescription:
        with self._lock:
            return {"web_services": dict(self._web_services), "no_access": sorted(self._no_access)}

    def configure_security(self, body: Mapping[str, Any]) -> None:
        """POST /_sandbox/security: the whole configuration, replacing it; checked before anything changes."""
        _only_keys(body, {"web_services", "no_access"}, "the body")
        levels = body.get("web_services", {})
        if not isinstance(levels, dict):
            raise ValueError(f'"web_services" must be an object with true/false for {", ".join(LEVELS)}')
        _only_keys(levels, set(LEVELS), '"web_services"')
        for level, enabled in levels.items():
            if not isinstance(enabled, bool):
                raise ValueError(f'"web_services" "{level}" must be true or false, not {enabled!r}')
        denied = body.get("no_access", [])
        if not isinstance(denied, list):
            raise ValueError('"no_access" must be a list of operation names')
        self.set_no_access(denied)  # checks the names; nothing else can fail after it
        with self._lock:
            self._web_services = {level: levels.get(level, True) for level in LEVELS}

    # --- failures inside Sage ------------------------------------------------------------------------------------

    def fail_next(self, operation: str, count: int = 1) -> None:
        """The next `count` calls of `operation` fail inside Sage (added to any already queued)."""
        self._operation(operation)
        if count < 1:
            raise ValueError(f"count must be at least 1, not {count}")
        with self._lock:
            self._failures[operation] = self._failures.get(operation, 0) + count

    def clear_failures(self) -> None:
        with self._lock:
            self._failures.clear()

    def take_failure(self, operation: str) -> None:
        """Raise InjectedFailure if a failure of `operation` is queued (using it up)."""
        with self._lock:
            left = self._failures.get(operation, 0)
            if not left:
                return
            if left == 1:
                del self._failures[operation]
            else:
                self._failures[operation] = left - 1
            self._injected += 1
        raise InjectedFailure(f"{operation} failed inside Sage (queued through {CONTROL_PREFIX}/faults)")

    def faults(self) -> FaultsDescription:
        with self._lock:
            queued = [FailureDescription(operation=op, count=n) for op, n in self._failures.items()]
            return {"faults": queued, "injected": self._injected}

    def configure_faults(self, body: Mapping[str, Any]) -> None:
        """POST /_sandbox/faults: the whole queue, replacing what was queued; checked before anything changes."""
        _only_keys(body, {"faults"}, "the body")
        entries = body.get("faults", [])
        if not isinstance(entries, list):
            raise ValueError('"faults" must be a list of {"operation": ..., "count": ...}')
        queue: dict[str, int] = {}
        for entry in entries:
            if not isinstance(entry, dict):
                raise ValueError(f'each fault is {{"operation": ..., "count": ...}}; got {entry!r}')
            _only_keys(entry, {"operation", "count"}, "a fault")
            operation, count = self._operation(entry.get("operation")), entry.get("count", 1)
            if not isinstance(count, int) or isinstance(count, bool) or count < 1:
                raise ValueError(f'"count" must be a whole number of at least 1; got {count!r}')
            queue[operation] = queue.get(operation, 0) + count
        with self._lock:
            self._failures = queue

    # --- over HTTP ------------------------------------------------------------------------------------------------

    def routes(self) -> list[Route]:
        return [
            Route(f"{CONTROL_PREFIX}/security", self._security_endpoint, methods=["GET", "POST", "DELETE"]),
            Route(f"{CONTROL_PREFIX}/faults", self._faults_endpoint, methods=["GET", "POST", "DELETE"]),
        ]

    async def _security_endpoint(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.reset_security()
        elif request.method == "POST":
            try:
                self.configure_security(_json_object(await request.body()))
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.security())

    async def _faults_endpoint(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.clear_failures()
        elif request.method == "POST":
            try:
                self.configure_faults(_json_object(await request.body()))
            except ValueError as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.faults())

    def _operation(self, name: object) -> str:
        """`name` if the stand-in serves an operation of that name; ValueError listing them otherwise."""
        if not isinstance(name, str) or name not in self.operations:
            raise ValueError(f"unknown operation {name!r}; one of {', '.join(self.operations)}")
        return name


def _json_object(raw: bytes) -> Mapping[str, Any]:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        raise ValueError("the body is not JSON") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def _only_keys(data: Mapping[str, Any], allowed: set[str], what: str) -> None:
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(f"{what} has unknown key(s) {', '.join(unknown)}; allowed: {', '.join(sorted(allowed))}")
