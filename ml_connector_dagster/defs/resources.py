"""Resources shared by every area: settings, the operational store and the DuckDB warehouse.

Settings are read from the environment when a run starts (never at import), so `dagster definitions
validate` works on a machine with nothing configured.
"""
import contextlib
from typing import Iterator

import dagster as dg
import duckdb

from .. import warehouse
from ..settings import Settings, load_settings
from ..store import Store


class ConnectorSettings(dg.ConfigurableResource):
    """The product's settings (ML_CONNECTOR_* variables; see the README)."""

    def get(self) -> Settings:
        return load_settings()


class OperationalStore(dg.ConfigurableResource):
    """Inbox, ledger, review queue and audit log (SQLite WAL by default, PostgreSQL by URL)."""

    settings: ConnectorSettings

    def get(self) -> Store:
        return Store(self.settings.get().database_url)


class Warehouse(dg.ConfigurableResource):
    """The DuckDB file of asset tables; written only by Dagster runs, one writer at a time.

    Connections are short-lived and retried on DuckDB's file lock, so a reader (the webserver, a CLI)
    holding the file briefly does not fail a run.
    """

    settings: ConnectorSettings
    lock_timeout_seconds: float = 60.0

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with warehouse.connect(self.settings.get().warehouse_path, read_only, self.lock_timeout_seconds) as conn:
            yield conn


settings_resource = ConnectorSettings()
store_resource = OperationalStore(settings=settings_resource)
warehouse_resource = Warehouse(settings=settings_resource)

RESOURCES = {
    "connector_settings": settings_resource,
    "store": store_resource,
    "warehouse": warehouse_resource,
}

# Steps run in the run's own process: they are I/O-bound, share one DuckDB writer, and a process per
# step would add seconds of start-up to every webhook-to-receipt run.
defs = dg.Definitions(resources=RESOURCES, executor=dg.in_process_executor)
