"""GoCardless webhook verification and parsing: pure functions, no I/O.

Order matters: the signature is checked on the raw bytes *before* anything is parsed, so an unsigned
body never reaches the JSON parser. A signature is the lowercase hex HMAC-SHA256 of the raw body keyed
with the endpoint secret (as UTF-8 text). Several secrets may be configured at once so a secret can be
rotated without refusing deliveries signed with the old one.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

SIGNATURE_HEADER = "Webhook-Signature"
_HEX64 = re.compile(r"[0-9a-f]{64}")
MAX_EVENT_ID_LENGTH = 64  # the inbox's key column


class SignatureError(Exception):
    """The delivery is not signed by any configured secret; `reason` is safe to log (never a secret)."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class PayloadError(Exception):
    """A correctly signed body that is not `{"events": [...]}` of well-formed events; says what is wrong."""


@dataclass(frozen=True)
class Delivery:
    """A verified, parsed delivery split into the events to keep and the events to acknowledge only."""

    webhook_id: str | None
    accepted: tuple[dict[str, Any], ...]
    ignored: tuple[dict[str, Any], ...]

    @property
    def event_count(self) -> int:
        return len(self.accepted) + len(self.ignored)


def sign(body: bytes, secret: str) -> str:
    """The `Webhook-Signature` GoCardless sends for `body` (used by the stand-in's sender and tests)."""
    return hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify_signature(body: bytes, signature: str | None, secrets: Sequence[str]) -> None:
    """Raise SignatureError unless `signature` is a lowercase hex HMAC of `body` under one of `secrets`.

    Every secret is compared (no early exit) with hmac.compare_digest, so timing reveals neither the
    expected digest nor which secret matched.
    """
    if not secrets:
        raise SignatureError("no webhook secret configured")
    if signature is None or signature == "":
        raise SignatureError("missing Webhook-Signature header")
    if not _HEX64.fullmatch(signature):
        raise SignatureError("Webhook-Signature is not 64 lowercase hex characters")
    given = signature.encode("ascii")
    matches = [hmac.compare_digest(sign(body, s).encode("ascii"), given) for s in secrets]
    if not any(matches):
        raise SignatureError("Webhook-Signature does not match any configured secret")


def event_kind(event: dict[str, Any]) -> str:
    """`resource_type.action`, the form the whitelist is written in (e.g. `payments.confirmed`)."""
    return f"{event.get('resource_type')}.{event.get('action')}"


def parse_delivery(body: bytes, whitelist: Iterable[str]) -> Delivery:
    """Parse a verified body; raise PayloadError naming the first problem found.

    Events whose kind is not whitelisted are returned as `ignored`: GoCardless adds event types without
    notice, so unknown ones are acknowledged, never refused.
    """
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:  # RecursionError: JSON nested too deep
        raise PayloadError(f"body is not valid JSON ({exc.__class__.__name__}: {str(exc)[:120]})") from None
    if not isinstance(data, dict):
        raise PayloadError(f'body must be a JSON object {{"events": [...]}}, got {type(data).__name__}')
    events = data.get("events")
    if not isinstance(events, list):
        raise PayloadError('body must have "events": a list of events')
    for index, event in enumerate(events):
        _check_event(index, event)
    allowed = frozenset(whitelist)
    accepted = tuple(e for e in events if event_kind(e) in allowed)
    ignored = tuple(e for e in events if event_kind(e) not in allowed)
    return Delivery(_webhook_id(data.get("meta")), accepted, ignored)


def _check_event(index: int, event: Any) -> None:
    if not isinstance(event, dict):
        raise PayloadError(f"events[{index}] must be a JSON object, got {type(event).__name__}")
    for name in ("id", "resource_type", "action"):
        value = event.get(name)
        if not isinstance(value, str) or not value:
            raise PayloadError(f"events[{index}].{name} must be a non-empty string")
    if len(event["id"]) > MAX_EVENT_ID_LENGTH:
        raise PayloadError(f"events[{index}].id is longer than {MAX_EVENT_ID_LENGTH} characters")
    if "links" in event and not isinstance(event["links"], dict):
        raise PayloadError(f"events[{index}].links must be a JSON object")
    for name, value in (event.get("links") or {}).items():
        if value is not None and not isinstance(value, str):
            raise PayloadError(f"events[{index}].links.{name} must be a resource id string")


def _webhook_id(meta: Any) -> str | None:
    if isinstance(meta, dict) and isinstance(meta.get("webhook_id"), str):
        return meta["webhook_id"][:64]
    return None
