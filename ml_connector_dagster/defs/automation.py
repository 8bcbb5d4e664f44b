"""Declarative automation: the reconciliation assets follow their inputs, with no hand-written chain.

`reconciliation/customer_map`, `payment_matches`, `cash_receipts` and `payouts` carry `FOLLOWS_INPUTS`:
requested when any input (a partition of gocardless/payments included) was materialised by another run
since the asset was last requested, once no input is still being materialised (a backfill first finishes)
and the asset is not already running. An input requested in the same tick counts as updated, so the
chain customer_map -> payment_matches -> cash_receipts -> payouts is requested as one run; an input
materialised by the run that also materialised the asset does not count again (`any_deps_updated`).

This is `AutomationCondition.eager()` with three changes:
- no `any_deps_missing`: every daily partition of gocardless/payments without payments would count as a
  missing input;
- no `newly_missing`: a fresh install waits for its first data rather than running on nothing;
- handled means requested, not also materialised: eager forgets an input that updates while the asset is
  running (the asset's own materialisation resets it), and a payment decided by nothing until the next
  webhook is what the old single run never allowed. Here the asset runs once more after such an update.

`reconciliation_automation` (running by default, every 5 s) evaluates the conditions. On a quiet system
nothing is materialised, so every tick requests nothing.
"""

import dagster as dg

REQUESTED = (dg.AutomationCondition.newly_requested() | dg.AutomationCondition.initial_evaluation()).with_label(
    "requested"
)
FOLLOWS_INPUTS = (
    dg.AutomationCondition.any_deps_updated().since(REQUESTED)
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("follows its inputs")

#: For the checks of the GoCardless assets, whose materializations the inbox job's ops record (a check runs
#: with its asset only when the asset itself runs): run once after each materialization of the asset.
FOLLOWS_ASSET = (
    dg.AutomationCondition.any_deps_updated().since(REQUESTED) & ~dg.AutomationCondition.in_progress()
).with_label("after its asset")

reconciliation_automation = dg.AutomationConditionSensorDefinition(
    "reconciliation_automation",
    target=dg.AssetSelection.all() | dg.AssetSelection.all_asset_checks(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=5,
    description="Evaluates the assets' automation conditions: new payments, Sage changes and backfills flow "
    "to the customer map, matches, write-back and payouts.",
)

defs = dg.Definitions(sensors=[reconciliation_automation])
