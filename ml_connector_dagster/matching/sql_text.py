"""The SQL of the set-wise path: the rules as DuckDB statements, the decision table turned into SQL.

Only text here: :mod:`.sql_run` runs it.  The tables it expects (registered by :mod:`.sql_run`):
``key_df`` (``cid``, ``sage``: the paying Sage customers), ``inv_df`` (the invoice columns of
:func:`.frames.invoice_source`), ``fixed_df`` (``rid``, ``cents``: balances parsed in Python),
``pay_df`` (``pidx``, ``cid``, ``cents``, ``use_tokens``), ``raw_names_df`` (``pidx``, ``raw``, ``pos``:
metadata names) and ``txt_df`` (``pidx``, ``txt``: reference and description).

The decision of each payment is a :class:`.kinds.Kind`: the ``kind`` CASE below is the rules' precedence
(the twin of :func:`.rules.conclude`), and :func:`verdict_sql` and :func:`candidate_sql` are built from
:data:`.kinds.KIND_TABLE` (each template's words become the SQL expressions of :data:`WORD_SQL`, each
kind's listing a SELECT of :data:`LISTING_SQL`).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from ml_connector_dagster.matching.kinds import KIND_TABLE, Kind, Listing
from ml_connector_dagster.matching.model import CANDIDATE_LIMIT, INVOICE_TYPES

__all__ = [
    "ALLOCATION_SQL",
    "AMOUNTS_SQL",
    "CUSTOMERS_SQL",
    "DECIDED_BEFORE_SQL",
    "INVOICE_ROWS_SQL",
    "KEEP_FIRST_RANKED_SQL",
    "LISTING_SQL",
    "MACROS",
    "RANKED_SQL",
    "RERANKED_SQL",
    "SETTLED_SQL",
    "TAKEN_SQL",
    "TAKE_SQL",
    "WORD_SQL",
    "candidate_sql",
    "decision_statements",
    "fast_cents_sql",
    "verdict_sql",
]

#: Kinds :func:`~.vectorised.match_payments` decides before any SQL runs (no home amount, no customer).
DECIDED_BEFORE_SQL: Final = frozenset({Kind.CURRENCY_UNSUPPORTED, Kind.CUSTOMER_NOT_FOUND})

_BALANCE_RE = r"[+-]?[0-9]+(\.[0-9]{0,2}0*)?|[+-]?\.[0-9]{1,2}0*"

#: SQL twins of normalize_invoice_no (ASCII upper case: DuckDB's upper() is Unicode-wide, so it is used
#: on pure-ASCII text only, and the slower translate() on the rest), and of str(money.from_cents(c)).
MACROS: Final = """
CREATE MACRO ascii_upper(x) AS CASE
    WHEN strlen(x) = length(x) THEN upper(x)  -- as many bytes as characters: ASCII only
    ELSE translate(x, 'abcdefghijklmnopqrstuvwxyz', 'ABCDEFGHIJKLMNOPQRSTUVWXYZ') END;
CREATE MACRO unzeroed(u) AS coalesce(nullif(ltrim(u, '0'), ''), CASE WHEN u = '' THEN '' ELSE '0' END);
CREATE MACRO space_trimmed(x) AS CASE WHEN x LIKE ' %' OR x LIKE '% ' THEN trim(x, ' ') ELSE x END;
CREATE MACRO invoice_norm(x) AS unzeroed(ascii_upper(space_trimmed(x)));
-- str(money.from_cents(c)): sign, whole units, two decimals
CREATE MACRO amt(c) AS CASE WHEN c < 0 THEN '-' ELSE '' END || (abs(c) // 100)::VARCHAR || '.'
    || lpad((abs(c) % 100)::VARCHAR, 2, '0');
"""

#: ``"DD-CUSTNO"`` split at its first "-" (no "-": a division only, no customer).
CUSTOMERS_SQL: Final = """
CREATE TEMP TABLE cust_df AS
SELECT cid, sage,
       CASE WHEN strpos(sage, '-') > 0 THEN substr(sage, 1, strpos(sage, '-') - 1) ELSE sage END AS div,
       CASE WHEN strpos(sage, '-') > 0 THEN substr(sage, strpos(sage, '-') + 1) END AS custno
FROM key_df
"""

#: The paying customers' IN/DM/FC rows (``FROM ... WHERE ...``, to be continued with ``AND``).
INVOICE_ROWS_SQL: Final = f"""
    FROM inv_df i JOIN cust_df c ON c.div = i.div AND c.custno = i.custno
    WHERE i.typ IN {INVOICE_TYPES} AND i.no IS NOT NULL
"""


def fast_cents_sql(column: str) -> str:
    """A Sage amount's cents when ``column`` is a plain decimal of at most 2 (significant) decimals, else NULL."""
    return f"""
    CASE WHEN regexp_full_match({column}, '{_BALANCE_RE}')
         THEN TRY_CAST(TRY_CAST({column} AS DECIMAL(18, 2)) * 100 AS BIGINT) END"""


#: Balance and PaymentsToday cents of each row (a missing PaymentsToday is 0), NULL where the fast pattern
#: does not read them and Python has not (``fixed_df``).
AMOUNTS_SQL: Final = f"""
    coalesce(f.bal, {fast_cents_sql("i.bal")}) AS bal,
    coalesce(f.pt, CASE WHEN i.pt IS NULL THEN 0 ELSE {fast_cents_sql("i.pt")} END) AS pt
"""


def _open_so_far(open_amount: str) -> str:
    """Columns ``cum`` and ``rank``: the open amounts (``open_amount`` > 0) added up and counted so far (window w)."""
    return f"""
       CAST(sum(CASE WHEN {open_amount} > 0 THEN {open_amount} ELSE 0 END) OVER w AS BIGINT) AS cum,
       count(CASE WHEN {open_amount} > 0 THEN 1 END) OVER w AS rank"""


#: Table ``ranked``: oldest first per customer; ``bal`` is Balance, ``cents`` the open amount (Balance less
#: PaymentsToday); ``ord`` ranks all rows, ``rank`` and ``cum`` count and add up the open ones (open amount
#: above 0) so far.
RANKED_SQL: Final = f"""
CREATE OR REPLACE TEMP TABLE ranked AS
WITH src AS (
    SELECT c.cid, i.no, i.typ, i.due, i.dt, invoice_norm(i.no) AS norm, {AMOUNTS_SQL}
    {INVOICE_ROWS_SQL.replace("WHERE", "LEFT JOIN fixed_df f ON f.rid = i.rid WHERE")}
)
SELECT cid, no, typ, norm, bal, bal - pt AS cents,
       row_number() OVER w AS ord, {_open_so_far("(bal - pt)")}
FROM src
WINDOW w AS (PARTITION BY cid ORDER BY due NULLS LAST, dt NULLS LAST, no, typ
             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
"""

#: Table ``taken``: what the payments settled so far take from each invoice (``cid``, ``ord``, ``cents``).
TAKEN_SQL: Final = "CREATE TEMP TABLE taken (cid BIGINT, ord BIGINT, cents BIGINT)"
#: Keeps the first round's ``ranked`` as ``first_ranked``, for the next rounds to start from.
KEEP_FIRST_RANKED_SQL: Final = "ALTER TABLE ranked RENAME TO first_ranked"
#: Table ``ranked`` for a later round: the customers of the payments still to decide (``pay_df``), each
#: invoice's open amount less what the settled payments took from it; same order, running totals again.
RERANKED_SQL: Final = f"""
CREATE OR REPLACE TEMP TABLE ranked AS
WITH src AS (
    SELECT r.cid, r.no, r.typ, r.norm, r.bal, r.cents - coalesce(t.cents, 0) AS cents, r.ord
    FROM first_ranked r LEFT JOIN (SELECT cid, ord, sum(cents) AS cents FROM taken GROUP BY cid, ord) t
         USING (cid, ord)
    WHERE r.cid IN (SELECT DISTINCT cid FROM pay_df)
)
SELECT cid, no, typ, norm, bal, cents, ord, {_open_so_far("cents")}
FROM src
WINDOW w AS (PARTITION BY cid ORDER BY ord ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
"""

_K = {kind.name: int(kind) for kind in Kind}

# Tables ``hits`` (every name and token of a payment, with the invoice it names, if any), ``named`` (the
# named invoices, with the running total before each), ``kinds`` (the kind of every payment, with the facts
# its explanation shows) and ``allocs`` (what each matched payment pays).  ``{hold}`` is on_tie = hold.
_DECISION_SQL = """
CREATE OR REPLACE TEMP TABLE hits AS
WITH tok AS (  -- tokens longer than every invoice number cannot name one: dropped before the join
    SELECT x.pidx, p.cid, x.norm, NULL::VARCHAR AS raw, NULL::BIGINT AS pos
    FROM (
        SELECT pidx, unzeroed(t) AS norm
        FROM (SELECT pidx, unnest(regexp_extract_all(ascii_upper(txt), '[\\pL\\pN]+')) AS t FROM txt_df
              WHERE pidx IN (SELECT pidx FROM pay_df))  -- this round's payments
    ) x
    JOIN pay_df p USING (pidx)
    WHERE length(x.norm) <= (SELECT max(length(norm)) FROM ranked)
),
meta AS (  -- the first spelling of each normalised name
    SELECT pidx, norm, arg_min(raw, pos) AS raw, min(pos) AS pos
    FROM (SELECT pidx, invoice_norm(raw) AS norm, raw, pos FROM raw_names_df WHERE pidx IN (SELECT pidx FROM pay_df))
    GROUP BY pidx, norm
),
names AS (
    SELECT m.pidx, p.cid, m.norm, m.raw, m.pos FROM meta m JOIN pay_df p USING (pidx)
    UNION ALL
    SELECT * FROM tok
)
SELECT n.pidx, n.raw, n.pos, r.ord, r.no, r.typ, r.bal, r.cents
FROM names n LEFT JOIN ranked r ON r.cid = n.cid AND r.norm = n.norm
WHERE r.ord IS NOT NULL OR n.raw IS NOT NULL;

CREATE OR REPLACE TEMP TABLE named AS
SELECT h.pidx, h.ord, h.no, h.typ, h.bal, h.cents, p.cents AS paid,
       coalesce(sum(h.cents) OVER (PARTITION BY h.pidx ORDER BY h.ord
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before
FROM (SELECT DISTINCT pidx, ord, no, typ, bal, cents FROM hits WHERE ord IS NOT NULL) h JOIN pay_df p USING (pidx);

CREATE OR REPLACE TEMP TABLE kinds AS
WITH
missing AS (
    SELECT pidx, string_agg(raw, ', ' ORDER BY pos) AS raws FROM hits
    WHERE ord IS NULL AND raw IS NOT NULL GROUP BY pidx
),
named_agg AS (
    SELECT pidx, sum(cents) AS total,
           count(*) FILTER (WHERE bal <= 0) AS n_collected,
           count(*) FILTER (WHERE cents <= 0) AS n_consumed,
           string_agg(no, ', ' ORDER BY ord) AS nos,
           string_agg(no, ', ' ORDER BY ord) FILTER (WHERE bal <= 0) AS collected_nos,
           string_agg(no, ', ' ORDER BY ord) FILTER (WHERE cents <= 0) AS consumed_nos,
           string_agg(no, ', ' ORDER BY ord) FILTER (WHERE before < paid) AS paid_nos,
           arg_max(no, ord) FILTER (WHERE before < paid) AS last_no,
           arg_max(cents, ord) FILTER (WHERE before < paid) AS last_cents,
           arg_max(paid - before, ord) FILTER (WHERE before < paid) AS last_part
    FROM named GROUP BY pidx
),
unnamed AS (SELECT pidx, cid, cents FROM pay_df WHERE use_tokens AND pidx NOT IN (SELECT pidx FROM named)),
exact AS (
    SELECT u.pidx, count(*) AS n, min(r.ord) AS first_ord, arg_min(r.no, r.ord) AS first_no,
           arg_min(r.typ, r.ord) AS first_typ
    FROM unnamed u JOIN ranked r ON r.cid = u.cid AND r.cents = u.cents AND r.cents > 0
    GROUP BY u.pidx
),
run AS (  -- open balances are > 0, so at most one running total equals the amount
    SELECT u.pidx, r.ord AS last, r.rank AS n
    FROM unnamed u JOIN ranked r ON r.cid = u.cid AND r.cum = u.cents AND r.cents > 0
),
opens AS (  -- open invoices of the customers whose payments may need the count
    SELECT cid, max(rank) AS n FROM ranked
    WHERE cid IN (SELECT cid FROM unnamed WHERE pidx NOT IN (SELECT pidx FROM exact)) GROUP BY cid
)
SELECT p.pidx, p.cid, p.cents, c.sage, m.raws,
       a.total, a.nos, a.collected_nos, a.consumed_nos, a.paid_nos, a.last_no, a.last_cents, a.last_part,
       e.n AS n_exact, e.first_ord, e.first_no, e.first_typ, r.last AS run_last, r.n AS n_run,
       coalesce(o.n, 0) AS n_open,
       CASE WHEN p.cents <= 0 THEN {AMOUNT_NOT_POSITIVE}
            WHEN m.pidx IS NOT NULL THEN {NAME_NOT_FOUND}
            WHEN a.pidx IS NOT NULL THEN
                CASE WHEN a.n_collected > 0 THEN {NAMED_COLLECTED}
                     WHEN a.n_consumed > 0 THEN {NAMED_CONSUMED}
                     WHEN p.cents > a.total THEN {NAMED_EXCEEDED}
                     WHEN p.cents = a.total THEN {NAMED_IN_FULL}
                     ELSE {NAMED_PARTLY} END
            WHEN e.pidx IS NOT NULL THEN
                CASE WHEN e.n = 1 THEN {EXACT_ONE} WHEN {hold} THEN {EXACT_TIE_HELD} ELSE {EXACT_OLDEST} END
            WHEN r.pidx IS NOT NULL THEN {OLDEST_RUN}
            WHEN coalesce(o.n, 0) = 0 THEN {NOTHING_OPEN}
            ELSE {NOTHING_ADDS_UP} END AS kind
FROM pay_df p JOIN cust_df c USING (cid)
LEFT JOIN missing m USING (pidx) LEFT JOIN named_agg a USING (pidx) LEFT JOIN exact e USING (pidx)
LEFT JOIN run r USING (pidx) LEFT JOIN opens o ON o.cid = p.cid;

CREATE OR REPLACE TEMP TABLE allocs AS  -- oldest first; the last named invoice may be paid in part
SELECT n.pidx, k.kind, n.ord, n.no, n.typ, least(n.cents, n.paid - n.before) AS cents
FROM named n JOIN kinds k USING (pidx) WHERE k.kind IN ({NAMED_IN_FULL}, {NAMED_PARTLY}) AND n.before < n.paid
UNION ALL
SELECT pidx, kind, first_ord, first_no, first_typ, cents FROM kinds WHERE kind IN ({EXACT_ONE}, {EXACT_OLDEST})
UNION ALL
SELECT k.pidx, k.kind, r.ord, r.no, r.typ, r.cents
FROM kinds k JOIN ranked r ON r.cid = k.cid AND r.ord <= k.run_last AND r.cents > 0 WHERE k.kind = {OLDEST_RUN}
"""


def decision_statements(hold: bool) -> list[str]:
    """The statements that build tables ``hits``, ``named``, ``kinds`` and ``allocs``, in order."""
    sql = _DECISION_SQL.format(hold="TRUE" if hold else "FALSE", **_K)
    return [statement for statement in sql.split(";\n") if statement.strip()]


def _ints(kinds: Iterable[Kind]) -> str:
    return ", ".join(str(int(kind)) for kind in kinds)


#: Kinds decided by the named invoices alone: nothing but their open amounts can change the decision.
_BY_NAMES = (Kind.NAMED_COLLECTED, Kind.NAMED_CONSUMED, Kind.NAMED_IN_FULL, Kind.NAMED_PARTLY, Kind.NAMED_EXCEEDED)
#: Kinds decided by the open invoices of exactly the amount: the same while that set is.
_BY_EXACT = (Kind.EXACT_ONE, Kind.EXACT_OLDEST, Kind.EXACT_TIE_HELD)

#: Table ``settled``: the payments of this round whose decision is the one they would get one at a time, in
#: payment order (``pidx``), each seeing what the earlier ones took.  Per customer that is every payment
#: before the first one whose decision what the earlier payments of this round took may change:
#: - decided by its named invoices: an earlier payment took from one of them;
#: - exact amount: an earlier payment took from an invoice of exactly the amount, or left one at it;
#: - oldest first: an earlier payment took from the run or an invoice before it, or left one at the amount;
#: - any other (held for want of a rule; invoice not found, which lists open invoices): it took anything;
#: - never, when the amount is not positive.
#: The rest are decided again in the next round, against what the settled ones left.
SETTLED_SQL: Final = f"""
CREATE OR REPLACE TEMP TABLE settled AS
WITH paid AS (SELECT a.pidx, k.cid, a.ord, a.cents FROM allocs a JOIN kinds k USING (pidx)),
took AS (  -- per payment, what the earlier payments of this round took from each invoice of its customer
    SELECT k.pidx, k.cid, k.kind, k.cents AS amount, k.run_last, p.ord, sum(p.cents) AS cents
    FROM kinds k JOIN paid p ON p.cid = k.cid AND p.pidx < k.pidx
    WHERE k.kind <> {int(Kind.AMOUNT_NOT_POSITIVE)}
    GROUP BY k.pidx, k.cid, k.kind, k.cents, k.run_last, p.ord
),
clash AS (
    SELECT t.cid, t.pidx
    FROM took t JOIN ranked r ON r.cid = t.cid AND r.ord = t.ord
    LEFT JOIN named n ON n.pidx = t.pidx AND n.ord = t.ord
    WHERE CASE WHEN t.kind IN ({_ints(_BY_NAMES)}) THEN n.pidx IS NOT NULL
               WHEN t.kind IN ({_ints(_BY_EXACT)}) THEN r.cents = t.amount OR r.cents - t.cents = t.amount
               WHEN t.kind = {int(Kind.OLDEST_RUN)} THEN t.ord <= t.run_last OR r.cents - t.cents = t.amount
               ELSE TRUE END
),
first_clash AS (SELECT cid, min(pidx) AS pidx FROM clash GROUP BY cid)
SELECT k.pidx FROM kinds k LEFT JOIN first_clash c USING (cid) WHERE c.pidx IS NULL OR k.pidx < c.pidx
"""
#: What the settled payments take from each invoice, for the next round.
TAKE_SQL: Final = """
INSERT INTO taken SELECT k.cid, a.ord, a.cents FROM allocs a JOIN kinds k USING (pidx) JOIN settled s USING (pidx)
"""


#: SQL for each word of the templates, over ``kinds k`` and ``r`` (the run's invoice numbers).
WORD_SQL: Final = {
    "amount": "amt(k.cents)",
    "sage_customer": "k.sage",
    "missing": "k.raws",
    "named": "k.nos",
    "named_total": "amt(k.total)",
    "collected": "k.collected_nos",
    "consumed": "k.consumed_nos",
    "paid": "k.paid_nos",
    "last_no": "k.last_no",
    "last_part": "amt(k.last_part)",
    "last_balance": "amt(k.last_cents)",
    "first_no": "k.first_no",
    "n_exact": "k.n_exact::VARCHAR",
    "run": "r.nos",
    "n_run": "k.n_run::VARCHAR",
    "n_open": "k.n_open::VARCHAR",
}


def _sql_kinds() -> list[Kind]:
    return [kind for kind in Kind if kind not in DECIDED_BEFORE_SQL]


def _quoted(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _sentence_sql(kind: Kind) -> str:
    """The explanation of ``kind`` as a SQL expression: its template's text and words, concatenated."""
    pieces = []
    for literal, word in KIND_TABLE[kind].parts():
        if literal:
            pieces.append(_quoted(literal))
        if word is not None:
            if word not in WORD_SQL:
                raise ValueError(f"the explanation of {kind.name} uses {{{word}}}, which SQL does not know")
            pieces.append(WORD_SQL[word])
    return " || ".join(pieces) or "''"


def verdict_sql() -> str:
    """``pidx``, ``kind`` and ``explanation`` of the payments this round settled (built from the table now)."""
    whens = "\n".join(f"    WHEN {int(kind)} THEN {_sentence_sql(kind)}" for kind in _sql_kinds())
    return f"""
SELECT k.pidx, k.kind, CASE k.kind
{whens}
    END AS explanation
FROM kinds k
LEFT JOIN (SELECT pidx, string_agg(no, ', ' ORDER BY ord) AS nos FROM allocs WHERE kind = {int(Kind.OLDEST_RUN)}
           GROUP BY pidx) r USING (pidx)
WHERE k.pidx IN (SELECT pidx FROM settled)
"""


#: What the payments this round settled pay, oldest invoice first.
ALLOCATION_SQL: Final = (
    "SELECT pidx, no, typ, cents FROM allocs WHERE pidx IN (SELECT pidx FROM settled) ORDER BY pidx, ord"
)

#: For each listing, the candidates (``pidx``, ``ord``, ``no``) of the payments of some kinds (``{kinds}``).
LISTING_SQL: Final = {
    Listing.OPEN_TOP: f"""
    SELECT k.pidx, r.ord, r.no FROM kinds k
    JOIN ranked r ON r.cid = k.cid AND r.cents > 0 AND r.rank <= {CANDIDATE_LIMIT} WHERE k.kind IN ({{kinds}})""",
    Listing.NAMED: """
    SELECT n.pidx, n.ord, n.no FROM named n JOIN kinds k USING (pidx) WHERE k.kind IN ({kinds})""",
    Listing.NAMED_COLLECTED: """
    SELECT n.pidx, n.ord, n.no FROM named n JOIN kinds k USING (pidx) WHERE k.kind IN ({kinds}) AND n.bal <= 0""",
    Listing.NAMED_CONSUMED: """
    SELECT n.pidx, n.ord, n.no FROM named n JOIN kinds k USING (pidx) WHERE k.kind IN ({kinds}) AND n.cents <= 0""",
    Listing.TIED: """
    SELECT k.pidx, r.ord, r.no FROM kinds k
    JOIN ranked r ON r.cid = k.cid AND r.cents = k.cents AND r.cents > 0 WHERE k.kind IN ({kinds})""",
}


def candidate_sql() -> str:
    """``pidx`` and ``no`` of the candidates of the payments this round settled, in order (from the table now)."""
    by_listing: dict[Listing, list[Kind]] = {}
    for kind in _sql_kinds():
        listing = KIND_TABLE[kind].candidates
        if listing is not None:
            if listing not in LISTING_SQL:
                raise ValueError(f"{kind.name} lists {listing.name}, which SQL cannot list")
            by_listing.setdefault(listing, []).append(kind)
    selects = [LISTING_SQL[listing].format(kinds=_ints(kinds)) for listing, kinds in by_listing.items()]
    if not selects:
        return "SELECT NULL::BIGINT AS pidx, NULL::VARCHAR AS no WHERE FALSE"
    union = "\n    UNION ALL".join(selects)
    return f"SELECT pidx, no FROM ({union}\n)\nWHERE pidx IN (SELECT pidx FROM settled)\nORDER BY pidx, ord"
