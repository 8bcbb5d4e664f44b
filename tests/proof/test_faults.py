"""Fault injection with real processes and servers on loopback: whatever breaks, every acknowledged event is
processed, no payment is posted twice, nothing is lost.

The faults: SOAP timeouts and 5xx from the agent, the agent killed after committing a receipt but before
answering, GoCardless 429s, 5xx and HTML error pages while events are processed, the receiver killed
(kill -9) during a burst of webhooks, and a Dagster run killed (kill -9) during the write-back.

Agent faults come from `FaultProxy`, a small HTTP/1.1 proxy in front of the agent that acts on the SOAP
operation of each request (answer 5xx without forwarding, forward and answer too late, forward and then
kill the agent or the run before the answer). The counts each test ends with are printed (see them with
`pytest -s`) and repeated in the assertion messages.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import httpx
import pytest

from ml_connector_dagster.bench.e2e import kill_session, write_matching_scenario
from ml_connector_dagster.bench.webhooks import ReceiverProcess
from ml_connector_dagster.httpserve import free_port
from ml_connector_dagster.sandbox.dagster_driver import Driver
from ml_connector_dagster.sandbox.stack import SANDBOX_WEBHOOK_SECRET, Stack, start_stack
from ml_connector_dagster.sandbox.webhook_sender import WebhookSender

from support.fault_proxy import FaultProxy, Rule

pytestmark = pytest.mark.slow  # processes, faults and the whole stack

ML_CONNECTOR = [sys.executable, "-c", "from ml_connector_dagster.cli import main; main()"]
PAYMENTS = 6


# --- processes ----------------------------------------------------------------------------------------------------


class AgentProcess:
    """`ml-connector agent --backend simulated` over an existing company database, in its own process group."""

    def __init__(self, company_dir: Path, port: int, env: dict[str, str]) -> None:
        self.company_dir, self.port, self.env = company_dir, port, env
        self.proc: subprocess.Popen | None = None

    def start(self, timeout: float = 60.0) -> None:
        self.proc = subprocess.Popen(
            [
                *ML_CONNECTOR,
                "agent",
                "--backend",
                "simulated",
                "--company-dir",
                str(self.company_dir),
                "--port",
                str(self.port),
            ],
            env=self.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        with httpx.Client(timeout=1) as client:
            while True:
                assert self.proc.poll() is None, f"the agent exited with {self.proc.returncode}"
                try:
                    if client.get(f"http://127.0.0.1:{self.port}/agent?wsdl").status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                assert time.monotonic() < deadline, "the agent did not serve its WSDL in time"
                time.sleep(0.05)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


# --- the world each test breaks ---------------------------------------------------------------------------------------


@dataclass
class World:
    stack: Stack
    driver: Driver
    root: Path

    def confirm_all(self) -> list[dict]:
        """Play step 1 (every payment confirmed) and wait until its webhooks are delivered."""
        events = self.stack.gocardless.play_step()
        assert self.stack.gocardless.wait_deliveries(60), "webhooks were not delivered"
        return events

    def settle(self) -> None:
        self.driver.settle(idle=lambda: not self.stack.store.inbox.due())

    def use_agent(self, base_url: str) -> None:
        """Point the product (runs in this process and processes started from here on) at another agent URL."""
        os.environ["ML_CONNECTOR_SAGE_AGENT_WSDL"] = f"{base_url}/agent?wsdl"

    def counts(self, acknowledged: set[str]) -> dict[str, int]:
        """What the proofs are about: acknowledged, processed and lost events; receipts per payment."""
        inbox = {r.event_id: r.status for r in self.stack.store.inbox.list(limit=None)}
        receipts = Counter(r["UDF_GC_PAYMENT_ID"] for r in self.stack.sage.company.rows("AR_CashReceiptsHeader"))
        ledger = self.stack.store.ledger.counts()
        return {
            "acknowledged": len(acknowledged),
            "processed": sum(1 for e in acknowledged if inbox.get(e) == "processed"),
            "lost": sum(1 for e in acknowledged if e not in inbox),
            "receipts": sum(receipts.values()),
            "payments_with_receipt": len(receipts),
            "posted_twice": sum(1 for n in receipts.values() if n > 1),
            "ledger_posted": ledger.get("posted", 0),
        }


def assert_exactly_once(world: World, acknowledged: set[str], payments: int, what: str) -> dict[str, int]:
    counts = world.counts(acknowledged)
    print(f"\n{what}: {counts}")
    assert counts["lost"] == 0, f"acknowledged events missing from the inbox: {counts}"
    assert counts["processed"] == counts["acknowledged"], f"acknowledged events not processed: {counts}"
    assert counts["posted_twice"] == 0, f"a payment was posted twice: {counts}"
    assert counts["payments_with_receipt"] == payments == counts["ledger_posted"], f"not every payment posted: {counts}"
    return counts


@pytest.fixture
def make_world(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., World]]:
    """Builds the sandbox stack on a generated company of `payments` payments and a Dagster driver over it;
    `env` overrides settings (e.g. the agent's WSDL behind a proxy). Everything is stopped afterwards."""
    cleanup: list[Callable[[], None]] = []

    def make(payments: int = PAYMENTS, **env: str) -> World:
        scenario = write_matching_scenario(tmp_path / "scenario", payments)
        stack = start_stack(scenario, tmp_path / "stack", webhook_retry_intervals=(0.2, 0.5, 1.0, 2.0))
        cleanup.append(stack.stop)
        for name, value in {**stack.env, "ML_CONNECTOR_SAGE_TIMEOUT_SECONDS": "2", **env}.items():
            monkeypatch.setenv(name, value)
        instance = dg.DagsterInstance.ephemeral()
        cleanup.append(instance.dispose)
        from ml_connector_dagster.definitions import defs

        return World(stack, Driver(defs, instance), tmp_path)

    yield make
    for stop in reversed(cleanup):
        stop()


def event_ids(events: list[dict]) -> set[str]:
    return {e["id"] for e in events}


# --- the agent misbehaves ---------------------------------------------------------------------------------------------


def test_agent_5xx_and_soap_timeouts_during_write_back_still_post_each_payment_once(make_world) -> None:
    world = make_world()
    proxy = FaultProxy(
        world.stack.sage.agent.port,
        [
            Rule("GetOpenInvoices", "status", status=503),  # a gateway in front of the agent: retried read
            Rule("GetOpenInvoices", "late", seconds=3),  # read times out (client timeout 2 s): retried
            Rule("CreateCashReceipt", "status", status=502),  # the write never reached the agent
            Rule("CreateCashReceipt", "late", seconds=3),  # written, answer too late: FindCashReceipt finds it
            Rule("CreateCashReceipt", "status", status=500),  # not transient: the run's RetryPolicy steps in
        ],
    )
    try:
        world.use_agent(proxy.url)
        acknowledged = event_ids(world.confirm_all())

        world.settle()

        injected = proxy.injected()
        assert injected == 5, f"only {injected} of 5 faults were injected: {proxy.seen}"
        counts = assert_exactly_once(world, acknowledged, PAYMENTS, "agent 5xx and timeouts")
        assert counts["receipts"] == PAYMENTS
    finally:
        proxy.stop()


def test_agent_killed_after_committing_a_receipt_before_answering_posts_it_once(make_world, tmp_path: Path) -> None:
    world = make_world()
    agent = AgentProcess(world.stack.home / "sandbox", free_port(), {**os.environ})
    agent.start()
    at_kill: dict[str, int] = {}
    restarted = threading.Event()

    def kill_then_restart() -> None:
        at_kill["receipts_committed"] = len(world.stack.sage.company.rows("AR_CashReceiptsHeader"))
        agent.kill()  # kill -9 between its commit and its answer; the proxy then drops the connection
        threading.Thread(target=lambda: (agent.start(), restarted.set()), daemon=True).start()

    proxy = FaultProxy(agent.port, [Rule("CreateCashReceipt", "drop_after", then=kill_then_restart)])
    try:
        world.use_agent(proxy.url)
        acknowledged = event_ids(world.confirm_all())

        world.settle()

        assert restarted.wait(60), "the agent was not restarted"
        assert at_kill == {"receipts_committed": 1}, f"the agent was not killed right after its first commit: {at_kill}"
        assert_exactly_once(world, acknowledged, PAYMENTS, "agent killed after commit")
        assert any(
            op == "FindCashReceipt" for op, _ in proxy.seen[proxy.seen.index(("CreateCashReceipt", "drop_after")) :]
        )
    finally:
        proxy.stop()
        agent.kill()


# --- GoCardless misbehaves --------------------------------------------------------------------------------------------


def test_gocardless_429_5xx_and_html_pages_while_processing_lose_nothing(make_world) -> None:
    world = make_world()
    faults = [
        {"kind": "rate_limit", "count": 2, "path": "/payments", "reset_seconds": 1},
        {"kind": "status", "status": 500, "count": 1, "path": "/payments"},
        {"kind": "status", "status": 503, "count": 1, "path": "/customers"},
        {"kind": "html", "status": 502, "count": 2, "path": "/customers"},
        {"kind": "html", "status": 504, "count": 1, "path": "/payments"},
    ]
    acknowledged = event_ids(world.confirm_all())
    world.stack.gocardless.set_faults(faults)

    world.settle()

    status = world.stack.gocardless.status()
    assert status["injected"] == 7 and status["faults"] == [], f"faults left unconsumed: {status['faults']}"
    assert_exactly_once(world, acknowledged, PAYMENTS, "GoCardless 429/5xx/HTML")


# --- the receiver dies during a burst ---------------------------------------------------------------------------------


def test_receiver_killed_during_a_burst_keeps_every_acknowledged_event(make_world) -> None:
    payments = 80
    world = make_world(payments)
    port = free_port()
    receiver = ReceiverProcess({**os.environ, "PYTHONUNBUFFERED": "1"}, port, world.root / "receiver.log")
    events = world.stack.gocardless.world.play_next_step()  # GoCardless's side; we deliver one event per webhook
    sender = WebhookSender(
        f"{receiver.url}/webhooks/gocardless",
        SANDBOX_WEBHOOK_SECRET,
        batch_size=1,
        retry_intervals=(0.3, 0.5, 1.0, 2.0, 4.0, 8.0),
    )
    try:
        receiver.wait_ready()
        sender.send(events)
        assert sender.wait_for(lambda s: s["webhooks_delivered"] >= 15, 30), "the burst did not start"
        receiver.kill()  # kill -9 mid-burst
        acknowledged_before_kill = sender.status()["webhooks_delivered"]
        stored_after_kill = len(world.stack.store.inbox.list(limit=None))
        receiver = ReceiverProcess({**os.environ, "PYTHONUNBUFFERED": "1"}, port, world.root / "receiver.log")
        receiver.wait_ready()
        assert sender.wait_idle(60), "the sender did not finish its retries"
        stats = sender.status()
    finally:
        sender.close()
        receiver.stop()

    print(
        f"\nreceiver killed: {acknowledged_before_kill} webhooks acknowledged before the kill, "
        f"{stored_after_kill} events stored at that point; sender {stats}"
    )
    assert stored_after_kill >= acknowledged_before_kill, (acknowledged_before_kill, stored_after_kill)
    assert acknowledged_before_kill < payments, "the kill came after the burst"
    assert stats["failed_attempts"] >= 1 and stats["webhooks_failed"] == 0, stats
    assert stats["webhooks_delivered"] == payments, stats

    world.settle()

    assert_exactly_once(world, event_ids(events), payments, "receiver killed mid-burst")


# --- a Dagster run dies during the write-back -------------------------------------------------------------------------

POST_JOB = (
    "import dagster as dg\nfrom ml_connector_dagster.definitions import defs\n"
    "job = defs.resolve_job_def('post_cash_receipts_job')\n"
    "result = job.execute_in_process(instance=dg.DagsterInstance.get(), raise_on_error=False)\n"
    "raise SystemExit(0 if result.success else 1)\n"
)


@pytest.mark.parametrize("moment", ["after the agent committed the receipt", "after the claim, before the write"])
def test_a_run_killed_during_write_back_is_finished_by_the_next_run_exactly_once(make_world, moment: str) -> None:
    world = make_world()
    acknowledged = event_ids(world.confirm_all())
    # The payments are decided (matched) by the inbox's assets short of the write-back: nothing posted yet.
    assert world.driver.run_job("gocardless_inbox_job", ops=["inbox_customers", "inbox_payments"]).success
    world.driver.materialize(
        [
            dg.AssetKey(k.split("/"))
            for k in (
                "sage100/customers",
                "sage100/ar_invoices",
                "reconciliation/customer_map",
                "reconciliation/payment_matches",
            )
        ]
    )
    assert world.stack.store.ledger.counts() == {"matched": PAYMENTS}
    dagster_home = world.root / "dagster"
    dagster_home.mkdir()
    (dagster_home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    state: dict[str, object] = {}
    run: subprocess.Popen | None = None

    def kill_run() -> None:
        state["ledger"] = world.stack.store.ledger.counts()
        state["receipts"] = len(world.stack.sage.company.rows("AR_CashReceiptsHeader"))
        os.killpg(run.pid, signal.SIGKILL)  # kill -9 the run (its own process group)

    kind = "drop_after" if moment.startswith("after the agent") else "drop_before"
    proxy = FaultProxy(world.stack.sage.agent.port, [Rule("CreateCashReceipt", kind, then=kill_run)])
    try:
        world.use_agent(proxy.url)
        run = subprocess.Popen(
            [sys.executable, "-c", POST_JOB],
            env={**os.environ, "DAGSTER_HOME": str(dagster_home)},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        try:
            run.wait(120)
        finally:
            kill_session(run.pid, grace=0)
        assert run.returncode == -signal.SIGKILL, f"the run was not killed (exit {run.returncode})"
        assert state["ledger"] == {"matched": PAYMENTS - 1, "posting": 1}, state
        assert state["receipts"] == (1 if kind == "drop_after" else 0), state

        world.settle()  # the next run: the write-back follows the matches (automation) and its retry sensor

        assert_exactly_once(world, acknowledged, PAYMENTS, f"run killed {moment}")
    finally:
        proxy.stop()
