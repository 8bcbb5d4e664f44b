"""Resources carry their settings as fields: EnvVar (by name) for a set variable, shown on the Resources page;
settings still read by the settings package, so stored secrets and the TOML file apply as everywhere else."""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
import pytest
from click.testing import CliRunner
from dagster._core.remote_representation.external_data import RepositorySnap, ResourceConfigEnvVarSnap

from ml_connector_dagster.cli import main
from ml_connector_dagster.defs.gocardless import GoCardlessResource
from ml_connector_dagster.defs.resources import ConnectorSettings, environment_fields
from ml_connector_dagster.defs.sage100 import SageAgentResource
from ml_connector_dagster.sandbox.gocardless_api import GoCardlessStandIn
from ml_connector_dagster.settings import SettingsError

from support.gocardless import TOKEN

SAGE_PASSWORD = "S4ge-Pa55word-KNOWN"


def product_resources() -> dict[str, dg.ConfigurableResource]:
    """The resources as the definitions build them, from the environment as it is now."""
    settings = ConnectorSettings.from_environment()
    return {
        "connector_settings": settings,
        "gocardless": GoCardlessResource(settings=settings, **environment_fields(GoCardlessResource)),
        "sage_agent": SageAgentResource(settings=settings, **environment_fields(SageAgentResource)),
    }


def resources_page(resources: dict[str, dg.ConfigurableResource]) -> dict[str, dict[str, object]]:
    """What the Resources page shows: each resource's configured values, from the repository's snapshot."""
    snap = RepositorySnap.from_def(dg.Definitions(resources=resources).get_repository_def())
    return {r.name: r.configured_values for r in snap.resources}


def store_secret(name: str, value: str) -> None:
    result = CliRunner().invoke(main, ["secrets", "set", name], input=value + "\n")
    assert result.exit_code == 0, result.output


def test_the_resources_page_names_each_set_variable_and_never_shows_its_value(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_SAGE_AGENT_WSDL", "https://sage-server:8443/agent?wsdl")
    monkeypatch.setenv("ML_CONNECTOR_SAGE_PASSWORD", SAGE_PASSWORD)
    monkeypatch.setenv("ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN", TOKEN)

    page = resources_page(product_resources())

    assert page["sage_agent"]["sage_agent_wsdl"] == ResourceConfigEnvVarSnap(name="ML_CONNECTOR_SAGE_AGENT_WSDL")
    assert page["sage_agent"]["sage_password"] == ResourceConfigEnvVarSnap(name="ML_CONNECTOR_SAGE_PASSWORD")
    assert page["gocardless"]["gocardless_access_token"] == ResourceConfigEnvVarSnap(
        name="ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN"
    )
    assert page["connector_settings"]["home"] == ResourceConfigEnvVarSnap(name="ML_CONNECTOR_HOME")
    assert SAGE_PASSWORD not in repr(page) and TOKEN not in repr(page)


def test_an_unset_variable_leaves_its_field_empty_so_the_definitions_load_with_nothing_configured(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in [n for n in os.environ if n.startswith("ML_CONNECTOR_")]:
        monkeypatch.delenv(name)

    page = resources_page(product_resources())

    assert page["sage_agent"]["sage_password"] == "null"
    assert page["gocardless"]["gocardless_access_token"] == "null"


def test_a_resource_used_with_nothing_configured_fails_with_the_settings_message(home: Path) -> None:
    with dg.build_resources(product_resources()) as resources, pytest.raises(SettingsError) as raised:
        resources.sage_agent.get_client()

    assert raised.value.problems == [
        "ML_CONNECTOR_SAGE_AGENT_WSDL: not set; the URL of the local agent's WSDL, e.g. https://sage-server:8443/agent?wsdl",
        "ML_CONNECTOR_SAGE_USERNAME: not set; the Sage 100 user enabled for web services",
        "ML_CONNECTOR_SAGE_PASSWORD: not set; export it or store it with `ml-connector secrets set sage_password`",
        "ML_CONNECTOR_SAGE_COMPANY_CODE: not set; the 3-character Sage company code, e.g. ABC",
    ]


def test_a_token_stored_with_ml_connector_secrets_reaches_the_api_though_no_variable_is_set(
    home: Path, stand_in: GoCardlessStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_GOCARDLESS_API_URL", stand_in.url)
    store_secret("gocardless_access_token", TOKEN)

    with dg.build_resources(product_resources()) as resources:
        customers = list(resources.gocardless.get_client().list_customers())

    assert customers


def test_the_environment_wins_over_a_stored_secret(
    home: Path, stand_in: GoCardlessStandIn, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_GOCARDLESS_API_URL", stand_in.url)
    store_secret("gocardless_access_token", "a-revoked-token")
    monkeypatch.setenv("ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN", TOKEN)

    with dg.build_resources(product_resources()) as resources:
        customers = list(resources.gocardless.get_client().list_customers())

    assert customers


def test_a_field_given_on_the_resource_is_used_as_its_variable_would_be(
    home: Path, stand_in: GoCardlessStandIn
) -> None:
    resource = GoCardlessResource(
        settings=ConnectorSettings(), gocardless_api_url=stand_in.url, gocardless_access_token=TOKEN
    )

    with dg.build_resources({"gocardless": resource}) as resources:
        customers = list(resources.gocardless.get_client().list_customers())

    assert customers


def test_invalid_settings_are_all_reported_when_the_resource_is_used(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_SAGE_AGENT_WSDL", "not a url")
    monkeypatch.setenv("ML_CONNECTOR_COLLECT_ON", "sometimes")

    with dg.build_resources(product_resources()) as resources, pytest.raises(SettingsError) as raised:
        resources.sage_agent.get_client()

    assert [p.split(":")[0] for p in raised.value.problems] == [
        "ML_CONNECTOR_SAGE_AGENT_WSDL",
        "ML_CONNECTOR_COLLECT_ON",
    ]


def test_no_field_is_marked_secret_for_dagster_so_the_launchpad_never_prefills_masked_text() -> None:
    """Dagster pre-fills a field marked secret as '********', which a launched run would take as the value."""
    snap = RepositorySnap.from_def(dg.Definitions(resources=product_resources()).get_repository_def())

    assert [(r.name, f.name) for r in snap.resources for f in r.config_field_snaps if f.is_secret] == []
