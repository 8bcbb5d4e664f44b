"""`ml-connector agent doctor`: the check a customer runs on the Sage server before going live (agent/doctor.py;
the rehearsal in agent/doctor_rehearsal.py).

Read-only by default; `--rehearse` also writes a real deposit and receipt and removes them again, only on a
company named in `--allow-company`. One line per check, PASS/FAIL/SKIP with what to change; exits 1 if any
check fails. The Sage password is never printed: every line is scrubbed of it.

`--backend simulated` runs the same checks against the simulated company through a read-only ProvideX
stand-in (sandbox/simulated_providex.py). Tests may hand in the COM layer (`dispatch`, `variant`) as the
click context's `obj`, as the recording fake of Sage's COM objects.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from collections.abc import Callable, Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import click

from ..agent import boi_com
from ..agent.backends import Backend, BOIBackend
from ..agent.boi_entry import OptionSettings
from ..agent.doctor import Doctor
from ..agent.doctor_rehearsal import rehearse
from ..agent.doctor_report import FAIL, SKIP, Check, Probe, failed
from ..agent.ledger import AgentLedger
from ..sage100.model import Credentials, money
from ..secrets import MASK
from .agent_cmd import (
    BACKEND_HELP,
    BOI_NAMES_HELP,
    boi_names_or_exit,
    entry_options,
    require_pywin32,
    simulated_company,
)
from .common import printable, settings_or_exit

REHEARSE_HELP = (
    "Also write a real deposit and cash receipt (--amount on an open invoice of --customer) through the agent's "
    "backend, check Sage counts it, and remove both again. Refused unless the company is named in "
    "--allow-company: rehearse in Sage's sample company (ABC) or a copy of yours, never the live company."
)


@click.command()
@click.option("--backend", type=click.Choice(["boi", "simulated"]), required=True, help=BACKEND_HELP)
@click.option("--mas90-home", help=r"boi: Sage 100's MAS90\Home folder, e.g. C:\Sage\Sage 100\MAS90\Home.")
@click.option(
    "--company-dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="simulated: folder holding sage_company.sqlite.",
)
@click.option(
    "--scenario",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="simulated: scenario folder (default: the bundled sample) loaded if the company does not exist yet.",
)
@click.option("--user", help="Sage user (default: ML_CONNECTOR_SAGE_USERNAME; simulated: the scenario's).")
@click.option("--company", help="Sage company code (default: ML_CONNECTOR_SAGE_COMPANY_CODE; simulated: its own).")
@click.option("--bank-code", help="The bank code the product deposits to (default: ML_CONNECTOR_SAGE_BANK_CODE).")
@click.option("--customer", help="A test customer as DIVISION-NUMBER, e.g. 01-ABF (default: the first Sage lists).")
@click.option("--boi-names", type=click.Path(exists=True, dir_okay=False, path_type=Path), help=BOI_NAMES_HELP)
@entry_options
@click.option("--rehearse", "do_rehearse", is_flag=True, help=REHEARSE_HELP)
@click.option(
    "--allow-company",
    multiple=True,
    metavar="CODE",
    help="A company --rehearse may write to (repeatable), e.g. --allow-company ABC for Sage's sample company.",
)
@click.option("--amount", default="0.01", show_default=True, help="--rehearse: the receipt's amount.")
@click.pass_context
def doctor(
    ctx: click.Context,
    backend: str,
    mas90_home: str | None,
    company_dir: Path | None,
    scenario: Path | None,
    user: str | None,
    company: str | None,
    bank_code: str | None,
    customer: str | None,
    boi_names: Path | None,
    require_deposit_amount: bool | None,
    batch_entry: bool | None,
    do_rehearse: bool,
    allow_company: tuple[str, ...],
    amount: str,
) -> None:
    """Check that this Sage 100 server is ready for the agent: run it on the Sage server before going live.

    Read-only: ProvideX, the logon, the company, each task, each business object, every field the agent reads
    or sets (set on a new record that is cleared, never written), which form of nGetValue works, and the
    company options that matter (require deposit amount, batch entry). One line per check: PASS, FAIL with
    what to change (often the BOINames key to write in a --boi-names file), SKIP when not used. Exits 1 if any
    check fails.
    """
    injected: dict[str, Any] = ctx.find_root().obj or {}
    if backend == "boi" and "dispatch" not in injected and not _has_pywin32():
        click.echo(f"{FAIL}  ProvideX  {boi_com.NO_PYWIN32}")
        raise SystemExit(1)
    names = boi_names_or_exit(boi_names)
    options = OptionSettings(require_deposit_amount, batch_entry)
    settings = settings_or_exit()
    today = date.today()
    test_customer = _customer(customer)
    try:
        receipt_amount = money(amount, "--amount")
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    if receipt_amount <= 0:
        raise click.UsageError("--amount must be above zero")
    sim: _Simulated | None = None
    if backend == "simulated":
        sim = _Simulated(company_dir, scenario)
        credentials = sim.credentials(user, company, settings)
        dispatch, variant, home = sim.dispatch, sim.variant, str(sim.company.path.parent)
        bank: str | None = bank_code or settings.sage_bank_code or sim.company.info.bank_code
    else:
        if company_dir or scenario:
            raise click.UsageError("--company-dir and --scenario are for --backend simulated")
        if not mas90_home:
            raise click.UsageError(r"--backend boi needs --mas90-home, e.g. C:\Sage\Sage 100\MAS90\Home")
        credentials = _credentials(user, company, None, settings)
        dispatch = injected.get("dispatch", boi_com.win32_dispatch)
        variant = injected.get("variant", boi_com.win32_variant)
        home = mas90_home
        bank = bank_code or settings.sage_bank_code
    if do_rehearse and credentials.company_code.upper() not in {c.upper() for c in allow_company}:
        raise click.UsageError(
            f"--rehearse writes to company {credentials.company_code}: name it in --allow-company to allow that "
            "(only a test company: Sage's sample company ABC, or a copy of yours)"
        )
    checker = Doctor(dispatch, home, names, credentials, Probe(today, bank, test_customer), variant, options)
    checks = checker.run()
    if do_rehearse:

        @contextlib.contextmanager
        def rehearsal_backend() -> Iterator[tuple[Backend, Callable[[str], bool] | None]]:
            if sim is not None:
                yield sim.backend(), None
                return
            with tempfile.TemporaryDirectory(prefix="ml-connector-doctor-") as folder:
                # a ledger of its own: the rehearsal opens a deposit of its own and deletes it afterwards
                ledger = AgentLedger(Path(folder) / "rehearsal_ledger.sqlite")
                boi = BOIBackend(
                    home, ledger, names, dispatch=dispatch, today=lambda: today, variant=variant, options=options
                )
                try:
                    yield boi, lambda deposit_no: boi.discard_deposit(credentials, deposit_no)
                finally:
                    ledger.close()

        checks += _rehearse(checks, checker, credentials, bank, today, receipt_amount, rehearsal_backend)
    _print(checks, credentials.password)
    if failed(checks):
        raise SystemExit(1)


def _has_pywin32() -> bool:
    try:
        require_pywin32()
    except click.ClickException:
        return False
    return True


def _customer(text: str | None) -> tuple[str, str] | None:
    if text is None:
        return None
    division, _, number = text.partition("-")
    if len(division) != 2 or not number:
        raise click.UsageError(f"--customer {text!r}: give DIVISION-NUMBER, e.g. 01-ABF")
    return division, number


def _credentials(user: str | None, company: str | None, default: Credentials | None, settings: Any) -> Credentials:
    """The logon: options, then the scenario's (simulated), then the settings; the password is never an option."""
    username = user or (default.username if default else None) or settings.sage_username
    code = company or (default.company_code if default else None) or settings.sage_company_code
    password = default.password if default and not user else None
    if password is None and settings.sage_password is not None:
        password = settings.sage_password.reveal()
    if not username or not code:
        raise click.UsageError("give --user and --company (or set ML_CONNECTOR_SAGE_USERNAME and _COMPANY_CODE)")
    if password is None:
        if not sys.stdin.isatty():
            raise click.UsageError(
                "no Sage password: set ML_CONNECTOR_SAGE_PASSWORD (or `ml-connector secrets set sage_password`), "
                "or run the doctor in a terminal to be asked for it"
            )
        password = click.prompt(f"Sage password for {username}", hide_input=True)
    return Credentials(username, password, code)


class _Simulated:
    """The simulated company behind a read-only ProvideX stand-in (sandbox code: imported only here)."""

    def __init__(self, company_dir: Path | None, scenario: Path | None) -> None:
        from ..sandbox.simulated_providex import SimulatedProvideX, Variant

        self.company, self.scenario = simulated_company(company_dir, scenario)
        self.providex = SimulatedProvideX(self.company)
        self.dispatch: Callable[[str], Any] = self.providex.dispatch
        self.variant: Callable[[Any], Any] = Variant

    def credentials(self, user: str | None, company: str | None, settings: Any) -> Credentials:
        logon = self.scenario.company if self.scenario is not None else None
        default = Credentials(logon.username, logon.password, logon.company_code) if logon else None
        return _credentials(user, company, default, settings)

    def backend(self) -> Backend:
        from ..sandbox.simulated_backend import SimulatedBackend

        return SimulatedBackend(self.company)


def _rehearse(
    checks: list[Check],
    checker: Doctor,
    credentials: Credentials,
    bank: str | None,
    today: date,
    amount: Decimal,
    rehearsal_backend: Callable[[], contextlib.AbstractContextManager[tuple[Backend, Callable[[str], bool] | None]]],
) -> list[Check]:
    if failed(checks):
        return [Check(SKIP, "rehearse", "not tried: fix the FAIL lines above first")]
    customer = checker.found.customer
    if customer is None or bank is None:
        return [Check(FAIL, "rehearse", "needs a test customer (--customer) and a bank code (--bank-code)")]
    try:
        with rehearsal_backend() as (backend, discard_deposit):
            return rehearse(backend, credentials, customer, bank, today, amount, discard_deposit)
    except Exception as exc:  # noqa: BLE001 - a COM error during the rehearsal: one line, then Sage to check
        return [Check(FAIL, "rehearse", f"stopped ({type(exc).__name__}: {exc}); check Cash Receipts Entry in Sage")]


def _print(checks: list[Check], password: str) -> None:
    width = max(len(c.title) for c in checks)
    for check in checks:
        line = f"{check.status:<4}  {check.title:<{width}}  {printable(check.detail)}"
        click.echo(line.replace(password, MASK) if len(password) >= 4 else line)
    failures = sum(c.status == FAIL for c in checks)
    click.echo(f"{len(checks)} checks: " + (f"{failures} FAIL" if failures else "no FAIL"))
