"""`ml-connector inbox list`: each event with its state, filtered; what came from outside is printed so a terminal
shows it and does not obey it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ml_connector_dagster.cli import main
from ml_connector_dagster.cli.common import printable
from ml_connector_dagster.settings import Settings
from ml_connector_dagster.store import Store

from support.gocardless import NEW_SECRET, event

# An id as a row stored before the receiver checked ids could hold it (or one from another path into the inbox):
# a bell, a colour escape, a right-to-left override and a newline.
HOSTILE_ID = "EV\x07\x1b[31mRED\u202eDI\nFAKE"


@pytest.fixture
def hostile_row(settings: Settings) -> None:
    store = Store(settings.database_url)
    store.inbox.add(
        [
            {
                "id": HOSTILE_ID,
                "created_at": "2026-11-05T10:00:00.000Z",
                "resource_type": "payments",
                "action": "confirmed",
                "links": {"payment": "PM\x1b]0;title\x07"},
            }
        ]
    )
    store.dispose()


def _only_printable_lines(output: str) -> bool:
    return all(line.isprintable() for line in output.split("\n"))


def test_inbox_list_shows_control_characters_escaped_not_raw(hostile_row: None) -> None:
    result = CliRunner().invoke(main, ["inbox", "list"])

    assert result.exit_code == 0, result.output
    assert _only_printable_lines(result.output)
    assert "EV\\x07\\x1b[31mRED\\u202eDI\\nFAKE" in result.output
    assert "PM\\x1b]0;title\\x07" in result.output


def test_inbox_list_as_json_is_ascii_and_keeps_the_exact_values(hostile_row: None) -> None:
    result = CliRunner().invoke(main, ["inbox", "list", "--json"])

    assert result.output.isascii()
    assert json.loads(result.output)[0]["event_id"] == HOSTILE_ID


@pytest.mark.parametrize(
    "value, shown",
    [
        ("EV00BD05S5VM2T", "EV00BD05S5VM2T"),
        ("bell\x07", "bell\\x07"),
        ("\x1b[2J", "\\x1b[2J"),
        ("line\nbreak\r", "line\\nbreak\\r"),
        ("tab\there", "tab\\there"),
        ("NUL\x00", "NUL\\x00"),
        ("\u202eevil", "\\u202eevil"),
        ("lone\ud800", "lone\\ud800"),
        ("café Zürich", "café Zürich"),
        (None, ""),
        (42, "42"),
    ],
)
def test_printable_escapes_what_a_terminal_would_act_on_and_keeps_the_rest(value: object, shown: str) -> None:
    assert printable(value) == shown


@pytest.fixture
def inbox_rows(store: Store) -> Store:
    store.inbox.add([event(f"EVL{n}", resource_id=f"PM{n}") for n in range(1, 6)], webhook_id="WBL", source="webhook")
    done = store.inbox.claim([r.seq for r in store.inbox.due()][:2], "test-run")
    store.inbox.complete([r.seq for r in done])
    return store


def test_inbox_list_json_shows_each_event_with_its_state(inbox_rows: Store) -> None:
    result = CliRunner().invoke(main, ["inbox", "list", "--json"])

    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [r["event_id"] for r in rows] == ["EVL5", "EVL4", "EVL3", "EVL2", "EVL1"]  # newest first
    assert rows[-1] | {"received_at": None} == {
        "seq": rows[-1]["seq"],
        "event_id": "EVL1",
        "resource_type": "payments",
        "action": "confirmed",
        "resource_id": "PM1",
        "status": "processed",
        "attempts": 1,
        "received_at": None,
        "last_error": None,
    }


def test_inbox_list_filters_by_status_and_limit_zero_lists_everything(inbox_rows: Store) -> None:
    runner = CliRunner()
    received = json.loads(runner.invoke(main, ["inbox", "list", "--json", "--status", "received"]).output)
    limited = json.loads(runner.invoke(main, ["inbox", "list", "--json", "--limit", "2"]).output)
    everything = json.loads(runner.invoke(main, ["inbox", "list", "--json", "--limit", "0"]).output)
    table = runner.invoke(main, ["inbox", "list", "--status", "processed"]).output

    assert [r["event_id"] for r in received] == ["EVL5", "EVL4", "EVL3"]
    assert len(limited) == 2 and len(everything) == 5
    assert table.splitlines()[0].split() == [
        "seq",
        "event_id",
        "resource_type",
        "action",
        "resource_id",
        "status",
        "attempts",
        "received_at",
    ]
    assert len(table.splitlines()) == 3
    assert NEW_SECRET not in table
