"""Dagster wiring only: one module per outside system, each exposing `defs`; plain clients do the work.

`ml_connector_dagster.definitions` loads every module of this folder (the `dg` defs folder). The package
itself defines nothing; its empty `Definitions` says so, so the loader takes it as is instead of scanning it
for loose definitions (a Dagster preview feature that warns).
"""

import dagster as dg

defs = dg.Definitions()
