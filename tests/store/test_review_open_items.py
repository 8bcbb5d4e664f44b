"""ReviewQueue.open_items: many items opened or refreshed in one transaction, each as open_item would, with
the open item each refreshed (as it was) for the caller to compare reasons."""

from __future__ import annotations

from ml_connector_dagster.store import Store


def test_open_items_refreshes_the_open_item_of_each_subject_and_kind_and_opens_the_others(store: Store) -> None:
    first = store.review.open_item("PM1", "held", "amount_mismatch", {"n": 1})
    closed = store.review.open_item("PM2", "held", "invoice_not_found", {})
    store.review.close(closed, "resolved", by="system")

    opened = store.review.open_items(
        [
            ("PM1", "held", "ambiguous_match", {"n": 2}),
            ("PM2", "held", "amount_mismatch", {}),
            ("PM1", "reversal_required", "refund", {}),
        ]
    )

    (pm1, before), (pm2, none_open), (reversal, new) = opened
    assert pm1 == first and before is not None and before.reason == "amount_mismatch" and before.details == {"n": 1}
    assert pm2 != closed and none_open is None and new is None and reversal not in (pm1, pm2)
    assert [(i.subject, i.kind, i.reason) for i in store.review.open_for("PM1")] == [
        ("PM1", "held", "ambiguous_match"),
        ("PM1", "reversal_required", "refund"),
    ]
    assert [i.reason for i in store.review.open_for("PM2")] == ["amount_mismatch"]
