"""Fixtures for the reconciliation: a played month (`world`, shared by a module's tests) and a generated company
waiting for the write-back (`make_write_back`); the classes are in support/played_month.py."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import dagster as dg
import pytest

from ml_connector_dagster.bench.e2e import write_matching_scenario
from ml_connector_dagster.sage100.clients import clear_wsdl_cache
from ml_connector_dagster.sandbox.dagster_driver import Driver
from ml_connector_dagster.sandbox.scenario import bundled
from ml_connector_dagster.sandbox.stack import start_stack
from ml_connector_dagster.settings import load_settings

from support.played_month import INITIAL_LOAD, World, WriteBack


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Module-scoped: playing a month takes seconds; tests act on different payments of it."""
    yield from _played(tmp_path_factory.mktemp("world"), "small")


@pytest.fixture(scope="module")
def busy_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The bundled busy_month, where people key receipts and run the journal update (module-scoped, not played:
    each test plays up to the step it needs; the steps played stay played for the module's next tests)."""
    yield from _played(tmp_path_factory.mktemp("busy"), "busy_month")


@pytest.fixture(scope="module")
def healing_world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """The bundled healing_month, where held payments are decided again as Sage and GoCardless change
    (module-scoped, not played: the module plays it, acting as an operator between steps)."""
    yield from _played(tmp_path_factory.mktemp("healing"), "healing_month")


def _played(root: Path, scenario: str) -> Iterator[World]:
    saved = dict(os.environ)
    stack = start_stack(bundled(scenario), root / "home")
    try:
        os.environ.update({**stack.env, "DAGSTER_HOME": str(root / "dagster")})
        (root / "dagster").mkdir()
        (root / "dagster" / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
        from ml_connector_dagster.definitions import defs

        with dg.DagsterInstance.from_config(str(root / "dagster")) as instance:
            driver = Driver(defs, instance)
            driver.materialize(INITIAL_LOAD)
            yield World(stack, driver, stack.store)
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture
def make_write_back(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., WriteBack]]:
    """`make_write_back(payments, lifecycle, refunds)`: the company with its first step played and decided.

    `lifecycle` is every payment's GoCardless statuses, one per step ("confirmed charged_back");
    `refunds` are extra rows of gocardless_refunds.csv ("RF1,PMB000000,5000,created")."""
    cleanup: list[Callable[[], None]] = []

    def make(payments: int = 4, lifecycle: str = "confirmed", refunds: Sequence[str] = ()) -> WriteBack:
        scenario = write_matching_scenario(tmp_path / "scenario", payments, lifecycle=lifecycle)
        if refunds:
            (scenario / "gocardless_refunds.csv").write_text(
                "id,payment,amount,lifecycle\n" + "\n".join(refunds) + "\n"
            )
        stack = start_stack(scenario, tmp_path / "stack", webhook_retry_intervals=(0.2, 0.5, 1.0))
        cleanup.append(stack.stop)
        env = {**stack.env, "ML_CONNECTOR_SAGE_TIMEOUT_SECONDS": "5"}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        instance = dg.DagsterInstance.ephemeral()
        cleanup.append(instance.dispose)
        from ml_connector_dagster.definitions import defs

        write_back = WriteBack(stack, Driver(defs, instance), load_settings(env), [])
        write_back.step()
        return write_back

    yield make
    for stop in reversed(cleanup):
        stop()
    clear_wsdl_cache()
