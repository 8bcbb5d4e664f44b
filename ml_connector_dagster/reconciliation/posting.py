"""Write-back: a matched payment becomes one cash receipt in Sage, exactly once.

For each payment: claim it in the ledger (compare-and-set), ask the agent whether its receipt already
exists, re-read the customer's open invoices through the agent and decide again on Sage's state *now*,
then CreateCashReceipt with the payment id as idempotency key. The client never repeats a write blindly
(it asks FindCashReceipt first), and the agent answers a repeated key with the first receipt.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Any, Callable, Iterable, Sequence

import duckdb

from ..matching import decide_for_customer
from ..sage100 import (
    AgentClient,
    CashReceipt,
    CashReceiptRequest,
    InvoiceRecord,
    ReceiptLine,
    SageError,
    SageOutcomeUnknown,
    SageUnavailable,
    SageWriteRejected,
)
from ..settings import Settings
from ..store import Store
from ..store.ledger import LedgerEntry
from .evaluate import PAYMENT_COLUMNS, match_settings

POSTABLE = ("matched", "posting")
APPLICABLE = ("matched", "posting", "held")


@dataclass(frozen=True)
class PostingOutcome:
    payment_id: str
    status: str  # posted | held | unknown | skipped
    reason: str | None = None
    receipt_id: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class Allocation:
    """An operator's choice: an invoice number and, optionally, the amount to apply to it."""

    invoice_no: str
    amount: Decimal | None = None


class AllocationError(ValueError):
    """An operator's allocation does not fit the payment or Sage's invoices; the message says how."""


def payment_rows(conn: duckdb.DuckDBPyConnection, payment_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The payments as last fetched from GoCardless, keyed by id (the re-check needs their references)."""
    frame = conn.execute(f"SELECT {PAYMENT_COLUMNS} FROM gocardless_payments p WHERE p.id IN (SELECT unnest(?))",
                         [list(payment_ids)]).df()
    rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
    return {r["id"]: r for r in rows}


def post_matched(store: Store, agent: AgentClient, settings: Settings, payments: Callable[[Sequence[str]], dict],
                 actor: str = "system") -> list[PostingOutcome]:
    """Post every matched payment (and retry those left `posting` by an interrupted run)."""
    entries = [e for status in POSTABLE for e in store.ledger.list(status=status)]
    rows = payments([e.payment_id for e in entries]) if entries else {}
    return [post_payment(store, agent, settings, e, rows.get(e.payment_id), actor=actor) for e in entries]


def post_payment(store: Store, agent: AgentClient, settings: Settings, entry: LedgerEntry,
                 payment: dict[str, Any] | None, actor: str = "system", allocations: Sequence[Allocation] | None = None,
                 sage_customer: str | None = None) -> PostingOutcome:
    """Post one payment; `allocations`/`sage_customer` are an operator's choice (review apply)."""
    pid = entry.payment_id
    allowed = APPLICABLE if allocations is not None else POSTABLE
    if entry.status not in allowed or not store.ledger.transition(pid, [entry.status], status="posting"):
        return PostingOutcome(pid, "skipped", message=f"status is {entry.status}, not one of {', '.join(allowed)}")
    if payment is None:
        return _hold(store, pid, "amount_mismatch", "the payment is not in the warehouse; re-run gocardless/payments",
                     {}, actor)
    customer = sage_customer or entry.sage_customer
    store.audit.append("cash_receipt.requested", pid, {"sage_customer": customer, "operator_allocations":
                       [dataclasses.asdict(a) for a in allocations] if allocations is not None else None}, actor=actor)
    try:
        existing = agent.find_cash_receipt(pid)
        if existing is not None:  # written before (a run died after the write): record it, write nothing
            return _posted(store, pid, existing, entry.allocations, entry.rule, actor, note="found existing receipt")
        if customer is None:
            return _hold(store, pid, "customer_not_found", "no Sage customer is resolved for this payment", {}, actor)
        division, customer_no = customer.split("-", 1)
        invoices = agent.get_open_invoices(division, customer_no)
        store.audit.append("sage.open_invoices", pid, {"customer": customer, "invoices": [
            {"invoice_no": i.InvoiceNo, "invoice_type": i.InvoiceType, "balance": str(i.Balance)} for i in invoices]},
            actor=actor)
        home_amount = Decimal(entry.home_amount) if entry.home_amount else None
        if allocations is not None:
            lines, rule, why = _operator_lines(allocations, invoices, home_amount), "operator", "applied by an operator"
        else:
            decision = decide_for_customer({**payment, "sage_customer": customer},
                                           [_invoice_dict(i) for i in invoices], match_settings(settings))
            if not decision.matched:
                return _hold(store, pid, decision.reason, decision.explanation,
                             {"candidates": decision.candidates, "sage_customer": customer}, actor)
            lines = [ReceiptLine(a["invoice_no"], a["invoice_type"], a["amount"]) for a in decision.allocations]
            rule, why, home_amount = decision.rule, decision.explanation, decision.home_amount
        request = CashReceiptRequest(
            idempotency_key=pid, deposit_date=datetime.now(timezone.utc).date(), bank_code=settings.sage_bank_code,
            ar_division_no=division, customer_no=customer_no, amount=home_amount,
            reference=(payment.get("reference") or pid)[:30], lines=tuple(lines))
        receipt = agent.create_cash_receipt(request)
    except AllocationError as exc:
        store.ledger.transition(pid, ["posting"], status=entry.status)
        raise exc
    except SageWriteRejected as exc:
        return _hold(store, pid, "sage_rejected", f"Sage refused the cash receipt: {exc}", {"sage_message": str(exc)}, actor)
    except (SageOutcomeUnknown, SageUnavailable) as exc:
        store.audit.append("cash_receipt.outcome_unknown", pid, {"error": str(exc)}, actor=actor)
        return PostingOutcome(pid, "unknown", message=str(exc))  # stays `posting`: the next run asks Sage first
    except SageError as exc:
        return _hold(store, pid, "sage_rejected", f"Sage refused the request: {exc}", {"sage_message": str(exc)}, actor)
    allocations_out = [{"invoice_no": l.invoice_no, "invoice_type": l.invoice_type, "amount": str(l.amount)} for l in lines]
    return _posted(store, pid, receipt, allocations_out, rule, actor, explanation=why, sage_customer=customer,
                   home_amount=str(home_amount), operator=allocations is not None)


def _posted(store: Store, pid: str, receipt: CashReceipt, allocations: list, rule: str | None, actor: str,
            note: str | None = None, operator: bool = False, **values: Any) -> PostingOutcome:
    record = {"receipt_id": receipt.receipt_id, "deposit_no": receipt.deposit_no, "check_no": receipt.check_no,
              "bank_code": receipt.bank_code, "deposit_date": str(receipt.deposit_date), "amount": str(receipt.amount)}
    store.ledger.transition(pid, ["posting"], status="posted", reason=None, receipt=record, allocations=allocations,
                            rule=rule, **values)
    store.audit.append("cash_receipt.created", pid, {**record, "allocations": allocations, "note": note}, actor=actor)
    for item in store.review.open_for(pid):
        if item.kind in ("held", "processing_failed"):
            store.review.close(item.id, "applied" if operator else "resolved", by=actor, note=note or "posted")
    return PostingOutcome(pid, "posted", receipt_id=receipt.receipt_id)


def _hold(store: Store, pid: str, reason: str | None, why: str, details: dict[str, Any], actor: str) -> PostingOutcome:
    store.ledger.transition(pid, ["posting"], status="held", reason=reason, explanation=why)
    entry = store.ledger.get(pid)
    store.review.open_item(pid, "held", reason, {
        "payment_id": pid, "gocardless_customer": entry.gocardless_customer, "amount_minor": entry.amount_minor,
        "currency": entry.currency, "home_amount": entry.home_amount, "reason": reason, "explanation": why,
        "checked_at_posting": True, **details})
    store.audit.append("payment.held", pid, {"reason": reason, "explanation": why, **details}, actor=actor)
    return PostingOutcome(pid, "held", reason=reason, message=why)


def _invoice_dict(invoice: InvoiceRecord) -> dict[str, Any]:
    return dataclasses.asdict(invoice)


def _operator_lines(chosen: Sequence[Allocation], invoices: Iterable[InvoiceRecord], home_amount: Decimal | None) -> list[ReceiptLine]:
    """An operator's allocation checked against Sage's current invoices; unstated amounts fill oldest first."""
    if home_amount is None:
        raise AllocationError("the payment has no amount in home currency (currency unsupported); it cannot be applied")
    by_no = {_norm(i.InvoiceNo): i for i in invoices if i.InvoiceType in ("IN", "DM", "FC")}
    picked = []
    for choice in chosen:
        invoice = by_no.get(_norm(choice.invoice_no))
        if invoice is None:
            raise AllocationError(f"invoice {choice.invoice_no} is not an open invoice of this customer in Sage")
        if invoice.Balance <= 0:
            raise AllocationError(f"invoice {invoice.InvoiceNo} has no balance left (already collected)")
        if choice.amount is not None and choice.amount > invoice.Balance:
            raise AllocationError(f"{choice.amount} is more than invoice {invoice.InvoiceNo}'s balance {invoice.Balance}")
        picked.append((invoice, choice.amount))
    remaining = home_amount - sum((a for _, a in picked if a is not None), Decimal("0"))
    lines = []
    for invoice, amount in sorted(picked, key=lambda p: (p[0].InvoiceDueDate or date.min, p[0].InvoiceDate or date.min, p[0].InvoiceNo)):
        if amount is None:
            amount = min(invoice.Balance, remaining)
            remaining -= amount
        if amount > 0:
            lines.append(ReceiptLine(invoice.InvoiceNo, invoice.InvoiceType, amount))
    total = sum((l.amount for l in lines), Decimal("0"))
    if total != home_amount:
        raise AllocationError(f"the allocations add up to {total} but the payment is {home_amount}; "
                              "name more invoices or give amounts that add up to the payment")
    return lines


def _norm(invoice_no: str) -> str:
    return invoice_no.strip().upper().lstrip("0")
