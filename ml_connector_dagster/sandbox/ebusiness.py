"""A stand-in for Sage 100 eBusiness Web Services over the simulated company (WSDL at /ebusiness?wsdl).

Only the customer operations the product uses, with Sage's names and fault shapes: a wrong logon answers
with Sage's own logon-failure text, an unknown customer with CI_NoKey, a duplicate with WS_AlreadyExists.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from starlette.applications import Starlette

from ..agent.soap import NO_RESULT, Args, SoapFault, SoapService, credentials_of, soap_app
from ..sage100.model import FAULT_INVALID, SageRuleError, Stamp, money
from .sage_company import CUSTOMER_FIELDS, SageCompany

NAMESPACE = "http://sage.com/Sage100/eBusinessWebServices"
WSDL = Path(__file__).resolve().parents[1] / "sage100" / "wsdl" / "ebusiness.wsdl"
PATH = "/ebusiness"
CONTRACT_VERSION = 1
ASSEMBLY_VERSION = "ml-connector eBusiness stand-in 1.0"
NULL_DATETIME = "1753-01-01T00:00:00"  # .NET's SqlDateTime.MinValue, which WCF services use as "blank"


class EBusinessStandIn:
    """Handlers of the stand-in; each checks logon and company first, like Sage's service does."""

    def __init__(self, company: SageCompany) -> None:
        self.company = company

    def service(self, path: str = PATH) -> SoapService:
        return SoapService(path, WSDL, NAMESPACE, {
            "GetContractInformation": self.get_contract_information,
            "GetCustomer": self.get_customer,
            "GetNextCustomerNo": self.get_next_customer_no,
            "CreateCustomer": self.create_customer,
            "UpdateCustomer": self.update_customer,
        })

    def get_contract_information(self, args: Args) -> dict[str, Any]:
        return {"ContractVersion": CONTRACT_VERSION, "AssemblyVersion": ASSEMBLY_VERSION,
                "NullDateTime": NULL_DATETIME}

    def get_customer(self, args: Args) -> dict[str, Any]:
        self.company.authorise(credentials_of(args))
        row = self.company.get_customer(args.text("arDivisionNo"), args.text("customerNo"))
        return _customer_contract(row)

    def get_next_customer_no(self, args: Args) -> str:
        self.company.authorise(credentials_of(args))
        return self.company.next_customer_no(args.text("arDivisionNo", required=False) or "01")

    def create_customer(self, args: Args) -> object:
        self.company.authorise(credentials_of(args))
        customer = args.nested("customer")
        fields = _fields(customer)
        if not fields.get("CustomerName"):
            raise SageRuleError(FAULT_INVALID, "CustomerName is required.")
        self.company.create_customer(customer.text("ARDivisionNo"), customer.text("CustomerNo"), fields)
        return NO_RESULT

    def update_customer(self, args: Args) -> object:
        self.company.authorise(credentials_of(args))
        customer = args.nested("customer")
        fields = _fields(customer)
        if not fields:
            raise SoapFault.bad_request("The customer carries no field to change.")
        self.company.update_customer(customer.text("ARDivisionNo"), customer.text("CustomerNo"), fields)
        return NO_RESULT


def ebusiness_app(company: SageCompany) -> Starlette:
    return soap_app(EBusinessStandIn(company).service())


def _customer_contract(row: dict[str, Any]) -> dict[str, Any]:
    """AR_Customer columns in the Customer data contract's element order."""
    return {
        "ARDivisionNo": row["ARDivisionNo"], "CustomerNo": row["CustomerNo"], "CustomerName": row["CustomerName"],
        "EmailAddress": row["EmailAddress"], "CurrentBalance": row["CurrentBalance"],
        "CreditLimit": row["CreditLimit"], "CreditHold": row["CreditHold"] == "Y",
        "CustomerStatus": row["CustomerStatus"], "TermsCode": row["TermsCode"],
        "DateTimeCreated": Stamp(row["DateCreated"], row["TimeCreated"]).to_datetime().replace(microsecond=0),
        "DateTimeUpdated": Stamp(row["DateUpdated"], row["TimeUpdated"]).to_datetime().replace(microsecond=0),
        "OtherFields": {"Field": [{"MasFieldName": name, "Value": row[name]}
                                  for name in ("DateLastPayment", "LastPaymentAmt", "UserUpdatedKey")]},
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
        name = field.text("MasFieldName")
        fields[name] = field.text("Value", required=False) or ""
    if "CreditLimit" in fields:  # an amount, by the same rule as every other (ASCII digits, 2 decimals)
        fields["CreditLimit"] = str(money(fields["CreditLimit"], "The element 'CreditLimit'"))
    return fields
