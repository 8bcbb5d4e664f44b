"""The evaluation against open amounts: Sage's copy in the warehouse (Balance, PaymentsToday, synced_at) less
what this product has applied that the copy cannot show yet (the ledger), and payments of one evaluation
decided in payment order. Rows are put straight into the warehouse and the ledger; nothing is started."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ml_connector_dagster.reconciliation.evaluate import evaluate_payments
from ml_connector_dagster.reconciliation.open_amounts import open_invoices, over_applied
from ml_connector_dagster.reconciliation.tables import ensure_tables
from ml_connector_dagster.settings import ReconciliationSettings
from ml_connector_dagster.store import Store
from ml_connector_dagster.store.utc import utcnow

SETTINGS = ReconciliationSettings(home_currency="GBP", bank_code="B")
SYNCED = datetime(2026, 11, 25, 9, 0, 0)  # when the invoices were copied (UTC)
CREATED = datetime(2026, 11, 24, 8, 0, 0)


@dataclass
class Company:
    """A warehouse with customer 01-ABF (GoCardless CU1) and the operational store beside it."""

    conn: duckdb.DuckDBPyConnection
    store: Store

    def invoice(self, no: str, balance: str, payments_today: str = "0.00", synced_at: datetime = SYNCED) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO sage_ar_invoices VALUES ('01', 'ABF', ?, 'IN', DATE '2026-10-01', ?, ?, ?, "
            "'20261125', '09.000000', ?)",
            [no, f"2026-10-{int(no) % 28 + 1:02d}", balance, payments_today, synced_at],
        )

    def payment(self, pid: str, amount: int, reference: str = "", minutes: int = 0) -> None:
        self.conn.execute(
            "INSERT INTO gocardless_payments (id, amount, currency, status, reference, metadata, customer, created_at, "
            "fetched_at) VALUES (?, ?, 'GBP', 'confirmed', ?, '{}', 'CU1', ?, ?)",
            [pid, amount, reference, CREATED + timedelta(minutes=minutes), SYNCED],
        )

    def ours(
        self, pid: str, status: str, invoice_no: str, amount: str, posted_at: datetime | None = None, **values: Any
    ) -> None:
        """A payment of ours already in the ledger, applied to one invoice of 01-ABF."""
        line = {"invoice_no": invoice_no, "invoice_type": "IN", "amount": amount}
        values = {"sage_customer": "01-ABF", "home_amount": amount, "allocations": [line], **values}
        if posted_at is not None:
            values["posted_at"] = posted_at.replace(tzinfo=utcnow().tzinfo)
        self.store.ledger.upsert(pid, status=status, **values)

    def evaluate(self) -> None:
        evaluate_payments(self.conn, self.store, SETTINGS)

    def decided(self, pid: str) -> dict[str, Any]:
        [record] = [r for r in self.store.audit.list(subject=pid) if r.action in ("payment.matched", "payment.held")]
        return record.details


@pytest.fixture
def company(tmp_path: Path, store: Store) -> Iterator[Company]:
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_tables(conn)
    conn.execute(
        "INSERT INTO gocardless_customers VALUES ('CU1', 'ap@abf.test', NULL, NULL, 'ABF Ltd', "
        '\'{"sage_customer": "01-ABF"}\', ?, ?)',
        [CREATED, SYNCED],
    )
    conn.execute(
        "INSERT INTO sage_customers VALUES ('01', 'ABF', 'ABF Ltd', 'ap@abf.test', 0, 'A', '20261125', '09.000000', ?)",
        [SYNCED],
    )
    yield Company(conn, store)
    conn.close()


def test_payments_today_in_the_copy_lowers_the_open_amount_matching_uses(company: Company) -> None:
    company.invoice("0100030", "500.00", payments_today="380.00")
    company.invoice("0100031", "500.00")
    company.payment("PM1", 12000)

    company.evaluate()

    entry = company.store.ledger.entry("PM1")
    assert (entry.status, entry.allocations) == (
        "matched",
        [{"invoice_no": "0100030", "invoice_type": "IN", "amount": "120.00"}],
    )


@pytest.mark.parametrize("status", ["matched", "posting"])
def test_our_unwritten_allocations_count_against_the_invoice(company: Company, status: str) -> None:
    company.invoice("0100030", "120.00")
    company.ours("PMEARLIER", status, "0100030", "120.00")
    company.payment("PM1", 12000, reference="INV-0100030")

    company.evaluate()

    entry = company.store.ledger.entry("PM1")
    assert (entry.status, entry.reason) == ("held", "invoice_already_collected")
    assert "consumed by unposted receipts" in (entry.explanation or "")


def test_a_posting_payment_counts_the_lines_it_asked_sage_for(company: Company) -> None:
    company.invoice("0100030", "120.00")
    company.invoice("0100031", "120.00")
    asked = {"lines": [{"invoice_no": "0100031", "invoice_type": "IN", "amount": "120.00"}]}
    company.ours("PMEARLIER", "posting", "0100030", "120.00", request=asked)
    company.payment("PM1", 12000, reference="INV-0100030")

    company.evaluate()

    assert company.store.ledger.entry("PM1").status == "matched"


def test_a_receipt_written_after_the_invoice_was_copied_counts_against_it(company: Company) -> None:
    company.invoice("0100030", "120.00", synced_at=SYNCED)
    company.ours("PMEARLIER", "posted", "0100030", "120.00", posted_at=SYNCED + timedelta(minutes=1))
    company.payment("PM1", 12000, reference="INV-0100030")

    company.evaluate()

    assert company.store.ledger.entry("PM1").reason == "invoice_already_collected"


def test_a_receipt_written_before_the_invoice_was_copied_is_in_payments_today_and_counts_once(company: Company) -> None:
    company.invoice("0100030", "240.00", payments_today="120.00", synced_at=SYNCED)
    company.ours("PMEARLIER", "posted", "0100030", "120.00", posted_at=SYNCED - timedelta(minutes=1))
    company.payment("PM1", 12000, reference="INV-0100030")

    company.evaluate()

    assert company.store.ledger.entry("PM1").status == "matched"


@pytest.mark.parametrize("status", ["held", "not_collected", "reversed"])
def test_payments_of_ours_with_no_money_on_the_invoice_do_not_count(company: Company, status: str) -> None:
    company.invoice("0100030", "120.00")
    company.ours("PMEARLIER", status, "0100030", "120.00", posted_at=SYNCED + timedelta(minutes=1))
    company.payment("PM1", 12000, reference="INV-0100030")

    company.evaluate()

    assert company.store.ledger.entry("PM1").status == "matched"


def test_two_payments_for_one_invoice_in_one_evaluation_match_only_the_earlier(company: Company) -> None:
    company.invoice("0100030", "120.00")
    company.payment("PM2", 12000, reference="INV-0100030", minutes=5)
    company.payment("PM1", 12000, reference="INV-0100030", minutes=1)

    company.evaluate()

    statuses = company.store.ledger.statuses(["PM1", "PM2"])
    assert statuses == {"PM1": "matched", "PM2": "held"}
    assert company.store.ledger.entry("PM2").reason == "invoice_already_collected"


def test_the_audit_of_a_hold_names_the_unposted_amounts_and_our_payments_that_took_the_invoice(
    company: Company,
) -> None:
    company.invoice("0100030", "300.00", payments_today="100.00")
    company.ours("PMLEDGER", "matched", "0100030", "80.00")
    company.payment("PM1", 12000, reference="INV-0100030", minutes=1)
    company.payment("PM2", 5000, reference="INV-0100030", minutes=2)

    company.evaluate()

    held = company.decided("PM2")
    assert (held["status"], held["reason"]) == ("held", "invoice_already_collected")
    assert held["unposted"] == [
        {
            "invoice_no": "0100030",
            "invoice_type": "IN",
            "balance": "300.00",
            "payments_today": "100.00",
            "ours": [
                {"payment_id": "PMLEDGER", "amount": "80.00", "status": "matched"},
                {"payment_id": "PM1", "amount": "120.00", "status": "matched"},
            ],
            "open_amount": "0.00",
        }
    ]
    assert company.store.review.open_for("PM2")[0].details["unposted"] == held["unposted"]


def test_the_audit_of_a_match_names_unposted_amounts_only_on_the_invoices_it_pays(company: Company) -> None:
    company.invoice("0100030", "300.00", payments_today="100.00")
    company.invoice("0100031", "50.00", payments_today="10.00")
    company.payment("PM1", 20000, reference="INV-0100030")

    company.evaluate()

    matched = company.decided("PM1")
    assert [(u["invoice_no"], u["open_amount"], u["ours"]) for u in matched["unposted"]] == [("0100030", "200.00", [])]


def test_the_audit_of_a_decision_nothing_unposted_touched_has_no_unposted_entry(company: Company) -> None:
    company.invoice("0100030", "120.00")
    company.payment("PM1", 12000)

    company.evaluate()

    assert "unposted" not in company.decided("PM1")


def test_open_invoices_subtract_our_lines_set_wise_and_say_whose(company: Company) -> None:
    company.invoice("0100030", "300.00", payments_today="100.00")
    company.invoice("0100031", "50.00")
    company.ours("PMA", "matched", "0100030", "80.00")
    company.ours("PMB", "posted", "0100030", "20.00", posted_at=SYNCED + timedelta(seconds=1))

    frame = open_invoices(company.conn, company.store, ["01-ABF"])

    rows = frame.set_index("InvoiceNo")
    assert (rows.loc["0100030", "Balance"], rows.loc["0100030", "PaymentsToday"]) == ("300.00", "200.00")
    assert rows.loc["0100030", "SagePaymentsToday"] == "100.00"
    assert [o["payment_id"] for o in json.loads(rows.loc["0100030", "ours"])] == ["PMA", "PMB"]
    assert (rows.loc["0100031", "PaymentsToday"], rows.loc["0100031", "reduced"]) == ("0.00", False)


def test_over_applied_names_invoices_our_unwritten_lines_take_more_from_than_is_open(company: Company) -> None:
    company.invoice("0100030", "300.00", payments_today="250.00")
    company.invoice("0100031", "300.00")
    company.ours("PMA", "matched", "0100030", "80.00")
    company.ours("PMB", "matched", "0100031", "80.00")

    found = over_applied(company.conn, company.store)

    assert [(o.invoice, o.ours, o.open_amount, [p["payment_id"] for p in o.payments]) for o in found] == [
        ("01/ABF/0100030/IN", Decimal("80.00"), Decimal("50.00"), ["PMA"])
    ]
