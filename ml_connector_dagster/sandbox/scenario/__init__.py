"""Scenario folders: a Sage 100 company and a month of GoCardless activity (see docs/scenario-format.md).

reading.py  load_scenario: the folder's files read and checked whole, every problem reported
rows.py     each CSV row's cells checked and turned into a record
model.py    the records, the Scenario, and the steps its lifecycles make
"""

from .model import (
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
)
from .reading import bundled, load_scenario

__all__ = [
    "PAYMENT_ACTIONS",
    "REFUND_ACTIONS",
    "Action",
    "Company",
    "GoCardlessCustomer",
    "GoCardlessMandate",
    "GoCardlessPayment",
    "GoCardlessRefund",
    "SageCustomer",
    "SageInvoice",
    "Scenario",
    "ScenarioError",
    "bundled",
    "load_scenario",
]
