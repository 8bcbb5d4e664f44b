"""The GoCardless stand-in's world: resources loaded from a scenario and the lifecycle played step by step.

Kept apart from HTTP (gocardless_api/) so the rules read in one place: what each scenario action does to a
payment or refund, which event GoCardless would create for it (ids, created_at, links, details.cause), and
how paid-out payments are grouped into payouts (one per currency and step) with fee items whose amounts are
strings of minor units to one decimal ("45.0"), the payout amount being their sum rounded once.

Faithful details worth knowing: lists are newest first; a payment or refund appears once its `created`
action has been played (one whose lifecycle has no `created` exists from the start); FX payments show
only `estimated_exchange_rate` until paid out, then `fx_amount` and `exchange_rate`.

  world.py      GoCardlessWorld: the state, the clock and seeded ids, loading and playing a step; WorldStatus
  actions.py    what each action does: the status it sets and its event's details (PAYMENT_STATUS, ...)
  payouts.py    the money a step moves: payout lines, fees, items and payouts (PAYOUT_ITEM_OF)
  resources.py  resources as first created from the scenario's rows (SCHEMES); GoCardless's timestamps
"""

from .resources import parse_iso
from .world import GoCardlessWorld, WorldStatus

__all__ = ["GoCardlessWorld", "WorldStatus", "parse_iso"]
