"""A played month: the 'small' scenario run end to end through the stand-ins and the real Dagster definitions
(`World`); and a generated company whose confirmed payments are matched and wait for the write-back
(`WriteBack`). The fixtures that build them are `world` and `make_write_back` in tests/reconciliation/conftest.py."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import dagster as dg

from ml_connector_dagster import warehouse
from ml_connector_dagster.bench.e2e import payment_id
from ml_connector_dagster.reconciliation.write_back import payment_rows, post_matched
from ml_connector_dagster.sage100 import AgentClient, CashReceiptRequest, ReceiptLine, RetryPolicy
from ml_connector_dagster.sandbox.dagster_driver import Driver
from ml_connector_dagster.sandbox.stack import Stack
from ml_connector_dagster.settings import Settings
from ml_connector_dagster.store import Store
from ml_connector_dagster.store.utc import utcnow

INITIAL_LOAD = [
    dg.AssetKey(k)
    for k in (
        ["sage100", "customers"],
        ["sage100", "ar_invoices"],
        ["gocardless", "customers"],
        ["reconciliation", "customer_map"],
    )
]


@dataclass
class World:
    stack: Stack
    driver: Driver
    store: Store

    def play(self, until: int | None = None) -> None:
        """Play steps up to step `until` (all by default), letting Dagster settle after each (Sage polled)."""
        status = self.stack.gocardless.world.status()
        for _ in range(status["step"], status["total_steps"] if until is None else until):
            self.stack.gocardless.play_step()
            assert self.stack.gocardless.wait_deliveries(60), "webhooks were not all delivered"
            self.driver.settle_step(idle=lambda: not self.store.inbox.due())

    def settle(self) -> None:
        self.driver.settle(idle=lambda: not self.store.inbox.due())

    def receipts(self, payment_id: str) -> list[dict]:
        """Cash receipt headers Sage holds for a payment (the agent keys them by the payment id)."""
        return [
            r for r in self.stack.sage.company.rows("AR_CashReceiptsHeader") if r["UDF_GC_PAYMENT_ID"] == payment_id
        ]

    def invoice(self, invoice_no: str) -> dict:
        return next(r for r in self.stack.sage.company.rows("AR_OpenInvoice") if r["InvoiceNo"] == invoice_no)

    def open_amount(self, invoice_no: str) -> Decimal:
        """What is still open on the invoice in Sage: Balance less what unposted receipts apply to it."""
        row = self.invoice(invoice_no)
        return Decimal(str(row["Balance"])) - Decimal(str(row["PaymentsToday"]))


# --- a company waiting for the write-back ------------------------------------------------------------------------

DECIDE_INBOX = ["inbox_customers", "inbox_payments", "inbox_refunds"]  # gocardless_inbox_job's ops, payouts aside
DECIDE = [
    dg.AssetKey(k.split("/"))
    for k in (
        "sage100/customers",
        "sage100/ar_invoices",
        "reconciliation/customer_map",
        "reconciliation/payment_matches",
    )
]


@dataclass
class WriteBack:
    """A generated company (`write_matching_scenario`): payment PMB00000n pays invoice 000000(n+1) of
    customer 01-B00000n exactly. Steps are played through the GoCardless stand-in's webhooks and decided by
    the real assets short of the write-back, which the tests run themselves (`post`)."""

    stack: Stack
    driver: Driver
    settings: Settings
    sleeps: list[float]  # backoff waits the agent client asked for: recorded, not slept

    @property
    def store(self) -> Store:
        return self.stack.store

    def ids(self, count: int) -> list[str]:
        return [payment_id(n) for n in range(count)]

    def step(self) -> None:
        """Play the next step of every payment's lifecycle and decide it (payment_matches), posting nothing."""
        self.stack.gocardless.play_step()
        assert self.stack.gocardless.wait_deliveries(60), "webhooks were not all delivered"
        inbox = self.driver.run_job("gocardless_inbox_job", ops=DECIDE_INBOX)
        record = self.driver.materialize(DECIDE)
        assert inbox.success and record.success, "the assets before the write-back failed"

    def settle(self) -> None:
        """What the Dagster daemon would do now: sensors launch runs (the write-back included) until idle."""
        self.driver.settle(idle=lambda: not self.store.inbox.due())

    def agent(self) -> AgentClient:
        return AgentClient.from_settings(
            self.settings.sage_agent(), retry=RetryPolicy(attempts=4, base_delay=0.5, sleep=self.sleeps.append)
        )

    def payments(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        with warehouse.connect(self.settings.warehouse_path, read_only=True) as conn:
            return payment_rows(conn, ids)

    def post(self, payments: Callable[[Sequence[str]], dict] | None = None, **kwargs: Any):
        """One write-back pass, as the cash_receipts asset runs it."""
        return post_matched(
            self.store, self.agent(), self.settings.reconciliation(), payments or self.payments, **kwargs
        )

    def request(self, pid: str, **changes: Any) -> CashReceiptRequest:
        """The cash receipt the write-back would ask for (the ledger's decision), with `changes`."""
        entry = self.store.ledger.get(pid)
        division, customer = entry.sage_customer.split("-", 1)
        lines = tuple(ReceiptLine(a["invoice_no"], a["invoice_type"], Decimal(a["amount"])) for a in entry.allocations)
        fields = {
            "idempotency_key": pid,
            "deposit_date": date.today(),
            "bank_code": self.settings.reconciliation().bank_code,
            "ar_division_no": division,
            "customer_no": customer,
            "amount": Decimal(entry.home_amount),
            "reference": pid,
            "lines": lines,
        }
        return CashReceiptRequest(**{**fields, **changes})

    def died_while_posting(self, pid: str, wrote: bool) -> None:
        """A run claimed the payment, wrote its receipt to Sage (or not) and died: its lease has run out."""
        assert self.store.ledger.claim(pid, "matched", "run-that-died", utcnow() - timedelta(seconds=1))
        if wrote:
            self.agent().create_cash_receipt(self.request(pid))

    def play_and_settle(self) -> None:
        """Play the next step through webhooks, poll Sage and let Dagster's sensors run everything, write-back
        included."""
        self.stack.gocardless.play_step()
        assert self.stack.gocardless.wait_deliveries(60), "webhooks were not all delivered"
        self.driver.settle_step(idle=lambda: not self.store.inbox.due())

    def receipts(self, pid: str) -> list[dict]:
        return [r for r in self.stack.sage.company.rows("AR_CashReceiptsHeader") if r["UDF_GC_PAYMENT_ID"] == pid]

    def actions(self, pid: str, actor: str | None = None) -> list[str]:
        return [r.action for r in self.store.audit.list(subject=pid) if actor is None or r.actor == actor]
