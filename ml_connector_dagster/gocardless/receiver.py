"""The webhook receiver: verify, store, answer. Nothing else happens in the request.

GoCardless wants a 2xx within 10 seconds and retries anything else, so the receiver does the minimum:
read at most `webhook_max_bytes`, check the signature on the raw bytes, parse, keep whitelisted events in
the inbox in one transaction, and answer 204 only once that transaction has committed. A signed delivery
whose fields do not have GoCardless's form answers 400 naming the field (storing it could never succeed,
so a retry would not help); only a store failure answers 503, so GoCardless delivers again later; a
redelivery stores nothing twice (keyed by event id). Slow clients and connection counts are httpserve's.

One JSON log line per delivery (webhook id, counts, latency); secrets and bodies are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from ..httpserve import BODY_TIMED_OUT
from ..settings import WebhookSettings
from ..store import Store
from ..store.inbox import AddResult
from .webhooks import SIGNATURE_HEADER, PayloadError, SignatureError, parse_delivery, verify_signature

log = logging.getLogger("ml_connector_dagster.gocardless.receiver")
WEBHOOK_PATH = "/webhooks/gocardless"


class BodyTooLarge(Exception):
    """The body is over the configured limit; raised before reading the rest of it."""


@dataclass
class _Pending:
    events: tuple[dict[str, Any], ...]
    webhook_id: str | None
    done: asyncio.Future[AddResult]


class GroupCommit:
    """Writes concurrent deliveries to the inbox together: one transaction (one fsync) for many.

    Under load, SQLite writers that each commit on their own queue on the file lock, and its busy
    handler polls with sleeps: throughput collapses and tail latency grows to seconds. Here deliveries
    wait on a future while one drain task writes everything pending in one transaction, so a commit
    is shared by all deliveries that arrived meanwhile. Each delivery is still all-or-nothing, and each
    request is answered only after the commit that holds its events. If a group fails, its deliveries
    are retried one by one, so one bad delivery cannot fail the others.
    """

    def __init__(self, store: Store, max_events: int = 5000) -> None:
        self.store = store
        self.max_events = max_events
        self._pending: list[_Pending] = []
        self._drainer: asyncio.Task[None] | None = None

    async def add(self, events: tuple[dict[str, Any], ...], webhook_id: str | None) -> AddResult:
        done: asyncio.Future[AddResult] = asyncio.get_running_loop().create_future()
        item = _Pending(events, webhook_id, done)
        self._pending.append(item)
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.get_running_loop().create_task(self._drain())
        return await item.done

    async def _drain(self) -> None:
        while self._pending:
            group: list[_Pending] = []
            size = 0
            while self._pending and (not group or size + len(self._pending[0].events) <= self.max_events):
                item = self._pending.pop(0)
                group.append(item)
                size += len(item.events)
            await self._write(group)

    async def _write(self, group: list[_Pending]) -> None:
        try:
            results = await run_in_threadpool(
                self.store.inbox.add_many, [(i.events, i.webhook_id, "webhook") for i in group]
            )
            for item, result in zip(group, results, strict=True):
                _settle(item.done, result)
        except Exception as exc:  # noqa: BLE001 - handed to the deliveries it failed, each retried alone
            if len(group) == 1:
                _settle(group[0].done, exc)
                return
            for item in group:  # isolate the delivery that made the group fail
                await self._write([item])


def create_app(settings: WebhookSettings, store: Store) -> Starlette:
    """The receiver's ASGI app (`Settings.webhooks()` refuses to be built without a secret: it could verify nothing)."""
    secrets = tuple(s.reveal() for s in settings.secrets)
    whitelist = settings.event_whitelist
    limit = settings.max_bytes
    writer = GroupCommit(store)

    async def receive_webhook(request: Request) -> Response:
        started = time.perf_counter()
        outcome: dict[str, Any] = {}
        try:
            response = await _handle(request, secrets, whitelist, limit, writer, outcome)
        finally:
            outcome["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
            _log_delivery(outcome)
        return response

    async def healthz(_request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    app = Starlette(
        routes=[
            Route(WEBHOOK_PATH, receive_webhook, methods=["POST"]),
            Route(WEBHOOK_PATH + "/", receive_webhook, methods=["POST"]),  # the same endpoint, not a redirect to it
            Route("/healthz", healthz, methods=["GET"]),
        ]
    )
    app.router.redirect_slashes = False  # GoCardless does not follow redirects: a 307 is a failed delivery
    return app


async def _handle(
    request: Request,
    secrets: tuple[str, ...],
    whitelist: frozenset[str],
    limit: int,
    writer: GroupCommit,
    outcome: dict[str, Any],
) -> Response:
    """Each early return names its reason in `outcome` for the delivery's log line."""
    try:
        body = await _read_body(request, limit)
    except BodyTooLarge:
        return _reject(outcome, 413, "body_too_large", f"body is larger than {limit} bytes")
    except ClientDisconnect:
        if request.scope.get(BODY_TIMED_OUT):  # BodyDeadline has answered 408 already; this is for the log
            return _reject(outcome, 408, "body_timeout", "the body did not arrive in time")
        return _reject(outcome, 400, "client_disconnected", "the client went away before sending the body")
    outcome["bytes"] = len(body)
    try:
        verify_signature(body, request.headers.get(SIGNATURE_HEADER), secrets)
    except SignatureError as exc:
        return _reject(outcome, 401, "bad_signature", exc.reason)
    try:
        delivery = parse_delivery(body, whitelist)
    except PayloadError as exc:
        return _reject(outcome, 400, "bad_payload", str(exc))
    outcome.update(
        webhook_id=delivery.webhook_id,
        events=delivery.event_count,
        ignored=len(delivery.ignored),
        ignored_kinds=sorted({f"{e['resource_type']}.{e['action']}" for e in delivery.ignored}),
    )
    if not delivery.accepted:  # nothing to keep: acknowledge without touching the store
        outcome.update(status=204, stored=0, duplicates=0)
        return Response(status_code=204)
    try:
        result = await writer.add(delivery.accepted, delivery.webhook_id)
    except Exception as exc:  # noqa: BLE001 - any store failure: make GoCardless try again later
        outcome["store_error"] = f"{exc.__class__.__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}"
        return _reject(outcome, 503, "store_unavailable", "the event store is unavailable; retry later")
    outcome.update(status=204, stored=result.stored, duplicates=result.duplicates)
    return Response(status_code=204)


async def _read_body(request: Request, limit: int) -> bytes:
    """Read the body, refusing early: by Content-Length before reading, then by counting while streaming."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge()
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge()
        chunks.append(chunk)
    return b"".join(chunks)


def _reject(outcome: dict[str, Any], status: int, reason: str, message: str) -> Response:
    outcome.update(status=status, reason=reason, message=message)
    headers = {"Connection": "close"} if status == 413 else None  # do not read the rest of a huge body
    return JSONResponse(
        {"error": {"code": status, "reason": reason, "message": message}}, status_code=status, headers=headers
    )


def _settle(future: asyncio.Future[AddResult], outcome: AddResult | BaseException) -> None:
    if future.done():  # the client went away and its request was cancelled
        return
    if isinstance(outcome, BaseException):
        future.set_exception(outcome)
    else:
        future.set_result(outcome)


def _log_delivery(outcome: dict[str, Any]) -> None:
    """One line per delivery; warning level for anything GoCardless will have to resend."""
    record = {"msg": "webhook.delivery", **outcome}
    level = logging.INFO if outcome.get("status") == 204 else logging.WARNING
    if log.isEnabledFor(level):
        log.log(level, json.dumps(record, separators=(",", ":"), default=str))
