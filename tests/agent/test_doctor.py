"""The doctor tries everything the BOI backend uses: every task, object, field and method the backend touches while
it lists, writes, recovers and reverses receipts is among what `agent doctor` checks on a server.

Both run against the recording fake of Sage's COM objects; what each touched is read from the fake's record.
"""

from __future__ import annotations

from datetime import date

from ml_connector_dagster.agent import BOIBackend, BOINames
from ml_connector_dagster.agent.doctor import Doctor
from ml_connector_dagster.agent.doctor_report import Probe
from ml_connector_dagster.sage100.model import Credentials

from support.boi_fake import HOME, RECEIPTS, TODAY, FakeSage, FakeVariant
from support.sage import MakeRequest

FIELD_METHODS = ("nGetValue", "nSetValue", "nSetKeyValue")
CALLED_METHODS = ("nGetNextDepositNo", "nSelectBatch", "nSelectNewBatch")


def touched(sage: FakeSage) -> dict[str, set[tuple[str, ...]]]:
    """What was used, from the fake's record: tasks, objects, (object, field) and (object, method) pairs."""
    return {
        "tasks": {a for o, m, a in sage.calls if m == "nLookupTask"},
        "objects": {(a[0],) for o, m, a in sage.calls if m == "NewObject"},
        "fields": {(o, a[0]) for o, m, a in sage.calls if m in FIELD_METHODS},
        "methods": {(o, m) for o, m, _ in sage.calls if m in CALLED_METHODS}
        | {(o, a[0]) for o, m, a in sage.calls if m == "GetIDsOfNames" and a[0] in CALLED_METHODS},
    }


def test_the_doctor_checks_every_task_object_field_and_method_the_backend_uses(
    backend: BOIBackend, sage: FakeSage, creds: Credentials, make_request: MakeRequest
) -> None:
    sage.set_options(require_deposit_amount=True, batch_entry=True)
    backend.list_customers(creds, None, None, 100)
    backend.list_open_invoices(creds, None, None, 100)
    backend.create_cash_receipt(creds, make_request("PM1", lines=(("0100030", "100.00"),)))
    backend.ledger.claim(make_request("PM2", lines=(("0100031", "10.00"),)))  # an interrupted write: recovered
    backend.find_cash_receipt(creds, "PM2")
    sage.update_journal()
    backend.reverse_cash_receipt(creds, "PM1", "chargeback")  # posted: a negative receipt
    backend.create_cash_receipt(creds, make_request("PM3", lines=(("0100031", "10.00"),)))
    backend.reverse_cash_receipt(creds, "PM3", "refund")  # unposted: deleted
    assert sage.tables[RECEIPTS]  # the flows above did write

    checked = FakeSage()
    checked.set_options(require_deposit_amount=True, batch_entry=True)
    Doctor(checked.dispatch, HOME, BOINames(), creds, Probe(TODAY, "A"), FakeVariant).run()

    used, tried = touched(sage), touched(checked)
    assert {kind: used[kind] - tried[kind] for kind in used} == {kind: set() for kind in used}


def test_the_doctor_uses_the_date_it_is_given(sage: FakeSage, creds: Credentials) -> None:
    Doctor(sage.dispatch, HOME, BOINames(), creds, Probe(date(2027, 1, 4), "A"), FakeVariant).run()

    assert sage.args("SY_Session", "nSetDate") == [("A/R", "20270104")]
