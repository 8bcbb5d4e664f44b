"""The multi-host storage: a Dagster instance on PostgreSQL (dagster-postgres) and the operational store on
PostgreSQL, running the real sensors, inbox job and write-back job over the 'small' scenario.

Needs ML_CONNECTOR_TEST_DAGSTER_POSTGRES_URL (an empty database for Dagster) and ML_CONNECTOR_TEST_POSTGRES_URL
(the operational store); CI (.ci/run) starts a throwaway server and sets both. Both databases are emptied
first. The scenario, per tests/reconciliation: PM0001 names invoice 0100030 (1200.00); PM0004 ties two
300.00 invoices (on_tie = hold); PM0008 and PM0009 have no resolvable Sage customer; PM0015 is charged back
after posting.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa

from ml_connector_dagster.gocardless.receiver import WEBHOOK_PATH, create_app
from ml_connector_dagster.httpserve import serve_in_thread
from ml_connector_dagster.sandbox.dagster_driver import Driver
from ml_connector_dagster.sandbox.gocardless_api import start_gocardless_stand_in
from ml_connector_dagster.sandbox.sage_services import start_sage_stand_ins
from ml_connector_dagster.sandbox.scenario import bundled, load_scenario
from ml_connector_dagster.sandbox.stack import SANDBOX_WEBHOOK_SECRET, product_env
from ml_connector_dagster.settings import load_settings
from ml_connector_dagster.store import Store

STORE_URL = os.environ.get("ML_CONNECTOR_TEST_POSTGRES_URL")
DAGSTER_URL = os.environ.get("ML_CONNECTOR_TEST_DAGSTER_POSTGRES_URL")
if os.environ.get("CI") and not (STORE_URL and DAGSTER_URL):
    raise RuntimeError(
        "CI must set ML_CONNECTOR_TEST_POSTGRES_URL and ML_CONNECTOR_TEST_DAGSTER_POSTGRES_URL (see .ci/run)"
    )
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.slow,
    pytest.mark.skipif(
        not (STORE_URL and DAGSTER_URL),
        reason="no PostgreSQL: set ML_CONNECTOR_TEST_POSTGRES_URL and "
        "ML_CONNECTOR_TEST_DAGSTER_POSTGRES_URL (bash .ci/postgres.sh starts one)",
    ),
]


def dagster_url(url: str) -> str:
    """dagster-postgres needs psycopg2: under SQLAlchemy 2.1 a bare postgresql:// means psycopg 3, with which
    its `NOTIFY run_events, %(id)s` fails (server-side parameters). In dagster.yaml that is
    `postgres_url: postgresql+psycopg2://...`, or `scheme: postgresql+psycopg2` under `postgres_db`."""
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


def empty_database(url: str) -> None:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    engine.dispose()


@pytest.fixture
def played(
    tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[dg.DagsterInstance, Store, object]]:
    """The 'small' month played through a PostgreSQL-backed Dagster instance and operational store."""
    empty_database(DAGSTER_URL)
    empty_database(STORE_URL)
    scenario = load_scenario(bundled("small"))
    dagster_home = tmp_path / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text(
        f'telemetry:\n  enabled: false\nstorage:\n  postgres:\n    postgres_url: "{dagster_url(DAGSTER_URL)}"\n'
    )
    stops = []
    try:
        sage = start_sage_stand_ins(scenario, data_dir=tmp_path / "sage")
        stops.append(sage.stop)
        env = {
            **product_env(scenario, home),
            **sage.settings_env(),
            "ML_CONNECTOR_DATABASE_URL": STORE_URL,
            "ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS": SANDBOX_WEBHOOK_SECRET,
        }
        store = Store(load_settings(env).database_url)
        stops.append(store.dispose)
        receiver = serve_in_thread(create_app(load_settings(env).webhooks(), store))
        stops.append(receiver.stop)
        gocardless = start_gocardless_stand_in(
            scenario,
            webhook_url=receiver.url + WEBHOOK_PATH,
            webhook_secret=SANDBOX_WEBHOOK_SECRET,
            retry_intervals=(0.1, 0.5, 1.0),
        )
        stops.append(gocardless.stop)
        for name, value in {**env, **gocardless.credentials(), "DAGSTER_HOME": str(dagster_home)}.items():
            monkeypatch.setenv(name, value)
        from ml_connector_dagster.definitions import defs

        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            driver = Driver(defs, instance)
            for _ in range(gocardless.world.total_steps):
                gocardless.play_step()
                assert gocardless.wait_deliveries(60), "webhooks were not delivered"
                driver.settle(idle=lambda: not store.inbox.due())
            yield instance, store, sage.company
    finally:
        for stop in reversed(stops):
            stop()


def test_a_month_runs_on_a_postgres_dagster_instance_and_a_postgres_store(played) -> None:
    instance, store, company = played
    runs = instance.get_runs()
    receipts = Counter(r["UDF_GC_PAYMENT_ID"] for r in company.rows("AR_CashReceiptsHeader"))
    inbox = store.inbox.counts()
    print(
        f"\nPostgreSQL: {len(runs)} runs, inbox {inbox}, ledger {store.ledger.counts()}, "
        f"{sum(receipts.values())} receipts for {len(receipts)} payments"
    )

    assert type(instance.run_storage).__name__ == "PostgresRunStorage"
    assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
    assert store.engine.dialect.name == "postgresql"
    assert "gocardless_inbox_job" in {
        r.job_name for r in runs
    }  # it posts too; post_cash_receipts_job only if left over
    assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs), [(r.job_name, r.status) for r in runs]
    assert set(inbox) == {"processed"}, inbox
    assert max(receipts.values()) == 1, f"a payment was posted twice: {receipts}"
    assert store.ledger.get("PM0001").status == "posted"
    assert Decimal(store.ledger.get("PM0001").receipt["amount"]) == Decimal("1200.00")
    assert (store.ledger.get("PM0004").status, store.ledger.get("PM0004").reason) == ("held", "ambiguous_match")
    assert {store.ledger.get(p).reason for p in ("PM0008", "PM0009")} == {"customer_not_found"}
    assert store.ledger.get("PM0015").status == "reversal_required"
