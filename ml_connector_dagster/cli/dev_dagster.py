"""The `dg dev` that `ml-connector dev` runs: its instance and workspace, its environment, and its
processes - started in their own session, waited for until the UI answers, and stopped as a group so
nothing outlives the command.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

from ..fileperms import PRIVATE_UMASK, private_folder, tighten
from ..instance_config import instance_yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
MODULE = "ml_connector_dagster.definitions"
LOCATION = "ml_connector_dagster"
READY_TIMEOUT_SECONDS = 180.0
STOP_TIMEOUT_SECONDS = 20.0


# --- dagster's instance and workspace ---------------------------------------------------------------------------


def prepare_dagster_home(home: Path) -> tuple[Path, Path]:
    """`<home>/dagster` with the project's dagster.yaml, and the workspace file to load; returns both.

    The project's own files are used when this is a checkout; an installed package gets equivalents,
    so `ml-connector dev` works from a wheel too.
    """
    dagster_home = private_folder((home / "dagster").resolve())
    # Run monitoring, slot freeing and retries included, so a killed run worker does not freeze the queue.
    (dagster_home / "dagster.yaml").write_text(instance_yaml(), encoding="utf-8")
    tighten(dagster_home / "dagster.yaml")
    workspace = PROJECT_ROOT / "workspace.yaml"
    if not workspace.is_file():
        workspace = dagster_home / "workspace.yaml"
        workspace.write_text(
            f"load_from:\n  - python_module:\n      module_name: {MODULE}\n      location_name: {LOCATION}\n",
            encoding="utf-8",
        )
    return dagster_home, workspace


def child_environment(stack_env: dict[str, str], dagster_home: Path) -> dict[str, str]:
    """This process's environment without any ML_CONNECTOR_* of the caller's (a real Sage or GoCardless,
    a production database URL must never leak into the sandbox), plus the stack's settings."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ML_CONNECTOR_")}
    env.update(stack_env)
    env["DAGSTER_HOME"] = str(dagster_home)
    return env


# --- the dg dev process ------------------------------------------------------------------------------------


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def ui_url(host: str, port: int) -> str:
    """Where a browser on this machine reaches the UI (a wildcard bind is reached on loopback)."""
    shown = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def start_dagster(workspace: Path, host: str, port: int, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    """`dg dev` in its own session, so Ctrl-C reaches us first and we stop it (and all it started).

    `dg dev` supersedes `dagster dev` (which says so). Given the workspace file it loads exactly that (this
    Python, the `ml_connector_dagster.definitions` location) with the same webserver, daemon and code
    server as before, from a checkout or a wheel alike. Its umask keeps what it writes (run storage, event
    logs, compute logs, the warehouse) to this user.
    """
    dg = shutil.which("dg", path=str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", ""))
    command = [dg or "dg", "dev", "-w", str(workspace), "-h", host, "-p", str(port)]
    return subprocess.Popen(command, env=env, cwd=cwd, start_new_session=True, umask=PRIVATE_UMASK)


def wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout: float = READY_TIMEOUT_SECONDS) -> bool:
    """Poll the webserver's /server_info until it answers; False if `dg dev` exits or time runs out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if requests.get(url + "/server_info", timeout=2).ok:
                return True
        except requests.RequestException:
            pass
        time.sleep(0.5)
    return False


def stop_process_group(process: subprocess.Popen[bytes], grace: float = STOP_TIMEOUT_SECONDS) -> None:
    """Stop `dg dev` and everything it started (webserver, daemon, code server, run workers).

    SIGINT first, which is what Ctrl-C sends and what dg dev shuts down cleanly on; then SIGTERM;
    then SIGKILL for anything still in the group, so nothing outlives the command.
    """
    pgid = process.pid
    for sig, wait in ((signal.SIGINT, grace), (signal.SIGTERM, 5.0)):
        _signal_group(pgid, sig)
        if _wait_group_gone(pgid, process, wait):
            return
    _signal_group(pgid, signal.SIGKILL)
    _wait_group_gone(pgid, process, 5.0)


def _wait_group_gone(pgid: int, process: subprocess.Popen[bytes], timeout: float) -> bool:
    """Reap `dg dev` and wait until no process of its group is left; False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        process.poll()
        if process.returncode is not None and not _group_alive(pgid):
            return True
        time.sleep(0.2)
    return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    return True
