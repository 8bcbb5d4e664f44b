"""What a matching decision can be: the one table both paths read.

Every payment ends in exactly one :class:`Kind`, one line of the decision table of docs/reconciliation.md
section 5 (lines 5, 10 and 12 have two kinds each).  :data:`KIND_TABLE` gives, for each kind, the decision's
``status``, ``reason`` and ``rule``, its explanation sentence (a :meth:`str.format` template) and what a
held decision lists as candidates.  The one-payment path (:mod:`.rules`) fills the template in Python;
the set-wise path (:mod:`.sql_text`) turns the same template into SQL and reads status, reason and rule
from the table too.  Changing a sentence, a reason or a listing is an edit here and nowhere else; a new
kind is a line here plus the condition that leads to it in each path (and, for a matched kind, what it
pays: the ``allocs`` table of :mod:`.sql_text`), which the property tests hold to the same answers.

Words a template may use (``{amount}`` and so on), with what the paths put in them:

- ``amount``: the payment's home-currency amount, 2 decimals (``120.00``);
- ``home``, ``currency``: the home currency and the payment's currency (no home amount);
- ``gocardless_customer``: the payment's GoCardless customer id (no Sage customer);
- ``sage_customer``: the Sage customer key, ``DD-CUSTNO``;
- ``missing``: the metadata names the customer does not have, as given, ``", "``-joined;
- ``named``, ``named_total``: the named invoices' numbers (oldest first, ``", "``-joined), their open amounts' sum;
- ``collected``: the named invoices whose Balance is 0;
- ``consumed``: the named invoices with no open amount left (Balance less unposted receipts is 0);
- ``paid``: the named invoices that get money, the last one partly;
- ``last_no``, ``last_part``, ``last_balance``: the invoice paid partly, what it gets, its open amount;
- ``first_no``, ``n_exact``: the oldest invoice whose open amount is exactly the amount, and how many there are;
- ``run``, ``n_run``: the oldest-first run of open invoices adding up to the amount, and its length;
- ``n_open``: how many open invoices the customer has.

The set-wise path has one SQL expression per word (:data:`.sql_text.WORD_SQL`); a template using a word it
does not know fails loudly when :func:`~.vectorised.match_payments` builds its SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, IntEnum
from string import Formatter
from typing import Final

__all__ = [
    "AMBIGUOUS_MATCH",
    "AMOUNT_MISMATCH",
    "CURRENCY_UNSUPPORTED",
    "CUSTOMER_NOT_FOUND",
    "HELD",
    "INVOICE_ALREADY_COLLECTED",
    "INVOICE_NOT_FOUND",
    "KIND_TABLE",
    "MATCHED",
    "REASON_CODES",
    "RULE_EXACT_AMOUNT",
    "RULE_NAMED_INVOICES",
    "RULE_OLDEST_FIRST",
    "SAGE_REJECTED",
    "Kind",
    "KindSpec",
    "Listing",
    "explain",
]

MATCHED: Final = "matched"
HELD: Final = "held"

CUSTOMER_NOT_FOUND: Final = "customer_not_found"
INVOICE_NOT_FOUND: Final = "invoice_not_found"
INVOICE_ALREADY_COLLECTED: Final = "invoice_already_collected"
AMOUNT_MISMATCH: Final = "amount_mismatch"
AMBIGUOUS_MATCH: Final = "ambiguous_match"
CURRENCY_UNSUPPORTED: Final = "currency_unsupported"
#: Decided at posting time (Sage refused the write after retries), never by matching.
SAGE_REJECTED: Final = "sage_rejected"
REASON_CODES: Final = (
    CUSTOMER_NOT_FOUND,
    INVOICE_NOT_FOUND,
    INVOICE_ALREADY_COLLECTED,
    AMOUNT_MISMATCH,
    AMBIGUOUS_MATCH,
    CURRENCY_UNSUPPORTED,
    SAGE_REJECTED,
)

RULE_NAMED_INVOICES: Final = "named_invoices"
RULE_EXACT_AMOUNT: Final = "exact_amount"
RULE_OLDEST_FIRST: Final = "oldest_first"


class Kind(IntEnum):
    """Every way a payment can be decided, in the order the rules are tried (values index arrays: 0, 1, ...)."""

    CURRENCY_UNSUPPORTED = 0
    CUSTOMER_NOT_FOUND = 1
    AMOUNT_NOT_POSITIVE = 2
    NAME_NOT_FOUND = 3
    NAMED_COLLECTED = 4
    NAMED_CONSUMED = 5
    NAMED_IN_FULL = 6
    NAMED_PARTLY = 7
    NAMED_EXCEEDED = 8
    EXACT_ONE = 9
    EXACT_OLDEST = 10
    EXACT_TIE_HELD = 11
    OLDEST_RUN = 12
    NOTHING_OPEN = 13
    NOTHING_ADDS_UP = 14


class Listing(Enum):
    """What a held decision lists as candidates for the review queue."""

    CUSTOMER_KEYS = "customer_keys"  # likely Sage customers of the GoCardless customer (resolve_customers)
    OPEN_TOP = "open_top"  # the numbers of the CANDIDATE_LIMIT oldest open invoices
    NAMED = "named"  # the named invoices
    NAMED_COLLECTED = "named_collected"  # the named invoices whose Balance is 0
    NAMED_CONSUMED = "named_consumed"  # the named invoices with no open amount left
    TIED = "tied"  # the open invoices of exactly the amount


@dataclass(frozen=True)
class KindSpec:
    """One line of the table: what a decision of this kind says."""

    line: int  # its line in the decision table of docs/reconciliation.md section 5
    status: str  # MATCHED or HELD
    reason: str | None  # one of REASON_CODES when held
    rule: str | None  # one of the RULE_* names when matched
    template: str  # the explanation, a str.format template over the words listed in the module docstring
    candidates: Listing | None = None  # what a held decision lists (None: nothing)

    def parts(self) -> list[tuple[str, str | None]]:
        """The template as ``(literal text, word or None)`` pairs, in order (for building it in SQL)."""
        parts: list[tuple[str, str | None]] = []
        for literal, word, spec, conversion in Formatter().parse(self.template):
            if spec or conversion:
                raise ValueError(f"template {self.template!r}: {{{word}}} may not carry a format spec or conversion")
            parts.append((literal, word))
        return parts

    def words(self) -> frozenset[str]:
        """The words the template uses."""
        return frozenset(word for _, word in self.parts() if word is not None)


def _held(line: int, reason: str, template: str, candidates: Listing | None = None) -> KindSpec:
    return KindSpec(line, HELD, reason, None, template, candidates)


def _matched(line: int, rule: str, template: str) -> KindSpec:
    return KindSpec(line, MATCHED, None, rule, template)


#: The decision table.  A plain dict so that a test can change a line and see both paths follow; the
#: paths read it when they decide, never copy it at import.
KIND_TABLE: Final[dict[Kind, KindSpec]] = {
    Kind.CURRENCY_UNSUPPORTED: _held(
        1,
        CURRENCY_UNSUPPORTED,
        "no {home} amount for a {currency} payment: no fx amount in {home} and no rate for {currency}",
    ),
    Kind.CUSTOMER_NOT_FOUND: _held(
        2,
        CUSTOMER_NOT_FOUND,
        "GoCardless customer {gocardless_customer} resolves to no Sage customer "
        "(no metadata sage_customer naming one, no unique email)",
        Listing.CUSTOMER_KEYS,
    ),
    Kind.AMOUNT_NOT_POSITIVE: _held(3, AMOUNT_MISMATCH, "amount {amount} is not positive: nothing to apply"),
    Kind.NAME_NOT_FOUND: _held(
        4, INVOICE_NOT_FOUND, "named invoice {missing} not found for customer {sage_customer}", Listing.OPEN_TOP
    ),
    Kind.NAMED_COLLECTED: _held(
        5,
        INVOICE_ALREADY_COLLECTED,
        "named invoice {collected} already collected (balance 0)",
        Listing.NAMED_COLLECTED,
    ),
    Kind.NAMED_CONSUMED: _held(
        5,
        INVOICE_ALREADY_COLLECTED,
        "named invoice {consumed} already collected: its balance is consumed by unposted receipts (open amount 0)",
        Listing.NAMED_CONSUMED,
    ),
    Kind.NAMED_IN_FULL: _matched(6, RULE_NAMED_INVOICES, "named invoices: {named} paid in full"),
    Kind.NAMED_PARTLY: _matched(
        7,
        RULE_NAMED_INVOICES,
        "named invoices: {amount} applied oldest first to {paid}, {last_no} partly ({last_part} of {last_balance})",
    ),
    Kind.NAMED_EXCEEDED: _held(
        8, AMOUNT_MISMATCH, "amount {amount} exceeds the {named_total} open on named invoice {named}", Listing.NAMED
    ),
    Kind.EXACT_ONE: _matched(9, RULE_EXACT_AMOUNT, "exact amount: invoice {first_no} of {amount}"),
    Kind.EXACT_OLDEST: _matched(
        10, RULE_EXACT_AMOUNT, "exact amount: oldest of {n_exact} invoices of {amount} ({first_no})"
    ),
    Kind.EXACT_TIE_HELD: _held(
        10, AMBIGUOUS_MATCH, "exact amount: {n_exact} invoices of {amount} and on_tie = hold", Listing.TIED
    ),
    Kind.OLDEST_RUN: _matched(
        11, RULE_OLDEST_FIRST, "oldest first: the {n_run} oldest open invoices ({run}) add up to {amount}"
    ),
    Kind.NOTHING_OPEN: _held(
        12, AMOUNT_MISMATCH, "customer {sage_customer} has no open invoice to apply {amount} to", Listing.OPEN_TOP
    ),
    Kind.NOTHING_ADDS_UP: _held(
        12,
        AMOUNT_MISMATCH,
        "amount {amount}: no invoice named, none of that balance, and no run of the oldest of {n_open} open "
        "invoices adds up to it",
        Listing.OPEN_TOP,
    ),
}

if list(KIND_TABLE) != list(Kind):  # pragma: no cover - a line missing or out of order is a bug here
    raise AssertionError("KIND_TABLE must list every Kind, in order")


def explain(kind: Kind, words: Mapping[str, object]) -> str:
    """The explanation of a decision of ``kind``: its template filled with ``words``."""
    return KIND_TABLE[kind].template.format_map(words)
