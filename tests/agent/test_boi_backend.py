"""The BOI backend against a recording fake of Sage's COM objects (the real one only runs on Windows).

The fake (tests/support/boi_fake.py) answers like ProvideX does and records every call, so the tests check the call
sequence of Sage's public BOI examples and what the backend does with each return code.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from ml_connector_dagster.agent import BOIBackend, BOINames, agent_app
from ml_connector_dagster.agent.ledger import AgentLedger
from ml_connector_dagster.httpserve import serve_in_thread
from ml_connector_dagster.sage100 import AgentClient, RetryPolicy
from ml_connector_dagster.sage100.model import (
    FAULT_COMPANY,
    FAULT_LOGON,
    LOGON_FAILURE_TEXT,
    Credentials,
    SageRuleError,
)

from support.boi_fake import HOME, RECEIPTS, TODAY, FakeSage
from support.sage import MakeRequest


def test_a_cash_receipt_follows_the_reference_call_sequence(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest
) -> None:
    receipt = backend.create_cash_receipt(creds, make_request("PM1", lines=(("0100031", "450.00"),)))

    session = [(o, m, a) for o, m, a in sage.calls if o in ("Dispatch", "ProvideX.Script", "SY_Session")]
    assert session[:9] == [
        ("Dispatch", "ProvideX.Script", ()),
        ("ProvideX.Script", "Init", (HOME,)),
        ("ProvideX.Script", "NewObject", ("SY_Session",)),
        ("SY_Session", "nSetUser", ("demo", "demo-password")),
        ("SY_Session", "nSetCompany", ("ABC",)),
        ("SY_Session", "nSetDate", ("A/R", "20261125")),
        ("SY_Session", "nSetModule", ("A/R",)),
        ("SY_Session", "nLookupTask", ("AR_CashReceipts_ui",)),
        ("SY_Session", "nSetProgram", ("task:AR_CashReceipts_ui",)),
    ]
    assert sage.methods("lines") == ["nAddLine", "nSetValue", "nSetValue", "nSetValue", "nWrite"]
    assert sage.args("lines", "nSetValue") == [
        ("InvoiceNo$", "0100031"),
        ("InvoiceType$", "IN"),
        ("AmountPosted", Decimal("450.00")),
    ]
    header = sage.methods("AR_CashReceipts_bus")
    assert header[:5] == ["nSetKeyValue"] * 4 + ["nSetKey"] and header[-2:] == ["nWrite", "DropObject"]
    assert ("PostingAmt", Decimal("450.00")) in sage.args("AR_CashReceipts_bus", "nSetValue")
    assert ("Comment$", "PM1") in sage.args("AR_CashReceipts_bus", "nSetValue")
    assert sage.methods()[-2:] == ["nCleanup", "DropObject"]
    assert (receipt.deposit_no, receipt.check_no, receipt.created) == ("00001", "GC00000001", True)


def test_amounts_reach_com_as_decimal_never_float(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest
) -> None:
    backend.create_cash_receipt(creds, make_request("PM1"))

    numbers = [a[1] for o, m, a in sage.calls if m == "nSetValue" and not a[0].endswith("$")]
    assert numbers and all(isinstance(n, Decimal) for n in numbers)


def test_a_wrong_password_gives_sages_logon_failure_and_still_cleans_up(backend: BOIBackend, sage: FakeSage) -> None:
    with pytest.raises(SageRuleError) as caught:
        backend.company_name(Credentials("demo", "wrong", "ABC"))

    assert (caught.value.code, caught.value.message) == (FAULT_LOGON, LOGON_FAILURE_TEXT)
    assert sage.methods("SY_Session")[-2:] == ["nCleanup", "DropObject"]


def test_an_unknown_company_is_refused_with_sages_reason(backend: BOIBackend) -> None:
    with pytest.raises(SageRuleError) as caught:
        backend.company_name(Credentials("demo", "demo-password", "XYZ"))

    assert caught.value.code == FAULT_COMPANY and "Company not found." in caught.value.message


def test_a_refused_write_raises_sages_message_and_frees_the_key(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest
) -> None:
    sage.answers[("AR_CashReceipts_bus", "nWrite")] = (0, "Customer is on credit hold.")

    with pytest.raises(SageRuleError, match=re.escape("Customer is on credit hold.")):
        backend.create_cash_receipt(creds, make_request("PM1"))

    assert "nClear" in sage.methods("AR_CashReceipts_bus")
    del sage.answers[("AR_CashReceipts_bus", "nWrite")]
    assert backend.create_cash_receipt(creds, make_request("PM1")).created


def test_a_warning_return_code_is_success_and_its_message_is_logged(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest, caplog: pytest.LogCaptureFixture
) -> None:
    sage.answers[("AR_CashReceipts_bus", "nWrite")] = (-1, "Deposit total changed.")

    receipt = backend.create_cash_receipt(creds, make_request("PM1"))

    assert receipt.created and "Deposit total changed." in caplog.text


def test_what_sage_warned_about_comes_back_with_the_receipt(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest
) -> None:
    sage.answers[("AR_CashReceipts_bus", "nWrite")] = (-1, "Customer is inactive.")

    receipt = backend.create_cash_receipt(creds, make_request("PM1"))

    assert receipt.created and any("Customer is inactive." in w for w in receipt.warnings)


def test_lines_not_adding_up_are_refused_before_sage_is_written(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest
) -> None:
    with pytest.raises(SageRuleError, match=re.escape("The distribution is out of balance.")):
        backend.create_cash_receipt(creds, make_request("PM1", amount="500.00"))

    assert "nWrite" not in sage.methods()


def test_paying_beyond_a_balance_is_refused_with_sages_message_before_sage_is_written(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest
) -> None:
    with pytest.raises(SageRuleError, match=re.escape("The invoice balance was exceeded. Invoice 0100031: 450.01")):
        backend.create_cash_receipt(creds, make_request("PM1", lines=(("0100031", "450.01"),)))

    assert "nWrite" not in sage.methods()


def test_the_same_key_twice_writes_once(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest
) -> None:
    first = backend.create_cash_receipt(creds, make_request("PM1"))
    writes = sage.methods().count("nWrite")

    again = backend.create_cash_receipt(creds, make_request("PM1"))

    assert again.receipt_id == first.receipt_id and not again.created
    assert sage.methods().count("nWrite") == writes
    assert sage.methods("SY_Session").count("nSetUser") == 2  # the repeat is still logged on


def test_an_interrupted_write_is_recovered_from_the_comment_instead_of_written_again(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest
) -> None:
    backend.ledger.claim(make_request("PM1"))  # the agent stopped after this, before recording the result
    sage.tables["AR_CashReceipts_bus"] = [
        {
            "DepositNo$": "00007",
            "ARDivisionNo$": "01",
            "CustomerNo$": "ABF",
            "CheckNo$": "GC00000001",
            "PostingAmt": 450.0,
            "Comment$": "PM1",
        }
    ]

    receipt = backend.create_cash_receipt(creds, make_request("PM1"))

    assert (receipt.deposit_no, receipt.check_no) == ("00007", "GC00000001")
    assert "nWrite" not in sage.methods()
    assert backend.find_cash_receipt(creds, "PM1").deposit_no == "00007"


def test_reads_normalise_sages_time_and_money(backend: BOIBackend, creds: Credentials) -> None:
    invoices = backend.get_open_invoices(creds, "01", "ABF")

    assert [i.TimeUpdated for i in invoices] == ["09.5000000", "13.7500000"]
    assert [i.Balance for i in invoices] == [Decimal("1200.00"), Decimal("450.00")]
    assert invoices[0].InvoiceDate == date(2026, 10, 1)


def test_an_unknown_customer_is_not_found(backend: BOIBackend, sage: FakeSage, creds: Credentials) -> None:
    sage.answers[("AR_Customer_svc", "nFind")] = 0

    with pytest.raises(SageRuleError, match=re.escape("Customer 01-NOPE does not exist.")):
        backend.get_open_invoices(creds, "01", "NOPE")


def test_unposted_receipts_are_read_from_entry_with_ours_known_by_the_ledger(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest
) -> None:
    sage.key_deposit("00900", deposit_date="20261124")
    sage.key_receipt("00900", "4417", "0100030", 200.0)
    sage.key_receipt("00900", "PM1", "0100030", 1.0)  # a person's check number that looks like a key: still theirs
    ours = backend.create_cash_receipt(creds, make_request("PM1", lines=(("0100031", "450.00"),)))

    lines = backend.get_unposted_receipts(creds, "01", "ABF")

    assert [
        (u.deposit_no, u.check_no, u.deposit_date, u.invoice_no, u.invoice_type, u.amount_posted, u.idempotency_key)
        for u in lines
    ] == [
        ("00900", "4417", date(2026, 11, 24), "0100030", "IN", Decimal("200.00"), ""),
        ("00900", "PM1", date(2026, 11, 24), "0100030", "IN", Decimal("1.00"), ""),
        (ours.deposit_no, ours.check_no, TODAY, "0100031", "IN", Decimal("450.00"), "PM1"),
    ]
    read = {o for o, m, _ in sage.calls if m == "nMoveFirst"}
    assert {"AR_CashReceiptsHeader_svc", "AR_CashReceiptsDetail_svc", "AR_CashReceiptsDeposit_svc"} <= read

    sage.update_journal()

    assert backend.get_unposted_receipts(creds, "01", "ABF") == []


def test_unposted_receipts_of_an_unknown_customer_are_not_found(
    backend: BOIBackend, sage: FakeSage, creds: Credentials
) -> None:
    sage.answers[("AR_Customer_svc", "nFind")] = 0

    with pytest.raises(SageRuleError, match=re.escape("Customer 01-NOPE does not exist.")):
        backend.get_unposted_receipts(creds, "01", "NOPE")


def test_reversing_an_unposted_receipt_deletes_the_entry(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest
) -> None:
    backend.create_cash_receipt(creds, make_request("PM1"))
    sage.answers[("AR_CashReceipts_bus", "nSetKey")] = 1  # the entry exists

    reversed_ = backend.reverse_cash_receipt(creds, "PM1", "chargeback")

    assert reversed_.status == "reversed" and "nDelete" in sage.methods("AR_CashReceipts_bus")
    assert backend.find_cash_receipt(creds, "PM1").status == "reversed"


def test_object_names_come_from_one_configurable_place(
    sage: FakeSage, tmp_path: Path, creds: Credentials, make_request: MakeRequest
) -> None:
    names = BOINames(receipts_bus="AR_CashReceiptsEntry_bus", receipts_task="AR_CashReceiptsEntry_ui")
    sage.objects.add("AR_CashReceiptsEntry_bus")  # an installation that names them so
    sage.tasks.add("AR_CashReceiptsEntry_ui")
    sage.columns["AR_CashReceiptsEntry_bus"] = sage.columns[RECEIPTS]
    backend = BOIBackend(HOME, AgentLedger(tmp_path / "l.sqlite"), names, dispatch=sage.dispatch, today=lambda: TODAY)

    backend.create_cash_receipt(creds, make_request("PM1"))

    assert ("SY_Session", "nLookupTask", ("AR_CashReceiptsEntry_ui",)) in sage.calls
    assert "nWrite" in sage.methods("AR_CashReceiptsEntry_bus")


def test_the_agent_serves_the_boi_backend_like_any_other(backend: BOIBackend) -> None:
    server = serve_in_thread(agent_app(backend))
    try:
        client = AgentClient(
            f"{server.url}/agent?wsdl",
            username="demo",
            password="demo-password",
            company_code="ABC",
            retry=RetryPolicy(attempts=1),
        )
        info = client.ping()
        invoices = list(client.iter_open_invoices())
    finally:
        server.stop()

    assert info.backend == "boi"
    assert [i.InvoiceNo for i in invoices] == ["0100030", "0100031"]
