"""The GoCardless stand-in serves resources shaped as GoCardless's: the official client's fixtures field by field,
and the official client reads every resource of a played month."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gocardless_pro
import httpx
import pytest

from ml_connector_dagster.sandbox.gocardless_api import GoCardlessStandIn, start_gocardless_stand_in
from ml_connector_dagster.sandbox.scenario import bundled

from support.gocardless import FAST_RETRIES, TOKEN

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "gocardless-pro-fixtures"  # see tests/data/README.md
HEADERS = {"Authorization": f"Bearer {TOKEN}", "GoCardless-Version": "2015-07-06"}
RESOURCES = ("customers", "mandates", "payments", "refunds", "payouts", "events", "creditors")
# Objects GoCardless fills with only the keys that apply (the fixtures show every key there can be), and the
# merchant's own key-value pairs (any keys, string values).
OPEN_OBJECTS = frozenset({"links", "details"})
METADATA = frozenset({"metadata", "resource_metadata"})


@pytest.fixture(scope="module")
def played() -> Iterator[GoCardlessStandIn]:
    """The bundled sample month, every step played."""
    handle = start_gocardless_stand_in(bundled(), token=TOKEN, retry_intervals=FAST_RETRIES, seed=11)
    while handle.play_step():
        pass
    yield handle
    handle.stop()


def fixture(name: str) -> Any:
    return json.loads((FIXTURES / f"{name}.json").read_text())


def served(stand_in: GoCardlessStandIn, name: str, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    after = None
    while True:
        query = {"limit": "500", **params, **({"after": after} if after else {})}
        page = httpx.get(f"{stand_in.url}/{name}", params=query, headers=HEADERS).json()
        items += page[name]
        after = page["meta"]["cursors"]["after"]
        if after is None:
            return items


def differences(mine: Any, theirs: Any, path: str) -> list[str]:
    """Where `mine` is not shaped as `theirs`: a key missing or unknown, another JSON type (null stands for
    any value not set); lists compare each element with the fixture's first."""
    if path.rsplit(".", 1)[-1] in METADATA:
        ok = isinstance(mine, dict) and all(isinstance(v, str) for v in mine.values())
        return [] if ok else [f"{path}: {mine!r} is not an object of strings"]
    if isinstance(theirs, dict):
        if not isinstance(mine, dict):
            return [f"{path}: {type(mine).__name__}, not an object"]
        problems = [f"{path}.{k}: not in the fixture" for k in sorted(set(mine) - set(theirs))]
        if path.rsplit(".", 1)[-1] not in OPEN_OBJECTS:
            problems += [f"{path}.{k}: missing" for k in sorted(set(theirs) - set(mine))]
        for key in sorted(set(mine) & set(theirs)):
            problems += differences(mine[key], theirs[key], f"{path}.{key}")
        return problems
    if isinstance(theirs, list):
        if not isinstance(mine, list):
            return [f"{path}: {type(mine).__name__}, not a list"]
        return [p for n, item in enumerate(mine) if theirs for p in differences(item, theirs[0], f"{path}[{n}]")]
    if mine is not None and theirs is not None and type(mine) is not type(theirs):
        return [f"{path}: {type(mine).__name__} {mine!r}, the fixture has {type(theirs).__name__} {theirs!r}"]
    return []


@pytest.mark.parametrize("name", RESOURCES)
def test_each_resource_is_shaped_as_the_official_clients_fixture(played: GoCardlessStandIn, name: str) -> None:
    theirs = fixture(name)["get"]["body"][name]
    items = served(played, name)

    problems = [p for item in items for p in differences(item, theirs, f"{name}[{item['id']}]")]

    assert items and problems == []


def test_payout_items_and_list_pages_are_shaped_as_the_official_clients_fixture(played: GoCardlessStandIn) -> None:
    theirs = fixture("payout_items")["list"]["body"]
    pages = [
        httpx.get(f"{played.url}/payout_items", params={"payout": p}, headers=HEADERS).json()
        for p in played.world.payouts
    ]

    problems = [p for page in pages for p in differences(page, theirs, "payout_items")]

    assert any(i["taxes"] for page in pages for i in page["payout_items"])  # fee items carry their VAT
    assert pages and problems == []


def _read_everything(resource: Any, path: str) -> int:
    """Read every attribute the official client's wrapper offers, nested wrappers too; how many were read."""
    count = 0
    for name, member in vars(type(resource)).items():
        if isinstance(member, property):
            value = getattr(resource, name)
            count += 1 + (_read_everything(value, f"{path}.{name}") if hasattr(value, "attributes") else 0)
    return count


def test_the_official_client_reads_every_resource_of_a_played_month(played: GoCardlessStandIn) -> None:
    client = gocardless_pro.Client(access_token=TOKEN, base_url=played.url)
    services = {name: getattr(client, name) for name in RESOURCES}

    read = {
        name: [_read_everything(r, name) for r in service.all(params={"limit": 500})]
        for name, service in services.items()
    }
    fetched = [_read_everything(services[name].get(r["id"]), name) for name in RESOURCES for r in served(played, name)]
    items = [
        _read_everything(item, "payout_items")
        for payout in played.world.payouts
        for item in client.payout_items.all(params={"payout": payout})
    ]

    assert all(read[name] for name in RESOURCES) and all(n > 0 for counts in read.values() for n in counts)
    assert len(fetched) == sum(len(counts) for counts in read.values())
    assert len(items) == sum(len(v) for v in played.world.payout_items.values())
