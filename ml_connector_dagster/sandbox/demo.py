"""`ml-connector demo`: play a scenario through the real product on loopback and summarise the outcome.

The stand-ins (Sage company, eBusiness Web Services, agent, GoCardless API and webhook sender) and our
receiver run on free ports in a temporary ML_CONNECTOR_HOME. Each scenario step is played (what people
do in Sage first, then the GoCardless actions), its webhooks delivered and acknowledged, then Sage is
polled and the Dagster definitions are driven (sensor ticks, runs, write-back) until the step settles.
At the end a month-end backfill re-reads the month's payments from the API, so payments whose events
the product does not subscribe to are known too (as pending).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TypedDict

import dagster as dg

from .. import money
from ..store.ledger import LedgerEntry
from .dagster_driver import Driver
from .scenario import Scenario, load_scenario
from .stack import Stack, start_stack

INITIAL_LOAD = (
    ("sage100", "customers"),
    ("sage100", "ar_invoices"),
    ("gocardless", "customers"),
    ("reconciliation", "customer_map"),
)
MONTH_END = (("reconciliation", "payment_matches"), ("reconciliation", "payouts"))
STATUSES = ("pending", "posted", "held", "not_collected", "reversal_required", "reversed")


class Allocation(TypedDict):
    invoice: str
    amount: str  # a decimal string, e.g. "1200.00"


class PaymentSummary(TypedDict):
    """One payment as the demo reports it: its ledger status, Sage customer and home-currency amount."""

    id: str
    status: str
    reason: str | None
    customer: str | None  # "01-ABF"
    amount: str | None  # in the home currency, once known
    original: str | None  # what GoCardless collected, e.g. "100.00 USD"
    allocations: list[Allocation]  # only once a receipt was posted (and while it is or was reversed)
    receipt: str | None


class Total(TypedDict):
    count: int
    amount: str


class Totals(TypedDict):
    payments: int
    by_status: dict[str, Total]
    held_by_reason: dict[str | None, Total]  # a held payment without a reason code counts under null
    posted_amount: str
    runs: int
    failed_runs: int


class DemoJson(TypedDict):
    payments: list[PaymentSummary]
    totals: Totals


@dataclass
class DemoResult:
    home: Path
    payments: list[PaymentSummary]
    totals: Totals
    runs: int
    failed_runs: list[str] = field(default_factory=list)

    def as_json(self) -> DemoJson:
        return {"payments": self.payments, "totals": self.totals}


@dataclass
class _Tally:
    """How many payments, and their home-currency amounts added up."""

    count: int = 0
    amount: Decimal = Decimal("0.00")

    def add(self, amount: str | None) -> None:
        self.count += 1
        self.amount += Decimal(amount or "0")

    def total(self) -> Total:
        return {"count": self.count, "amount": str(self.amount)}


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """The product reads its settings from the environment at run time: set them for the demo only."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_demo(
    scenario_dir: Path, home: Path | None = None, progress: Callable[[str], None] = lambda _: None
) -> DemoResult:
    scenario = load_scenario(scenario_dir)  # a bad scenario fails here, before anything starts
    home = Path(home or tempfile.mkdtemp(prefix="ml-connector-demo-"))
    dagster_home = home / "dagster"
    dagster_home.mkdir(parents=True, exist_ok=True)
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    progress(f"home {home}")
    with start_stack(scenario, home) as stack, _environment({**stack.env, "DAGSTER_HOME": str(dagster_home)}):
        progress(
            f"stand-ins up: Sage agent {stack.sage.agent.url}, GoCardless {stack.gocardless.url}, "
            f"receiver {stack.receiver.url}"
        )
        from ..definitions import defs  # imported with the settings in place (nothing is read at import)

        with dg.DagsterInstance.from_config(str(dagster_home)) as instance:
            driver = Driver(defs, instance)
            _play(stack, driver, scenario, progress)
            result = summarise(home, stack.store.ledger.list(), driver)
    return result


def _play(stack: Stack, driver: Driver, scenario: Scenario, progress: Callable[[str], None]) -> None:
    driver.materialize([dg.AssetKey(list(k)) for k in INITIAL_LOAD])
    progress("initial load: Sage customers and open invoices, GoCardless customers, customer map")
    steps = stack.gocardless.world.steps  # the scenario's, and one more when the last payouts await their rates
    healed = 0
    for number, actions in enumerate(steps, start=1):
        played = stack.gocardless.play()
        if not stack.gocardless.wait_deliveries(60):
            raise RuntimeError(f"step {number}: webhooks were not all delivered within 60 s")
        runs = driver.settle_step(idle=lambda: not stack.store.inbox.due())
        counts = stack.store.ledger.counts()
        known = ", ".join(f"{k} {v}" for k, v in sorted(counts.items())) or "no payment collected or failed yet"
        sage = f"{len(played.sage_changes)} Sage changes, " if played.sage_changes else ""
        healed, before = _resolved_automatically(stack), healed
        resolved = f"; {healed - before} review items resolved automatically" if healed > before else ""
        progress(
            f"step {number}/{len(steps)}: {sage}{len(actions)} actions, {len(played.events)} events, "
            f"{runs} runs; {known}{resolved}"
        )
    _month_end(driver)
    progress("month-end: payments re-read from the API (backfill), matches and payouts refreshed")


def _resolved_automatically(stack: Stack) -> int:
    """Review items closed because what held their payment changed (a held decision that healed), so far."""
    resolved = stack.store.review.list(status="resolved")
    return sum(1 for item in resolved if (item.note or "").startswith("resolved automatically"))


def _month_end(driver: Driver) -> None:
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    driver.backfill(dg.AssetKey(["gocardless", "payments"]), today, today)  # the month's payments: created today
    driver.materialize([dg.AssetKey(list(k)) for k in MONTH_END])
    driver.settle()


def summarise(home: Path, entries: list[LedgerEntry], driver: Driver) -> DemoResult:
    entries = sorted(entries, key=lambda e: e.payment_id)
    payments = [payment_summary(e) for e in entries]
    by_status = {s: _Tally() for s in STATUSES}
    by_reason: defaultdict[str | None, _Tally] = defaultdict(_Tally)
    for p in payments:
        by_status.setdefault(p["status"], _Tally()).add(p["amount"])
        if p["status"] == "held":
            by_reason[p["reason"]].add(p["amount"])
    totals: Totals = {
        "payments": len(payments),
        "by_status": {k: v.total() for k, v in by_status.items()},
        "held_by_reason": {k: v.total() for k, v in sorted(by_reason.items())},
        "posted_amount": str(by_status["posted"].amount),
        "runs": len(driver.runs),
        "failed_runs": sum(1 for r in driver.runs if not r.success),
    }
    return DemoResult(home, payments, totals, len(driver.runs), [r.run_id for r in driver.runs if not r.success])


def payment_summary(e: LedgerEntry) -> PaymentSummary:
    return {
        "id": e.payment_id,
        "status": e.status,
        "reason": e.reason,
        "customer": e.sage_customer,
        "amount": e.home_amount,
        "original": _original(e),
        "allocations": [{"invoice": a["invoice_no"], "amount": str(a["amount"])} for a in e.allocations]
        if e.status in ("posted", "reversal_required", "reversed")
        else [],
        "receipt": (e.receipt or {}).get("receipt_id"),
    }


def _original(e: LedgerEntry) -> str | None:
    """The amount GoCardless collected, in its own currency ("100.00 USD"), once the ledger has it."""
    if e.amount_minor is None:
        return None
    if e.currency is None:
        raise ValueError(f"the ledger has an amount but no currency for payment {e.payment_id}")
    return f"{money.to_decimal(e.amount_minor, e.currency)} {e.currency}"


def remove_home(home: Path) -> None:
    shutil.rmtree(home, ignore_errors=True)
