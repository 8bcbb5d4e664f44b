"""The GoCardless stand-in: the API subset the product uses, with GoCardless's shapes, over real HTTP.

Endpoints (bearer auth, `GoCardless-Version` required): GET /payments[/{id}], /customers[/{id}],
PUT /customers/{id}, GET /mandates[/{id}], /refunds[/{id}], /payouts[/{id}], /payout_items?payout=,
/events[/{id}], /creditors[/{id}]. Envelopes `{"payments": {...}}` and
`{"payments": [...], "meta": {"cursors": {"before", "after"}, "limit"}}`, cursor pagination (newest first,
limit at most 500, `after` null on the last page), filters as flat keys (`created_at[gte]=...`), and
GoCardless's error bodies, so the official `gocardless_pro` client works against it unchanged.

Infrastructure misbehaviour on demand (never on the control API): a rate limit answering 429 with
RateLimit-* headers, and queued faults - delays, JSON 5xx, HTML error pages, 429s and dropped connections.

The control API lives under `/_sandbox/` (no auth; a local tool):
  POST /_sandbox/step[?wait=SECONDS]   play the next step - its Sage changes (when a hook is wired, see
                                       play.py), then its GoCardless actions - send its webhooks, return
                                       its events and what the Sage changes did
  GET  /_sandbox/status                current step, total steps, webhook delivery counts, faults
  POST /_sandbox/faults                set faults and rate limit (body below); GET shows; DELETE clears
    {"faults": [{"kind": "status"|"html"|"drop"|"delay"|"rate_limit", "count": 1, "status": 500,
                 "seconds": 0.5, "path": "/payments", "reset_seconds": 1}],
     "rate_limit": {"limit": 100, "window_seconds": 60} | null}

  stand_in.py  start_gocardless_stand_in, GoCardlessStandIn: a running stand-in and its shortcuts
  play.py      one step of the play: the step hook (Sage's changes), then the world's actions and webhooks
  routes.py    the resources' and the control API's routes over the world (gocardless_state/)
  listing.py   filters, newest-first order and cursor pages
  gate.py      the outermost layer: rate limit, faults acted out, bearer token and version
  faults.py    the queued faults and the rate limit window
  errors.py    GoCardless's error bodies
"""

from .faults import Fault, Faults
from .gate import API_VERSION, CONTROL_PREFIX
from .play import StepHook, StepPlayed, StepPlayer
from .routes import create_app
from .stand_in import DEFAULT_TOKEN, DEFAULT_WEBHOOK_SECRET, GoCardlessStandIn, start_gocardless_stand_in

__all__ = [
    "API_VERSION",
    "CONTROL_PREFIX",
    "DEFAULT_TOKEN",
    "DEFAULT_WEBHOOK_SECRET",
    "Fault",
    "Faults",
    "GoCardlessStandIn",
    "StepHook",
    "StepPlayed",
    "StepPlayer",
    "create_app",
    "start_gocardless_stand_in",
]
