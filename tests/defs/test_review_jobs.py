"""The review queue worked from Dagster, through the stand-ins: a decision holds a payment, the queue follows it by
itself, a wrong invoice fails one run with a readable message that is not retried, and the right one posts.

A company played through the GoCardless and Sage stand-ins with the real definitions (as test_reconciliation.py),
on an instance with the run retries dagster.yaml configures.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from ml_connector_dagster.bench.e2e import COMPANY
from ml_connector_dagster.defs.review_queue import KEY
from ml_connector_dagster.instance_config import instance_yaml
from ml_connector_dagster.sandbox.dagster_driver import Driver
from ml_connector_dagster.sandbox.stack import Stack, start_stack

from support.played_month import INITIAL_LOAD

pytestmark = pytest.mark.slow  # a company played through the stand-ins


def write_scenario(root: Path) -> Path:
    """01-ABF with invoice 0100030 (300.00); PM0001 comes from CU0001, whose email no Sage customer has."""
    root.mkdir(parents=True)
    files = {
        "company.json": json.dumps(COMPANY),
        "sage_customers.csv": "ARDivisionNo,CustomerNo,CustomerName,EmailAddress\n01,ABF,ABF Ltd,ap@abf.example\n",
        "sage_invoices.csv": "ARDivisionNo,CustomerNo,InvoiceNo,InvoiceType,InvoiceDate,InvoiceDueDate,Balance\n"
        "01,ABF,0100030,IN,2026-10-01,2026-10-31,300.00\n",
        "gocardless_customers.csv": "id,email,given_name,family_name,company_name,metadata\n"
        "CU0001,finance@abf-group.example,Alice,Brown,ABF Group,{}\n",
        "gocardless_mandates.csv": "id,customer\nMD0001,CU0001\n",
        "gocardless_payments.csv": "id,mandate,amount,currency,charge_date,reference,description,metadata,"
        "fx_currency,fx_amount,lifecycle\n"
        "PM0001,MD0001,30000,GBP,2026-11-02,INV-0100030,October,{},,,confirmed\n",
    }
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def held(tmp_path: Path) -> Iterator[tuple[Stack, Driver, dg.EvaluateAutomationConditionsResult]]:
    """PM0001 decided and held; the automation conditions evaluated once before the decision (their cursor)."""
    saved = dict(os.environ)
    stack = start_stack(write_scenario(tmp_path / "scenario"), tmp_path / "home")
    try:
        os.environ.update(stack.env)
        from ml_connector_dagster.definitions import defs

        run_retries = yaml.safe_load(instance_yaml())["run_retries"]
        with dg.instance_for_test(overrides={"run_retries": run_retries}) as instance:
            driver = Driver(defs, instance)
            driver.materialize(INITIAL_LOAD)
            before = dg.evaluate_automation_conditions(defs, instance, asset_selection=dg.AssetSelection.assets(KEY))
            stack.gocardless.play_step()
            assert stack.gocardless.wait_deliveries(60), "webhooks were not all delivered"
            driver.settle(idle=lambda: not stack.store.inbox.due())
            yield stack, driver, before
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)


def latest_queue(instance: dg.DagsterInstance) -> list[dict[str, object]]:
    event = instance.get_latest_materialization_event(KEY)
    assert event is not None and event.asset_materialization is not None
    return [r.data for r in event.asset_materialization.metadata["open_items"].value.records]


def apply(driver: Driver, **config: object) -> dg.ExecuteInProcessResult:
    return driver.defs.resolve_job_def("review_apply").execute_in_process(
        instance=driver.instance, raise_on_error=False, run_config={"ops": {"review_apply_op": {"config": config}}}
    )


def test_a_held_payment_shows_in_the_queue_and_a_wrong_invoice_fails_once_then_the_right_one_posts(
    held: tuple[Stack, Driver, dg.EvaluateAutomationConditionsResult],
) -> None:
    stack, driver, _before = held
    assert stack.store.ledger.entry("PM0001").status == "held"

    [row] = latest_queue(driver.instance)  # recorded by the automation's run that decided
    event = driver.instance.get_latest_materialization_event(KEY)
    decided = driver.instance.get_latest_materialization_event(dg.AssetKey(["reconciliation", "payment_matches"]))
    assert event.run_id == decided.run_id  # the queue followed the decision in the same run
    assert driver.instance.get_run_by_id(event.run_id).tags["dagster/sensor_name"] == "reconciliation_automation"
    after = dg.evaluate_automation_conditions(
        driver.defs, driver.instance, asset_selection=dg.AssetSelection.assets(KEY), cursor=driver.automation_cursor
    )
    assert after.total_requested == 0  # no second run
    assert {k: row[k] for k in ("payment", "gocardless_customer", "sage_customer", "amount", "home_amount")} == {
        "payment": "PM0001",
        "gocardless_customer": "CU0001",
        "sage_customer": "",
        "amount": "300.00",
        "home_amount": "300.00",
    }
    assert (row["kind"], row["reason"], row["currency"]) == ("held", "customer_not_found", "GBP")
    assert row["explanation"]

    wrong = apply(driver, item_id=row["item"], invoices=["0999999"], sage_customer="01-ABF", operator="erin")

    assert not wrong.success
    [failure] = [e for e in wrong.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    user = failure.step_failure_data.user_failure_data
    assert user is not None, failure.step_failure_data.error  # a dg.Failure, not a stack trace
    assert "invoice 0999999 is not an open invoice of this customer in Sage" in str(user.description)
    assert "correct the config in the Launchpad" in str(user.description)
    runs = driver.instance.get_runs(filters=dg.RunsFilter(job_name="review_apply"))
    assert [r.tags["dagster/will_retry"] for r in runs] == ["false"]  # one run; the daemon would not repeat it
    assert stack.store.ledger.entry("PM0001").status == "held"
    assert [r["item"] for r in latest_queue(driver.instance)] == [row["item"]]

    right = apply(driver, item_id=row["item"], invoices=["0100030"], sage_customer="01-ABF", operator="erin")

    assert right.success, right.all_events
    assert stack.store.ledger.entry("PM0001").status == "posted"
    assert latest_queue(driver.instance) == []  # the queue recorded at the job's end, without the item
    assert ("erin", "review.apply") in [(r.actor, r.action) for r in stack.store.audit.list(subject="PM0001")]
