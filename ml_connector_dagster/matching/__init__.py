"""Matching GoCardless payments to Sage 100 open invoices: the rules of docs/reconciliation.md.

Pure: data in, decisions out.  No network, no files, no Dagster; DuckDB is used only as an in-memory
SQL engine so that a million open invoices are matched set-wise, not in a per-payment Python loop.

Public API
----------
``MatchSettings(home_currency, on_tie="oldest", fx_rates={})``
    Company settings the rules depend on (``on_tie`` is ``"oldest"`` or ``"hold"``; ``fx_rates`` are
    home-currency units per one foreign unit, as Decimal or decimal strings).

``resolve_customers(gc_customers, sage_customers) -> DataFrame``
    "Which Sage customer", rules 1-3.  In: GoCardless customers (``id``, ``email``, ``metadata``
    as dict or JSON string with ``sage_customer = "DD-CUSTNO"``; optional ``company_name``,
    ``given_name``, ``family_name`` for candidates) and Sage customers (``ARDivisionNo``,
    ``CustomerNo``, ``CustomerName``, ``EmailAddress``).  Out: one row per GoCardless customer with
    ``gocardless_customer``, ``sage_customer`` (``"01-ABF"`` or None), ``resolved_by``
    (``"metadata"``, ``"email"`` or None) and ``candidates`` (likely ``"DD-CUSTNO"`` keys when
    unresolved: same email, same name, same CustomerNo in another division; at most 10).

``match_payments(payments, customer_map, invoices, settings) -> DataFrame``
    The vectorised path.  ``payments``: ``id``, ``amount`` (integer minor units), ``currency``,
    ``reference``, ``description``, ``metadata`` (dict or JSON string; key ``sage_invoice``),
    ``fx_currency``, ``fx_amount`` (integer minor units or missing), ``gocardless_customer``, in
    payment order (the evaluation gives them oldest first: ``created_at``, ``id``).
    ``customer_map``: the output of :func:`resolve_customers`.  ``invoices``: ``AR_OpenInvoice`` rows
    (``ARDivisionNo``, ``CustomerNo``, ``InvoiceNo``, ``InvoiceType``, ``InvoiceDate``,
    ``InvoiceDueDate``, ``Balance`` and optionally ``PaymentsToday``, each a Decimal, decimal string or
    integer; a missing PaymentsToday is 0).  Out: one row per payment, in input order, with the columns
    of :data:`DECISION_COLUMNS` (see :class:`Decision`).

    Payments of one customer compete for its invoices: the result is what deciding them one at a time
    in payment order gives, each seeing what the earlier ones took (:func:`decide_in_order`).  Set-wise
    in rounds: all are decided, those no earlier payment of the round can have changed are settled
    (per customer, every payment before the first one an earlier payment took from), and the rest are
    decided again against what the settled ones left (:data:`.sql_text.SETTLED_SQL`).

``decide_for_customer(payment, open_invoices, settings) -> Decision``
    The same rules for one payment against the customer's current invoices (the write-back
    re-check right before posting).  ``payment`` is a dict with the payment columns above plus
    ``sage_customer`` (and optionally ``customer_candidates``).  Decisions are identical to
    :func:`match_payments` field for field: both gather the same *facts* (named, exact-amount,
    oldest-first and open invoices); the one-payment path concludes in Python (:func:`.rules.conclude`),
    the set-wise path in SQL (:mod:`.sql_text`), and property tests hold the two to the same decisions.

``decide_in_order(payments, invoices_of, settings) -> list[Decision]``
    :func:`decide_for_customer` payment after payment, each against ``invoices_of(sage_customer)`` with
    ``PaymentsToday`` raised by what the earlier matched payments allocated: the one-at-a-time twin of
    :func:`match_payments` over several payments (the property tests and the benchmark's loops).

The open amount
    Every rule reads an invoice's **open amount**, ``Balance - PaymentsToday``: Sage lowers ``Balance``
    only at the Cash Receipts Journal update, and ``PaymentsToday`` holds the receipts entered before it
    (people's and ours).  An invoice is open when its open amount is above zero.  Callers add to
    ``PaymentsToday`` what they know Sage's copy does not show yet (the evaluation: this product's own
    matched or newly written allocations).  A named invoice with ``Balance`` above zero and no open
    amount is held ``invoice_already_collected``, explained as consumed by unposted receipts.

``Decision`` (a NamedTuple; ``.matched``, ``.as_row()``)
    ``payment_id``, ``status`` (:data:`MATCHED` or :data:`HELD`), ``reason`` (None or one of
    :data:`REASON_CODES`), ``sage_customer``, ``home_amount`` (Decimal, None when the currency is
    unsupported), ``allocations`` (``[{"invoice_no", "invoice_type", "amount": Decimal}]``, oldest
    first, adding up to ``home_amount``), ``rule`` (:data:`RULE_NAMED_INVOICES`,
    :data:`RULE_EXACT_AMOUNT`, :data:`RULE_OLDEST_FIRST` or None), ``explanation`` (a sentence for the
    audit trail, e.g. "exact amount: oldest of 3 invoices of 120.00") and ``candidates`` (for the
    review queue).  :data:`SAGE_REJECTED` is exported for the posting step, which decides it.

The decision table (:mod:`.kinds`)
    Every decision is one :class:`~.kinds.Kind` (a line of the table in docs/reconciliation.md section 5);
    :data:`~.kinds.KIND_TABLE` gives each its status, reason, rule, explanation template and candidates.
    Both paths read it: a sentence is changed there and nowhere else.

Modules: :mod:`.kinds` (the table), :mod:`.model` (settings in, decisions out), :mod:`.inputs` (reading
names, metadata, amounts, balances and dates), :mod:`.customers` (which Sage customer); the one-payment
path :mod:`.facts` (what the rules ask) and :mod:`.rules` (what they conclude); the set-wise path
:mod:`.frames` (its inputs), :mod:`.sql_text` (its SQL), :mod:`.sql_run` (running it) and
:mod:`.vectorised` (results into decisions); :mod:`.bulk` (the GC pause both use).

Money never touches float: amounts are integer cents inside, :class:`~decimal.Decimal` outside;
integer columns (``amount``, ``fx_amount``) must not be float dtypes (:class:`TypeError`), and a
``Balance`` that is not a 2-decimal number raises :class:`ValueError` (both paths).

How the vectorised path stays fast (1,000,000 invoices, 200,000 payments): the paying customers'
invoices go into one in-memory DuckDB table, ranked oldest first with window functions (row number,
running open total, open rank); SQL then joins names, tokens and amounts against that table - rule 3
is a join on the running total - and writes each payment's verdict, explanation and allocations too.
Later rounds (payments competing for one invoice) rank only their customers' invoices again.
Python reads the payments' metadata, converts amounts per currency with numpy, and turns the result
columns into Decimals, dicts and lists in bulk; the cyclic GC is paused meanwhile.

Choices the spec leaves open, made here and applied by both paths:
- order of holds: ``currency_unsupported``, then ``customer_not_found``, then the invoice rules
  (the order of the spec's sections);
- invoice names compare case-insensitively in ASCII, after trimming spaces and leading zeros;
  only IN/DM/FC rows are the customer's invoices (a name of a CM or PP is not found);
- a ``Balance`` <= 0 counts as collected, an open amount <= 0 as not open (consumed when the Balance is
  above 0); a non-positive payment amount is ``amount_mismatch``;
- held payments list candidates: customer keys for ``customer_not_found``, the tied invoices for
  ``ambiguous_match``, the named ones for named holds, else the 10 oldest open invoices.
- tokens are runs of Unicode letters and digits; characters assigned after Unicode 14 (Python
  3.11's table) may be classified differently by DuckDB's RE2 - not a concern for invoice numbers.
"""

from ml_connector_dagster.matching.customers import resolve_customers
from ml_connector_dagster.matching.inputs import normalize_invoice_no, reference_tokens
from ml_connector_dagster.matching.kinds import (
    AMBIGUOUS_MATCH,
    AMOUNT_MISMATCH,
    CURRENCY_UNSUPPORTED,
    CUSTOMER_NOT_FOUND,
    HELD,
    INVOICE_ALREADY_COLLECTED,
    INVOICE_NOT_FOUND,
    MATCHED,
    REASON_CODES,
    RULE_EXACT_AMOUNT,
    RULE_NAMED_INVOICES,
    RULE_OLDEST_FIRST,
    SAGE_REJECTED,
)
from ml_connector_dagster.matching.model import (
    CANDIDATE_LIMIT,
    DECISION_COLUMNS,
    INVOICE_TYPES,
    Decision,
    MatchSettings,
)
from ml_connector_dagster.matching.rules import decide_for_customer, decide_in_order
from ml_connector_dagster.matching.vectorised import match_payments

__all__ = [
    "AMBIGUOUS_MATCH",
    "AMOUNT_MISMATCH",
    "CANDIDATE_LIMIT",
    "CURRENCY_UNSUPPORTED",
    "CUSTOMER_NOT_FOUND",
    "DECISION_COLUMNS",
    "HELD",
    "INVOICE_ALREADY_COLLECTED",
    "INVOICE_NOT_FOUND",
    "INVOICE_TYPES",
    "MATCHED",
    "REASON_CODES",
    "RULE_EXACT_AMOUNT",
    "RULE_NAMED_INVOICES",
    "RULE_OLDEST_FIRST",
    "SAGE_REJECTED",
    "Decision",
    "MatchSettings",
    "decide_for_customer",
    "decide_in_order",
    "match_payments",
    "normalize_invoice_no",
    "reference_tokens",
    "resolve_customers",
]
