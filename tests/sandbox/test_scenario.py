"""Scenario folders load whole or fail with `file:line: column: what is wrong` for every problem."""

from __future__ import annotations

import shutil
from decimal import Decimal
from pathlib import Path

import pytest

from ml_connector_dagster.sandbox.scenario import Action, SageChange, ScenarioError, bundled, load_scenario


def copy_of(tmp_path: Path, name: str = "small") -> Path:
    target = tmp_path / name
    shutil.copytree(bundled(name), target)
    return target


def edit(path: Path, old: str, new: str) -> None:
    assert old in path.read_text(), f"{old!r} is not in {path.name}"
    path.write_text(path.read_text().replace(old, new, 1))


CHANGES_HEADER = (
    "step,action,ARDivisionNo,CustomerNo,InvoiceNo,InvoiceType,InvoiceDate,InvoiceDueDate,Amount,CustomerName,"
    "EmailAddress,CheckNo\n"
)


def with_changes(folder: Path, *rows: str, header: str = CHANGES_HEADER) -> Path:
    """The folder with a sage_changes.csv of these rows (line 2 onwards)."""
    (folder / "sage_changes.csv").write_text(header + "".join(f"{row}\n" for row in rows))
    return folder


def set_column(path: Path, column: str, values: dict[str, str]) -> None:
    """Add a column to a CSV; `values` by the row's first cell (empty for the rest)."""
    lines = path.read_text().splitlines()
    out = [f"{lines[0]},{column}"] + [f"{line},{values.get(line.split(',')[0], '')}" for line in lines[1:]]
    path.write_text("\n".join(out) + "\n")


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


def test_a_payment_starts_at_its_start_step_and_acts_once_a_step_from_there(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    set_column(folder / "gocardless_payments.csv", "start_step", {"PM0002": "3"})

    steps = load_scenario(folder).steps()

    assert [k + 1 for k, step in enumerate(steps) for a in step if a.id == "PM0002"] == [3, 4, 5, 6]
    assert Action("payments", "PM0002", "created") in steps[2]


def test_refunds_start_by_default_the_step_after_every_payment_lifecycle_ended(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    set_column(folder / "gocardless_payments.csv", "start_step", {"PM0002": "3"})  # now ends at step 6

    steps = load_scenario(folder).steps()

    assert steps[6] == [Action("refunds", "RF0001", "created")]


def test_a_refund_with_a_start_step_shares_the_step_with_payments_acting_first(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    set_column(folder / "gocardless_refunds.csv", "start_step", {"RF0001": "4"})  # PM0005 is confirmed at step 3

    steps = load_scenario(folder).steps()

    assert steps[3][-1] == Action("refunds", "RF0001", "created")
    assert all(a.resource == "payments" for a in steps[3][:-1])


def test_a_refund_starting_before_its_payment_is_collected_is_refused(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    set_column(folder / "gocardless_refunds.csv", "start_step", {"RF0001": "2"})

    assert problems_of(folder) == [
        "gocardless_refunds.csv:2: start_step: the refund starts at step 2, before its payment PM0005 is collected "
        "at step 3"
    ]


def test_a_refund_of_a_payment_that_is_never_collected_is_refused(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    edit(folder / "gocardless_refunds.csv", "PM0005", "PM0014")  # created submitted: never collected

    assert problems_of(folder) == [
        "gocardless_refunds.csv:2: payment: PM0014 is never collected (its lifecycle has no confirmed or "
        "paid_out), so it cannot be refunded"
    ]


@pytest.mark.parametrize("value", ["0", "x", "1.5", "\u0662"])
def test_a_start_step_is_a_whole_number_from_one(tmp_path: Path, value: str) -> None:
    folder = copy_of(tmp_path)
    set_column(folder / "gocardless_payments.csv", "start_step", {"PM0003": value})

    assert problems_of(folder) == [
        f"gocardless_payments.csv:4: start_step: {value!r} is not a step number (a whole number from 1)"
    ]


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


@pytest.mark.parametrize(
    "file, old, new, problem",
    [
        (
            "gocardless_payments.csv",
            "created submitted failed\n",
            "created submitted resubmission_requested\n",
            "gocardless_payments.csv:14: lifecycle: resubmission_requested must come right after failed",
        ),
        (
            "gocardless_refunds.csv",
            "created paid",
            "created paid funds_returned",
            "gocardless_refunds.csv:2: lifecycle: funds_returned must come after failed",
        ),
    ],
)
def test_a_retry_follows_a_failure_and_funds_return_only_after_the_refund_failed(
    tmp_path: Path, file: str, old: str, new: str, problem: str
) -> None:
    folder = copy_of(tmp_path)
    edit(folder / file, old, new)

    assert problems_of(folder) == [problem]


def test_a_retried_payment_and_every_refund_status_are_scenario_actions(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    edit(
        folder / "gocardless_payments.csv",
        "created submitted failed\n",
        "created submitted failed resubmission_requested submitted confirmed\n",
    )
    edit(
        folder / "gocardless_refunds.csv", "created paid", "created submitted paid refund_settled failed funds_returned"
    )

    scenario = load_scenario(folder)

    payment = next(p for p in scenario.gocardless_payments if p.id == "PM0013")
    assert payment.lifecycle[3:] == ("resubmission_requested", "submitted", "confirmed")
    assert scenario.gocardless_refunds[0].lifecycle[-1] == "funds_returned"


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


@pytest.mark.parametrize("value", ["1e3", "\u0661\u0662.00", "+5.00", "-5.00", "12O0.00", " ", "Infinity"])
def test_a_balance_is_written_with_the_digits_0_to_9_and_nothing_else(tmp_path: Path, value: str) -> None:
    folder = copy_of(tmp_path)
    edit(folder / "sage_invoices.csv", ",1200.00", f",{value}" if value.strip() else ",x")

    [problem] = problems_of(folder)

    assert problem.startswith("sage_invoices.csv:3: Balance: ") and "at most 2 decimals" in problem


def test_payments_today_is_read_from_its_optional_column_and_defaults_to_zero(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    set_column(folder / "sage_invoices.csv", "PaymentsToday", {"01": ""})
    edit(folder / "sage_invoices.csv", "1200.00,", "1200.00,200.00")

    invoices = {i.InvoiceNo: i.PaymentsToday for i in load_scenario(folder).sage_invoices}

    assert (invoices["0100030"], invoices["0100031"]) == (Decimal("200.00"), Decimal("0.00"))


def test_payments_today_beyond_the_balance_is_refused(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    set_column(folder / "sage_invoices.csv", "PaymentsToday", {})
    edit(folder / "sage_invoices.csv", "1200.00,", "1200.00,1200.01")

    assert problems_of(folder) == [
        "sage_invoices.csv:3: PaymentsToday: 1200.01 is more than the invoice's Balance 1200.00"
    ]


def test_customer_status_is_a_or_i(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    set_column(folder / "sage_customers.csv", "CustomerStatus", {"01": "X"})

    assert problems_of(folder)[0] == "sage_customers.csv:2: CustomerStatus: 'X' is not A (active) or I (inactive)"


# --- what the format does not know -------------------------------------------------------------------------------


def test_a_file_the_format_does_not_know_is_an_error(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    (folder / "sage_change.csv").write_text("step,action\n")

    assert problems_of(folder) == [
        "sage_change.csv:1: file: not a scenario file; a scenario folder holds company.json, sage_customers.csv, "
        "sage_invoices.csv, gocardless_customers.csv, gocardless_mandates.csv, gocardless_payments.csv, "
        "gocardless_refunds.csv, sage_changes.csv"
    ]


def test_a_readme_and_hidden_files_may_sit_beside_the_scenario(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    (folder / "README.md").write_text("A month with late payers.\n")
    (folder / ".DS_Store").write_bytes(b"\0")

    assert load_scenario(folder).company.company_code == "ABC"


def test_a_column_the_format_does_not_know_is_an_error(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    set_column(folder / "sage_invoices.csv", "PaymentToday", {})

    assert problems_of(folder) == [
        "sage_invoices.csv:1: header: unknown column(s) PaymentToday; the columns are ARDivisionNo, CustomerNo, "
        "InvoiceNo, InvoiceType, InvoiceDate, InvoiceDueDate, Balance, PaymentsToday"
    ]


def test_a_company_key_the_format_does_not_know_is_an_error(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    edit(folder / "company.json", '"today"', '"currency": "GBP",\n  "today"')

    assert problems_of(folder) == [
        "company.json:9: currency: not a company.json key; the keys are company_code, company_name, home_currency, "
        "bank_code, logon, fx_rates, settings, today"
    ]


def test_a_setting_the_format_does_not_know_is_an_error(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    edit(folder / "company.json", '"on_tie": "hold"', '"on_ties": "hold"')

    [problem] = problems_of(folder)

    assert problem.startswith("company.json:8: settings: on_ties is not a setting; the settings are collect_on,")


@pytest.mark.parametrize("key", ["sync_customer_metadata", "auto_reversal", "require_deposit_amount", "batch_entry"])
def test_a_boolean_setting_written_as_a_string_is_an_error_naming_the_key(tmp_path: Path, key: str) -> None:
    folder = copy_of(tmp_path)
    edit(folder / "company.json", '"sync_customer_metadata": true', f'"sync_customer_metadata": true, "{key}": "false"')

    assert problems_of(folder) == [
        f'company.json:8: settings: {key} "false" is not true or false (JSON booleans, unquoted)'
    ]


def test_boolean_settings_are_read_as_booleans(tmp_path: Path) -> None:
    folder = copy_of(tmp_path)
    edit(folder / "company.json", '"on_tie": "hold"', '"on_tie": "hold", "batch_entry": true')

    company = load_scenario(folder).company

    assert (company.option("batch_entry"), company.option("require_deposit_amount")) == (True, False)


@pytest.mark.parametrize("rate", ['"1e-1"', '"\u0660.86"', '"-0.86"', "0.86"])
def test_an_fx_rate_is_a_positive_decimal_string_of_ascii_digits(tmp_path: Path, rate: str) -> None:
    folder = copy_of(tmp_path)
    edit(folder / "company.json", '"0.8600"', rate)

    [problem] = problems_of(folder)

    assert problem.startswith("company.json:7: fx_rates: EUR: ") and "must be a positive decimal string" in problem


# --- sage_changes.csv ----------------------------------------------------------------------------------------------


def test_sage_changes_are_read_with_only_the_columns_each_action_needs(tmp_path: Path) -> None:
    folder = with_changes(
        copy_of(tmp_path),
        "2,add_customer,01,NEWCO,,,,,,New Company Ltd,ap@newco.example,",
        "2,add_invoice,01,NEWCO,0100099,IN,2026-11-02,2026-12-02,300.00,,,",
        "3,key_receipt,01,NEWCO,0100099,IN,,,100.00,,,5521",
        "3,update_customer_email,01,ABF,,,,,,,pay@abf.example,",
        "4,post_journal,,,,,,,,,,",
    )

    changes = load_scenario(folder).sage_changes

    assert [c.describe() for c in changes] == [
        "add_customer 01-NEWCO",
        "add_invoice 01-NEWCO 0100099 IN 300.00",
        "key_receipt 01-NEWCO 0100099 IN 100.00 check 5521",
        "update_customer_email 01-ABF pay@abf.example",
        "post_journal",
    ]
    assert changes[2] == SageChange(
        3, "key_receipt", "01", "NEWCO", "0100099", "IN", Amount=Decimal("100.00"), CheckNo="5521"
    )


def test_a_sage_change_happens_at_its_step_and_the_play_lasts_until_the_last_one(tmp_path: Path) -> None:
    folder = with_changes(copy_of(tmp_path), "9,post_journal,,,,,,,,,,", "2,post_journal,,,,,,,,,,")

    scenario = load_scenario(folder)

    assert (scenario.total_steps, len(scenario.steps()), scenario.steps()[8]) == (9, 9, [])
    assert [c.line for c in scenario.sage_changes_at(9)] == [2] and scenario.sage_changes_at(3) == ()


def test_a_changes_file_may_hold_only_the_columns_its_actions_use(tmp_path: Path) -> None:
    folder = with_changes(copy_of(tmp_path), "4,post_journal", header="step,action\n")

    assert [c.action for c in load_scenario(folder).sage_changes] == ["post_journal"]


@pytest.mark.parametrize(
    "row, problem",
    [
        ("x,post_journal,,,,,,,,,,", "step: 'x' is not a step number (a whole number from 1)"),
        (
            "2,delete_invoice,,,,,,,,,,",
            "action: 'delete_invoice' is not a Sage change; one of add_customer, "
            "update_customer_email, add_invoice, key_receipt, post_journal",
        ),
        ("2,post_journal,01,,,,,,,,,", "ARDivisionNo: '01': post_journal does not use this column; leave it empty"),
        ("2,key_receipt,01,ABF,0100031,IN,,,100.00,,,", "CheckNo: key_receipt needs this column"),
        (
            "2,key_receipt,01,ABF,0100031,IN,,,0.00,,,77",
            "Amount: '0.00' is not a positive amount with at most 2 decimals, e.g. 1200.00",
        ),
        (
            "2,add_invoice,01,ABF,0100099,XX,2026-11-02,2026-12-02,1.00,,,",
            "InvoiceType: 'XX' is not a Sage invoice type (IN CM DM FC PP PY BF BC)",
        ),
        (
            "2,add_invoice,01,ABF,0100099,IN,2026-11-31,2026-12-02,1.00,,,",
            "InvoiceDate: '2026-11-31' is not a YYYY-MM-DD date",
        ),
        ("2,update_customer_email,01,ABF,,,,,,,,", "EmailAddress: update_customer_email needs this column"),
        (
            "2,update_customer_email,01,NOPE,,,,,,,x@y.example,",
            "CustomerNo: 01-NOPE: no such customer in sage_customers.csv or added by an earlier change",
        ),
        ("2,add_customer,01,ABF,,,,,,Again,,", "CustomerNo: 01-ABF already exists (sage_customers.csv)"),
        (
            "2,add_invoice,01,ABF,0100030,IN,2026-11-02,2026-12-02,1.00,,,",
            "InvoiceNo: 01/ABF/0100030/IN already exists",
        ),
        (
            "2,key_receipt,01,ABF,0100099,IN,,,1.00,,,77",
            "InvoiceNo: 01/ABF/0100099/IN: no such invoice in sage_invoices.csv or added by an earlier change",
        ),
        (
            "2,key_receipt,01,ABF,0100031,IN,,,450.01,,,77",
            "Amount: 450.01 is more than the 450.00 still open on "
            "invoice 0100031 by then (Balance less receipts keyed before); Sage would refuse it",
        ),
    ],
)
def test_a_bad_sage_change_names_line_column_and_what_is_wrong(tmp_path: Path, row: str, problem: str) -> None:
    folder = with_changes(copy_of(tmp_path), row)

    assert problems_of(folder) == [f"sage_changes.csv:2: {problem}"]


def test_receipts_people_key_add_up_against_the_invoice_across_journal_updates(tmp_path: Path) -> None:
    folder = with_changes(
        copy_of(tmp_path),
        "2,key_receipt,01,ABF,0100031,IN,,,300.00,,,77",
        "3,post_journal,,,,,,,,,,",
        "4,key_receipt,01,ABF,0100031,IN,,,200.00,,,78",
    )

    assert problems_of(folder) == [
        "sage_changes.csv:4: Amount: 200.00 is more than the 150.00 still open on invoice 0100031 by then "
        "(Balance less receipts keyed before); Sage would refuse it"
    ]


def test_a_change_may_use_a_customer_added_earlier_but_not_later(tmp_path: Path) -> None:
    folder = with_changes(
        copy_of(tmp_path),
        "3,add_invoice,01,NEWCO,0100099,IN,2026-11-02,2026-12-02,300.00,,,",
        "3,add_customer,01,NEWCO,,,,,,New Company Ltd,,",
        "4,add_invoice,01,NEWCO,0100098,IN,2026-11-02,2026-12-02,300.00,,,",
    )

    assert problems_of(folder) == [
        "sage_changes.csv:2: CustomerNo: 01-NEWCO: no such customer in sage_customers.csv or added by an earlier change"
    ]
