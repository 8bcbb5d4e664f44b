"""The stand-in's outermost ASGI layer for API paths: the rate limit, then queued faults, then auth.

Every API request passes here before routing, as it would pass GoCardless's edge: every answer from
GoCardless carries RateLimit-* headers, and over the rate limit it is answered 429; a queued fault
(faults.py) is acted out as broken infrastructure would (a JSON 5xx, an HTML page, a dropped connection, a
delay); then the bearer token and the `GoCardless-Version` header are checked. The control API (under
CONTROL_PREFIX) skips all of it.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError, error_body, error_response
from .faults import Fault, Faults

API_VERSION = "2015-07-06"
CONTROL_PREFIX = "/_sandbox"
HTML_PAGE = (
    "<html><head><title>{status} Error</title></head><body><h1>{status} {text}</h1>"
    "<p>The server could not complete your request.</p></body></html>"
)


def _rate_limited_headers(reset_seconds: float) -> dict[str, str]:
    reset = datetime.now(UTC) + timedelta(seconds=reset_seconds)
    return {
        "RateLimit-Limit": "1000",
        "RateLimit-Remaining": "0",
        "RateLimit-Reset": format_datetime(reset, usegmt=True),
    }


class ApiGate:
    """Outermost ASGI layer for API paths: the rate limit, then faults, then bearer auth and version."""

    def __init__(self, app: ASGIApp, faults: Faults, token: str) -> None:
        self.app, self.faults, self.token = app, faults, token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        allowed, limit_headers = self.faults.check_rate()
        if not allowed:
            exc = ApiError(
                429,
                "invalid_api_usage",
                "rate_limit_exceeded",
                "You have exceeded the rate limit. See the RateLimit-Reset header for when to retry.",
            )
            await error_response(exc, limit_headers)(scope, receive, send)
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
            await error_response(problem, limit_headers)(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start" and limit_headers:
                message = {
                    **message,
                    "headers": list(message.get("headers", []))
                    + [(k.lower().encode(), v.encode()) for k, v in limit_headers.items()],
                }
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _auth_problem(self, scope: Scope) -> ApiError | None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        auth = headers.get("authorization")
        if not auth:
            return ApiError(
                401,
                "invalid_api_usage",
                "missing_authorization_header",
                "Authorization header must be present and of the form 'Bearer <access token>'",
            )
        if auth != f"Bearer {self.token}":
            return ApiError(401, "invalid_api_usage", "access_token_not_found", "Access token not found")
        version = headers.get("gocardless-version")
        if not version:
            return ApiError(
                400,
                "invalid_api_usage",
                "missing_version_header",
                "GoCardless-Version header must be provided, e.g. 2015-07-06",
            )
        if version != API_VERSION:
            return ApiError(
                400,
                "invalid_api_usage",
                "version_not_found",
                f"GoCardless-Version {version} is not supported by this stand-in ({API_VERSION})",
            )
        return None

    async def _inject(self, fault: Fault, send: Send, limit_headers: dict[str, str]) -> None:
        """Answer as broken infrastructure would; a JSON 5xx comes from GoCardless itself, with its headers."""
        if fault.kind == "drop":
            await _drop_connection(send)
            return
        if fault.kind == "html":
            status = fault.status or 502
            await _send_raw(
                send,
                status,
                HTML_PAGE.format(status=status, text="Bad Gateway").encode(),
                "text/html; charset=utf-8",
                {},
            )
            return
        if fault.kind == "rate_limit":
            body = json.dumps(
                error_body(429, "invalid_api_usage", "rate_limit_exceeded", "You have exceeded the rate limit.")
            ).encode()
            await _send_raw(send, 429, body, "application/json", _rate_limited_headers(fault.reset_seconds))
            return
        status = fault.status or 500
        body = json.dumps(
            error_body(status, "gocardless", "internal_server_error", "Uh-oh! Something went wrong. Please try again.")
        ).encode()
        await _send_raw(send, status, body, "application/json", limit_headers)


async def _send_raw(send: Send, status: int, body: bytes, content_type: str, headers: dict[str, str]) -> None:
    raw_headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body})


async def _drop_connection(send: Send) -> None:
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
