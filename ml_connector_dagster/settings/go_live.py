"""The go-live date: the first day `gocardless/payments` is partitioned by, read when the definitions load.

Dagster builds the partitions when it imports the code location, before any run or tick, so this is read
then, on its own: ML_CONNECTOR_GO_LIVE_DATE, else `go_live_date` in the TOML file. Unset, the first day of
the previous month (UTC) is used, so a fresh install loads and shows a short, useful range; a value that is
not a YYYY-MM-DD date, or lies in the future, stops the load with a SettingsError naming the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from datetime import UTC, date, datetime

from . import parse, toml_file
from .model import SettingsError
from .names import env_name

NAME = "go_live_date"


def go_live_date(environ: Mapping[str, str] | None = None, today: date | None = None) -> date:
    """The configured go-live date, or the first day of the previous month when none is configured."""
    env = dict(os.environ if environ is None else environ)
    today = today or datetime.now(UTC).date()
    value: object = env.get(env_name(NAME)) or None
    if value is None:
        file_problems: list[str] = []  # the file's other problems are reported when the settings load
        value = toml_file.read(env, file_problems).get(NAME) or None
    if value is None:
        return date(today.year - (today.month == 1), (today.month - 2) % 12 + 1, 1)
    problems: list[str] = []
    text = parse.iso_date(NAME, value, problems)
    if problems:
        raise SettingsError(problems)
    day = date.fromisoformat(text)
    if day > today:
        raise SettingsError([f"{env_name(NAME)}: {text} is in the future; give the first day payments were taken"])
    return day
