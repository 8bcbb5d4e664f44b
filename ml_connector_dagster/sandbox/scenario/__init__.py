"""Scenario folders: a Sage 100 company and a month of GoCardless activity (reading.py)."""

from .reading import (
    PAYMENT_ACTIONS,
    REFUND_ACTIONS,
    Action,
    Company,
    GoCardlessCustomer,
    GoCardlessMandate,
    GoCardlessPayment,
    GoCardlessRefund,
    SageCustomer,
    SageInvoice,
    Scenario,
    ScenarioError,
    bundled,
    load_scenario,
)

__all__ = [
    "PAYMENT_ACTIONS", "REFUND_ACTIONS", "Action", "Company", "GoCardlessCustomer", "GoCardlessMandate",
    "GoCardlessPayment", "GoCardlessRefund", "SageCustomer", "SageInvoice", "Scenario", "ScenarioError", "bundled",
    "load_scenario",
]
