"""ml-connector-dagster: GoCardless bank-debit payments posted to Sage 100 AR as cash receipts."""

__version__ = "0.1.0"
