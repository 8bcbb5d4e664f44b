"""Resources open what they use once per run or sensor tick and close it when the run or tick ends.

The operational store's engines are counted through SQLAlchemy's own events, on every engine in the
process (Dagster's instance storage has engines too: only those on the store's file count), with the real
definitions, resources and a real Dagster instance.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
from sqlalchemy import event

from ml_connector_dagster.definitions import defs
from ml_connector_dagster.defs.resources import ResourceNotOpen, store_resource

PAYMENT_MATCHES = dg.AssetKey(["reconciliation", "payment_matches"])
PAYOUTS = dg.AssetKey(["reconciliation", "payouts"])


class StoreEngines:
    """Every engine on the store's database that connected while this listened, and those disposed."""

    def __init__(self, database: Path) -> None:
        self.database = str(database)
        self.connected: list[sa.Engine] = []
        self.disposed: list[sa.Engine] = []

    def __enter__(self) -> StoreEngines:
        event.listen(sa.Engine, "engine_connect", self._connected)
        event.listen(sa.Engine, "engine_disposed", self._disposed)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(sa.Engine, "engine_connect", self._connected)
        event.remove(sa.Engine, "engine_disposed", self._disposed)

    def _ours(self, engine: sa.Engine) -> bool:
        return engine.url.database == self.database

    def _connected(self, connection: sa.Connection) -> None:
        engine = connection.engine
        if self._ours(engine) and not any(engine is e for e in self.connected):
            self.connected.append(engine)

    def _disposed(self, engine: sa.Engine) -> None:
        if self._ours(engine):
            self.disposed.append(engine)


@pytest.fixture
def configured(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Settings for deciding payments (nothing else is reached); returns the store's database file."""
    monkeypatch.setenv("ML_CONNECTOR_SAGE_HOME_CURRENCY", "GBP")
    monkeypatch.setenv("ML_CONNECTOR_SAGE_BANK_CODE", "A")
    return home / "ops.sqlite"


def test_a_run_opens_one_store_engine_for_all_its_steps_and_disposes_it_when_it_ends(
    configured: Path, instance: dg.DagsterInstance
) -> None:
    job = defs.resolve_implicit_global_asset_job_def()

    with StoreEngines(configured) as engines:
        result = job.execute_in_process(instance=instance, asset_selection=[PAYMENT_MATCHES, PAYOUTS])

    steps = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SUCCESS"}
    assert result.success
    # payment_matches, payouts and two checks read or write the store (the other checks use the warehouse only)
    assert {"reconciliation__payment_matches", "reconciliation__payouts"} <= steps
    assert {c.check_name for c in result.get_asset_check_evaluations()} >= {
        "no_invoice_over_applied",
        "payout_items_add_up",
    }
    [engine] = engines.connected
    assert engines.disposed == [engine]
    assert engine.pool.checkedout() == 0


def test_a_sensor_tick_opens_one_store_engine_and_disposes_it_when_the_tick_ends(
    configured: Path, instance: dg.DagsterInstance
) -> None:
    sensor = defs.resolve_sensor_def("post_cash_receipts_retry")

    with StoreEngines(configured) as engines:
        with dg.build_sensor_context(
            instance=instance, sensor_name=sensor.name, definitions=defs, resources=defs.resources
        ) as context:
            data = sensor.evaluate_tick(context)
            assert len(engines.connected) == 1 and engines.disposed == []  # the tick is still using it
        [engine] = engines.connected
        assert engines.disposed == [engine]

    assert data.run_requests == []  # the ledger is empty: nothing waits to be posted
    assert engine.pool.checkedout() == 0


def test_the_store_resource_refuses_to_open_outside_a_run_or_tick(configured: Path) -> None:
    with pytest.raises(ResourceNotOpen, match="outside a run or sensor tick"):
        store_resource.get()
