"""The go-live date (gocardless/payments' first daily partition): read on its own when the definitions load."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from ml_connector_dagster.settings import SettingsError, load_settings
from ml_connector_dagster.settings.go_live import go_live_date

TODAY = date(2026, 11, 29)


def test_unset_it_is_the_first_day_of_the_previous_month() -> None:
    assert go_live_date({}, TODAY) == date(2026, 10, 1)
    assert go_live_date({}, date(2027, 1, 15)) == date(2026, 12, 1)


def test_the_variable_and_the_toml_file_set_it_and_the_variable_wins(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text('go_live_date = "2026-06-01"\n')

    assert go_live_date({"ML_CONNECTOR_CONFIG": str(config)}, TODAY) == date(2026, 6, 1)
    both = {"ML_CONNECTOR_CONFIG": str(config), "ML_CONNECTOR_GO_LIVE_DATE": "2026-07-01"}
    assert go_live_date(both, TODAY) == date(2026, 7, 1)


@pytest.mark.parametrize("value", ["2026-13-01", "01/11/2026", "2026-1-1", "yesterday"])
def test_a_value_that_is_not_a_date_names_the_variable_and_the_form(value: str) -> None:
    with pytest.raises(SettingsError) as caught:
        go_live_date({"ML_CONNECTOR_GO_LIVE_DATE": value}, TODAY)

    assert caught.value.problems == [
        f"ML_CONNECTOR_GO_LIVE_DATE: {value!r} is not a date written YYYY-MM-DD, e.g. 2026-11-01"
    ]


def test_a_date_in_the_future_is_refused() -> None:
    with pytest.raises(SettingsError, match="ML_CONNECTOR_GO_LIVE_DATE: 2026-12-01 is in the future"):
        go_live_date({"ML_CONNECTOR_GO_LIVE_DATE": "2026-12-01"}, TODAY)


def test_config_check_validates_it_with_the_other_settings(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ML_CONNECTOR_GO_LIVE_DATE", "2026-02-30")

    with pytest.raises(SettingsError, match="ML_CONNECTOR_GO_LIVE_DATE: '2026-02-30' is not a date"):
        load_settings()
