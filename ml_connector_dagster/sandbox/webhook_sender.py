"""Delivers GoCardless events as signed webhooks, retrying failures with growing intervals as GoCardless does.

A delivery is `{"events": [...], "meta": {"webhook_id": "WB..."}}` POSTed with `Webhook-Signature` (hex
HMAC-SHA256 of the raw body keyed with the secret) and `User-Agent: gocardless-webhook-service/1.1`.
Any non-2xx answer, a redirect (not followed), a timeout or a refused connection is a failure; a failed
delivery is retried after each interval in `retry_intervals` and then given up. Tests pass short intervals
and wait with `wait_idle()`, which blocks on a condition instead of sleeping.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TypedDict

import requests

from ..gocardless.webhooks import sign
from .gocardless_shapes import Event, Webhook

log = logging.getLogger("ml_connector_dagster.sandbox.webhooks")
# GoCardless retries a failed webhook up to 8 times at growing intervals (1 min, 2 min, 10 min, ...).
GOCARDLESS_RETRY_INTERVALS = (60.0, 120.0, 600.0, 1800.0, 3600.0, 7200.0, 21600.0, 43200.0)
USER_AGENT = "gocardless-webhook-service/1.1"
MAX_EVENTS_PER_WEBHOOK = 250
_ID_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str, rng: random.Random | None = None) -> str:
    """A GoCardless-looking id: the resource prefix and 12 upper-case letters or digits."""
    choice = (rng or random).choice
    return prefix + "".join(choice(_ID_ALPHABET) for _ in range(12))


class SenderCounts(TypedDict):
    webhooks_sent: int
    webhooks_delivered: int
    webhooks_failed: int  # given up after every retry
    attempts: int
    failed_attempts: int


class SenderStatus(SenderCounts):
    pending: int  # queued or in flight
    url: str | None
    last_error: str | None


@dataclass(order=True)
class _Delivery:
    due: float
    order: int
    url: str = field(compare=False)
    webhook_id: str = field(compare=False)
    body: bytes = field(compare=False)
    event_ids: tuple[str, ...] = field(compare=False)
    attempts: int = field(default=0, compare=False)


class WebhookSender:
    """A background thread that delivers queued webhooks; safe to call from any thread."""

    def __init__(
        self,
        url: str | None,
        secret: str,
        retry_intervals: Sequence[float] = GOCARDLESS_RETRY_INTERVALS,
        timeout_seconds: float = 10.0,
        batch_size: int = MAX_EVENTS_PER_WEBHOOK,
        origin: str = "https://api-sandbox.gocardless.com",
    ) -> None:
        self.url = url
        self._secret = secret
        self.retry_intervals = tuple(retry_intervals)
        self.timeout_seconds = timeout_seconds
        self.batch_size = batch_size
        self.origin = origin
        self._queue: list[_Delivery] = []
        self._order = itertools.count()
        self._cond = threading.Condition()
        self._in_flight = 0
        self._closed = False
        self.stats: SenderCounts = {
            "webhooks_sent": 0,
            "webhooks_delivered": 0,
            "webhooks_failed": 0,
            "attempts": 0,
            "failed_attempts": 0,
        }
        self.last_error: str | None = None
        self._session = requests.Session()
        self._thread = threading.Thread(target=self._run, name="webhook-sender", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"WebhookSender({self.url!r})"

    def send(self, events: Sequence[Event]) -> list[str]:
        """Queue `events` in webhooks of at most `batch_size`; returns their webhook ids. No-op without a URL."""
        url = self.url
        if not url or not events:
            return []
        ids = []
        with self._cond:
            for start in range(0, len(events), self.batch_size):
                batch = list(events[start : start + self.batch_size])
                webhook_id = new_id("WB")
                webhook: Webhook = {"events": batch, "meta": {"webhook_id": webhook_id}}
                body = json.dumps(webhook, separators=(",", ":")).encode()
                heapq.heappush(
                    self._queue,
                    _Delivery(
                        time.monotonic(), next(self._order), url, webhook_id, body, tuple(e["id"] for e in batch)
                    ),
                )
                self.stats["webhooks_sent"] += 1
                ids.append(webhook_id)
            self._cond.notify_all()
        return ids

    def pending(self) -> int:
        with self._cond:
            return len(self._queue) + self._in_flight

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until every queued webhook was delivered or given up; False if `timeout` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._in_flight, timeout)

    def wait_for(self, predicate: Callable[[SenderStatus], bool], timeout: float | None = None) -> bool:
        """Block until `predicate(status())` holds (e.g. a first failed attempt); False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self._status_locked()), timeout)

    def status(self) -> SenderStatus:
        with self._cond:
            return self._status_locked()

    def _status_locked(self) -> SenderStatus:
        return {
            **self.stats,
            "pending": len(self._queue) + self._in_flight,
            "url": self.url,
            "last_error": self.last_error,
        }

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._thread.join(5)
        self._session.close()

    # -- the worker -------------------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            delivery = self._next_due()
            if delivery is None:
                return
            ok, problem = self._post(delivery)
            self._settle(delivery, ok, problem)

    def _next_due(self) -> _Delivery | None:
        with self._cond:
            while not self._closed:
                if self._queue and self._queue[0].due <= time.monotonic():
                    self._in_flight += 1
                    return heapq.heappop(self._queue)
                wait = self._queue[0].due - time.monotonic() if self._queue else None
                self._cond.wait(wait)
            return None

    def _post(self, delivery: _Delivery) -> tuple[bool, str | None]:
        headers = {
            "Content-Type": "application/json",
            "Webhook-Signature": sign(delivery.body, self._secret),
            "User-Agent": USER_AGENT,
            "Origin": self.origin,
        }
        try:
            response = self._session.post(
                delivery.url, data=delivery.body, headers=headers, timeout=self.timeout_seconds, allow_redirects=False
            )
        except requests.RequestException as exc:
            return False, f"{exc.__class__.__name__}"
        if 200 <= response.status_code < 300:
            return True, None
        return False, f"HTTP {response.status_code}"

    def _settle(self, delivery: _Delivery, ok: bool, problem: str | None) -> None:
        with self._cond:
            self._in_flight -= 1
            delivery.attempts += 1
            self.stats["attempts"] += 1
            if ok:
                self.stats["webhooks_delivered"] += 1
            else:
                self.stats["failed_attempts"] += 1
                self.last_error = f"{delivery.webhook_id}: {problem}"
                if delivery.attempts <= len(self.retry_intervals):
                    delivery.due = time.monotonic() + self.retry_intervals[delivery.attempts - 1]
                    heapq.heappush(self._queue, delivery)
                    log.warning(
                        "webhook %s failed (%s); retry %d in %.2fs",
                        delivery.webhook_id,
                        problem,
                        delivery.attempts,
                        self.retry_intervals[delivery.attempts - 1],
                    )
                else:
                    self.stats["webhooks_failed"] += 1
                    log.error(
                        "webhook %s failed %d times (%s); giving up", delivery.webhook_id, delivery.attempts, problem
                    )
            self._cond.notify_all()
