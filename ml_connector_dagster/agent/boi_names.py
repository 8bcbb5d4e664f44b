"""Every ProvideX name the BOI backend (boi.py) uses: objects, tasks and fields, in one place.

Several (the cash receipt objects and task, `InvoiceType$` on lines, the history objects) are unconfirmed:
validate them on a real Sage 100 installation; a wrong one is a one-line change here.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class BOINames:
    """Every ProvideX name the BOI backend uses. Those marked (unconfirmed) follow Sage's naming convention
    but were not checked against Sage's documentation: validate them on a real installation."""

    script_progid: str = "ProvideX.Script"
    session: str = "SY_Session"
    module: str = "A/R"
    customer_svc: str = "AR_Customer_svc"
    open_invoice_svc: str = "AR_OpenInvoice_svc"
    read_task: str = "AR_Customer_ui"
    deposit_bus: str = "AR_CashReceiptsDeposit_bus"  # (unconfirmed)
    receipts_bus: str = "AR_CashReceipts_bus"  # (unconfirmed)
    receipts_task: str = "AR_CashReceipts_ui"  # (unconfirmed)
    line_invoice_type: str = "InvoiceType$"  # (unconfirmed) field of AR_CashReceiptsDetail
    comment_field: str = "Comment$"  # where the idempotency key (GoCardless payment id) is kept
    history_svc: str = "AR_CashReceiptsHistory_svc"  # (unconfirmed) posted receipt lines
    payment_history_svc: str = "AR_TransactionPaymentHistory_svc"  # (unconfirmed) posted payments per invoice
    payment_reference_field: str = "PaymentReference$"  # of AR_TransactionPaymentHistory


# The fields read from each object (Sage's `$`-suffixed names; a row's keys drop the `$`).
CUSTOMER_FIELDS = (
    "ARDivisionNo$",
    "CustomerNo$",
    "CustomerName$",
    "EmailAddress$",
    "CurrentBalance",
    "CustomerStatus$",
    "DateUpdated$",
    "TimeUpdated$",
)
INVOICE_FIELDS = (
    "ARDivisionNo$",
    "CustomerNo$",
    "InvoiceNo$",
    "InvoiceType$",
    "InvoiceDate$",
    "InvoiceDueDate$",
    "Balance",
    "PaymentsToday",
    "DateUpdated$",
    "TimeUpdated$",
)
HEADER_FIELDS = ("DepositNo$", "ARDivisionNo$", "CustomerNo$", "CheckNo$", "PostingAmt")
HISTORY_FIELDS = ("DepositNo$", "ARDivisionNo$", "CustomerNo$", "CheckNo$")
PAYMENT_HISTORY_FIELDS = ("ARDivisionNo$", "CustomerNo$", "CheckNo$")
