"""The sage100 assets through Dagster (dg.materialize on a real instance) against the stand-ins."""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import dagster as dg
import duckdb
import pytest

from ml_connector_dagster.defs import sage100 as sage_defs
from ml_connector_dagster.defs.resources import RESOURCES
from ml_connector_dagster.sandbox.sage_services import SageStandIns

from support.sage import agent_client, cash_receipt_request

ASSETS = [
    sage_defs.sage100_customers,
    sage_defs.sage100_ar_invoices,
    sage_defs.sage100_customers_unique_keys,
    sage_defs.sage100_ar_invoices_unique_keys,
    sage_defs.sage100_ar_invoices_non_negative_balances,
    sage_defs.sage100_ar_invoices_payments_today_within_balance,
]
INVOICES_OP = "sage100__ar_invoices"


@pytest.fixture
def configured(home: Path, stand_ins: SageStandIns, monkeypatch: pytest.MonkeyPatch) -> Path:
    """ML_CONNECTOR_* pointing at the stand-ins; returns the warehouse file."""
    for name, value in stand_ins.settings_env().items():
        monkeypatch.setenv(name, value)
    return home / "warehouse.duckdb"


def poll(
    instance: dg.DagsterInstance, config: dict[str, Any] | None = None, raise_on_error: bool = True
) -> dg.ExecuteInProcessResult:
    run_config = {"ops": {op: {"config": config} for op in ("sage100__customers", INVOICES_OP)}} if config else None
    return dg.materialize(
        ASSETS,
        instance=instance,
        resources={**RESOURCES, **sage_defs.defs.resources},
        run_config=run_config,
        raise_on_error=raise_on_error,
    )


def metadata(result: dg.ExecuteInProcessResult, table: str) -> dict[str, Any]:
    key = dg.AssetKey(["sage100", table])
    [event] = [e for e in result.get_asset_materialization_events() if e.asset_key == key]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def warehouse_rows(path: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_the_first_poll_copies_customers_and_invoices_and_the_checks_pass(configured: Path, instance) -> None:
    result = poll(instance)

    assert metadata(result, "customers")["rows_transferred"] == 8
    assert metadata(result, "ar_invoices")["rows_transferred"] == 14
    assert all(check.passed for check in result.get_asset_check_evaluations())
    assert len(result.get_asset_check_evaluations()) == 4
    assert warehouse_rows(configured, "SELECT Balance FROM sage_ar_invoices WHERE InvoiceNo = '0100030'") == [
        (Decimal("1200.00"),)
    ]


def test_a_poll_with_no_changes_transfers_no_rows(configured: Path, instance) -> None:
    poll(instance)

    result = poll(instance)

    assert metadata(result, "ar_invoices")["rows_transferred"] == 0
    assert metadata(result, "customers")["rows_transferred"] == 0


def test_after_one_invoice_changes_the_next_poll_transfers_only_that_invoice(
    configured: Path, instance, stand_ins: SageStandIns
) -> None:
    poll(instance)
    stand_ins.company.adjust_invoice_balance("01", "DELTA", "0100060", "IN", Decimal("12.34"))

    result = poll(instance)

    assert metadata(result, "ar_invoices")["rows_transferred"] == 1
    assert metadata(result, "ar_invoices")["changed_keys"] == ["01/DELTA/0100060/IN"]
    assert warehouse_rows(configured, "SELECT Balance FROM sage_ar_invoices WHERE InvoiceNo = '0100060'") == [
        (Decimal("12.34"),)
    ]


def test_a_cash_receipt_written_through_the_agent_shows_in_the_next_poll_as_payments_today(
    configured: Path, instance, stand_ins: SageStandIns
) -> None:
    poll(instance)
    agent_client(stand_ins).create_cash_receipt(cash_receipt_request("PM1", lines=(("0100030", "200.00"),)))

    result = poll(instance)

    assert metadata(result, "ar_invoices")["changed_keys"] == ["01/ABF/0100030/IN"]
    assert metadata(result, "customers")["changed_keys"] == []
    assert warehouse_rows(
        configured, "SELECT Balance, PaymentsToday FROM sage_ar_invoices WHERE InvoiceNo = '0100030'"
    ) == [(Decimal("1200.00"), Decimal("200.00"))]


def test_the_journal_update_shows_in_the_next_poll_as_lower_balances(
    configured: Path, instance, stand_ins: SageStandIns
) -> None:
    agent_client(stand_ins).create_cash_receipt(cash_receipt_request("PM1", lines=(("0100030", "200.00"),)))
    poll(instance)

    stand_ins.company.post_cash_receipts_journal()
    result = poll(instance)

    assert metadata(result, "ar_invoices")["changed_keys"] == ["01/ABF/0100030/IN"]
    assert metadata(result, "customers")["changed_keys"] == ["01/ABF"]
    assert warehouse_rows(
        configured, "SELECT Balance, PaymentsToday FROM sage_ar_invoices WHERE InvoiceNo = '0100030'"
    ) == [(Decimal("1000.00"), Decimal("0.00"))]
    assert warehouse_rows(configured, "SELECT CurrentBalance FROM sage_customers WHERE CustomerNo = 'ABF'") == [
        (Decimal("1450.00"),)
    ]


def test_an_invoice_with_more_unposted_receipts_than_balance_is_a_warning_naming_it(
    configured: Path, instance, stand_ins: SageStandIns
) -> None:
    with sqlite3.connect(stand_ins.company.path) as conn:  # receipts keyed in Sage beyond what is owed
        conn.execute("UPDATE AR_OpenInvoice SET PaymentsToday = '500.00' WHERE InvoiceNo = '0100031'")

    result = poll(instance)

    [check] = [c for c in result.get_asset_check_evaluations() if c.check_name == "payments_today_within_balance"]
    assert (check.passed, check.severity) == (False, dg.AssetCheckSeverity.WARN)
    assert check.metadata["count"].value == 1
    assert check.metadata["invoices"].value == ["01/ABF/0100031/IN: PaymentsToday 500.00 > Balance 450.00"]


def test_a_backfill_reads_only_the_records_stamped_in_its_date_range(configured: Path, instance) -> None:
    poll(instance)
    today = date.today()

    this_week = poll(
        instance, {"updated_from": (today - timedelta(days=7)).isoformat(), "updated_to": today.isoformat()}
    )
    last_year = poll(instance, {"updated_from": "2025-01-01", "updated_to": "2025-12-31"})

    assert (metadata(this_week, "ar_invoices")["rows_fetched"], metadata(this_week, "ar_invoices")["mode"]) == (
        14,
        "backfill",
    )
    assert metadata(this_week, "ar_invoices")["rows_transferred"] == 0
    assert metadata(last_year, "ar_invoices")["rows_fetched"] == 0


def test_a_full_refresh_removes_rows_sage_has_purged(configured: Path, instance, stand_ins: SageStandIns) -> None:
    poll(instance)
    with sqlite3.connect(stand_ins.company.path) as conn:  # Sage's purge of a collected invoice
        conn.execute("DELETE FROM AR_OpenInvoice WHERE InvoiceNo = '0100020'")

    result = poll(instance, {"full_refresh": True})

    assert metadata(result, "ar_invoices")["rows_deleted"] == 1
    assert warehouse_rows(configured, "SELECT count(*) FROM sage_ar_invoices") == [(13,)]


def test_a_bad_backfill_date_fails_the_run_naming_the_field(configured: Path, instance) -> None:
    result = poll(instance, {"updated_from": "2026-13-01"}, raise_on_error=False)

    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "updated_from '2026-13-01' is not a YYYY-MM-DD date" in str(failure.step_failure_data.error)


def test_a_wrong_password_fails_at_once_with_sages_reason_and_never_shows_the_password(
    configured: Path, instance, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ML_CONNECTOR_SAGE_PASSWORD", "Wr0ng-Pa55")

    result = poll(instance, raise_on_error=False)

    failures = [e for e in result.all_events if e.is_step_failure]
    assert failures and all("Logon failure" in str(e.step_failure_data.error) for e in failures)
    logs = " ".join(str(r.dagster_event or r.user_message) for r in instance.all_logs(result.run_id))
    assert "Wr0ng-Pa55" not in logs
    assert not any(e.event_type_value == "STEP_RESTARTED" for e in result.all_events)


def tick(instance: dg.DagsterInstance) -> dg.SensorResult:
    """Evaluate the sage100_poll sensor once, with the definitions' resources."""
    with dg.build_sensor_context(instance=instance, resources={**RESOURCES, **sage_defs.defs.resources}) as context:
        return sage_defs.sage100_poll(context)


def test_the_poll_sensor_skips_until_the_agent_is_configured(home: Path, instance) -> None:
    result = tick(instance)

    assert result.run_requests == [] and "ML_CONNECTOR_SAGE_AGENT_WSDL" in str(result.skip_reason)


def test_the_poll_sensor_asks_the_agent_and_requests_a_named_job_only_when_sage_changed(
    configured: Path, instance, stand_ins: SageStandIns
) -> None:
    first = tick(instance)  # nothing copied yet: everything is a change
    poll(instance)
    quiet = tick(instance)
    again = tick(instance)
    stand_ins.company.key_receipt("01", "ABF", "0100030", "IN", Decimal("100.00"), "CHK1", date(2026, 11, 25))
    keyed = tick(instance)  # the receipt raised PaymentsToday, which restamped the invoice

    [request] = first.run_requests
    assert request.tags == {"sage100/changed": "sage_customers, sage_ar_invoices"}
    assert quiet.run_requests == [] and again.run_requests == []
    assert "nothing changed in Sage's AR since the warehouse copy" in str(quiet.skip_reason)
    [receipt] = keyed.run_requests
    assert receipt.tags == {"sage100/changed": "sage_ar_invoices"} and receipt.run_key != request.run_key
    sensor = sage_defs.sage100_poll
    assert sensor.job_name == "sage100_poll_job" and sensor.default_status == dg.DefaultSensorStatus.RUNNING
