"""Reconciliation: payments evaluated against Sage, cash receipts posted exactly once, review actions.

Plain functions over the operational store, the warehouse and the Sage/GoCardless clients; Dagster wires
them in `defs/reconciliation.py`, `defs/write_back.py` and `defs/review.py`, and the CLI calls the same
functions.
"""
