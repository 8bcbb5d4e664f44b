"""A stand-in for Sage 100 eBusiness Web Services over the simulated company (WSDL at /ebusiness?wsdl).

Only the customer operations the product uses, with Sage's names and fault shapes: a wrong logon answers
with Sage's own logon-failure text, an unknown customer with CI_NoKey, a duplicate with WS_AlreadyExists.
As in Sage, `GetNextCustomerNo` reserves the number it answers, `CreateCustomer` needs a `SalespersonNo`,
and `UpdateCustomer` writes the whole record it is sent, so a field left out is blanked: callers read the
customer, change it and send all of it back. Its controls (ebusiness_controls.py) turn web services off for
the system, company or user, deny operations through role security ("No Access"), and make calls fail
inside Sage ("An exception occurred.").
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any, TypedDict

from starlette.applications import Starlette

from ..agent.soap import NO_RESULT, Args, Handler, SoapFault, SoapService, credentials_of, soap_app
from ..sage100.model import (
    EXCEPTION_TEXT,
    FAULT_LOGON,
    FAULT_NO_ACCESS,
    LOGON_FAILURE_TEXT,
    NO_ACCESS_TEXT,
    SageRuleError,
    Stamp,
    money,
)
from .ebusiness_controls import EBusinessControls, InjectedFailure
from .sage_company import CUSTOMER_FIELDS, CustomerRow, SageCompany

NAMESPACE = "http://sage.com/Sage100/eBusinessWebServices"
WSDL = Path(__file__).resolve().parents[1] / "sage100" / "wsdl" / "ebusiness.wsdl"
PATH = "/ebusiness"
OPERATIONS = ("GetContractInformation", "GetCustomer", "GetNextCustomerNo", "CreateCustomer", "UpdateCustomer")
CONTRACT_VERSION = 1
ASSEMBLY_VERSION = "ml-connector eBusiness stand-in 1.0"
CREATE_REQUIRES = ("CustomerName", "SalespersonNo")  # SalespersonNo: as a public integration found
BLANK = {"CreditLimit": "0.00", "CreditHold": "N"}  # what a left-out field becomes; any other is ""
# AR_Customer columns Sage keeps itself: GetCustomer answers them in OtherFields, and a caller sending the record
# back (as UpdateCustomer wants it) sends them too; they are not written. CurrentBalance and the DateTime*
# elements are not settable either, and are not read from a request at all.
KEPT_BY_SAGE = frozenset({"DateLastPayment", "LastPaymentAmt", "UserUpdatedKey"})
NULL_DATETIME = "1753-01-01T00:00:00"  # .NET's SqlDateTime.MinValue, which WCF services use as "blank"

log = logging.getLogger(__name__)


class ContractInformation(TypedDict):
    ContractVersion: int
    AssemblyVersion: str
    NullDateTime: str


class MasField(TypedDict):
    """An AR_Customer column the Customer contract has no element of its own for."""

    MasFieldName: str
    Value: str


class OtherFields(TypedDict):
    Field: list[MasField]


class CustomerContract(TypedDict):
    """The Customer data contract, in its element order (GetCustomerResult)."""

    ARDivisionNo: str
    CustomerNo: str
    CustomerName: str
    EmailAddress: str
    CurrentBalance: str
    CreditLimit: str
    CreditHold: bool
    CustomerStatus: str
    TermsCode: str
    SalespersonNo: str
    DateTimeCreated: datetime
    DateTimeUpdated: datetime
    OtherFields: OtherFields


class EBusinessStandIn:
    """Handlers of the stand-in; each checks logon and company first, like Sage's service does.

    Any error inside a handler that is not one of Sage's answers becomes Sage's generic fault "An exception
    occurred." (logged here with its traceback, as Sage logs it on its server); `controls` can queue such
    failures (ebusiness_controls.py).
    """

    def __init__(self, company: SageCompany, controls: EBusinessControls | None = None) -> None:
        self.company = company
        self.controls = controls or EBusinessControls(OPERATIONS)

    def service(self, path: str = PATH) -> SoapService:
        handlers: dict[str, Handler] = {
            "GetContractInformation": self.get_contract_information,
            "GetCustomer": self.get_customer,
            "GetNextCustomerNo": self.get_next_customer_no,
            "CreateCustomer": self.create_customer,
            "UpdateCustomer": self.update_customer,
        }
        return SoapService(path, WSDL, NAMESPACE, {name: _guarded(name, h) for name, h in handlers.items()})

    def _logon(self, operation: str, args: Args) -> None:
        """What Sage checks before it runs an operation, in this order; then a failure queued for it happens.

        Web services off for the system, the company or the user, or a wrong logon: Sage's logon-failure text;
        another company's code: the company fault; the user's role without access to the operation: No Access.
        """
        credentials = credentials_of(args)
        if not self.controls.web_services_enabled():
            raise SageRuleError(FAULT_LOGON, LOGON_FAILURE_TEXT)
        self.company.authorise(credentials)
        if not self.controls.may_run(operation):
            raise SageRuleError(FAULT_NO_ACCESS, NO_ACCESS_TEXT)
        self.controls.take_failure(operation)

    def get_contract_information(self, args: Args) -> ContractInformation:
        self.controls.take_failure("GetContractInformation")
        return {"ContractVersion": CONTRACT_VERSION, "AssemblyVersion": ASSEMBLY_VERSION, "NullDateTime": NULL_DATETIME}

    def get_customer(self, args: Args) -> CustomerContract:
        self._logon("GetCustomer", args)
        row = self.company.get_customer(_text(args, "arDivisionNo"), _text(args, "customerNo"))
        return _customer_contract(row)

    def get_next_customer_no(self, args: Args) -> str:
        """Like Sage's: logon and company only (no division), and each call moves the counter on."""
        self._logon("GetNextCustomerNo", args)
        return self.company.reserve_customer_no()

    def create_customer(self, args: Args) -> object:
        self._logon("CreateCustomer", args)
        customer = _nested(args, "customer")
        fields = _fields(customer)
        division, number = _text(customer, "ARDivisionNo"), _text(customer, "CustomerNo")
        self.company.create_customer(division, number, fields, required=CREATE_REQUIRES)
        return NO_RESULT

    def update_customer(self, args: Args) -> object:
        """The whole record, as Sage writes it: a settable field the customer sent leaves out is blanked."""
        self._logon("UpdateCustomer", args)
        customer = _nested(args, "customer")
        record = {name: BLANK.get(name, "") for name in CUSTOMER_FIELDS} | _fields(customer)
        self.company.update_customer(_text(customer, "ARDivisionNo"), _text(customer, "CustomerNo"), record)
        return NO_RESULT


def ebusiness_app(company: SageCompany, controls: EBusinessControls | None = None) -> Starlette:
    """The SOAP service at PATH and the stand-in's controls under /_sandbox (ebusiness_controls.py)."""
    stand_in = EBusinessStandIn(company, controls)
    return Starlette(routes=[*soap_app(stand_in.service()).routes, *stand_in.controls.routes()])


def _guarded(operation: str, handler: Handler) -> Handler:
    """Sage's answers (faults, refused values) go out as they are; any other error as Sage's generic fault."""

    def guarded(args: Args) -> Any:
        try:
            return handler(args)
        except (SoapFault, SageRuleError, ValueError):
            raise
        except InjectedFailure as exc:
            log.warning("eBusiness %s: %s", operation, exc)
        except Exception:
            log.exception("eBusiness %s failed", operation)
        # s:Server without MasFault detail: Sage's code for it is not known, its words are
        raise SoapFault("Server", EXCEPTION_TEXT, status=500, client=True)

    return guarded


def _text(args: Args, name: str) -> str:
    """A required element's text (`Args.text` refuses a missing or empty one with a client fault)."""
    value = args.text(name)
    assert value is not None, f"Args.text let a missing required element '{name}' through"
    return value


def _nested(args: Args, name: str) -> Args:
    """A required element holding others (`Args.nested` refuses a missing one with a client fault)."""
    value = args.nested(name)
    assert value is not None, f"Args.nested let a missing required element '{name}' through"
    return value


def _customer_contract(row: CustomerRow) -> CustomerContract:
    """AR_Customer columns in the Customer data contract's element order."""
    return {
        "ARDivisionNo": row["ARDivisionNo"],
        "CustomerNo": row["CustomerNo"],
        "CustomerName": row["CustomerName"],
        "EmailAddress": row["EmailAddress"],
        "CurrentBalance": row["CurrentBalance"],
        "CreditLimit": row["CreditLimit"],
        "CreditHold": row["CreditHold"] == "Y",
        "CustomerStatus": row["CustomerStatus"],
        "TermsCode": row["TermsCode"],
        "SalespersonNo": row["SalespersonNo"],
        "DateTimeCreated": Stamp(row["DateCreated"], row["TimeCreated"]).to_datetime().replace(microsecond=0),
        "DateTimeUpdated": Stamp(row["DateUpdated"], row["TimeUpdated"]).to_datetime().replace(microsecond=0),
        "OtherFields": {
            "Field": [
                {"MasFieldName": "DateLastPayment", "Value": row["DateLastPayment"]},
                {"MasFieldName": "LastPaymentAmt", "Value": row["LastPaymentAmt"]},
                {"MasFieldName": "UserUpdatedKey", "Value": row["UserUpdatedKey"]},
            ]
        },
    }


def _fields(customer: Args) -> dict[str, str]:
    """The settable columns a Customer contract carries: typed elements, then OtherFields/Field entries."""
    fields: dict[str, str] = {}
    for name in CUSTOMER_FIELDS:
        value = customer.text(name, required=False)
        if value is not None:
            fields[name] = value
    if "CreditHold" in fields:
        fields["CreditHold"] = "Y" if fields["CreditHold"] in ("true", "1") else "N"
    other = customer.nested("OtherFields", required=False)
    for field in other.children("Field") if other else []:
        name = _text(field, "MasFieldName")
        if name not in KEPT_BY_SAGE:
            fields[name] = field.text("Value", required=False) or ""
    if "CreditLimit" in fields:  # an amount, by the same rule as every other (ASCII digits, 2 decimals)
        fields["CreditLimit"] = str(money(fields["CreditLimit"], "The element 'CreditLimit'"))
    return fields
