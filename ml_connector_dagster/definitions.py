"""The code location: every area's definitions merged into one."""

import dagster as dg

from .defs import resources, sage100

defs = dg.Definitions.merge(
    resources.defs,
    sage100.defs,
)
