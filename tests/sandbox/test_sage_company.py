"""The simulated Sage 100 company: Sage's tables, change stamps and cash receipt rules."""

from __future__ import annotations

import re
import threading
from decimal import Decimal

import pytest

from ml_connector_dagster.sage100.model import (
    FAULT_COMPANY,
    FAULT_LOGON,
    FAULT_NOT_ON_FILE,
    FAULT_OUT_OF_BALANCE,
    FAULT_OVER_APPLIED,
    LOGON_FAILURE_TEXT,
    Credentials,
    SageRuleError,
)
from ml_connector_dagster.sandbox.sage_company import SageCompany

from support.sage import MakeRequest


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


def test_a_receipt_lowers_invoice_and_customer_balances_and_restamps_them(
    company: SageCompany, make_request: MakeRequest
) -> None:
    before = invoice(company, "0100030")

    company.create_cash_receipt(make_request(lines=(("0100030", "200.00"),)))

    after = invoice(company, "0100030")
    assert after.Balance == Decimal("1000.00")
    assert after.stamp > before.stamp
    customer = company.get_customer("01", "ABF")
    assert (customer["CurrentBalance"], customer["LastPaymentAmt"]) == ("1450.00", "200.00")


def test_receipts_for_one_date_and_bank_share_one_deposit(company: SageCompany, make_request: MakeRequest) -> None:
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


def test_an_invoice_cannot_be_paid_beyond_its_balance(company: SageCompany, make_request: MakeRequest) -> None:
    with pytest.raises(SageRuleError) as caught:
        company.create_cash_receipt(make_request(lines=(("0100031", "300.00"), ("0100031", "200.00"))))

    assert caught.value.code == FAULT_OVER_APPLIED
    assert "0100031" in caught.value.message and "exceeds its balance of 450.00" in caught.value.message
    assert entry_counts(company) == (0, 0, 0)


def test_a_collected_invoice_cannot_be_paid_again(company: SageCompany, make_request: MakeRequest) -> None:
    with pytest.raises(SageRuleError, match=re.escape("exceeds its balance of 0.00")):
        company.create_cash_receipt(make_request(lines=(("0100020", "10.00"),)))


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


# --- reversal and posting ----------------------------------------------------------------------------------------


def test_reversing_an_unposted_receipt_removes_the_entry_and_restores_balances(
    company: SageCompany, make_request: MakeRequest
) -> None:
    company.create_cash_receipt(make_request("PM1"))

    reversed_ = company.reverse_cash_receipt("PM1", "charged back")

    assert (reversed_.status, reversed_.reversal_reason) == ("reversed", "charged back")
    assert entry_counts(company) == (0, 0, 0)
    assert invoice(company, "0100031").Balance == Decimal("450.00")
    assert company.get_customer("01", "ABF")["CurrentBalance"] == "1650.00"


def test_reversing_twice_changes_nothing_the_second_time(company: SageCompany, make_request: MakeRequest) -> None:
    company.create_cash_receipt(make_request("PM1"))
    company.reverse_cash_receipt("PM1", "refund")
    invoices = company.rows("AR_OpenInvoice")

    again = company.reverse_cash_receipt("PM1", "refund")

    assert again.status == "reversed" and company.rows("AR_OpenInvoice") == invoices


def test_posting_the_journal_moves_entries_to_history_and_a_reversal_offsets_them(
    company: SageCompany, make_request: MakeRequest
) -> None:
    company.create_cash_receipt(make_request("PM1", lines=(("0100030", "200.00"), ("0100031", "450.00"))))

    posted_lines = company.post_cash_receipts_journal()
    company.reverse_cash_receipt("PM1", "late failure")

    history = company.rows("AR_CashReceiptsHistory")
    assert posted_lines == 2 and entry_counts(company) == (0, 0, 0)
    assert sorted(Decimal(h["CashAmountApplied"]) for h in history) == [
        Decimal(v) for v in ("-450.00", "-200.00", "200.00", "450.00")
    ]
    assert invoice(company, "0100030").Balance == Decimal("1200.00")
    assert company.find_cash_receipt("PM1").status == "reversed"


def test_find_returns_posted_receipts_with_their_lines(company: SageCompany, make_request: MakeRequest) -> None:
    written = company.create_cash_receipt(make_request("PM1"))
    company.post_cash_receipts_journal()

    found = company.find_cash_receipt("PM1")

    assert found.status == "posted" and found.lines == written.lines and found.amount == Decimal("450.00")
