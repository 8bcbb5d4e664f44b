"""Resources shared by every area: settings, the operational store and the DuckDB warehouse.

How settings reach a resource, and why the Resources page shows them:

- Every resource that needs settings has one field per setting it uses, named as the setting
  (`gocardless_access_token` is `ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN`). The product's resources are built
  with `from_environment()`: a field whose variable is set when the definitions load is `dg.EnvVar(<name>)`,
  so the Dagster UI's Resources page shows *which variable* configures it (by name, never its value, so
  secrets stay masked) and Dagster resolves it for the run. A field whose variable is unset stays empty
  (None): the setting may come from a stored secret or the TOML file, which Dagster cannot see, and an
  EnvVar on an unset variable would fail every run with Dagster's own error instead of ours.
- Settings are read by the settings package only: a resource calls `load_settings` with the environment
  overlaid with its non-empty fields (as the variables they stand for). So the precedence stays what it is
  everywhere else: environment (or a field) > stored secret (`ml-connector secrets set`) > TOML file >
  default, and `SettingsError` lists every problem with the same messages as the CLI's.
- At import only the names of the set variables are looked at; nothing is read or checked: with nothing
  configured the definitions load
  (`dagster definitions validate`, `dg check defs`), and a resource raises SettingsError only when a run or
  tick uses it. Reprs mask secret fields and URL credentials (`MaskedSecrets`).

Lifecycle: Dagster builds each resource once per run (the in-process executor runs every step of a run with
the same resources) and once per sensor or schedule tick, and tears it down when the run or tick ends.
What a resource opens - the store's engine, an API client - it opens on first use and closes in
`teardown_after_execution`, so a run or tick that never asks for it opens nothing, and nothing it opened
outlives it.
"""

import contextlib
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import fields
from typing import Any, Self

import dagster as dg
import duckdb
from pydantic import Field, PrivateAttr

from .. import warehouse
from ..secrets import mask_credentials
from ..settings import SECRET_SETTINGS, Settings, env_name, load_settings
from ..store import Store

# Every name a resource field may carry: the settings, plus the home folder and the TOML file's path.
SETTING_NAMES = frozenset(f.name for f in fields(Settings)) | {"home", "config"}
MASK = "********"


class ResourceNotOpen(RuntimeError):
    """A resource was used outside the run or tick that owns it: nothing would close what it opened."""


def setting_field(description: str) -> Any:
    """A resource field standing for one ML_CONNECTOR_* setting: None means 'not set on the resource'.

    Secret ones are not marked secret for Dagster: it pre-fills such a field in the Launchpad as the text
    '********', and a run launched with that config would take it as the value. The fields are EnvVars (shown
    by the variable's name) or empty, never a plain value, and reprs mask them (`MaskedSecrets`).
    """
    return Field(default=None, description=description)


def setting_values(resource: dg.ConfigurableResource[Any]) -> dict[str, str]:
    """The resource's non-empty setting fields as the environment variables they stand for."""
    values = {name: getattr(resource, name, None) for name in type(resource).model_fields if name in SETTING_NAMES}
    return {env_name(name): str(value) for name, value in values.items() if value not in (None, "")}


def environment_fields(cls: type[dg.ConfigurableResource[Any]]) -> dict[str, Any]:
    """`dg.EnvVar` for each setting field of `cls` whose variable is set now (see the module docstring)."""
    names = (name for name in cls.model_fields if name in SETTING_NAMES)
    return {name: dg.EnvVar(env_name(name)) for name in names if os.environ.get(env_name(name))}


class MaskedSecrets:
    """Mixin for resources: secret fields are shown as ******** and URL credentials masked in repr/str
    (a resolved EnvVar holds the secret itself)."""

    def __repr_args__(self) -> Iterator[tuple[str | None, Any]]:
        for name, value in super().__repr_args__():  # type: ignore[misc]
            if name in SECRET_SETTINGS and value:
                yield name, MASK
            elif isinstance(value, str):
                yield name, mask_credentials(value)
            else:
                yield name, value


# A ConfigurableResource hands itself to user code: its type parameter is the class itself.
class ConnectorSettings(MaskedSecrets, dg.ConfigurableResource["ConnectorSettings"]):
    """The product's settings (ML_CONNECTOR_* variables; see the README), read once per run or tick.

    Its fields are the settings every area shares; the Sage and GoCardless resources carry their own.
    """

    home: str | None = setting_field("ML_CONNECTOR_HOME: the home folder (the warehouse is warehouse.duckdb in it)")
    config: str | None = setting_field("ML_CONNECTOR_CONFIG: the TOML settings file, if any")
    database_url: str | None = setting_field("ML_CONNECTOR_DATABASE_URL: the operational store (SQLite default)")
    secret_key: str | None = setting_field("ML_CONNECTOR_SECRET_KEY: decrypts the stored secrets")
    sage_home_currency: str | None = setting_field("ML_CONNECTOR_SAGE_HOME_CURRENCY: Sage's home currency")
    sage_bank_code: str | None = setting_field("ML_CONNECTOR_SAGE_BANK_CODE: the bank code receipts go to")
    collect_on: str | None = setting_field("ML_CONNECTOR_COLLECT_ON: confirmed or paid_out")
    on_tie: str | None = setting_field("ML_CONNECTOR_ON_TIE: oldest or hold")
    _settings: Settings | None = PrivateAttr(default=None)

    @classmethod
    def from_environment(cls) -> Self:
        return cls(**environment_fields(cls))

    def load(self, overrides: Mapping[str, str]) -> Settings:
        """Settings from the settings package: the environment, overlaid with these fields and `overrides`
        (another resource's fields); SettingsError lists every problem."""
        return load_settings({**os.environ, **setting_values(self), **overrides})

    def get(self) -> Settings:
        if self._settings is None:
            self._settings = self.load({})
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
    """The DuckDB file of asset tables (`warehouse.duckdb` in the home folder); written only by Dagster
    runs, one writer at a time.

    Connections are short-lived and retried on DuckDB's file lock, so a reader (the webserver, a CLI)
    holding the file briefly does not fail a run.
    """

    settings: ConnectorSettings
    lock_timeout_seconds: float = 60.0

    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        with warehouse.connect(self.settings.get().warehouse_path, read_only, self.lock_timeout_seconds) as conn:
            yield conn


settings_resource = ConnectorSettings.from_environment()
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
