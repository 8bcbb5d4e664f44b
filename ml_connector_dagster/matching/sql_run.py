"""Running the set-wise path's SQL: one in-memory DuckDB database per call, its results as numpy arrays."""

from __future__ import annotations

from typing import NamedTuple

import duckdb
import numpy as np
import pandas as pd

from ml_connector_dagster.matching.frames import invoice_source, metadata_name_rows, token_texts
from ml_connector_dagster.matching.inputs import balance_cents
from ml_connector_dagster.matching.model import MatchSettings
from ml_connector_dagster.matching.sql_text import (
    ALLOCATION_SQL,
    CUSTOMERS_SQL,
    FAST_CENTS_SQL,
    INVOICE_ROWS_SQL,
    MACROS,
    RANKED_SQL,
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
    """Decide the payments that have a Sage customer and a home amount (``live``, with those)."""
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
        pay = {
            "pidx": live.astype(np.int64),
            "cid": codes.astype(np.int64),
            "cents": cents,
            "use_tokens": ~np.isin(live, names["pidx"].to_numpy()),
        }
        con.register("pay_df", pd.DataFrame(pay))
        con.register("raw_names_df", names)
        con.register("txt_df", token_texts(payments, live, names))
        for statement in decision_statements(settings.on_tie == "hold"):
            con.execute(statement)
        verdicts = _columns(con, verdict_sql())
        allocs = _columns(con, ALLOCATION_SQL)
        cands = _columns(con, candidate_sql())
    finally:
        con.close()
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

    Balances the fast SQL pattern does not parse go through the Python parser (or raise), and the
    table is built again with them: rare, so the common case reads the invoices once.
    """
    con.register("fixed_df", _fixed_frame([]))
    con.execute(RANKED_SQL)
    if not _count(con, "SELECT count(*) FROM ranked WHERE cents IS NULL"):
        return
    odd = con.execute(f"SELECT i.rid, i.bal {INVOICE_ROWS_SQL} AND ({FAST_CENTS_SQL}) IS NULL").fetchall()
    con.register("fixed_df", _fixed_frame([(int(rid), balance_cents(bal)) for rid, bal in odd]))
    con.execute(RANKED_SQL)


def _count(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    """The number a ``SELECT count(*)`` gives (fetched to the end: DuckDB wants results finished)."""
    return int(con.execute(sql).fetchall()[0][0])


def _fixed_frame(rows: list[tuple[int, int]]) -> pd.DataFrame:
    """Row ids and cents of the balances parsed in Python."""
    rids = np.array([r for r, _ in rows], dtype=np.int64)
    return pd.DataFrame({"rid": rids, "cents": np.array([c for _, c in rows], dtype=np.int64)})
