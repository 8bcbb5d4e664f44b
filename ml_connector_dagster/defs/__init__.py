"""Dagster wiring only: one module per outside system, each exposing `defs`; plain clients do the work."""
