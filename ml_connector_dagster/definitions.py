"""The code location: every area's definitions merged into one."""

import dagster as dg

from .defs import (
    checks,
    gocardless,
    operations,
    receipt_checks,
    reconciliation,
    resources,
    review,
    review_queue,
    sage100,
    sources,
    write_back,
)

defs = dg.Definitions.merge(
    resources.defs,
    gocardless.defs,
    sage100.defs,
    reconciliation.defs,
    write_back.defs,
    review.defs,
    review_queue.defs,
    operations.defs,
    sources.defs,
    checks.defs,
    receipt_checks.defs,
)
