"""Everything that is not the product: local stand-ins for the outside systems, the scenarios they play, and
the demo that drives the real Dagster definitions over them.

Product code never imports this package (tests/test_layout.py checks it): it reaches the
stand-ins through the same network interfaces it uses for the real GoCardless and Sage 100. Only the
tooling that starts them imports it: `cli/`, `bench/` and the tests.
"""
