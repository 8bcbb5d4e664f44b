"""Sage's answers as typed errors (errors.py): SOAP faults by code, network failures by whether to retry.

A fault's code comes from detail/MasFault (Sage's own ErrorCode, whatever its namespace) or else the
faultcode without its prefix; the agent's own codes map first, then Sage's, then the message's words
(Sage's generic "An exception occurred." and role security's "No Access" are known by their words).
A failed read is `SageNotFound` where a write of the same code is `SageWriteRejected`. Network-level
failures become `SageUnavailable`, transient (worth retrying) or not, in words an operator can act on.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import requests
import zeep.exceptions

from .errors import (
    SageCompanyError,
    SageError,
    SageFault,
    SageKeyConflict,
    SageLogonError,
    SageLogonLockedOut,
    SageNoAccess,
    SageNotFound,
    SageReceiptReversed,
    SageServerError,
    SageUnavailable,
    SageWriteRejected,
)
from .model import (
    EXCEPTION_TEXT,
    FAULT_COMPANY,
    FAULT_IN_PROGRESS,
    FAULT_KEY_CONFLICT,
    FAULT_KEY_REVERSED,
    FAULT_LOGON,
    FAULT_LOGON_LOCKED,
    FAULT_NO_ACCESS,
    FAULT_NO_KEY,
    FAULT_NOT_ON_FILE,
    NO_ACCESS_TEXT,
)

TRANSIENT_STATUS = frozenset({502, 503, 504})


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


def from_fault(fault: zeep.exceptions.Fault, write: bool, operation: str = "") -> SageError:
    """A SOAP fault as a typed error: detail/MasFault's ErrorCode first, else the faultcode (prefix stripped).

    zeep also raises Fault for an error answer that is markup but holds no SOAP fault (a gateway's or proxy's
    own 502/503 page), with the raw page as `detail`: that is the way to the service failing, not Sage
    refusing, so it is transient (a write then asks FindCashReceipt before trying again).
    """
    if isinstance(fault.detail, (bytes, str)):
        return SageUnavailable(f"the service answered with a page that is not a SOAP fault ({fault.message})")
    error_code, error_message = _mas_fault(fault.detail)
    code = error_code or _strip_prefix(fault.code)
    message = error_message or fault.message or "Sage answered with a fault and no message"
    return typed(code, message, write, operation)


def typed(code: str, message: str, write: bool, operation: str = "") -> SageError:
    """The typed error for a fault code and message (the agent's own codes first, then Sage's); `operation`
    is the call that was answered, for the errors that name it."""
    if code in _AGENT_FAULTS:
        return _AGENT_FAULTS[code](message, code)
    if message.strip().casefold() == EXCEPTION_TEXT.casefold():
        return SageServerError(
            f'Sage answered {operation or "the call"} with only its generic fault "{message.strip()}", which gives '
            "no reason; the cause is in the logs on the Sage server (not retried)",
            code,
        )
    if code == FAULT_NO_ACCESS or message.strip().casefold().startswith(NO_ACCESS_TEXT.casefold()):
        what = operation or "this operation"
        return SageNoAccess(
            f'Sage refused {what} with "{message.strip()}": its role security does not let the Sage user run '
            f"{what}; give the user's role access to {what} in Sage 100 (not retried)",
            code,
            operation,
        )
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


def from_transport(exc: Exception, wsdl: str) -> SageUnavailable:
    """Network-level failures: which ones are worth retrying, in words an operator can act on."""
    where = re.sub(r"\?.*$", "", wsdl)
    if isinstance(exc, requests.exceptions.SSLError):
        return SageUnavailable(
            f"TLS verification of {where} failed ({_first_line(exc)}); check the certificate and "
            "ML_CONNECTOR_SAGE_CA_BUNDLE",
            transient=False,
        )
    if isinstance(exc, requests.exceptions.Timeout):
        return SageUnavailable(f"{where} did not answer in time ({type(exc).__name__})")
    if isinstance(exc, requests.exceptions.ConnectionError):
        return SageUnavailable(f"cannot connect to {where} ({_first_line(exc)})")
    if isinstance(exc, zeep.exceptions.TransportError):
        return SageUnavailable(
            f"{where} answered HTTP {exc.status_code}", transient=exc.status_code in TRANSIENT_STATUS
        )
    if isinstance(exc, (zeep.exceptions.XMLSyntaxError, zeep.exceptions.XMLParseError)):
        return SageUnavailable(f"{where} answered with XML zeep could not read ({_first_line(exc)})", transient=False)
    return SageUnavailable(f"calling {where} failed: {type(exc).__name__}: {_first_line(exc)}", transient=False)


def _first_line(exc: Exception) -> str:
    return (str(exc).splitlines() or [""])[0][:200]
