"""The code location: every area's definitions merged into one."""

import dagster as dg

from .defs import gocardless, operations, reconciliation, resources, sage100

defs = dg.Definitions.merge(
    resources.defs,
    gocardless.defs,
    sage100.defs,
    reconciliation.defs,
    operations.defs,
)
