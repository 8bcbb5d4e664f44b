"""zeep clients for Sage 100 eBusiness Web Services and the local agent.

- The WSDL is fetched and parsed once per process (per URL, CA bundle and timeout) and shared.
- `logon` {Username, Password} and `companyCode` go on every call; the password is revealed only while
  the request is built and is never logged (zeep's transport logs whole envelopes at DEBUG: ours does not).
- Reads are retried with exponential backoff and full jitter on timeouts, connection errors and 502/503/504.
- `create_cash_receipt` is never repeated blindly: after a lost answer it asks `FindCashReceipt` first and
  writes again only if the agent says the receipt does not exist.
- Faults become typed errors (see errors.py); money arrives and leaves as Decimal (the WSDLs declare
  xsd:decimal; floats are refused before anything is sent).
"""

from __future__ import annotations

import logging
import random
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Callable, Generic, Iterator, Mapping, TypeVar

import requests
import zeep
import zeep.exceptions
from zeep.helpers import serialize_object
from zeep.transports import Transport

from ..secrets import Secret
from ..settings import Settings
from .errors import (
    SageCompanyError,
    SageError,
    SageFault,
    SageKeyConflict,
    SageLogonError,
    SageLogonLockedOut,
    SageNotFound,
    SageOutcomeUnknown,
    SageReceiptReversed,
    SageUnavailable,
    SageWriteRejected,
)
from .model import (
    FAULT_COMPANY,
    FAULT_IN_PROGRESS,
    FAULT_KEY_CONFLICT,
    FAULT_KEY_REVERSED,
    FAULT_LOGON,
    FAULT_LOGON_LOCKED,
    FAULT_NO_KEY,
    FAULT_NOT_ON_FILE,
    CashReceipt,
    CashReceiptRequest,
    CustomerRecord,
    InvoiceRecord,
    ReceiptLine,
    SageRuleError,
    repeat_of,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
TRANSIENT_STATUS = frozenset({502, 503, 504})


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
            yield random.uniform(0, min(self.max_delay, self.base_delay * 2 ** n))


# --- transport and WSDL cache ---------------------------------------------------------------------------------

class _QuietTransport(Transport):
    """zeep's Transport without its DEBUG dump of request bodies (they hold the Sage password)."""

    def post(self, address: str, message: Any, headers: dict) -> requests.Response:
        return self.session.post(address, data=message, headers=headers, timeout=self.operation_timeout)


class _Session(requests.Session):
    """A configured CA bundle wins: plain requests lets REQUESTS_CA_BUNDLE/CURL_CA_BUNDLE override it."""

    def __init__(self, ca_bundle: str | None) -> None:
        super().__init__()
        self.ca_bundle = ca_bundle

    def merge_environment_settings(self, url, proxies, stream, verify, cert):  # type: ignore[no-untyped-def]
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

class _SoapClient:
    """Calls one Sage-style SOAP service with logon and company code; maps failures to typed errors."""

    def __init__(self, wsdl: str, *, username: str, password: Secret | str, company_code: str,
                 address: str | None = None, timeout: float | Decimal = 30, ca_bundle: str | None = None,
                 retry: RetryPolicy = RetryPolicy()) -> None:
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
    def _from_settings(cls, settings: Settings, wsdl_setting: str, **kwargs: Any) -> Any:
        settings.require(wsdl_setting, "sage_username", "sage_password", "sage_company_code")
        return cls(getattr(settings, wsdl_setting), username=settings.sage_username, password=settings.sage_password,
                   company_code=settings.sage_company_code, timeout=settings.sage_timeout_seconds,
                   ca_bundle=settings.sage_ca_bundle, **kwargs)

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
                params = {"logon": {"Username": self.username, "Password": self._password.reveal()},
                          "companyCode": self.company_code, **params}
            return getattr(service, operation)(**params)
        except zeep.exceptions.Fault as fault:
            raise _from_fault(fault, write) from None
        except SageError:
            raise
        except Exception as exc:  # noqa: BLE001 - translated; unknown errors are not transient
            raise _from_transport(exc, self.wsdl) from None
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
            raise _from_transport(exc, self.wsdl) from None


# --- the agent ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AgentInfo:
    version: str
    company_code: str
    company_name: str
    backend: str


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str | None


class AgentClient(_SoapClient):
    """The local agent on the Sage server: AR listing, open invoices, cash receipts."""

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> "AgentClient":
        return cls._from_settings(settings, "sage_agent_wsdl", **kwargs)

    def ping(self) -> AgentInfo:
        r = self._read("Ping")
        return AgentInfo(r.Version, r.CompanyCode, r.CompanyName, r.Backend)

    def list_customers(self, updated_since: datetime | None = None, page_token: str | None = None) -> Page[CustomerRecord]:
        r = self._read("ListCustomers", updatedSince=updated_since, pageToken=page_token)
        return Page([_customer(c) for c in _field(r, "customer") or []], _field(r, "nextPageToken"))

    def list_open_invoices(self, updated_since: datetime | None = None,
                           page_token: str | None = None) -> Page[InvoiceRecord]:
        r = self._read("ListOpenInvoices", updatedSince=updated_since, pageToken=page_token)
        return Page([_invoice(i) for i in _field(r, "invoice") or []], _field(r, "nextPageToken"))

    def iter_customers(self, updated_since: datetime | None = None) -> Iterator[CustomerRecord]:
        return _follow(lambda token: self.list_customers(updated_since, token))

    def iter_open_invoices(self, updated_since: datetime | None = None) -> Iterator[InvoiceRecord]:
        return _follow(lambda token: self.list_open_invoices(updated_since, token))

    def get_open_invoices(self, ar_division_no: str, customer_no: str) -> list[InvoiceRecord]:
        r = self._read("GetOpenInvoices", arDivisionNo=ar_division_no, customerNo=customer_no)
        return [_invoice(i) for i in _only_field(r, "invoice") or []]

    def find_cash_receipt(self, idempotency_key: str) -> CashReceipt | None:
        receipt = _only_field(self._read("FindCashReceipt", idempotencyKey=idempotency_key), "receipt")
        return None if receipt is None else _receipt(receipt)

    def reverse_cash_receipt(self, idempotency_key: str, reason: str) -> CashReceipt:
        """Reversing twice is harmless (the agent returns the reversed receipt), so this retries like a read."""
        return _receipt(self._read("ReverseCashReceipt", write=True, idempotencyKey=idempotency_key, reason=reason))

    def create_cash_receipt(self, request: CashReceiptRequest) -> CashReceipt:
        """Write one receipt; if the answer is lost, ask FindCashReceipt before ever sending it again."""
        self._ready()
        params = _receipt_params(request)
        try:
            return _receipt(self._call("CreateCashReceipt", write=True, **params))
        except SageUnavailable as exc:
            if not exc.transient:
                raise
            first_error = exc
        for delay in self.retry.delays():
            self.retry.sleep(delay)
            try:
                found = self.find_cash_receipt(request.idempotency_key)
            except SageUnavailable:
                continue  # cannot tell whether it happened: never write blind
            if found is not None:
                return _repeat(found, request)
            try:
                return _receipt(self._call("CreateCashReceipt", write=True, **params))
            except SageUnavailable as exc:
                if not exc.transient:
                    raise
        raise SageOutcomeUnknown(
            f"CreateCashReceipt for {request.idempotency_key}: no answer after {self.retry.attempts} attempts "
            f"({first_error.message}); it may have been written - call FindCashReceipt before retrying")


# --- eBusiness Web Services ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class ContractInfo:
    contract_version: int
    assembly_version: str


class EBusinessClient(_SoapClient):
    """Sage's own eBusiness Web Services (customers). Create is not retried: Sage has no idempotency key."""

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> "EBusinessClient":
        return cls._from_settings(settings, "sage_ebusiness_wsdl", **kwargs)

    def get_contract_information(self) -> ContractInfo:
        r = self._read("GetContractInformation", logon=False)
        return ContractInfo(int(r.ContractVersion), r.AssemblyVersion)

    def get_customer(self, ar_division_no: str, customer_no: str) -> dict[str, Any]:
        """The Customer contract as a dict; OtherFields flattened to {MasFieldName: Value}."""
        r = serialize_object(self._read("GetCustomer", arDivisionNo=ar_division_no, customerNo=customer_no), dict)
        other = (r.pop("OtherFields", None) or {}).get("Field") or []
        return {**r, "OtherFields": {f["MasFieldName"]: f["Value"] for f in other}}

    def get_next_customer_no(self, ar_division_no: str = "01") -> str:
        return self._read("GetNextCustomerNo", arDivisionNo=ar_division_no)

    def create_customer(self, customer: Mapping[str, Any]) -> None:
        self._ready()
        self._call("CreateCustomer", write=True, customer=_customer_contract(customer))

    def update_customer(self, customer: Mapping[str, Any]) -> None:
        """Setting the same values twice is harmless, so this retries like a read."""
        self._read("UpdateCustomer", write=True, customer=_customer_contract(customer))


# --- mapping --------------------------------------------------------------------------------------------------------

def _only_field(result: Any, name: str) -> Any:
    """zeep unwraps a result whose type has a single element; accept it wrapped or not."""
    if result is None or isinstance(result, list):
        return result
    return getattr(result, name, result)


def _field(result: Any, name: str) -> Any:
    """A field of a result; zeep gives None for an empty result element."""
    return None if result is None else getattr(result, name)


def _follow(fetch: Callable[[str | None], Page[T]]) -> Iterator[T]:
    token: str | None = None
    while True:
        page = fetch(token)
        yield from page.items
        token = page.next_page_token
        if not token:
            return


def _customer(c: Any) -> CustomerRecord:
    return CustomerRecord(c.ARDivisionNo, c.CustomerNo, c.CustomerName, c.EmailAddress or "",
                          _decimal(c.CurrentBalance), c.CustomerStatus, c.DateUpdated, c.TimeUpdated)


def _invoice(i: Any) -> InvoiceRecord:
    return InvoiceRecord(i.ARDivisionNo, i.CustomerNo, i.InvoiceNo, i.InvoiceType, i.InvoiceDate, i.InvoiceDueDate,
                         _decimal(i.Balance), i.DateUpdated, i.TimeUpdated)


def _receipt(r: Any) -> CashReceipt:
    lines = tuple(ReceiptLine(l.invoiceNo, l.invoiceType, _decimal(l.amount)) for l in r.lines.line)
    return CashReceipt(r.idempotencyKey, r.receiptId, r.depositNo, r.checkNo, r.bankCode, r.depositDate,
                       r.arDivisionNo, r.customerNo, _decimal(r.amount), r.reference or "", r.status, lines,
                       created=bool(r.created), reversal_reason=r.reversalReason or "")


def _repeat(found: CashReceipt, request: CashReceiptRequest) -> CashReceipt:
    """A receipt found after a lost answer counts only if it is the one asked for (the agent's own rule)."""
    try:
        return repeat_of(found, request)
    except SageRuleError as exc:
        raise _typed(exc.code, exc.message, write=True) from None


def _decimal(value: Any) -> Decimal:
    if not isinstance(value, Decimal):  # zeep parses xsd:decimal to Decimal; anything else is a contract bug
        raise SageFault(f"expected a decimal amount from Sage, got {type(value).__name__}")
    return value


def _receipt_params(request: CashReceiptRequest) -> dict[str, Any]:
    return {
        "idempotencyKey": request.idempotency_key, "depositDate": request.deposit_date,
        "bankCode": request.bank_code, "arDivisionNo": request.ar_division_no, "customerNo": request.customer_no,
        "amount": request.amount, "reference": request.reference or None,
        "lines": {"line": [{"invoiceNo": l.invoice_no, "invoiceType": l.invoice_type, "amount": l.amount}
                           for l in request.lines]},
    }


def _customer_contract(customer: Mapping[str, Any]) -> dict[str, Any]:
    for name, value in customer.items():
        if isinstance(value, float):
            raise ValueError(f"customer {name}: {value!r} is a float; pass money as Decimal or a string")
    other = customer.get("OtherFields")
    if isinstance(other, Mapping):  # accept {MasFieldName: Value}, as get_customer returns it
        customer = {**customer, "OtherFields": {"Field": [{"MasFieldName": k, "Value": v} for k, v in other.items()]}}
    return dict(customer)


def _strip_prefix(code: str | None) -> str:
    return (code or "").rsplit(":", 1)[-1]


def _mas_fault(detail: Any) -> tuple[str, str]:
    """ErrorCode and ErrorMessage from detail/MasFault, whatever its namespace."""
    if detail is None:
        return "", ""
    values = {}
    for el in detail.iter():
        if isinstance(el.tag, str):
            values[el.tag.rsplit("}", 1)[-1]] = (el.text or "").strip()
    return values.get("ErrorCode", ""), values.get("ErrorMessage", "")


def _from_fault(fault: zeep.exceptions.Fault, write: bool) -> SageError:
    error_code, error_message = _mas_fault(fault.detail)
    code = error_code or _strip_prefix(fault.code)
    message = error_message or fault.message or "Sage answered with a fault and no message"
    return _typed(code, message, write)


def _typed(code: str, message: str, write: bool) -> SageError:
    """The typed error for a fault code and message (the agent's own codes first, then Sage's)."""
    if code in _AGENT_FAULTS:
        return _AGENT_FAULTS[code](message, code)
    if code == FAULT_LOGON or message.lower().startswith("logon failure"):
        return SageLogonError(message, code)
    if code == FAULT_COMPANY or re.search(r"\bcompany code\b", message, re.IGNORECASE):
        return SageCompanyError(message, code)
    if code == FAULT_NO_KEY or (code == FAULT_NOT_ON_FILE and not write):
        return SageNotFound(message, code)
    if write:
        return SageWriteRejected(message, code)
    return SageFault(message, code)


_AGENT_FAULTS: dict[str, Callable[[str, str], SageError]] = {
    FAULT_KEY_REVERSED: SageReceiptReversed,
    FAULT_KEY_CONFLICT: SageKeyConflict,
    FAULT_IN_PROGRESS: SageUnavailable,  # another call is writing this key: transient, ask again
    FAULT_LOGON_LOCKED: SageLogonLockedOut,
}


def _from_transport(exc: Exception, wsdl: str) -> SageUnavailable:
    """Network-level failures: which ones are worth retrying, in words an operator can act on."""
    where = re.sub(r"\?.*$", "", wsdl)
    if isinstance(exc, requests.exceptions.SSLError):
        return SageUnavailable(f"TLS verification of {where} failed ({_first_line(exc)}); check the certificate and "
                               "ML_CONNECTOR_SAGE_CA_BUNDLE", transient=False)
    if isinstance(exc, requests.exceptions.Timeout):
        return SageUnavailable(f"{where} did not answer in time ({type(exc).__name__})")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return SageUnavailable(f"cannot connect to {where} ({_first_line(exc)})")
    if isinstance(exc, zeep.exceptions.TransportError):
        return SageUnavailable(f"{where} answered HTTP {exc.status_code}", transient=exc.status_code in TRANSIENT_STATUS)
    if isinstance(exc, (zeep.exceptions.XMLSyntaxError, zeep.exceptions.XMLParseError)):
        return SageUnavailable(f"{where} answered with XML zeep could not read ({_first_line(exc)})", transient=False)
    return SageUnavailable(f"calling {where} failed: {type(exc).__name__}: {_first_line(exc)}", transient=False)


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [""])[0][:200]
