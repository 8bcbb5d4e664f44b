"""A simulated Sage 100 company in SQLite: AR customers, open invoices and cash receipt entry, with Sage's rules.

Tables and columns carry Sage's names and keys (see docs/sage100.md), so what the agent reads and writes
here looks like what it reads and writes through BOI on a real server. It enforces the rules the product
depends on - lines add up to PostingAmt, no invoice paid beyond its balance, unknown customers and
invoices refused - and answers with Sage-style fault codes and messages.

Every change stamps DateUpdated/TimeUpdated from a clock that never goes backwards and never repeats
(the last stamp is kept in the database, inside the write transaction, so two processes sharing the file
still get strictly increasing stamps). An idempotency table keyed by the GoCardless payment id makes a
repeated cash receipt return the first one and write nothing, across restarts.

  company.py   SageCompany: opening, logon, reads, customers, invoices; the entry point
  receipts.py  cash receipts: Sage's checks, entry, reversal, the journal update
  schema.py    the tables, and a new company loaded from a scenario
  rows.py      single rows: Sage dates, change stamps, counters, records
"""

from .company import CUSTOMER_FIELDS, SageCompany
from .rows import CustomerRow
from .schema import DB_FILE, CompanyInfo

__all__ = ["CUSTOMER_FIELDS", "DB_FILE", "CompanyInfo", "CustomerRow", "SageCompany"]
