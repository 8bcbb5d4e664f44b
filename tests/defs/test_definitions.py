"""The Dagster code location loads and validates without any setting present, with everything it should hold."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# Imported in a fresh interpreter: in this one, other tests may have imported the definitions with settings set.
DESCRIBE = """\
import json, os
assert not [name for name in os.environ if name.startswith("ML_CONNECTOR_")]
from ml_connector_dagster.definitions import defs
repo = defs.get_repository_def()
print(json.dumps({
    "assets": sorted(key.to_user_string() for key in repo.asset_graph.get_all_asset_keys()),
    "checks": sorted(key.name for key in repo.asset_graph.asset_check_keys),
    "jobs": sorted(job.name for job in repo.get_all_jobs() if not job.name.startswith("__")),
    "sensors": sorted(sensor.name for sensor in repo.sensor_defs),
    "schedules": sorted(schedule.name for schedule in repo.schedule_defs),
    "resources": sorted(repo.get_top_level_resources()),
}))
"""


def without_settings(dagster_home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_CONNECTOR_")}
    env["DAGSTER_HOME"] = str(dagster_home)
    (dagster_home / "dagster.yaml").write_text((ROOT / "dagster.yaml").read_text())
    return env


@pytest.mark.slow
def test_dagster_definitions_validate_passes(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", str(ROOT / "workspace.yaml")],
        cwd=ROOT,
        env=without_settings(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "Validation successful" in result.stdout + result.stderr


@pytest.mark.slow
def test_definitions_import_without_settings_with_every_asset_check_job_sensor_and_schedule(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", DESCRIBE],
        cwd=ROOT,
        env=without_settings(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert found == {
        "assets": [
            "gocardless/api",
            "gocardless/customers",
            "gocardless/payments",
            "gocardless/payouts",
            "gocardless/refunds",
            "reconciliation/cash_receipts",
            "reconciliation/customer_map",
            "reconciliation/payment_matches",
            "reconciliation/payouts",
            "reconciliation/review_queue",
            "sage100/ar",
            "sage100/ar_invoices",
            "sage100/customers",
        ],
        "checks": [
            "agent_answers",
            "allocations_add_up",
            "ar_invoices_unique_keys",
            "customer_ids_unique",
            "customers_unique_keys",
            "no_customer_mapped_twice",
            "no_invoice_over_applied",
            "no_payment_posted_twice",
            "non_negative_balances",
            "payment_amounts_positive",
            "payment_ids_unique",
            "payments_today_within_balance",
            "payout_items_add_up",
            "payout_items_present",
            "receipts_match_ledger",
            "refund_amounts_positive",
            "refunds_link_known_payments",
            "review_queue_matches_ledger",
            "webhooks_arriving",
        ],
        "jobs": [
            "gocardless_inbox_job",
            "post_cash_receipts_job",
            "review_apply",
            "review_dismiss",
            "review_retry",
            "review_reverse",
            "sage100_poll_job",
        ],
        "sensors": [
            "gocardless_events_sweep",
            "gocardless_inbox_sensor",
            "post_cash_receipts_retry",
            "reconciliation_automation",  # every automation condition, reconciliation/review_queue's too
            "run_queue_watchdog",
            "sage100_poll",
            "webhook_freshness_sensor",
        ],
        "schedules": [],
        "resources": ["connector_settings", "gocardless", "sage_agent", "sage_ebusiness", "store", "warehouse"],
    }


def test_a_wrong_go_live_date_stops_the_load_with_a_message_naming_the_variable(tmp_path: Path) -> None:
    env = {**without_settings(tmp_path), "ML_CONNECTOR_GO_LIVE_DATE": "2026-13-01"}

    result = subprocess.run(
        [sys.executable, "-c", "import ml_connector_dagster.definitions"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode != 0
    assert "ML_CONNECTOR_GO_LIVE_DATE: '2026-13-01' is not a date written YYYY-MM-DD" in result.stderr
