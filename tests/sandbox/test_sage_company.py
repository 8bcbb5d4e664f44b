"""The simulated Sage 100 company: Sage's tables, change stamps and cash receipt rules."""

from __future__ import annotations

import re
import sqlite3
import threading
from dataclasses import replace
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from ml_connector_dagster.sage100.model import (
    FAULT_COMPANY,
    FAULT_EXISTS,
    FAULT_LOGON,
    FAULT_NOT_ON_FILE,
    FAULT_OUT_OF_BALANCE,
    FAULT_OVER_APPLIED,
    LOGON_FAILURE_TEXT,
    OVER_APPLIED_TEXT,
    Credentials,
    SageRuleError,
)
from ml_connector_dagster.sandbox.sage_company import SageCompany
from ml_connector_dagster.sandbox.scenario import Scenario

from support.sage import MakeRequest

TODAY = date(2026, 11, 25)  # the deposit date of support.sage's requests


def invoice(company: SageCompany, invoice_no: str, customer: str = "ABF"):
    return next(i for i in company.open_invoices_for("01", customer) if i.InvoiceNo == invoice_no)


def entry_counts(company: SageCompany) -> tuple[int, int, int]:
    return tuple(
        len(company.rows(t)) for t in ("AR_CashReceiptsDeposit", "AR_CashReceiptsHeader", "AR_CashReceiptsDetail")
    )


# --- loading and stamps ----------------------------------------------------------------------------------------


def test_loading_a_scenario_keeps_zero_balance_invoices(company: SageCompany, scenario) -> None:
    invoices = company.list_open_invoices(None, None, 1000)

    assert len(invoices) == len(scenario.sage_invoices)
    assert invoice(company, "0100020").Balance == Decimal("0.00")


def test_tables_carry_sage_column_names_and_audit_stamps(company: SageCompany) -> None:
    customer = company.rows("AR_Customer")[0]
    open_invoice = company.rows("AR_OpenInvoice")[0]

    assert {
        "ARDivisionNo",
        "CustomerNo",
        "CurrentBalance",
        "DateCreated",
        "TimeCreated",
        "DateUpdated",
        "TimeUpdated",
        "UserUpdatedKey",
    } <= customer.keys()
    assert {
        "InvoiceNo",
        "InvoiceType",
        "InvoiceDate",
        "InvoiceDueDate",
        "Balance",
        "PaymentsToday",
        "DateUpdated",
        "TimeUpdated",
    } <= open_invoice.keys()
    assert len(open_invoice["DateUpdated"]) == 8 and len(open_invoice["TimeUpdated"]) == 10


def test_customer_balance_is_the_sum_of_its_open_invoices(company: SageCompany) -> None:
    assert company.get_customer("01", "ABF")["CurrentBalance"] == "1650.00"


def test_changes_in_the_same_second_still_get_increasing_stamps(company: SageCompany) -> None:
    first = company.adjust_invoice_balance("01", "ABF", "0100030", "IN", Decimal("1000.00"))
    second = company.adjust_invoice_balance("01", "ABF", "0100031", "IN", Decimal("400.00"))
    third = company.adjust_invoice_balance("01", "ABF", "0100030", "IN", Decimal("900.00"))

    assert first.stamp < second.stamp < third.stamp
    stamps = [i.stamp for i in company.list_open_invoices(None, None, 1000)]
    assert len(set(stamps)) == len(stamps)


def test_stamps_keep_increasing_across_reopening_the_database(company: SageCompany) -> None:
    before = company.adjust_invoice_balance("01", "ABF", "0100030", "IN", Decimal("1000.00"))

    after = SageCompany(company.path).adjust_invoice_balance("01", "ABF", "0100031", "IN", Decimal("1.00"))

    assert after.stamp > before.stamp


def test_adjusting_a_balance_restamps_only_that_invoice(company: SageCompany) -> None:
    newest = max(i.stamp for i in company.list_open_invoices(None, None, 1000))

    company.adjust_invoice_balance("01", "BRESLIN", "0100040", "IN", Decimal("100.00"))

    changed = company.list_open_invoices(newest, None, 1000)
    assert [(i.InvoiceNo, i.Balance) for i in changed] == [("0100040", Decimal("100.00"))]


def test_lists_page_by_position_in_stamp_order(company: SageCompany) -> None:
    everything = company.list_open_invoices(None, None, 1000)
    first = company.list_open_invoices(None, None, 4)
    last = first[-1]

    rest = company.list_open_invoices(None, (*last.stamp, *last.key), 1000)

    assert first + rest == everything
    assert [i.stamp for i in everything] == sorted(i.stamp for i in everything)


# --- logon -------------------------------------------------------------------------------------------------------


def test_a_wrong_password_is_refused_with_sages_logon_failure_text(company: SageCompany, credentials) -> None:
    with pytest.raises(SageRuleError) as caught:
        company.authorise(Credentials(credentials.username, "wrong", credentials.company_code))

    assert (caught.value.code, caught.value.message) == (FAULT_LOGON, LOGON_FAILURE_TEXT)


def test_another_company_code_is_refused(company: SageCompany, credentials) -> None:
    with pytest.raises(SageRuleError) as caught:
        company.authorise(Credentials(credentials.username, credentials.password, "XYZ"))

    assert caught.value.code == FAULT_COMPANY and "XYZ" in caught.value.message


def test_the_password_is_not_stored_in_plaintext(company: SageCompany, credentials) -> None:
    assert credentials.password.encode() not in company.path.read_bytes()


# --- cash receipts -------------------------------------------------------------------------------------------------


def test_a_receipt_is_a_deposit_a_header_and_lines_adding_up_to_posting_amt(
    company: SageCompany, make_request: MakeRequest
) -> None:
    request = make_request(lines=(("0100030", "200.00"), ("0100031", "450.00")))

    receipt = company.create_cash_receipt(request)

    [deposit] = company.rows("AR_CashReceiptsDeposit")
    [header] = company.rows("AR_CashReceiptsHeader")
    details = company.rows("AR_CashReceiptsDetail")
    assert (deposit["BankCode"], deposit["DepositDate"], deposit["CashDepositAmt"]) == ("A", "20261125", "650.00")
    assert (header["DepositNo"], header["CheckNo"], header["PostingAmt"]) == (
        receipt.deposit_no,
        receipt.check_no,
        "650.00",
    )
    assert header["UDF_GC_PAYMENT_ID"] == "PM0001"
    assert sum(Decimal(d["AmountPosted"]) for d in details) == Decimal(header["PostingAmt"])
    assert receipt.created and receipt.status == "entered"


def test_entering_a_receipt_raises_payments_today_and_restamps_the_invoice_but_not_its_balance(
    company: SageCompany, make_request: MakeRequest
) -> None:
    before = invoice(company, "0100030")

    company.create_cash_receipt(make_request(lines=(("0100030", "200.00"),)))

    after = invoice(company, "0100030")
    assert (after.Balance, after.PaymentsToday) == (Decimal("1200.00"), Decimal("200.00"))
    assert after.stamp > before.stamp


def test_entering_a_receipt_leaves_the_customer_to_the_journal_update(
    company: SageCompany, make_request: MakeRequest
) -> None:
    before = company.get_customer("01", "ABF")

    company.create_cash_receipt(make_request(lines=(("0100030", "200.00"),)))

    assert company.get_customer("01", "ABF") == before


def test_the_products_receipts_of_one_date_and_bank_share_the_products_deposit(
    company: SageCompany, make_request: MakeRequest
) -> None:
    first = company.create_cash_receipt(make_request("PM1", lines=(("0100030", "100.00"),)))
    second = company.create_cash_receipt(make_request("PM2", lines=(("0100031", "50.00"),)))

    assert first.deposit_no == second.deposit_no and first.check_no != second.check_no
    [deposit] = company.rows("AR_CashReceiptsDeposit")
    assert deposit["CashDepositAmt"] == "150.00"


def test_the_same_idempotency_key_returns_the_first_receipt_and_writes_nothing(
    company: SageCompany, make_request: MakeRequest
) -> None:
    first = company.create_cash_receipt(make_request("PM1"))
    tables_before = {t: company.rows(t) for t in ("AR_OpenInvoice", "AR_Customer", "AR_CashReceiptsHeader")}

    again = SageCompany(company.path).create_cash_receipt(make_request("PM1"))

    assert again.receipt_id == first.receipt_id and not again.created
    assert {t: company.rows(t) for t in tables_before} == tables_before


def test_concurrent_requests_with_one_key_write_one_receipt(company: SageCompany, make_request: MakeRequest) -> None:
    results, start = [], threading.Barrier(4)

    def create() -> None:
        start.wait(10)  # all four arrive together: the key's check and the write share one transaction
        results.append(SageCompany(company.path).create_cash_receipt(make_request("PM1")))

    threads = [threading.Thread(target=create) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    assert len({r.receipt_id for r in results}) == 1
    assert sum(r.created for r in results) == 1
    assert len(company.rows("AR_CashReceiptsHeader")) == 1


def test_lines_not_adding_up_to_the_amount_are_refused(company: SageCompany, make_request: MakeRequest) -> None:
    with pytest.raises(SageRuleError) as caught:
        company.create_cash_receipt(make_request(amount="500.00"))

    assert (caught.value.code, caught.value.message) == (FAULT_OUT_OF_BALANCE, "The distribution is out of balance.")
    assert entry_counts(company) == (0, 0, 0)
    assert invoice(company, "0100031").Balance == Decimal("450.00")


def test_lines_of_one_receipt_together_cannot_exceed_the_invoice_balance(
    company: SageCompany, make_request: MakeRequest
) -> None:
    with pytest.raises(SageRuleError) as caught:
        company.create_cash_receipt(make_request(lines=(("0100031", "300.00"), ("0100031", "200.00"))))

    assert caught.value.code == FAULT_OVER_APPLIED
    assert caught.value.message == (
        "The invoice balance was exceeded. Invoice 0100031 (IN) of customer 01-ABF: Balance 450.00, "
        "PaymentsToday 0.00 (unposted receipts), 450.00 open; this receipt applies 500.00."
    )
    assert entry_counts(company) == (0, 0, 0)


def test_a_collected_invoice_cannot_be_paid_again(company: SageCompany, make_request: MakeRequest) -> None:
    with pytest.raises(SageRuleError, match=re.escape("The invoice balance was exceeded. Invoice 0100020 (IN)")):
        company.create_cash_receipt(make_request(lines=(("0100020", "10.00"),)))


def test_a_second_receipt_beyond_what_the_first_left_open_is_refused_before_the_journal_update(
    company: SageCompany, make_request: MakeRequest
) -> None:
    company.create_cash_receipt(make_request("PM1", lines=(("0100031", "300.00"),)))

    with pytest.raises(SageRuleError) as caught:
        company.create_cash_receipt(make_request("PM2", lines=(("0100031", "200.00"),)))

    assert caught.value.code == FAULT_OVER_APPLIED
    assert "Balance 450.00, PaymentsToday 300.00 (unposted receipts), 150.00 open" in caught.value.message
    assert company.find_cash_receipt("PM2") is None


def test_a_receipt_a_person_keyed_counts_against_the_invoice(company: SageCompany, make_request: MakeRequest) -> None:
    company.key_receipt("01", "ABF", "0100031", "IN", Decimal("400.00"), "1234", TODAY)

    with pytest.raises(SageRuleError, match=r"PaymentsToday 400\.00 .* 50\.00 open; this receipt applies 450\.00"):
        company.create_cash_receipt(make_request())


def test_what_is_left_open_can_still_be_applied(company: SageCompany, make_request: MakeRequest) -> None:
    company.key_receipt("01", "ABF", "0100031", "IN", Decimal("400.00"), "1234", TODAY)

    company.create_cash_receipt(make_request(lines=(("0100031", "50.00"),)))

    assert invoice(company, "0100031").PaymentsToday == Decimal("450.00")


@pytest.mark.parametrize(
    "change, words",
    [
        ({"customer": "NOPE"}, "Customer 01-NOPE is not on file."),
        ({"lines": (("0999999", "10.00"),)}, "Invoice 0999999 (IN) is not on file for customer 01-ABF."),
        ({"bank": "Z"}, "Bank code Z is not on file."),
    ],
)
def test_unknown_customer_invoice_or_bank_is_refused_as_not_on_file(
    company: SageCompany, make_request: MakeRequest, change: dict, words: str
) -> None:
    with pytest.raises(SageRuleError) as caught:
        company.create_cash_receipt(make_request(**change))

    assert (caught.value.code, caught.value.message) == (FAULT_NOT_ON_FILE, words)
    assert company.find_cash_receipt("PM0001") is None


# --- the Cash Receipts Journal update -----------------------------------------------------------------------------


def test_the_journal_update_lowers_balance_by_what_was_applied_and_returns_payments_today_to_zero(
    company: SageCompany, make_request: MakeRequest
) -> None:
    company.create_cash_receipt(make_request(lines=(("0100030", "200.00"), ("0100031", "450.00"))))

    posted_lines = company.post_cash_receipts_journal()

    assert posted_lines == 2
    assert [(invoice(company, no).Balance, invoice(company, no).PaymentsToday) for no in ("0100030", "0100031")] == [
        (Decimal("1000.00"), Decimal("0.00")),
        (Decimal("0.00"), Decimal("0.00")),
    ]


def test_the_journal_update_lowers_the_customers_balance_and_sets_its_last_payment(
    company: SageCompany, make_request: MakeRequest
) -> None:
    company.create_cash_receipt(make_request(lines=(("0100030", "200.00"),)))

    company.post_cash_receipts_journal()

    customer = company.get_customer("01", "ABF")
    assert (customer["CurrentBalance"], customer["DateLastPayment"], customer["LastPaymentAmt"]) == (
        "1450.00",
        "20261125",
        "200.00",
    )


def test_the_journal_update_posts_peoples_receipts_and_the_products_alike(
    company: SageCompany, make_request: MakeRequest
) -> None:
    company.key_receipt("01", "ABF", "0100030", "IN", Decimal("100.00"), "1234", TODAY)
    company.create_cash_receipt(make_request(lines=(("0100030", "200.00"),)))

    company.post_cash_receipts_journal()

    history = company.rows("AR_CashReceiptsHistory")
    assert sorted((h["CheckNo"], h["CashAmountApplied"]) for h in history) == [
        ("1234", "100.00"),
        ("GC00000001", "200.00"),
    ]
    assert invoice(company, "0100030").Balance == Decimal("900.00")


def test_the_journal_update_closes_every_deposit_and_marks_the_products_receipts_posted(
    company: SageCompany, make_request: MakeRequest
) -> None:
    company.key_receipt("01", "ABF", "0100030", "IN", Decimal("100.00"), "1234", TODAY)
    company.create_cash_receipt(make_request("PM1"))

    company.post_cash_receipts_journal()

    assert entry_counts(company) == (0, 0, 0) and company.rows("ML_DepositOwner") == []
    assert company.find_cash_receipt("PM1").status == "posted"


def test_the_journal_update_restamps_what_it_changed_so_an_incremental_poll_sees_it(
    company: SageCompany, make_request: MakeRequest
) -> None:
    company.create_cash_receipt(make_request())
    invoices_seen = max(i.stamp for i in company.list_open_invoices(None, None, 1000))
    customers_seen = max(c.stamp for c in company.list_customers(None, None, 1000))

    company.post_cash_receipts_journal()

    assert [(i.InvoiceNo, i.Balance) for i in company.list_open_invoices(invoices_seen, None, 1000)] == [
        ("0100031", Decimal("0.00"))
    ]
    assert [(c.CustomerNo, c.CurrentBalance) for c in company.list_customers(customers_seen, None, 1000)] == [
        ("ABF", Decimal("1200.00"))
    ]


def test_find_returns_posted_receipts_with_their_lines(company: SageCompany, make_request: MakeRequest) -> None:
    written = company.create_cash_receipt(make_request("PM1"))
    company.post_cash_receipts_journal()

    found = company.find_cash_receipt("PM1")

    assert found.status == "posted" and found.lines == written.lines and found.amount == Decimal("450.00")


# --- a person keying receipts -------------------------------------------------------------------------------------


def test_a_person_keying_a_receipt_raises_payments_today_but_not_balance(company: SageCompany) -> None:
    company.key_receipt("01", "ABF", "0100031", "IN", Decimal("100.00"), "1234", TODAY)

    assert (invoice(company, "0100031").Balance, invoice(company, "0100031").PaymentsToday) == (
        Decimal("450.00"),
        Decimal("100.00"),
    )
    assert company.get_customer("01", "ABF")["CurrentBalance"] == "1650.00"


def test_a_person_keys_into_a_deposit_of_their_own(company: SageCompany) -> None:
    entered = company.key_receipt("01", "ABF", "0100031", "IN", Decimal("100.00"), "1234", TODAY)

    [deposit] = company.rows("AR_CashReceiptsDeposit")
    [header] = company.rows("AR_CashReceiptsHeader")
    assert (deposit["DepositNo"], deposit["CashDepositAmt"]) == (entered.deposit_no, "100.00")
    assert (header["CheckNo"], header["PostingAmt"], header["UDF_GC_PAYMENT_ID"]) == ("1234", "100.00", "")
    assert [(o["DepositNo"], o["Owner"]) for o in company.rows("ML_DepositOwner")] == [(entered.deposit_no, "person")]


def test_the_product_never_adds_to_a_deposit_a_person_opened(company: SageCompany, make_request: MakeRequest) -> None:
    keyed = company.key_receipt("01", "ABF", "0100030", "IN", Decimal("100.00"), "1234", TODAY)

    receipt = company.create_cash_receipt(make_request())

    assert receipt.deposit_no != keyed.deposit_no
    assert {h["DepositNo"]: h["CheckNo"] for h in company.rows("AR_CashReceiptsHeader")} == {
        keyed.deposit_no: "1234",
        receipt.deposit_no: receipt.check_no,
    }


def test_a_person_does_not_key_into_the_products_deposit(company: SageCompany, make_request: MakeRequest) -> None:
    receipt = company.create_cash_receipt(make_request())

    keyed = company.key_receipt("01", "ABF", "0100030", "IN", Decimal("100.00"), "1234", TODAY)

    assert keyed.deposit_no != receipt.deposit_no


def test_deposits_are_numbered_from_sages_next_deposit_number_several_a_day(
    company: SageCompany, make_request: MakeRequest
) -> None:
    first = company.create_cash_receipt(make_request("PM1", lines=(("0100030", "100.00"),)))
    keyed = company.key_receipt("01", "ABF", "0100030", "IN", Decimal("100.00"), "1234", TODAY)
    company.post_cash_receipts_journal()

    after_update = company.create_cash_receipt(make_request("PM2", lines=(("0100030", "100.00"),)))

    assert [first.deposit_no, keyed.deposit_no, after_update.deposit_no] == ["00001", "00002", "00003"]
    assert first.deposit_date == after_update.deposit_date


def test_a_person_keying_beyond_the_open_amount_is_refused_with_sages_message(
    company: SageCompany, make_request: MakeRequest
) -> None:
    company.create_cash_receipt(make_request(lines=(("0100031", "400.00"),)))

    with pytest.raises(SageRuleError) as caught:
        company.key_receipt("01", "ABF", "0100031", "IN", Decimal("100.00"), "1234", TODAY)

    assert caught.value.code == FAULT_OVER_APPLIED and caught.value.message.startswith(OVER_APPLIED_TEXT)
    assert invoice(company, "0100031").PaymentsToday == Decimal("400.00")


def test_a_person_cannot_key_the_same_check_twice_into_one_deposit(company: SageCompany) -> None:
    company.key_receipt("01", "ABF", "0100030", "IN", Decimal("100.00"), "1234", TODAY)

    with pytest.raises(SageRuleError) as caught:
        company.key_receipt("01", "ABF", "0100031", "IN", Decimal("100.00"), "1234", TODAY)

    assert caught.value.code == FAULT_EXISTS
    assert invoice(company, "0100031").PaymentsToday == Decimal("0.00")


def test_receipts_people_keyed_before_the_play_are_unposted_entries_the_journal_update_posts(
    tmp_path: Path, scenario: Scenario
) -> None:
    keyed = replace(scenario.sage_invoices[1], PaymentsToday=Decimal("200.00"))  # 0100030, Balance 1200.00
    company = SageCompany.create(
        tmp_path / "c.sqlite", replace(scenario, sage_invoices=(scenario.sage_invoices[0], keyed))
    )

    before = invoice(company, "0100030")
    company.post_cash_receipts_journal()

    assert (before.Balance, before.PaymentsToday) == (Decimal("1200.00"), Decimal("200.00"))
    assert (invoice(company, "0100030").Balance, invoice(company, "0100030").PaymentsToday) == (
        Decimal("1000.00"),
        Decimal("0.00"),
    )


# --- company options ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("required, entered", [(True, "Y"), (False, "N")])
def test_the_deposit_amount_is_entered_only_when_the_company_requires_it(
    tmp_path: Path, scenario: Scenario, make_request: MakeRequest, required: bool, entered: str
) -> None:
    company = company_with(tmp_path, scenario, require_deposit_amount=required)

    company.create_cash_receipt(make_request("PM1", lines=(("0100030", "100.00"),)))
    company.create_cash_receipt(make_request("PM2", lines=(("0100031", "50.00"),)))

    [deposit] = company.rows("AR_CashReceiptsDeposit")
    [owner] = company.rows("ML_DepositOwner")
    assert (deposit["CashDepositAmt"], owner["AmountEntered"]) == ("150.00", entered)


@pytest.mark.parametrize("batch_entry, batch", [(True, "00001"), (False, "")])
def test_with_batch_entry_the_deposit_and_its_receipts_carry_a_batch_number(
    tmp_path: Path, scenario: Scenario, make_request: MakeRequest, batch_entry: bool, batch: str
) -> None:
    company = company_with(tmp_path, scenario, batch_entry=batch_entry)

    company.create_cash_receipt(make_request())

    [deposit] = company.rows("AR_CashReceiptsDeposit")
    [header] = company.rows("AR_CashReceiptsHeader")
    assert (deposit["BatchNo"], header["BatchNo"]) == (batch, batch)


def test_a_person_gets_a_batch_of_their_own(tmp_path: Path, scenario: Scenario, make_request: MakeRequest) -> None:
    company = company_with(tmp_path, scenario, batch_entry=True)
    company.create_cash_receipt(make_request())

    company.key_receipt("01", "ABF", "0100030", "IN", Decimal("100.00"), "1234", TODAY)

    assert sorted(d["BatchNo"] for d in company.rows("AR_CashReceiptsDeposit")) == ["00001", "00002"]


# --- inactive customers -------------------------------------------------------------------------------------------


def test_an_inactive_customer_is_a_warning_and_the_receipt_is_written(
    tmp_path: Path, scenario: Scenario, make_request: MakeRequest
) -> None:
    company = company_with(tmp_path, scenario, inactive="ABF")

    receipt = company.create_cash_receipt(make_request())

    assert receipt.created and receipt.warnings == ("Customer 01-ABF is inactive.",)
    assert invoice(company, "0100031").PaymentsToday == Decimal("450.00")


def test_the_warning_stays_with_the_receipt_when_it_is_found_again(
    tmp_path: Path, scenario: Scenario, make_request: MakeRequest
) -> None:
    company = company_with(tmp_path, scenario, inactive="ABF")
    company.create_cash_receipt(make_request())

    assert company.find_cash_receipt("PM0001").warnings == ("Customer 01-ABF is inactive.",)


def test_an_active_customers_receipt_has_no_warnings(company: SageCompany, make_request: MakeRequest) -> None:
    assert company.create_cash_receipt(make_request()).warnings == ()


# --- reversal -----------------------------------------------------------------------------------------------------


def test_reversing_an_unposted_receipt_deletes_the_entry_and_lowers_payments_today_back(
    company: SageCompany, make_request: MakeRequest
) -> None:
    company.create_cash_receipt(make_request("PM1"))

    reversed_ = company.reverse_cash_receipt("PM1", "charged back")

    assert (reversed_.status, reversed_.reversal_reason) == ("reversed", "charged back")
    assert entry_counts(company) == (0, 0, 0) and company.rows("ML_DepositOwner") == []
    assert (invoice(company, "0100031").Balance, invoice(company, "0100031").PaymentsToday) == (
        Decimal("450.00"),
        Decimal("0.00"),
    )
    assert company.get_customer("01", "ABF")["CurrentBalance"] == "1650.00"


def test_deleting_an_unposted_receipt_keeps_the_rest_of_its_deposit(
    company: SageCompany, make_request: MakeRequest
) -> None:
    company.create_cash_receipt(make_request("PM1", lines=(("0100030", "100.00"),)))
    company.create_cash_receipt(make_request("PM2", lines=(("0100031", "50.00"),)))

    company.reverse_cash_receipt("PM1", "cancelled")

    [deposit] = company.rows("AR_CashReceiptsDeposit")
    assert deposit["CashDepositAmt"] == "50.00" and entry_counts(company) == (1, 1, 1)


def test_a_posted_receipt_is_reversed_by_a_negative_receipt_with_the_same_check_number(
    company: SageCompany, make_request: MakeRequest
) -> None:
    original = company.create_cash_receipt(make_request("PM1", lines=(("0100030", "200.00"), ("0100031", "450.00"))))
    company.post_cash_receipts_journal()

    company.reverse_cash_receipt("PM1", "late failure")

    [header] = company.rows("AR_CashReceiptsHeader")
    details = company.rows("AR_CashReceiptsDetail")
    assert (header["CheckNo"], header["PostingAmt"], header["UDF_GC_PAYMENT_ID"]) == (
        original.check_no,
        "-650.00",
        "PM1",
    )
    assert header["DepositNo"] != original.deposit_no
    assert sorted((d["InvoiceNo"], d["AmountPosted"]) for d in details) == [
        ("0100030", "-200.00"),
        ("0100031", "-450.00"),
    ]


def test_a_negative_receipt_lowers_payments_today_now_and_raises_balance_at_the_journal_update(
    company: SageCompany, make_request: MakeRequest
) -> None:
    company.create_cash_receipt(make_request("PM1"))
    company.post_cash_receipts_journal()

    company.reverse_cash_receipt("PM1", "late failure")
    entered = invoice(company, "0100031")
    company.post_cash_receipts_journal()
    posted = invoice(company, "0100031")

    assert (entered.Balance, entered.PaymentsToday) == (Decimal("0.00"), Decimal("-450.00"))
    assert (posted.Balance, posted.PaymentsToday) == (Decimal("450.00"), Decimal("0.00"))
    assert company.get_customer("01", "ABF")["CurrentBalance"] == "1650.00"
    assert sorted(Decimal(h["CashAmountApplied"]) for h in company.rows("AR_CashReceiptsHistory")) == [
        Decimal("-450.00"),
        Decimal("450.00"),
    ]


def test_a_reversed_receipt_shows_reversed_and_reversing_twice_changes_nothing(
    company: SageCompany, make_request: MakeRequest
) -> None:
    company.create_cash_receipt(make_request("PM1"))
    company.post_cash_receipts_journal()
    company.reverse_cash_receipt("PM1", "refund")
    tables = {t: company.rows(t) for t in ("AR_OpenInvoice", "AR_CashReceiptsHeader", "AR_CashReceiptsDetail")}

    again = company.reverse_cash_receipt("PM1", "refund")

    assert again.status == "reversed" and company.find_cash_receipt("PM1").status == "reversed"
    assert {t: company.rows(t) for t in tables} == tables


def test_reversing_an_unposted_receipt_twice_changes_nothing_the_second_time(
    company: SageCompany, make_request: MakeRequest
) -> None:
    company.create_cash_receipt(make_request("PM1"))
    company.reverse_cash_receipt("PM1", "refund")
    invoices = company.rows("AR_OpenInvoice")

    again = company.reverse_cash_receipt("PM1", "refund")

    assert again.status == "reversed" and company.rows("AR_OpenInvoice") == invoices


# --- older company files -----------------------------------------------------------------------------------------


def test_a_company_file_from_before_balances_moved_at_the_journal_update_is_brought_up_to_date(
    company: SageCompany, make_request: MakeRequest
) -> None:
    company.create_cash_receipt(make_request("PM1"))
    with sqlite3.connect(company.path) as db:  # what version 1 left: Balance lowered at entry, no owners
        db.execute("UPDATE AR_OpenInvoice SET Balance = '0.00' WHERE InvoiceNo = '0100031'")
        db.execute("UPDATE AR_Customer SET CurrentBalance = '1200.00' WHERE CustomerNo = 'ABF'")
        db.execute("DELETE FROM ML_DepositOwner")
        db.execute("UPDATE ML_Meta SET Value = '1' WHERE Name = 'schema_version'")

    reopened = SageCompany(company.path)
    reopened.post_cash_receipts_journal()

    assert invoice(reopened, "0100031").Balance == Decimal("0.00")
    assert reopened.get_customer("01", "ABF")["CurrentBalance"] == "1200.00"


def company_with(tmp_path: Path, scenario: Scenario, inactive: str = "", **options: bool) -> SageCompany:
    """The bundled company with some company.json settings, and customer `inactive` (if any) inactive."""
    customers = tuple(
        replace(c, CustomerStatus="I") if c.CustomerNo == inactive else c for c in scenario.sage_customers
    )
    company = replace(scenario.company, settings={**scenario.company.settings, **options})
    return SageCompany.create(tmp_path / "options.sqlite", replace(scenario, company=company, sage_customers=customers))
