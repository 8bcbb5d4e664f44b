"""The check that the cash receipts in Sage are the ones the ledger records, asked of the agent.

The agent cannot list every receipt, so the check goes both ways with what it can answer:
- ledger -> Sage: each receipt the ledger records (posted, reversal required, reversed; the newest
  `CHECKED` by posting time) is looked up by its idempotency key (FindCashReceipt, the payment id): it must
  exist with the same receipt id, customer and amount, and be reversed exactly when the ledger says so;
- Sage -> ledger: the receipts still in entry for those payments' customers (GetUnpostedReceipts) that carry
  our key must belong to a payment the ledger shows as written. A receipt already posted by the journal
  update that the ledger does not know cannot be listed; `no_payment_posted_twice` covers those through the
  audit trail.
When the agent cannot be asked (not configured, unreachable) the check fails as a warning saying so.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from ..sage100 import AgentClient, CashReceipt, SageError
from ..settings import SettingsError
from ..store import Store
from ..store.ledger import WRITTEN, LedgerEntry
from .resources import OperationalStore
from .sage100 import SageAgentResource

CASH_RECEIPTS = dg.AssetKey(["reconciliation", "cash_receipts"])
RECORDED = (*WRITTEN, "reversed")  # ledger statuses with a receipt in Sage
CHECKED = 100  # newest receipts compared per evaluation: a run adds its own; each is one SOAP call
SHOWN = 50


def compare(entry: LedgerEntry, found: CashReceipt | None) -> str | None:
    """How Sage's receipt for a payment differs from the ledger's record of it (None: it does not)."""
    recorded = entry.receipt or {}
    pid = entry.payment_id
    if found is None:
        return f"{pid}: receipt {recorded.get('receipt_id')} is in the ledger, Sage has none under the key"
    problems = []
    if found.receipt_id != recorded.get("receipt_id"):
        problems.append(f"receipt {found.receipt_id} in Sage, {recorded.get('receipt_id')} in the ledger")
    customer = f"{found.ar_division_no}-{found.customer_no}"
    if entry.sage_customer and customer != entry.sage_customer:
        problems.append(f"customer {customer} in Sage, {entry.sage_customer} in the ledger")
    if recorded.get("amount") is not None and str(found.amount) != str(recorded["amount"]):
        problems.append(f"amount {found.amount} in Sage, {recorded['amount']} in the ledger")
    if (found.status == "reversed") != (entry.status == "reversed"):
        problems.append(f"{found.status} in Sage, {entry.status} in the ledger")
    return f"{pid}: {'; '.join(problems)}" if problems else None


def unknown_in_sage(agent: AgentClient, store: Store, customers: Iterable[str]) -> list[str]:
    """Our receipts still in entry in Sage (they carry a key) whose payment the ledger does not show as written."""
    found: dict[str, str] = {}
    for customer in sorted(set(customers)):
        division, _, number = customer.partition("-")
        for line in agent.get_unposted_receipts(division, number):
            if line.ours:
                found.setdefault(line.idempotency_key, f"deposit {line.deposit_no}, {customer}")
    statuses = store.ledger.statuses(list(found))
    return [
        f"{key}: in Sage ({where}), {statuses.get(key, 'not in the ledger')} in the ledger"
        for key, where in sorted(found.items())
        if statuses.get(key) not in (*RECORDED, "posting")  # posting: written, the outcome not recorded yet
    ]


def recorded_receipts(store: Store, limit: int = CHECKED) -> list[LedgerEntry]:
    """The ledger's newest `limit` receipts by posting time."""
    entries = [e for status in RECORDED for e in store.ledger.list(status=status) if e.receipt]
    return sorted(entries, key=lambda e: e.posted_at or e.updated_at, reverse=True)[:limit]


@dg.asset_check(
    asset=CASH_RECEIPTS,
    description="The receipts in Sage are the ledger's: each recorded receipt found by its key (FindCashReceipt) "
    "with the same receipt id, customer, amount and reversal; no receipt of ours in entry (GetUnpostedReceipts) "
    "that the ledger does not record. A warning when the agent cannot be asked.",
)
def receipts_match_ledger(store: OperationalStore, sage_agent: SageAgentResource) -> dg.AssetCheckResult:
    ops = store.get()
    entries = recorded_receipts(ops)
    try:
        agent = sage_agent.get_client()
        differences = [d for e in entries if (d := compare(e, agent.find_cash_receipt(e.payment_id)))]
        unknown = unknown_in_sage(agent, ops, [e.sage_customer for e in entries if e.sage_customer])
    except (SettingsError, SageError) as exc:
        return dg.AssetCheckResult(
            passed=False,
            severity=dg.AssetCheckSeverity.WARN,
            description=f"not checked: the agent could not be asked ({exc})",
            metadata={"checked": 0},
        )
    problems = differences + unknown
    return dg.AssetCheckResult(
        passed=not problems,
        description=None if not problems else f"{len(problems)} receipt(s) differ: {'; '.join(problems[:3])}",
        metadata={
            "checked": len(entries),
            "differences": len(differences),
            "unknown_in_sage": len(unknown),
            "problems": problems[:SHOWN],
        },
    )


defs = dg.Definitions(asset_checks=[receipts_match_ledger])
