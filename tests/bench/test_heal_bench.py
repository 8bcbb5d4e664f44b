"""`ml-connector bench heal`: a few invoices change under many held payments; only those customers' held
payments are decided again (tiny sizes: this checks the command and what it counts, not the figure;
docs/benchmarks.md has that). The seeded queue is checked against the real evaluation too."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from click.testing import CliRunner

from ml_connector_dagster.bench.heal import HELD_PER_CUSTOMER, SETTINGS, seed
from ml_connector_dagster.cli import main
from ml_connector_dagster.cli.bench_cmd import HEAL_KEYS
from ml_connector_dagster.reconciliation.evaluate import evaluate_payments
from ml_connector_dagster.store import Store


def test_bench_heal_decides_again_only_the_changed_customers_held_payments() -> None:
    result = CliRunner().invoke(main, ["bench", "heal", "--held", "2000", "--changed", "3", "--json"])

    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    assert list(figures) == list(HEAL_KEYS)
    assert (figures["held"], figures["changed_invoices"], figures["affected_customers"]) == (2000, 3, 3)
    assert figures["redecided"] == figures["affected_payments"] == 3 * HELD_PER_CUSTOMER
    assert figures["decided_again"] == figures["redecided"]
    assert (figures["resolved_automatically"], figures["still_held"]) == (3, 3 * (HELD_PER_CUSTOMER - 1))
    assert figures["seconds"] > 0 and figures["peak_rss_mib"] > 0


def test_bench_heal_refuses_more_changes_than_customers_in_words() -> None:
    result = CliRunner().invoke(main, ["bench", "heal", "--held", "20", "--changed", "5"])

    assert result.exit_code == 2
    assert "--changed cannot be more than the customers with held payments" in result.output


def test_the_seeded_queue_is_what_the_evaluation_decides_and_its_audit_chain_holds(tmp_path: Path) -> None:
    conn = duckdb.connect(str(tmp_path / "warehouse.duckdb"))
    store = Store(f"sqlite:///{tmp_path / 'store.db'}")
    seed(conn, store, 23)
    seeded = dict(conn.execute("SELECT payment_id, explanation FROM payment_matches").fetchall())

    assert store.audit.verify().ok
    assert len(store.review.list()) == len(store.ledger.list(status="held")) == 23
    assert evaluate_payments(conn, store, SETTINGS).evaluated == 0  # nothing changed since the watermark

    summary = evaluate_payments(conn, store, SETTINGS, payment_ids=list(seeded))  # each decided again, by name

    assert summary.evaluated == 23 and summary.held_by_reason == {"amount_mismatch": 23}
    assert {e.payment_id: e.explanation for e in store.ledger.list(status="held")} == seeded
    conn.close()
    store.dispose()
