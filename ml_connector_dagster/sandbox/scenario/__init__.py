"""Scenario folders: a Sage 100 company, a month of GoCardless activity and what people do in Sage meanwhile
(see docs/scenario-format.md).

reading.py       load_scenario: the folder's files read and checked whole, every problem reported
company_json.py  company.json: the company, its logon, FX rates, settings, the play's date
csv_files.py     the CSV files: their columns, headers checked, rows kept with their lines
rows.py          each CSV row's cells checked and turned into a record
between_rows.py  what lies between rows: links, refund start steps, Sage changes in play order
model.py         the records, the Scenario, and the steps its lifecycles make
"""

from .model import (
    PAYMENT_ACTIONS,
    REFUND_ACTIONS,
    SAGE_CHANGE_ACTIONS,
    Action,
    Company,
    GoCardlessCustomer,
    GoCardlessMandate,
    GoCardlessPayment,
    GoCardlessRefund,
    SageChange,
    SageCustomer,
    SageInvoice,
    Scenario,
    ScenarioError,
)
from .reading import bundled, load_scenario

__all__ = [
    "PAYMENT_ACTIONS",
    "REFUND_ACTIONS",
    "SAGE_CHANGE_ACTIONS",
    "Action",
    "Company",
    "GoCardlessCustomer",
    "GoCardlessMandate",
    "GoCardlessPayment",
    "GoCardlessRefund",
    "SageChange",
    "SageCustomer",
    "SageInvoice",
    "Scenario",
    "ScenarioError",
    "bundled",
    "load_scenario",
]
