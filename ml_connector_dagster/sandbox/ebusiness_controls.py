"""What can be changed on the eBusiness stand-in while it runs, so that it fails the ways Sage's service fails.

- **Failures inside Sage.** The next `count` calls of an operation fail inside Sage, which answers only its
  generic fault "An exception occurred." (as it does for any unexpected error).

Set from Python (`SageStandIns.ebusiness_controls`, as tests do) or over HTTP at the stand-in's own address:

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


class FailureDescription(TypedDict):
    operation: str
    count: int  # how many more calls of it will fail


class FaultsDescription(TypedDict):
    faults: list[FailureDescription]
    injected: int  # failures acted out so far


class InjectedFailure(RuntimeError):
    """An error inside Sage, made on request (the stand-in answers it like any unexpected error)."""


class EBusinessControls:
    """Queued failures of the stand-in's operations (`operations`: the names it serves)."""

    def __init__(self, operations: Iterable[str]) -> None:
        self.operations = tuple(operations)
        self._lock = threading.Lock()
        self._failures: dict[str, int] = {}
        self._injected = 0

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
        return [Route(f"{CONTROL_PREFIX}/faults", self._faults_endpoint, methods=["GET", "POST", "DELETE"])]

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
