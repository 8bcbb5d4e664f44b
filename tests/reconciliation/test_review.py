"""Operators resolve held payments from the CLI: apply, retry after fixing data, dismiss, reverse.

Each action is audited with who, and posts through the same idempotent path as automation.
"""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import dagster as dg
import httpx
import pytest
from click.testing import CliRunner

from ml_connector_dagster.cli import main

from support.played_month import World

pytestmark = pytest.mark.slow  # the played month, end to end


def cli(*args: str):
    return CliRunner().invoke(main, list(args))


def item_for(world: World, payment_id: str, kind: str = "held") -> int:
    return next(i.id for i in world.store.review.list() if i.subject == payment_id and i.kind == kind)


@pytest.fixture(scope="module", autouse=True)
def played(world: World) -> None:
    world.play()


def test_review_list_shows_open_items_with_reasons(world: World) -> None:
    items = json.loads(cli("review", "list", "--json").output)

    reasons = {i["payment"]: i["reason"] for i in items}
    assert reasons["PM0004"] == "ambiguous_match"
    assert reasons["PM0008"] == "customer_not_found"


def test_review_show_explains_the_item_and_its_audit_trail(world: World) -> None:
    result = cli("review", "show", str(item_for(world, "PM0004")))

    assert result.exit_code == 0
    assert "ambiguous_match" in result.output and "payment.held" in result.output


def test_apply_posts_a_held_payment_to_the_chosen_invoice(world: World) -> None:
    item = item_for(world, "PM0004")

    result = cli("review", "apply", str(item), "--invoice", "100041", "--by", "alice")

    assert result.exit_code == 0, result.output
    assert world.store.ledger.get("PM0004").status == "posted"
    assert world.open_amount("0100041") == Decimal("0.00")  # entered: PaymentsToday up, Balance at the journal
    assert world.open_amount("0100040") == Decimal("300.00")
    assert world.store.review.get(item).status == "applied"
    assert ("alice", "review.apply") in [(r.actor, r.action) for r in world.store.audit.list(subject="PM0004")]


def test_apply_refuses_allocations_that_do_not_add_up(world: World) -> None:
    item = item_for(world, "PM0010")  # 500.00 against GRANT

    result = cli("review", "apply", str(item), "--invoice", "0100070:100.00")

    assert result.exit_code == 1
    assert "add up to" in result.output or "balance" in result.output
    assert world.store.ledger.get("PM0010").status == "held"


@pytest.mark.parametrize("amount", ["-5", "0", "0.00"])
def test_apply_refuses_an_amount_that_is_not_more_than_zero_before_anything_runs(world: World, amount: str) -> None:
    item = item_for(world, "PM0010")
    trail = len(world.store.audit.list(subject="PM0010"))

    result = cli("review", "apply", str(item), "--invoice", f"0100070:{amount}")

    assert result.exit_code == 2, result.output  # a usage error, as click reports bad input
    assert "must be more than 0" in result.output and "Traceback" not in result.output
    assert world.store.ledger.get("PM0010").status == "held"
    assert len(world.store.audit.list(subject="PM0010")) == trail  # nothing was tried


@pytest.mark.parametrize("amount", ["\u0661\u0660", "1e3"])
def test_apply_refuses_an_amount_not_written_with_the_digits_0_to_9(world: World, amount: str) -> None:
    result = cli("review", "apply", str(item_for(world, "PM0010")), "--invoice", f"0100070:{amount}")

    assert result.exit_code == 2, result.output
    assert "digits 0-9" in result.output and "Traceback" not in result.output


def test_the_apply_job_refuses_an_amount_that_is_not_more_than_zero_without_retrying(world: World) -> None:
    item = item_for(world, "PM0010")
    job = world.driver.defs.resolve_job_def("review_apply")

    result = job.execute_in_process(
        instance=world.driver.instance,
        raise_on_error=False,
        run_config={
            "ops": {"review_apply_op": {"config": {"item_id": item, "invoices": ["0100070:-5"], "operator": "erin"}}}
        },
    )

    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert not result.success
    assert "must be more than 0" in failure.step_failure_data.user_failure_data.description
    assert not [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_UP_FOR_RETRY]
    assert world.store.ledger.get("PM0010").status == "held"


def test_retry_posts_after_the_data_is_fixed_in_sage_and_gocardless(world: World) -> None:
    item = item_for(world, "PM0009")  # 100.00 from CU0006, whose email matches no Sage customer
    world.stack.sage.company.add_invoice(
        "01", "GRANT", "0100090", "IN", date(2026, 11, 1), date(2026, 11, 30), Decimal("100.00")
    )
    httpx.put(
        f"{world.stack.gocardless.url}/customers/CU0006",
        json={"customers": {"metadata": {"sage_customer": "01-GRANT"}}},
        headers={"Authorization": "Bearer sandbox_token", "GoCardless-Version": "2015-07-06"},
    ).raise_for_status()

    result = cli("review", "retry", str(item), "--by", "bob")

    assert result.exit_code == 0, result.output
    entry = world.store.ledger.get("PM0009")
    assert (entry.status, entry.sage_customer) == ("posted", "01-GRANT")
    assert [a["invoice_no"] for a in entry.allocations] == ["0100090"]


def test_retry_without_a_fix_keeps_the_payment_held(world: World) -> None:
    item = item_for(world, "PM0011")

    result = cli("review", "retry", str(item))

    assert result.exit_code == 1
    assert world.store.ledger.get("PM0011").status == "held"
    assert world.store.review.list() and item_for(world, "PM0011") != item  # a fresh item with the reason


def test_dismiss_closes_the_item_with_a_note_and_who(world: World) -> None:
    item = item_for(world, "PM0008")

    result = cli("review", "dismiss", str(item), "--note", "customer paid twice; refund arranged", "--by", "carol")

    closed = world.store.review.get(item)
    assert result.exit_code == 0
    assert (closed.status, closed.resolved_by, closed.note) == (
        "dismissed",
        "carol",
        "customer paid twice; refund arranged",
    )


def test_an_action_on_a_closed_item_is_refused_with_a_reason(world: World) -> None:
    item = item_for(world, "PM0003")
    cli("review", "dismiss", str(item), "--note", "duplicate")

    result = cli("review", "dismiss", str(item), "--note", "again")

    assert result.exit_code == 1
    assert "already dismissed" in result.output


def test_reverse_writes_the_reversal_to_sage(world: World) -> None:
    item = item_for(world, "PM0015", kind="reversal_required")  # charged back after posting
    open_before = world.open_amount("0200010")

    result = cli("review", "reverse", str(item), "--by", "dave")

    assert result.exit_code == 0, result.output
    assert world.store.ledger.get("PM0015").status == "reversed"
    assert open_before == Decimal("0.00") and world.open_amount("0200010") == Decimal("640.00")


def test_the_dismiss_job_does_the_same_from_the_dagster_ui(world: World) -> None:
    item = item_for(world, "PM0012")
    job = world.driver.defs.resolve_job_def("review_dismiss")

    result = job.execute_in_process(
        instance=world.driver.instance,
        run_config={
            "ops": {
                "review_dismiss_op": {"config": {"item_id": item, "note": "USD mandate closed", "operator": "erin"}}
            }
        },
    )

    assert result.success
    assert world.store.review.get(item).status == "dismissed"


def test_retry_of_a_failed_event_queues_it_again_for_the_sensor(world: World) -> None:
    world.store.inbox.add(
        [{"id": "EVBROKEN1", "resource_type": "payments", "action": "confirmed", "links": {"payment": "PM0001"}}]
    )
    seq = next(r.seq for r in world.store.inbox.due() if r.event_id == "EVBROKEN1")
    world.store.inbox.claim([seq], "a-run-that-failed")
    world.store.inbox.fail(seq, "GoCardless was down", max_attempts=1)
    item = world.store.review.open_item("EVBROKEN1", "processing_failed", "gocardless_event_failed", {})

    result = cli("review", "retry", str(item))
    world.settle()

    assert result.exit_code == 0, result.output
    assert next(r for r in world.store.inbox.list(limit=None) if r.event_id == "EVBROKEN1").status == "processed"
    assert len(world.receipts("PM0001")) == 1
