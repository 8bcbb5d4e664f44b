"""Sage 100: zeep clients for eBusiness Web Services and the local agent, the shared contract, the WSDLs.

Knows nothing of Dagster; `defs/sage100.py` wires it in.
"""

from .agent_client import AgentClient, AgentInfo, Page
from .clients import RetryPolicy
from .ebusiness_client import ContractInfo, EBusinessClient
from .errors import (
    SageCompanyError,
    SageError,
    SageFault,
    SageKeyConflict,
    SageLogonError,
    SageLogonLockedOut,
    SageNoAccess,
    SageNotFound,
    SageOutcomeUnknown,
    SageReceiptReversed,
    SageServerError,
    SageUnavailable,
    SageWriteRejected,
)
from .model import CashReceipt, CashReceiptRequest, CustomerRecord, InvoiceRecord, ReceiptLine, UnpostedReceiptLine

__all__ = [
    "AgentClient",
    "AgentInfo",
    "CashReceipt",
    "CashReceiptRequest",
    "ContractInfo",
    "CustomerRecord",
    "EBusinessClient",
    "InvoiceRecord",
    "Page",
    "ReceiptLine",
    "RetryPolicy",
    "SageCompanyError",
    "SageError",
    "SageFault",
    "SageKeyConflict",
    "SageLogonError",
    "SageLogonLockedOut",
    "SageNoAccess",
    "SageNotFound",
    "SageOutcomeUnknown",
    "SageReceiptReversed",
    "SageServerError",
    "SageUnavailable",
    "SageWriteRejected",
    "UnpostedReceiptLine",
]
