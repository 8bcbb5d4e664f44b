"""How the BOI backend enters a receipt as Sage expects it: what is still open on an invoice, deposits numbered by
Sage and only ever our own, the company's deposit-amount and batch-entry options, and reversals.

Against the recording fake of Sage's COM objects (tests/support/boi_fake.py).
"""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from ml_connector_dagster.agent import BOIBackend, BOINames
from ml_connector_dagster.agent.boi_entry import OptionSettings
from ml_connector_dagster.agent.ledger import AgentLedger
from ml_connector_dagster.sage100.model import FAULT_NOT_ON_FILE, FAULT_OVER_APPLIED, Credentials, SageRuleError

from support.boi_fake import DEPOSITS, HOME, INVOICES, OPTIONS, RECEIPTS, TODAY, FakeSage, FakeVariant
from support.sage import MakeRequest


def make_backend(sage: FakeSage, tmp_path: Path, **options: object) -> BOIBackend:
    return BOIBackend(
        HOME,
        AgentLedger(tmp_path / "ledger.sqlite"),
        dispatch=sage.dispatch,
        today=lambda: TODAY,
        variant=FakeVariant,
        **options,  # type: ignore[arg-type]
    )


def deposit_rows(sage: FakeSage) -> dict[str, dict]:
    return {d["DepositNo$"]: d for d in sage.tables.get(DEPOSITS, [])}


# --- what is still open on an invoice ------------------------------------------------------------------------


def test_receipts_not_yet_posted_count_against_the_invoice(
    sage: FakeSage, backend: BOIBackend, creds: Credentials, make_request: MakeRequest
) -> None:
    keyed_by_a_person = {**INVOICES[1], "PaymentsToday": 400.0}  # 400 of its 450 in a receipt not yet posted
    sage.tables["AR_OpenInvoice_svc"] = [dict(INVOICES[0]), keyed_by_a_person]

    with pytest.raises(SageRuleError) as caught:
        backend.create_cash_receipt(creds, make_request("PM1", lines=(("0100031", "100.00"),)))
    accepted = backend.create_cash_receipt(creds, make_request("PM2", lines=(("0100031", "50.00"),)))

    assert caught.value.code == FAULT_OVER_APPLIED
    assert caught.value.message.startswith("The invoice balance was exceeded. Invoice 0100031: 100.00 applied, 50.00")
    assert "less 400.00 in unposted receipts" in caught.value.message
    assert accepted.created and len(sage.tables[RECEIPTS]) == 1


def test_a_second_payment_for_an_invoice_before_the_journal_update_is_refused_and_after_it_is_not(
    sage: FakeSage, backend: BOIBackend, creds: Credentials, make_request: MakeRequest
) -> None:
    backend.create_cash_receipt(creds, make_request("PM1", lines=(("0100031", "400.00"),)))

    with pytest.raises(SageRuleError, match=re.escape("60.00 applied, 50.00 open")):
        backend.create_cash_receipt(creds, make_request("PM2", lines=(("0100031", "60.00"),)))
    sage.update_journal()
    with pytest.raises(SageRuleError, match=re.escape("60.00 applied, 50.00 open (balance 50.00 less 0.00")):
        backend.create_cash_receipt(creds, make_request("PM3", lines=(("0100031", "60.00"),)))
    last = backend.create_cash_receipt(creds, make_request("PM4", lines=(("0100031", "50.00"),)))

    assert last.created and backend.ledger.get("PM2") is None and backend.ledger.get("PM3") is None


def test_an_invoice_the_customer_does_not_have_is_refused_rather_than_made_a_prepayment(
    sage: FakeSage, backend: BOIBackend, creds: Credentials, make_request: MakeRequest
) -> None:
    with pytest.raises(SageRuleError) as caught:
        backend.create_cash_receipt(creds, make_request("PM1", lines=(("0999999", "10.00"),)))

    assert caught.value.code == FAULT_NOT_ON_FILE and "0999999" in caught.value.message
    assert "nWrite" not in sage.methods()


# --- deposits ----------------------------------------------------------------------------------------------------


def test_a_new_deposit_takes_sages_next_deposit_number(
    sage: FakeSage, backend: BOIBackend, creds: Credentials, make_request: MakeRequest
) -> None:
    sage.next_deposit_no = 17

    receipt = backend.create_cash_receipt(creds, make_request("PM1"))

    assert receipt.deposit_no == "00017" and "nGetNextDepositNo" in sage.methods(DEPOSITS)
    assert deposit_rows(sage)["00017"]["DepositDesc$"] == "GoCardless"
    assert backend.ledger.deposit("00017") is not None


def test_without_a_next_number_method_nsetkey_numbers_the_new_deposit(
    sage: FakeSage, tmp_path: Path, creds: Credentials, make_request: MakeRequest
) -> None:
    sage.next_deposit_no = 5
    backend = make_backend(sage, tmp_path, names=BOINames(next_deposit_no_method=""))

    receipt = backend.create_cash_receipt(creds, make_request("PM1"))

    assert receipt.deposit_no == "00005" and "nGetNextDepositNo" not in sage.methods()
    assert ("DepositNo$", "00005") not in sage.args(DEPOSITS, "nSetKeyValue")


def test_a_deposit_a_person_keyed_for_the_same_bank_and_day_is_never_added_to(
    sage: FakeSage, backend: BOIBackend, creds: Credentials, make_request: MakeRequest
) -> None:
    sage.key_deposit("00001")
    sage.next_deposit_no = 2

    receipt = backend.create_cash_receipt(creds, make_request("PM1"))

    assert receipt.deposit_no == "00002"
    assert ("DepositNo$", "00001") not in sage.args(DEPOSITS, "nSetKeyValue")
    assert [r["DepositNo$"] for r in sage.tables[RECEIPTS]] == ["00002"]


def test_receipts_of_one_day_go_into_the_deposit_the_agent_opened(
    sage: FakeSage, backend: BOIBackend, creds: Credentials, make_request: MakeRequest
) -> None:
    first = backend.create_cash_receipt(creds, make_request("PM1", lines=(("0100030", "100.00"),)))
    second = backend.create_cash_receipt(creds, make_request("PM2", lines=(("0100031", "450.00"),)))

    assert first.deposit_no == second.deposit_no == "00001"
    assert sage.methods(DEPOSITS).count("nGetNextDepositNo") == 1 and len(sage.tables[DEPOSITS]) == 1


def test_once_the_journal_posted_our_deposit_the_next_receipt_opens_a_new_one(
    sage: FakeSage, backend: BOIBackend, creds: Credentials, make_request: MakeRequest
) -> None:
    first = backend.create_cash_receipt(creds, make_request("PM1", lines=(("0100030", "100.00"),)))
    sage.update_journal()

    second = backend.create_cash_receipt(creds, make_request("PM2", lines=(("0100031", "450.00"),)))

    assert (first.deposit_no, second.deposit_no) == ("00001", "00002")
    assert [d.deposit_no for d in backend.ledger.open_deposits("A", TODAY)] == ["00002"]


# --- the company options -----------------------------------------------------------------------------------


def test_the_deposit_amount_is_left_to_sage_unless_the_company_requires_it(
    sage: FakeSage, backend: BOIBackend, creds: Credentials, make_request: MakeRequest
) -> None:
    backend.create_cash_receipt(creds, make_request("PM1"))

    assert not [a for a in sage.args(DEPOSITS, "nSetValue") if a[0] == "CashDepositAmt"]
    assert "CashDepositAmt" not in deposit_rows(sage)["00001"]


def test_a_required_deposit_amount_is_raised_by_each_receipt_once_it_is_written(
    sage: FakeSage, backend: BOIBackend, creds: Credentials, make_request: MakeRequest
) -> None:
    sage.set_options(require_deposit_amount=True)
    backend.create_cash_receipt(creds, make_request("PM1", lines=(("0100030", "100.00"),)))
    sage.answers[(RECEIPTS, "nWrite")] = (0, "Customer is on credit hold.")
    with pytest.raises(SageRuleError):
        backend.create_cash_receipt(creds, make_request("PM2", lines=(("0100031", "7.00"),)))
    del sage.answers[(RECEIPTS, "nWrite")]

    backend.create_cash_receipt(creds, make_request("PM3", lines=(("0100031", "450.00"),)))

    assert deposit_rows(sage)["00001"]["CashDepositAmt"] == Decimal("550.00")


def test_with_batch_entry_the_deposit_and_its_receipts_are_entered_in_a_batch_of_our_own(
    sage: FakeSage, backend: BOIBackend, creds: Credentials, make_request: MakeRequest
) -> None:
    sage.set_options(batch_entry=True)

    backend.create_cash_receipt(creds, make_request("PM1", lines=(("0100030", "100.00"),)))
    backend.create_cash_receipt(creds, make_request("PM2", lines=(("0100031", "450.00"),)))

    assert sage.methods(DEPOSITS).count("nSelectNewBatch") == 1
    assert sage.args(RECEIPTS, "nSelectBatch") == [("00001",), ("00001",)]
    assert {r["BatchNo$"] for r in sage.tables[RECEIPTS]} == {"00001"}
    assert backend.ledger.deposit("00001").batch_no == "00001"


def test_with_batch_entry_a_posted_receipt_is_reversed_in_a_new_deposit_and_batch_of_ours(
    sage: FakeSage, backend: BOIBackend, creds: Credentials, make_request: MakeRequest
) -> None:
    sage.set_options(batch_entry=True)
    receipt = backend.create_cash_receipt(creds, make_request("PM1"))
    sage.update_journal()  # the deposit and its batch are posted

    backend.reverse_cash_receipt(creds, "PM1", "chargeback")

    [negative] = sage.tables[RECEIPTS]
    assert (negative["CheckNo$"], negative["DepositNo$"], negative["BatchNo$"]) == (receipt.check_no, "00002", "00002")


def test_options_given_to_the_agent_are_used_instead_of_reading_sages(
    sage: FakeSage, tmp_path: Path, creds: Credentials, make_request: MakeRequest
) -> None:
    backend = make_backend(sage, tmp_path, options=OptionSettings(require_deposit_amount=True, batch_entry=False))

    backend.create_cash_receipt(creds, make_request("PM1"))

    assert OPTIONS not in sage.methods()
    assert deposit_rows(sage)["00001"]["CashDepositAmt"] == Decimal("450.00")


def test_options_that_cannot_be_read_stop_the_write_and_say_how_to_give_them(
    sage: FakeSage, backend: BOIBackend, creds: Credentials, make_request: MakeRequest
) -> None:
    sage.columns[OPTIONS] = {"RequireDepositAmount$", "CashReceiptsBatchEntry$"}  # Sage names it otherwise

    with pytest.raises(SageRuleError, match=re.escape("--require-deposit-amount/--no-require-deposit-amount")):
        backend.create_cash_receipt(creds, make_request("PM1"))

    assert "nWrite" not in sage.methods() and backend.ledger.get("PM1") is None


# --- reversals --------------------------------------------------------------------------------------------------


def test_a_posted_receipt_is_reversed_by_a_negative_receipt_with_the_same_check_number(
    sage: FakeSage, backend: BOIBackend, creds: Credentials, make_request: MakeRequest
) -> None:
    receipt = backend.create_cash_receipt(creds, make_request("PM1"))
    sage.update_journal()

    backend.reverse_cash_receipt(creds, "PM1", "chargeback")

    [negative] = sage.tables[RECEIPTS]
    assert (negative["CheckNo$"], negative["PostingAmt"], negative["Comment$"]) == (
        receipt.check_no,
        Decimal("-450.00"),
        "PM1-R",
    )
    lines = [(line["InvoiceNo$"], line["AmountPosted"]) for line in negative["lines"]]
    assert lines == [("0100031", Decimal("-450.00"))]
    assert negative["DepositNo$"] == "00002" and backend.ledger.deposit("00002") is not None


def test_reversing_an_unposted_receipt_deletes_it_and_lowers_a_required_deposit_amount(
    sage: FakeSage, backend: BOIBackend, creds: Credentials, make_request: MakeRequest
) -> None:
    sage.set_options(require_deposit_amount=True)
    backend.create_cash_receipt(creds, make_request("PM1", lines=(("0100030", "100.00"),)))
    backend.create_cash_receipt(creds, make_request("PM2", lines=(("0100031", "450.00"),)))

    backend.reverse_cash_receipt(creds, "PM2", "refund")

    assert [r["Comment$"] for r in sage.tables[RECEIPTS]] == ["PM1"]
    assert deposit_rows(sage)["00001"]["CashDepositAmt"] == Decimal("100.00")
