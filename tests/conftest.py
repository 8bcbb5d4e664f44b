"""Fixtures used in more than one test folder: a fresh ML_CONNECTOR_HOME per test with settings in the
environment, the operational store on each backend, the GoCardless side (a receiver, the GoCardless stand-in),
the Sage side (the bundled company, the Sage stand-ins) and the session's one `ml-connector dev`. Fixtures used in
one folder only live in its conftest.py; helpers that are not fixtures live in tests/support/."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings

from ml_connector_dagster.gocardless.receiver import WEBHOOK_PATH, create_app
from ml_connector_dagster.httpserve import ServerHandle, serve_in_thread
from ml_connector_dagster.sage100.clients import clear_wsdl_cache
from ml_connector_dagster.sage100.model import Credentials
from ml_connector_dagster.sandbox.gocardless_api import GoCardlessStandIn, start_gocardless_stand_in
from ml_connector_dagster.sandbox.sage_company import DB_FILE, SageCompany
from ml_connector_dagster.sandbox.sage_services import SageStandIns, start_sage_stand_ins
from ml_connector_dagster.sandbox.scenario import Scenario, bundled, load_scenario
from ml_connector_dagster.sandbox.stack import Stack, start_stack
from ml_connector_dagster.secrets import generate_key
from ml_connector_dagster.settings import Settings, load_settings
from ml_connector_dagster.store import Store

from support.dev_process import DevProcess
from support.gocardless import FAST_RETRIES, NEW_SECRET, TOKEN, VECTOR_SECRET
from support.sage import PAGE_SIZE, MakeRequest, cash_receipt_request
from support.tls import self_signed_certificate

# No property test fails for being slow (Hypothesis's per-example deadline and its "too slow" health check): a
# loaded machine must not fail a test that has the right answer. Speed is the benchmarks' business.
hypothesis_settings.register_profile("no-timing", deadline=None, suppress_health_check=[HealthCheck.too_slow])
hypothesis_settings.load_profile("no-timing")


def pytest_configure(config: pytest.Config) -> None:
    """Import the Dagster definitions once, before any test sets a variable, as a code location whose
    environment sets no ML_CONNECTOR_* setting: a resource field is an EnvVar only for a variable set when
    the definitions load, and a later test without that variable would fail its runs on it. Their resources
    then read whatever settings each test sets."""
    callers = {k: v for k, v in os.environ.items() if k.startswith("ML_CONNECTOR_") and "_TEST_" not in k}
    for name in callers:
        del os.environ[name]
    try:
        import ml_connector_dagster.definitions  # noqa: F401
    finally:
        os.environ.update(callers)


# --- a home and its settings -----------------------------------------------------------------------------------------


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty ML_CONNECTOR_HOME with a fresh secret key; other ML_CONNECTOR_* variables cleared."""
    for name in list(os.environ):
        if name.startswith("ML_CONNECTOR_"):
            monkeypatch.delenv(name)
    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("ML_CONNECTOR_HOME", str(path))
    monkeypatch.setenv("ML_CONNECTOR_SECRET_KEY", generate_key())
    return path


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings()


@pytest.fixture
def store(settings: Settings) -> Store:
    s = Store(settings.database_url)
    yield s
    s.dispose()


# --- the operational store on each backend ------------------------------------------------------------------------

POSTGRES_URL = os.environ.get("ML_CONNECTOR_TEST_POSTGRES_URL")
if os.environ.get("CI") and not POSTGRES_URL:
    raise RuntimeError(
        "CI must set ML_CONNECTOR_TEST_POSTGRES_URL (see .ci/run): the store is tested on PostgreSQL too"
    )
BACKENDS = ["sqlite"] + (["postgresql"] if POSTGRES_URL else [])


def _reset_postgres(url: str) -> None:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public;")
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, settings: Settings) -> str:
    """The operational store's URL on each backend the run has: SQLite always, PostgreSQL when configured."""
    if request.param == "sqlite":
        return settings.database_url
    _reset_postgres(POSTGRES_URL)
    return POSTGRES_URL


@pytest.fixture
def any_store(store_url: str) -> Store:
    s = Store(store_url)
    yield s
    s.dispose()


# --- the GoCardless side: a receiver and the GoCardless stand-in on loopback, real HTTP only ----------------------


@pytest.fixture
def receiver_settings(home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Two webhook secrets configured at once, as during a rotation."""
    monkeypatch.setenv("ML_CONNECTOR_GOCARDLESS_WEBHOOK_SECRETS", f"{VECTOR_SECRET},{NEW_SECRET}")
    return load_settings()


@pytest.fixture
def receiver_store(receiver_settings: Settings) -> Iterator[Store]:
    store = Store(receiver_settings.database_url)
    yield store
    store.dispose()


@pytest.fixture
def receiver(receiver_settings: Settings, receiver_store: Store) -> Iterator[ServerHandle]:
    handle = serve_in_thread(create_app(receiver_settings.webhooks(), receiver_store))
    yield handle
    handle.stop()


@pytest.fixture
def webhook_url(receiver: ServerHandle) -> str:
    return receiver.url + WEBHOOK_PATH


@pytest.fixture
def stand_in() -> Iterator[GoCardlessStandIn]:
    handle = start_gocardless_stand_in(bundled("small"), token=TOKEN, retry_intervals=FAST_RETRIES)
    yield handle
    handle.stop()


@pytest.fixture
def api_env(stand_in: GoCardlessStandIn, home: Path, monkeypatch: pytest.MonkeyPatch) -> GoCardlessStandIn:
    """Settings pointing the connector at the stand-in."""
    monkeypatch.setenv("ML_CONNECTOR_GOCARDLESS_API_URL", stand_in.url)
    monkeypatch.setenv("ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN", TOKEN)
    return stand_in


# --- the Sage side: the bundled company, the Sage stand-ins on loopback -------------------------------------------


@pytest.fixture(scope="session")
def scenario() -> Scenario:
    return load_scenario(bundled("small"))


@pytest.fixture
def company(tmp_path: Path, scenario: Scenario) -> SageCompany:
    return SageCompany.create(tmp_path / DB_FILE, scenario)


@pytest.fixture
def credentials(scenario: Scenario) -> Credentials:
    c = scenario.company
    return Credentials(c.username, c.password, c.company_code)


@pytest.fixture
def make_request() -> MakeRequest:
    """A cash receipt for 01-ABF; by default 450.00 paying invoice 0100031 in full."""
    return cash_receipt_request


@pytest.fixture
def stand_ins(tmp_path: Path) -> Iterator[SageStandIns]:
    handle = start_sage_stand_ins(bundled("small"), data_dir=tmp_path / "sage", page_size=PAGE_SIZE)
    yield handle
    clear_wsdl_cache()
    handle.stop()


@pytest.fixture
def make_stack(tmp_path: Path) -> Iterator[Callable[..., Stack]]:
    """`make_stack(scenario)`: the whole local world on loopback (Sage and GoCardless stand-ins wired together,
    the receiver), without Dagster; default scenario: the bundled busy_month, where people work in Sage too."""
    stacks: list[Stack] = []

    def make(scenario: Scenario | Path | None = None) -> Stack:
        home = tmp_path / f"stack{len(stacks)}"
        stacks.append(start_stack(scenario or bundled("busy_month"), home, webhook_retry_intervals=FAST_RETRIES))
        return stacks[-1]

    yield make
    clear_wsdl_cache()
    for stack in stacks:
        stack.stop()


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM); the certificate doubles as the CA bundle."""
    return self_signed_certificate(tmp_path)


# --- the session's one `ml-connector dev` ------------------------------------------------------------------------


@pytest.fixture(scope="session")
def dev_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevProcess]:
    """One real `ml-connector dev` (stand-ins, receiver, `dagster dev` with its daemon) on free ports in a temporary
    home, shared by every test that needs one. Started the first time a test asks for it, never when no selected
    test does; at the end of the session every process it started is killed.

    Its users run last, one after the other (see `pytest_collection_modifyitems`), so its daemon and runs do not
    load the machine while the other tests run; the test that stops it (marker `stops_dev_stack`) runs after them.
    Its scenario's steps are shared too: a test that needs a step played reads where the scenario is first."""
    process = DevProcess.start(tmp_path_factory.mktemp("dev"))
    try:
        yield process
    finally:
        process.kill_everything()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The users of `dev_stack` run after every other test, in their own order, and a test that stops it last."""

    def place(item: pytest.Item) -> int:
        if item.get_closest_marker("stops_dev_stack"):
            return 2
        return 1 if "dev_stack" in getattr(item, "fixturenames", ()) else 0

    items.sort(key=place)  # stable: the order within each group is kept
