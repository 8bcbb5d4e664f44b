"""The eBusiness Web Services stand-in behaves as Sage's service does, spoken to with plain zeep on loopback.

These tests send exactly what a caller puts on the wire (no product client in between), so they pin the
stand-in's behaviour that the product's client must cope with (tests/sage100/test_ebusiness_client.py).
"""

from __future__ import annotations

import sqlite3
from decimal import Decimal
from typing import Any

import pytest
import requests
import zeep
import zeep.exceptions
from zeep.helpers import serialize_object

from ml_connector_dagster.sage100.model import LOGON_FAILURE_TEXT
from ml_connector_dagster.sandbox.sage_company import SageCompany
from ml_connector_dagster.sandbox.sage_services import SageStandIns


class Sage:
    """zeep over the stand-in's WSDL, with the stand-in's logon and company on every business call."""

    def __init__(self, stand_ins: SageStandIns) -> None:
        self.service = zeep.Client(stand_ins.ebusiness_wsdl).service
        self.logon = {"Username": stand_ins.username, "Password": stand_ins.password}
        self.company_code = stand_ins.company_code

    def __call__(self, operation: str, **params: Any) -> Any:
        return getattr(self.service, operation)(logon=self.logon, companyCode=self.company_code, **params)

    def fault(self, operation: str, **params: Any) -> zeep.exceptions.Fault:
        with pytest.raises(zeep.exceptions.Fault) as caught:
            self(operation, **params)
        return caught.value


@pytest.fixture
def sage(stand_ins: SageStandIns) -> Sage:
    return Sage(stand_ins)


# --- GetNextCustomerNo -------------------------------------------------------------------------------------------


def test_the_next_customer_number_skips_numbers_in_use_in_any_division(sage: Sage, stand_ins: SageStandIns) -> None:
    stand_ins.company.create_customer("02", "0000001", {"CustomerName": "Keyed in Sage", "SalespersonNo": "0100"})

    number = sage("GetNextCustomerNo")

    assert number == "0000002"


def test_a_next_customer_number_never_used_is_not_answered_again(sage: Sage) -> None:
    reserved = [sage("GetNextCustomerNo") for _ in range(3)]

    assert reserved == ["0000001", "0000002", "0000003"]


# --- CreateCustomer ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("customer", [{"CustomerName": "Echo Plumbing"}, {"CustomerName": "Echo", "SalespersonNo": ""}])
def test_create_customer_without_a_salesperson_is_a_fault_naming_it(sage: Sage, customer: dict[str, str]) -> None:
    fault = sage.fault("CreateCustomer", customer={"ARDivisionNo": "01", "CustomerNo": "0000099", **customer})

    assert (fault.code, fault.message) == ("a:CI_Invalid", "SalespersonNo is required.")


def test_create_customer_on_a_key_in_use_says_it_exists_before_anything_else(sage: Sage) -> None:
    fault = sage.fault("CreateCustomer", customer={"ARDivisionNo": "01", "CustomerNo": "ABF"})

    assert fault.code == "a:WS_AlreadyExists"


# --- UpdateCustomer ------------------------------------------------------------------------------------------------


def test_update_customer_writes_the_whole_record_so_a_field_left_out_is_blanked(sage: Sage) -> None:
    sage(
        "UpdateCustomer",
        customer={
            "ARDivisionNo": "01",
            "CustomerNo": "BRESLIN",
            "CustomerName": "Breslin Parts Supply",
            "EmailAddress": "accounts@breslin.example",
            "CreditLimit": Decimal("900.00"),
            "CreditHold": True,
            "TermsCode": "30",
            "SalespersonNo": "0100",
        },
    )

    sage(
        "UpdateCustomer",
        customer={"ARDivisionNo": "01", "CustomerNo": "BRESLIN", "EmailAddress": "new@breslin.example"},
    )

    after = sage("GetCustomer", arDivisionNo="01", customerNo="BRESLIN")
    assert after.EmailAddress == "new@breslin.example"
    assert (after.CustomerName or "", after.TermsCode or "", after.SalespersonNo or "") == ("", "", "")
    assert (after.CreditLimit, after.CreditHold) == (Decimal("0.00"), False)


def test_a_customer_sent_back_as_read_changes_nothing_sage_keeps_itself(sage: Sage, stand_ins: SageStandIns) -> None:
    before = stand_ins.company.get_customer("01", "ABF")
    record = serialize_object(sage("GetCustomer", arDivisionNo="01", customerNo="ABF"), dict)

    sage("UpdateCustomer", customer={**record, "CurrentBalance": Decimal("1.00")})

    after = stand_ins.company.get_customer("01", "ABF")
    kept = ("CurrentBalance", "DateLastPayment", "LastPaymentAmt", "UserUpdatedKey", "CustomerName", "EmailAddress")
    assert {c: after[c] for c in kept} == {c: before[c] for c in kept}
    assert (after["DateUpdated"], after["TimeUpdated"]) > (before["DateUpdated"], before["TimeUpdated"])


# --- Sage's security -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("level", ["system", "company", "user"])
def test_web_services_off_at_any_level_refuse_every_logon_with_sages_logon_failure_text(
    sage: Sage, stand_ins: SageStandIns, level: str
) -> None:
    stand_ins.ebusiness_controls.set_web_services(**{level: False})

    fault = sage.fault("GetCustomer", arDivisionNo="01", customerNo="ABF")

    assert fault.message == LOGON_FAILURE_TEXT
    assert sage.service.GetContractInformation().ContractVersion >= 1  # takes no logon, so it still answers


def test_an_operation_the_users_role_may_not_run_is_refused_with_no_access(sage: Sage, stand_ins: SageStandIns) -> None:
    stand_ins.ebusiness_controls.set_no_access(["UpdateCustomer"])

    fault = sage.fault("UpdateCustomer", customer={"ARDivisionNo": "01", "CustomerNo": "ABF", "CustomerName": "x"})

    assert (fault.code, fault.message) == ("a:CI_NoAccess", "No Access")
    assert stand_ins.company.get_customer("01", "ABF")["CustomerName"] == "American Business Futures"
    assert sage("GetCustomer", arDivisionNo="01", customerNo="ABF").CustomerName == "American Business Futures"


def test_role_security_is_checked_only_after_the_logon_is_accepted(sage: Sage, stand_ins: SageStandIns) -> None:
    stand_ins.ebusiness_controls.set_no_access(["GetCustomer"])
    sage.logon["Password"] = "Wr0ng-Pa55"

    fault = sage.fault("GetCustomer", arDivisionNo="01", customerNo="ABF")

    assert fault.message == LOGON_FAILURE_TEXT


def test_security_set_over_http_is_what_the_service_then_does(sage: Sage, stand_ins: SageStandIns) -> None:
    url = stand_ins.ebusiness.url + "/_sandbox/security"

    answer = requests.post(url, json={"no_access": ["GetNextCustomerNo"]}, timeout=10).json()

    assert answer == {
        "web_services": {"system": True, "company": True, "user": True},
        "no_access": ["GetNextCustomerNo"],
    }
    assert sage.fault("GetNextCustomerNo").message == "No Access"
    requests.post(url, json={"web_services": {"company": False}}, timeout=10)
    assert sage.fault("GetNextCustomerNo").message == LOGON_FAILURE_TEXT
    assert requests.delete(url, timeout=10).json()["web_services"] == {"system": True, "company": True, "user": True}
    assert sage("GetNextCustomerNo")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"web_services": {"user": "false"}}, '"user" must be true or false'),
        ({"web_services": {"site": False}}, "unknown key(s) site"),
        ({"no_access": ["DropCompany"]}, "unknown operation 'DropCompany'"),
        ({"no_access": ["GetContractInformation"]}, "takes no logon"),
        ({"no_access": "GetCustomer"}, '"no_access" must be a list'),
        ({"roles": []}, "unknown key(s) roles"),
    ],
)
def test_security_the_stand_in_cannot_act_out_is_refused_naming_why_and_nothing_changes(
    stand_ins: SageStandIns, body: dict[str, object], says: str
) -> None:
    url = stand_ins.ebusiness.url + "/_sandbox/security"

    refused = requests.post(url, json=body, timeout=10)

    assert refused.status_code == 400 and says in refused.json()["error"]
    assert stand_ins.ebusiness_controls.security() == {
        "web_services": {"system": True, "company": True, "user": True},
        "no_access": [],
    }


# --- failures inside Sage ------------------------------------------------------------------------------------------


def test_a_failure_inside_sage_is_answered_only_with_the_generic_fault(sage: Sage, stand_ins: SageStandIns) -> None:
    stand_ins.ebusiness_controls.fail_next("GetCustomer")

    fault = sage.fault("GetCustomer", arDivisionNo="01", customerNo="ABF")

    assert (fault.code, fault.message, fault.detail) == ("s:Server", "An exception occurred.", None)
    assert sage("GetCustomer", arDivisionNo="01", customerNo="ABF").CustomerName == "American Business Futures"


def test_an_unexpected_error_in_the_company_is_the_generic_fault_too(sage: Sage, stand_ins: SageStandIns) -> None:
    conn = sqlite3.connect(stand_ins.company.path)
    conn.execute("ALTER TABLE AR_Customer RENAME TO AR_Customer_Gone")
    conn.close()

    fault = sage.fault("GetCustomer", arDivisionNo="01", customerNo="ABF")

    assert fault.message == "An exception occurred."


def test_failures_queued_over_http_fail_that_many_calls(sage: Sage, stand_ins: SageStandIns) -> None:
    url = stand_ins.ebusiness.url + "/_sandbox/faults"

    queued = requests.post(url, json={"faults": [{"operation": "GetNextCustomerNo", "count": 2}]}, timeout=10)

    assert queued.json() == {"faults": [{"operation": "GetNextCustomerNo", "count": 2}], "injected": 0}
    answers = [sage.fault("GetNextCustomerNo").message, sage.fault("GetNextCustomerNo").message]
    assert answers == ["An exception occurred."] * 2 and sage("GetNextCustomerNo")
    assert requests.get(url, timeout=10).json() == {"faults": [], "injected": 2}


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"faults": [{"operation": "DeleteEverything"}]}, "unknown operation 'DeleteEverything'"),
        ({"faults": [{"operation": "GetCustomer", "count": 0}]}, '"count" must be a whole number'),
        ({"faults": [{"operation": "GetCustomer", "after": 3}]}, "unknown key(s) after"),
        ({"fault": []}, "unknown key(s) fault"),
    ],
)
def test_a_fault_queue_the_stand_in_cannot_act_out_is_refused_naming_why(
    stand_ins: SageStandIns, body: dict[str, object], says: str
) -> None:
    url = stand_ins.ebusiness.url + "/_sandbox/faults"

    refused = requests.post(url, json=body, timeout=10)

    assert refused.status_code == 400 and says in refused.json()["error"]
    assert stand_ins.ebusiness_controls.faults() == {"faults": [], "injected": 0}


# --- a company database from an older release -------------------------------------------------------------------


def test_a_company_database_made_before_salespersons_gains_the_column_and_serves_customers(
    stand_ins: SageStandIns,
) -> None:
    conn = sqlite3.connect(stand_ins.company.path)
    conn.execute("ALTER TABLE AR_Customer DROP COLUMN SalespersonNo")
    conn.close()

    reopened = SageCompany(stand_ins.company.path)

    assert reopened.get_customer("01", "ABF")["SalespersonNo"] == ""
