"""GoCardless webhook verification and parsing: pure functions, no I/O.

Order matters: the signature is checked on the raw bytes *before* anything is parsed, so an unsigned
body never reaches the JSON parser. A signature is the lowercase hex HMAC-SHA256 of the raw body keyed
with the endpoint secret (as UTF-8 text). Several secrets may be configured at once so a secret can be
rotated without refusing deliveries signed with the old one.

A signed body is still checked field by field before anything is stored: every value the inbox keeps in
a column (ids, links, created_at, the webhook id) must have GoCardless's shape, which also keeps it
within the column's length and free of NUL, control characters and lone surrogates. A delivery that
fails is refused whole with a message naming the field (and never echoing its value): storing it would
fail every time, and a store failure (503) would make GoCardless redeliver it for days.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

SIGNATURE_HEADER = "Webhook-Signature"
_HEX64 = re.compile(r"[0-9a-f]{64}")
MAX_ID_LENGTH = 64  # the inbox's id columns (event_id, resource_id, webhook_id)


@dataclass(frozen=True)
class Form:
    """The shape a field must have: a pattern, its longest length (the column's) and how to say it."""

    pattern: re.Pattern[str]
    max_length: int
    hint: str


GOCARDLESS_ID = Form(
    re.compile(r"[A-Z]{2}[A-Z0-9]+"),
    MAX_ID_LENGTH,  # EV00BD05S5VM2T, BRQ0005QVWHYB9J
    f"a GoCardless id: 2 capital letters then capital letters or digits, at most {MAX_ID_LENGTH} "
    "characters (e.g. EV00BD05S5VM2T)",
)
NAME = Form(
    re.compile(r"[a-z][a-z0-9_]*"),
    64,  # payments, paid_out, parent_event
    "a lower-case name of a-z, 0-9 and _, at most 64 characters (e.g. payments)",
)
TIMESTAMP = Form(
    re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,6})?Z"),
    40,
    "a UTC timestamp as GoCardless writes it (e.g. 2014-08-04T12:00:00.000Z)",
)


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
    notice, so unknown ones are acknowledged, never refused. Only kept events are checked for what the
    inbox stores (links, created_at): what is not stored cannot fail to be.
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
    webhook_id = _webhook_id(data.get("meta"))
    allowed = frozenset(whitelist)
    for index, event in enumerate(events):
        _check_event(index, event)
        if event_kind(event) in allowed:
            _check_storable(index, event)
    accepted = tuple(e for e in events if event_kind(e) in allowed)
    ignored = tuple(e for e in events if event_kind(e) not in allowed)
    return Delivery(webhook_id, accepted, ignored)


def check_kept_event(index: int, event: object) -> None:
    """Everything the inbox needs of an event it keeps (id, kind, links, created_at); PayloadError naming the
    field otherwise. The receiver checks webhooks with it at the door, the events sweep checks API events."""
    _check_event(index, event)
    assert isinstance(event, dict)  # _check_event refused anything else
    _check_storable(index, event)


def _check_event(index: int, event: object) -> None:
    """What every event needs: it is identified by its id, and its kind decides whether it is kept."""
    if not isinstance(event, dict):
        raise PayloadError(f"events[{index}] must be a JSON object, got {type(event).__name__}")
    require(f"events[{index}].id", event.get("id"), GOCARDLESS_ID)
    for name in ("resource_type", "action"):
        require(f"events[{index}].{name}", event.get(name), NAME)


def _check_storable(index: int, event: dict[str, Any]) -> None:
    """What the inbox keeps of a kept event besides its id and kind: its links and created_at."""
    links = event.get("links", {})
    if not isinstance(links, dict):
        raise PayloadError(f"events[{index}].links must be a JSON object of resource ids; it is {_json_type(links)}")
    for name, value in links.items():
        if not (NAME.pattern.fullmatch(name) and len(name) <= NAME.max_length):
            raise PayloadError(f"events[{index}].links has a key that is not {NAME.hint}")
        if value is not None:
            require(f"events[{index}].links.{name}", value, GOCARDLESS_ID)
    require(f"events[{index}].created_at", event.get("created_at"), TIMESTAMP)
    try:
        datetime.fromisoformat(event["created_at"].replace("Z", "+00:00"))
    except ValueError:
        raise PayloadError(
            f"events[{index}].created_at must be {TIMESTAMP.hint}; it is not a real date and time"
        ) from None


def require(field: str, value: object, form: Form) -> str:
    """`value`, when it is a string of `form`; otherwise raise PayloadError naming `field` and what is wrong."""
    if isinstance(value, str) and len(value) <= form.max_length and form.pattern.fullmatch(value):
        return value
    raise PayloadError(f"{field} must be {form.hint}; {_what_is_wrong(value, form)}")


def _what_is_wrong(value: object, form: Form) -> str:
    """Describes a bad value without repeating it: it may be sensitive, or an escape sequence for a terminal."""
    if value is None:
        return "it is missing"
    if not isinstance(value, str):
        return f"it is {_json_type(value)}"
    if not value:
        return "it is empty"
    if len(value) > form.max_length:
        return f"it is {len(value)} characters long"
    for position, char in enumerate(value):
        if not (char.isascii() and char.isprintable()):
            return f"it contains U+{ord(char):04X} at position {position}"
    return "it has other characters or another order"


def _json_type(value: object) -> str:
    names = {dict: "a JSON object", list: "a JSON list", bool: "true or false", str: "a string"}
    return names.get(type(value), "null" if value is None else "a number")


def _webhook_id(meta: object) -> str | None:
    """meta.webhook_id, stored with each kept event; a delivery may come without one (e.g. a replay)."""
    if meta is None:
        return None
    if not isinstance(meta, dict):
        raise PayloadError(f"meta must be a JSON object; it is {_json_type(meta)}")
    webhook_id = meta.get("webhook_id")
    if webhook_id is None:
        return None
    return require("meta.webhook_id", webhook_id, GOCARDLESS_ID)
