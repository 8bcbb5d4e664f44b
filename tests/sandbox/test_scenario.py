"""Scenario folders load whole or fail with `file:line: column: what is wrong` for every problem."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from ml_connector_dagster.sandbox.scenario import Action, ScenarioError, bundled, load_scenario


def copy_of(tmp_path: Path, name: str = "small") -> Path:
    target = tmp_path / name
    shutil.copytree(bundled(name), target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    path.write_text(path.read_text().replace(old, new, 1))


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(ScenarioError) as err:
        load_scenario(folder)
    return err.value.problems


def test_the_bundled_sample_loads_with_the_size_the_readme_promises() -> None:
    scenario = load_scenario(bundled())

    assert (len(scenario.sage_customers), len(scenario.sage_invoices), len(scenario.gocardless_payments)) == (
        20,
        60,
        40,
    )
    assert scenario.company.fx_rates == {"EUR": Decimal("0.8600")}


def test_steps_apply_the_kth_action_of_every_payment_then_the_refunds() -> None:
    steps = load_scenario(bundled("small")).steps()

    assert steps[0][0] == Action("payments", "PM0001", "created")
    assert all(a.resource == "payments" for step in steps[:5] for a in step)
    assert steps[-1] == [Action("refunds", "RF0001", "paid")]


def test_a_bad_amount_names_file_line_and_column(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    edit(folder / "sage_invoices.csv", "1200.00", "1200.005")

    assert problems_of(folder) == [
        "sage_invoices.csv:3: Balance: '1200.005' is not a non-negative amount with at most 2 decimals, e.g. 1200.00"
    ]


def test_every_problem_is_reported_not_just_the_first(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    edit(folder / "gocardless_payments.csv", "120000", "12.5")
    edit(folder / "gocardless_payments.csv", "created submitted confirmed paid_out", "created approved")
    edit(folder / "company.json", '"ABC"', '"ABCD"')

    problems = problems_of(folder)

    assert any(p.startswith("gocardless_payments.csv:2: amount:") for p in problems)
    assert any(p.startswith("gocardless_payments.csv:2: lifecycle: unknown action(s) approved") for p in problems)
    assert any(p.startswith("company.json:2: company_code:") for p in problems)


def test_a_reference_to_a_missing_row_is_reported(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    edit(folder / "gocardless_payments.csv", "PM0001,MD0001", "PM0001,MD9999")

    assert "gocardless_payments.csv:2: mandate: 'MD9999': no such mandate in gocardless_mandates.csv" in problems_of(
        folder
    )


def test_invalid_json_metadata_is_reported_with_an_example(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    edit(folder / "gocardless_customers.csv", "{}", "{not json}")

    assert any("metadata: not valid JSON" in p and "sage_customer" in p for p in problems_of(folder))


def test_a_missing_file_and_a_missing_column_are_reported(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    (folder / "gocardless_mandates.csv").unlink()
    edit(folder / "sage_customers.csv", "EmailAddress", "Email")

    problems = problems_of(folder)

    assert "gocardless_mandates.csv:1: file: missing; expected a CSV with columns id, customer" in problems
    assert "sage_customers.csv:1: header: missing column(s) EmailAddress" in problems


def test_a_repeated_key_is_reported(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    with (folder / "sage_customers.csv").open("a") as fh:
        fh.write("01,ABF,Duplicate,dup@example.com\n")

    assert any("key: 01-ABF repeats line 2" in p for p in problems_of(folder))


def test_a_folder_that_does_not_exist_says_so(tmp_path: Path) -> None:
    assert "not a folder" in problems_of(tmp_path / "nope")[0]


def test_the_refunds_file_is_optional(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    (folder / "gocardless_refunds.csv").unlink()

    assert load_scenario(folder).gocardless_refunds == ()
