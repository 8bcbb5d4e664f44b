"""A month in which held decisions heal (the bundled healing_month), played end to end through the stand-ins and
the real Dagster definitions, with an operator dismissing one item between steps.

PM0001-PM0005 are confirmed at step 3; what heals, and at which step (Sage's changes come at the start of a step,
and the driver polls Sage and runs the inbox sensor's runs, payment_matches included, after it):
- PM0003 (CAPITAL, 250.00): no open invoice at step 3 (held amount_mismatch); the invoice 0100051 is entered in
  Sage at step 4, which matches and posts it.
- PM0002 (BRESLIN, 300.00): Sage's email has a typo (held customer_not_found); it is corrected at step 5, which
  resolves the customer, matches 0100040 and posts it.
- PM0004 (DELTA, USD 100.00 paid out in GBP, no company USD rate): pending awaiting_fx_amount from step 3;
  paid out at step 4 into a payout whose rate GoCardless confirms at step 5 (GBP 79.00), which posts it.
- PM0005 (GRANT, 150.00): no open invoice (held amount_mismatch); an operator dismisses its item after step 3;
  it is paid out at step 4 and its invoice 0100071 is entered at step 6: it stays held, its item dismissed.
PM0001 and PM0006 pay ABF's invoices as named and are posted as usual (PM0006 gives steps 5 and 6 events).
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from click.testing import CliRunner

from ml_connector_dagster.cli import main
from ml_connector_dagster.store.audit import AuditRecord

from support.played_month import World

pytestmark = pytest.mark.slow  # the played month, end to end

PAYMENTS = ("PM0002", "PM0003", "PM0004", "PM0005")
HEALED_FROM_HOLD = {"PM0002": "customer_not_found", "PM0003": "amount_mismatch"}
DISMISSED = "PM0005"
Snapshots = dict[int, dict[str, tuple[str, str | None]]]


@pytest.fixture(scope="module")
def steps(healing_world: World) -> Snapshots:
    """Play the month step by step, dismissing PM0005's item after step 3; each step's ledger (status, reason)."""
    world = healing_world
    snapshots: Snapshots = {}
    for step in range(1, world.stack.gocardless.world.status()["total_steps"] + 1):
        world.play(until=step)
        snapshots[step] = {pid: (e.status, e.reason) for pid in PAYMENTS if (e := world.store.ledger.get(pid))}
        if step == 3:
            [item] = [i for i in world.store.review.list() if i.subject == DISMISSED]
            result = CliRunner().invoke(
                main, ["review", "dismiss", str(item.id), "--note", "paid by cheque; not to post", "--by", "alice"]
            )
            assert result.exit_code == 0, result.output
    return snapshots


def decisions(world: World, pid: str) -> list[AuditRecord]:
    return [r for r in world.store.audit.list(subject=pid) if r.action.startswith("payment.")]


def notes_of(world: World, pid: str) -> str:
    return " ".join(i.note or "" for i in world.store.review.list(status=None) if i.subject == pid)


def test_each_step_heals_what_changed_in_it(steps: Snapshots) -> None:
    assert steps[3] == {
        "PM0002": ("held", "customer_not_found"),
        "PM0003": ("held", "amount_mismatch"),
        "PM0004": ("pending", "awaiting_fx_amount"),
        "PM0005": ("held", "amount_mismatch"),
    }
    assert (steps[4]["PM0003"], steps[4]["PM0002"], steps[4]["PM0004"]) == (
        ("posted", None),  # its invoice was entered
        ("held", "customer_not_found"),
        ("pending", "awaiting_fx_amount"),  # paid out; the payout's rate is not confirmed yet
    )
    assert (steps[5]["PM0002"], steps[5]["PM0004"]) == (("posted", None), ("posted", None))
    assert steps[6] == {**steps[5], "PM0005": ("held", "amount_mismatch")}
    assert max(steps) == 6


def test_the_healed_payments_are_posted_with_one_cash_receipt_each(healing_world: World, steps: Snapshots) -> None:
    for pid in ("PM0002", "PM0003", "PM0004"):
        assert healing_world.store.ledger.get(pid).status == "posted", pid
        assert len(healing_world.store.audit.list(subject=pid, action="cash_receipt.created")) == 1, pid
        assert len(healing_world.receipts(pid)) == 1, pid
    assert healing_world.open_amount("0100051") == Decimal("0.00")  # the invoice entered after its payment
    assert healing_world.store.ledger.get("PM0004").home_amount == "79.00"  # GoCardless's converted amount


def test_their_review_items_are_resolved_automatically_naming_the_change(
    healing_world: World, steps: Snapshots
) -> None:
    items = {i.subject: i for i in healing_world.store.review.list(status=None) if i.subject in HEALED_FROM_HOLD}
    assert {pid: (i.status, i.reason, i.resolved_by) for pid, i in items.items()} == {
        pid: ("resolved", reason, "dagster") for pid, reason in HEALED_FROM_HOLD.items()
    }
    notes = {pid: i.note or "" for pid, i in items.items()}
    assert all(note.startswith("resolved automatically: ") for note in notes.values()), notes
    assert "Sage invoices of 01-CAPITAL changed (0100051)" in notes["PM0003"]
    assert notes["PM0002"].startswith(
        "resolved automatically: GoCardless customer CU0002 now resolves to Sage customer 01-BRESLIN (by email)"
    )
    assert "Sage customer 01-BRESLIN's record changed" in notes["PM0002"]
    assert [i for i in healing_world.store.review.list(status=None) if i.subject == "PM0004"] == []  # waited, unheld


def test_the_audit_trail_holds_both_decisions(healing_world: World, steps: Snapshots) -> None:
    for pid, reason in HEALED_FROM_HOLD.items():
        trail = [(r.action, r.details.get("reason")) for r in decisions(healing_world, pid)]
        assert trail[-2:] == [("payment.held", reason), ("payment.matched", None)], (pid, trail)
        again = decisions(healing_world, pid)[-1].details["decided_again"]
        assert (again["previous_status"], again["previous_reason"]) == ("held", reason)
        assert again["change"] in notes_of(healing_world, pid)
    fx = decisions(healing_world, "PM0004")
    waited = [r for r in fx if r.action == "payment.pending" and r.details.get("cause") == "awaiting_fx_amount"]
    assert len(waited) == 1 and "converted amount in GBP" in waited[0].details["waits_for"][0]
    matched = fx[-1]
    assert matched.action == "payment.matched"
    assert (matched.details["decided_again"]["previous_reason"], matched.details["home_amount"]) == (
        "awaiting_fx_amount",
        "79.00",
    )
    assert "converted amount 7900 GBP" in matched.details["decided_again"]["change"]


def test_the_dismissed_item_stays_dismissed_whatever_changes(healing_world: World, steps: Snapshots) -> None:
    assert healing_world.store.ledger.get(DISMISSED).status == "held"
    items = [i for i in healing_world.store.review.list(status=None) if i.subject == DISMISSED]
    assert [(i.status, i.resolved_by) for i in items] == [("dismissed", "alice")]
    assert healing_world.store.audit.list(subject=DISMISSED, action="cash_receipt.created") == []
    assert healing_world.receipts(DISMISSED) == []
    assert healing_world.open_amount("0100071") == Decimal("150.00")  # the invoice that arrived stays open
    left = [r.details for r in healing_world.store.audit.list(subject=DISMISSED, action="payment.unchanged")]
    # looked at again twice, and left to alice: when it was paid out (step 4) and when its invoice came (step 6)
    assert [d["left_to"] for d in left] == ["dismissed by alice"] * 2
