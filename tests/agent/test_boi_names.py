"""Every ProvideX name the BOI backend uses lives in BOINames and can be overridden from a JSON or TOML file, so a
wrong guess is fixed on the Sage server without a release; an unknown key is refused by name."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from ml_connector_dagster.agent import BOINames
from ml_connector_dagster.agent.boi_names import USES, load_names


def test_a_toml_file_overrides_the_names_it_gives_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "names.toml"
    path.write_text('receipts_bus = "AR_CashReceiptsEntry_bus"\nline_invoice_type = "ApplyToInvoiceType$"\n')

    names = load_names(path)

    assert names.changed() == {"receipts_bus": "AR_CashReceiptsEntry_bus", "line_invoice_type": "ApplyToInvoiceType$"}
    assert names.deposit_bus == BOINames().deposit_bus


def test_a_json_file_works_alike(tmp_path: Path) -> None:
    path = tmp_path / "names.json"
    path.write_text(json.dumps({"next_deposit_no_method": "", "get_value_form": "variant"}))

    names = load_names(path)

    assert (names.next_deposit_no_method, names.get_value_form) == ("", "variant")


@pytest.mark.parametrize(
    "content, words",
    [
        ('receipt_bus = "X_bus"\n', "unknown name 'receipt_bus' (did you mean 'receipts_bus'?)"),
        ('get_value_form = "byref"\n', "get_value_form must be one of auto, tuple, variant"),
        ('deposit_bus = ""\n', "deposit_bus must not be empty"),
        ("balance = 3\n", "balance must be text, not int"),
        ("receipts_bus = \n", "is not valid TOML"),
    ],
)
def test_a_bad_names_file_is_refused_with_what_is_wrong(tmp_path: Path, content: str, words: str) -> None:
    path = tmp_path / "names.toml"
    path.write_text(content)

    with pytest.raises(ValueError) as caught:
        load_names(path)

    assert words in str(caught.value) and str(path) in str(caught.value)


def test_every_name_the_backend_uses_on_an_object_is_a_field_of_boinames() -> None:
    keys = {f.name for f in dataclasses.fields(BOINames)}

    used = {use.key for use in USES} | {f.key for use in USES for f in (*use.fields, *use.lines)}

    assert used <= keys
