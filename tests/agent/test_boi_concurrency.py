"""Two calls for one idempotency key at once on the BOI backend: one receipt is written, both get it.

The first call holds the key while it writes (its header write is held open by the fake); the second
logs on, waits for the key, then answers from what the first did. The simulated company's equivalent
is in tests/sandbox/test_sage_company.py.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ml_connector_dagster.agent import BOIBackend, agent_app
from ml_connector_dagster.agent.ledger import AgentLedger
from ml_connector_dagster.httpserve import serve_in_thread
from ml_connector_dagster.sage100 import AgentClient, RetryPolicy
from ml_connector_dagster.sage100.clients import clear_wsdl_cache
from ml_connector_dagster.sage100.model import CashReceipt, Credentials, SageRuleError

from support.boi_fake import HOME, RECEIPTS, TODAY, FakeSage
from support.sage import MakeRequest

BOUND = 10.0  # seconds: only ever reached if the code under test is broken


class HeldWrite:
    """Scripts the fake so the first receipt header write waits until released, then answers `first_rc`."""

    def __init__(self, sage: FakeSage, first_rc: Any = 1) -> None:
        self.started, self.released = threading.Event(), threading.Event()
        self.first_rc = first_rc
        sage.answers[(RECEIPTS, "nWrite")] = self

    def __call__(self, obj: Any, *args: Any) -> Any:
        if self.started.is_set():
            return obj._default("nWrite", args)
        self.started.set()
        assert self.released.wait(BOUND)
        if self.first_rc == 1:
            return obj._default("nWrite", args)
        obj.sLastErrorMsg = self.first_rc[1]
        return 0


class Call(threading.Thread):
    """A backend call on its own thread; `result` is what it returned or raised."""

    def __init__(self, call: Callable[[], CashReceipt]) -> None:
        super().__init__(daemon=True)
        self.call, self.result = call, None
        self.start()

    def run(self) -> None:
        try:
            self.result = self.call()
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            self.result = exc


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + BOUND
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.001)


def race(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest, held: HeldWrite
) -> tuple[Any, Any]:
    """The first call starts writing; the second arrives while it writes; then the first's write returns."""
    first = Call(lambda: backend.create_cash_receipt(creds, make_request("PM1")))
    assert held.started.wait(BOUND)
    second = Call(lambda: backend.create_cash_receipt(creds, make_request("PM1")))
    wait_until(lambda: not second.is_alive() or backend.calls_waiting("PM1") == 1)
    held.released.set()
    first.join(BOUND), second.join(BOUND)
    return first.result, second.result


def test_two_concurrent_creates_for_one_key_write_one_receipt_and_both_get_it(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest
) -> None:
    first, second = race(backend, sage, creds, make_request, HeldWrite(sage))

    assert sage.methods(RECEIPTS).count("nWrite") == 1 and len(sage.tables[RECEIPTS]) == 1
    assert first.receipt_id == second.receipt_id and (first.created, second.created) == (True, False)


def test_when_the_first_write_is_refused_the_waiting_create_makes_its_own_attempt(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest
) -> None:
    first, second = race(backend, sage, creds, make_request, HeldWrite(sage, (0, "Record is locked by another user.")))

    assert isinstance(first, SageRuleError) and "Record is locked" in first.message
    assert isinstance(second, CashReceipt) and second.created and len(sage.tables[RECEIPTS]) == 1


def test_a_create_that_cannot_wait_for_the_write_in_progress_is_told_so(
    sage: FakeSage, tmp_path: Path, creds: Credentials, make_request: MakeRequest
) -> None:
    backend = BOIBackend(
        HOME, AgentLedger(tmp_path / "ledger.sqlite"), dispatch=sage.dispatch, today=lambda: TODAY, claim_wait=0
    )
    held = HeldWrite(sage)
    first = Call(lambda: backend.create_cash_receipt(creds, make_request("PM1")))
    assert held.started.wait(BOUND)

    with pytest.raises(SageRuleError, match="PM1 is being written by another call") as caught:
        backend.create_cash_receipt(creds, make_request("PM1"))
    held.released.set()
    first.join(BOUND)

    assert caught.value.code == "AR_WriteInProgress" and first.result.created
    assert len(sage.tables[RECEIPTS]) == 1


def test_a_client_that_meets_a_write_in_progress_asks_again_and_gets_the_receipt(
    sage: FakeSage, tmp_path: Path, make_request: MakeRequest
) -> None:
    backend = BOIBackend(
        HOME, AgentLedger(tmp_path / "ledger.sqlite"), dispatch=sage.dispatch, today=lambda: TODAY, claim_wait=0
    )
    held = HeldWrite(sage)
    first = Call(lambda: backend.create_cash_receipt(Credentials("demo", "demo-password", "ABC"), make_request("PM1")))
    assert held.started.wait(BOUND)

    def first_finishes(delay: float) -> None:  # the client's backoff: meanwhile the first call completes
        held.released.set()
        first.join(BOUND)

    server = serve_in_thread(agent_app(backend))
    try:
        client = AgentClient(
            f"{server.url}/agent?wsdl",
            username="demo",
            password="demo-password",
            company_code="ABC",
            retry=RetryPolicy(attempts=2, sleep=first_finishes),
        )
        receipt = client.create_cash_receipt(make_request("PM1"))
    finally:
        clear_wsdl_cache()
        server.stop()

    assert receipt.receipt_id == first.result.receipt_id and not receipt.created
    assert len(sage.tables[RECEIPTS]) == 1


def test_creates_for_different_keys_do_not_wait_for_each_other(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest
) -> None:
    held = HeldWrite(sage)
    first = Call(lambda: backend.create_cash_receipt(creds, make_request("PM1", lines=(("0100030", "100.00"),))))
    assert held.started.wait(BOUND)

    other = backend.create_cash_receipt(creds, make_request("PM2"))
    held.released.set()
    first.join(BOUND)

    assert other.created and first.result.created and len(sage.tables[RECEIPTS]) == 2


def test_a_key_is_claimed_in_the_ledger_once(tmp_path: Path, make_request: MakeRequest) -> None:
    ledger = AgentLedger(tmp_path / "ledger.sqlite")

    first, second = ledger.claim(make_request("PM1")), ledger.claim(make_request("PM1"))

    assert (first, second) == ("GC00000001", None)
    assert ledger.get("PM1")[0] == "pending"


def test_a_second_agent_cannot_use_a_ledger_that_is_in_use(tmp_path: Path) -> None:
    first = AgentLedger(tmp_path / "ledger.sqlite")

    with pytest.raises(RuntimeError, match="another agent is using the ledger"):
        AgentLedger(tmp_path / "ledger.sqlite")
    first.close()
    AgentLedger(tmp_path / "ledger.sqlite").close()
