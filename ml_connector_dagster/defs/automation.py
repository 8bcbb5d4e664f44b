"""Declarative automation: the reconciliation assets follow their inputs, with no hand-written chain.

`reconciliation/customer_map`, `payment_matches`, `cash_receipts` and `payouts` carry `FOLLOWS_INPUTS`:
requested when any input (a partition of gocardless/payments included) was materialised since the asset
was last requested or materialised, once no input is still being materialised (a backfill first finishes)
and the asset is not already running. An input requested in the same tick counts as updated, so the
chain customer_map -> payment_matches -> cash_receipts -> payouts is requested as one run.

This is `AutomationCondition.eager()` without two of its parts: `any_deps_missing` (every daily partition
of gocardless/payments before the newest would count as a missing input, and most days never have a
payment) and `newly_missing` (a fresh install waits for its first data rather than running on nothing).

`reconciliation_automation` (running by default, every 5 s) evaluates the conditions. On a quiet system
nothing is materialised, so every tick requests nothing.
"""

import dagster as dg

FOLLOWS_INPUTS = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("follows its inputs")

reconciliation_automation = dg.AutomationConditionSensorDefinition(
    "reconciliation_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=5,
    description="Evaluates the assets' automation conditions: new payments, Sage changes and backfills flow "
    "to the customer map, matches, write-back and payouts.",
)

defs = dg.Definitions(sensors=[reconciliation_automation])
