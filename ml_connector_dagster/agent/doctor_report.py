"""The doctor's report and what its checks share (agent/doctor.py, doctor_entry.py, doctor_rehearsal.py): one
`Check` per line, PASS, FAIL or SKIP, and how a Sage message or an exception is said in one."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from . import boi_com as com
from .boi_names import KEY, SET, Field

PASS, FAIL, SKIP = "PASS", "FAIL", "SKIP"
MATCHABLE = ("IN", "DM", "FC")


@dataclass(frozen=True)
class Check:
    status: str
    title: str
    detail: str


@dataclass(frozen=True)
class Probe:
    """The values the read-only checks set on new records, real ones so that Sage's validation lets the field
    names be tried: the bank code the product deposits to, a customer (None: the first Sage lists)."""

    today: date
    bank_code: str | None
    customer: tuple[str, str] | None = None


def rename_hint(key: str) -> str:
    return f'If Sage names it otherwise, write {key} = "<Sage\'s name>" in a --boi-names file.'


class Stop(Exception):
    """A check failed that the rest depend on (no ProvideX, no logon, ...)."""


@dataclass
class Found:
    """What the checks learn on the way, for the checks after them."""

    customer: tuple[str, str] | None = None
    invoice: tuple[str, str] | None = None
    options: dict[str, bool] = field(default_factory=dict)
    deposits: list[str] = field(default_factory=list)


def failed(checks: list[Check]) -> bool:
    return any(c.status == FAIL for c in checks)


def did(f: Field, options: dict[str, bool]) -> str:
    if f.access == KEY:
        return "key part set, read"
    if f.access == SET and (not f.when or options.get(f.when, False)):
        return "set on a new record, read"
    if f.access == SET:
        return f"read (set only when {f.when.replace('_', ' ')} is on)"
    return "read"


def clause(text: str) -> str:
    """Sage's message as a clause, so that a sentence can follow it."""
    return text.strip().rstrip(".") or "no reason given"


def said_by(obj: Any, default: str) -> str:
    return clause(com.message(obj, default))


def said(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
