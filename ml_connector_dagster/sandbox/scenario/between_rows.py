"""What lies between a scenario's rows: links between files, refund start steps, Sage changes in play order.

Each check adds its problems as `file:line: column: what is wrong` once every row has been read on its
own (csv_files.py, rows.py). Used by reading.py.
"""

from __future__ import annotations

from decimal import Decimal

from .model import COLLECTED_BY, GoCardlessPayment, GoCardlessRefund, SageChange, SageInvoice, Scenario
from .rows import Table


def check_references(tables: dict[str, Table], problems: list[str]) -> None:
    """Every link points at a row that exists (invoice -> customer, payment -> mandate -> customer...)."""

    def keys(name: str, *cols: str) -> set[str]:
        return {"-".join(row[c] for c in cols) for _, row in tables[name].rows}

    checks = [
        (
            "sage_invoices.csv",
            ("ARDivisionNo", "CustomerNo"),
            keys("sage_customers.csv", "ARDivisionNo", "CustomerNo"),
            "CustomerNo",
            "no such customer in sage_customers.csv",
        ),
        (
            "gocardless_mandates.csv",
            ("customer",),
            keys("gocardless_customers.csv", "id"),
            "customer",
            "no such customer in gocardless_customers.csv",
        ),
        (
            "gocardless_payments.csv",
            ("mandate",),
            keys("gocardless_mandates.csv", "id"),
            "mandate",
            "no such mandate in gocardless_mandates.csv",
        ),
        (
            "gocardless_refunds.csv",
            ("payment",),
            keys("gocardless_payments.csv", "id"),
            "payment",
            "no such payment in gocardless_payments.csv",
        ),
    ]
    for name, cols, known, column, message in checks:
        for line, row in tables[name].rows:
            value = "-".join(row[c] for c in cols)
            if value not in known:
                problems.append(f"{name}:{line}: {column}: {value!r}: {message}")


def check_refund_starts(scenario: Scenario, refunds: list[tuple[int, GoCardlessRefund]], problems: list[str]) -> None:
    """A refund never starts before its payment has been collected (its `confirmed` or `paid_out` step)."""
    payments = {p.id: p for p in scenario.gocardless_payments}
    for line, refund in refunds:
        payment = payments.get(refund.payment)
        if payment is None or not refund.lifecycle:
            continue  # a missing payment is reported by the links check; an empty lifecycle never starts
        collected = _collected_step(scenario, payment)
        start = scenario.refund_start(refund)
        where = f"gocardless_refunds.csv:{line}"
        if collected is None:
            problems.append(
                f"{where}: payment: {payment.id} is never collected (its lifecycle has no "
                f"{' or '.join(COLLECTED_BY)}), so it cannot be refunded"
            )
        elif start < collected:
            problems.append(
                f"{where}: start_step: the refund starts at step {start}, before its payment {payment.id} "
                f"is collected at step {collected}"
            )


def _collected_step(scenario: Scenario, payment: GoCardlessPayment) -> int | None:
    for offset, action in enumerate(payment.lifecycle):
        if action in COLLECTED_BY:
            return scenario.payment_start(payment) + offset
    return None


def check_changes(scenario: Scenario, problems: list[str]) -> None:
    """Sage changes in the order they are played: each one's customer or invoice exists by then (in the Sage
    files or added by an earlier change) or, when added, does not; receipts keyed by people never take an
    invoice beyond its open amount (Balance - PaymentsToday), which Sage would refuse."""
    customers: dict[tuple[str, str], str] = {
        (c.ARDivisionNo, c.CustomerNo): "sage_customers.csv" for c in scenario.sage_customers
    }
    open_amounts: dict[tuple[str, str, str, str], Decimal] = {
        _invoice_key(i): i.Balance - i.PaymentsToday for i in scenario.sage_invoices
    }
    for change in sorted(scenario.sage_changes, key=lambda c: (c.step, c.line)):
        where = f"sage_changes.csv:{change.line}"
        customer = (change.ARDivisionNo, change.CustomerNo)
        invoice = _invoice_key(change)
        if change.action == "add_customer":
            if customer in customers:
                problems.append(f"{where}: CustomerNo: {'-'.join(customer)} already exists ({customers[customer]})")
            customers.setdefault(customer, f"added by sage_changes.csv:{change.line}")
            continue
        if change.action == "post_journal":
            continue  # Balance and PaymentsToday fall together: the open amounts do not change
        if customer not in customers:
            problems.append(
                f"{where}: CustomerNo: {'-'.join(customer)}: no such customer in sage_customers.csv "
                "or added by an earlier change"
            )
            continue
        if change.action == "add_invoice":
            if invoice in open_amounts:
                problems.append(f"{where}: InvoiceNo: {'/'.join(invoice)} already exists")
            else:
                open_amounts[invoice] = change.Amount or Decimal(0)
        elif change.action == "key_receipt":
            if invoice not in open_amounts:
                problems.append(
                    f"{where}: InvoiceNo: {'/'.join(invoice)}: no such invoice in sage_invoices.csv "
                    "or added by an earlier change"
                )
                continue
            amount = change.Amount or Decimal(0)
            if amount > open_amounts[invoice]:
                problems.append(
                    f"{where}: Amount: {amount} is more than the {open_amounts[invoice]} still open on invoice "
                    f"{change.InvoiceNo} by then (Balance less receipts keyed before); Sage would refuse it"
                )
            open_amounts[invoice] -= amount


def _invoice_key(row: SageInvoice | SageChange) -> tuple[str, str, str, str]:
    return (row.ARDivisionNo, row.CustomerNo, row.InvoiceNo, row.InvoiceType)
