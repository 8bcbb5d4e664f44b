"""The instance settings a crashed run worker depends on: run monitoring on, slots freed, a launcher that can
check workers, retries; the same whether they come from the repository or from the installed package."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import yaml

from ml_connector_dagster.instance_config import PACKAGED_DAGSTER_YAML, REPO_DAGSTER_YAML, instance_yaml


def load_instance(tmp_path: Path, text: str) -> dg.DagsterInstance:
    (tmp_path / "dagster.yaml").write_text(text)
    return dg.DagsterInstance.from_config(str(tmp_path))


def test_the_packaged_instance_settings_mean_the_same_as_the_repositorys_dagster_yaml() -> None:
    assert yaml.safe_load(PACKAGED_DAGSTER_YAML) == yaml.safe_load(REPO_DAGSTER_YAML.read_text())


def test_a_checkout_uses_the_repositorys_dagster_yaml_with_its_comments() -> None:
    assert instance_yaml() == REPO_DAGSTER_YAML.read_text()


def test_the_instance_monitors_runs_frees_their_slots_and_retries_them(tmp_path: Path) -> None:
    with load_instance(tmp_path, instance_yaml()) as instance:
        daemons = instance.get_required_daemon_types()
        monitoring = instance.run_monitoring_settings

        assert {"MONITORING", "EVENT_LOG_CONSUMER", "QUEUED_RUN_COORDINATOR"} <= set(daemons)
        assert instance.run_launcher.supports_check_run_worker_health
        assert monitoring["free_slots_after_run_end_seconds"] > 0
        assert instance.run_retries_enabled and instance.run_retries_max_retries > 0
