"""`ml-connector payouts [--month YYYY-MM] [--json] [--csv FILE]`: month end, one line per payout.

The same table as the `reconciliation/payouts` asset, computed now from the warehouse and the ledger: the
bank line, what makes it up, VAT on fees, FX, whether the items add up, and the Sage state of its payments.
Amounts are currency units as exact text (signed as the payout sees them: credits positive, debits negative).
"""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

import click
import duckdb
import pandas as pd

from .. import warehouse
from ..reconciliation import payouts as payout_report
from ..reconciliation.tables import typed_rows
from .common import echo_json, echo_table, settings_or_exit, store_or_exit

CSV_COLUMNS = (
    "payout_id",
    "status",
    "final",
    "arrival_date",
    "reference",
    "currency",
    "amount",
    "collections",
    "refunds",
    "failures",
    "chargebacks",
    "fees",
    "other",
    "items_total",
    "items_add_up",
    "difference",
    "vat",
    "vat_currency",
    "vat_final",
    "exchange_rate",
    "converted_currency",
    "converted_amount",
    "payments",
    "posted",
    "held",
    "other_payments",
)
TABLE_COLUMNS = [
    "payout_id",
    "status",
    "arrival_date",
    "reference",
    "currency",
    "amount",
    "collections",
    "refunds",
    "failures",
    "chargebacks",
    "fees",
    "vat",
    "exchange_rate",
    "converted_amount",
    "items_add_up",
    "posted",
    "held",
]
MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def _month(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not MONTH.match(value):
        raise click.BadParameter(f"{value!r} is not a month: write it YYYY-MM, e.g. 2024-03")
    return value


def _csv_path(_ctx: click.Context, _param: click.Parameter, value: str | None) -> Path | None:
    if value is None:
        return None
    path = Path(value)
    if path.is_dir():
        raise click.BadParameter(f"{value} is a folder: name a file to write, e.g. {path / 'payouts.csv'}")
    if not path.parent.is_dir():
        raise click.BadParameter(f"the folder {path.parent} does not exist")
    return path


def payout_views(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready payouts: money as exact decimal text, dates ISO, payments as lists of objects."""
    columns = list(payout_report.COLUMNS)
    views = []
    for values in typed_rows(frame, lambda *cells: cells, columns):
        view = dict(zip(columns, values, strict=True))
        for key in payout_report.MONEY_COLUMNS:
            view[key] = None if view[key] is None else str(view[key])
        for key in ("posted", "held", "other_payments"):
            view[key] = [dict(p) for p in view[key]]
        view["payments"] = list(view["payments"])
        view["other_types"] = list(view["other_types"])
        views.append(view)
    return views


def _flat(view: dict[str, Any]) -> dict[str, Any]:
    """One payout for a spreadsheet or a terminal: payments as 'PM1 (receipt R, deposit D); ...'."""
    return {
        **view,
        "payments": "; ".join(view["payments"]),
        "posted": "; ".join(
            f"{p['payment']} (receipt {p['receipt_id']}, deposit {p['deposit_no']})" for p in view["posted"]
        ),
        "held": "; ".join(f"{p['payment']} ({p['reason']})" for p in view["held"]),
        "other_payments": "; ".join(f"{p['payment']} ({p['status']})" for p in view["other_payments"]),
        "items_add_up": "yes" if view["items_add_up"] else "NO",
        "final": "yes" if view["final"] else "no",
        "vat_final": "yes" if view["vat_final"] else "no",
    }


def _counted(flat: dict[str, Any], view: dict[str, Any]) -> dict[str, Any]:
    """The terminal shows counts of posted and held payments (the CSV and JSON name them)."""
    return {**flat, "posted": len(view["posted"]), "held": len(view["held"])}


@click.command()
@click.option("--month", callback=_month, metavar="YYYY-MM", help="Only payouts that arrived in this month.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON (amounts as exact decimal text).")
@click.option(
    "--csv",
    "csv_file",
    callback=_csv_path,
    metavar="FILE",
    help="Also write the table to FILE as CSV, one row per payout, for a bank reconciliation.",
)
def payouts(month: str | None, as_json: bool, csv_file: Path | None) -> None:
    """Month end, one line per payout: the bank line (amount, arrival date, reference), collections, refunds,
    failures, chargebacks, fees net of fee refunds, VAT on fees, FX rate and converted amount, whether the
    items add up, and which payments are posted in Sage (receipt, deposit) or held (reason)."""
    settings = settings_or_exit()
    store = store_or_exit(settings)
    try:
        with warehouse.connect(settings.warehouse_path, read_only=True) as conn:
            frame = payout_report.build(conn, store, write=False, month=month)
    except duckdb.Error as exc:
        raise click.ClickException(
            f"cannot read the warehouse {settings.warehouse_path} ({exc.__class__.__name__}: "
            f"{str(exc).splitlines()[0][:200]}); materialize gocardless/payouts once, or wait for the run "
            "that holds it"
        ) from None
    finally:
        store.dispose()
    views = payout_views(frame)
    if csv_file is not None:
        try:
            with csv_file.open("w", newline="", encoding="utf-8") as out:
                writer = csv.DictWriter(out, fieldnames=list(CSV_COLUMNS), extrasaction="ignore")
                writer.writeheader()
                writer.writerows(_flat(v) for v in views)
        except OSError as exc:
            raise click.ClickException(f"cannot write {csv_file}: {exc.strerror or exc}") from None
        click.echo(f"wrote {len(views)} payouts to {csv_file}", err=True)
    if as_json:
        echo_json(views)
    elif csv_file is None:
        echo_table([_counted(_flat(v), v) for v in views], TABLE_COLUMNS)
