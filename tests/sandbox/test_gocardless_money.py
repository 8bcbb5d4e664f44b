"""The GoCardless stand-in runs money as GoCardless does: positive payouts that net debits, fees with VAT and
their refunds, chargeback surcharges, FX payouts confirmed a step later, refunds and their returned funds,
retried payments, the causes banks' reason codes mean."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import gocardless_pro
import httpx
import pytest

from ml_connector_dagster.sandbox.gocardless_api import GoCardlessStandIn, start_gocardless_stand_in
from ml_connector_dagster.sandbox.gocardless_state import GoCardlessWorld
from ml_connector_dagster.sandbox.scenario import bundled, load_scenario

from support.gocardless import FAST_RETRIES, TOKEN

HEADERS = {"Authorization": f"Bearer {TOKEN}", "GoCardless-Version": "2015-07-06"}
PAYMENTS_HEADER = (
    "id,mandate,amount,currency,charge_date,reference,description,metadata,fx_currency,fx_amount,lifecycle,start_step\n"
)
COLLECTED = "created submitted confirmed paid_out"


def scenario(tmp_path: Path, payments: list[str], refunds: list[str] = ()) -> Path:  # type: ignore[assignment]
    """The bundled small company with these payment rows (`id,mandate,amount,currency,fx_currency,fx_amount,
    lifecycle,start_step`) and refund rows (`id,payment,amount,lifecycle,start_step`)."""
    folder = tmp_path / "flows"
    shutil.copytree(bundled("small"), folder)
    lines = []
    for row in payments:
        pid, mandate, amount, currency, fx_currency, fx_amount, lifecycle, start = row.split(",")
        lines.append(
            f"{pid},{mandate},{amount},{currency},2026-11-05,REF-{pid},Test,{{}},{fx_currency},{fx_amount},"
            f"{lifecycle},{start}\n"
        )
    (folder / "gocardless_payments.csv").write_text(PAYMENTS_HEADER + "".join(lines))
    (folder / "gocardless_refunds.csv").write_text(
        "id,payment,amount,lifecycle,start_step\n" + "".join(f"{r}\n" for r in refunds)
    )
    return folder


def play(folder: Path) -> tuple[GoCardlessWorld, list[list[dict[str, Any]]]]:
    """Every step of the scenario played on a world; the events of each step."""
    world = GoCardlessWorld(load_scenario(folder), seed=7)
    steps = []
    while world.step_index < world.total_steps:
        steps.append([dict(e) for e in world.play_next_step()])
    return world, steps


def kinds(events: list[dict[str, Any]]) -> list[str]:
    return [f"{e['resource_type']}.{e['action']}" for e in events]


def items_of(world: GoCardlessWorld, payout_id: str) -> list[tuple[str, str, str | None]]:
    return [(i["type"], i["amount"], i["links"].get("payment")) for i in world.payout_items[payout_id]]


@pytest.fixture
def fx_stand_in(tmp_path: Path) -> Iterator[GoCardlessStandIn]:
    """One EUR payment converted into GBP, paid out at step 4 (the last step of the scenario)."""
    folder = scenario(tmp_path, [f"PM0001,MD0004,100000,EUR,GBP,86000,{COLLECTED},"])
    handle = start_gocardless_stand_in(folder, token=TOKEN, retry_intervals=FAST_RETRIES)
    yield handle
    handle.stop()


# -- FX ---------------------------------------------------------------------------------------------------


def test_an_fx_payout_is_pending_after_its_paid_event_and_paid_with_rate_and_amount_once_confirmed(
    fx_stand_in: GoCardlessStandIn,
) -> None:
    client = gocardless_pro.Client(access_token=TOKEN, base_url=fx_stand_in.url)
    for _ in range(4):
        paid_step = fx_stand_in.play_step()
    payout_id = next(e["links"]["payout"] for e in paid_step if e["action"] == "paid")
    pending, pending_payment = client.payouts.get(payout_id), client.payments.get("PM0001")

    confirm_step = fx_stand_in.play_step()
    paid, paid_payment = client.payouts.get(payout_id), client.payments.get("PM0001")

    assert "payouts.paid" in kinds(paid_step)
    assert (pending.status, pending.arrival_date, pending.fx.exchange_rate, pending.fx.fx_amount) == (
        "pending",
        None,
        None,
        None,
    )
    assert pending.fx.estimated_exchange_rate == "0.8600000000"
    assert (pending_payment.fx.fx_amount, pending_payment.fx.estimated_exchange_rate) == (None, "0.8600000000")
    assert kinds(confirm_step) == ["payouts.fx_rate_confirmed", "payouts.tax_exchange_rates_confirmed"]
    assert (paid.status, paid.fx.exchange_rate, paid.fx.estimated_exchange_rate) == ("paid", "0.8600000000", None)
    assert paid.fx.fx_amount == int((Decimal(paid.amount) * Decimal("0.86")).to_integral_value())
    assert paid.arrival_date is not None and paid.arrival_date >= paid.created_at[:10]
    assert (paid_payment.fx.fx_amount, paid_payment.fx.exchange_rate) == (86000, "0.8600000000")
    assert paid_payment.fx.estimated_exchange_rate is None


def test_play_goes_on_one_step_when_the_last_step_makes_an_fx_payout(fx_stand_in: GoCardlessStandIn) -> None:
    scenario_steps = len(fx_stand_in.world.scenario.steps())

    steps = [fx_stand_in.play_step() for _ in range(fx_stand_in.world.total_steps)]

    assert (scenario_steps, fx_stand_in.world.total_steps, fx_stand_in.status()["finished"]) == (4, 5, True)
    assert kinds(steps[-1]) == ["payouts.fx_rate_confirmed", "payouts.tax_exchange_rates_confirmed"]
    assert fx_stand_in.play_step() == []


def test_vat_on_fees_of_another_currency_is_converted_into_gbp_when_its_rates_are_confirmed(
    tmp_path: Path,
) -> None:
    world, steps = play(scenario(tmp_path, [f"PM0001,MD0004,50000,EUR,,,{COLLECTED},"]))

    [payout] = world.payouts.values()
    [_, fee] = world.payout_items[payout["id"]]
    assert (payout["currency"], payout["fx"]["fx_currency"], payout["status"], payout["tax_currency"]) == (
        "EUR",
        None,
        "paid",
        "GBP",
    )
    assert kinds(steps[-1]) == ["payouts.tax_exchange_rates_confirmed"]
    assert fee["taxes"] == [
        {
            "amount": "80.0",
            "currency": "EUR",
            "destination_amount": "68.8",
            "destination_currency": "GBP",
            "exchange_rate": "0.8600000000",
            "tax_rate_id": "GB_VAT_1",
        }
    ]


# -- positive payouts, fees, VAT ---------------------------------------------------------------------------


def test_no_payout_is_zero_or_negative_a_debit_carries_to_the_next_positive_payout(tmp_path: Path) -> None:
    folder = scenario(
        tmp_path,
        [
            f"PM0001,MD0001,20000,GBP,,,{COLLECTED},",
            f"PM0002,MD0002,90000,GBP,,,{COLLECTED} failed late_failure_settled,",  # paid out 4, debited 6
            f"PM0003,MD0003,10000,GBP,,,{COLLECTED},4",  # paid out 7: still less than the debit
            f"PM0004,MD0005,150000,GBP,,,{COLLECTED},5",  # paid out 8: the balance is positive again
        ],
    )

    world, steps = play(folder)

    payouts = sorted(world.payouts.values(), key=lambda p: p["created_at"])
    assert [kinds(step).count("payouts.paid") for step in steps] == [0, 0, 0, 1, 0, 0, 0, 1]
    assert all(p["amount"] > 0 for p in payouts)
    assert items_of(world, payouts[1]["id"]) == [
        ("payment_failed", "-90000.0", "PM0002"),
        ("gocardless_fee", "480.0", "PM0002"),
        ("payment_paid_out", "10000.0", "PM0003"),
        ("gocardless_fee", "-144.0", "PM0003"),
        ("payment_paid_out", "150000.0", "PM0004"),
        ("gocardless_fee", "-480.0", "PM0004"),
    ]
    assert payouts[1]["amount"] == 150000 + 10000 - 90000 - 144  # the fee refunded cancels PM0004's fee
    assert world.payments["PM0003"]["links"]["payout"] == payouts[1]["id"]


def test_each_payouts_items_add_up_to_its_amount_and_deducted_fees_are_its_fees_vat_included() -> None:
    world = GoCardlessWorld(load_scenario(bundled("sample")), seed=3)
    while world.step_index < world.total_steps:
        world.play_next_step()

    for payout in world.payouts.values():
        items = world.payout_items[payout["id"]]
        total = sum(Decimal(i["amount"]) for i in items)
        fees = [i for i in items if i["type"] in ("gocardless_fee", "surcharge_fee")]
        assert payout["amount"] > 0
        assert payout["amount"] == int(total.to_integral_value())
        assert payout["deducted_fees"] == -int(
            sum((Decimal(i["amount"]) for i in fees), Decimal(0)).to_integral_value()
        )
        for fee in fees:
            [tax] = fee["taxes"]
            vat, before_vat = Decimal(tax["amount"]), -Decimal(fee["amount"]) - Decimal(tax["amount"])
            assert (tax["tax_rate_id"], abs(before_vat * Decimal("0.2") - vat) <= Decimal("0.05")) == ("GB_VAT_1", True)
        assert all(i["taxes"] == [] for i in items if i not in fees)


def test_a_settled_chargeback_refunds_the_fee_and_debits_a_surcharge_with_vat(tmp_path: Path) -> None:
    folder = scenario(
        tmp_path,
        [
            f"PM0001,MD0001,64000,GBP,,,{COLLECTED} charged_back chargeback_settled,",
            f"PM0002,MD0002,100000,GBP,,,{COLLECTED},3",  # paid out with the settlement, step 6
        ],
    )

    world, steps = play(folder)

    assert "payments.surcharge_fee_debited" in kinds(steps[5])
    payout_id = next(e["links"]["payout"] for e in steps[5] if e["action"] == "paid")
    items = world.payout_items[payout_id]
    assert items_of(world, payout_id)[:3] == [
        ("payment_charged_back", "-64000.0", "PM0001"),
        ("gocardless_fee", "480.0", "PM0001"),
        ("surcharge_fee", "-180.0", "PM0001"),
    ]
    assert [t["amount"] for i in items[1:3] for t in i["taxes"]] == ["-80.0", "30.0"]
    assert world.payouts[payout_id]["deducted_fees"] == -480 + 180 + 480


def test_a_chargeback_cancelled_after_it_was_settled_pays_the_payment_out_again_and_refunds_the_surcharge(
    tmp_path: Path,
) -> None:
    lifecycle = f"{COLLECTED} charged_back chargeback_settled chargeback_cancelled"
    folder = scenario(
        tmp_path, [f"PM0001,MD0001,64000,GBP,,,{lifecycle},", f"PM0002,MD0002,100000,GBP,,,{COLLECTED},3"]
    )

    world, steps = play(folder)

    cancelled = next(e for e in steps[6] if e["action"] == "chargeback_cancelled")
    payout_id = next(e["links"]["payout"] for e in steps[6] if e["action"] == "paid")
    assert cancelled["details"]["cause"] == "payment_confirmed"
    assert items_of(world, payout_id) == [
        ("payment_paid_out", "64000.0", "PM0001"),
        ("gocardless_fee", "-480.0", "PM0001"),
        ("surcharge_fee", "180.0", "PM0001"),
    ]
    assert world.payments["PM0001"]["status"] == "paid_out"


def test_fees_refunded_beyond_those_charged_make_deducted_fees_negative(tmp_path: Path) -> None:
    folder = scenario(
        tmp_path,
        [
            f"PM0001,MD0001,100000,GBP,,,{COLLECTED},",
            f"PM0002,MD0002,60000,GBP,,,{COLLECTED} failed late_failure_settled,",
        ],
        ["RF0001,PM0001,70000,created refund_settled failed funds_returned,3"],
    )

    world, _ = play(folder)

    # step 6: PM0002's late failure is settled (fee refunded) as RF0001's funds, deducted at step 4, come back
    last = max(world.payouts.values(), key=lambda p: p["created_at"])
    assert [t for t, _, _ in items_of(world, last["id"])] == [
        "payment_failed",
        "gocardless_fee",
        "refund_funds_returned",
    ]
    assert (last["amount"], last["deducted_fees"]) == (70000 - 60000 + 480, -480)


# -- refunds ----------------------------------------------------------------------------------------------


def test_a_refund_goes_through_gocardless_statuses_and_its_deduction_is_a_payment_refunded_item(
    tmp_path: Path,
) -> None:
    refund_lifecycle = "created submitted paid refund_settled"
    folder = scenario(
        tmp_path,
        [f"PM0001,MD0001,100000,GBP,,,{COLLECTED},", f"PM0002,MD0002,50000,GBP,,,{COLLECTED},4"],
        [f"RF0001,PM0001,20000,{refund_lifecycle},4"],
    )
    world = GoCardlessWorld(load_scenario(folder), seed=7)
    statuses = []
    while world.step_index < world.total_steps:
        world.play_next_step()
        statuses.append(world.refunds["RF0001"]["status"] if "RF0001" in world.refunds else None)

    assert statuses == [None, None, None, "pending_submission", "submitted", "paid", "paid"]
    last = max(world.payouts.values(), key=lambda p: p["created_at"])
    [refunded] = [i for i in world.payout_items[last["id"]] if i["links"].get("refund")]
    assert (refunded["type"], refunded["amount"]) == ("payment_refunded", "-20000.0")
    assert refunded["links"] == {"refund": "RF0001", "payment": "PM0001", "mandate": "MD0001"}


def test_a_failed_refunds_funds_return_to_the_merchant_only_as_much_as_was_deducted(tmp_path: Path) -> None:
    folder = scenario(
        tmp_path,
        [
            f"PM0001,MD0001,100000,GBP,,,{COLLECTED},",
            f"PM0002,MD0002,100000,GBP,,,{COLLECTED},",
            f"PM0003,MD0003,50000,GBP,,,{COLLECTED},4",  # paid out at step 7, with RF0001's deduction
            f"PM0004,MD0005,50000,GBP,,,{COLLECTED},6",  # paid out at step 9, with RF0001's funds returned
        ],
        [
            "RF0001,PM0001,20000,created submitted refund_settled failed funds_returned,5",
            "RF0002,PM0002,30000,created submitted failed funds_returned,5",  # never deducted: nothing returns
        ],
    )

    world, steps = play(folder)

    money = [items_of(world, p) for p in world.payouts]
    moved = [(t, a) for items in money for t, a, _ in items if t.startswith("refund") or t == "payment_refunded"]
    assert moved == [("payment_refunded", "-20000.0"), ("refund_funds_returned", "20000.0")]
    assert [world.refunds[r]["status"] for r in ("RF0001", "RF0002")] == ["funds_returned", "funds_returned"]
    assert [world.payments[p]["amount_refunded"] for p in ("PM0001", "PM0002")] == [0, 0]
    assert "refunds.funds_returned" in kinds(steps[-1])


# -- retries and causes -----------------------------------------------------------------------------------


def test_a_retried_payment_fails_announcing_the_retry_is_resubmitted_and_collected(tmp_path: Path) -> None:
    lifecycle = "created submitted failed resubmission_requested submitted confirmed paid_out"
    world, steps = play(scenario(tmp_path, [f"PM0001,MD0001,30000,GBP,,,{lifecycle},"]))

    events = [e for step in steps for e in step if e["resource_type"] == "payments"]
    failed = next(e for e in events if e["action"] == "failed")
    assert [e["action"] for e in events] == lifecycle.split()
    assert (failed["details"]["will_attempt_retry"], failed["details"]["cause"]) == (True, "refer_to_payer")
    assert events[3]["details"]["cause"] == "payment_retried"
    assert world.payments["PM0001"]["status"] == "paid_out" and world.payments["PM0001"]["links"]["payout"]


def test_a_payment_that_fails_for_good_says_no_retry_will_come(tmp_path: Path) -> None:
    world, steps = play(scenario(tmp_path, ["PM0001,MD0001,30000,GBP,,,created submitted failed,"]))

    assert steps[2][0]["details"]["will_attempt_retry"] is False
    assert world.payments["PM0001"]["status"] == "failed"


@pytest.mark.parametrize(
    "mandate, currency, action, reason_code, cause",
    [
        ("MD0001", "GBP", "failed", "ARUDD-0", "refer_to_payer"),
        ("MD0001", "GBP", "charged_back", "DDICA-1", "authorisation_disputed"),
        ("MD0004", "EUR", "failed", "AM04", "insufficient_funds"),
        ("MD0004", "EUR", "charged_back", "MD06", "refund_requested"),
    ],
)
def test_a_banks_reason_code_comes_with_the_cause_gocardless_gives_it(
    tmp_path: Path, mandate: str, currency: str, action: str, reason_code: str, cause: str
) -> None:
    lifecycle = f"{COLLECTED} {action}" if action == "charged_back" else f"created submitted {action}"
    _, steps = play(scenario(tmp_path, [f"PM0001,{mandate},30000,{currency},,,{lifecycle},"]))

    event = next(e for step in steps for e in step if e["action"] == action)
    assert (event["details"]["reason_code"], event["details"]["cause"]) == (reason_code, cause)


# -- API details ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path, headers, status",
    [("/payments", HEADERS, 200), ("/payments/PM9999", HEADERS, 404), ("/payments", {}, 401)],
)
def test_every_answer_carries_the_rate_limit_headers(
    stand_in: GoCardlessStandIn, path: str, headers: dict[str, str], status: int
) -> None:
    response = httpx.get(stand_in.url + path, headers=headers)

    assert response.status_code == status
    assert response.headers["RateLimit-Limit"] == "1000"
    assert int(response.headers["RateLimit-Remaining"]) < 1000
    assert response.headers["RateLimit-Reset"].endswith(" GMT")


def test_the_items_of_a_payout_older_than_six_months_are_gone(tmp_path: Path) -> None:
    now = [datetime(2026, 5, 1, tzinfo=UTC)]
    folder = scenario(tmp_path, [f"PM0001,MD0001,30000,GBP,,,{COLLECTED},"])
    handle = start_gocardless_stand_in(folder, token=TOKEN, retry_intervals=FAST_RETRIES, clock=lambda: now[0])
    try:
        while handle.play_step():
            pass
        [payout_id] = handle.world.payouts
        now[0] += timedelta(days=180)
        recent = httpx.get(f"{handle.url}/payout_items", params={"payout": payout_id}, headers=HEADERS)
        now[0] += timedelta(days=5)
        old = httpx.get(f"{handle.url}/payout_items", params={"payout": payout_id}, headers=HEADERS)
    finally:
        handle.stop()

    assert recent.status_code == 200 and len(recent.json()["payout_items"]) == 2
    assert old.status_code == 410 and old.json()["error"]["errors"][0]["reason"] == "gone"


def test_the_bundled_sample_shows_each_money_flow() -> None:
    world = GoCardlessWorld(load_scenario(bundled("sample")), seed=5)
    events = []
    while world.step_index < world.total_steps:
        events += world.play_next_step()

    types = {(i["type"], i["links"].get("payment")) for items in world.payout_items.values() for i in items}
    fx = [p for p in world.payouts.values() if p["fx"]["fx_currency"]]
    retried = [e for e in events if e["action"] == "failed" and e["details"].get("will_attempt_retry")]
    assert fx and all(p["status"] == "paid" and p["fx"]["exchange_rate"] for p in fx)
    assert "payouts.fx_rate_confirmed" in kinds([dict(e) for e in events])
    assert {("payment_charged_back", "PM0015"), ("surcharge_fee", "PM0015")} <= types
    assert any(i["type"] == "gocardless_fee" and i["amount"][0] != "-" for v in world.payout_items.values() for i in v)
    assert [e["links"]["payment"] for e in retried] == ["PM0032"] and world.payments["PM0032"]["status"] == "paid_out"
    assert ("refund_funds_returned", "PM0017") in types and world.refunds["RF0002"]["status"] == "funds_returned"
