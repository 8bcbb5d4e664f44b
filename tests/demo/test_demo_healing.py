"""`ml-connector demo` on the bundled healing_month: the step lines show held decisions healing as Sage and
GoCardless change, and the month ends with every payment posted (no operator acts in the demo)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from ml_connector_dagster.cli import main
from ml_connector_dagster.sandbox.scenario import bundled


@pytest.mark.slow
def test_the_healing_month_demo_shows_held_payments_resolved_automatically_step_by_step(home: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--json", "--scenario", str(bundled("healing_month"))])

    assert result.exit_code == 0, result.output
    steps = {line.split(":")[0].strip(): line for line in result.stderr.splitlines() if line.strip().startswith("step")}
    assert "held 3, pending 1, posted 1" in steps["step 3/6"]
    assert "resolved automatically" not in steps["step 3/6"]
    assert steps["step 4/6"].endswith("; 1 review items resolved automatically")  # CAPITAL's invoice entered
    assert steps["step 5/6"].endswith("; 1 review items resolved automatically")  # BRESLIN's email corrected
    assert steps["step 6/6"].endswith("; 1 review items resolved automatically")  # GRANT's invoice entered
    payments = json.loads(result.stdout)["payments"]
    assert {p["id"]: p["status"] for p in payments} == {f"PM000{n}": "posted" for n in range(1, 7)}
    assert next(p for p in payments if p["id"] == "PM0004")["original"] == "100.00 USD"
