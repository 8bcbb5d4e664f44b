"""The code location: every area's definitions merged into one."""

import dagster as dg

from .defs import resources

defs = dg.Definitions.merge(
    resources.defs,
)
