"""One setting's raw value (environment text, or a TOML value) to its typed value, checked.

Each function takes the value and the list of problems; a bad value appends 'VARIABLE: what is wrong; how
to fix it' and a value of the right type is returned all the same, so `load_settings` reports every
problem at once (and builds `Settings` only when there is none). Numbers are bounded: a value past its
bound is a mistake, not a tuning.
"""

from __future__ import annotations

import math
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlparse

from .names import HELP, env_name

COMPANY_CODE = re.compile(r"[A-Za-z0-9]{3}")  # fullmatch: ASCII only, no trailing newline
CURRENCY = re.compile(r"[A-Z]{3}")
# Numbers in settings: ASCII digits with an optional decimal point. No sign, exponent, underscore, NaN or
# Infinity, and no other script's digits (Python's int() and Decimal() would read '١٠' as 10).
DECIMAL_TEXT = re.compile(r"[0-9]+(?:\.[0-9]+)?|\.[0-9]+")
WHOLE_TEXT = re.compile(r"[0-9]+")
ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
MAX_TIMEOUT_SECONDS = Decimal(3600)  # an hour: past that a call is hung, not slow
MAX_COUNT = 1_000_000  # the default bound of a whole-number setting
MAX_WEBHOOK_BYTES = 64 * 1024 * 1024  # a GoCardless webhook is a few KiB; the default is 1 MiB
MAX_QUEUED_SECONDS = 7 * 24 * 3600  # a week: a run queued longer than that was forgotten, not slow
FX_RATE_MIN, FX_RATE_MAX = Decimal("0.000001"), Decimal(1_000_000)  # home units per foreign unit, any pair


def company_code(code: str, problems: list[str]) -> str:
    if not COMPANY_CODE.fullmatch(code):
        problems.append(
            f"{env_name('sage_company_code')}: company code {code!r} is not exactly 3 letters or digits; "
            "use the 3-character code shown in Sage 100's Company Maintenance, e.g. ABC"
        )
    return code.upper()


def bank_code(bank: str, problems: list[str]) -> str:
    if not (len(bank) == 1 and bank.isascii() and bank.isalnum()):
        problems.append(f"{env_name('sage_bank_code')}: bank code {bank!r} must be 1 letter or digit, e.g. A")
    return bank.upper()


def database_url(value: object, home: Path, problems: list[str]) -> str:
    if not value:
        return f"sqlite:///{(home / 'ops.sqlite').as_posix()}"
    url = str(value)
    scheme = urlparse(url).scheme
    if scheme.split("+")[0] not in ("sqlite", "postgresql"):
        problems.append(f"{env_name('database_url')}: {url!r} is not a sqlite:/// or postgresql:// URL")
    else:
        _port("database_url", url, problems)
    return url


def _port(name: str, url: str, problems: list[str]) -> None:
    """A URL's port, if it has one, is a number from 1 to 65535 (a bad one would fail much later, in a client)."""
    try:
        port = urlparse(url).port
    except ValueError:  # not ASCII digits, or out of range
        port = -1
    if port is not None and not 0 < port <= 65535:
        problems.append(f"{env_name(name)}: {url!r} has a port that is not a number from 1 to 65535")


def http_url(name: str, value: str, problems: list[str]) -> str:
    parsed = urlparse(value)
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        problems.append(f"{env_name(name)}: {value!r} is not an http(s) URL; {HELP.get(name, 'give a full URL')}")
    else:
        _port(name, value, problems)
    return value.rstrip("/") if name == "gocardless_api_url" else value


def currency(name: str, value: str, problems: list[str]) -> str:
    if not (value.isascii() and CURRENCY.fullmatch(value.upper())):
        problems.append(f"{env_name(name)}: {value!r} is not a 3-letter ISO 4217 currency code, e.g. GBP")
    return value.upper()


def _decimal(value: object) -> Decimal | None:
    """A finite Decimal from a TOML number or from plain ASCII-digit text; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    text = str(value).strip()
    return Decimal(text) if DECIMAL_TEXT.fullmatch(text) else None


def _whole(value: object) -> Decimal | None:
    """A whole number from a TOML integer or from ASCII-digit text (as a Decimal, so a huge one stays cheap)."""
    if isinstance(value, (bool, float)):
        return None
    text = str(value).strip()
    return Decimal(text) if WHOLE_TEXT.fullmatch(text) else None


def iso_date(name: str, value: object, problems: list[str]) -> str:
    """A calendar date written YYYY-MM-DD (the form Dagster's daily partitions use), kept as that text."""
    text = str(value).strip()
    if ISO_DATE.fullmatch(text):
        try:
            return date.fromisoformat(text).isoformat()
        except ValueError:
            pass
    problems.append(f"{env_name(name)}: {value!r} is not a date written YYYY-MM-DD, e.g. 2026-11-01")
    return ""


def positive_int(name: str, value: object, problems: list[str], maximum: int = MAX_COUNT) -> int:
    number = _whole(value)
    if number is not None and 0 < number <= maximum:
        return int(number)
    problems.append(f"{env_name(name)}: {value!r} is not a whole number from 1 to {maximum} (digits 0-9)")
    return 1


def positive_decimal(name: str, value: object, problems: list[str], maximum: Decimal = MAX_TIMEOUT_SECONDS) -> Decimal:
    number = _decimal(value)
    if number is not None and 0 < number <= maximum:
        return number
    problems.append(
        f"{env_name(name)}: {value!r} is not a positive number of seconds up to {maximum} (digits 0-9, e.g. 30 or 2.5)"
    )
    return Decimal(1)


def boolean(name: str, value: object, problems: list[str]) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    problems.append(f"{env_name(name)}: {value!r} is not true or false")
    return False


def choice(
    name: str, raw: dict[str, object], allowed: tuple[str, ...], values: dict[str, object], problems: list[str]
) -> None:
    if raw.get(name) is None:
        return
    value = str(raw[name]).strip().lower()
    if value not in allowed:
        problems.append(f"{env_name(name)}: {raw[name]!r} is not one of {', '.join(allowed)}")
    values[name] = value


def whitelist(value: object, problems: list[str]) -> frozenset[str]:
    items = frozenset(s.strip() for s in str(value).split(",") if s.strip())
    bad = sorted(i for i in items if not re.match(r"^[a-z_]+\.[a-z_]+$", i))
    if bad:
        problems.append(
            f"{env_name('gocardless_event_whitelist')}: {', '.join(bad)} not of the form resource_type.action "
            "(e.g. payments.confirmed)"
        )
    return items


def fx_rates(value: object, problems: list[str]) -> dict[str, Decimal]:
    rates: dict[str, Decimal] = {}
    for pair in (p.strip() for p in str(value).split(",") if p.strip()):
        currency, _, rate = (part.strip() for part in pair.partition("="))
        number = _decimal(rate)
        if (
            not (currency.isascii() and CURRENCY.fullmatch(currency.upper()))
            or number is None
            or not (FX_RATE_MIN <= number <= FX_RATE_MAX)
        ):
            problems.append(
                f"{env_name('fx_rates')}: {pair!r} is not CUR=RATE with a rate from {FX_RATE_MIN} to "
                f"{FX_RATE_MAX} (digits 0-9), e.g. EUR=0.86"
            )
        elif currency.upper() in rates:
            problems.append(f"{env_name('fx_rates')}: {currency.upper()} is given twice; keep one rate for it")
        else:
            rates[currency.upper()] = number
    return rates
