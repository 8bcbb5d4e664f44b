"""`ml-connector demo` on the bundled healing_month: the step lines show held decisions healing as Sage and
GoCardless change, and the month ends with every payment posted (no operator acts in the demo). It is also
the test of the demo's text output (the JSON output is tested on the bundled sample)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from ml_connector_dagster.cli import main
from ml_connector_dagster.sandbox.scenario import bundled


@pytest.mark.slow
def test_the_healing_month_demo_shows_held_payments_resolved_automatically_step_by_step(home: Path) -> None:
    """Also the demo's text output: what people did in Sage per step, and the summary by status and reason."""
    result = CliRunner().invoke(main, ["demo", "--scenario", str(bundled("healing_month"))])

    assert result.exit_code == 0, result.output
    steps = {line.split(":")[0].strip(): line for line in result.stderr.splitlines() if line.strip().startswith("step")}
    assert "held 3, pending 1, posted 1" in steps["step 3/6"]
    assert "resolved automatically" not in steps["step 3/6"]
    assert "step 4/6: 1 Sage changes" in steps["step 4/6"]
    assert steps["step 4/6"].endswith("; 1 review items resolved automatically")  # CAPITAL's invoice entered
    assert steps["step 5/6"].endswith("; 1 review items resolved automatically")  # BRESLIN's email corrected
    assert steps["step 6/6"].endswith("; 1 review items resolved automatically")  # GRANT's invoice entered
    assert "held, by reason" in result.stdout
    posted = next(line for line in result.stdout.splitlines() if line.startswith("posted "))
    assert posted.split() == ["posted", "6", "2429.00"]
    assert "PM0004    posted" in result.stdout and "79.00  0100060:79.00" in result.stdout
