"""Month end as one table per payout: the bank line and what makes it up, for bank reconciliation.

For each payout: the line on the bank statement (amount, currency, arrival date, reference), its items
summed by kind (collections, refunds, failures, chargebacks, fees net of fee refunds, anything else), the
VAT inside those fees, the FX rate and converted amount of a converted payout, whether the items add up to
the amount (GoCardless sums them and rounds once), and which of its payments are posted in Sage (receipt,
deposit), held (reason) or elsewhere in their lifecycle.

All amounts are in currency units, signed as the payout sees them: credits positive, debits negative, so
collections + refunds + failures + chargebacks + fees + other = the items' total. Payout items come in
minor units with one decimal ("45.0"), so a sum may carry one digit more than the currency has (a fee of
0.5p); each currency's exponent comes from money.py's table. The work is one DuckDB query over the
warehouse and the ledger's rows; no per-payout Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any, NamedTuple

import duckdb
import pandas as pd

from ..money import ISO_4217_EXPONENTS
from ..store import Store
from ..warehouse import table_exists
from .tables import ensure_tables, typed_rows

# Payout item types, as GoCardless has them (credits positive, debits negative).
COLLECTION_TYPES = ("payment_paid_out",)
REFUND_TYPES = ("payment_refunded", "refund", "refund_funds_returned")  # a refund's money coming back: credit
FAILURE_TYPES = ("payment_failed",)
CHARGEBACK_TYPES = ("payment_charged_back",)
FEE_TYPES = ("gocardless_fee", "app_fee", "revenue_share", "surcharge_fee")  # VAT included; refunds are credits
KNOWN_TYPES = COLLECTION_TYPES + REFUND_TYPES + FAILURE_TYPES + CHARGEBACK_TYPES + FEE_TYPES

MONEY_COLUMNS = (
    "amount",
    "collections",
    "refunds",
    "failures",
    "chargebacks",
    "fees",
    "other",
    "items_total",
    "difference",
    "vat",
    "converted_amount",
    "deducted_fees",
)
_MAX_EXPONENT = max(ISO_4217_EXPONENTS.values())


def build(conn: duckdb.DuckDBPyConnection, store: Store, write: bool = True, month: str | None = None) -> pd.DataFrame:
    """One row per payout (newest arrival last); with `write`, also replace the `payout_reconciliation` table
    (amounts there as DECIMAL in currency units). Money in the frame is `Decimal` with the currency's
    exponent (one digit more where a tenth of a minor unit remains). `month` (YYYY-MM) keeps the payouts
    that arrived that month (or, not arrived yet, were created in it)."""
    if write:
        ensure_tables(conn)
    elif not table_exists(conn, "gocardless_payouts"):
        return pd.DataFrame(columns=list(COLUMNS))
    _register_inputs(conn, store)
    try:
        conn.execute(f"CREATE OR REPLACE TEMP TABLE payout_report AS {_REPORT_SQL}")
        if write:
            conn.execute("CREATE OR REPLACE TABLE payout_reconciliation AS SELECT * FROM payout_report")
        where = "" if month is None else "WHERE strftime(coalesce(arrival_date, created_at::DATE), '%Y-%m') = ?"
        frame = conn.execute(_FORMAT_SQL.format(where=where), [] if month is None else [month]).df()
    finally:
        for name in ("payout_ledger", "currency_exponents"):
            conn.unregister(name)
        conn.execute("DROP TABLE IF EXISTS payout_report")
    for column in MONEY_COLUMNS:  # exact text from SQL -> Decimal (DuckDB's DECIMAL would come out as float)
        frame[column] = frame[column].map(Decimal, na_action="ignore").astype(object)
    return frame


def _register_inputs(conn: duckdb.DuckDBPyConnection, store: Store) -> None:
    """The ledger rows of the payouts' payments and the currencies' exponents, as views the query joins."""
    query = "SELECT DISTINCT payment FROM gocardless_payout_items WHERE payment IS NOT NULL"
    ids = [r[0] for r in conn.execute(query).fetchall()]
    entries = store.ledger.many(ids)
    conn.register(
        "payout_ledger",
        pd.DataFrame(
            {
                "payment_id": [e.payment_id for e in entries],
                "status": [e.status for e in entries],
                "reason": [e.reason for e in entries],
                "receipt_id": [(e.receipt or {}).get("receipt_id") for e in entries],
                "deposit_no": [(e.receipt or {}).get("deposit_no") for e in entries],
            },
            dtype=object,
        ),
    )
    conn.register(
        "currency_exponents",
        pd.DataFrame(
            {
                "currency": list(ISO_4217_EXPONENTS),
                "exponent": list(ISO_4217_EXPONENTS.values()),
                "factor": [str(Decimal(1).scaleb(-e)) for e in ISO_4217_EXPONENTS.values()],
            }
        ),
    )


def _in(values: Sequence[str]) -> str:
    return "(" + ", ".join(f"'{v}'" for v in values) + ")"


def _units(minor: str, currency: str) -> str:
    """SQL: minor units (one decimal) of `currency` as DECIMAL(38, 5) currency units; NULL for an unknown one."""
    return (
        f"(CAST({minor} AS DECIMAL(38, 1)) * "
        f"(SELECT CAST(factor AS DECIMAL(10, 4)) FROM currency_exponents WHERE currency = {currency}))"
    )


_REPORT_SQL = f"""
WITH payout AS (
    SELECT o.*, (SELECT exponent FROM currency_exponents WHERE currency = o.currency) AS exponent
    FROM gocardless_payouts o),
totals AS (
    SELECT payout, count(*) AS items, sum(amount) AS items_minor,
           sum(amount) FILTER (WHERE type IN {_in(COLLECTION_TYPES)}) AS collections,
           sum(amount) FILTER (WHERE type IN {_in(REFUND_TYPES)}) AS refunds,
           sum(amount) FILTER (WHERE type IN {_in(FAILURE_TYPES)}) AS failures,
           sum(amount) FILTER (WHERE type IN {_in(CHARGEBACK_TYPES)}) AS chargebacks,
           sum(amount) FILTER (WHERE type IN {_in(FEE_TYPES)}) AS fees,
           sum(amount) FILTER (WHERE type NOT IN {_in(KNOWN_TYPES)}) AS other,
           list(DISTINCT type) FILTER (WHERE type NOT IN {_in(KNOWN_TYPES)}) AS other_types
    FROM gocardless_payout_items GROUP BY payout),
tax_lines AS (
    -- VAT inside fee items, in the payout's tax currency: the destination amount, or the amount itself when
    -- it is in that currency already; signed like the fee it is part of
    SELECT i.payout,
           coalesce(p.tax_currency, tax->>'destination_currency') AS vat_currency,
           CASE WHEN i.amount < 0 THEN -1 ELSE 1 END * abs(CAST(coalesce(
               tax->>'destination_amount',
               CASE WHEN tax->>'currency' = coalesce(p.tax_currency, tax->>'destination_currency')
                    THEN tax->>'amount' END) AS DECIMAL(20, 1))) AS vat_minor
    FROM gocardless_payout_items i JOIN payout p ON p.id = i.payout,
         unnest(CAST(coalesce(i.taxes, '[]') AS JSON[])) AS t(tax)
    WHERE i.type IN {_in(FEE_TYPES)}),
vat AS (
    SELECT payout, any_value(vat_currency) AS vat_currency, sum(vat_minor) AS vat_minor,
           bool_and(vat_minor IS NOT NULL) AS vat_final
    FROM tax_lines GROUP BY payout),
payments AS (
    SELECT DISTINCT i.payout, i.payment, l.status, l.reason, l.receipt_id, l.deposit_no
    FROM gocardless_payout_items i LEFT JOIN payout_ledger l ON l.payment_id = i.payment
    WHERE i.payment IS NOT NULL),
by_payout AS (
    SELECT payout,
           list(payment ORDER BY payment) AS payments,
           list({{'payment': payment, 'receipt_id': receipt_id, 'deposit_no': deposit_no}} ORDER BY payment)
               FILTER (WHERE status = 'posted') AS posted,
           list({{'payment': payment, 'reason': reason}} ORDER BY payment) FILTER (WHERE status = 'held') AS held,
           list({{'payment': payment, 'status': coalesce(status, 'not in the ledger'), 'reason': reason}}
                ORDER BY payment) FILTER (WHERE coalesce(status, '') NOT IN ('posted', 'held')) AS other_payments
    FROM payments GROUP BY payout)
SELECT p.id AS payout_id, p.status, p.currency, p.exponent,
       {_units("p.amount", "p.currency")} AS amount, p.arrival_date, p.reference,
       {_units("coalesce(t.collections, 0)", "p.currency")} AS collections,
       {_units("coalesce(t.refunds, 0)", "p.currency")} AS refunds,
       {_units("coalesce(t.failures, 0)", "p.currency")} AS failures,
       {_units("coalesce(t.chargebacks, 0)", "p.currency")} AS chargebacks,
       {_units("coalesce(t.fees, 0)", "p.currency")} AS fees,
       {_units("coalesce(t.other, 0)", "p.currency")} AS other,
       coalesce(t.other_types, []) AS other_types,
       {_units("coalesce(t.items_minor, 0)", "p.currency")} AS items_total,
       {_units("p.amount - round(coalesce(t.items_minor, 0))", "p.currency")} AS difference,
       round(coalesce(t.items_minor, 0)) = p.amount AS items_add_up,
       coalesce(t.items, 0) AS items,
       {_units("p.deducted_fees", "p.currency")} AS deducted_fees,
       v.vat_currency, {_units("v.vat_minor", "v.vat_currency")} AS vat,
       coalesce(v.vat_final, true) AS vat_final,
       (SELECT exponent FROM currency_exponents WHERE currency = v.vat_currency) AS vat_exponent,
       p.fx_currency IS NOT NULL AND p.fx_currency <> p.currency AS converted,
       CASE WHEN p.fx_currency <> p.currency THEN p.fx_currency END AS converted_currency,
       CASE WHEN p.fx_currency <> p.currency THEN p.exchange_rate END AS exchange_rate,
       CASE WHEN p.fx_currency <> p.currency THEN {_units("p.fx_amount", "p.fx_currency")} END AS converted_amount,
       (SELECT exponent FROM currency_exponents WHERE currency = p.fx_currency) AS converted_exponent,
       p.status = 'paid' AND (p.fx_currency IS NULL OR p.fx_currency = p.currency OR p.exchange_rate IS NOT NULL)
           AS final,
       coalesce(b.payments, []) AS payments, coalesce(b.posted, []) AS posted, coalesce(b.held, []) AS held,
       coalesce(b.other_payments, []) AS other_payments, p.created_at
FROM payout p LEFT JOIN totals t ON t.payout = p.id LEFT JOIN vat v ON v.payout = p.id
     LEFT JOIN by_payout b ON b.payout = p.id
ORDER BY coalesce(p.arrival_date, p.created_at::DATE), p.id"""


def _text(column: str, exponent: str) -> str:
    """SQL: a DECIMAL(38, 5) amount as text with its currency's exponent, or one digit more if it has one."""
    scaled = " ".join(
        f"WHEN {s} THEN CAST(CAST({column} AS DECIMAL(38, {s})) AS VARCHAR)" for s in range(_MAX_EXPONENT + 2)
    )
    scale = f"CASE WHEN {column} = {_rounded(column, exponent)} THEN {exponent} ELSE {exponent} + 1 END"
    return f"CASE WHEN {column} IS NULL OR {exponent} IS NULL THEN NULL ELSE CASE {scale} {scaled} END END"


def _rounded(column: str, exponent: str) -> str:
    """SQL: the amount rounded to `exponent` decimals, still DECIMAL(38, 5) (round() wants a constant)."""
    cases = " ".join(
        f"WHEN {e} THEN CAST(CAST({column} AS DECIMAL(38, {e})) AS DECIMAL(38, 5))" for e in range(_MAX_EXPONENT + 1)
    )
    return f"CASE {exponent} {cases} END"


_MONEY_EXPONENTS = {
    **dict.fromkeys(MONEY_COLUMNS, "exponent"),
    "vat": "vat_exponent",
    "converted_amount": "converted_exponent",
}
_FORMAT_SQL = (
    "SELECT payout_id, status, currency, "
    + ", ".join(f"{_text(c, _MONEY_EXPONENTS[c])} AS {c}" for c in MONEY_COLUMNS)
    + """, CAST(arrival_date AS VARCHAR) AS arrival_date, reference, other_types, items_add_up, items,
       vat_currency, vat_final, converted,
       converted_currency, exchange_rate, final, payments, posted, held, other_payments
    FROM payout_report {where} ORDER BY coalesce(arrival_date, created_at::DATE), payout_id"""
)
COLUMNS = (
    "payout_id",
    "status",
    "currency",
    *MONEY_COLUMNS,
    "arrival_date",
    "reference",
    "other_types",
    "items_add_up",
    "items",
    "vat_currency",
    "vat_final",
    "converted",
    "converted_currency",
    "exchange_rate",
    "final",
    "payments",
    "posted",
    "held",
    "other_payments",
)


class _Line(NamedTuple):
    """What the UI table shows of a payout (lists of payments counted)."""

    payout_id: str
    status: str
    currency: str
    amount: Decimal
    arrival_date: Any
    collections: Decimal
    fees: Decimal
    vat: Decimal | None
    exchange_rate: str | None
    items_add_up: bool
    payments: Any
    posted: Any
    held: Any
    reference: str | None


def markdown(frame: pd.DataFrame, limit: int = 50) -> str:
    """A UI table of the newest payouts, in currency units."""
    if frame.empty:
        return "No payouts yet."
    lines = [
        "| payout | status | arrival | amount | collections | fees | VAT | FX rate | items add up | payments "
        "| posted | held | reference |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in typed_rows(frame.tail(limit), _Line, _Line._fields):
        lines.append(
            f"| {r.payout_id} | {r.status} | {r.arrival_date or ''} | {r.currency} {r.amount} | {r.collections} | "
            f"{r.fees} | {'' if r.vat is None else r.vat} | {r.exchange_rate or ''} | "
            f"{'yes' if r.items_add_up else 'NO'} | {len(r.payments)} | {len(r.posted)} | {len(r.held)} | "
            f"{r.reference or ''} |"
        )
    return "\n".join(lines)
