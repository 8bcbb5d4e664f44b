"""A `dg` project: `dg check defs` passes with nothing configured, and the code location is the defs folder,
each module's own `Definitions` taken once."""

from __future__ import annotations

import importlib
import os
import pkgutil
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest

from ml_connector_dagster import defs as defs_package
from ml_connector_dagster.definitions import defs

ROOT = Path(__file__).resolve().parents[2]


def defs_folder_modules() -> list[dg.Definitions]:
    """The `defs` object of every module in the defs folder, found by listing the folder."""
    names = [m.name for m in pkgutil.iter_modules(defs_package.__path__, defs_package.__name__ + ".")]
    return [importlib.import_module(name).defs for name in names]


def keys_of(asset: object) -> set[dg.AssetKey]:
    return set(asset.keys) if isinstance(asset, dg.AssetsDefinition) else {asset.key}  # type: ignore[attr-defined]


@pytest.mark.slow
def test_dg_check_defs_passes_with_nothing_configured(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_CONNECTOR_")}
    env |= {"DAGSTER_HOME": str(tmp_path), "VIRTUAL_ENV": str(Path(sys.executable).parent.parent)}

    result = subprocess.run(
        [str(Path(sys.executable).parent / "dg"), "check", "defs", "--use-active-venv"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )

    assert result.returncode == 0, result.stdout + result.stderr
    assert "All definitions loaded successfully" in result.stdout + result.stderr


def test_the_code_location_holds_every_asset_job_sensor_schedule_and_resource_of_every_defs_module() -> None:
    repo = defs.get_repository_def()
    parts = defs_folder_modules()

    assets = {key for part in parts for asset in part.assets or () for key in keys_of(asset)}
    jobs = {job.name for part in parts for job in part.jobs or ()}
    sensors = {sensor.name for part in parts for sensor in part.sensors or ()}
    schedules = {schedule.name for part in parts for schedule in part.schedules or ()}
    resources = {name for part in parts for name in part.resources or {}}

    assert assets <= repo.asset_graph.get_all_asset_keys()
    assert jobs <= {job.name for job in repo.get_all_jobs()}
    # Dagster adds its automation condition sensor when assets have automation conditions and none is defined.
    assert {sensor.name for sensor in repo.sensor_defs} - sensors <= {"default_automation_condition_sensor"}
    assert sensors <= {sensor.name for sensor in repo.sensor_defs}
    assert schedules == {schedule.name for schedule in repo.schedule_defs}
    assert resources == set(repo.get_top_level_resources())
