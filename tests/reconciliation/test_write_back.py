"""The write-back's exactly-once guarantees, over real SOAP to the agent and a real SQLite store.

Each test starts from a generated company whose confirmed payments are matched and wait for the
write-back (see `make_write_back`); payment PMB00000n pays invoice 000000(n+1) of customer 01-B00000n.
"""

from __future__ import annotations

import dataclasses
import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from decimal import Decimal

import dagster as dg
import pytest
from click.testing import CliRunner

from ml_connector_dagster import warehouse
from ml_connector_dagster.cli import main
from ml_connector_dagster.defs.resources import settings_resource, store_resource, warehouse_resource
from ml_connector_dagster.defs.sage100 import SageAgentResource
from ml_connector_dagster.defs.write_back import cash_receipts
from ml_connector_dagster.reconciliation.write_back import MAX_UNREACHABLE, post_matched
from ml_connector_dagster.sage100 import AgentClient, ReceiptLine
from ml_connector_dagster.secrets import Secret
from ml_connector_dagster.store.utc import utcnow

from support.played_month import WriteBack

pytestmark = pytest.mark.slow  # the whole stack and Dagster runs for every test


def test_two_concurrent_passes_write_each_receipt_once_and_never_work_on_one_payment_together(make_write_back) -> None:
    wb: WriteBack = make_write_back(payments=6)
    ids = wb.ids(6)
    for pid in ids:  # each left `posting` by a run whose write's outcome is unknown: free for the next pass
        assert wb.store.ledger.transition(pid, ["matched"], status="posting")
    both_listed = threading.Barrier(2)

    def payments(payment_ids):
        both_listed.wait(30)  # both passes have listed the same payments before either claims one
        return wb.payments(payment_ids)

    passes = [
        threading.Thread(target=wb.post, kwargs={"payments": payments, "actor": actor})
        for actor in ("pass-a", "pass-b")
    ]
    for thread in passes:
        thread.start()
    for thread in passes:
        thread.join(120)

    workers = {pid: {r.actor for r in wb.store.audit.list(subject=pid)} & {"pass-a", "pass-b"} for pid in ids}
    created = Counter(r.subject for r in wb.store.audit.list(action="cash_receipt.created"))
    assert {pid: len(wb.receipts(pid)) for pid in ids} == dict.fromkeys(ids, 1)
    assert {pid: len(actors) for pid, actors in workers.items()} == dict.fromkeys(ids, 1)
    assert created == dict.fromkeys(ids, 1)
    assert wb.store.ledger.counts() == {"posted": 6}


def test_a_payment_another_pass_is_posting_is_left_alone_while_its_lease_lasts(make_write_back) -> None:
    wb: WriteBack = make_write_back(payments=2)
    busy, free = wb.ids(2)
    assert wb.store.ledger.claim(busy, "matched", "a-live-run", utcnow() + timedelta(minutes=5))

    done = wb.post(actor="this-pass")

    entry = wb.store.ledger.get(busy)
    assert (entry.status, entry.claimed_by) == ("posting", "a-live-run")
    assert wb.receipts(busy) == [] and wb.actions(busy, actor="this-pass") == []
    assert done.ids("busy") == [busy] and done.ids("posted") == [free]


def test_a_payment_whose_run_died_is_taken_over_once_its_lease_expired_and_sage_is_asked_first(make_write_back) -> None:
    wb: WriteBack = make_write_back(payments=1)
    [pid] = wb.ids(1)
    wb.died_while_posting(pid, wrote=True)
    [written] = wb.receipts(pid)

    wb.post()

    entry = wb.store.ledger.get(pid)
    assert (entry.status, entry.claimed_by, entry.lease_until) == ("posted", None, None)
    assert len(wb.receipts(pid)) == 1 and entry.receipt["check_no"] == written["CheckNo"]
    assert "cash_receipt.requested" not in wb.actions(pid)  # found, so nothing was written again


def test_an_unexpected_error_while_posting_frees_the_claim_at_once_for_the_next_pass(make_write_back) -> None:
    wb: WriteBack = make_write_back(payments=1)
    [pid] = wb.ids(1)

    def without_amount(ids):  # a row the rules cannot read: deciding the payment fails with an error nobody expects
        return {p: {k: v for k, v in row.items() if k != "amount"} for p, row in wb.payments(ids).items()}

    with pytest.raises(KeyError):
        wb.post(payments=without_amount)

    entry = wb.store.ledger.get(pid)
    assert (entry.status, entry.claimed_by, entry.lease_until) == ("matched", None, None)
    assert wb.post().ids("posted") == [pid]  # no waiting for a lease


# --- the agent is down --------------------------------------------------------------------------------------------


def test_with_the_agent_down_a_pass_stops_after_a_few_failures_and_leaves_the_rest_untouched(make_write_back) -> None:
    wb: WriteBack = make_write_back(payments=8)
    ids = wb.ids(8)
    wb.stack.sage.agent.stop()

    done = wb.post(actor="this-pass")

    tried = [pid for pid in ids if wb.actions(pid, actor="this-pass")]
    assert tried == ids[:MAX_UNREACHABLE]
    assert wb.store.ledger.statuses(ids) == dict.fromkeys(ids, "matched")  # nothing was written: all still wait
    assert [wb.actions(pid, actor="this-pass") for pid in tried] == [["cash_receipt.deferred"]] * MAX_UNREACHABLE
    assert done.stopped and done.waiting == ids[MAX_UNREACHABLE:]


def test_with_the_agent_down_the_write_back_asset_fails_to_be_retried_later(make_write_back) -> None:
    wb: WriteBack = make_write_back(payments=4)
    wb.stack.sage.agent.stop()
    resources = {
        "connector_settings": settings_resource,
        "store": store_resource,
        "warehouse": warehouse_resource,
        "sage_agent": SageAgentResource(settings=settings_resource),
    }

    with dg.build_asset_context(instance=wb.driver.instance) as context, pytest.raises(dg.Failure) as failure:
        cash_receipts(context, **resources)

    assert failure.value.allow_retries
    assert "stopped" in failure.value.description and "wait untouched" in failure.value.description
    assert wb.store.ledger.counts() == {"matched": 4}


def test_review_apply_while_the_agent_is_down_exits_1_and_keeps_the_payment_held(make_write_back) -> None:
    wb: WriteBack = make_write_back(payments=1)
    [pid] = wb.ids(1)
    wb.store.ledger.transition(pid, ["matched"], status="held", reason="ambiguous_match")
    item = wb.store.review.open_item(pid, "held", "ambiguous_match", {"payment_id": pid})
    wb.stack.sage.agent.stop()

    result = CliRunner().invoke(main, ["review", "apply", str(item), "--invoice", "0000001", "--by", "alice"])

    assert result.exit_code == 1, result.output
    assert "deferred" in result.output
    assert (wb.store.ledger.get(pid).status, wb.store.review.get(item).status) == ("held", "open")


def test_with_a_wrong_sage_password_a_pass_holds_nothing_and_stops(make_write_back) -> None:
    wb: WriteBack = make_write_back(payments=5)
    ids = wb.ids(5)
    wrong = dataclasses.replace(wb.settings.sage_agent(), password=Secret("not-the-password"))
    agent = AgentClient.from_settings(wrong)

    done = post_matched(wb.store, agent, wb.settings.reconciliation(), wb.payments)

    assert wb.store.ledger.statuses(ids) == dict.fromkeys(ids, "matched")
    assert wb.store.review.list() == []
    assert done.stopped and "Logon failure" in done.stopped


# --- a write whose outcome is unknown, then GoCardless moves on -------------------------------------------------------


def test_a_charged_back_payment_whose_receipt_sage_has_is_recorded_then_needs_a_reversal(make_write_back) -> None:
    wb: WriteBack = make_write_back(payments=1, lifecycle="confirmed charged_back")
    [pid] = wb.ids(1)
    wb.died_while_posting(pid, wrote=True)
    [written] = wb.receipts(pid)

    wb.play_and_settle()  # charged back: the webhook, the evaluation and the write-back, through Dagster

    entry = wb.store.ledger.get(pid)
    items = [i for i in wb.store.review.list() if i.subject == pid]
    actions = wb.actions(pid)
    assert (entry.status, entry.reason) == ("reversal_required", "chargeback")
    assert entry.receipt is not None and entry.receipt["check_no"] == written["CheckNo"]
    assert len(wb.receipts(pid)) == 1 and len(items) == 1
    item = items[0]
    assert (item.kind, item.details["amount_minor"], item.details["amount"]) == ("reversal_required", 10000, "100.00")
    assert actions.index("cash_receipt.created") < actions.index("payment.reversal_required")


def test_a_charged_back_payment_whose_receipt_sage_does_not_have_is_not_collected(make_write_back) -> None:
    wb: WriteBack = make_write_back(payments=1, lifecycle="confirmed charged_back")
    [pid] = wb.ids(1)
    wb.died_while_posting(pid, wrote=False)

    wb.play_and_settle()

    entry = wb.store.ledger.get(pid)
    assert (entry.status, entry.reason, entry.receipt) == ("not_collected", "charged_back", None)
    assert wb.receipts(pid) == []
    assert [i.kind for i in wb.store.review.list() if i.subject == pid] == []


def test_a_paid_refund_of_a_payment_whose_write_was_unknown_needs_a_reversal_once_its_receipt_is_recorded(
    make_write_back,
) -> None:
    wb: WriteBack = make_write_back(payments=1, refunds=["RF1,PMB000000,4000,paid"])
    [pid] = wb.ids(1)
    wb.died_while_posting(pid, wrote=True)

    wb.play_and_settle()  # the refund is paid to the customer

    entry = wb.store.ledger.get(pid)
    [item] = [i for i in wb.store.review.list() if i.subject == pid]
    assert (entry.status, entry.reason) == ("reversal_required", "refund")
    assert entry.receipt is not None and len(wb.receipts(pid)) == 1
    assert (item.details["amount_minor"], item.details["refund_ids"]) == (4000, ["RF1"])


def test_a_refund_paid_before_the_receipt_is_written_needs_a_reversal_once_it_is(make_write_back) -> None:
    wb: WriteBack = make_write_back(payments=1, refunds=["RF1,PMB000000,4000,paid"])
    [pid] = wb.ids(1)
    wb.step()  # the refund is paid and evaluated while the payment still waits for the write-back

    wb.post()

    entry = wb.store.ledger.get(pid)
    assert (entry.status, entry.reason) == ("reversal_required", "refund") and len(wb.receipts(pid)) == 1


# --- what Sage returns is compared with what was asked ----------------------------------------------------------------


@pytest.mark.parametrize("other", ["customer", "amount"])
def test_a_receipt_in_sage_under_the_payments_key_that_differs_from_the_request_holds_the_payment(
    make_write_back, other: str
) -> None:
    wb: WriteBack = make_write_back(payments=2)
    pid = wb.ids(1)[0]
    differs = {
        "customer": {"customer_no": "B000001", "lines": (ReceiptLine("0000002", "IN", Decimal("100.00")),)},
        "amount": {"amount": Decimal("60.00"), "lines": (ReceiptLine("0000001", "IN", Decimal("60.00")),)},
    }[other]
    wb.agent().create_cash_receipt(wb.request(pid, **differs))  # someone keyed a receipt under this payment's id

    wb.post()

    entry = wb.store.ledger.get(pid)
    assert (entry.status, entry.reason) == ("held", "sage_rejected")
    [item] = [i for i in wb.store.review.list() if i.subject == pid]
    [held] = [r for r in wb.store.audit.list(subject=pid) if r.action == "payment.held"]
    assert (item.details["asked"]["customer"], item.details["asked"]["amount"]) == ("01-B000000", "100.00")
    assert item.details["sage_has"]["customer"] == f"01-{differs.get('customer_no', 'B000000')}"
    assert item.details["sage_has"]["amount"] == str(differs.get("amount", Decimal("100.00")))
    assert (held.details["asked"], held.details["sage_has"]) == (item.details["asked"], item.details["sage_has"])
    assert len(wb.receipts(pid)) == 1


def test_a_reversed_receipt_under_the_payments_key_is_not_recorded_as_its_receipt(make_write_back) -> None:
    wb: WriteBack = make_write_back(payments=1)
    [pid] = wb.ids(1)
    wb.agent().create_cash_receipt(wb.request(pid))
    wb.agent().reverse_cash_receipt(pid, "keyed by mistake")

    wb.post()

    entry = wb.store.ledger.get(pid)
    assert (entry.status, entry.reason, entry.receipt) == ("held", "sage_rejected", None)
    [item] = [i for i in wb.store.review.list() if i.subject == pid]
    assert item.details["sage_has"]["status"] == "reversed" and "reversed" in item.details["explanation"]


class AgentWithRivalWriter(AgentClient):
    """The real agent, with a rival writer that commits a receipt under the payment's key for another amount
    between our FindCashReceipt and our CreateCashReceipt (as someone keying it in Sage by hand would)."""

    rival: Callable[[], object]

    def get_open_invoices(self, ar_division_no: str, customer_no: str):
        invoices = super().get_open_invoices(ar_division_no, customer_no)
        self.rival()
        return invoices


def test_a_receipt_sage_answers_the_write_with_that_differs_from_the_request_holds_the_payment(make_write_back) -> None:
    wb: WriteBack = make_write_back(payments=1)
    [pid] = wb.ids(1)
    agent = AgentWithRivalWriter.from_settings(wb.settings.sage_agent())
    rival = wb.request(pid, amount=Decimal("60.00"), lines=(ReceiptLine("0000001", "IN", Decimal("60.00")),))
    agent.rival = lambda: wb.agent().create_cash_receipt(rival)

    post_matched(wb.store, agent, wb.settings.reconciliation(), wb.payments)

    entry = wb.store.ledger.get(pid)
    assert (entry.status, entry.reason, entry.receipt) == ("held", "sage_rejected", None)
    [item] = [i for i in wb.store.review.list() if i.subject == pid]
    assert (item.details["asked"]["amount"], item.details["sage_has"]["amount"]) == ("100.00", "60.00")
    assert len(wb.receipts(pid)) == 1


# --- a payment missing from the warehouse -----------------------------------------------------------------------------


def test_a_payment_missing_from_the_warehouse_waits_for_the_next_pass_and_the_audit_says_why(make_write_back) -> None:
    wb: WriteBack = make_write_back(payments=2)
    missing, present = wb.ids(2)
    with warehouse.connect(wb.settings.warehouse_path) as conn:
        conn.execute("DELETE FROM gocardless_payments WHERE id = ?", [missing])

    done = wb.post()

    assert (wb.store.ledger.get(missing).status, wb.store.ledger.get(missing).reason) == ("matched", None)
    [deferred] = [r for r in wb.store.audit.list(subject=missing) if r.action == "cash_receipt.deferred"]
    assert deferred.details["reason"] == "payment_not_in_warehouse" and "tries again" in deferred.details["message"]
    assert wb.store.review.open_for(missing) == [] and wb.receipts(missing) == []
    assert done.ids("posted") == [present]


def test_a_receipt_sage_warned_about_is_posted_and_the_warning_is_in_the_audit_trail(make_write_back) -> None:
    wb: WriteBack = make_write_back(payments=1)
    [pid] = wb.ids(1)
    wb.stack.sage.company.update_customer("01", "B000000", {"CustomerStatus": "I"})

    wb.post()

    [created] = wb.store.audit.list(subject=pid, action="cash_receipt.created")
    assert wb.store.ledger.get(pid).status == "posted"
    assert created.details["warnings"] == ["Customer 01-B000000 is inactive."]


def test_a_receipt_a_person_keys_between_evaluation_and_posting_is_named_in_the_holds_audit_record(
    make_write_back,
) -> None:
    wb: WriteBack = make_write_back(payments=1)
    [pid] = wb.ids(1)
    company = wb.stack.sage.company
    [invoice] = [i for i in company.open_invoices_for("01", "B000000") if i.InvoiceNo.endswith("0000001")]
    keyed = company.key_receipt(
        "01", "B000000", invoice.InvoiceNo, invoice.InvoiceType, invoice.Balance, "CHK7781", utcnow().date()
    )

    wb.post()

    entry = wb.store.ledger.get(pid)
    assert entry.status == "held" and wb.receipts(pid) == []
    [held] = wb.store.audit.list(subject=pid, action="payment.held")
    [consumed] = [u for u in held.details["unposted"] if u["invoice_no"] == invoice.InvoiceNo]
    assert consumed["open_amount"] == "0.00"
    assert consumed["entries"] == [
        {
            "deposit": keyed.deposit_no,
            "check_no": "CHK7781",
            "date": utcnow().date().isoformat(),
            "amount": str(invoice.Balance),
            "by": "person",
        }
    ]
    [item] = wb.store.review.open_for(pid)
    assert item.details["unposted"] == held.details["unposted"]
