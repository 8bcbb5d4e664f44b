"""The BOI backend reads Sage the way public code shows it must, whichever form pywin32 presents it in.

`nEOF` is a property: read, never called (and read through IDispatch's property-get when a type library
made pywin32 hand back a method). `nGetValue(name, value)` returns the value by reference: as a tuple
`(ret, value)` under a type-library dispatch, or only through a by-reference VARIANT when late bound.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from ml_connector_dagster.agent import BOIBackend, BOINames
from ml_connector_dagster.agent.ledger import AgentLedger
from ml_connector_dagster.sage100.model import Credentials, SageRuleError

from support.boi_fake import DEPOSITS, HOME, INVOICES_SVC, TODAY, FakeSage, FakeVariant
from support.sage import MakeRequest


def backend_for(sage: FakeSage, tmp_path: Path, get_value_form: str = "auto") -> BOIBackend:
    return BOIBackend(
        HOME,
        AgentLedger(tmp_path / "ledger.sqlite"),
        BOINames(get_value_form=get_value_form),
        dispatch=sage.dispatch,
        today=lambda: TODAY,
        variant=FakeVariant,
    )


def test_neof_is_read_as_a_property_and_never_called(tmp_path: Path, creds: Credentials) -> None:
    sage = FakeSage(eof="property")

    invoices = backend_for(sage, tmp_path).get_open_invoices(creds, "01", "ABF")

    assert len(invoices) == 2 and sage.methods(INVOICES_SVC).count("nEOF") == 3
    assert "nEOF()" not in sage.methods()


def test_when_pywin32_hands_neof_back_as_a_method_it_is_read_as_a_property_through_idispatch(
    tmp_path: Path, creds: Credentials
) -> None:
    sage = FakeSage(eof="method")

    invoices = backend_for(sage, tmp_path).get_open_invoices(creds, "01", "ABF")

    assert [i.InvoiceNo for i in invoices] == ["0100030", "0100031"]
    assert sage.args(INVOICES_SVC, "GetProperty") == [("nEOF",)] * 3 and "nEOF()" not in sage.methods()


@pytest.mark.parametrize(
    "dispatch_form, configured",
    [("tuple", "auto"), ("variant", "auto"), ("tuple", "tuple"), ("variant", "variant"), ("tuple", "variant")],
)
def test_values_come_back_by_reference_in_the_form_pywin32_presents(
    tmp_path: Path, creds: Credentials, dispatch_form: str, configured: str
) -> None:
    sage = FakeSage(get_value_form=dispatch_form)

    invoices = backend_for(sage, tmp_path, configured).get_open_invoices(creds, "01", "ABF")

    read = [(i.InvoiceNo, i.Balance) for i in invoices]
    assert read == [("0100030", Decimal("1200.00")), ("0100031", Decimal("450.00"))]


@pytest.mark.parametrize("dispatch_form", ["tuple", "variant"])
def test_auto_detects_the_form_once_and_keeps_it(tmp_path: Path, creds: Credentials, dispatch_form: str) -> None:
    sage = FakeSage(get_value_form=dispatch_form)
    backend = backend_for(sage, tmp_path, "auto")

    backend.get_open_invoices(creds, "01", "ABF")

    passed = [args[1] for args in sage.args(INVOICES_SVC, "nGetValue")]
    assert backend.byref.form == dispatch_form
    assert isinstance(passed[0], FakeVariant)  # the first call finds out
    assert all(isinstance(p, FakeVariant) == (dispatch_form == "variant") for p in passed[1:])


def test_the_tuple_form_against_a_late_bound_dispatch_says_which_form_to_configure(
    tmp_path: Path, creds: Credentials
) -> None:
    sage = FakeSage(get_value_form="variant")

    with pytest.raises(SageRuleError, match='set get_value_form = "variant"'):
        backend_for(sage, tmp_path, "tuple").get_open_invoices(creds, "01", "ABF")


@pytest.mark.parametrize("dispatch_form", ["tuple", "variant"])
def test_sages_next_deposit_number_comes_back_by_reference_in_either_form(
    tmp_path: Path, creds: Credentials, make_request: MakeRequest, dispatch_form: str
) -> None:
    sage = FakeSage(get_value_form=dispatch_form)
    sage.next_deposit_no = 42

    receipt = backend_for(sage, tmp_path).create_cash_receipt(creds, make_request("PM1"))

    assert receipt.deposit_no == "00042" and sage.tables[DEPOSITS][0]["DepositNo$"] == "00042"


def test_auto_falls_back_to_the_tuple_form_when_a_typed_wrapper_refuses_a_variant(
    tmp_path: Path, creds: Credentials
) -> None:
    sage = FakeSage(get_value_form="tuple")

    def typed(obj, field, value):  # a makepy wrapper whose by-reference parameter takes no VARIANT
        if isinstance(value, FakeVariant):
            raise TypeError("The VARIANT type is not supported here")
        return obj._answer("nGetValue", (field, value))

    sage.answers[(INVOICES_SVC, "nGetValue")] = typed
    backend = backend_for(sage, tmp_path, "auto")

    invoices = backend.get_open_invoices(creds, "01", "ABF")

    assert [i.InvoiceNo for i in invoices] == ["0100030", "0100031"] and backend.byref.form == "tuple"
