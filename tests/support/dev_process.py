"""A real `ml-connector dev` in a subprocess for tests: started on free ports in a temporary home,
waited for on conditions (never a blind sleep), and always cleaned up, whatever the test did.

`DevProcess.start()` returns once the Dagster webserver answers `/server_info`; `interrupt()` sends SIGINT
like Ctrl-C would; `kill_everything()` (teardown) SIGKILLs every process group the command started.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from ml_connector_dagster.cli.dev_cmd import ENV_FILE, read_env_file
from ml_connector_dagster.httpserve import free_port

from support.waiting import wait_for

STARTUP_TIMEOUT = 120.0


def children_of(pid: int) -> list[int]:
    """Every live descendant of `pid`, from /proc (no psutil needed)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        parents.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def alive(pid: int) -> bool:
    """True while `pid` exists and is not a zombie."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


@dataclass
class DevProcess:
    """One `ml-connector dev` under test, with its home, UI port and output log."""

    home: Path
    port: int
    log: Path
    process: subprocess.Popen | None = None
    seen_pids: set[int] = field(default_factory=set)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @classmethod
    def start(cls, tmp: Path, scenario: Path | None = None) -> DevProcess:
        """Start the command and wait (bounded) until the Dagster UI answers; the caller must `kill_everything`."""
        dev = cls(home=tmp / "dev-home", port=free_port(), log=tmp / "dev.log")
        command = [_ml_connector(), "dev", "--home", str(dev.home), "--port", str(dev.port)]
        if scenario is not None:
            command += ["--scenario", str(scenario)]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("ML_CONNECTOR_", "DAGSTER_"))}
        with dev.log.open("wb") as out:
            dev.process = subprocess.Popen(
                command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp, start_new_session=True
            )
        wait_for(dev.ready, STARTUP_TIMEOUT, f"the Dagster UI at {dev.url}", on_timeout=dev.tail)
        wait_for(lambda: "Ctrl-C stops everything" in dev.output(), 30, "the banner", on_timeout=dev.tail)
        dev.remember_processes()
        return dev

    def ready(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"ml-connector dev exited with {self.process.returncode}\n{self.tail()}")
        try:
            return requests.get(self.url + "/server_info", timeout=2).ok
        except requests.RequestException:
            return False

    def env(self) -> dict[str, str]:
        return read_env_file(self.home / ENV_FILE)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def tail(self, lines: int = 60) -> str:
        return "\n".join(self.output().splitlines()[-lines:])

    def remember_processes(self) -> set[int]:
        """Note every process the command has started so far (for the 'nothing left behind' checks)."""
        assert self.process is not None
        self.seen_pids |= {self.process.pid, *children_of(self.process.pid)}
        return self.seen_pids

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = requests.post(self.url + "/graphql", json={"query": query, "variables": variables or {}}, timeout=10)
        response.raise_for_status()
        return response.json()["data"]

    def runs(self) -> list[dict[str, Any]]:
        """Runs as the UI's GraphQL API reports them (newest first)."""
        data = self.graphql("{ runsOrError(limit: 50) { ... on Runs { results { runId jobName status } } } }")
        return data["runsOrError"]["results"]

    def run(self, run_id: str) -> dict[str, Any]:
        """One run's status and tags (as a dict), as the UI's GraphQL API reports them."""
        data = self.graphql(
            "query($id: ID!) { runOrError(runId: $id) { ... on Run { runId jobName status tags { key value } } } }",
            {"id": run_id},
        )
        run = data["runOrError"]
        return {**run, "tags": {t["key"]: t["value"] for t in run["tags"]}}

    def latest_table(self, asset_key: list[str], label: str) -> list[dict[str, Any]]:
        """The rows of table metadata `label` on the asset's latest materialization ([] before the first)."""
        data = self.graphql(
            "query($key: AssetKeyInput!) { assetOrError(assetKey: $key) { ... on Asset { assetMaterializations"
            "(limit: 1) { metadataEntries { label ... on TableMetadataEntry { table { records } } } } } } }",
            {"key": {"path": asset_key}},
        )
        latest = (data["assetOrError"].get("assetMaterializations") or [{}])[0]
        entry = next((e for e in latest.get("metadataEntries", []) if e["label"] == label), None)
        return [json.loads(record) for record in entry["table"]["records"]] if entry else []

    def backfill(self, backfill_id: str) -> dict[str, Any]:
        """One backfill's status, partitions and runs, as the UI's GraphQL API reports them."""
        data = self.graphql(
            "query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill "
            "{ id status partitionNames runs(limit: 10) { runId status } } } }",
            {"id": backfill_id},
        )
        return data["partitionBackfillOrError"]

    def interrupt(self) -> None:
        """What Ctrl-C does: SIGINT to the command (it stops dagster dev and the stand-ins itself)."""
        assert self.process is not None
        self.remember_processes()
        self.process.send_signal(signal.SIGINT)

    def kill_everything(self) -> None:
        """Teardown: SIGKILL every process group the command or its children ever ran in."""
        if self.process is None:
            return
        pids = self.seen_pids | {self.process.pid, *children_of(self.process.pid)}
        groups = set()
        for pid in pids:
            try:
                groups.add(os.getpgid(pid))
            except ProcessLookupError:
                pass
        groups.add(self.process.pid)
        for group in groups - {os.getpgrp()}:
            try:
                os.killpg(group, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            pass


def _ml_connector() -> str:
    """The console script of the environment running the tests."""
    script = Path(sys.executable).parent / "ml-connector"
    return str(script) if script.exists() else "ml-connector"
