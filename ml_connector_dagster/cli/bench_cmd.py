"""`ml-connector bench ...`: benchmarks that print figures (human-readable, or `--json` for machines).

Each subcommand calls a plain function in `ml_connector_dagster.bench` and prints exactly the keys the
benchmark defines. Everything runs on this machine over loopback; nothing is sent anywhere else.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import click

MATCHING_KEYS = (
    "invoices",
    "payments",
    "seconds",
    "payments_per_second",
    "peak_rss_mib",
    "baseline_seconds",
    "speedup",
    "grouped_baseline_seconds",
    "grouped_speedup",
)


@click.group()
def bench() -> None:
    """Benchmarks: matching, webhooks, e2e (through the Dagster daemon), poll, heal."""


def _emit(result: dict[str, Any], as_json: bool, title: str, units: dict[str, str], notes: Sequence[str] = ()) -> None:
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"{title} ({platform.machine()}, {_cpus()} CPUs)")
    width = max(len(k) for k in result)
    for key, value in result.items():
        click.echo(f"  {key.ljust(width)}  {value}{units.get(key, '')}")
    for note in notes:
        click.echo(note)


def _cpus() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@bench.command()
@click.option(
    "--invoices",
    "-n",
    type=click.IntRange(10),
    default=1_000_000,
    show_default=True,
    help="Open invoices in the generated company (over N/10 customers).",
)
@click.option(
    "--payments",
    "-m",
    type=click.IntRange(1),
    default=200_000,
    show_default=True,
    help="Payments to match (every rule and reason code is exercised).",
)
@click.option(
    "--baseline-sample",
    type=click.IntRange(1),
    default=200,
    show_default=True,
    help="Payments the straightforward loop decides (each scans the invoice table; scaled to all).",
)
@click.option(
    "--grouped-sample",
    type=click.IntRange(1),
    default=5_000,
    show_default=True,
    help="Payments the grouped loop decides (invoices grouped by customer first; scaled to all).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def matching(invoices: int, payments: int, baseline_sample: int, grouped_sample: int, as_json: bool) -> None:
    """Time the vectorised matcher against per-payment loops (decisions must be identical).

    `baseline_seconds`/`speedup`: the straightforward loop (each payment selects its customer's rows
    from the invoice table). `grouped_baseline_seconds`/`grouped_speedup`: the best loop (invoices
    grouped by customer once).
    """
    from ..bench import matching as bench_matching

    full = bench_matching.run(invoices, payments, baseline_sample, grouped_sample)
    if not full.get("identical", True):
        raise click.ClickException(
            "the matcher and a baseline loop decided differently on the sample: "
            "the figures are not comparable (a bug in one of them)"
        )
    result = {k: full[k] for k in MATCHING_KEYS}
    _emit(
        result,
        as_json,
        "bench matching",
        {
            "seconds": " s",
            "baseline_seconds": " s (scaled)",
            "grouped_baseline_seconds": " s (scaled)",
            "speedup": "x",
            "grouped_speedup": "x",
            "peak_rss_mib": " MiB",
        },
        [
            "  baseline: each payment selects its customer's rows from the invoice table, then decides",
            "  grouped baseline: the invoices are grouped by customer once, then each payment decides",
            f"  decisions identical to both loops on {full.get('baseline_sample')} and "
            f"{full.get('grouped_sample')} sampled payments",
        ],
    )


@bench.command()
@click.option("--deliveries", "-d", type=click.IntRange(1), default=2_000, show_default=True)
@click.option(
    "--concurrency",
    "-c",
    type=click.IntRange(1, 1000),
    default=50,
    show_default=True,
    help="Deliveries in flight at once (keep-alive connections).",
)
@click.option("--events-per-delivery", "-e", type=click.IntRange(1, 250), default=10, show_default=True)
@click.option(
    "--rate",
    type=click.FloatRange(min=1, min_open=False),
    default=None,
    help="Offer this many events per second (open loop) instead of as fast as answered.",
)
@click.option(
    "--database-url", default=None, help="Operational store for the receiver (default: SQLite in a temporary home)."
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def webhooks(
    deliveries: int,
    concurrency: int,
    events_per_delivery: int,
    rate: float | None,
    database_url: str | None,
    as_json: bool,
) -> None:
    """Drive a real `ml-connector receiver` process with signed deliveries over loopback."""
    from ..bench import webhooks as bench_webhooks

    try:
        result = bench_webhooks.run(deliveries, concurrency, events_per_delivery, rate=rate, database_url=database_url)
    except bench_webhooks.BenchError as exc:
        raise click.ClickException(str(exc)) from None
    mode = f"open loop at {rate:g} events/s" if rate else "closed loop (as fast as answered)"
    _emit(
        result,
        as_json,
        f"bench webhooks: {concurrency} in flight, {mode}",
        {"seconds": " s", "p50_ms": " ms", "p99_ms": " ms", "events_per_second": " events/s"},
        ["  lost = acknowledged events missing from the inbox afterwards"],
    )


@bench.command()
@click.option("--payments", "-k", type=click.IntRange(1, 5000), default=20, show_default=True)
@click.option(
    "--spacing",
    type=click.FloatRange(0),
    default=0.5,
    show_default=True,
    help="Seconds between deliveries (one event each).",
)
@click.option(
    "--timeout",
    type=click.FloatRange(1),
    default=600,
    show_default=True,
    help="Give up when the receipts are not all there after this many seconds.",
)
@click.option(
    "--instance-yaml",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    default=None,
    help="dagster.yaml to use instead of the repository's (e.g. to try run-queue settings).",
)
@click.option(
    "--keep",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Work in this folder and keep it (daemon.log, DAGSTER_HOME).",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def e2e(
    payments: int, spacing: float, timeout: float, instance_yaml: Path | None, keep: Path | None, as_json: bool
) -> None:
    """Webhook acknowledged -> cash receipt committed, through `dagster-daemon run` and the sensors."""
    from ..bench import e2e as bench_e2e

    details: dict[str, Any] = {}
    try:
        result = bench_e2e.run(
            payments,
            spacing=spacing,
            timeout=timeout,
            details=details,
            workdir=keep,
            instance_yaml=instance_yaml.read_text() if instance_yaml else None,
        )
    except bench_e2e.BenchError as exc:
        raise click.ClickException(str(exc)) from None
    _emit(
        result,
        as_json,
        f"bench e2e: {payments} payments, one webhook every {spacing:g} s",
        {"p50_s": " s", "p95_s": " s", "max_s": " s"},
        [f"  (dagster-daemon took {details.get('daemon_ready_s')} s to load and tick; not counted)"],
    )


@bench.command()
@click.option(
    "--invoices",
    "-n",
    type=click.IntRange(1),
    default=100_000,
    show_default=True,
    help="Open invoices in the company (over N/10 customers).",
)
@click.option(
    "--changed",
    "-k",
    type=click.IntRange(0),
    default=100,
    show_default=True,
    help="Invoices changed in Sage since the last poll.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def poll(invoices: int, changed: int, as_json: bool) -> None:
    """One incremental poll of sage100/ar_invoices through the agent after K of N invoices changed."""
    from ..bench import poll as bench_poll

    if changed > invoices:
        raise click.UsageError("--changed cannot be more than --invoices")
    result = bench_poll.run(invoices, changed)
    _emit(
        result,
        as_json,
        "bench poll: incremental sage100/ar_invoices",
        {"seconds": " s"},
        ["  rows_transferred = rows written to the warehouse; it follows --changed, not --invoices"],
    )


HEAL_KEYS = (
    "held",
    "changed_invoices",
    "affected_customers",
    "affected_payments",
    "seconds",
    "redecided",
    "decided_again",
    "resolved_automatically",
    "still_held",
    "peak_rss_mib",
    "setup_seconds",
    "unchanged_seconds",
)


@bench.command()
@click.option(
    "--held",
    "-n",
    type=click.IntRange(5),
    default=100_000,
    show_default=True,
    help="Held payments waiting in the review queue (five per Sage customer).",
)
@click.option(
    "--changed",
    "-k",
    type=click.IntRange(0),
    default=10,
    show_default=True,
    help="Sage customers that get a new invoice (of one held payment's amount) since the last evaluation.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def heal(held: int, changed: int, as_json: bool) -> None:
    """One evaluation after K invoices changed under N held payments: only the affected ones are decided again."""
    from ..bench import heal as bench_heal

    if changed > held // bench_heal.HELD_PER_CUSTOMER:
        raise click.UsageError(
            f"--changed cannot be more than the customers with held payments (--held / {bench_heal.HELD_PER_CUSTOMER})"
        )
    try:
        full = bench_heal.run(held, changed)
    except bench_heal.BenchError as exc:
        raise click.ClickException(str(exc)) from None
    if full["redecided"] != full["affected_payments"]:
        raise click.ClickException(
            f"the evaluation decided {full['redecided']} payments again, but the changed customers have "
            f"{full['affected_payments']} held: the figures do not measure what they say (a bug)"
        )
    _emit(
        {k: full[k] for k in HEAL_KEYS},
        as_json,
        f"bench heal: {changed} Sage invoices changed under {held} held payments",
        {"seconds": " s", "setup_seconds": " s", "unchanged_seconds": " s", "peak_rss_mib": " MiB"},
        [
            "  seconds = one evaluate_payments after the change (the held payments of the changed customers decided",
            "  again; one matches each); unchanged_seconds = the same with nothing changed (decides none)",
        ],
    )
