"""The outside systems as external assets, so the asset graph's lineage starts where the data does.

Dagster does not materialize them: GoCardless and Sage 100 own their data. The GoCardless assets depend on
`gocardless/api` (the API they re-read and the webhooks that name what changed), the Sage assets on
`sage100/ar` (Accounts Receivable behind the agent). `gocardless/api` carries the webhook freshness check
(defs/checks.py).
"""

import dagster as dg

from .metadata import OWNERS, tags

GOCARDLESS_API = dg.AssetSpec(
    key=["gocardless", "api"],
    group_name="sources",
    kinds={"gocardless"},
    owners=OWNERS,
    tags=tags("gocardless", "source"),
    description="GoCardless: its API (payments, refunds, payouts, customers, events; read only, except the "
    "optional metadata.sage_customer on customers) and the signed webhooks that announce changes.",
)
SAGE_AR = dg.AssetSpec(
    key=["sage100", "ar"],
    group_name="sources",
    kinds={"sage100"},
    owners=OWNERS,
    tags=tags("sage100", "source"),
    description="Sage 100 Accounts Receivable (AR_Customer, AR_OpenInvoice), read through the agent on the "
    "Sage server; cash receipts are written back to it by reconciliation/cash_receipts.",
)

defs = dg.Definitions(assets=[GOCARDLESS_API, SAGE_AR])
