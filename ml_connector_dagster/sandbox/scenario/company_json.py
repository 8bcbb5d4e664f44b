"""company.json read and checked: the company, its logon, FX rates, settings and the play's date.

Every problem is reported as `company.json:line: key: what is wrong`, at the line that names the key; a
key the format does not know is a problem too. Used by reading.py.
"""

from __future__ import annotations

import json
import re
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

from .model import Company

COMPANY_FILE = "company.json"
COMPANY_KEYS = ("company_code", "company_name", "home_currency", "bank_code", "logon", "fx_rates", "settings", "today")
# company.json "settings": the product's policy (used when the demo or `dev` starts it) and the simulated
# company's options; each with the values it may take.
CHOICE_SETTINGS = {"collect_on": ("confirmed", "paid_out"), "on_tie": ("oldest", "hold")}
BOOLEAN_SETTINGS = ("sync_customer_metadata", "auto_reversal", "require_deposit_amount", "batch_entry")
RATE = re.compile(r"[0-9]+(\.[0-9]+)?", re.ASCII)  # an FX rate: ASCII digits, no sign or exponent


def read_company(path: Path, problems: list[str]) -> Company | None:
    if not path.exists():
        problems.append(f"{path.name}:1: file: missing; every scenario needs a company.json")
        return None
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(f"{path.name}:{exc.lineno}: column {exc.colno}: not valid JSON ({exc.msg})")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path.name}:1: column 1: must be a JSON object")
        return None
    fields = _CompanyFields(path.name, text, data, problems)
    for key in data:
        if key not in COMPANY_KEYS:
            fields.bad(key, f"not a company.json key; the keys are {', '.join(COMPANY_KEYS)}")
    code = fields.text("company_code", r"[A-Za-z0-9]{3}", 'is not exactly 3 letters or digits, e.g. "ABC"')
    name = fields.text("company_name", r".+", "must be a non-empty string", default="")
    currency = fields.text("home_currency", r"[A-Z]{3}", 'is not a 3-letter ISO 4217 code, e.g. "GBP"')
    bank = fields.text("bank_code", r"[A-Za-z0-9]", 'must be 1 letter or digit, e.g. "A"', default="A")
    username, password = fields.logon()
    rates = fields.fx_rates()
    settings = fields.settings()
    today = fields.today()
    return Company(code.upper(), name, currency, bank.upper(), username, password, rates, settings, today)


class _CompanyFields:
    """The fields of company.json, each checked; a problem is reported at the line that names its key."""

    def __init__(self, file: str, text: str, data: dict[str, Any], problems: list[str]) -> None:
        self.file, self.source, self.data, self.problems = file, text, data, problems

    def bad(self, key: str, message: str) -> None:
        self.problems.append(f"{self.file}:{_line_of(self.source, key)}: {key}: {message}")

    def text(self, key: str, pattern: str, hint: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str) or not re.fullmatch(pattern, value):
            self.bad(key, f"{value!r} {hint}")
            return ""
        return value

    def logon(self) -> tuple[str, str]:
        logon = self.data.get("logon")
        if not (
            isinstance(logon, dict)
            and isinstance(logon.get("Username"), str)
            and isinstance(logon.get("Password"), str)
        ):
            self.bad("logon", 'must be {"Username": "...", "Password": "..."}')
            return "", ""
        return logon["Username"], logon["Password"]

    def fx_rates(self) -> dict[str, Decimal]:
        rates: dict[str, Decimal] = {}
        given = self.data.get("fx_rates") or {}
        if not isinstance(given, dict):
            self.bad("fx_rates", 'must be an object of currency codes and decimal strings, e.g. {"EUR": "0.8600"}')
            return rates
        for cur, rate in given.items():
            if re.fullmatch(r"[A-Z]{3}", cur) and isinstance(rate, str) and RATE.fullmatch(rate) and Decimal(rate) > 0:
                rates[cur] = Decimal(rate)
            else:
                self.bad("fx_rates", f'{cur}: {rate!r} must be a positive decimal string, e.g. "0.8600"')
        return rates

    def settings(self) -> dict[str, object]:
        settings = self.data.get("settings") or {}
        if not isinstance(settings, dict):
            self.bad("settings", 'must be an object, e.g. {"collect_on": "confirmed"}')
            return {}
        known = (*CHOICE_SETTINGS, *BOOLEAN_SETTINGS)
        for key, value in settings.items():
            if key in CHOICE_SETTINGS and value not in CHOICE_SETTINGS[key]:
                self.bad("settings", f"{key} {value!r} is not one of {', '.join(CHOICE_SETTINGS[key])}")
            elif key in BOOLEAN_SETTINGS and not isinstance(value, bool):
                self.bad("settings", f"{key} {json.dumps(value)} is not true or false (JSON booleans, unquoted)")
            elif key not in known:
                self.bad("settings", f"{key} is not a setting; the settings are {', '.join(known)}")
        return dict(settings)

    def today(self) -> date:
        try:
            return date.fromisoformat(str(self.data.get("today", date.today().isoformat())))
        except ValueError:
            self.bad("today", f"{self.data.get('today')!r} is not a YYYY-MM-DD date")
            return date.today()


def _line_of(text: str, key: str) -> int:
    for number, line in enumerate(text.splitlines(), start=1):
        if f'"{key}"' in line:
            return number
    return 1
