"""The BOI backend after an interrupted write: the receipt is found wherever Sage keeps it, never written twice.

A write is interrupted when the agent stops (or COM fails) after Sage may have stored the receipt but
before the agent's ledger recorded it. The retry must look in the unposted entries and, because the Cash
Receipts Journal update may have run in between, in posted history too.
"""

from __future__ import annotations

from ml_connector_dagster.agent import BOIBackend
from ml_connector_dagster.sage100.model import CashReceiptRequest, Credentials

from support.boi_fake import DEPOSITS, HISTORY, PAYMENT_HISTORY, RECEIPTS, FakeSage
from support.sage import MakeRequest


class ComError(Exception):
    """What pywin32 raises when a COM call fails on the way back (e.g. the RPC server went away)."""


def interrupted_write(backend: BOIBackend, sage: FakeSage, request: CashReceiptRequest) -> str:
    """The agent recorded its intent and Sage stored the receipt; then the agent stopped. Returns the check number."""
    check_no = backend.ledger.claim(request)
    sage.tables[DEPOSITS] = [
        {"DepositNo$": "00007", "BankCode$": "A", "DepositDate$": "20261125", "CashDepositAmt": float(request.amount)}
    ]
    sage.tables[RECEIPTS] = [
        {
            "DepositNo$": "00007",
            "ARDivisionNo$": "01",
            "CustomerNo$": "ABF",
            "CheckNo$": check_no,
            "PostingAmt": float(request.amount),
            "Comment$": request.idempotency_key,
            "lines": [
                {"InvoiceNo$": line.invoice_no, "InvoiceType$": line.invoice_type, "AmountPosted": line.amount}
                for line in request.lines
            ],
        }
    ]
    return check_no


def receipt_writes(sage: FakeSage) -> int:
    return sage.methods(RECEIPTS).count("nWrite")


def test_an_interrupted_write_posted_by_the_journal_is_found_in_history_not_written_again(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest
) -> None:
    check_no = interrupted_write(backend, sage, make_request("PM1"))
    sage.update_journal()

    receipt = backend.create_cash_receipt(creds, make_request("PM1"))

    assert receipt_writes(sage) == 0 and sage.tables[RECEIPTS] == []
    assert (receipt.deposit_no, receipt.check_no, receipt.status, receipt.created) == (
        "00007",
        check_no,
        "posted",
        False,
    )


def test_find_returns_an_interrupted_write_that_the_journal_has_posted(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest
) -> None:
    check_no = interrupted_write(backend, sage, make_request("PM1"))
    sage.update_journal()

    found = backend.find_cash_receipt(creds, "PM1")

    assert found is not None and (found.check_no, found.status) == (check_no, "posted")


def test_find_returns_an_interrupted_write_still_in_entry(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest
) -> None:
    check_no = interrupted_write(backend, sage, make_request("PM1"))

    found = backend.find_cash_receipt(creds, "PM1")

    assert found is not None and (found.deposit_no, found.check_no, found.status) == ("00007", check_no, "entered")


def test_a_posted_receipt_is_found_by_the_key_as_payment_reference_when_its_cash_history_is_purged(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest
) -> None:
    interrupted_write(backend, sage, make_request("PM1"))
    sage.update_journal()
    sage.tables[HISTORY] = []
    for row in sage.tables[PAYMENT_HISTORY]:
        row.update({"CheckNo$": "0000004711", "PaymentReference$": "PM1"})

    receipt = backend.create_cash_receipt(creds, make_request("PM1"))

    assert receipt_writes(sage) == 0 and receipt.status == "posted"


def test_a_com_error_as_the_header_write_returns_leaves_the_key_to_be_recovered_not_written_again(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest
) -> None:
    def write_then_fail(obj, *args):
        obj._default("nWrite", args)  # Sage stored the receipt ...
        raise ComError("The RPC server is unavailable.")  # ... and the answer was lost on the way back

    sage.answers[(RECEIPTS, "nWrite")] = write_then_fail
    try:
        backend.create_cash_receipt(creds, make_request("PM1"))
    except ComError:
        pass
    del sage.answers[(RECEIPTS, "nWrite")]
    sage.update_journal()

    receipt = backend.create_cash_receipt(creds, make_request("PM1"))

    assert receipt_writes(sage) == 1 and len(sage.tables[HISTORY]) == 1
    assert (receipt.check_no, receipt.status) == ("GC00000001", "posted")


def test_an_interrupted_write_that_never_reached_sage_is_written_by_the_retry(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest
) -> None:
    backend.ledger.claim(make_request("PM1"))  # the agent stopped before writing anything to Sage

    receipt = backend.create_cash_receipt(creds, make_request("PM1"))

    assert receipt.created and receipt_writes(sage) == 1 and len(sage.tables[RECEIPTS]) == 1
