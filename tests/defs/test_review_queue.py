"""The review queue in the Dagster UI: a table of open items in words and currency units, that follows every
decision (its automation condition) and every review job (which records a fresh materialization at its end).

Items are queued directly in a real operational store; the asset, the automation condition and the review jobs
run against real Dagster instances. The jobs with Sage and GoCardless are in test_review_jobs.py.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest
import yaml

from ml_connector_dagster.definitions import defs
from ml_connector_dagster.defs.review_queue import KEY
from ml_connector_dagster.instance_config import instance_yaml
from ml_connector_dagster.reconciliation import review_queue as queue
from ml_connector_dagster.reconciliation.tables import ensure_tables
from ml_connector_dagster.settings import Settings, load_settings
from ml_connector_dagster.store import Store

HELD = {  # as reconciliation.evaluate queues a held payment
    "payment_id": "PM0004",
    "gocardless_customer": "CU0003",
    "amount_minor": 30000,
    "currency": "GBP",
    "home_amount": "300.00",
    "reference": "October",
    "reason": "ambiguous_match",
    "explanation": "2 open invoices of 300.00 | none named",
    "sage_customer": "01-ABF",
    "candidates": ["0100040", "0100041"],
    "waits_for": ["An operator to choose the invoice.", "Nothing else."],
}


@pytest.fixture
def settings(home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("ML_CONNECTOR_SAGE_HOME_CURRENCY", "GBP")
    monkeypatch.setenv("ML_CONNECTOR_SAGE_BANK_CODE", "A")
    return load_settings()


@pytest.fixture
def store(settings: Settings) -> Store:
    s = Store(settings.database_url)
    yield s
    s.dispose()


def rows(store: Store) -> dict[str, dict[str, object]]:
    return {str(r.payment): r.as_dict() for r in queue.open_items(store)}


def test_a_held_payment_is_a_row_in_words_and_currency_units(store: Store) -> None:
    item = store.review.open_item("PM0004", "held", "ambiguous_match", HELD)

    row = rows(store)["PM0004"]

    since = row.pop("since")
    assert row == {
        "item": item,
        "kind": "held",
        "payment": "PM0004",
        "gocardless_customer": "CU0003",
        "sage_customer": "01-ABF",
        "home_amount": "300.00",
        "amount": "300.00",
        "currency": "GBP",
        "reason": "ambiguous_match",
        "explanation": "2 open invoices of 300.00 | none named",
        "candidates": "0100040, 0100041",
        "waits_for": "An operator to choose the invoice. Nothing else.",
    }
    assert datetime.fromisoformat(str(since)).tzinfo is not None


def test_amounts_follow_the_currency_exponent_and_missing_details_come_from_the_ledger(store: Store) -> None:
    store.ledger.upsert(
        "PM0007",
        status="held",
        reason="customer_not_found",
        gocardless_customer="CU0009",
        amount_minor=12345,
        currency="JPY",
        home_amount="80.12",
        explanation="no Sage customer has the email buyer@example.jp",
    )
    store.review.open_item("PM0007", "held", "customer_not_found", {"payment_id": "PM0007", "retried_by": "bob"})

    row = rows(store)["PM0007"]

    assert (row["amount"], row["currency"], row["home_amount"]) == ("12345", "JPY", "80.12")
    assert (row["gocardless_customer"], row["sage_customer"]) == ("CU0009", "")
    assert row["explanation"] == "no Sage customer has the email buyer@example.jp"


def test_reversals_and_failed_events_say_what_happened_and_what_to_do(store: Store) -> None:
    reversal = {"payment_id": "PM0002", "cause": "refund", "amount_minor": 5000, "currency": "EUR", "amount": "50.00"}
    store.review.open_item("PM0002", "reversal_required", "refund", {**reversal, "home_amount": "43.10"})
    failed = {"event_id": "EV0009", "event": "payments.confirmed", "resource_id": "PM0009", "attempts": 6}
    store.review.open_item("EV0009", "processing_failed", "gocardless_event_failed", {**failed, "error": "timeout"})

    found = rows(store)

    assert found["PM0002"]["explanation"] == (
        "refund: the money went back after its receipt was posted; write the reversal to Sage (review_reverse)"
    )
    assert (found["PM0002"]["amount"], found["PM0002"]["home_amount"]) == ("50.00", "43.10")
    assert found["PM0009"]["explanation"] == "event EV0009 (payments.confirmed) failed after 6 attempts: timeout"


def test_the_markdown_preview_keeps_one_line_per_item_and_says_when_the_queue_is_empty(store: Store) -> None:
    assert queue.markdown([]) == "The review queue is empty."
    store.review.open_item("PM0004", "held", "ambiguous_match", {**HELD, "explanation": "a | b\nc"})

    text = queue.markdown(queue.open_items(store))

    [line] = [x for x in text.splitlines() if "PM0004" in x]
    assert "a \\| b c Waits for: An operator" in line and "300.00 GBP" in line and "CU0003 / 01-ABF" in line


# --- the asset and the review jobs in a real instance --------------------------------------------------------------


def queue_metadata(instance: dg.DagsterInstance) -> dict[str, dg.MetadataValue]:
    event = instance.get_latest_materialization_event(KEY)
    assert event is not None and event.asset_materialization is not None
    return dict(event.asset_materialization.metadata)


def table_items(metadata: dict[str, dg.MetadataValue]) -> list[int]:
    return [record.data["item"] for record in metadata["open_items"].value.records]


def test_the_asset_materializes_a_table_with_its_column_schema_row_count_and_preview(store: Store) -> None:
    item = store.review.open_item("PM0004", "held", "ambiguous_match", HELD)

    with dg.instance_for_test() as instance:
        result = dg.materialize([defs.get_assets_def(KEY)], instance=instance, resources=defs.resources)
        metadata = queue_metadata(instance)

    assert result.success
    assert table_items(metadata) == [item]
    assert [c.name for c in metadata["dagster/column_schema"].value.columns] == [c[0] for c in queue.COLUMNS]
    assert metadata["dagster/row_count"].value == 1
    assert "| ambiguous_match |" in metadata["preview"].value


def test_the_queue_follows_new_decisions_by_itself(settings: Settings) -> None:
    with duckdb.connect(str(settings.warehouse_path)) as conn:
        ensure_tables(conn)
    selection = dg.AssetSelection.assets(KEY)
    with dg.instance_for_test() as instance:
        first = dg.evaluate_automation_conditions(defs, instance, asset_selection=selection)
        dg.materialize([defs.get_assets_def(KEY)], instance=instance, resources=defs.resources)
        idle = dg.evaluate_automation_conditions(defs, instance, asset_selection=selection, cursor=first.cursor)
        matches = dg.AssetKey(["reconciliation", "payment_matches"])
        dg.materialize([defs.get_assets_def(matches)], instance=instance, resources=defs.resources)
        decided = dg.evaluate_automation_conditions(defs, instance, asset_selection=selection, cursor=idle.cursor)

    assert (first.total_requested, idle.total_requested) == (0, 0)  # nothing decided, nothing to follow
    assert decided.total_requested == 1  # payment_matches decided: the queue follows, though cash_receipts never ran


@pytest.fixture
def retrying_instance() -> dg.DagsterInstance:
    """An instance with the run retries dagster.yaml configures (the daemon re-executes failed runs)."""
    run_retries = yaml.safe_load(instance_yaml())["run_retries"]
    assert run_retries["enabled"] and run_retries["max_retries"] > 0
    with dg.instance_for_test(overrides={"run_retries": run_retries}) as instance:
        yield instance


def dismiss(instance: dg.DagsterInstance, **config: object) -> dg.ExecuteInProcessResult:
    return defs.resolve_job_def("review_dismiss").execute_in_process(
        instance=instance, raise_on_error=False, run_config={"ops": {"review_dismiss_op": {"config": config}}}
    )


def failure_of(result: dg.ExecuteInProcessResult) -> str:
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    data = failure.step_failure_data
    assert data.user_failure_data is not None, data.error  # a dg.Failure, not an exception's stack trace
    return str(data.user_failure_data.description)


def test_a_dismiss_job_records_the_queue_without_the_item_and_the_operator(
    store: Store, retrying_instance: dg.DagsterInstance
) -> None:
    kept = store.review.open_item("PM0004", "held", "ambiguous_match", HELD)
    gone = store.review.open_item("PM0005", "held", "amount_mismatch", {**HELD, "payment_id": "PM0005"})

    result = dismiss(retrying_instance, item_id=gone, note="paid by cheque instead", operator="erin")

    assert result.success
    metadata = queue_metadata(retrying_instance)
    assert table_items(metadata) == [kept]
    assert metadata["dagster/row_count"].value == 1
    closed = store.review.get(gone)
    assert (closed.status, closed.resolved_by, closed.note) == ("dismissed", "erin", "paid by cheque instead")


def test_the_launching_user_dagster_knows_is_recorded_rather_than_the_operator_field(
    store: Store, retrying_instance: dg.DagsterInstance
) -> None:
    item = store.review.open_item("PM0004", "held", "ambiguous_match", HELD)

    result = defs.resolve_job_def("review_dismiss").execute_in_process(
        instance=retrying_instance,
        tags={"dagster/user": "alice@example.com"},
        run_config={"ops": {"review_dismiss_op": {"config": {"item_id": item, "note": "dup", "operator": "x"}}}},
    )

    assert result.success
    assert store.review.get(item).resolved_by == "alice@example.com"


@pytest.mark.parametrize(
    ("config", "says"),
    [
        ({"item_id": 999, "note": "n", "operator": "erin"}, "there is no review item 999"),
        ({"item_id": 0, "note": " ", "operator": "erin"}, "dismissing needs a note saying why"),
        ({"item_id": 0, "note": "n", "operator": " "}, "operator: give your name or email"),
    ],
)
def test_an_operator_mistake_fails_one_run_with_what_to_do_and_is_not_retried(
    store: Store, retrying_instance: dg.DagsterInstance, config: dict[str, object], says: str
) -> None:
    item = store.review.open_item("PM0004", "held", "ambiguous_match", HELD)
    config = {**config, "item_id": config["item_id"] or item}

    result = dismiss(retrying_instance, **config)

    assert not result.success
    message = failure_of(result)
    assert says in message and "correct the config in the Launchpad" in message
    [run] = retrying_instance.get_runs()  # one run, and the daemon would not re-execute it
    assert run.tags["dagster/max_retries"] == "0" and run.tags["dagster/will_retry"] == "false"
    assert store.review.get(item).status == "open"
    assert table_items(queue_metadata(retrying_instance)) == [item]  # recorded even after a failure


def test_a_closed_item_cannot_be_dismissed_again(store: Store, retrying_instance: dg.DagsterInstance) -> None:
    item = store.review.open_item("PM0004", "held", "ambiguous_match", HELD)
    assert dismiss(retrying_instance, item_id=item, note="dup", operator="erin").success

    again = dismiss(retrying_instance, item_id=item, note="dup", operator="erin")

    assert f"review item {item} is already dismissed (by erin)" in failure_of(again)


def test_every_review_job_declares_no_retries_and_describes_every_config_field() -> None:
    for name in ("review_apply", "review_retry", "review_dismiss", "review_reverse"):
        job = defs.resolve_job_def(name)
        assert job.tags["dagster/max_retries"] == "0", name
        [node] = job.nodes
        fields = node.definition.config_schema.as_field().config_type.fields
        assert "operator" in fields and fields["operator"].is_required, name
        assert all(field.description for field in fields.values()), name


def test_a_job_without_the_settings_it_needs_fails_saying_which_to_set(
    store: Store, retrying_instance: dg.DagsterInstance
) -> None:
    item = store.review.open_item("PM0002", "reversal_required", "refund", {"payment_id": "PM0002", "cause": "refund"})

    result = defs.resolve_job_def("review_reverse").execute_in_process(
        instance=retrying_instance,
        raise_on_error=False,
        run_config={"ops": {"review_reverse_op": {"config": {"item_id": item, "operator": "erin"}}}},
    )

    message = failure_of(result)
    assert message.startswith("invalid settings:") and "ML_CONNECTOR_SAGE_AGENT_WSDL: not set" in message
    assert store.review.get(item).status == "open"
