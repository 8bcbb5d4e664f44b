"""From a signed webhook to a cash receipt in Sage, over real HTTP and SOAP, through the real Dagster definitions.

The 'small' scenario: ABF's PM0001 names invoice 0100030 (1200.00) in its reference; PM0004 ties two
300.00 invoices (on_tie = hold); PM0008 and PM0009 have no resolvable customer; PM0015 is charged
back after posting; PM0005 is partly refunded.
"""

from __future__ import annotations

import json
from decimal import Decimal

import dagster as dg
import httpx
import pytest
from click.testing import CliRunner

from ml_connector_dagster import warehouse
from ml_connector_dagster.cli import main
from ml_connector_dagster.gocardless.webhooks import sign

from support.played_month import World

pytestmark = pytest.mark.slow  # the played month, end to end


def cli(*args: str):
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_a_confirmed_payment_becomes_an_unposted_cash_receipt_applied_to_the_invoice(world: World) -> None:
    before = world.invoice("0100030")

    world.play(until=3)  # created, submitted, confirmed

    entry = world.store.ledger.get("PM0001")
    receipts = world.receipts("PM0001")
    after = world.invoice("0100030")
    assert (before["Balance"], before["PaymentsToday"]) == ("1200.00", "0.00")
    assert entry.status == "posted" and entry.receipt["receipt_id"]
    assert [Decimal(r["PostingAmt"]) for r in receipts] == [Decimal("1200.00")]
    assert (after["Balance"], after["PaymentsToday"]) == ("1200.00", "1200.00")  # until the journal update


def test_replaying_every_webhook_three_times_creates_no_second_receipt(world: World) -> None:
    world.play()
    posted_before = {e.payment_id: e.receipt for e in world.store.ledger.list(status="posted")}
    events = list(world.stack.gocardless.world.events.values())
    assert events, "the scenario produced events"

    for attempt in range(3):
        for start in range(0, len(events), 25):
            body = json.dumps(
                {"events": events[start : start + 25], "meta": {"webhook_id": f"WBREPLAY{attempt}{start}"}}
            )
            answer = httpx.post(
                world.stack.webhook_url,
                content=body,
                headers={
                    "Webhook-Signature": sign(body.encode(), "sandbox_webhook_secret"),
                    "Content-Type": "application/json",
                },
            )
            assert answer.status_code == 204
    world.settle()

    headers = world.stack.sage.company.rows("AR_CashReceiptsHeader")
    keys = [h["UDF_GC_PAYMENT_ID"] for h in headers]
    assert len(keys) == len(set(keys)), f"{len(keys)} receipts for {len(set(keys))} payments"
    assert {e.payment_id: e.receipt for e in world.store.ledger.list(status="posted")} == posted_before


def test_every_payment_ends_in_the_status_the_spec_predicts(world: World) -> None:
    world.play()

    statuses = {e.payment_id: (e.status, e.reason) for e in world.store.ledger.list()}

    assert statuses["PM0001"] == ("posted", None)
    assert statuses["PM0002"] == ("posted", None)  # partial payment of a named invoice
    assert statuses["PM0003"] == ("held", "invoice_already_collected")
    assert statuses["PM0004"] == ("held", "ambiguous_match")  # two 300.00 invoices, on_tie = hold
    assert statuses["PM0005"] == ("reversal_required", "refund")
    assert statuses["PM0006"] == ("posted", None)  # EUR via the payment's fx fields
    assert statuses["PM0007"] == ("posted", None)  # EUR via the company's rate
    assert statuses["PM0010"] == ("held", "amount_mismatch")
    assert statuses["PM0011"] == ("held", "invoice_not_found")
    assert statuses["PM0012"] == ("held", "currency_unsupported")
    assert statuses["PM0013"] == ("not_collected", "failed")
    assert statuses["PM0015"][0] in ("reversal_required", "reversed")
    assert statuses["PM0016"][0] in ("reversal_required", "reversed")


def test_customer_metadata_is_written_back_to_gocardless_for_email_matches(world: World) -> None:
    world.play()

    customer = httpx.get(
        f"{world.stack.gocardless.url}/customers/CU0002",
        headers={"Authorization": "Bearer sandbox_token", "GoCardless-Version": "2015-07-06"},
    ).json()

    assert customer["customers"]["metadata"]["sage_customer"] == "01-BRESLIN"


def test_payouts_show_their_payments_and_add_up(world: World) -> None:
    world.play()
    world.driver.materialize([dg.AssetKey(["reconciliation", "payouts"])])

    with warehouse.connect(world.stack.home / "warehouse.duckdb", read_only=True) as conn:
        rows = conn.execute("SELECT payout_id, items_add_up, payments, posted FROM payout_reconciliation").fetchall()

    assert rows and all(add_up for _, add_up, _, _ in rows)
    assert "PM0001" in [p for _, _, payments, _ in rows for p in payments]


def test_payouts_command_names_each_posted_payment_s_receipt_and_deposit(world: World) -> None:
    world.play()

    data = json.loads(cli("payouts", "--json").output)

    posted = {p["payment"]: p for payout in data for p in payout["posted"]}
    receipt = json.loads(cli("payments", "--json").output)
    pm0001 = next(p for p in receipt if p["id"] == "PM0001")["receipt"]
    assert (posted["PM0001"]["receipt_id"], posted["PM0001"]["deposit_no"]) == (
        pm0001["receipt_id"],
        pm0001["deposit_no"],
    )
    assert all(payout["items_add_up"] for payout in data)


def test_the_audit_trail_records_the_flow_and_verifies(world: World) -> None:
    world.play()

    actions = [r["action"] for r in json.loads(cli("audit", "--payment", "PM0001", "--json").output)]
    verified = cli("audit", "verify")

    assert {"payment.fetched", "payment.matched", "cash_receipt.requested", "cash_receipt.created"} <= set(actions)
    assert verified.exit_code == 0


def test_payments_command_lists_statuses_reasons_and_receipts(world: World) -> None:
    world.play()

    data = {p["id"]: p for p in json.loads(cli("payments", "--json").output)}

    assert data["PM0001"]["allocations"] == [{"invoice": "0100030", "amount": "1200.00"}]
    assert data["PM0001"]["receipt"]["receipt_id"]
    assert data["PM0011"]["reason"] == "invoice_not_found"


def test_no_secret_is_written_to_any_file_log_or_run_record(world: World) -> None:
    world.play()
    secrets = {
        "sage password": world.stack.sage.password,
        "GoCardless token": "sandbox_token",
        "webhook secret": "sandbox_webhook_secret",
    }
    roots = [world.stack.home, world.stack.home.parent / "dagster"]

    leaks = [
        (name, path)
        for root in roots
        for path in root.rglob("*")
        if path.is_file()
        for name, value in secrets.items()
        if value.encode() in path.read_bytes()
    ]

    assert world.driver.runs, "Dagster runs happened and wrote their event logs"
    assert leaks == []
