"""The client of Sage's own eBusiness Web Services: contract information and customers.

Used by `ml-connector ping` (does the logon work?) and for customers. Creating a customer is never
retried (Sage has no idempotency key for it); updating one is, since setting the same values twice is
harmless. Money goes out as Decimal or text, never float.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from zeep.helpers import serialize_object

from .clients import SoapClient
from .errors import SageFault


@dataclass(frozen=True)
class ContractInfo:
    contract_version: int
    assembly_version: str


class EBusinessClient(SoapClient):
    """Sage's own eBusiness Web Services (customers). Create is not retried: Sage has no idempotency key."""

    def get_contract_information(self) -> ContractInfo:
        r = self._read("GetContractInformation", logon=False)
        return ContractInfo(int(r.ContractVersion), r.AssemblyVersion)

    def get_customer(self, ar_division_no: str, customer_no: str) -> dict[str, Any]:
        """The Customer contract as a dict; OtherFields flattened to {MasFieldName: Value}."""
        r = serialize_object(self._read("GetCustomer", arDivisionNo=ar_division_no, customerNo=customer_no), dict)
        other = (r.pop("OtherFields", None) or {}).get("Field") or []
        return {**r, "OtherFields": {f["MasFieldName"]: f["Value"] for f in other}}

    def get_next_customer_no(self) -> str:
        """Sage's next customer number, for any division. Sage reserves it: every call moves its counter on,
        so ask only when about to create a customer (a retry after a lost answer skips a number)."""
        number = self._read("GetNextCustomerNo")
        if not isinstance(number, str):
            raise SageFault(f"GetNextCustomerNo answered {type(number).__name__}, not a customer number")
        return number

    def create_customer(self, customer: Mapping[str, Any]) -> None:
        """A new customer: `ARDivisionNo`, `CustomerNo` (e.g. from `get_next_customer_no`), `CustomerName` and
        `SalespersonNo` at least; Sage refuses one without a salesperson (SageWriteRejected). Not retried."""
        self._ready()
        self._call("CreateCustomer", write=True, customer=_customer_contract(customer))

    def update_customer(self, customer: Mapping[str, Any]) -> None:
        """Setting the same values twice is harmless, so this retries like a read."""
        self._read("UpdateCustomer", write=True, customer=_customer_contract(customer))


def _customer_contract(customer: Mapping[str, Any]) -> dict[str, Any]:
    for name, value in customer.items():
        if isinstance(value, float):
            raise ValueError(f"customer {name}: {value!r} is a float; pass money as Decimal or a string")
    other = customer.get("OtherFields")
    if isinstance(other, Mapping):  # accept {MasFieldName: Value}, as get_customer returns it
        customer = {**customer, "OtherFields": {"Field": [{"MasFieldName": k, "Value": v} for k, v in other.items()]}}
    return dict(customer)
