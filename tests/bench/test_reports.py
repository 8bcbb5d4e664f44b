"""`ml-connector bench ...` prints one JSON object with exactly the documented keys (tiny sizes: this checks
the commands, not the figures; docs/benchmarks.md has those), and a readable report without --json."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from ml_connector_dagster.bench.e2e import REPO_DAGSTER_YAML
from ml_connector_dagster.cli import main

KEYS = {
    "matching": [
        "invoices",
        "payments",
        "seconds",
        "payments_per_second",
        "peak_rss_mib",
        "baseline_seconds",
        "speedup",
        "grouped_baseline_seconds",
        "grouped_speedup",
    ],
    "webhooks": ["deliveries", "events", "seconds", "events_per_second", "p50_ms", "p99_ms", "lost"],
    "e2e": ["payments", "p50_s", "p95_s", "max_s"],
    "poll": ["invoices", "changed", "seconds", "rows_transferred"],
}


def bench(*args: str) -> dict:
    result = CliRunner().invoke(main, ["bench", *args, "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_bench_matching_json_has_its_keys(home: Path) -> None:
    figures = bench(
        "matching", "--invoices", "2000", "--payments", "300", "--baseline-sample", "20", "--grouped-sample", "100"
    )

    assert list(figures) == KEYS["matching"]
    assert (figures["invoices"], figures["payments"]) == (2000, 300)
    assert figures["seconds"] > 0 and figures["speedup"] > 0 and figures["grouped_speedup"] > 0


@pytest.mark.slow
def test_bench_webhooks_json_has_its_keys_and_loses_nothing(home: Path) -> None:
    figures = bench("webhooks", "--deliveries", "40", "--concurrency", "4", "--events-per-delivery", "3")

    assert list(figures) == KEYS["webhooks"]
    assert (figures["deliveries"], figures["events"], figures["lost"]) == (40, 120, 0)
    assert figures["p99_ms"] >= figures["p50_ms"] > 0


def test_bench_poll_transfers_the_changed_rows_only(home: Path) -> None:
    figures = bench("poll", "--invoices", "3000", "--changed", "25")

    assert list(figures) == KEYS["poll"]
    assert figures == {**figures, "invoices": 3000, "changed": 25, "rows_transferred": 25}


def test_bench_poll_without_json_is_a_readable_report(home: Path) -> None:
    result = CliRunner().invoke(main, ["bench", "poll", "--invoices", "200", "--changed", "2"])

    assert result.exit_code == 0, result.output
    assert "rows_transferred  2" in result.output and not result.output.lstrip().startswith("{")


@pytest.mark.slow
def test_bench_e2e_goes_through_the_dagster_daemon_and_reports_latencies(home: Path, tmp_path: Path) -> None:
    """The real `dagster-daemon run` (~30 s), kept short with a 1 s run-queue interval (docs/benchmarks.md has
    the figures with the shipped dagster.yaml)."""
    shipped = yaml.safe_load(REPO_DAGSTER_YAML.read_text())
    assert shipped["run_coordinator"]["class"] == "QueuedRunCoordinator"
    shipped["run_coordinator"].setdefault("config", {})["dequeue_interval_seconds"] = 1
    fast = tmp_path / "dagster.yaml"
    fast.write_text(yaml.safe_dump(shipped))

    figures = bench("e2e", "--payments", "2", "--spacing", "0.5", "--instance-yaml", str(fast), "--timeout", "240")

    assert list(figures) == KEYS["e2e"]
    assert figures["payments"] == 2
    assert 0 < figures["p50_s"] <= figures["p95_s"] <= figures["max_s"]  # quantiles in order; speed is not judged
