"""A month in which people work in Sage too (the bundled busy_month), played end to end through the stand-ins and
the real Dagster definitions.

People key receipts in their own deposits (BRESLIN's 0100041 at step 2, CAPITAL's 0100050 at step 4 and
0100051 at step 6; BRESLIN's 0100040 starts with 100.00 keyed), add a customer and an invoice (NEWCO,
0100090), and run the Cash Receipts Journal update at steps 5 and 8. PM0002 and PM0003 both pay ABF's
0100031 (450.00) and are confirmed at step 3, before any journal update. IVORY is inactive.

What Sage does is asserted here, and what a person would predict the product to decide from the rules, counting
what unposted receipts already took.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from ml_connector_dagster import warehouse
from ml_connector_dagster.settings import load_settings

from support.played_month import World

pytestmark = pytest.mark.slow  # the played month, end to end


def warehouse_invoice(world: World, invoice_no: str) -> tuple[Decimal, Decimal]:
    with warehouse.connect(load_settings(world.stack.env).warehouse_path, read_only=True) as conn:
        row = conn.execute(
            "SELECT Balance, PaymentsToday FROM sage_ar_invoices WHERE InvoiceNo = ?", [invoice_no]
        ).fetchone()
    return (Decimal(row[0]), Decimal(row[1]))


def test_settling_a_step_polls_sage_so_the_warehouse_sees_what_people_did(busy_world: World) -> None:
    busy_world.play(until=2)  # step 2: a person keys 300.00 against 0100041; NEWCO and its invoice are added

    assert warehouse_invoice(busy_world, "0100041") == (Decimal("300.00"), Decimal("300.00"))
    assert warehouse_invoice(busy_world, "0100090") == (Decimal("300.00"), Decimal("0.00"))


def test_the_mid_month_journal_update_reaches_the_warehouse_as_lower_balances(busy_world: World) -> None:
    busy_world.play(until=5)  # step 5 starts with the journal update

    assert warehouse_invoice(busy_world, "0100050") == (Decimal("300.00"), Decimal("0.00"))  # a person's 200.00
    assert warehouse_invoice(busy_world, "0100030") == (Decimal("0.00"), Decimal("0.00"))  # PM0001's 1200.00


def test_two_payments_for_one_invoice_before_a_journal_update_are_never_both_applied(busy_world: World) -> None:
    busy_world.play()

    statuses = sorted(busy_world.store.ledger.get(pid).status for pid in ("PM0002", "PM0003"))
    written = [r["IdempotencyKey"] for r in busy_world.stack.sage.company.rows("ML_Idempotency")]
    assert statuses == ["held", "posted"]
    assert len({"PM0002", "PM0003"} & set(written)) == 1
    assert busy_world.invoice("0100031")["Balance"] == "0.00"


def test_no_invoice_is_paid_beyond_its_balance_by_people_and_the_product_together(busy_world: World) -> None:
    busy_world.play()

    invoices = busy_world.stack.sage.company.rows("AR_OpenInvoice")
    assert all(Decimal(i["Balance"]) >= 0 for i in invoices), [(i["InvoiceNo"], i["Balance"]) for i in invoices]
    assert all(i["PaymentsToday"] == "0.00" for i in invoices)  # the last journal update posted everything


def test_the_journal_updates_post_peoples_receipts_and_the_products_in_deposits_of_their_own(
    busy_world: World,
) -> None:
    busy_world.play()

    history = busy_world.stack.sage.company.rows("AR_CashReceiptsHistory")
    checks_by_deposit: dict[str, set[bool]] = {}
    for line in history:
        checks_by_deposit.setdefault(line["DepositNo"], set()).add(line["CheckNo"].startswith("GC"))
    assert {"OPEN000001", "5521", "7781", "7790"} <= {line["CheckNo"] for line in history}
    assert all(len(kinds) == 1 for kinds in checks_by_deposit.values()), checks_by_deposit


def test_an_inactive_customers_payment_is_posted_and_sages_warning_is_audited(busy_world: World) -> None:
    busy_world.play()

    [created] = busy_world.store.audit.list(subject="PM0007", action="cash_receipt.created")
    assert busy_world.store.ledger.get("PM0007").status == "posted"
    assert created.details["warnings"] == ["Customer 01-IVORY is inactive."]


def test_each_hold_has_the_reason_a_person_would_predict_from_the_open_amounts(busy_world: World) -> None:
    busy_world.play()

    outcome = {p: (e.status, e.reason) for p in ("PM0003", "PM0004", "PM0005") if (e := busy_world.store.ledger.get(p))}
    assert outcome == {
        "PM0003": ("held", "invoice_already_collected"),  # 0100031 taken by PM0002, not yet posted
        "PM0004": ("held", "amount_mismatch"),  # 300.00; 0100040 has 200.00 open (100.00 keyed before the month)
        "PM0005": ("held", "amount_mismatch"),  # 250.00; CAPITAL's 0100051 paid by a person earlier that step
    }


def test_a_hold_audit_record_names_the_unposted_amounts_that_took_the_invoice(busy_world: World) -> None:
    busy_world.play()

    held = [r for r in busy_world.store.audit.list(subject="PM0003") if r.action == "payment.held"]
    unposted = {u["invoice_no"]: u for u in held[0].details["unposted"]}
    assert unposted["0100031"]["open_amount"] == "0.00"
    assert [o["payment_id"] for o in unposted["0100031"]["ours"]] == ["PM0002"]
