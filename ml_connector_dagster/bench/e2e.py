"""End-to-end benchmark: from a webhook acknowledged to its cash receipt committed in Sage, through the REAL
Dagster daemon (sensors, queued run coordinator, run launcher) - no in-process shortcut.

    ml-connector bench e2e --payments 20

Arrange: a generated company where each of K payments pays one invoice exactly (`write_matching_scenario`),
the sandbox stack on loopback (Sage stand-ins, GoCardless stand-in, our receiver), and `dagster-daemon run`
as a child process with its own DAGSTER_HOME (the repository's dagster.yaml) and the stack's settings.
Once the daemon's inbox sensor has ticked, the K payments are confirmed in the GoCardless stand-in and
each event is delivered as its own signed webhook, `spacing` seconds apart. Measured per payment: from
the receiver's 204 to the moment its receipt (idempotency key = payment id) is seen in the simulated
company's ML_Idempotency table (polled every 0.1 s; a receipt's rows are written in one transaction).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import httpx

from ..gocardless.webhooks import sign
from ..instance_config import REPO_DAGSTER_YAML  # noqa: F401 - where the instance settings come from
from ..instance_config import instance_yaml as packaged_instance_yaml

if TYPE_CHECKING:  # the sandbox is imported when the benchmark runs, not with the CLI
    from ..sandbox.gocardless_shapes import Event, Webhook
    from ..sandbox.sage_company import SageCompany

COMPANY = {
    "company_code": "BEN",
    "company_name": "Bench Services Ltd",
    "home_currency": "GBP",
    "bank_code": "A",
    "logon": {"Username": "bench", "Password": "bench-password"},
    "fx_rates": {},
    "settings": {"collect_on": "confirmed", "on_tie": "oldest", "sync_customer_metadata": False},
    "today": "2026-11-25",
}
READY_LINE = "Sensor gocardless_inbox_sensor"  # the daemon logs each completed tick of the inbox sensor


class BenchError(RuntimeError):
    """The benchmark could not finish (the daemon died, receipts did not appear in time, ...)."""


# --- a scenario where every payment becomes exactly one cash receipt -------------------------------------------


def write_matching_scenario(
    root: str | Path, payments: int, *, lifecycle: str = "confirmed", customers: int | None = None
) -> Path:
    """`payments` payments over `customers` customers (default: one each), each paying one invoice exactly.

    Payment `PMB000123` pays invoice `0000124` (named in its reference `INV-0000124`) of customer
    `01-B000123`, linked by `metadata.sage_customer`; each customer also has an older invoice of 1.23
    so the reference, not "oldest first", decides. Amounts differ per payment, so there are no ties.
    """
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    n_cust = max(1, min(customers or payments, max(payments, 1)))
    (root / "company.json").write_text(json.dumps(COMPANY, indent=2), encoding="utf-8")
    _csv(
        root / "sage_customers.csv",
        ["ARDivisionNo", "CustomerNo", "CustomerName", "EmailAddress"],
        [["01", _cust(c), f"Customer {c}", f"ap{c}@bench.example"] for c in range(n_cust)],
    )
    invoices, pays = [], []
    for p in range(payments):
        c = p % n_cust
        amount = 10_000 + p
        invoice_no = f"{p + 1:07d}"
        invoices.append(
            ["01", _cust(c), invoice_no, "IN", "2026-10-01", "2026-10-31", f"{amount // 100}.{amount % 100:02d}"]
        )
        invoices.append(["01", _cust(c), f"9{p + 1:06d}", "IN", "2026-09-01", "2026-09-30", "1.23"])
        pays.append(
            [
                payment_id(p),
                f"MDB{c:06d}",
                str(amount),
                "GBP",
                "2026-11-10",
                f"INV-{invoice_no}",
                "Bench payment",
                "{}",
                "",
                "",
                lifecycle,
            ]
        )
    _csv(
        root / "sage_invoices.csv",
        ["ARDivisionNo", "CustomerNo", "InvoiceNo", "InvoiceType", "InvoiceDate", "InvoiceDueDate", "Balance"],
        invoices,
    )
    _csv(
        root / "gocardless_customers.csv",
        ["id", "email", "given_name", "family_name", "company_name", "metadata"],
        [
            [
                f"CUB{c:06d}",
                f"ap{c}@bench.example",
                "",
                "",
                f"Customer {c}",
                json.dumps({"sage_customer": f"01-{_cust(c)}"}),
            ]
            for c in range(n_cust)
        ],
    )
    _csv(root / "gocardless_mandates.csv", ["id", "customer"], [[f"MDB{c:06d}", f"CUB{c:06d}"] for c in range(n_cust)])
    _csv(
        root / "gocardless_payments.csv",
        [
            "id",
            "mandate",
            "amount",
            "currency",
            "charge_date",
            "reference",
            "description",
            "metadata",
            "fx_currency",
            "fx_amount",
            "lifecycle",
        ],
        pays,
    )
    return root


def payment_id(n: int) -> str:
    return f"PMB{n:06d}"


def _cust(c: int) -> str:
    return f"B{c:06d}"


def _csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)


# --- the Dagster daemon as a child process ------------------------------------------------------------------------


def prepare_dagster_home(path: Path, *, instance_yaml: str | None = None) -> Path:
    """A DAGSTER_HOME with the project's dagster.yaml (see `instance_config`), or `instance_yaml`, and a
    workspace.yaml for the code location `ml_connector_dagster.definitions`, as `dagster dev` / the daemon
    load it."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "dagster.yaml").write_text(
        instance_yaml if instance_yaml is not None else packaged_instance_yaml(), encoding="utf-8"
    )
    (path / "workspace.yaml").write_text(
        "load_from:\n  - python_module:\n      module_name: ml_connector_dagster.definitions\n"
        "      location_name: ml_connector_dagster\n",
        encoding="utf-8",
    )
    return path


class DaemonProcess:
    """`dagster-daemon run -w workspace.yaml` in its own session; `stop()` ends every process of that session
    (the daemon, its code server and any run workers it launched)."""

    def __init__(self, dagster_home: Path, env: dict[str, str], log: Path) -> None:
        import subprocess

        self.log_path = log
        self._log = log.open("ab")
        exe = Path(sys.executable).with_name("dagster-daemon")
        # Without the dagster-daemon script beside this Python, run its module: there is no public `-m` name.
        command = [str(exe)] if exe.exists() else [sys.executable, "-m", "dagster._daemon"]
        self.proc = subprocess.Popen(
            [*command, "run", "-w", str(dagster_home / "workspace.yaml")],
            env={**env, "DAGSTER_HOME": str(dagster_home)},
            cwd=str(dagster_home),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 120.0) -> None:
        """Until the inbox sensor has completed a tick (the code location is loaded and sensors run)."""
        deadline = time.monotonic() + timeout
        while READY_LINE not in self.log_path.read_text(errors="replace"):
            if self.proc.poll() is not None:
                raise BenchError(f"dagster-daemon exited with {self.proc.returncode}; see {self.log_path}")
            if time.monotonic() > deadline:
                raise BenchError(f"dagster-daemon's sensors did not tick within {timeout:.0f} s; see {self.log_path}")
            time.sleep(0.2)

    def stop(self) -> None:
        kill_session(self.proc.pid)
        try:
            self.proc.wait(10)
        finally:
            self._log.close()


def session_members(sid: int) -> list[int]:
    """Pids of the processes in session `sid` (Linux /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.getsid(int(entry.name)) == sid:
                    members.append(int(entry.name))
            except (ProcessLookupError, PermissionError):
                continue
    return members


def kill_session(sid: int, grace: float = 5.0) -> None:
    """SIGTERM every process of the session, then SIGKILL what is left after `grace` seconds."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in session_members(sid):
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and any(_alive(p) for p in session_members(sid)):
            time.sleep(0.1)


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return False
    return state != "Z"


# --- the benchmark ------------------------------------------------------------------------------------------------


def run(
    payments: int = 20,
    *,
    spacing: float = 0.5,
    timeout: float = 600.0,
    details: dict[str, object] | None = None,
    workdir: Path | None = None,
    instance_yaml: str | None = None,
) -> dict[str, object]:
    """Return payments, p50_s, p95_s, max_s (seconds from webhook 204 to receipt committed).

    `details`, if given, is filled with the daemon's startup time and each payment's latency. Everything
    lives in a temporary folder, deleted on success; `workdir` keeps it (daemon.log, the Dagster home).
    `instance_yaml` replaces the repository's dagster.yaml (to try another run coordinator setting).
    """
    from ..sandbox.stack import SANDBOX_WEBHOOK_SECRET, start_stack

    if payments < 1:
        raise ValueError("payments must be at least 1")
    root = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="ml-connector-bench-e2e-"))
    ok = False
    try:
        scenario = write_matching_scenario(root / "scenario", payments)
        with start_stack(scenario, root / "home") as stack:
            dagster_home = prepare_dagster_home(root / "dagster", instance_yaml=instance_yaml)
            env = {k: v for k, v in os.environ.items() if not k.startswith("ML_CONNECTOR_")}
            daemon = DaemonProcess(dagster_home, {**env, **stack.env}, root / "daemon.log")
            try:
                started = time.monotonic()
                daemon.wait_ready()
                ready_s = time.monotonic() - started
                events = stack.gocardless.world.play_next_step()  # confirm every payment; we deliver them
                acked = _deliver(stack.webhook_url, SANDBOX_WEBHOOK_SECRET, events, spacing)
                committed = _wait_receipts(stack.sage.company, set(acked), timeout, daemon)
            finally:
                daemon.stop()
        latencies = sorted(committed[p] - acked[p] for p in acked)
        ok = True
    finally:
        if ok and workdir is None:
            shutil.rmtree(root, ignore_errors=True)
    if details is not None:
        details.update(
            daemon_ready_s=round(ready_s, 1), latencies_s={p: round(committed[p] - acked[p], 2) for p in sorted(acked)}
        )
    return {
        "payments": payments,
        "p50_s": round(statistics.median(latencies), 2),
        "p95_s": round(_quantile(latencies, 0.95), 2),
        "max_s": round(latencies[-1], 2),
    }


def _quantile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank quantile."""
    rank = max(1, -(-len(sorted_values) * q // 1))
    return sorted_values[int(rank) - 1]


def _deliver(url: str, secret: str, events: list[Event], spacing: float) -> dict[str, float]:
    """Each event as its own signed delivery, `spacing` s apart; returns payment id -> monotonic time of the 204."""
    acked: dict[str, float] = {}
    start = time.monotonic()
    with httpx.Client(timeout=10) as client:
        for n, event in enumerate(events):
            time.sleep(max(0.0, start + n * spacing - time.monotonic()))
            webhook: Webhook = {"events": [event], "meta": {"webhook_id": f"WBBENCH{n:06d}"}}
            body = json.dumps(webhook, separators=(",", ":")).encode()
            for _attempt in range(5):  # as GoCardless would, retry what was not acknowledged
                response = client.post(
                    url,
                    content=body,
                    headers={"Content-Type": "application/json", "Webhook-Signature": sign(body, secret)},
                )
                if response.status_code == 204:
                    acked[event["links"]["payment"]] = time.monotonic()
                    break
                time.sleep(0.5)
            else:
                raise BenchError(f"the receiver did not acknowledge {event['id']} ({response.status_code})")
    return acked


def _wait_receipts(company: SageCompany, wanted: set[str], timeout: float, daemon: DaemonProcess) -> dict[str, float]:
    """Poll the company's receipts until every wanted idempotency key is there; key -> first time seen."""
    seen: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(wanted):
        now = time.monotonic()
        for row in company.rows("ML_Idempotency"):
            key = row["IdempotencyKey"]
            if key in wanted and key not in seen:
                seen[key] = now
        if len(seen) == len(wanted):
            break
        if daemon.proc.poll() is not None:
            raise BenchError(f"dagster-daemon exited with {daemon.proc.returncode}; see {daemon.log_path}")
        if now > deadline:
            raise BenchError(f"only {len(seen)} of {len(wanted)} receipts after {timeout:.0f} s; see {daemon.log_path}")
        time.sleep(0.1)
    return seen
