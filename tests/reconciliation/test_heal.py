"""Decisions that heal: a held or pending payment is decided again when what held it changes (Sage's invoices
or customers as polled, the GoCardless customer's resolution, the payment itself), and only then; operators
win. Rows are put straight into the warehouse and the ledger, as the polls and the inbox would."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ml_connector_dagster.reconciliation import customers, review_actions
from ml_connector_dagster.reconciliation.evaluate import EvaluationSummary, evaluate_payments
from ml_connector_dagster.reconciliation.tables import ensure_tables
from ml_connector_dagster.settings import ReconciliationSettings
from ml_connector_dagster.store import Store
from ml_connector_dagster.store.review import ReviewItem

SETTINGS = ReconciliationSettings(home_currency="GBP", bank_code="B")
CREATED = datetime(2026, 11, 2, 8, 0, 0)
FIRST_POLL = datetime(2026, 11, 2, 9, 0, 0)


@dataclass
class Month:
    """A warehouse and its operational store, advanced poll by poll (each poll stamps what it wrote later)."""

    conn: duckdb.DuckDBPyConnection
    store: Store
    now: datetime = FIRST_POLL

    def poll(self) -> datetime:
        self.now += timedelta(minutes=5)
        return self.now

    def sage_customer(self, no: str, email: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO sage_customers VALUES ('01', ?, ?, ?, 0, 'A', '20261102', '09.000000', ?)",
            [no, f"{no} Ltd", email, self.poll()],
        )

    def invoice(self, customer: str, no: str, balance: str) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO sage_ar_invoices VALUES ('01', ?, ?, 'IN', DATE '2026-10-01', DATE '2026-10-31', "
            "?, 0, '20261102', '09.000000', ?)",
            [customer, no, balance, self.poll()],
        )

    def gocardless_customer(self, cid: str, email: str, metadata: str = "{}") -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO gocardless_customers VALUES (?, ?, NULL, NULL, NULL, ?, ?, ?)",
            [cid, email, metadata, CREATED, self.poll()],
        )

    def payment(self, pid: str, customer: str, amount: int, currency: str = "GBP", **values: Any) -> None:
        row = {"status": "confirmed", "fx_currency": None, "fx_amount": None, "retry_expected": None, **values}
        self.conn.execute(
            "INSERT OR REPLACE INTO gocardless_payments (id, amount, currency, status, reference, metadata, customer, "
            "created_at, fetched_at, fx_currency, fx_amount, retry_expected) VALUES (?, ?, ?, ?, '', ?, ?, ?, ?, ?, "
            "?, ?)",
            [
                *(pid, amount, currency, row["status"], row.get("metadata", "{}"), customer),
                *(CREATED + timedelta(minutes=int(pid[2:])), self.poll()),
                *(row["fx_currency"], row["fx_amount"], row["retry_expected"]),
            ],
        )

    def evaluate(self) -> EvaluationSummary:
        customers.build_customer_map(self.conn)
        return evaluate_payments(self.conn, self.store, SETTINGS)

    def status(self, pid: str) -> tuple[str, str | None]:
        entry = self.store.ledger.entry(pid)
        return entry.status, entry.reason

    def items(self, pid: str) -> list[ReviewItem]:
        return [i for i in self.store.review.list(status=None) if i.subject == pid]

    def records(self, pid: str, action: str) -> list[dict[str, Any]]:
        return [r.details for r in self.store.audit.list(subject=pid, action=action)]


@pytest.fixture
def month(tmp_path: Path, store: Store) -> Iterator[Month]:
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    ensure_tables(conn)
    m = Month(conn, store)
    m.sage_customer("ABF", "ap@abf.test")
    m.gocardless_customer("CU1", "ap@abf.test")
    yield m
    conn.close()


def test_a_payment_held_for_an_invoice_not_entered_yet_is_posted_once_the_invoice_arrives(month: Month) -> None:
    month.payment("PM1", "CU1", 25000)
    month.evaluate()
    assert month.status("PM1") == ("held", "amount_mismatch")

    month.invoice("ABF", "0100050", "250.00")
    summary = month.evaluate()

    assert month.status("PM1") == ("matched", None)
    [item] = month.items("PM1")
    assert (item.status, item.resolved_by) == ("resolved", "system")
    assert item.note is not None and item.note.startswith("resolved automatically: Sage invoices of 01-ABF changed")
    assert "0100050" in item.note
    [held], [matched] = month.records("PM1", "payment.held"), month.records("PM1", "payment.matched")
    assert held["reason"] == "amount_mismatch"
    assert matched["decided_again"]["previous_reason"] == "amount_mismatch"
    assert (summary.decided_again, summary.resolved_automatically) == (1, 1)


def test_a_held_decision_names_what_it_waits_for_in_the_item_and_the_audit(month: Month) -> None:
    month.gocardless_customer("CU2", "typo@nowhere.test")
    month.payment("PM1", "CU2", 25000)

    month.evaluate()

    [item] = month.items("PM1")
    [record] = month.records("PM1", "payment.held")
    assert item.details["waits_for"] == record["waits_for"]
    assert "GoCardless customer CU2 (typo@nowhere.test)" in item.details["waits_for"][0]


def test_a_corrected_email_resolves_the_customer_and_replaces_the_hold_reason_on_the_same_item(month: Month) -> None:
    month.gocardless_customer("CU2", "accounts@delta.test")
    month.payment("PM1", "CU2", 25000)
    month.evaluate()
    assert month.status("PM1") == ("held", "customer_not_found")

    month.sage_customer("DELTA", "accounts@delta.test ")  # someone fixes the email in Sage
    month.evaluate()

    [item] = month.items("PM1")  # one item, its reason replaced: the customer has no open invoice yet
    assert (item.status, item.reason) == ("open", "amount_mismatch")
    [changed] = month.records("PM1", "review.reason_changed")
    assert (changed["from"], changed["to"]) == ("customer_not_found", "amount_mismatch")
    assert "01-DELTA" in changed["change"]


def test_held_payments_whose_inputs_did_not_change_are_not_decided_again(month: Month) -> None:
    month.sage_customer("OTHER", "other@x.test")
    month.gocardless_customer("CU3", "other@x.test")
    month.payment("PM1", "CU1", 25000)
    month.payment("PM2", "CU3", 10000)
    month.evaluate()

    month.invoice("OTHER", "0100090", "99.00")  # a change to another customer only
    summary = month.evaluate()

    assert summary.evaluated == 1
    assert len(month.records("PM1", "payment.held")) == 1
    assert len(month.records("PM2", "payment.held")) == 2


def test_a_dismissed_item_stays_dismissed_whatever_changes(month: Month) -> None:
    month.payment("PM1", "CU1", 25000)
    month.evaluate()
    [item] = month.items("PM1")
    review_actions.dismiss(month.store, item.id, note="paid by cheque, not to post", by="alice")

    month.invoice("ABF", "0100050", "250.00")
    month.evaluate()
    month.payment("PM1", "CU1", 25000, status="paid_out")  # and the payment changes too
    month.evaluate()

    assert month.status("PM1") == ("held", "amount_mismatch")
    assert [(i.status, i.resolved_by) for i in month.items("PM1")] == [("dismissed", "alice")]
    assert all(r["left_to"] == "dismissed by alice" for r in month.records("PM1", "payment.unchanged"))


def test_an_item_someone_has_open_is_changed_only_with_the_audit_saying_so(month: Month) -> None:
    month.payment("PM1", "CU1", 25000)
    month.evaluate()
    [item] = month.items("PM1")
    month.store.audit.append("review.opened", "PM1", {"item": item.id}, actor="alice")

    month.invoice("ABF", "0100050", "250.00")
    month.evaluate()

    [resolved] = month.records("PM1", "review.resolved")
    assert resolved["while_open_by"] == "alice"
    [closed] = month.items("PM1")
    assert closed.note is not None and "(changed while alice had it open)" in closed.note


def test_a_foreign_payment_with_no_rate_waits_for_its_converted_amount_then_is_decided(month: Month) -> None:
    month.invoice("ABF", "0100050", "80.00")
    month.payment("PM1", "CU1", 10000, currency="USD", fx_currency="GBP")
    month.evaluate()
    assert month.status("PM1") == ("pending", "awaiting_fx_amount")
    assert month.items("PM1") == []
    [pending] = month.records("PM1", "payment.pending")
    assert "converted amount in GBP" in pending["waits_for"][0]

    month.payment("PM1", "CU1", 10000, currency="USD", fx_currency="GBP", status="paid_out")  # payout pending FX
    month.evaluate()
    assert month.status("PM1") == ("pending", "awaiting_fx_amount")
    assert len(month.records("PM1", "payment.pending")) == 1  # still waiting: nothing new to say

    month.payment("PM1", "CU1", 10000, currency="USD", fx_currency="GBP", fx_amount=8000, status="paid_out")
    month.evaluate()
    entry = month.store.ledger.entry("PM1")
    assert (entry.status, Decimal(entry.home_amount or "0")) == ("matched", Decimal("80.00"))


def test_a_foreign_payment_paid_out_in_its_own_currency_is_held_currency_unsupported(month: Month) -> None:
    month.payment("PM1", "CU1", 10000, currency="USD", status="paid_out")

    month.evaluate()

    assert month.status("PM1") == ("held", "currency_unsupported")
    [item] = month.items("PM1")
    assert "a rate for USD" in item.details["waits_for"][0]


def test_a_payment_held_currency_unsupported_before_waits_once_gocardless_converts_it(month: Month) -> None:
    month.store.ledger.upsert("PM1", status="held", reason="currency_unsupported", gocardless_customer="CU1")
    month.store.review.open_item("PM1", "held", "currency_unsupported", {"payment_id": "PM1"})
    month.payment("PM1", "CU1", 10000, currency="USD", fx_currency="GBP", status="paid_out")

    month.evaluate()

    assert month.status("PM1") == ("pending", "awaiting_fx_amount")
    [item] = month.items("PM1")
    assert item.status == "resolved" and item.note is not None and "now waiting for GoCardless's converted" in item.note


def test_a_reversal_not_written_yet_is_restored_when_a_chargeback_is_cancelled(month: Month) -> None:
    month.store.ledger.upsert("PM1", status="reversal_required", reason="chargeback", gocardless_customer="CU1")
    month.store.review.open_item("PM1", "reversal_required", "chargeback", {"payment_id": "PM1"})
    month.payment("PM1", "CU1", 25000, status="paid_out")  # chargeback_cancelled puts it back to paid_out

    month.evaluate()

    assert month.status("PM1") == ("posted", None)
    [item] = month.items("PM1")
    assert item.status == "resolved" and item.note is not None and "receipt stands" in item.note
    assert month.records("PM1", "payment.restored")


def test_a_payment_held_behind_one_of_ours_is_decided_again_when_ours_is_not_collected(month: Month) -> None:
    month.invoice("ABF", "0100050", "250.00")
    month.payment("PM1", "CU1", 25000)
    month.payment("PM2", "CU1", 25000, metadata='{"sage_invoice": "0100050"}')
    month.evaluate()
    assert (month.status("PM1"), month.status("PM2")) == (("matched", None), ("held", "invoice_already_collected"))

    month.payment("PM1", "CU1", 25000, status="failed")
    month.evaluate()

    assert (month.status("PM1"), month.status("PM2")) == (("not_collected", "failed"), ("matched", None))
    [item] = month.items("PM2")
    assert item.status == "resolved" and item.note is not None and "our payment PM1 of 01-ABF" in item.note
