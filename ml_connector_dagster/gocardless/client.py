"""GoCardless API client: the official `gocardless_pro` library underneath, with the backoff it lacks.

`gocardless_pro` builds requests, envelopes and errors faithfully, but retries only timeouts, connection
errors and non-JSON bodies (3 tries, fixed 0.5 s) and never a JSON 5xx or a 429. Here its own retries are
turned off and every call goes through one policy: exponential backoff with jitter on timeouts,
connection errors, 5xx, 429 (waiting until `RateLimit-Reset` when given) and non-JSON error pages,
bounded both in attempts and in total time. Failures come out as typed errors whose messages say what
was called and what went wrong, and never contain the access token.

Resources are returned as plain dicts (the API's JSON), amounts in integer minor units as GoCardless
sends them. The product's only write to GoCardless is `update_customer_metadata`.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Protocol, TypeVar

import requests
from gocardless_pro import errors as gc_errors
from gocardless_pro import services
from gocardless_pro.api_client import ApiClient

from ..secrets import Secret
from ..settings import GoCardlessSettings

log = logging.getLogger("ml_connector_dagster.gocardless.client")
API_VERSION = "2015-07-06"
PAGE_LIMIT = 500  # GoCardless's maximum page size
RETRYABLE_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
T = TypeVar("T")


class GoCardlessError(Exception):
    """Base of every client error; `status` is the HTTP status when there was a response."""

    def __init__(
        self, message: str, status: int | None = None, reason: str | None = None, request_id: str | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.reason = reason
        self.request_id = request_id


class GoCardlessAuthError(GoCardlessError):
    """401/403: the access token is wrong, revoked or lacks permission. Retrying cannot help."""


class GoCardlessNotFound(GoCardlessError):
    """404: no such resource (a wrong id, or a resource of another GoCardless account)."""


class GoCardlessRequestError(GoCardlessError):
    """Another 4xx: the request itself is wrong (validation failed, invalid state, bad filter...)."""


class GoCardlessUnavailable(GoCardlessError):
    """Retries exhausted (attempts or time budget) on 5xx, 429, timeouts, dropped connections or error pages."""


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try. Tests pass tiny delays; production keeps the defaults."""

    max_attempts: int = 6
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 30.0
    max_total_seconds: float = 120.0
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 30.0

    def delay(self, attempt: int) -> float:
        """Exponential backoff with jitter: base * 2^(attempt-1), capped, times U[0.5, 1)."""
        raw = min(self.max_delay_seconds, self.base_delay_seconds * 2.0 ** (attempt - 1))
        return raw * (0.5 + random.random() / 2)


@dataclass(frozen=True)
class ResolvedPayment:
    """A payment with the mandate and customer it belongs to (a payment has no direct customer link)."""

    payment: dict[str, Any]
    mandate: dict[str, Any]
    customer: dict[str, Any]


class _Resource(Protocol):
    """A resource as gocardless_pro returns it: its JSON is `attributes`."""

    @property
    def attributes(self) -> dict[str, Any]: ...


class _Page(Protocol):
    """One page of a list: its resources, and the cursor of the next page (None on the last)."""

    @property
    def records(self) -> Sequence[_Resource]: ...
    @property
    def after(self) -> str | None: ...


class _Service(Protocol):
    """What the client uses of a gocardless_pro service class (the library ships no type information)."""

    RESOURCE_NAME: ClassVar[str]

    def __init__(self, api_client: _Transport, max_network_retries: int, retry_delay_in_seconds: float) -> None: ...
    def get(self, identity: str) -> _Resource: ...
    def list(self, params: dict[str, Any]) -> _Page: ...


class _Transport(ApiClient):  # type: ignore[misc] # gocardless_pro ships no type information: ApiClient is Any
    """gocardless_pro's ApiClient on a pooled session, remembering the status and headers of errors."""

    def __init__(self, base_url: str, access_token: str, timeout: tuple[float, float]) -> None:
        super().__init__(base_url, access_token, timeout=timeout)
        self.session = requests.Session()

    def get(
        self, path: str, params: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None
    ) -> requests.Response:
        return self._send("GET", path, params=params, headers=headers)

    def put(self, path: str, body: object, headers: Mapping[str, str] | None = None) -> requests.Response:
        return self._send("PUT", path, data=json.dumps(body), headers=headers)

    def _send(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        headers = self._headers(kwargs.pop("headers", None))
        response = self.session.request(method, self._url_for(path), headers=headers, timeout=self.timeout, **kwargs)
        try:
            self._handle_errors(response)
        except gc_errors.GoCardlessProError as exc:
            exc.http_status = response.status_code
            exc.http_headers = dict(response.headers)
            raise
        self.rate_limit.update_from_response(response)
        return response

    def __repr__(self) -> str:
        return f"_Transport({self.base_url!r})"


class GoCardlessClient:
    """The GoCardless API as the product uses it: reads, plus customer metadata updates."""

    def __init__(
        self,
        base_url: str,
        access_token: Secret | str,
        policy: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        token = access_token.reveal() if isinstance(access_token, Secret) else access_token
        if not token:
            raise GoCardlessAuthError("no GoCardless access token: set ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN")
        self.base_url = base_url.rstrip("/")
        self.policy = policy or RetryPolicy()
        self._sleep = sleep
        timeout = (self.policy.connect_timeout_seconds, self.policy.read_timeout_seconds)
        self._transport = _Transport(self.base_url, token, timeout)

    @classmethod
    def from_settings(cls, settings: GoCardlessSettings, policy: RetryPolicy | None = None) -> GoCardlessClient:
        """A client of the API `settings` names (`Settings.gocardless()`, which refuses to be built without a token)."""
        return cls(settings.api_url, settings.access_token, policy)

    def __repr__(self) -> str:
        return f"GoCardlessClient({self.base_url!r})"

    def close(self) -> None:
        self._transport.session.close()

    # -- payments, mandates, customers ------------------------------------------------------------

    def get_payment(self, payment_id: str) -> dict[str, Any]:
        return self._get(services.PaymentsService, payment_id)

    def list_payments(self, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every payment matching `params` (flat filters, e.g. {"created_at[gte]": "2026-11-01T00:00:00Z"})."""
        return self._list(services.PaymentsService, params)

    def get_mandate(self, mandate_id: str) -> dict[str, Any]:
        return self._get(services.MandatesService, mandate_id)

    def get_customer(self, customer_id: str) -> dict[str, Any]:
        return self._get(services.CustomersService, customer_id)

    def list_customers(self, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        return self._list(services.CustomersService, params)

    def resolve_payment(self, payment_id: str) -> ResolvedPayment:
        """Payment -> its mandate -> the mandate's customer (GoCardless links payments only to mandates)."""
        payment = self.get_payment(payment_id)
        mandate_id = (payment.get("links") or {}).get("mandate")
        if not mandate_id:
            raise GoCardlessRequestError(f"payment {payment_id} has no links.mandate; cannot find its customer")
        mandate = self.get_mandate(mandate_id)
        customer_id = (mandate.get("links") or {}).get("customer")
        if not customer_id:
            raise GoCardlessRequestError(f"mandate {mandate_id} has no links.customer")
        return ResolvedPayment(payment, mandate, self.get_customer(customer_id))

    def update_customer_metadata(self, customer_id: str, metadata: Mapping[str, str]) -> dict[str, Any]:
        """Set a customer's metadata (the product's only write to GoCardless).

        GoCardless allows at most 3 keys, keys up to 50 and values up to 500 characters; checked here
        first so the error names the offending key. Pass the whole metadata object you want to keep.
        """
        _check_metadata(metadata)
        service = services.CustomersService(self._transport, 1, 0)
        return self._call(
            f"PUT /customers/{customer_id}",
            lambda: service.update(customer_id, params={"metadata": dict(metadata)}).attributes,
        )

    # -- refunds, payouts, events, creditors --------------------------------------------------------

    def get_refund(self, refund_id: str) -> dict[str, Any]:
        return self._get(services.RefundsService, refund_id)

    def list_refunds(self, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        return self._list(services.RefundsService, params)

    def get_payout(self, payout_id: str) -> dict[str, Any]:
        return self._get(services.PayoutsService, payout_id)

    def list_payouts(self, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        return self._list(services.PayoutsService, params)

    def payout_items(self, payout_id: str) -> Iterator[dict[str, Any]]:
        """The items of one payout; their `amount` is a string of minor units ("45.0"), as GoCardless sends."""
        return self._list(services.PayoutItemsService, {"payout": payout_id})

    def list_events(self, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Events, newest first (filters: resource_type, action, created_at[gt|gte|lt|lte], payment, ...)."""
        return self._list(services.EventsService, params)

    def get_creditors(self) -> list[dict[str, Any]]:
        return list(self._list(services.CreditorsService, None))

    # -- the retry policy -----------------------------------------------------------------------------

    def _get(self, service_class: type[_Service], identity: str) -> dict[str, Any]:
        service = service_class(self._transport, 1, 0)
        what = f"GET /{service_class.RESOURCE_NAME}/{identity}"
        return self._call(what, lambda: service.get(identity).attributes)

    def _list(self, service_class: type[_Service], params: Mapping[str, Any] | None) -> Iterator[dict[str, Any]]:
        """Follow `meta.cursors.after` until it is null, 500 per page; each page retried on its own."""
        query = _flat_params(params)
        query.setdefault("limit", PAGE_LIMIT)
        service = service_class(self._transport, 1, 0)
        what = f"GET /{service_class.RESOURCE_NAME}"
        while True:
            page = self._call(what, lambda: service.list(params=dict(query)))
            for record in page.records:
                yield record.attributes
            if page.after is None:
                return
            query["after"] = page.after

    def _call(self, what: str, request: Callable[[], T]) -> T:
        """Run `request` under the retry policy; raise a typed GoCardlessError when it cannot succeed."""
        policy = self.policy
        deadline = time.monotonic() + policy.max_total_seconds
        for attempt in range(1, policy.max_attempts + 1):
            try:
                return request()
            except Exception as exc:  # noqa: BLE001 - classified below; anything unknown is re-raised untouched
                problem, wait = _classify(what, exc)
                if attempt == policy.max_attempts:
                    raise GoCardlessUnavailable(
                        f"{what}: gave up after {attempt} attempts; last: {problem}", status=_status(exc)
                    ) from None
                delay = policy.delay(attempt) if wait is None else wait
                if time.monotonic() + delay > deadline:
                    raise GoCardlessUnavailable(
                        f"{what}: gave up after {attempt} attempts; waiting {delay:.1f}s more would exceed "
                        f"the {policy.max_total_seconds:g}s budget; last: {problem}",
                        status=_status(exc),
                    ) from None
                log.warning(
                    "%s failed (attempt %d of %d): %s; retrying in %.2fs",
                    what,
                    attempt,
                    policy.max_attempts,
                    problem,
                    delay,
                )
                self._sleep(delay)
        raise AssertionError("unreachable")


def _classify(what: str, exc: Exception) -> tuple[str, float | None]:
    """Return (problem, wait hint) for a retryable failure; raise the typed error for a final one."""
    status = _status(exc)
    if isinstance(exc, requests.Timeout):
        return "timed out", None
    if isinstance(
        exc,
        (requests.ConnectionError, requests.exceptions.ChunkedEncodingError, requests.exceptions.ContentDecodingError),
    ):
        return f"connection failed ({exc.__class__.__name__})", None
    if isinstance(exc, gc_errors.MalformedResponseError):
        if status is None or status in RETRYABLE_STATUSES or status < 400:
            return f"HTTP {status}: not a JSON response (an error page?)", _rate_limit_wait(exc, status)
        raise GoCardlessRequestError(f"{what}: HTTP {status} with a non-JSON body", status=status) from None
    if isinstance(exc, gc_errors.ApiError):
        message = f"{what}: HTTP {status} {exc.type or ''} {exc.message or ''}".strip()
        reason = ((exc.errors or [{}])[0] or {}).get("reason")
        retryable = (gc_errors.RateLimitError, gc_errors.GoCardlessInternalError)
        if status in RETRYABLE_STATUSES or isinstance(exc, retryable):
            return f"HTTP {status} {exc.message or ''}".strip(), _rate_limit_wait(exc, status)
        kind = {401: GoCardlessAuthError, 403: GoCardlessAuthError, 404: GoCardlessNotFound}.get(
            status or 0, GoCardlessRequestError
        )
        raise kind(
            f"{message} ({reason})" if reason else message, status=status, reason=reason, request_id=exc.request_id
        ) from None
    if isinstance(exc, gc_errors.GoCardlessProError):
        raise GoCardlessRequestError(f"{what}: {exc}") from None
    raise exc


def _status(exc: Exception) -> int | None:
    status = getattr(exc, "http_status", None) or getattr(exc, "status_code", None)
    return int(status) if status else None


HTTP_DATE_GRANULARITY = 1.0


def _rate_limit_wait(exc: Exception, status: int | None) -> float | None:
    """For a 429: seconds until `RateLimit-Reset` (an HTTP date) or `Retry-After`, when given.

    GoCardless sends RateLimit-* headers on every response, so they mean "wait" only on a 429; a 5xx
    backs off exponentially instead.
    """
    if status != 429:
        return None
    headers = {k.lower(): v for k, v in (getattr(exc, "http_headers", None) or {}).items()}
    reset = headers.get("ratelimit-reset")
    if reset:
        try:
            when = parsedate_to_datetime(reset)
            if when.tzinfo is None:
                when = when.replace(tzinfo=UTC)
            # An HTTP date has whole seconds: the window may end up to a second after the one named.
            until = (when - datetime.now(UTC)).total_seconds() + HTTP_DATE_GRANULARITY
            return max(0.0, until) + random.uniform(0.0, 0.25)
        except (TypeError, ValueError):
            pass
    retry_after = headers.get("retry-after")
    if retry_after and retry_after.strip().isdigit():
        return float(retry_after.strip())
    return None


def _flat_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """GoCardless filters are flat keys; a nested dict would be silently sent wrong, so refuse it."""
    query: dict[str, Any] = {}
    for key, value in (params or {}).items():
        if isinstance(value, (dict, list, tuple, set)):
            raise ValueError(
                f"GoCardless filter {key!r} must be a single value; write nested filters flat, "
                f"e.g. {{'{key}[gte]': ...}}"
            )
        query[key] = value
    return query


def _check_metadata(metadata: Mapping[str, str]) -> None:
    if len(metadata) > 3:
        raise GoCardlessRequestError(f"metadata has {len(metadata)} keys; GoCardless allows at most 3")
    for key, value in metadata.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise GoCardlessRequestError(f"metadata {key!r}: keys and values must be strings")
        if len(key) > 50:
            raise GoCardlessRequestError(f"metadata key {key[:50]!r}... is longer than 50 characters")
        if len(value) > 500:
            raise GoCardlessRequestError(f"metadata {key!r}: value is longer than 500 characters")


__all__ = [
    "API_VERSION",
    "PAGE_LIMIT",
    "GoCardlessAuthError",
    "GoCardlessClient",
    "GoCardlessError",
    "GoCardlessNotFound",
    "GoCardlessRequestError",
    "GoCardlessUnavailable",
    "ResolvedPayment",
    "RetryPolicy",
]
