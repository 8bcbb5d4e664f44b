"""A played month: the 'small' scenario run end to end through the stand-ins and the real Dagster definitions."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import dagster as dg
import pytest

from ml_connector_dagster.sandbox.dagster_driver import Driver
from ml_connector_dagster.sandbox.scenario import bundled
from ml_connector_dagster.sandbox.stack import Stack, start_stack
from ml_connector_dagster.store import Store

INITIAL_LOAD = [dg.AssetKey(k) for k in (["sage100", "customers"], ["sage100", "ar_invoices"],
                                          ["gocardless", "customers"], ["reconciliation", "customer_map"])]


@dataclass
class World:
    stack: Stack
    driver: Driver
    store: Store

    def play(self, until: int | None = None) -> None:
        """Play steps up to step `until` (all by default), letting Dagster settle after each."""
        status = self.stack.gocardless.world.status()
        for _ in range(status["step"], status["total_steps"] if until is None else until):
            self.stack.gocardless.play_step()
            assert self.stack.gocardless.wait_deliveries(60), "webhooks were not all delivered"
            self.settle()

    def settle(self) -> None:
        self.driver.settle(idle=lambda: not self.store.inbox.due())

    def receipts(self, payment_id: str) -> list[dict]:
        """Cash receipt headers Sage holds for a payment (the agent keys them by the payment id)."""
        return [r for r in self.stack.sage.company.rows("AR_CashReceiptsHeader") if r["UDF_GC_PAYMENT_ID"] == payment_id]

    def invoice(self, invoice_no: str) -> dict:
        return next(r for r in self.stack.sage.company.rows("AR_OpenInvoice") if r["InvoiceNo"] == invoice_no)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    """Module-scoped: playing a month takes seconds; tests act on different payments of it."""
    root = tmp_path_factory.mktemp("world")
    saved = dict(os.environ)
    stack = start_stack(bundled("small"), root / "home")
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
