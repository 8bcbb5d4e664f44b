"""Fixtures of the Dagster wiring's tests: a Dagster instance of its own, and the small scenario played to its
end through the real definitions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest

from ml_connector_dagster.sandbox.dagster_driver import Driver
from ml_connector_dagster.sandbox.scenario import bundled
from ml_connector_dagster.sandbox.stack import Stack, start_stack

from support.played_month import INITIAL_LOAD


@pytest.fixture
def instance() -> Iterator[dg.DagsterInstance]:
    """A throwaway Dagster instance (its own temporary storage) for one test."""
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture
def settled(tmp_path: Path) -> Iterator[tuple[Stack, Driver]]:
    """The small scenario played to its end and settled, as the daemon would leave it."""
    saved = dict(os.environ)
    stack = start_stack(bundled("small"), tmp_path / "home")
    try:
        os.environ.update(stack.env)
        from ml_connector_dagster.definitions import defs

        with dg.instance_for_test() as instance:
            driver = Driver(defs, instance)
            driver.materialize(INITIAL_LOAD)
            for _ in stack.gocardless.world.steps:
                stack.gocardless.play()
                assert stack.gocardless.wait_deliveries(60), "webhooks were not all delivered"
                driver.settle_step(idle=lambda: not stack.store.inbox.due())
            yield stack, driver
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)
