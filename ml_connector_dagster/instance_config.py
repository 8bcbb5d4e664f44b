"""The Dagster instance settings (dagster.yaml) for commands that start Dagster processes themselves.

In a checkout the repository's dagster.yaml is used as is (it carries the comments explaining each
value). An installed package has no repository, so it carries the same settings here;
tests/test_instance_config.py checks that both mean the same.
"""

from __future__ import annotations

from pathlib import Path

REPO_DAGSTER_YAML = Path(__file__).resolve().parents[1] / "dagster.yaml"
PACKAGED_DAGSTER_YAML = """\
telemetry:
  enabled: false
run_coordinator:
  module: dagster  # dagster.QueuedRunCoordinator, the public name
  class: QueuedRunCoordinator
  config:
    max_user_code_failure_retries: 5
    user_code_failure_retry_delay: 30
concurrency:
  runs:
    max_concurrent_runs: 4
  pools:
    default_limit: 1
    granularity: op
run_launcher:
  module: ml_connector_dagster.run_launcher
  class: HealthCheckedRunLauncher
run_monitoring:
  enabled: true
  poll_interval_seconds: 30
  free_slots_after_run_end_seconds: 30
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  max_resume_run_attempts: 0
run_retries:
  enabled: true
  max_retries: 2
sensors:
  use_threads: true
  num_workers: 2
"""


def instance_yaml() -> str:
    """The repository's dagster.yaml when running from a checkout, else the packaged equivalent."""
    return REPO_DAGSTER_YAML.read_text(encoding="utf-8") if REPO_DAGSTER_YAML.is_file() else PACKAGED_DAGSTER_YAML
