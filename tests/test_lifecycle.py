"""The payment lifecycle table: current GoCardless status + what was done -> what to do next."""

from __future__ import annotations

import pytest

from ml_connector_dagster.lifecycle import REFUND_STATUSES, next_step, refund_meaning, refund_step


@pytest.mark.parametrize("status", ["confirmed", "paid_out"])
def test_a_collected_payment_is_matched(status: str) -> None:
    assert next_step(None, status).action == "match"


def test_under_collect_on_paid_out_a_confirmed_payment_waits() -> None:
    assert next_step(None, "confirmed", collect_on="paid_out").action == "pending"
    assert next_step("pending", "paid_out", collect_on="paid_out").action == "match"


@pytest.mark.parametrize("status", ["pending_submission", "submitted", "pending_customer_approval"])
def test_a_payment_not_collected_yet_is_pending(status: str) -> None:
    assert next_step(None, status).action == "pending"


@pytest.mark.parametrize("status", ["failed", "cancelled", "customer_approval_denied", "charged_back"])
def test_a_payment_that_fails_before_posting_is_not_collected(status: str) -> None:
    assert next_step("pending", status).action == "not_collected"


@pytest.mark.parametrize("status, cause", [("failed", "late_failure"), ("charged_back", "chargeback")])
def test_money_going_back_after_posting_requires_a_reversal(status: str, cause: str) -> None:
    assert (next_step("posted", status).action, next_step("posted", status).cause) == ("reversal_required", cause)


@pytest.mark.parametrize("status", ["failed", "charged_back", "cancelled", "paid_out"])
def test_a_payment_whose_write_is_in_flight_or_unknown_is_left_to_the_write_back(status: str) -> None:
    assert next_step("posting", status).action == "none"  # only Sage can say whether it was posted


def test_a_refund_of_a_payment_whose_write_is_unknown_is_left_to_the_write_back() -> None:
    assert refund_step("posting", "paid").action == "none"


def test_a_posted_payment_paid_out_later_needs_nothing() -> None:
    assert next_step("posted", "paid_out").action == "none"


def test_a_held_payment_is_decided_again_when_the_payment_changes() -> None:
    assert next_step("held", "paid_out").action == "match"
    assert next_step("held", "failed").action == "not_collected"


def test_a_replayed_event_changes_nothing() -> None:
    assert next_step("not_collected", "failed").action == "none"
    assert next_step("reversal_required", "charged_back", ledger_reason="chargeback").action == "none"


def test_a_refund_of_a_posted_payment_requires_a_reversal() -> None:
    assert refund_step("posted", "paid").action == "reversal_required"
    assert refund_step("held", "paid").action == "none"
    assert refund_step("posted", "failed").action == "none"


@pytest.mark.parametrize("ledger_status", [None, "matched", "not_collected"])
def test_a_payment_that_failed_with_a_retry_coming_is_pending(ledger_status: str | None) -> None:
    step = next_step(ledger_status, "failed", retry_expected=True)

    assert (step.action, step.cause) == ("pending", "retry_expected")


def test_a_pending_payment_that_failed_with_a_retry_coming_stays_pending() -> None:
    assert next_step("pending", "failed", retry_expected=True).action == "none"


def test_a_held_payment_that_failed_with_a_retry_coming_waits_for_the_retry() -> None:
    step = next_step("held", "failed", retry_expected=True)

    assert (step.action, step.cause) == ("pending", "retry_expected")


def test_a_posted_payment_that_failed_with_a_retry_coming_keeps_its_receipt_until_the_retry_ends() -> None:
    step = next_step("posted", "failed", retry_expected=True)

    assert (step.action, step.cause) == ("none", "retry_expected")


def test_a_posted_payment_whose_retries_ended_in_failure_requires_a_reversal() -> None:
    step = next_step("posted", "failed", retry_expected=False)

    assert (step.action, step.cause) == ("reversal_required", "late_failure")


@pytest.mark.parametrize(("cause", "status"), [("late_failure", "confirmed"), ("chargeback", "paid_out")])
def test_a_reversal_not_written_yet_is_restored_when_gocardless_collects_the_payment_again(
    cause: str, status: str
) -> None:
    step = next_step("reversal_required", status, ledger_reason=cause)

    assert (step.action, step.cause) == ("restore", status)


def test_a_reversal_for_a_refund_or_one_written_is_left_to_operators() -> None:
    assert next_step("reversal_required", "paid_out", ledger_reason="refund").action == "none"
    assert next_step("reversed", "paid_out", ledger_reason="late_failure").action == "none"


@pytest.mark.parametrize("status", ["confirmed", "paid_out"])
def test_a_not_collected_payment_that_is_collected_later_is_matched(status: str) -> None:
    assert next_step("not_collected", status).action == "match"


def test_a_not_collected_payment_resubmitted_by_gocardless_is_pending_again() -> None:
    assert next_step("not_collected", "pending_submission").action == "pending"


def test_the_refund_statuses_are_gocardless_s_own_list() -> None:
    assert {
        "created",
        "pending_submission",
        "submitted",
        "paid",
        "cancelled",
        "bounced",
        "funds_returned",
    } == REFUND_STATUSES


@pytest.mark.parametrize("status", ["created", "pending_submission", "submitted"])
def test_a_refund_not_sent_yet_changes_nothing(status: str) -> None:
    assert refund_step("posted", status).action == "none"


@pytest.mark.parametrize("status", ["cancelled", "bounced", "funds_returned", "refund_settled"])
def test_a_refund_whose_money_never_reached_the_customer_leaves_a_posted_payment_posted(status: str) -> None:
    assert refund_step("posted", status).action == "none"


@pytest.mark.parametrize("status", ["cancelled", "bounced", "funds_returned"])
def test_a_refund_that_came_back_restores_the_payment_whose_reversal_it_opened(status: str) -> None:
    step = refund_step("reversal_required", status, opened_reversal=True)

    assert (step.action, step.cause) == ("restore", status)


def test_a_refund_that_came_back_does_not_restore_a_reversal_another_cause_opened() -> None:
    assert refund_step("reversal_required", "funds_returned", opened_reversal=False).action == "none"


def test_a_refund_that_came_back_after_the_receipt_was_reversed_is_left_to_people() -> None:
    assert refund_step("reversed", "funds_returned", opened_reversal=True).action == "none"


@pytest.mark.parametrize("status", sorted(REFUND_STATUSES))
def test_every_refund_status_has_a_meaning_for_the_audit_trail(status: str) -> None:
    assert "not one GoCardless documents" not in refund_meaning(status)
