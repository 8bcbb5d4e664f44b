"""The eBusiness Web Services client (zeep) against the stand-in, over real SOAP on loopback."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
import requests

from ml_connector_dagster.sage100 import (
    AgentClient,
    EBusinessClient,
    SageCompanyError,
    SageLogonError,
    SageNoAccess,
    SageNotFound,
    SageServerError,
    SageUnavailable,
    SageWriteRejected,
)
from ml_connector_dagster.sandbox.sage_services import SageStandIns

NEW_CUSTOMER = {"ARDivisionNo": "01", "CustomerNo": "0000777", "CustomerName": "Echo", "SalespersonNo": "0100"}


def client_with(stand_ins: SageStandIns, **change: str) -> EBusinessClient:
    values = {
        "username": stand_ins.username,
        "password": stand_ins.password,
        "company_code": stand_ins.company_code,
        **change,
    }
    return EBusinessClient(stand_ins.ebusiness_wsdl, **values)


def test_contract_information_needs_no_logon(stand_ins: SageStandIns) -> None:
    info = client_with(stand_ins, password="not-needed").get_contract_information()

    assert info.contract_version >= 1 and info.assembly_version


def test_get_customer_returns_sages_customer_contract(ebusiness: EBusinessClient) -> None:
    customer = ebusiness.get_customer("01", "ABF")

    assert (customer["CustomerName"], customer["EmailAddress"]) == ("American Business Futures", "ap@abf.example")
    assert customer["CurrentBalance"] == Decimal("1650.00") and isinstance(customer["CurrentBalance"], Decimal)
    assert "DateLastPayment" in customer["OtherFields"]


def test_a_wrong_password_is_a_logon_error_in_sages_words(stand_ins: SageStandIns) -> None:
    with pytest.raises(SageLogonError) as caught:
        client_with(stand_ins, password="Wr0ng-Pa55").get_customer("01", "ABF")

    assert str(caught.value).startswith("Logon failure: The user logon or password does not match")
    assert "Wr0ng-Pa55" not in str(caught.value) and "Wr0ng-Pa55" not in repr(caught.value)


def test_a_wrong_company_code_is_a_company_error(stand_ins: SageStandIns) -> None:
    with pytest.raises(SageCompanyError, match="XYZ"):
        client_with(stand_ins, company_code="XYZ").get_customer("01", "ABF")


def test_an_unknown_customer_is_not_found(ebusiness: EBusinessClient) -> None:
    with pytest.raises(SageNotFound) as caught:
        ebusiness.get_customer("01", "NOPE")

    assert caught.value.code == "CI_NoKey"


def test_a_new_customer_takes_the_next_number(ebusiness: EBusinessClient) -> None:
    number = ebusiness.get_next_customer_no()

    ebusiness.create_customer(
        {
            "ARDivisionNo": "01",
            "CustomerNo": number,
            "CustomerName": "Echo Plumbing",
            "EmailAddress": "ap@echo.example",
            "CreditLimit": Decimal("500.00"),
            "SalespersonNo": "0100",
        }
    )

    created = ebusiness.get_customer("01", number)
    assert (created["CreditLimit"], created["SalespersonNo"]) == (Decimal("500.00"), "0100")


def test_a_customer_without_a_salesperson_is_rejected_in_sages_words_and_not_created(
    ebusiness: EBusinessClient,
) -> None:
    number = ebusiness.get_next_customer_no()

    with pytest.raises(SageWriteRejected) as caught:
        ebusiness.create_customer({"ARDivisionNo": "01", "CustomerNo": number, "CustomerName": "Echo Plumbing"})

    assert (caught.value.code, caught.value.message) == ("CI_Invalid", "SalespersonNo is required.")
    with pytest.raises(SageNotFound):
        ebusiness.get_customer("01", number)


def test_each_next_customer_number_is_reserved_so_asking_twice_answers_two_numbers(ebusiness: EBusinessClient) -> None:
    first = ebusiness.get_next_customer_no()

    second = ebusiness.get_next_customer_no()

    assert second > first


def test_creating_an_existing_customer_is_rejected_with_sages_code(ebusiness: EBusinessClient) -> None:
    with pytest.raises(SageWriteRejected) as caught:
        ebusiness.create_customer({"ARDivisionNo": "01", "CustomerNo": "ABF", "CustomerName": "Again"})

    assert caught.value.code == "WS_AlreadyExists"


def test_changing_one_field_of_a_customer_keeps_all_the_others(ebusiness: EBusinessClient) -> None:
    number = ebusiness.get_next_customer_no()
    ebusiness.create_customer(
        {
            "ARDivisionNo": "01",
            "CustomerNo": number,
            "CustomerName": "Echo Plumbing",
            "EmailAddress": "ap@echo.example",
            "CreditLimit": Decimal("500.00"),
            "CreditHold": True,
            "TermsCode": "30",
            "SalespersonNo": "0100",
        }
    )
    before = ebusiness.get_customer("01", number)

    ebusiness.update_customer("01", number, {"EmailAddress": "accounts@echo.example"})

    after = ebusiness.get_customer("01", number)
    assert after["EmailAddress"] == "accounts@echo.example"
    unchanged = ("CustomerName", "CreditLimit", "CreditHold", "CustomerStatus", "TermsCode", "SalespersonNo")
    assert {f: after[f] for f in unchanged} == {f: before[f] for f in unchanged}


def test_updating_a_customer_is_seen_by_the_agents_next_customer_poll(
    ebusiness: EBusinessClient, agent: AgentClient
) -> None:
    newest = max(c.stamp for c in agent.iter_customers())

    ebusiness.update_customer("01", "BRESLIN", {"EmailAddress": "new@breslin.example"})

    changed = list(agent.iter_customers(updated_since=newest.to_datetime()))
    assert [(c.CustomerNo, c.CustomerName, c.EmailAddress) for c in changed] == [
        ("BRESLIN", "Breslin Parts Supply", "new@breslin.example")
    ]


def test_updating_an_unknown_customer_is_not_found(ebusiness: EBusinessClient) -> None:
    with pytest.raises(SageNotFound):
        ebusiness.update_customer("01", "NOPE", {"CustomerName": "x"})


@pytest.mark.parametrize("changes", [{"CustomerNo": "ABF2"}, {"ARDivisionNo": "02"}])
def test_an_update_cannot_change_the_customers_key(ebusiness: EBusinessClient, changes: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="key"):
        ebusiness.update_customer("01", "ABF", changes)


@pytest.mark.parametrize("changes", [{"CreditLimit": 100.5}, {"OtherFields": {"CreditLimit": 100.5}}])
def test_money_as_float_is_refused_before_sending(ebusiness: EBusinessClient, changes: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="float"):
        ebusiness.update_customer("01", "ABF", changes)


# --- Sage's security -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["system", "company", "user"])
def test_web_services_off_at_any_level_is_a_logon_error(
    stand_ins: SageStandIns, ebusiness: EBusinessClient, level: str
) -> None:
    stand_ins.ebusiness_controls.set_web_services(**{level: False})

    with pytest.raises(SageLogonError, match="not enabled for web services"):
        ebusiness.get_customer("01", "ABF")


def test_no_access_is_an_error_naming_the_operation_and_the_role_and_is_not_retried(
    stand_ins: SageStandIns, ebusiness: EBusinessClient, sleeps: list[float]
) -> None:
    stand_ins.ebusiness_controls.set_no_access(["UpdateCustomer"])

    with pytest.raises(SageNoAccess) as caught:
        ebusiness.update_customer("01", "ABF", {"EmailAddress": "ap2@abf.example"})

    error = caught.value
    assert (error.operation, error.code) == ("UpdateCustomer", "CI_NoAccess")
    assert error.message.startswith('Sage refused UpdateCustomer with "No Access"')
    assert "give the user's role access to UpdateCustomer" in error.message
    assert not isinstance(error, SageUnavailable) and sleeps == []


# --- Sage's generic fault -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("operation", "call"),
    [
        ("GetCustomer", lambda c: c.get_customer("01", "ABF")),
        ("UpdateCustomer", lambda c: c.update_customer("01", "ABF", {"EmailAddress": "ap2@abf.example"})),
        ("CreateCustomer", lambda c: c.create_customer(NEW_CUSTOMER)),
    ],
)
def test_sages_generic_fault_is_a_server_error_named_by_operation_and_not_retried(
    stand_ins: SageStandIns,
    ebusiness: EBusinessClient,
    sleeps: list[float],
    operation: str,
    call: Callable[[EBusinessClient], object],
) -> None:
    stand_ins.ebusiness_controls.fail_next(operation)

    with pytest.raises(SageServerError) as caught:
        call(ebusiness)

    error = caught.value
    assert isinstance(error, SageUnavailable) and not error.transient
    assert operation in error.message and '"An exception occurred."' in error.message
    assert "logs on the Sage server" in error.message
    assert sleeps == [] and stand_ins.ebusiness_controls.faults() == {"faults": [], "injected": 1}


@pytest.mark.parametrize("where", ["typed", "OtherFields"])
def test_a_credit_limit_not_written_with_ascii_digits_is_a_client_fault_naming_it(
    stand_ins: SageStandIns, where: str
) -> None:
    ns = "http://sage.com/Sage100/eBusinessWebServices"
    limit = (
        "<CreditLimit>١٠</CreditLimit>"
        if where == "typed"
        else "<OtherFields><Field><MasFieldName>CreditLimit</MasFieldName><Value>١٠</Value></Field></OtherFields>"
    )
    body = (
        f'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><UpdateCustomer xmlns="{ns}">'
        f"<logon><Username>{stand_ins.username}</Username><Password>{stand_ins.password}</Password></logon>"
        f"<companyCode>{stand_ins.company_code}</companyCode><customer><ARDivisionNo>01</ARDivisionNo>"
        f"<CustomerNo>ABF</CustomerNo>{limit}</customer></UpdateCustomer></s:Body></s:Envelope>"
    )

    response = requests.post(
        stand_ins.ebusiness.url + "/ebusiness",
        data=body.encode(),
        timeout=10,
        headers={"Content-Type": "text/xml; charset=utf-8"},
    )

    assert response.status_code == 400 and "CreditLimit" in response.text and "١٠" in response.text
    assert stand_ins.company.get_customer("01", "ABF")["CreditLimit"] == "0.00"
