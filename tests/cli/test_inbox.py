"""`ml-connector inbox list` prints what came from outside so a terminal shows it and does not obey it."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from ml_connector_dagster.cli import main
from ml_connector_dagster.cli.common import printable
from ml_connector_dagster.settings import Settings
from ml_connector_dagster.store import Store

# An id as a row stored before the receiver checked ids could hold it (or one from another path into the inbox):
# a bell, a colour escape, a right-to-left override and a newline.
HOSTILE_ID = "EV\x07\x1b[31mRED\u202eDI\nFAKE"


@pytest.fixture
def hostile_row(settings: Settings) -> None:
    store = Store(settings.database_url)
    store.inbox.add([{"id": HOSTILE_ID, "created_at": "2026-11-05T10:00:00.000Z", "resource_type": "payments",
                      "action": "confirmed", "links": {"payment": "PM\x1b]0;title\x07"}}])
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


@pytest.mark.parametrize("value, shown", [
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
])
def test_printable_escapes_what_a_terminal_would_act_on_and_keeps_the_rest(value: object, shown: str) -> None:
    assert printable(value) == shown
