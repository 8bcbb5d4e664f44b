"""Lists as GoCardless serves them: filters as flat query keys, newest first, cursor pagination.

`page` filters the items (unknown query keys are refused, as GoCardless does), sorts them newest first
and cuts one page: at most `limit` items (default 50, at most 500) after or before a cursor (an item id),
with `meta.cursors.after` null on the last page. Filters are built per resource by routes.py; they read
any resource's fields by name, so they see an item as a mapping of JSON values.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Mapping, Sequence
from datetime import date
from typing import TypeVar

from ..gocardless_shapes import ListMeta, Resource
from ..gocardless_state import parse_iso
from .errors import ApiError

MAX_LIMIT = 500
DEFAULT_LIMIT = 50

Item = Mapping[str, object]  # any resource, its fields read by name
Filter = Callable[[str], Callable[[Item], bool]]  # validates a query value, returns the item test
Listed = TypeVar("Listed", bound=Resource)
Bound = TypeVar("Bound", bound=date)  # what an ordered filter compares: a date, or a datetime


def links(item: Item, name: str) -> object:
    """The id an item links to (`links.mandate`...), or None."""
    item_links = item.get("links")
    return item_links.get(name) if isinstance(item_links, Mapping) else None


def _invalid(name: str, hint: str) -> ApiError:
    return ApiError(
        422,
        "validation_failed",
        "invalid_filter",
        f"{name} {hint}",
        [{"field": name, "message": hint, "request_pointer": f"/{name}"}],
    )


def _ordered(prefix: str, parse: Callable[[str], Bound], hint: str) -> dict[str, Filter]:
    """`prefix[gt|gte|lt|lte]` filters over a value parsed the same way on both sides."""
    tests: dict[str, Callable[[Bound, Bound], bool]] = {
        "gt": lambda a, b: a > b,
        "gte": lambda a, b: a >= b,
        "lt": lambda a, b: a < b,
        "lte": lambda a, b: a <= b,
    }

    def make(op: str) -> Filter:
        def build(value: str) -> Callable[[Item], bool]:
            try:
                bound = parse(value)
            except ValueError:
                raise _invalid(f"{prefix}[{op}]", hint) from None

            def test(item: Item) -> bool:
                field = item.get(prefix)  # a timestamp or a date (a string), or null
                return isinstance(field, str) and bool(field) and tests[op](parse(field), bound)

            return test

        return build

    return {f"{prefix}[{op}]": make(op) for op in tests}


def time_filters(prefix: str) -> dict[str, Filter]:
    return _ordered(prefix, parse_iso, "must be an ISO 8601 timestamp, e.g. 2026-11-01T00:00:00.000Z")


def date_filters(prefix: str) -> dict[str, Filter]:
    return _ordered(prefix, date.fromisoformat, "must be a date, e.g. 2026-11-01")


def equals(getter: Callable[[Item], object]) -> Filter:
    return lambda value: lambda item: str(getter(item)) == value


def page(
    items: Sequence[Listed], params: Mapping[str, str], filters: Mapping[str, Filter], ignored: Sequence[str] = ()
) -> tuple[list[Listed], ListMeta]:
    """Filter, sort newest first and cut one page (deep copies); `meta.cursors.after` is null on the last page."""
    unknown = sorted(set(params) - set(filters) - {"after", "before", "limit", *ignored})
    if unknown:
        raise ApiError(400, "invalid_api_usage", "invalid_filters", f"unknown query parameter(s): {', '.join(unknown)}")
    limit = _limit(params.get("limit"))
    tests = [filters[k](v) for k, v in params.items() if k in filters]
    selected = [i for i in items if all(test(i) for test in tests)]
    selected.sort(key=lambda i: (i["created_at"], i["id"]), reverse=True)
    ids = [i["id"] for i in selected]
    start, end = 0, min(limit, len(selected))
    if params.get("after"):
        start = _cursor_index(ids, params["after"]) + 1
        end = min(start + limit, len(selected))
    elif params.get("before"):
        end = _cursor_index(ids, params["before"])
        start = max(0, end - limit)
    chunk = selected[start:end]
    meta: ListMeta = {
        "cursors": {
            "before": chunk[0]["id"] if chunk and start > 0 else None,
            "after": chunk[-1]["id"] if chunk and end < len(selected) else None,
        },
        "limit": limit,
    }
    return copy.deepcopy(chunk), meta


def _limit(value: str | None) -> int:
    if value is None:
        return DEFAULT_LIMIT
    if not value.isdigit() or not 1 <= int(value) <= MAX_LIMIT:
        raise ApiError(400, "invalid_api_usage", "invalid_limit", f"limit must be between 1 and {MAX_LIMIT}")
    return int(value)


def _cursor_index(ids: list[str], cursor: str) -> int:
    try:
        return ids.index(cursor)
    except ValueError:
        raise ApiError(
            400, "invalid_api_usage", "cursor_invalid", f"cursor {cursor!r} is not valid for this list"
        ) from None
