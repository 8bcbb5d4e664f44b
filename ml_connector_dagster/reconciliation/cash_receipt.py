"""One claimed payment's cash receipt, asked of Sage exactly once.

Sage is asked first whether the receipt exists: a run that died after the write, or a write whose outcome
was unknown, is recovered by recording that receipt, never by writing again. Otherwise the customer's open
invoices are re-read through the agent and decided again on Sage's state *now* (or an operator's
allocation is checked against them), the request is recorded, then CreateCashReceipt is called with the
payment id as idempotency key. The receipt Sage returns is compared with what was asked before the payment
is marked posted.

Both read each invoice's live open amount, `Balance - PaymentsToday`: Sage lowers `Balance` only at the
journal update, and `PaymentsToday` holds every receipt entered before it (people's and ours). Should Sage
still refuse the write ("The invoice balance was exceeded"), the payment is held `sage_rejected` with Sage's
message.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from ..lifecycle import NOT_COLLECTED_STATUSES
from ..matching import INVOICE_TYPES, decide_for_customer
from ..sage100 import (
    AgentClient,
    CashReceipt,
    CashReceiptRequest,
    InvoiceRecord,
    ReceiptLine,
    SageCompanyError,
    SageError,
    SageLogonError,
    SageUnavailable,
    SageWriteRejected,
)
from .claims import ClaimedPayment
from .evaluate import match_settings
from .posting import Allocation, AllocationError, PaymentRow, PostingOutcome
from .receipt_check import invoice_key, lines_of, receipt_differences, receipt_view, request_record

# Sage cannot be used at all: unreachable, or it refuses our logon or company code (fix the settings). Nothing
# about the payment is wrong, so it is not held; it waits, and the pass stops after a few in a row.
SAGE_DOWN = (SageUnavailable, SageLogonError, SageCompanyError)
MISSING_FROM_WAREHOUSE = (
    "the payment is not in the warehouse (not fetched yet, or the warehouse was rebuilt); "
    "it stays as it was and the next write-back tries again - materialize gocardless/payments "
    "if it stays so"
)


class _Plan(NamedTuple):
    """What a write-back is about to ask of Sage: the receipt's lines, by which rule and why, and its amount."""

    lines: list[ReceiptLine]
    rule: str | None
    why: str
    home_amount: Decimal
    changed: dict[str, Any] | None = None  # the evaluation's allocations and what reduced them, if they changed


@dataclass(kw_only=True)
class CashReceiptAttempt(ClaimedPayment):
    """One claimed payment's write-back through the agent; every way out is ClaimedPayment's, and releases
    the claim (or notices it was lost)."""

    agent: AgentClient
    payment: PaymentRow | None
    sage_customer: str | None = None

    @property
    def customer(self) -> str | None:
        return self.sage_customer or self.entry.sage_customer

    def run(self) -> PostingOutcome:
        """Ask Sage first; then record what is there, or follow the payment's path without a receipt.

        A payment missing from the warehouse is deferred, not held: our own copy of GoCardless lags or was
        rebuilt, nothing about the payment is wrong and there is nothing for a person to decide. It stays
        as it was (`matched`), the audit says why (cash_receipt.deferred, payment_not_in_warehouse) and the
        next pass tries again, after gocardless/payments has fetched it. A hold would have someone act on
        what the next poll fixes, and `amount_mismatch` (the old reason) was false.
        """
        payment = self.payment
        if payment is None:
            return self._defer("payment_not_in_warehouse", MISSING_FROM_WAREHOUSE)
        try:
            existing = self.agent.find_cash_receipt(self.pid)
        except SAGE_DOWN as exc:
            return self._defer("sage_unavailable", str(exc), unreachable=True)
        except SageError as exc:
            return self._hold("sage_rejected", f"Sage refused the request: {exc}", {"sage_message": str(exc)})
        if existing is not None:  # written before (a run died after the write): check it, record it, write nothing
            return self._found(payment, existing)
        if payment.get("status") in NOT_COLLECTED_STATUSES:  # never posted, and the money never came
            return self._not_collected(payment)
        return self._write(payment)

    # --- the receipt is in Sage already ---------------------------------------------------------------------

    def _found(self, payment: PaymentRow, receipt: CashReceipt) -> PostingOutcome:
        asked = self.entry.request or {"customer": self.customer, "amount": self.entry.home_amount}
        differences = receipt_differences(asked, receipt)
        if differences:
            return self._mismatch(asked, receipt, differences)
        return self._record(payment, receipt, lines_of(receipt), self.entry.rule, note="found existing receipt")

    # --- writing it -----------------------------------------------------------------------------------------

    def _write(self, payment: PaymentRow) -> PostingOutcome:
        customer = self.customer
        if customer is None:
            return self._hold("customer_not_found", "no Sage customer is resolved for this payment", {})
        division, customer_no = customer.split("-", 1)
        try:
            invoices = self.agent.get_open_invoices(division, customer_no)
        except SAGE_DOWN as exc:
            return self._defer("sage_unavailable", str(exc), unreachable=True)
        except SageError as exc:
            return self._hold("sage_rejected", f"Sage refused the request: {exc}", {"sage_message": str(exc)})
        self.store.audit.append(
            "sage.open_invoices",
            self.pid,
            {
                "customer": customer,
                "invoices": [
                    {
                        "invoice_no": i.InvoiceNo,
                        "invoice_type": i.InvoiceType,
                        "balance": str(i.Balance),
                        "payments_today": str(i.PaymentsToday),
                        "open_amount": str(open_amount(i)),
                    }
                    for i in invoices
                ],
            },
            actor=self.actor,
        )
        plan = self._plan(payment, customer, invoices)
        if isinstance(plan, PostingOutcome):
            return plan
        request = CashReceiptRequest(
            idempotency_key=self.pid,
            deposit_date=datetime.now(UTC).date(),
            bank_code=self.settings.bank_code,
            ar_division_no=division,
            customer_no=customer_no,
            amount=plan.home_amount,
            reference=(payment.get("reference") or self.pid)[:30],
            lines=tuple(plan.lines),
        )
        return self._send(payment, request, plan.rule, plan.why, plan.changed)

    def _plan(self, payment: PaymentRow, customer: str, invoices: list[InvoiceRecord]) -> _Plan | PostingOutcome:
        """The lines to write: the operator's, or the rules' decision on Sage's invoices as they are now."""
        if self.allocations is not None:  # an AllocationError ends the attempt: see ClaimedPayment.release
            if not self.entry.home_amount:
                raise AllocationError(
                    "the payment has no amount in home currency (currency unsupported); it cannot be applied"
                )
            home_amount = Decimal(self.entry.home_amount)
            lines = _operator_lines(self.allocations, invoices, home_amount)
            return _Plan(lines, "operator", "applied by an operator", home_amount)
        decision = decide_for_customer(
            {**payment, "sage_customer": customer},
            [dataclasses.asdict(i) for i in invoices],
            match_settings(self.settings),
        )
        if not decision.matched or decision.home_amount is None:  # a matched decision has its amount
            details: dict[str, Any] = {"candidates": decision.candidates, "sage_customer": customer}
            unposted = _unposted(invoices)
            if unposted:
                details["unposted"] = unposted
                details.update(self._entries(customer, unposted))
            return self._hold(decision.reason, decision.explanation, details)
        lines = [ReceiptLine(a["invoice_no"], a["invoice_type"], a["amount"]) for a in decision.allocations]
        return _Plan(
            lines, decision.rule, decision.explanation, decision.home_amount, self._changed(customer, invoices, lines)
        )

    def _changed(self, customer: str, invoices: list[InvoiceRecord], lines: list[ReceiptLine]) -> dict[str, Any] | None:
        """When the re-check applies the payment otherwise than the evaluation did and unposted receipts reduce
        one of the invoices either touches: the evaluation's allocations and those invoices, their receipts in
        entry named (`entries`) as for a hold."""
        decided = self.entry.allocations or []
        if not decided or _applied(decided) == _applied(dataclasses.asdict(line) for line in lines):
            return None
        touched = {invoice_key(a["invoice_no"]) for a in decided} | {invoice_key(line.invoice_no) for line in lines}
        unposted = [u for u in _unposted(invoices) if invoice_key(u["invoice_no"]) in touched]
        if not unposted:
            return None
        return {"decided": decided, "unposted": unposted, **self._entries(customer, unposted)}

    def _entries(self, customer: str, unposted: list[dict[str, Any]]) -> dict[str, Any]:
        """Name the receipts in entry behind each invoice's PaymentsToday (GetUnpostedReceipts), in place in
        `unposted`: `entries` per invoice. Only for the audit: if the agent cannot say (an agent older than the
        operation, Sage unavailable), the decision stands and `entries_unavailable` says why."""
        division, customer_no = customer.split("-", 1)
        try:
            lines = self.agent.get_unposted_receipts(division, customer_no)
        except Exception as exc:  # noqa: BLE001 - naming the receipts is for the audit; never fails the posting
            return {"entries_unavailable": _unavailable(exc)}
        by_invoice: dict[tuple[str, str], list[dict[str, str]]] = {}
        for line in lines:
            by_invoice.setdefault((invoice_key(line.invoice_no), line.invoice_type), []).append(
                {
                    "deposit": line.deposit_no,
                    "check_no": line.check_no,
                    "date": line.deposit_date.isoformat() if line.deposit_date else "",
                    "amount": str(line.amount_posted),
                    "by": line.idempotency_key or "person",
                }
            )
        for invoice in unposted:
            invoice["entries"] = by_invoice.get((invoice_key(invoice["invoice_no"]), invoice["invoice_type"]), [])
        return {}

    def _send(
        self,
        payment: PaymentRow,
        request: CashReceiptRequest,
        rule: str | None,
        why: str,
        changed: dict[str, Any] | None = None,
    ) -> PostingOutcome:
        asked = request_record(request)
        if not self.store.ledger.transition(self.pid, ["posting"], owner=self.owner, request=asked):
            return self._lost()
        self.store.audit.append(
            "cash_receipt.requested",
            self.pid,
            {
                **asked,
                "operator_allocations": [dataclasses.asdict(a) for a in self.allocations]
                if self.allocations is not None
                else None,
                **({"decision_changed": changed} if changed else {}),
            },
            actor=self.actor,
        )
        self.sent = True
        try:
            receipt = self.agent.create_cash_receipt(request)
        except SageWriteRejected as exc:
            return self._rejected(asked, exc)
        except SageUnavailable as exc:  # includes SageOutcomeUnknown: it may have been written
            return self._unknown(exc)
        except (SageLogonError, SageCompanyError) as exc:  # refused before anything was written
            return self._defer("sage_unavailable", str(exc), unreachable=True)
        except SageError as exc:
            return self._hold(
                "sage_rejected", f"Sage refused the request: {exc}", {"sage_message": str(exc), "asked": asked}
            )
        differences = receipt_differences(asked, receipt)
        if differences:
            return self._mismatch(asked, receipt, differences)
        return self._record(
            payment,
            receipt,
            asked["lines"],
            rule,
            explanation=why,
            sage_customer=asked["customer"],
            home_amount=asked["amount"],
        )

    # --- Sage's answer is not the receipt asked for -------------------------------------------------------

    def _mismatch(self, asked: dict[str, Any], receipt: CashReceipt, differences: list[str]) -> PostingOutcome:
        return self._hold(
            "sage_rejected",
            "Sage holds a cash receipt under this payment's key that differs from "
            f"what was asked: {'; '.join(differences)}; check it in Sage before anything else",
            {"asked": asked, "sage_has": receipt_view(receipt), "differences": differences},
        )

    def _rejected(self, asked: dict[str, Any], exc: SageWriteRejected) -> PostingOutcome:
        details: dict[str, Any] = {"sage_message": str(exc), "asked": asked}
        try:  # a rejection may mean a receipt already holds this key: show it beside what was asked
            has = self.agent.find_cash_receipt(self.pid)
        except SageError:
            has = None
        if has is not None:
            details["sage_has"] = receipt_view(has)
        return self._hold("sage_rejected", f"Sage refused the cash receipt: {exc}", details)


def open_amount(invoice: InvoiceRecord) -> Decimal:
    """What is still available on an invoice in Sage now: Balance less the receipts entered but not posted."""
    return invoice.Balance - invoice.PaymentsToday


def _applied(allocations: Iterable[dict[str, Any]]) -> set[tuple[str, str, Decimal]]:
    return {(invoice_key(a["invoice_no"]), a["invoice_type"], Decimal(str(a["amount"]))) for a in allocations}


def _unavailable(exc: Exception) -> str:
    """Why the receipts in entry could not be named, in words an operator can act on."""
    text = str(exc)
    if "GetUnpostedReceipts" in text or "Unknown operation" in text:
        return f"the agent does not offer GetUnpostedReceipts (an older agent; upgrade it): {text}"
    if isinstance(exc, SageError):
        return f"the agent could not list the unposted receipts: {text}"
    return f"listing the unposted receipts failed: {type(exc).__name__}: {text}"


def _unposted(invoices: Iterable[InvoiceRecord]) -> list[dict[str, Any]]:
    """The customer's invoices with a Balance that receipts entered but not posted reduce, as a hold shows them."""
    return [
        {
            "invoice_no": i.InvoiceNo,
            "invoice_type": i.InvoiceType,
            "balance": str(i.Balance),
            "payments_today": str(i.PaymentsToday),
            "open_amount": str(open_amount(i)),
        }
        for i in invoices
        if i.InvoiceType in INVOICE_TYPES and i.Balance > 0 and i.PaymentsToday != 0
    ]


# --- an operator's allocation ---------------------------------------------------------------------------------------


def _operator_lines(
    chosen: Sequence[Allocation], invoices: Iterable[InvoiceRecord], home_amount: Decimal
) -> list[ReceiptLine]:
    """An operator's allocation checked against Sage's current invoices' open amounts (Balance less
    PaymentsToday); unstated amounts fill oldest first."""
    by_no = {invoice_key(i.InvoiceNo): i for i in invoices if i.InvoiceType in INVOICE_TYPES}
    picked = []
    for choice in chosen:
        invoice = by_no.get(invoice_key(choice.invoice_no))
        if invoice is None:
            raise AllocationError(f"invoice {choice.invoice_no} is not an open invoice of this customer in Sage")
        available = open_amount(invoice)
        if available <= 0:
            raise AllocationError(_nothing_open(invoice))
        if choice.amount is not None and choice.amount > available:
            raise AllocationError(
                f"{choice.amount} is more than invoice {invoice.InvoiceNo}'s open amount {available}"
                + _less_unposted(invoice)
            )
        picked.append((invoice, choice.amount))
    remaining = home_amount - sum((a for _, a in picked if a is not None), Decimal("0"))
    lines = []
    oldest_first = sorted(
        picked, key=lambda p: (p[0].InvoiceDueDate or date.min, p[0].InvoiceDate or date.min, p[0].InvoiceNo)
    )
    for invoice, amount in oldest_first:
        if amount is None:
            amount = min(open_amount(invoice), remaining)
            remaining -= amount
        if amount > 0:
            lines.append(ReceiptLine(invoice.InvoiceNo, invoice.InvoiceType, amount))
    total = sum((line.amount for line in lines), Decimal("0"))
    if total != home_amount:
        raise AllocationError(
            f"the allocations add up to {total} but the payment is {home_amount}; "
            "name more invoices or give amounts that add up to the payment"
        )
    return lines


def _nothing_open(invoice: InvoiceRecord) -> str:
    if invoice.Balance <= 0:
        return f"invoice {invoice.InvoiceNo} has no balance left (already collected)"
    return (
        f"invoice {invoice.InvoiceNo} has nothing open: its balance {invoice.Balance} is consumed by unposted "
        f"receipts ({invoice.PaymentsToday} entered in Sage, not posted by the journal update yet)"
    )


def _less_unposted(invoice: InvoiceRecord) -> str:
    if invoice.PaymentsToday == 0:
        return ""
    return f" (balance {invoice.Balance} less {invoice.PaymentsToday} of unposted receipts)"
