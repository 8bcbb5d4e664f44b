"""Resources shared by every area: settings, the operational store and the DuckDB warehouse.

Settings are read from the environment when a run or sensor tick first needs them (never at import), so
`dagster definitions validate` works on a machine with nothing configured.

Lifecycle: Dagster builds each resource once per run (the in-process executor runs every step of a run with
the same resources) and once per sensor or schedule tick, and tears it down when the run or tick ends.
What a resource opens - the store's engine, an API client - it opens on first use and closes in
`teardown_after_execution`, so a run or tick that never asks for it opens nothing, and nothing it opened
outlives it.
"""

import contextlib
import threading
from collections.abc import Iterator

import dagster as dg
import duckdb
from pydantic import PrivateAttr

from .. import warehouse
from ..settings import Settings, load_settings
from ..store import Store


class ResourceNotOpen(RuntimeError):
    """A resource was used outside the run or tick that owns it: nothing would close what it opened."""


# A ConfigurableResource hands itself to user code: its type parameter is the class itself.
class ConnectorSettings(dg.ConfigurableResource["ConnectorSettings"]):
    """The product's settings (ML_CONNECTOR_* variables; see the README), read once per run or tick."""

    _settings: Settings | None = PrivateAttr(default=None)

    def get(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings()
        return self._settings


class OperationalStore(dg.ConfigurableResource["OperationalStore"]):
    """Inbox, ledger, review queue and audit log (SQLite WAL by default, PostgreSQL by URL).

    One `Store` (one engine, one connection pool) per run or sensor tick, disposed when it ends.
    """

    settings: ConnectorSettings
    _store: Store | None = PrivateAttr(default=None)
    _open: bool = PrivateAttr(default=False)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    def setup_for_execution(self, context: dg.InitResourceContext) -> None:
        self._open = True

    def get(self) -> Store:
        """The run's (or tick's) store, opened on first use."""
        with self._lock:
            if not self._open:
                raise ResourceNotOpen("the operational store resource is used outside a run or sensor tick")
            if self._store is None:
                self._store = Store(self.settings.get().database_url)
            return self._store

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        with self._lock:
            self._open = False
            store, self._store = self._store, None
        if store is not None:
            store.dispose()


class Warehouse(dg.ConfigurableResource["Warehouse"]):
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
