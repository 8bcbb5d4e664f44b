"""The GoCardless stand-in's world: resources loaded from a scenario and the lifecycle played step by step.

Kept apart from HTTP (gocardless_api/) so the rules read in one place: what each scenario action does to a
payment or refund, which event GoCardless would create for it (ids, created_at, links, details.cause, source),
and the money: lines netted into positive payouts per currency and FX currency (a balance that is not
positive carries to the next step), fee items with their VAT, fees refunded on settled failures and
chargebacks, chargeback surcharges; item amounts are strings of minor units to one decimal ("45.0") and a
payout's amount is their sum rounded once.

Faithful details worth knowing: lists are newest first; a payment or refund appears once its `created`
action has been played (one whose lifecycle has no `created` exists from the start); an FX payout is
`pending` with only an estimated rate until the next step confirms it (`payouts.fx_rate_confirmed`), which
is also when its payments get `fx_amount` and `exchange_rate` and lose the estimate; play goes on one step
when the last one makes such a payout.

  world.py      GoCardlessWorld: the state, the clock and seeded ids, loading and playing a step; WorldStatus
  actions.py    what each action does: the status it sets and its event's details (PAYMENT_STATUS, ...)
  payouts.py    the money a step moves: payout lines, fees and VAT, payouts and their confirmations
  resources.py  resources as first created from the scenario's rows (SCHEMES); GoCardless's timestamps
"""

from .resources import parse_iso
from .world import GoCardlessWorld, WorldStatus

__all__ = ["GoCardlessWorld", "WorldStatus", "parse_iso"]
