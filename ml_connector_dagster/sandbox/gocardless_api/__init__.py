"""The GoCardless API stand-in over HTTP (routes.py)."""

from .routes import (
    API_VERSION,
    CONTROL_PREFIX,
    DEFAULT_TOKEN,
    DEFAULT_WEBHOOK_SECRET,
    Fault,
    Faults,
    GoCardlessStandIn,
    create_app,
    start_gocardless_stand_in,
)

__all__ = ["API_VERSION", "CONTROL_PREFIX", "DEFAULT_TOKEN", "DEFAULT_WEBHOOK_SECRET", "Fault", "Faults",
           "GoCardlessStandIn", "create_app", "start_gocardless_stand_in"]
