"""Lists as GoCardless serves them: filters as flat query keys, newest first, cursor pagination.

`page` filters the items (unknown query keys are refused, as GoCardless does), sorts them newest first
and cuts one page: at most `limit` items (default 50, at most 500) after or before a cursor (an item id),
with `meta.cursors.after` null on the last page. Filters are built per resource by routes.py.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from datetime import date
from typing import Any

from ..gocardless_state import parse_iso
from .errors import ApiError

MAX_LIMIT = 500
DEFAULT_LIMIT = 50


Item = dict[str, Any]
Filter = Callable[[str], Callable[[Item], bool]]  # validates a query value, returns the item test


def links(item: Item, name: str) -> Any:
    """The id an item links to (`links.mandate`...), or None."""
    return (item.get("links") or {}).get(name)


def _invalid(name: str, hint: str) -> ApiError:
    return ApiError(422, "validation_failed", "invalid_filter", f"{name} {hint}",
                    [{"field": name, "message": hint, "request_pointer": f"/{name}"}])


def _ordered(prefix: str, parse: Callable[[str], Any], hint: str) -> dict[str, Filter]:
    """`prefix[gt|gte|lt|lte]` filters over a value parsed the same way on both sides."""
    tests = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b,
             "lte": lambda a, b: a <= b}

    def make(op: str) -> Filter:
        def build(value: str) -> Callable[[Item], bool]:
            try:
                bound = parse(value)
            except ValueError:
                raise _invalid(f"{prefix}[{op}]", hint) from None
            return lambda item: bool(item.get(prefix)) and tests[op](parse(item[prefix]), bound)
        return build
    return {f"{prefix}[{op}]": make(op) for op in tests}


def time_filters(prefix: str) -> dict[str, Filter]:
    return _ordered(prefix, parse_iso, "must be an ISO 8601 timestamp, e.g. 2026-11-01T00:00:00.000Z")


def date_filters(prefix: str) -> dict[str, Filter]:
    return _ordered(prefix, date.fromisoformat, "must be a date, e.g. 2026-11-01")


def equals(getter: Callable[[Item], Any]) -> Filter:
    return lambda value: lambda item: str(getter(item)) == value


def page(items: list[Item], params: dict[str, str], filters: dict[str, Filter],
         envelope: str, ignored: Sequence[str] = ()) -> dict[str, Any]:
    """Filter, sort newest first and cut one page; `meta.cursors.after` is null on the last page."""
    unknown = sorted(set(params) - set(filters) - {"after", "before", "limit", *ignored})
    if unknown:
        raise ApiError(400, "invalid_api_usage", "invalid_filters",
                       f"unknown query parameter(s): {', '.join(unknown)}")
    limit = _limit(params.get("limit"))
    tests = [filters[k](v) for k, v in params.items() if k in filters]
    selected = [i for i in items if all(test(i) for test in tests)]
    selected.sort(key=lambda i: (i.get("created_at") or "", i.get("id") or ""), reverse=True)
    ids = [i.get("id") for i in selected]
    start, end = 0, min(limit, len(selected))
    if params.get("after"):
        start = _cursor_index(ids, params["after"]) + 1
        end = min(start + limit, len(selected))
    elif params.get("before"):
        end = _cursor_index(ids, params["before"])
        start = max(0, end - limit)
    chunk = selected[start:end]
    cursors = {"before": chunk[0]["id"] if chunk and start > 0 else None,
               "after": chunk[-1]["id"] if chunk and end < len(selected) else None}
    return {envelope: copy.deepcopy(chunk), "meta": {"cursors": cursors, "limit": limit}}


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise ApiError(400, "invalid_api_usage", "invalid_limit", f"limit must be between 1 and {MAX_LIMIT}")
    return int(value)


def _cursor_index(ids: list[Any], cursor: str) -> int:
    try:
        return ids.index(cursor)
    except ValueError:
        raise ApiError(400, "invalid_api_usage", "cursor_invalid",
                       f"cursor {cursor!r} is not valid for this list") from None
