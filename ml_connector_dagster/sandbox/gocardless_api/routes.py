"""The GoCardless stand-in: the API subset the product uses, with GoCardless's shapes, over real HTTP.

Endpoints (bearer auth, `GoCardless-Version` required): GET /payments[/{id}], /customers[/{id}],
PUT /customers/{id}, GET /mandates[/{id}], /refunds[/{id}], /payouts[/{id}], /payout_items?payout=,
/events[/{id}], /creditors[/{id}]. Envelopes `{"payments": {...}}` and
`{"payments": [...], "meta": {"cursors": {"before", "after"}, "limit"}}`, cursor pagination (newest first,
limit at most 500, `after` null on the last page), filters as flat keys (`created_at[gte]=...`), and
GoCardless's error bodies, so the official `gocardless_pro` client works against it unchanged.

Infrastructure misbehaviour on demand (never on the control API): a rate limit answering 429 with
RateLimit-* headers, and queued faults - delays, JSON 5xx, HTML error pages, 429s and dropped connections.

The control API lives under `/_sandbox/` (no auth; a local tool):
  POST /_sandbox/step[?wait=SECONDS]   play the next step, send its webhooks, return its events
  GET  /_sandbox/status                current step, total steps, webhook delivery counts, faults
  POST /_sandbox/faults                set faults and rate limit (body below); GET shows; DELETE clears
    {"faults": [{"kind": "status"|"html"|"drop"|"delay"|"rate_limit", "count": 1, "status": 500,
                 "seconds": 0.5, "path": "/payments", "reset_seconds": 1}],
     "rate_limit": {"limit": 100, "window_seconds": 60} | null}
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Callable, Sequence

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ...httpserve import ServerHandle, serve_in_thread
from ..gocardless_state import GoCardlessWorld, parse_iso
from ..scenario import Scenario, load_scenario
from ..webhook_sender import GOCARDLESS_RETRY_INTERVALS, WebhookSender, new_id

API_VERSION = "2015-07-06"
DEFAULT_TOKEN = "sandbox_token"
DEFAULT_WEBHOOK_SECRET = "sandbox_webhook_secret"
MAX_LIMIT = 500
DEFAULT_LIMIT = 50
CONTROL_PREFIX = "/_sandbox"
DOCS = "https://developer.gocardless.com/api-reference"
FAULT_KINDS = ("status", "html", "drop", "delay", "rate_limit")
CUSTOMER_FIELDS = frozenset({
    "email", "given_name", "family_name", "company_name", "address_line1", "address_line2", "address_line3",
    "city", "region", "postal_code", "country_code", "language", "phone_number", "swedish_identity_number",
    "danish_identity_number", "metadata",
})
HTML_PAGE = ("<html><head><title>{status} Error</title></head><body><h1>{status} {text}</h1>"
             "<p>The server could not complete your request.</p></body></html>")


class ApiError(Exception):
    """An error answered in GoCardless's shape: {"error": {type, code, message, errors, ...}}."""

    def __init__(self, status: int, error_type: str, reason: str, message: str,
                 errors: list[dict[str, Any]] | None = None) -> None:
        super().__init__(message)
        self.status, self.error_type, self.reason, self.message = status, error_type, reason, message
        self.errors = errors or [{"reason": reason, "message": message}]


def error_body(status: int, error_type: str, reason: str, message: str,
               errors: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "documentation_url": f"{DOCS}#{reason}", "type": error_type,
                      "request_id": new_id("RQ"), "code": status,
                      "errors": errors or [{"reason": reason, "message": message}]}}


def _error_response(exc: ApiError, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(error_body(exc.status, exc.error_type, exc.reason, exc.message, exc.errors),
                        status_code=exc.status, headers=headers)


# -- faults and the rate limit ---------------------------------------------------------------------------

@dataclass
class Fault:
    kind: str
    count: int = 1
    status: int | None = None
    seconds: float = 0.0
    path: str = "/"
    reset_seconds: float = 1.0

    @classmethod
    def parse(cls, data: Any) -> "Fault":
        if not isinstance(data, dict) or data.get("kind") not in FAULT_KINDS:
            raise ValueError(f"each fault needs \"kind\" one of {', '.join(FAULT_KINDS)}; got {data!r}")
        unknown = set(data) - {"kind", "count", "status", "seconds", "path", "reset_seconds"}
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        return cls(kind=data["kind"], count=int(data.get("count", 1)), status=data.get("status"),
                   seconds=float(data.get("seconds", 0.0)), path=str(data.get("path", "/")),
                   reset_seconds=float(data.get("reset_seconds", 1.0)))


@dataclass
class Faults:
    """Queued faults (each consumed by a matching request) and an optional fixed-window rate limit."""

    queue: list[Fault] = field(default_factory=list)
    rate_limit: dict[str, int] | None = None
    injected: int = 0
    _window_start: float = 0.0
    _window_count: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def configure(self, faults: Sequence[Fault], rate_limit: dict[str, Any] | None) -> None:
        if rate_limit is not None:
            limit, window = int(rate_limit.get("limit", 0)), int(rate_limit.get("window_seconds", 60))
            if limit <= 0 or window <= 0:
                raise ValueError("rate_limit needs a positive \"limit\" and whole \"window_seconds\"")
            rate_limit = {"limit": limit, "window_seconds": window}
        with self._lock:
            self.queue = list(faults)
            self.rate_limit = rate_limit
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
        """(allowed, RateLimit-* headers) for one more request in the current window."""
        with self._lock:
            if self.rate_limit is None:
                return True, {}
            now = time.time()
            window = self.rate_limit["window_seconds"]
            if now - self._window_start >= window:  # windows start on whole seconds, as HTTP dates do
                self._window_start, self._window_count = float(int(now)), 0
            self._window_count += 1
            limit = int(self.rate_limit["limit"])
            reset = datetime.fromtimestamp(self._window_start + window, tz=timezone.utc)
            headers = {"RateLimit-Limit": str(limit), "RateLimit-Remaining": str(max(0, limit - self._window_count)),
                       "RateLimit-Reset": format_datetime(reset, usegmt=True)}
            return self._window_count <= limit, headers

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {"faults": [{"kind": f.kind, "count": f.count, "status": f.status, "seconds": f.seconds,
                                "path": f.path, "reset_seconds": f.reset_seconds} for f in self.queue],
                    "rate_limit": self.rate_limit, "injected": self.injected}


def _rate_limited_headers(reset_seconds: float) -> dict[str, str]:
    reset = datetime.now(timezone.utc) + timedelta(seconds=reset_seconds)
    return {"RateLimit-Limit": "1000", "RateLimit-Remaining": "0", "RateLimit-Reset": format_datetime(reset, usegmt=True)}


class ApiGate:
    """Outermost ASGI layer for API paths: the rate limit, then faults, then bearer auth and version."""

    def __init__(self, app: Any, faults: Faults, token: str) -> None:
        self.app, self.faults, self.token = app, faults, token

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        allowed, limit_headers = self.faults.check_rate()
        if not allowed:
            exc = ApiError(429, "invalid_api_usage", "rate_limit_exceeded",
                           "You have exceeded the rate limit. See the RateLimit-Reset header for when to retry.")
            await _error_response(exc, limit_headers)(scope, receive, send)
            return
        fault = self.faults.take(scope["path"])
        if fault is not None:
            if fault.kind == "delay":
                await asyncio.sleep(fault.seconds)
            else:
                await self._inject(fault, send, limit_headers)
                return
        problem = self._auth_problem(scope)
        if problem is not None:
            await _error_response(problem, limit_headers)(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start" and limit_headers:
                message = {**message, "headers": list(message.get("headers", [])) +
                           [(k.lower().encode(), v.encode()) for k, v in limit_headers.items()]}
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _auth_problem(self, scope: dict) -> ApiError | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        auth = headers.get("authorization")
        if not auth:
            return ApiError(401, "invalid_api_usage", "missing_authorization_header",
                            "Authorization header must be present and of the form 'Bearer <access token>'")
        if auth != f"Bearer {self.token}":
            return ApiError(401, "invalid_api_usage", "access_token_not_found",
                            "Access token not found")
        version = headers.get("gocardless-version")
        if not version:
            return ApiError(400, "invalid_api_usage", "missing_version_header",
                            "GoCardless-Version header must be provided, e.g. 2015-07-06")
        if version != API_VERSION:
            return ApiError(400, "invalid_api_usage", "version_not_found",
                            f"GoCardless-Version {version} is not supported by this stand-in ({API_VERSION})")
        return None

    async def _inject(self, fault: Fault, send: Callable, limit_headers: dict[str, str]) -> None:
        """Answer as broken infrastructure would; a JSON 5xx comes from GoCardless itself, with its headers."""
        if fault.kind == "drop":
            await _drop_connection(send)
            return
        if fault.kind == "html":
            status = fault.status or 502
            await _send_raw(send, status, HTML_PAGE.format(status=status, text="Bad Gateway").encode(),
                            "text/html; charset=utf-8", {})
            return
        if fault.kind == "rate_limit":
            body = json.dumps(error_body(429, "invalid_api_usage", "rate_limit_exceeded",
                                         "You have exceeded the rate limit.")).encode()
            await _send_raw(send, 429, body, "application/json", _rate_limited_headers(fault.reset_seconds))
            return
        status = fault.status or 500
        body = json.dumps(error_body(status, "gocardless", "internal_server_error",
                                     "Uh-oh! Something went wrong. Please try again.")).encode()
        await _send_raw(send, status, body, "application/json", limit_headers)


async def _send_raw(send: Callable, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
    raw_headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


async def _drop_connection(send: Callable) -> None:
    """Close the TCP connection without answering, as a crashing load balancer would.

    Under uvicorn the ASGI `send` is a method of the connection's request cycle, which holds the
    transport; closing it drops the connection before any byte is written. Elsewhere, start a response
    and break off mid-body, which the client sees as a broken connection too.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None:
        transport.abort() if hasattr(transport, "abort") else transport.close()
        for _ in range(3):
            await asyncio.sleep(0)
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"1000")]})
    await send({"type": "http.response.body", "body": b"{", "more_body": True})
    raise ConnectionAbortedError("connection dropped by fault injection")


# -- listing: filters and cursors ------------------------------------------------------------------------

def _links(item: dict[str, Any], name: str) -> Any:
    return (item.get("links") or {}).get(name)


Filter = Callable[[str], Callable[[dict], bool]]  # validates a query value, returns the item test


def _invalid(name: str, hint: str) -> ApiError:
    return ApiError(422, "validation_failed", "invalid_filter", f"{name} {hint}",
                    [{"field": name, "message": hint, "request_pointer": f"/{name}"}])


def _ordered(prefix: str, parse: Callable[[str], Any], hint: str) -> dict[str, Filter]:
    """`prefix[gt|gte|lt|lte]` filters over a value parsed the same way on both sides."""
    tests = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b,
             "lte": lambda a, b: a <= b}

    def make(op: str) -> Filter:
        def build(value: str) -> Callable[[dict], bool]:
            try:
                bound = parse(value)
            except ValueError:
                raise _invalid(f"{prefix}[{op}]", hint) from None
            return lambda item: bool(item.get(prefix)) and tests[op](parse(item[prefix]), bound)
        return build
    return {f"{prefix}[{op}]": make(op) for op in tests}


def _time_filters(prefix: str) -> dict[str, Filter]:
    return _ordered(prefix, parse_iso, "must be an ISO 8601 timestamp, e.g. 2026-11-01T00:00:00.000Z")


def _date_filters(prefix: str) -> dict[str, Filter]:
    return _ordered(prefix, date.fromisoformat, "must be a date, e.g. 2026-11-01")


def _equals(getter: Callable[[dict], Any]) -> Filter:
    return lambda value: lambda item: str(getter(item)) == value


def page(items: list[dict[str, Any]], params: dict[str, str], filters: dict[str, Filter],
         envelope: str, ignored: Sequence[str] = ()) -> dict[str, Any]:
    """Filter, sort newest first and cut one page; `meta.cursors.after` is null on the last page."""
    unknown = sorted(set(params) - set(filters) - {"after", "before", "limit", *ignored})
    if unknown:
        raise ApiError(400, "invalid_api_usage", "invalid_filters",
                       f"unknown query parameter(s): {', '.join(unknown)}")
    limit = _limit(params.get("limit"))
    tests = [filters[k](v) for k, v in params.items() if k in filters]
    selected = [i for i in items if all(test(i) for test in tests)]
    selected.sort(key=lambda i: (i.get("created_at") or "", i.get("id") or ""), reverse=True)
    ids = [i.get("id") for i in selected]
    start, end = 0, min(limit, len(selected))
    if params.get("after"):
        start = _cursor_index(ids, params["after"]) + 1
        end = min(start + limit, len(selected))
    elif params.get("before"):
        end = _cursor_index(ids, params["before"])
        start = max(0, end - limit)
    chunk = selected[start:end]
    cursors = {"before": chunk[0]["id"] if chunk and start > 0 else None,
               "after": chunk[-1]["id"] if chunk and end < len(selected) else None}
    return {envelope: copy.deepcopy(chunk), "meta": {"cursors": cursors, "limit": limit}}


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise ApiError(400, "invalid_api_usage", "invalid_limit", f"limit must be between 1 and {MAX_LIMIT}")
    return int(value)


def _cursor_index(ids: list[Any], cursor: str) -> int:
    try:
        return ids.index(cursor)
    except ValueError:
        raise ApiError(400, "invalid_api_usage", "cursor_invalid", f"cursor {cursor!r} is not valid for this list") from None


# -- the app ---------------------------------------------------------------------------------------------

class GoCardlessApi:
    """Routes over one GoCardlessWorld; every read copies under the world's lock."""

    def __init__(self, world: GoCardlessWorld, sender: WebhookSender, faults: Faults) -> None:
        self.world, self.sender, self.faults = world, sender, faults

    def routes(self) -> list[Route]:
        w = self.world
        lists = {
            "payments": (lambda: w.payments, {
                **_time_filters("created_at"), **_date_filters("charge_date"),
                "status": _equals(lambda i: i["status"]), "currency": _equals(lambda i: i["currency"]),
                "mandate": _equals(lambda i: _links(i, "mandate")), "creditor": _equals(lambda i: _links(i, "creditor")),
                "customer": _equals(lambda i: _links(w.mandates.get(_links(i, "mandate"), {}), "customer")),
            }),
            "customers": (lambda: w.customers, {**_time_filters("created_at")}),
            "mandates": (lambda: w.mandates, {**_time_filters("created_at"), "status": _equals(lambda i: i["status"]),
                                              "customer": _equals(lambda i: _links(i, "customer"))}),
            "refunds": (lambda: w.refunds, {**_time_filters("created_at"), "payment": _equals(lambda i: _links(i, "payment")),
                                            "mandate": _equals(lambda i: _links(i, "mandate"))}),
            "payouts": (lambda: w.payouts, {**_time_filters("created_at"), "status": _equals(lambda i: i["status"]),
                                            "currency": _equals(lambda i: i["currency"]),
                                            "creditor": _equals(lambda i: _links(i, "creditor"))}),
            "events": (lambda: w.events, {
                **_time_filters("created_at"), "resource_type": _equals(lambda i: i["resource_type"]),
                "action": _equals(lambda i: i["action"]),
                **{name: _equals(lambda i, n=name: _links(i, n)) for name in
                   ("payment", "mandate", "refund", "payout", "customer", "subscription", "parent_event")},
            }),
            "creditors": (lambda: {w.creditor["id"]: w.creditor}, {**_time_filters("created_at")}),
        }
        routes = []
        for name, (source, filters) in lists.items():
            routes.append(Route(f"/{name}", self._lister(name, source, filters), methods=["GET"]))
            routes.append(Route(f"/{name}/{{id}}", self._getter(name, source), methods=["GET"]))
        routes += [
            Route("/customers/{id}", _guard(self.update_customer), methods=["PUT"]),
            Route("/payout_items", _guard(self.payout_items), methods=["GET"]),
            Route(f"{CONTROL_PREFIX}/step", self.control_step, methods=["POST"]),
            Route(f"{CONTROL_PREFIX}/status", self.control_status, methods=["GET"]),
            Route(f"{CONTROL_PREFIX}/faults", self.control_faults, methods=["GET", "POST", "DELETE"]),
        ]
        return routes

    def _lister(self, name: str, source: Callable[[], dict], filters: dict) -> Callable:
        ignored = ("include",) if name == "events" else ()

        async def handler(request: Request) -> Response:
            with self.world.lock:
                body = page(list(source().values()), dict(request.query_params), filters, name, ignored)
            return JSONResponse(body)
        return _guard(handler)

    def _getter(self, name: str, source: Callable[[], dict]) -> Callable:
        async def handler(request: Request) -> Response:
            with self.world.lock:
                item = source().get(request.path_params["id"])
                body = {name: copy.deepcopy(item)} if item is not None else None
            if body is None:
                raise ApiError(404, "invalid_api_usage", "resource_not_found", "Resource not found")
            return JSONResponse(body)
        return _guard(handler)

    async def update_customer(self, request: Request) -> Response:
        customer_id = request.path_params["id"]
        if customer_id not in self.world.customers:
            raise ApiError(404, "invalid_api_usage", "resource_not_found", "Resource not found")
        try:
            body = json.loads(await request.body() or b"{}")
        except ValueError:
            raise ApiError(400, "invalid_api_usage", "invalid_document_structure", "Invalid document structure") from None
        changes = body.get("customers") if isinstance(body, dict) else None
        if not isinstance(changes, dict):
            raise ApiError(400, "invalid_api_usage", "invalid_document_structure",
                           'The request body must be {"customers": {...}}')
        unknown = sorted(set(changes) - CUSTOMER_FIELDS)
        if unknown:
            raise ApiError(422, "validation_failed", "validation_failed", "Validation failed",
                           [{"field": k, "message": "is not a customer attribute", "request_pointer": f"/customers/{k}"}
                            for k in unknown])
        if "metadata" in changes:
            _check_metadata(changes["metadata"])
        return JSONResponse({"customers": self.world.update_customer(customer_id, changes)})

    async def payout_items(self, request: Request) -> Response:
        """Items carry no id of their own; the stand-in numbers them internally to serve as cursors."""
        params = dict(request.query_params)
        payout_id = params.pop("payout", None)
        if not payout_id:
            raise ApiError(422, "validation_failed", "validation_failed", "Validation failed",
                           [{"field": "payout", "message": "is required", "request_pointer": "/payout"}])
        with self.world.lock:
            payout = self.world.payouts.get(payout_id)
            if payout is None:
                raise ApiError(404, "invalid_api_usage", "resource_not_found", "Resource not found")
            count = len(self.world.payout_items[payout_id])
            items = [dict(item, id=f"{payout_id}-{count - n:05d}", created_at=payout["created_at"])
                     for n, item in enumerate(self.world.payout_items[payout_id])]
        body = page(items, params, {}, "payout_items", ("include_2020_tax_cutover",))
        for item in body["payout_items"]:
            del item["id"], item["created_at"]
        return JSONResponse(body)

    # -- control --------------------------------------------------------------------------------------------

    async def control_step(self, request: Request) -> Response:
        wait = request.query_params.get("wait")
        events = self.world.play_next_step()
        webhook_ids = self.sender.send(events)
        settled = None
        if wait:
            settled = await asyncio.get_running_loop().run_in_executor(None, self.sender.wait_idle, float(wait))
        status = self.world.status()
        return JSONResponse({"step": status["step"], "total_steps": status["total_steps"],
                             "finished": status["finished"], "events": events, "webhook_ids": webhook_ids,
                             "deliveries_settled": settled})

    async def control_status(self, _request: Request) -> Response:
        return JSONResponse({**self.world.status(), "webhooks": self.sender.status(), **self.faults.describe()})

    async def control_faults(self, request: Request) -> Response:
        if request.method == "DELETE":
            self.faults.configure([], None)
        elif request.method == "POST":
            try:
                body = json.loads(await request.body() or b"{}")
                faults = [Fault.parse(f) for f in body.get("faults", [])]
                self.faults.configure(faults, body.get("rate_limit"))
            except (ValueError, AttributeError, TypeError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(self.faults.describe())


def _guard(handler: Callable) -> Callable:
    """Turn ApiError into GoCardless's error JSON."""
    async def wrapped(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as exc:
            return _error_response(exc)
    return wrapped


def _check_metadata(metadata: Any) -> None:
    problems = []
    if not isinstance(metadata, dict):
        problems.append("must be an object of string keys and values")
    else:
        if len(metadata) > 3:
            problems.append("may have at most 3 keys")
        for key, value in metadata.items():
            if len(key) > 50:
                problems.append(f"key {key[:20]!r}... is longer than 50 characters")
            if not isinstance(value, str) or len(value) > 500:
                problems.append(f"value of {key!r} must be a string of at most 500 characters")
    if problems:
        raise ApiError(422, "validation_failed", "validation_failed", "Validation failed",
                       [{"field": "metadata", "message": p, "request_pointer": "/customers/metadata"} for p in problems])


async def _not_found(request: Request, exc: HTTPException) -> Response:
    if exc.status_code == 405:
        return _error_response(ApiError(405, "invalid_api_usage", "method_not_allowed", "Method not allowed"))
    return _error_response(ApiError(404, "invalid_api_usage", "path_not_found", "Path not found"))


def create_app(world: GoCardlessWorld, sender: WebhookSender, faults: Faults, token: str) -> Any:
    api = GoCardlessApi(world, sender, faults)
    app = Starlette(routes=api.routes(), exception_handlers={404: _not_found, 405: _not_found})
    return ApiGate(app, faults, token)


# -- starting it -----------------------------------------------------------------------------------------

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

    @property
    def url(self) -> str:
        return self.server.url

    def __repr__(self) -> str:
        return f"GoCardlessStandIn({self.url!r}, step {self.world.step_index}/{self.world.total_steps})"

    def credentials(self) -> dict[str, str]:
        """What to configure the connector with (these are sandbox values, shown on purpose)."""
        return {"ML_CONNECTOR_GOCARDLESS_API_URL": self.url, "ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN": self.token,
                "ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS": self.webhook_secret}

    def play_step(self) -> list[dict[str, Any]]:
        """Play the next step and queue its webhooks (same as POST /_sandbox/step)."""
        events = self.world.play_next_step()
        self.sender.send(events)
        return events

    def wait_deliveries(self, timeout: float | None = None) -> bool:
        return self.sender.wait_idle(timeout)

    def set_faults(self, faults: Sequence[dict[str, Any]] = (), rate_limit: dict[str, Any] | None = None) -> None:
        self.faults.configure([Fault.parse(f) for f in faults], rate_limit)

    def status(self) -> dict[str, Any]:
        return {**self.world.status(), "webhooks": self.sender.status(), **self.faults.describe()}

    def stop(self) -> None:
        self.server.stop()
        self.sender.close()


def start_gocardless_stand_in(scenario: Scenario | str | Path, host: str = "127.0.0.1", port: int = 0,
                              token: str = DEFAULT_TOKEN, webhook_url: str | None = None,
                              webhook_secret: str = DEFAULT_WEBHOOK_SECRET, *,
                              retry_intervals: Sequence[float] = GOCARDLESS_RETRY_INTERVALS,
                              seed: int | None = None, clock: Callable[[], datetime] | None = None) -> GoCardlessStandIn:
    """Load the scenario and serve the stand-in; webhooks go to `webhook_url` when one is given."""
    if not isinstance(scenario, Scenario):
        scenario = load_scenario(scenario)
    world = GoCardlessWorld(scenario, clock=clock, seed=seed)
    sender = WebhookSender(webhook_url, webhook_secret, retry_intervals=retry_intervals)
    faults = Faults()
    try:
        server = serve_in_thread(create_app(world, sender, faults, token), host, port)
    except Exception:
        sender.close()
        raise
    return GoCardlessStandIn(server, world, sender, faults, token, webhook_url, webhook_secret)


__all__ = ["start_gocardless_stand_in", "GoCardlessStandIn", "create_app", "Fault", "Faults", "DEFAULT_TOKEN",
           "DEFAULT_WEBHOOK_SECRET"]
