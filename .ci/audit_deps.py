#!/usr/bin/env python3
"""CI's dependency audit: the packages installed in a venv, checked with pip-audit against an advisory database.

Outcomes, each said in one clear line:
- a known vulnerability not accepted in the allow-list: exit 1 (CI fails), naming package, version and advisory;
- no known vulnerability: exit 0, saying how many packages were checked, against which database;
- no advisory database could be asked (unreachable, or it answered for no package): exit 0 with
  "dependency audit NOT performed: ..." and why, never a silent "no known vulnerabilities";
- a broken allow-list (an entry without a reason): exit 2.

Usage: audit_deps.py [VENV]   (default: .venv)
Environment: AUDIT_SERVICES (default "pypi,osv", tried in order), AUDIT_OSV_URL, AUDIT_ALLOW_FILE
(default .ci/audit-allow.toml), AUDIT_TOOL_VENV (default: a cache folder per pinned tool set),
AUDIT_TIMEOUT (seconds per request, default 15).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tomllib
import venv
from dataclasses import dataclass
from pathlib import Path

CI = Path(__file__).resolve().parent
REQUIREMENTS = CI / "audit-requirements.txt"
DEFAULT_ALLOW_FILE = CI / "audit-allow.toml"
OSV_URL = "https://api.osv.dev/v1/query"
PYPI_SOURCE = "PyPI's JSON API (https://pypi.org/pypi/NAME/VERSION/json)"
RUN_TIMEOUT_SECONDS = 900  # the whole pip-audit run: a black-holed database must not eat CI's time


@dataclass(frozen=True)
class Accepted:
    id: str
    package: str
    reason: str


@dataclass(frozen=True)
class Finding:
    package: str
    version: str
    ids: tuple[str, ...]
    fix_versions: tuple[str, ...]


class AuditError(Exception):
    """The audit's own configuration is wrong (exit 2)."""


# --- the allow-list --------------------------------------------------------------------------------------------


def load_allow_list(path: Path) -> list[Accepted]:
    """[[accept]] entries with id, package and a reason; an entry without a reason is an error."""
    if not path.exists():
        return []
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise AuditError(f"{path} is not valid TOML ({exc})") from None
    entries = data.get("accept", [])
    accepted = []
    for number, entry in enumerate(entries if isinstance(entries, list) else [entries], 1):
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), str) and entry[k].strip() for k in ("id", "package", "reason")
        ):
            raise AuditError(
                f"{path}: accept entry {number} needs id, package and reason (why the advisory does "
                "not apply to us, or until when it is accepted)"
            )
        accepted.append(Accepted(entry["id"].strip(), entry["package"].strip(), entry["reason"].strip()))
    return accepted


# --- pip-audit: a pinned copy in its own venv ------------------------------------------------------------------


def tool_venv() -> Path:
    """Where the pinned pip-audit lives: one folder per pinned set, reused by later runs."""
    if os.environ.get("AUDIT_TOOL_VENV"):
        return Path(os.environ["AUDIT_TOOL_VENV"])
    digest = hashlib.sha256(REQUIREMENTS.read_bytes()).hexdigest()[:12]
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "ml-connector-ci" / f"pip-audit-{digest}"


def ensure_pip_audit(folder: Path) -> Path:
    """The pip-audit program, installed from the pinned requirements if not there yet."""
    program = folder / "bin" / "pip-audit"
    done = folder / ".installed"
    if not done.exists():
        venv.create(folder, with_pip=True, clear=True)
        subprocess.run(
            [str(folder / "bin" / "python"), "-m", "pip", "install", "--quiet", "--no-deps", "-r", str(REQUIREMENTS)],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        done.write_text("ok\n")
    return program


def site_packages(target: Path) -> list[str]:
    code = "import json, sysconfig; p = sysconfig.get_paths(); print(json.dumps(sorted({p['purelib'], p['platlib']})))"
    out = subprocess.run([str(target / "bin" / "python"), "-c", code], check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


# --- one advisory database ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    """What one database said: the findings and what it could not check, or why it could not be asked."""

    source: str
    checked: int = 0
    findings: tuple[Finding, ...] = ()
    not_checked: tuple[str, ...] = ()
    failure: str | None = None


def source_name(service: str, osv_url: str) -> str:
    return PYPI_SOURCE if service == "pypi" else f"OSV ({osv_url})"


def ask(program: Path, service: str, paths: list[str], osv_url: str, timeout: str) -> Answer:
    """Run pip-audit against one database; an answer for no package at all counts as unreachable."""
    source = source_name(service, osv_url)
    command = [
        str(program),
        "--format",
        "json",
        "--progress-spinner",
        "off",
        "--skip-editable",
        "--desc",
        "off",
        "--timeout",
        timeout,
        "--vulnerability-service",
        service,
        *(a for p in paths for a in ("--path", p)),
    ]
    if service == "osv":
        command += ["--osv-url", osv_url]
    try:
        run = subprocess.run(command, capture_output=True, text=True, timeout=RUN_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        return Answer(source, failure=f"no answer within {RUN_TIMEOUT_SECONDS} s")
    try:
        report = json.loads(run.stdout)
    except ValueError:
        return Answer(source, failure=_last_line(run.stderr) or f"pip-audit exited {run.returncode}")
    return _answer(source, report)


def _answer(source: str, report: dict) -> Answer:
    deps = [d for d in report.get("dependencies", []) if "editable" not in d.get("skip_reason", "")]  # our own
    skipped = [d for d in deps if d.get("skip_reason")]
    checked = [d for d in deps if not d.get("skip_reason")]
    if not checked:
        reason = skipped[0]["skip_reason"] if skipped else "no package found to audit"
        return Answer(source, failure=f"it answered for none of the {len(deps)} packages ({reason})")
    findings = tuple(
        Finding(d["name"], d["version"], (v["id"], *v.get("aliases", [])), tuple(v.get("fix_versions", [])))
        for d in checked
        for v in d.get("vulns", [])
    )
    return Answer(source, len(checked), findings, tuple(f"{d['name']}: {d['skip_reason']}" for d in skipped))


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[-1][:300] if lines else ""


# --- the verdict --------------------------------------------------------------------------------------------------


def verdict(answer: Answer, accepted: list[Accepted]) -> int:
    """Print what was found; 1 if a finding is not accepted, else 0."""
    allowed = {a.id: a for a in accepted}
    open_findings = [f for f in answer.findings if not any(i in allowed for i in f.ids)]
    print(f"dependency audit: {answer.checked} packages checked against {answer.source}")
    for item in answer.not_checked:
        print(f"dependency audit: NOT checked: {item}")
    for finding in answer.findings:
        entry = next((allowed[i] for i in finding.ids if i in allowed), None)
        if entry:
            print(f"dependency audit: accepted {entry.id} in {finding.package} {finding.version}: {entry.reason}")
    used = {i for f in answer.findings for i in f.ids}
    for entry in accepted:
        if entry.id not in used:
            print(f"dependency audit: allow-list entry {entry.id} ({entry.package}) matches nothing now; remove it")
    for finding in open_findings:
        fix = f"; fixed in {', '.join(finding.fix_versions)}" if finding.fix_versions else "; no fixed version yet"
        print(f"dependency audit: VULNERABLE {finding.package} {finding.version}: {', '.join(finding.ids)}{fix}")
    if open_findings:
        print(
            f"dependency audit FAILED: {len(open_findings)} known vulnerabilities; upgrade the pins in "
            f"pyproject.toml, or accept one in {_shown(allow_file())} with a reason"
        )
        return 1
    print(
        "dependency audit passed: no known vulnerabilities"
        + (" (besides the accepted ones)" if answer.findings else "")
    )
    return 0


def allow_file() -> Path:
    return Path(os.environ.get("AUDIT_ALLOW_FILE") or DEFAULT_ALLOW_FILE)


def _shown(path: Path) -> str:
    """A path inside the checkout relative to its root (.ci/audit-allow.toml), any other as it is."""
    try:
        return str(path.resolve().relative_to(CI.parent))
    except ValueError:
        return str(path)


def main(argv: list[str]) -> int:
    target = Path(argv[1] if len(argv) > 1 else ".venv")
    if not (target / "bin" / "python").exists():
        print(f"dependency audit: {target} is not a virtual environment (no bin/python); pass the venv to audit")
        return 2
    services = [s.strip() for s in os.environ.get("AUDIT_SERVICES", "pypi,osv").split(",") if s.strip()]
    osv_url = os.environ.get("AUDIT_OSV_URL") or OSV_URL
    try:
        accepted = load_allow_list(allow_file())
    except AuditError as exc:
        print(f"dependency audit: {exc}")
        return 2
    try:
        program = ensure_pip_audit(tool_venv())
    except (OSError, subprocess.CalledProcessError) as exc:
        detail = _last_line(getattr(exc, "stderr", "") or "") or str(exc)
        print(f"dependency audit NOT performed: pip-audit could not be installed ({detail})")
        return 0
    paths = site_packages(target)
    failures = []
    for service in services:
        answer = ask(program, service, paths, osv_url, os.environ.get("AUDIT_TIMEOUT", "15"))
        if answer.failure is None:
            return verdict(answer, accepted)
        failures.append(f"{answer.source}: {answer.failure}")
    tried = ", ".join(source_name(s, osv_url).split(" (")[0] for s in services)
    print(f"dependency audit NOT performed: the advisory database is unreachable ({tried}); CI goes on without it")
    for failure in failures:
        print(f"  - {failure}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
