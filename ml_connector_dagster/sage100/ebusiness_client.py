"""The client of Sage's own eBusiness Web Services: contract information and customers.

Used by `ml-connector ping` (does the logon work?) and for customers. Creating a customer is never
retried (Sage has no idempotency key for it); updating one is, since setting the same values twice is
harmless. An update reads the whole customer and sends it back changed, because Sage's UpdateCustomer
blanks whatever the record it is sent leaves out. Money goes out as Decimal or text, never float.
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

    def update_customer(self, ar_division_no: str, customer_no: str, changes: Mapping[str, Any]) -> dict[str, Any]:
        """Change some fields of a customer and keep the others.

        Sage's UpdateCustomer writes the whole record it is sent: a field left out is blanked. So this reads the
        whole customer (GetCustomer), merges `changes` into it (`OtherFields` by MasFieldName, as `get_customer`
        gives them) and sends all of it back; the record sent is returned. Nothing in the call detects a change
        a person saves in Sage between the read and the write: such a change is overwritten. Sending the same
        record twice is harmless, so the update is retried like a read.
        """
        for key, value in (("ARDivisionNo", ar_division_no), ("CustomerNo", customer_no)):
            if changes.get(key, value) != value:
                raise ValueError(f"{key} is the customer's key; UpdateCustomer cannot change it")
        _refuse_floats(changes)
        _refuse_floats(changes.get("OtherFields") or {})
        current = self.get_customer(ar_division_no, customer_no)
        merged = {**current, **changes, "OtherFields": {**current["OtherFields"], **(changes.get("OtherFields") or {})}}
        self._read("UpdateCustomer", write=True, customer=_customer_contract(merged))
        return merged


def _refuse_floats(values: Mapping[str, Any]) -> None:
    for name, value in values.items():
        if isinstance(value, float):
            raise ValueError(f"customer {name}: {value!r} is a float; pass money as Decimal or a string")


def _customer_contract(customer: Mapping[str, Any]) -> dict[str, Any]:
    _refuse_floats(customer)
    other = customer.get("OtherFields")
    if isinstance(other, Mapping):  # accept {MasFieldName: Value}, as get_customer returns it
        customer = {**customer, "OtherFields": {"Field": [{"MasFieldName": k, "Value": v} for k, v in other.items()]}}
    return dict(customer)
