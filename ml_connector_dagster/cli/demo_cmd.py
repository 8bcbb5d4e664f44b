"""`ml-connector demo [--scenario DIR] [--json] [--keep]`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..sandbox.scenario import ScenarioError, bundled

if TYPE_CHECKING:  # the demo itself is imported when the command runs (it starts Dagster)
    from ..sandbox.demo import DemoResult


@click.command()
@click.option(
    "--scenario",
    "scenario_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Scenario folder (default: the bundled sample company).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the outcome as JSON instead of a summary.")
@click.option("--keep", is_flag=True, help="Keep the temporary ML_CONNECTOR_HOME (store, warehouse, Sage company).")
def demo(scenario_dir: Path | None, as_json: bool, keep: bool) -> None:
    """Play a month of GoCardless payments against a simulated Sage 100 company, end to end, and summarise."""
    from ..sandbox.demo import remove_home, run_demo

    def progress(message: str) -> None:
        click.echo(f"  {message}", err=True)

    click.echo(f"ml-connector demo: scenario {scenario_dir or 'bundled sample'}", err=True)
    try:
        result = run_demo(scenario_dir or bundled(), progress=progress)
    except ScenarioError as exc:
        raise click.ClickException(str(exc)) from None
    try:
        if as_json:
            click.echo(json.dumps(result.as_json(), indent=2))
        else:
            click.echo(render(result))
        if result.failed_runs:
            click.echo(
                f"warning: {len(result.failed_runs)} Dagster run(s) failed: {', '.join(result.failed_runs)}", err=True
            )
    finally:
        if keep:
            click.echo(
                f"kept ML_CONNECTOR_HOME={result.home} (try: ML_CONNECTOR_HOME={result.home} ml-connector payments)",
                err=True,
            )
        else:
            remove_home(result.home)


def render(result: DemoResult) -> str:
    t = result.totals
    lines = [
        "",
        f"Payments: {t['payments']}    Dagster runs: {t['runs']} ({t['failed_runs']} failed)",
        "",
        f"{'status':<20}{'count':>6}{'amount':>14}",
    ]
    for status, v in t["by_status"].items():
        lines.append(f"{status:<20}{v['count']:>6}{v['amount']:>14}")
    lines += ["", f"{'held, by reason':<28}{'count':>6}{'amount':>14}"]
    for reason, v in t["held_by_reason"].items():
        lines.append(f"{reason:<28}{v['count']:>6}{v['amount']:>14}")
    lines += ["", f"{'payment':<10}{'status':<19}{'reason':<27}{'customer':<12}{'amount':>10}  allocations"]
    for p in result.payments:
        allocations = " ".join(f"{a['invoice']}:{a['amount']}" for a in p["allocations"])
        lines.append(
            f"{p['id']:<10}{p['status']:<19}{p['reason'] or '':<27}{p['customer'] or '':<12}"
            f"{p['amount'] or p['original'] or '':>10}  {allocations}"
        )
    return "\n".join(lines)
