"""A simulated Sage 100 company in SQLite: AR customers, open invoices and cash receipt entry, with Sage's rules.

Tables and columns carry Sage's names and keys (see docs/sage100.md), so what the agent reads and writes
here looks like what it reads and writes through BOI on a real server. It behaves as Sage does where money
is at stake: entering a receipt raises the invoice's PaymentsToday and leaves Balance (and the customer's
CurrentBalance) to the Cash Receipts Journal update, which a person runs; a line beyond what is still open
- Balance less every unposted receipt, people's and the product's - is refused with Sage's "The invoice
balance was exceeded"; deposits are numbered from Sage's Next Deposit Number and the product adds only to
its own; a posted receipt is reversed by a negative receipt with the same check number; an inactive
customer is a warning. Lines add up to PostingAmt, unknown customers and invoices are refused, with
Sage-style fault codes and messages. What people do in Sage (key a receipt, run the journal update, add an
invoice or a customer) is a method of the company too.

Every change stamps DateUpdated/TimeUpdated from a clock that never goes backwards and never repeats
(the last stamp is kept in the database, inside the write transaction, so two processes sharing the file
still get strictly increasing stamps). An idempotency table keyed by the GoCardless payment id makes a
repeated cash receipt return the first one and write nothing, across restarts.

  company.py   SageCompany: opening, logon, reads, and a method for every write; the entry point
  customers.py customers as eBusiness Web Services keeps them: next number, new customer, change
  people.py    people's work: a cash receipt keyed into their own deposit, an invoice added or adjusted
  receipts.py  the product's cash receipts: entry, reversal, the idempotency row
  checks.py    Sage's checks of a receipt, in Sage's order; an inactive customer is a warning
  deposits.py  deposits and their owners; an unposted receipt entered or deleted (PaymentsToday)
  journal.py   the Cash Receipts Journal update: Balance, customers, history, deposits closed
  schema.py    the tables, a new company loaded from a scenario, an older file brought up to date
  rows.py      single rows: Sage dates, change stamps, counters, company options, records
"""

from .company import SageCompany
from .customers import CUSTOMER_FIELDS
from .people import EnteredReceipt
from .rows import CompanyOptions, CustomerRow
from .schema import DB_FILE, CompanyInfo

__all__ = [
    "CUSTOMER_FIELDS",
    "DB_FILE",
    "CompanyInfo",
    "CompanyOptions",
    "CustomerRow",
    "EnteredReceipt",
    "SageCompany",
]
