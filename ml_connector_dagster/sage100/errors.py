"""Typed errors for Sage 100 calls, so callers decide by type: fix settings, hold for review, or retry later.

Messages carry Sage's own words (its fault string) and never a password.
"""

from __future__ import annotations

import re


class SageError(Exception):
    """Any Sage call that did not succeed. `code` is Sage's fault code without prefix (may be empty)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.code = code


class SageLogonError(SageError):
    """Bad username or password, or the user is not enabled for web services: fix the settings."""


class SageCompanyError(SageError):
    """The company code does not exist or is not enabled for web services: fix the settings."""


class SageNotFound(SageError):
    """The record asked for does not exist (CI_NoKey / CI_NOF on a read)."""


class SageWriteRejected(SageError):
    """Sage refused a write; `message` is Sage's reason (e.g. "The distribution is out of balance.")."""


class SageKeyConflict(SageWriteRejected):
    """The idempotency key already holds a different receipt (another bank, customer, amount or lines).

    Nothing was written; `message` names what was asked and what the key holds. A different receipt
    needs a different key.
    """


class SageReceiptReversed(SageKeyConflict):
    """The key's receipt was reversed: a reversed payment is never entered again under the same key."""


class SageNoAccess(SageError):
    """Sage's role security does not let the user run `operation` ("No Access"). Not retried: nothing changes
    until someone gives the Sage user's role access to it. The message names the operation and says so."""

    def __init__(self, message: str, code: str = "", operation: str = "") -> None:
        super().__init__(message, code)
        self.operation = operation


class SageFault(SageError):
    """Any other fault Sage answered with (e.g. a request it could not understand)."""


class SageUnavailable(SageError):
    """Sage could not be reached or answered garbage. `transient` errors are worth retrying later."""

    def __init__(self, message: str, code: str = "", transient: bool = True) -> None:
        super().__init__(message, code)
        self.transient = transient


class SageServerError(SageUnavailable):
    """Sage failed inside and answered only its generic fault ("An exception occurred."), without a reason.

    Not transient: like an HTTP 500 from the server, nothing says that trying again helps, so it is not retried
    (a read would fail the same way; a write may even have happened before the failure, so its outcome is
    unknown, as for any unavailable Sage). The cause is only on the Sage server, in its logs.
    """

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message, code, transient=False)


class SageLogonLockedOut(SageUnavailable):
    """The agent refuses this address for a while after repeated failed logons (its own or someone's
    sharing the address). Not retried by the client's backoff, which the refusal outlasts: `retry_after`
    seconds from now, a later run may try again. Nothing was written."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message, code, transient=False)
        found = re.search(r"try again in (\d+) seconds", message)
        self.retry_after = int(found.group(1)) if found else None


class SageOutcomeUnknown(SageUnavailable):
    """A write was sent but its answer was lost, and Sage could not be asked whether it happened.

    Retrying is safe only through the same idempotency key (the agent returns the first receipt).
    """
