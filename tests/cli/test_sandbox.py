"""`ml-connector sandbox`: the stand-ins on loopback until Ctrl-C, printing their URLs and the settings to use."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from ml_connector_dagster.sandbox.scenario import bundled, load_scenario

pytestmark = pytest.mark.slow  # a real process


def test_the_sandbox_command_prints_urls_and_credentials_and_stops_on_ctrl_c(home: Path) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "from ml_connector_dagster.cli import main; main()",
            "sandbox",
            "--gocardless-port",
            "0",
            "--gocardless-token",
            "tok_123",
            "--ebusiness-port",
            "0",
            "--agent-port",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines = []
    for line in proc.stdout:  # type: ignore[union-attr]
        lines.append(line)
        if "Sandbox running" in line:
            break
    url = re.search(r"GoCardless API: (http://\S+)", "".join(lines)).group(1)  # type: ignore[union-attr]
    answer = httpx.get(
        url + "/customers", headers={"Authorization": "Bearer tok_123", "GoCardless-Version": "2015-07-06"}
    )
    security_url = re.search(r"curl (http://\S+/_sandbox/security)", "".join(lines)).group(1)  # type: ignore[union-attr]
    security = httpx.get(security_url)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=20)

    assert answer.status_code == 200
    assert len(answer.json()["customers"]) == len(load_scenario(bundled()).gocardless_customers)
    assert "ML_CONNECTOR_SAGE_AGENT_WSDL=http://" in "".join(lines)
    assert security.json()["web_services"] == {"system": True, "company": True, "user": True}
    assert "ML_CONNECTOR_GOCARDLESS_ACCESS_TOKEN=tok_123" in "".join(lines)
    assert proc.returncode == 0 and "Sandbox stopped" in rest
