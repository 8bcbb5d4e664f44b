"""`ml-connector agent doctor`: the check a customer runs on the Sage server before going live.

Through the command (click's CliRunner), against the recording fake of Sage's COM objects handed in as the
COM layer (`obj`), answering the way public code shows (nEOF a property; nGetValue by reference as a tuple or
through a VARIANT), and against the simulated company (`--backend simulated`).
"""

from __future__ import annotations

import sqlite3
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from ml_connector_dagster.agent.boi_names import USES, BOINames
from ml_connector_dagster.cli import main

from support.boi_fake import DEPOSITS, HOME, LINES, OPTIONS, RECEIPTS, FakeSage, FakeVariant

PASSWORD = "demo-password"
WRITES = ("nWrite", "nDelete", "nGetNextDepositNo", "nSelectNewBatch")


@pytest.fixture
def sage_logon(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The logon the fake's SY_Session accepts, as the settings hold it."""
    monkeypatch.setenv("ML_CONNECTOR_SAGE_USERNAME", "demo")
    monkeypatch.setenv("ML_CONNECTOR_SAGE_PASSWORD", PASSWORD)
    monkeypatch.setenv("ML_CONNECTOR_SAGE_COMPANY_CODE", "ABC")
    monkeypatch.setenv("ML_CONNECTOR_SAGE_BANK_CODE", "A")


def doctor(sage: FakeSage, *args: str) -> Result:
    """`ml-connector agent doctor --backend boi` with the fake as Sage's COM objects."""
    return CliRunner().invoke(
        main,
        ["agent", "doctor", "--backend", "boi", "--mas90-home", HOME, *args],
        obj={"dispatch": sage.dispatch, "variant": FakeVariant},
    )


def lines(result: Result, status: str) -> list[str]:
    return [line for line in result.output.splitlines() if line.startswith(status)]


def every_name(names: BOINames) -> set[str]:
    """The object and field names the backend uses (every one the doctor must list)."""
    return (
        {names.name(u.key) for u in USES}
        | {f"{names.name(u.key)} {names.name(f.key)}" for u in USES for f in u.fields}
        | {f"{names.name(u.key)} oLines {names.name(f.key)}" for u in USES for f in u.lines}
    )


@pytest.mark.parametrize("get_value_form", ["tuple", "variant"])
@pytest.mark.parametrize("eof", ["property", "method"])
def test_every_name_and_field_passes_on_a_sage_that_answers_as_public_code_shows(
    sage_logon: None, get_value_form: str, eof: str
) -> None:
    sage = FakeSage(get_value_form=get_value_form, eof=eof)

    result = doctor(sage)

    assert result.exit_code == 0, result.output
    passed = "\n".join(lines(result, "PASS"))
    assert all(name in passed for name in every_name(BOINames()))
    assert not lines(result, "FAIL") and "nEOF()" not in sage.methods()
    nget = next(line for line in lines(result, "PASS") if "nGetValue by reference" in line)
    assert ("tuple (ret, value): works" in nget) == (get_value_form == "tuple")
    assert "by-reference VARIANT: works" in nget


def test_a_field_this_sage_names_otherwise_is_named_with_its_key_and_the_doctor_exits_non_zero(
    sage_logon: None, tmp_path: Path
) -> None:
    sage = FakeSage()
    sage.columns[LINES] = {"InvoiceNo$", "InvoiceTypeCode$", "AmountPosted"}  # not InvoiceType$ here

    result = doctor(sage)
    names = tmp_path / "names.toml"
    names.write_text('line_invoice_type = "InvoiceTypeCode$"\n')
    fixed = doctor(sage, "--boi-names", str(names))

    assert result.exit_code == 1
    # the receipt's lines and the read-only view of lines in entry are one table: both fail, on one key
    failure, in_entry = lines(result, "FAIL")
    assert "AR_CashReceipts_bus oLines InvoiceType$" in failure and "Column InvoiceType$ not found" in failure
    assert "AR_CashReceiptsDetail_svc InvoiceType$" in in_entry
    for each in (failure, in_entry):
        assert 'write line_invoice_type = "<Sage\'s name>" in a --boi-names file' in each
    assert fixed.exit_code == 0 and "oLines InvoiceTypeCode$" in fixed.output


def test_the_doctor_writes_nothing_and_takes_no_number(sage_logon: None) -> None:
    sage = FakeSage()
    sage.set_options(require_deposit_amount=True, batch_entry=True)

    result = doctor(sage)

    assert result.exit_code == 0, result.output
    assert not [m for m in sage.methods() if m in WRITES]
    assert (sage.tables.get(DEPOSITS, []), sage.tables.get(RECEIPTS, []), sage.next_deposit_no) == ([], [], 1)
    assert sage.methods(RECEIPTS)[-2:] == ["nClear", "DropObject"] and sage.methods()[-2:] == ["nCleanup", "DropObject"]


def test_the_company_options_that_matter_are_read_and_said(sage_logon: None) -> None:
    sage = FakeSage()
    sage.set_options(require_deposit_amount=True, batch_entry=True)

    result = doctor(sage)

    assert (
        "option Require Deposit Amount" in result.output
        and "on (AR_Options_svc RequireDepositAmt$ = 'Y')" in result.output
    )
    assert "on (AR_Options_svc CashReceiptsBatchEntry$ = 'Y')" in result.output
    assert "AR_CashReceiptsDeposit_bus nSelectNewBatch" in "\n".join(lines(result, "PASS"))
    assert "AR_CashReceiptsDeposit_bus CashDepositAmt" in next(
        line for line in lines(result, "PASS") if "CashDepositAmt" in line and "set on a new record" in line
    )


def test_options_sage_cannot_give_are_named_with_both_ways_to_fix_them(sage_logon: None) -> None:
    sage = FakeSage()
    sage.columns[OPTIONS] = {"RequireDepositAmount$", "CashReceiptsBatchEntry$"}

    result = doctor(sage)
    told = doctor(sage, "--require-deposit-amount")

    assert result.exit_code == 1
    [failure] = lines(result, "FAIL")
    assert (
        "option_require_deposit_amount" in failure
        and "--require-deposit-amount or --no-require-deposit-amount" in failure
    )
    assert told.exit_code == 0 and "as the agent is told (--require-deposit-amount)" in told.output


@pytest.mark.parametrize(
    "break_it, key",
    [
        (lambda sage: sage.tasks.discard("AR_CashReceipts_ui"), "receipts_task"),
        (lambda sage: sage.objects.discard(DEPOSITS), "deposit_bus"),
        (lambda sage: sage.missing_methods.add("nGetNextDepositNo"), "next_deposit_no_method"),
    ],
)
def test_a_task_object_or_method_this_sage_lacks_is_named_with_its_key(sage_logon: None, break_it, key: str) -> None:
    sage = FakeSage()
    break_it(sage)

    result = doctor(sage)

    assert result.exit_code == 1
    assert f"{key} = " in lines(result, "FAIL")[0]


def test_a_get_value_form_that_does_not_work_here_says_which_does(sage_logon: None, tmp_path: Path) -> None:
    names = tmp_path / "names.json"
    names.write_text('{"get_value_form": "tuple"}')

    result = doctor(FakeSage(get_value_form="variant"), "--boi-names", str(names))

    assert result.exit_code == 1
    assert 'get_value_form tuple does not: write get_value_form = "variant"' in lines(result, "FAIL")[0]


def test_a_refused_logon_stops_there_and_never_prints_the_password(
    sage_logon: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_SAGE_PASSWORD", "Wr0ng-Pa55")

    result = doctor(FakeSage())

    assert result.exit_code == 1
    assert lines(result, "FAIL") == [line for line in result.output.splitlines() if "logon" in line]
    assert "Invalid user logon or password" in result.output and "Wr0ng-Pa55" not in result.output


def test_rehearse_is_refused_unless_the_company_is_allowed_and_nothing_is_touched(sage_logon: None) -> None:
    sage = FakeSage()

    result = doctor(sage, "--rehearse", "--allow-company", "TST")

    assert result.exit_code == 2 and "name it in --allow-company" in result.output and sage.calls == []


def test_rehearse_writes_a_deposit_and_receipt_sage_counts_then_removes_both(sage_logon: None) -> None:
    sage = FakeSage()

    result = doctor(sage, "--rehearse", "--allow-company", "abc", "--customer", "01-ABF")

    assert result.exit_code == 0, result.output
    rehearsal = [line for line in result.output.splitlines() if line.split()[1].startswith("rehearse")]
    assert [line.split()[:3] for line in rehearsal] == [
        ["PASS", "rehearse:", "write"],
        ["PASS", "rehearse:", "find"],
        ["PASS", "rehearse:", "PaymentsToday"],
        ["PASS", "rehearse:", "remove"],
        ["PASS", "rehearse:", "deposit"],
    ]
    assert "PaymentsToday 0.00 -> 0.01" in result.output
    assert sage.methods(RECEIPTS).count("nWrite") == 1 and "nDelete" in sage.methods(DEPOSITS)
    assert (sage.tables[RECEIPTS], sage.tables[DEPOSITS]) == ([], [])
    assert all(i["PaymentsToday"] == 0 for i in sage.tables["AR_OpenInvoice_svc"])


@pytest.mark.skipif(sys.platform == "win32", reason="pywin32 may be installed on Windows")
def test_without_pywin32_the_boi_doctor_says_so_in_one_line(home: Path) -> None:
    result = CliRunner().invoke(main, ["agent", "doctor", "--backend", "boi"])

    assert result.exit_code == 1
    assert result.output.splitlines() == [
        "FAIL  ProvideX  the boi backend needs Windows with pywin32 (pip install pywin32) and Sage 100 "
        "installed on this machine; use --backend simulated elsewhere"
    ]


# --- the simulated company ------------------------------------------------------------------------------------


def test_the_simulated_company_passes_every_name_and_field(home: Path) -> None:
    result = CliRunner().invoke(main, ["agent", "doctor", "--backend", "simulated"])

    assert result.exit_code == 0, result.output
    passed = "\n".join(lines(result, "PASS"))
    assert all(name in passed for name in every_name(BOINames()))
    assert not lines(result, "FAIL")


@pytest.mark.parametrize(
    "override, named",
    [
        ('payments_today = "PaymentToday"', "AR_OpenInvoice_svc PaymentToday"),
        ('deposit_bus = "AR_CashDeposit_bus"', "object AR_CashDeposit_bus"),
        ('read_task = "AR_Customers_ui"', "task AR_Customers_ui"),
        ('comment_field = "Remark$"', "AR_CashReceipts_bus Remark$"),
    ],
)
def test_the_simulated_company_checks_each_name_against_its_own_tables(
    home: Path, tmp_path: Path, override: str, named: str
) -> None:
    names = tmp_path / "names.toml"
    names.write_text(override + "\n")

    result = CliRunner().invoke(main, ["agent", "doctor", "--backend", "simulated", "--boi-names", str(names)])

    assert result.exit_code == 1
    assert named in lines(result, "FAIL")[0]


def test_the_simulated_rehearsal_writes_a_receipt_and_removes_it(home: Path) -> None:
    result = CliRunner().invoke(
        main, ["agent", "doctor", "--backend", "simulated", "--rehearse", "--allow-company", "ABC", "--amount", "1.50"]
    )

    assert result.exit_code == 0, result.output
    assert "PASS  rehearse: write" in result.output and "PASS  rehearse: remove" in result.output
    with sqlite3.connect(home / "sage" / "ABC" / "sage_company.sqlite") as conn:
        assert conn.execute("SELECT COUNT(*) FROM AR_CashReceiptsHeader").fetchone() == (0,)
