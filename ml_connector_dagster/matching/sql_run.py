"""Running the set-wise path's SQL: one in-memory DuckDB database per call, its results as numpy arrays."""

from __future__ import annotations

from typing import NamedTuple

import duckdb
import numpy as np
import pandas as pd

from ml_connector_dagster.matching.frames import invoice_source, metadata_name_rows, token_texts
from ml_connector_dagster.matching.inputs import balance_cents, payments_today_cents
from ml_connector_dagster.matching.model import MatchSettings
from ml_connector_dagster.matching.sql_text import (
    ALLOCATION_SQL,
    AMOUNTS_SQL,
    CUSTOMERS_SQL,
    INVOICE_ROWS_SQL,
    KEEP_FIRST_RANKED_SQL,
    MACROS,
    RANKED_SQL,
    RERANKED_SQL,
    SETTLED_SQL,
    TAKE_SQL,
    TAKEN_SQL,
    candidate_sql,
    decision_statements,
    verdict_sql,
)

__all__ = ["Found", "decide_in_sql"]


class Found(NamedTuple):
    """What SQL decided: a verdict per payment, its allocation rows and its candidate rows (by payment).

    ``pidx`` are positions in the payments frame; ``kind`` values of :class:`.kinds.Kind`; allocation and
    candidate rows come sorted by payment, oldest invoice first.
    """

    pidx: np.ndarray
    kind: np.ndarray
    explanation: np.ndarray
    alloc_pidx: np.ndarray
    alloc_no: np.ndarray
    alloc_typ: np.ndarray
    alloc_cents: np.ndarray
    cand_pidx: np.ndarray
    cand_no: np.ndarray


def _nothing_found() -> Found:
    i64, text = np.dtype(np.int64), np.dtype(object)
    return Found(*(np.empty(0, dtype=d) for d in (i64, i64, text, i64, text, text, i64, i64, text)))


def decide_in_sql(
    payments: pd.DataFrame,
    invoices: pd.DataFrame,
    settings: MatchSettings,
    live: np.ndarray,
    sage: np.ndarray,
    cents: np.ndarray,
) -> Found:
    """Decide the payments that have a Sage customer and a home amount (``live``, with those), in rounds.

    Payment order is ``pidx`` (the payments frame's order).  Each round decides every payment still open
    against the invoices less what the settled ones took, and settles those whose decision is the one they
    would get one payment at a time (:data:`.sql_text.SETTLED_SQL`); the others go to the next round.  The
    first payment of each customer settles in every round, so the rounds end; usually after one or two.
    """
    if not len(live):
        return _nothing_found()
    codes, keys = pd.factorize(pd.Series(sage, dtype=object))
    names = metadata_name_rows(payments, live)
    con = duckdb.connect(":memory:", config={"preserve_insertion_order": False})
    try:
        con.execute("SET enable_progress_bar = false")
        con.execute(MACROS)
        con.register(
            "key_df",
            pd.DataFrame({"cid": np.arange(len(keys), dtype=np.int64), "sage": pd.Series(keys, dtype=object)}),
        )
        con.execute(CUSTOMERS_SQL)
        con.register("inv_df", invoice_source(invoices))
        _load_invoices(con)
        con.execute(TAKEN_SQL)
        con.register("raw_names_df", names)
        con.register("txt_df", token_texts(payments, live, names))
        pay = pd.DataFrame(
            {
                "pidx": live.astype(np.int64),
                "cid": codes.astype(np.int64),
                "cents": cents,
                "use_tokens": ~np.isin(live, names["pidx"].to_numpy()),
            }
        )
        rounds: list[Found] = []
        while len(pay):
            if rounds:  # a later round: open amounts less what the settled payments took
                if len(rounds) == 1:
                    con.execute(KEEP_FIRST_RANKED_SQL)
                con.execute(TAKE_SQL)
            con.register("pay_df", pay)
            if rounds:
                con.execute(RERANKED_SQL)
            for statement in decision_statements(settings.on_tie == "hold"):
                con.execute(statement)
            con.execute(SETTLED_SQL)
            found = _found(con)
            rounds.append(found)
            pay = pay[~np.isin(pay["pidx"].to_numpy(), found.pidx)]
    finally:
        con.close()
    return rounds[0] if len(rounds) == 1 else _merged(rounds)


def _found(con: duckdb.DuckDBPyConnection) -> Found:
    """What this round settled: verdicts, allocation rows and candidate rows."""
    verdicts = _columns(con, verdict_sql())
    allocs = _columns(con, ALLOCATION_SQL)
    cands = _columns(con, candidate_sql())
    return Found(
        verdicts["pidx"],
        verdicts["kind"],
        verdicts["explanation"],
        allocs["pidx"],
        allocs["no"],
        allocs["typ"],
        allocs["cents"],
        cands["pidx"],
        cands["no"],
    )


def _merged(rounds: list[Found]) -> Found:
    """The rounds' results as one: allocation and candidate rows sorted by payment, each payment's in order."""
    joined = Found(*(np.concatenate(parts) for parts in zip(*rounds, strict=True)))
    alloc_order = np.argsort(joined.alloc_pidx, kind="stable")  # a payment settles in one round only
    cand_order = np.argsort(joined.cand_pidx, kind="stable")
    return joined._replace(
        alloc_pidx=joined.alloc_pidx[alloc_order],
        alloc_no=joined.alloc_no[alloc_order],
        alloc_typ=joined.alloc_typ[alloc_order],
        alloc_cents=joined.alloc_cents[alloc_order],
        cand_pidx=joined.cand_pidx[cand_order],
        cand_no=joined.cand_no[cand_order],
    )


def _columns(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, np.ndarray]:
    """A query's result as one numpy array per column (a Categorical comes only from an ENUM: none here)."""
    columns = {}
    for name, values in con.execute(sql).fetchnumpy().items():
        if not isinstance(values, np.ndarray):
            raise TypeError(f"column {name} came back as {type(values).__name__}, not a numpy array")
        columns[name] = values
    return columns


def _load_invoices(con: duckdb.DuckDBPyConnection) -> None:
    """Table ``ranked`` (see :data:`.sql_text.RANKED_SQL`): the paying customers' invoices, oldest first.

    Amounts the fast SQL pattern does not parse go through the Python parsers (or raise), and the table is
    built again with them: rare, so the common case reads the invoices once.
    """
    con.register("fixed_df", _fixed_frame([]))
    con.execute(RANKED_SQL)
    if not _count(con, "SELECT count(*) FROM ranked WHERE cents IS NULL"):
        return
    odd = con.execute(
        f"SELECT rid, bal_text, pt_text FROM (SELECT i.rid, i.bal AS bal_text, i.pt AS pt_text, {AMOUNTS_SQL} "
        f"{INVOICE_ROWS_SQL.replace('WHERE', 'LEFT JOIN fixed_df f ON f.rid = i.rid WHERE')}) "
        "WHERE bal IS NULL OR pt IS NULL"
    ).fetchall()
    fixed = [(int(rid), balance_cents(bal), payments_today_cents(pt)) for rid, bal, pt in odd]
    con.register("fixed_df", _fixed_frame(fixed))
    con.execute(RANKED_SQL)


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """The number a ``SELECT count(*)`` gives (fetched to the end: DuckDB wants results finished)."""
    return int(con.execute(sql).fetchall()[0][0])


def _fixed_frame(rows: list[tuple[int, int, int]]) -> pd.DataFrame:
    """Row ids, Balance and PaymentsToday cents of the rows parsed in Python."""
    return pd.DataFrame(
        {
            "rid": np.array([r for r, _, _ in rows], dtype=np.int64),
            "bal": np.array([b for _, b, _ in rows], dtype=np.int64),
            "pt": np.array([p for _, _, p in rows], dtype=np.int64),
        }
    )
