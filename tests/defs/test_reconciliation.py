"""The reconciliation's assets and checks in real Dagster instances: open amounts count what is not posted yet.

The first test materializes `payment_matches` and its checks over a warehouse and a ledger filled directly;
the second plays a company through the stand-ins and the real definitions: two payments for one invoice in
one run, one posted, the other held.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ml_connector_dagster.bench.e2e import COMPANY
from ml_connector_dagster.defs import reconciliation as reconciliation_defs
from ml_connector_dagster.defs.resources import RESOURCES
from ml_connector_dagster.reconciliation.tables import ensure_tables
from ml_connector_dagster.sandbox.dagster_driver import Driver
from ml_connector_dagster.sandbox.stack import Stack, start_stack
from ml_connector_dagster.settings import Settings, load_settings
from ml_connector_dagster.store import Store

from support.played_month import INITIAL_LOAD


@pytest.fixture
def reconciling(home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("ML_CONNECTOR_SAGE_HOME_CURRENCY", "GBP")
    monkeypatch.setenv("ML_CONNECTOR_SAGE_BANK_CODE", "A")
    return load_settings()


def test_our_unwritten_payments_taking_more_than_an_invoice_has_open_fail_the_over_applied_check(
    reconciling: Settings,
) -> None:
    with duckdb.connect(str(reconciling.warehouse_path)) as conn:  # a person keyed 250.00 since we decided
        ensure_tables(conn)
        conn.execute(
            "INSERT INTO sage_ar_invoices VALUES ('01', 'ABF', '0100030', 'IN', NULL, NULL, 300.00, 250.00, "
            "'20261125', '09.000000', ?)",
            [datetime(2026, 11, 25, 9)],
        )
    store = Store(reconciling.database_url)
    line = {"invoice_no": "0100030", "invoice_type": "IN", "amount": "80.00"}
    store.ledger.upsert("PM1", status="matched", sage_customer="01-ABF", home_amount="80.00", allocations=[line])
    store.dispose()

    with dg.instance_for_test() as instance:
        result = dg.materialize(
            [reconciliation_defs.payment_matches, reconciliation_defs.no_invoice_over_applied],
            instance=instance,
            resources=RESOURCES,
        )

    [check] = result.get_asset_check_evaluations()
    assert (check.check_name, check.passed, check.severity) == (
        "no_invoice_over_applied",
        False,
        dg.AssetCheckSeverity.ERROR,
    )
    assert check.metadata["count"].value == 1
    assert check.metadata["invoices"].value == ["01/ABF/0100030/IN: ours 80.00 > open 50.00: PM1 80.00 (matched)"]


# --- two payments for one invoice, played through the stand-ins -----------------------------------------------------


def write_scenario(root: Path) -> Path:
    """Customer 01-ABF with invoice 0100030 (1200.00); PM0001 and PM0002 both name it, confirmed in one step."""
    root.mkdir(parents=True)
    files = {
        "company.json": json.dumps(COMPANY),
        "sage_customers.csv": "ARDivisionNo,CustomerNo,CustomerName,EmailAddress\n01,ABF,ABF Ltd,ap@abf.example\n",
        "sage_invoices.csv": "ARDivisionNo,CustomerNo,InvoiceNo,InvoiceType,InvoiceDate,InvoiceDueDate,Balance\n"
        "01,ABF,0100030,IN,2026-10-01,2026-10-31,1200.00\n",
        "gocardless_customers.csv": "id,email,given_name,family_name,company_name,metadata\n"
        'CU0001,ap@abf.example,Alice,Brown,ABF Ltd,"{""sage_customer"": ""01-ABF""}"\n',
        "gocardless_mandates.csv": "id,customer\nMD0001,CU0001\n",
        "gocardless_payments.csv": "id,mandate,amount,currency,charge_date,reference,description,metadata,"
        "fx_currency,fx_amount,lifecycle\n"
        "PM0001,MD0001,120000,GBP,2026-11-02,INV-0100030,October,{},,,confirmed\n"
        "PM0002,MD0001,120000,GBP,2026-11-02,INV-0100030,October again,{},,,confirmed\n",
    }
    for name, text in files.items():
        (root / name).write_text(text, encoding="utf-8")
    return root


@pytest.fixture
def two_for_one(tmp_path: Path) -> Iterator[tuple[Stack, Driver]]:
    saved = dict(os.environ)
    stack = start_stack(write_scenario(tmp_path / "scenario"), tmp_path / "home")
    try:
        os.environ.update(stack.env)
        from ml_connector_dagster.definitions import defs

        with dg.instance_for_test() as instance:
            driver = Driver(defs, instance)
            driver.materialize(INITIAL_LOAD)
            yield stack, driver
    finally:
        stack.stop()
        os.environ.clear()
        os.environ.update(saved)


@pytest.mark.slow
def test_two_payments_for_one_invoice_in_one_run_post_the_first_and_hold_the_second_naming_what_took_it(
    two_for_one: tuple[Stack, Driver],
) -> None:
    stack, driver = two_for_one

    stack.gocardless.play_step()  # both confirmed: their webhooks reach the inbox before any run starts
    assert stack.gocardless.wait_deliveries(60), "webhooks were not all delivered"
    driver.settle(idle=lambda: not stack.store.inbox.due())

    ledger = stack.store.ledger
    first, second = ledger.entry("PM0001"), ledger.entry("PM0002")
    assert first.status == "posted"
    assert (second.status, second.reason) == ("held", "invoice_already_collected")
    assert "consumed by unposted receipts" in (second.explanation or "")
    receipts = [r["UDF_GC_PAYMENT_ID"] for r in stack.sage.company.rows("AR_CashReceiptsHeader")]
    assert receipts == ["PM0001"]
    [held] = stack.store.audit.list(subject="PM0002", action="payment.held")
    assert held.details["unposted"] == [
        {
            "invoice_no": "0100030",
            "invoice_type": "IN",
            "balance": "1200.00",
            "payments_today": "0.00",
            "ours": [{"payment_id": "PM0001", "amount": "1200.00", "status": "matched"}],
            "open_amount": "0.00",
        }
    ]
    [run] = [r for r in driver.instance.get_run_records() if r.dagster_run.job_name == "gocardless_inbox_job"]
    evaluations = driver.instance.event_log_storage.get_latest_asset_check_execution_by_key(
        [dg.AssetCheckKey(dg.AssetKey(["reconciliation", "payment_matches"]), "no_invoice_over_applied")]
    )
    assert run.dagster_run.is_success
    assert [e.status.value for e in evaluations.values()] == ["SUCCEEDED"]  # nothing over-applied
