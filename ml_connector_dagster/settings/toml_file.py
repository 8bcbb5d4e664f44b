"""The TOML file named by ML_CONNECTOR_CONFIG: every key a known setting, every value of its setting's type.

`read` returns the file's values the way the environment gives them where the two differ (a list
comma-joined, a table as CUR=rate text, an empty string as unset), so the checks in `parse.py` serve both;
an unknown key (a typo: the closest setting is suggested) or a value of the wrong type is a problem.
"""

from __future__ import annotations

import difflib
import math
import tomllib
from collections import abc
from collections.abc import Mapping
from decimal import Decimal
from types import UnionType
from typing import Union, get_args, get_origin, get_type_hints

from .model import Settings
from .names import PREFIX

_TOML_HINTS = {"home": "a folder path", "database_url": "a sqlite:/// or postgresql:// URL"}
_TOML_KIND_PHRASES = {
    "string": "a string",
    "number": "a number",
    "boolean": "a boolean (true or false)",
    "list": "a list of strings",
    "table": "a table of CUR = rate",
}


def _toml_kind(annotation: object) -> str:
    """The TOML type of a Settings field, read from its annotation, so a new setting needs no entry here."""
    options = (
        [a for a in get_args(annotation) if a is not type(None)]
        if get_origin(annotation) in (Union, UnionType)
        else [annotation]
    )
    kind = get_origin(options[0]) or options[0]
    if kind in (tuple, frozenset, set, list):
        return "list"
    if kind is bool:
        return "boolean"
    if kind in (int, float, Decimal):
        return "number"
    if isinstance(kind, type) and issubclass(kind, abc.Mapping):
        return "table"
    return "string"


def _toml_kinds() -> dict[str, str]:
    return {name: _toml_kind(hint) for name, hint in get_type_hints(Settings).items()}


def _toml_type(value: object) -> str:
    """What a TOML value is, in the words of the error message."""
    for kind, phrase in (
        (bool, "a boolean"),
        ((int, float), "a number"),
        (str, "a string"),
        (list, "a list"),
        (dict, "a table"),
    ):
        if isinstance(value, kind):
            return phrase
    return "a date or time"


def _toml_problem(key: str, kind: str, value: object) -> str | None:
    """Why `value` is not of `kind` (None when it is); a list and a table are checked item by item."""
    if kind == "list" and isinstance(value, list):
        wrong = next((v for v in value if not isinstance(v, str)), None)
        return None if wrong is None else f"{key} must be a list of strings, got a list with {_toml_type(wrong)}"
    if kind == "table" and isinstance(value, dict):
        wrong = next(
            ((k, v) for k, v in value.items() if isinstance(v, bool) or not isinstance(v, (int, float, str))), None
        )
        return None if wrong is None else f"{key}.{wrong[0]} must be a number, got {_toml_type(wrong[1])}"
    expected = {"string": (str,), "number": (int, float), "boolean": (bool,), "list": (list,), "table": (dict,)}[kind]
    if isinstance(value, expected) and not (kind == "number" and isinstance(value, bool)):
        return None
    hint = f" ({_TOML_HINTS[key]})" if key in _TOML_HINTS else ""
    return f"{key} must be {_TOML_KIND_PHRASES[kind]}{hint}, got {_toml_type(value)}"


def _toml_number_text(value: object) -> str:
    """A TOML number as plain digits (0.00001, not 1e-05); anything else as it is, to be checked later."""
    if isinstance(value, float) and math.isfinite(value):
        return format(Decimal(repr(value)), "f")
    return str(value)


def read(env: Mapping[str, str], problems: list[str]) -> dict[str, object]:
    """The TOML file's settings, type-checked; an unknown key (a typo) or a wrong type is a problem."""
    path = env.get(PREFIX + "CONFIG")
    if not path:
        return {}
    try:
        with open(path, "rb") as fh:
            data = tomllib.load(fh)
    except FileNotFoundError:
        problems.append(f"{PREFIX}CONFIG: file {path} does not exist; fix the path or unset the variable")
        return {}
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        problems.append(f"{PREFIX}CONFIG: {path} is not valid TOML ({exc})")
        return {}
    except OSError as exc:
        problems.append(f"{PREFIX}CONFIG: cannot read {path} ({exc.strerror or exc.__class__.__name__})")
        return {}
    kinds = _toml_kinds()
    out: dict[str, object] = {}
    for key, value in ((k.lower(), v) for k, v in data.items()):
        if key not in kinds:
            close = difflib.get_close_matches(key, kinds, n=1)
            fix = f"did you mean {close[0]!r}?" if close else "remove it (the settings are listed in the README)"
            problems.append(f"{PREFIX}CONFIG: unknown setting {key!r} in {path}; {fix}")
        elif problem := _toml_problem(key, kinds[key], value):
            problems.append(f"{PREFIX}CONFIG: {problem}; fix it in {path}")
        elif isinstance(value, dict):
            out[key] = ",".join(f"{c}={_toml_number_text(r)}" for c, r in value.items())
        elif isinstance(value, list):
            out[key] = ",".join(value)
        elif value != "":  # an empty string means unset, as in the environment
            out[key] = value
    return out
