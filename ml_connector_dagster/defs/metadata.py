"""What every asset reports to the Dagster UI, made one way: warehouse table metadata read from DuckDB's
information schema, previews in currency units, links to the GoCardless dashboard, owners and tags.

- `table_metadata` gives `dagster/row_count`, `dagster/table_name` (catalog.schema.table, as DuckDB names it:
  `warehouse.main.gocardless_payments`) and `dagster/column_schema` (types, nullability, the primary key), so
  the catalog shows the table the asset really wrote, not a copy of its DDL that could drift.
- Previews are `dg.MetadataValue.table` whose amounts are Decimal text in currency units (never minor units or
  floats).
- `dashboard_url` links a GoCardless record in its dashboard when the configured API is GoCardless's own (live
  or sandbox); the local stand-in has no dashboard, so nothing is linked then. Sage 100 has no web record URL.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from decimal import Decimal
from typing import Any

import dagster as dg
import duckdb
import numpy as np
import pandas as pd

from ..store import Store
from ..store.ledger import WRITTEN, LedgerEntry
from ..warehouse import count, table_exists

# Helpers only: an empty Definitions, so a defs-folder loader takes this module as is rather than scanning it.
defs = dg.Definitions()

OWNERS = ["team:finance-ops"]
DASHBOARDS = {
    "https://api.gocardless.com": "https://manage.gocardless.com",
    "https://api-sandbox.gocardless.com": "https://manage-sandbox.gocardless.com",
}
PREVIEW_ROWS = 100


def tags(system: str, domain: str) -> dict[str, str]:
    """The asset tags every asset carries: the outside system it mirrors or serves, and the business domain."""
    return {"system": system, "domain": domain}


def warehouse_table(
    connect: Callable[[], AbstractContextManager[duckdb.DuckDBPyConnection]], table: str
) -> dict[str, Any]:
    """`table_metadata` on a connection of its own (`Warehouse.connect`), for an asset's MaterializeResult."""
    with connect() as conn:
        return table_metadata(conn, table)


def table_metadata(conn: duckdb.DuckDBPyConnection, table: str) -> dict[str, Any]:
    """Row count, full table name and column schema of a warehouse table, as DuckDB has it now."""
    catalog, schema = _current(conn)
    if not table_exists(conn, table):  # nothing written yet: say so rather than fail the materialization
        return {"dagster/row_count": 0, "dagster/table_name": f"{catalog}.{schema}.{table}"}
    return {
        "dagster/row_count": count(conn, f'SELECT count(*) FROM "{table}"'),
        "dagster/table_name": f"{catalog}.{schema}.{table}",
        "dagster/column_schema": column_schema(conn, table),
    }


def _current(conn: duckdb.DuckDBPyConnection) -> tuple[str, str]:
    row = conn.execute("SELECT current_database(), current_schema()").fetchone()
    if row is None:
        raise ValueError("DuckDB answered no current database")
    return str(row[0]), str(row[1])


def column_schema(conn: duckdb.DuckDBPyConnection, table: str) -> dg.TableSchema:
    """The table's columns from information_schema (type, nullability) and its key from duckdb_constraints()."""
    columns = conn.execute(
        """SELECT column_name, data_type, is_nullable = 'YES' FROM information_schema.columns
        WHERE table_name = ? AND table_schema = current_schema() ORDER BY ordinal_position""",
        [table],
    ).fetchall()
    keys = conn.execute(
        """SELECT constraint_column_names FROM duckdb_constraints()
        WHERE table_name = ? AND schema_name = current_schema() AND constraint_type = 'PRIMARY KEY'""",
        [table],
    ).fetchall()
    key = [str(c) for c in keys[0][0]] if keys else []
    return dg.TableSchema(
        columns=[
            dg.TableColumn(
                name=name,
                type=str(kind),
                constraints=dg.TableColumnConstraints(nullable=bool(nullable), unique=key == [name]),
            )
            for name, kind, nullable in columns
        ],
        constraints=dg.TableConstraints(other=[f"PRIMARY KEY ({', '.join(key)})"] if key else []),
    )


def dashboard_url(api_url: str, resource: str, record_id: str | None = None) -> str | None:
    """The GoCardless dashboard page of a record (or of the list) for the configured API; None for the stand-in."""
    manage = DASHBOARDS.get(api_url.rstrip("/"))
    if manage is None:
        return None
    return f"{manage}/{resource}" + (f"/{record_id}" if record_id else "")


def dashboard_metadata(api_url: str, resource: str) -> dict[str, Any]:
    """`gocardless_dashboard`: a link to the records' list in the dashboard, when there is one."""
    url = dashboard_url(api_url, resource)
    return {"gocardless_dashboard": dg.MetadataValue.url(url)} if url else {}


def _text(value: object) -> str | bool | None:
    """A cell as text (Decimal amounts exactly as they are, in currency units); a yes/no stays a bool."""
    if value is None or (not isinstance(value, (str, list, tuple)) and pd.isna(value)):  # type: ignore[call-overload]
        return None
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return str(value)


def table_value(columns: Sequence[tuple[str, str, str]], rows: Sequence[Mapping[str, object]]) -> dg.TableMetadataValue:
    """A preview table: `columns` are (name, type, description); cells become text (bools stay), so no amount
    is a float."""
    return dg.MetadataValue.table(
        records=[dg.TableRecord({name: _text(row.get(name)) for name, _, _ in columns}) for row in rows],
        schema=dg.TableSchema(
            columns=[dg.TableColumn(name=name, type=kind, description=about) for name, kind, about in columns]
        ),
    )


PAYOUT_COLUMNS = (
    ("payout_id", "string", "GoCardless payout id"),
    ("status", "string", "GoCardless payout status"),
    ("arrival_date", "string", "the day it reaches the bank"),
    ("currency", "string", "ISO 4217"),
    ("amount", "decimal", "the bank line, in currency units"),
    ("collections", "decimal", "payments paid out, in currency units"),
    ("refunds", "decimal", "refunds (negative), in currency units"),
    ("failures", "decimal", "late failures (negative), in currency units"),
    ("chargebacks", "decimal", "chargebacks (negative), in currency units"),
    ("fees", "decimal", "fees net of fee refunds (negative), in currency units"),
    ("vat", "decimal", "VAT inside the fees, in its currency's units"),
    ("exchange_rate", "string", "FX rate of a converted payout"),
    ("converted_amount", "decimal", "the converted amount, in currency units"),
    ("items_add_up", "bool", "the items sum to the amount"),
    ("posted", "string", "payments posted in Sage"),
    ("held", "string", "payments held for review"),
    ("reference", "string", "the bank reference"),
)


def payouts_preview(frame: pd.DataFrame, limit: int = PREVIEW_ROWS) -> dg.TableMetadataValue:
    """The newest payouts, one row each, amounts in currency units (the report's Decimal text)."""
    records: list[dict[str, Any]] = frame.tail(limit).astype(object).to_dict("records") if len(frame) else []  # type: ignore[assignment]
    rows = [{**r, "posted": _posted(r.get("posted")), "held": _held(r.get("held"))} for r in records]
    return table_value(PAYOUT_COLUMNS, rows)


def _posted(items: Any) -> str:
    """The report's posted payments as `PM1 (receipt R1, deposit 00012)`."""
    return ", ".join(f"{i['payment']} (receipt {i['receipt_id']}, deposit {i['deposit_no']})" for i in _list(items))


def _held(items: Any) -> str:
    return ", ".join(f"{i['payment']} ({i['reason']})" for i in _list(items))


def _list(items: Any) -> list[Mapping[str, Any]]:
    return [] if items is None or isinstance(items, float) else list(items)


RECEIPT_COLUMNS = (
    ("payment_id", "string", "GoCardless payment id (the receipt's idempotency key)"),
    ("sage_customer", "string", "ARDivisionNo-CustomerNo"),
    ("invoices", "string", "invoice: amount applied, in home currency units"),
    ("amount", "decimal", "the receipt's amount, in home currency units"),
    ("receipt", "string", "Sage's receipt id"),
    ("deposit", "string", "Sage deposit number"),
    ("status", "string", "ledger status now"),
)


def receipts_preview(entries: Sequence[LedgerEntry], limit: int = PREVIEW_ROWS) -> dg.TableMetadataValue:
    """The cash receipts a run wrote: payment, Sage customer, invoices, amount, receipt and deposit."""
    rows = [
        {
            "payment_id": e.payment_id,
            "sage_customer": e.sage_customer,
            "invoices": [f"{a.get('invoice_no')}: {a.get('amount')}" for a in e.allocations],
            "amount": Decimal(e.home_amount) if e.home_amount else None,
            "receipt": (e.receipt or {}).get("receipt_id"),
            "deposit": (e.receipt or {}).get("deposit_no"),
            "status": e.status,
        }
        for e in entries[:limit]
    ]
    return table_value(RECEIPT_COLUMNS, rows)


def receipts_metadata(store: Store, written: Sequence[str]) -> dict[str, Any]:
    """The receipts a write-back run wrote (`written`: payment ids) as a preview, and the receipts the ledger
    records in Sage as the asset's row count (posted, reversal required, reversed: each has its receipt)."""
    counts = store.ledger.counts()
    return {
        "receipts_written": receipts_preview(store.ledger.many(list(written))),
        "dagster/row_count": sum(counts.get(s, 0) for s in (*WRITTEN, "reversed")),
        "dagster/column_schema": dg.TableSchema(
            columns=[dg.TableColumn(name=name, type=kind, description=about) for name, kind, about in RECEIPT_COLUMNS]
        ),
    }
