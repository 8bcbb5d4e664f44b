"""The code location: every area's definitions merged into one."""

import dagster as dg

from .defs import (
    automation,
    gocardless,
    gocardless_inbox,
    operations,
    reconciliation,
    resources,
    review,
    sage100,
    write_back,
)

defs = dg.Definitions.merge(
    resources.defs,
    gocardless.defs,
    sage100.defs,
    reconciliation.defs,
    write_back.defs,
    review.defs,
    operations.defs,
    gocardless_inbox.defs,
    automation.defs,
)
