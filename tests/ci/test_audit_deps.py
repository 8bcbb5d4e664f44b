"""CI's dependency audit (.ci/audit_deps.py): fails on a known vulnerability, says so when it could not look.

The advisory database cannot be reached from here, so a stand-in for OSV's query API answers on loopback;
pip-audit itself (pinned) and the audited venv (this one) are real.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ml_connector_dagster.httpserve import free_port

pytestmark = pytest.mark.slow  # runs the audit script as a process

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "audit_deps.py"
ADVISORY = {
    "id": "GHSA-test-0000-0001",
    "aliases": ["CVE-2099-0001"],
    "summary": "a test advisory",
    "affected": [
        {
            "package": {"name": "click", "ecosystem": "PyPI"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "99.0"}]}],
        }
    ],
}


def osv_stand_in(vulnerable: dict[str, dict]) -> Iterator[str]:
    """OSV's POST /v1/query on loopback: `vulnerable` maps a package name to the advisory it has."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            advisory = vulnerable.get(query["package"]["name"])
            body = json.dumps({"vulns": [advisory]} if advisory else {}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/v1/query"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def advisories() -> Iterator[str]:
    yield from osv_stand_in({"click": ADVISORY})


@pytest.fixture
def no_advisories() -> Iterator[str]:
    yield from osv_stand_in({})


def audit(osv_url: str, allow_file: Path | None = None) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "AUDIT_SERVICES": "osv",
        "AUDIT_OSV_URL": osv_url,
        "AUDIT_TIMEOUT": "5",
        "AUDIT_ALLOW_FILE": str(allow_file or Path("/nonexistent/allow.toml")),
    }
    return subprocess.run(
        [sys.executable, str(SCRIPT), sys.prefix], capture_output=True, text=True, env=env, timeout=600
    )


def test_a_known_vulnerability_fails_naming_the_package_and_the_advisory(advisories: str) -> None:
    result = audit(advisories)

    assert result.returncode == 1, result.stdout + result.stderr
    vulnerable = [line for line in result.stdout.splitlines() if "VULNERABLE" in line]
    assert len(vulnerable) == 1 and "VULNERABLE click " in vulnerable[0]
    assert "GHSA-test-0000-0001" in vulnerable[0] and "CVE-2099-0001" in vulnerable[0]
    assert vulnerable[0].endswith("fixed in 99.0")


def test_an_advisory_accepted_with_a_reason_passes_and_is_shown(advisories: str, tmp_path: Path) -> None:
    allow = tmp_path / "allow.toml"
    allow.write_text('[[accept]]\nid = "CVE-2099-0001"\npackage = "click"\nreason = "CLI only, no untrusted input"\n')

    result = audit(advisories, allow)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "accepted CVE-2099-0001 in click" in result.stdout and "CLI only, no untrusted input" in result.stdout


def test_an_allow_list_entry_without_a_reason_fails(advisories: str, tmp_path: Path) -> None:
    allow = tmp_path / "allow.toml"
    allow.write_text('[[accept]]\nid = "CVE-2099-0001"\npackage = "click"\n')

    result = audit(advisories, allow)

    assert result.returncode == 2
    assert "accept entry 1 needs id, package and reason" in result.stdout


def test_no_known_vulnerability_passes_saying_what_was_checked_against_what(no_advisories: str) -> None:
    result = audit(no_advisories)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"packages checked against OSV ({no_advisories})" in result.stdout
    assert "dependency audit passed: no known vulnerabilities" in result.stdout


def test_an_unreachable_advisory_database_is_reported_as_not_performed_and_ci_goes_on() -> None:
    nowhere = f"http://127.0.0.1:{free_port()}/v1/query"

    result = audit(nowhere)

    assert result.returncode == 0
    assert result.stdout.startswith("dependency audit NOT performed: the advisory database is unreachable (OSV)")
    assert nowhere in result.stdout
    assert "no known vulnerabilities" not in result.stdout
