"""The plumbing the Sage clients share: zeep, the WSDL cache, logon on every call, retries, typed errors.

- The WSDL is fetched and parsed once per process (per URL, CA bundle and timeout) and shared.
- `logon` {Username, Password} and `companyCode` go on every call; the password is revealed only while
  the request is built and is never logged (zeep's transport logs whole envelopes at DEBUG: ours does not).
- Reads are retried with exponential backoff and full jitter on timeouts, connection errors and 502/503/504.
- Faults become typed errors (faults.py, errors.py); money arrives and leaves as Decimal (the WSDLs declare
  xsd:decimal; floats are refused before anything is sent).

The clients themselves: agent_client.py (the agent on the Sage server) and ebusiness_client.py (Sage's
eBusiness Web Services).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Self, TypeVar

import requests
import zeep
import zeep.exceptions
from zeep.transports import Transport

from ..secrets import Secret
from ..settings import SageSettings
from .errors import SageError, SageUnavailable
from .faults import from_fault, from_transport

log = logging.getLogger(__name__)
T = TypeVar("T")


# --- retries --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """`attempts` tries in all; waits are random in [0, min(max_delay, base_delay * 2**n)] ("full jitter")."""

    attempts: int = 4
    base_delay: float = 0.5
    max_delay: float = 8.0
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)

    def delays(self) -> Iterator[float]:
        for n in range(max(self.attempts - 1, 0)):
            yield random.uniform(0, min(self.max_delay, self.base_delay * 2**n))


# --- transport and WSDL cache ---------------------------------------------------------------------------------


class _QuietTransport(Transport):
    """zeep's Transport without its DEBUG dump of request bodies (they hold the Sage password)."""

    def __init__(self, session: requests.Session, timeout: float, operation_timeout: float) -> None:
        # zeep's Transport.__init__ is unannotated (untyped_calls_exclude does not reach a super() call)
        super().__init__(session=session, timeout=timeout, operation_timeout=operation_timeout)  # type: ignore[no-untyped-call]

    def post(self, address: str, message: Any, headers: dict[str, str]) -> requests.Response:
        return self.session.post(address, data=message, headers=headers, timeout=self.operation_timeout)


class _Session(requests.Session):
    """A configured CA bundle wins: plain requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override it."""

    def __init__(self, ca_bundle: str | None) -> None:
        super().__init__()
        self.ca_bundle = ca_bundle

    def merge_environment_settings(
        self,
        url: str,
        proxies: dict[str, str] | None,
        stream: bool | None,
        verify: bool | str | None,
        cert: str | tuple[str, str] | None,
    ) -> dict[str, Any]:
        merged = super().merge_environment_settings(url, proxies, stream, verify, cert)
        if self.ca_bundle:
            merged["verify"] = self.ca_bundle
        return merged


_CLIENTS: dict[tuple[str, str | None, float], zeep.Client] = {}
_CLIENTS_LOCK = threading.Lock()


def _zeep_client(wsdl: str, ca_bundle: str | None, timeout: float) -> zeep.Client:
    """One parsed WSDL per (URL, CA bundle, timeout) per process."""
    key = (wsdl, ca_bundle, timeout)
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            session = _Session(ca_bundle)
            transport = _QuietTransport(session=session, timeout=timeout, operation_timeout=timeout)
            settings = zeep.Settings(strict=True, forbid_dtd=True, forbid_entities=True, forbid_external=True)
            client = zeep.Client(wsdl, transport=transport, settings=settings)
            _CLIENTS[key] = client
        return client


def clear_wsdl_cache() -> None:
    """Forget parsed WSDLs and close their keep-alive connections (a service is being stopped)."""
    with _CLIENTS_LOCK:
        for client in _CLIENTS.values():
            client.transport.session.close()
        _CLIENTS.clear()


# --- the shared client --------------------------------------------------------------------------------------------


class SoapClient:
    """Calls one Sage-style SOAP service with logon and company code; maps failures to typed errors."""

    def __init__(
        self,
        wsdl: str,
        *,
        username: str,
        password: Secret | str,
        company_code: str,
        address: str | None = None,
        timeout: float | Decimal = 30,
        ca_bundle: str | None = None,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        self.wsdl = wsdl
        self.address = address
        self.username = username
        self._password = password if isinstance(password, Secret) else Secret(password)
        self.company_code = company_code
        self.timeout = float(timeout)  # seconds, not money
        self.ca_bundle = ca_bundle
        self.retry = retry
        self._service: Any = None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(wsdl={self.wsdl!r}, username={self.username!r}, company={self.company_code!r})"

    @classmethod
    def from_settings(
        cls, settings: SageSettings, *, address: str | None = None, retry: RetryPolicy = RetryPolicy()
    ) -> Self:
        """A client of the service `settings` names (`Settings.sage_agent()` or `.sage_ebusiness()`)."""
        return cls(
            settings.wsdl,
            username=settings.username,
            password=settings.password,
            company_code=settings.company_code,
            address=address,
            timeout=settings.timeout_seconds,
            ca_bundle=settings.ca_bundle,
            retry=retry,
        )

    def _load(self) -> Any:
        if self._service is None:
            client = _zeep_client(self.wsdl, self.ca_bundle, self.timeout)
            if self.address:
                binding = next(iter(client.wsdl.bindings))
                self._service = client.create_service(binding, self.address)
            else:
                self._service = client.service
        return self._service

    def _call(self, operation: str, *, write: bool = False, logon: bool = True, **params: Any) -> Any:
        """One attempt; every failure comes out as a SageError subclass."""
        started = time.monotonic()
        try:
            service = self._load()
            if logon:
                params = {
                    "logon": {"Username": self.username, "Password": self._password.reveal()},
                    "companyCode": self.company_code,
                    **params,
                }
            return getattr(service, operation)(**params)
        except zeep.exceptions.Fault as fault:
            raise from_fault(fault, write, operation) from None
        except SageError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated; unknown errors are not transient
            raise from_transport(exc, self.wsdl) from None
        finally:
            log.debug("Sage %s took %.3fs", operation, time.monotonic() - started)

    def _read(self, operation: str, **params: Any) -> Any:
        """A call that is safe to repeat: retried on transient failures with backoff and jitter."""
        return self._retrying(operation, lambda: self._call(operation, **params))

    def _ready(self) -> None:
        """Load the WSDL with read retries, so a write never fails on it half-sent."""
        self._retrying("WSDL load", self._load_translated)

    def _retrying(self, what: str, attempt: Callable[[], T]) -> T:
        delays = self.retry.delays()
        while True:
            try:
                return attempt()
            except SageUnavailable as exc:
                delay = next(delays, None) if exc.transient else None
                if delay is None:
                    raise
                log.info("Sage %s failed (%s); retrying in %.2fs", what, exc.message, delay)
                self.retry.sleep(delay)

    def _load_translated(self) -> None:
        try:
            self._load()
        except Exception as exc:  # noqa: BLE001
            raise from_transport(exc, self.wsdl) from None
