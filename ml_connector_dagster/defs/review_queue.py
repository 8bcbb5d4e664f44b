"""Dagster wiring for the review queue as an asset: `reconciliation/review_queue`, a table of open items.

It follows every decision by itself (an automation condition on `payment_matches` and `cash_receipts`), and
every review job records a fresh materialization of it when it ends (`queue_materialization`), so the
table in the UI is never older than the last action. The rows are built in `reconciliation.review_queue`.
"""

from typing import Any

import dagster as dg

from ..reconciliation import review_queue as queue
from ..store import Store
from .resources import OperationalStore

KEY = dg.AssetKey(["reconciliation", "review_queue"])
#: Eager, except that a dependency never materialized (e.g. cash_receipts before the first write-back, or a
#: partition not backfilled) does not keep the queue from following the others.
FOLLOWS_DECISIONS = (
    dg.AutomationCondition.eager()
    .without(~dg.AutomationCondition.any_deps_missing())
    .with_label("after every decision (eager)")
)


#: Most rows kept in one materialization's table (the oldest first; `ml-connector review list` shows all).
TABLE_ROWS = 1000


def queue_metadata(store: Store) -> dict[str, Any]:
    """The open items as a Dagster table (with its column schema and row count) and a Markdown preview."""
    rows = queue.open_items(store)
    schema = dg.TableSchema(
        columns=[dg.TableColumn(name, type, description=text) for name, type, text in queue.COLUMNS]
    )
    by_kind: dict[str, int] = {}
    for r in rows:
        by_kind[r.kind] = by_kind.get(r.kind, 0) + 1
    return {
        "open_items": dg.MetadataValue.table([dg.TableRecord(r.as_dict()) for r in rows[:TABLE_ROWS]], schema=schema),
        "preview": dg.MetadataValue.md(queue.markdown(rows)),
        "by_kind": dg.MetadataValue.json(by_kind),
        "dagster/column_schema": schema,
        "dagster/row_count": len(rows),
    }


def queue_materialization(store: Store, description: str) -> dg.AssetMaterialization:
    """A materialization of the queue as it is now, for a review job to record at its end."""
    return dg.AssetMaterialization(asset_key=KEY, description=description, metadata=queue_metadata(store))


@dg.asset(
    key=KEY,
    group_name="reconciliation",
    deps=[dg.AssetKey(["reconciliation", "payment_matches"]), dg.AssetKey(["reconciliation", "cash_receipts"])],
    automation_condition=FOLLOWS_DECISIONS,
    description="Open review items, one row each: payment, GoCardless and Sage customer, amounts in currency "
    "units, reason, explanation in words, candidate invoices, what it waits for, since when. Refreshed after "
    "every decision and every review job (review_apply, review_retry, review_dismiss, review_reverse).",
)
def review_queue(store: OperationalStore) -> dg.MaterializeResult[None]:
    return dg.MaterializeResult(metadata=queue_metadata(store.get()))


defs = dg.Definitions(assets=[review_queue])
