"""Which Sage customer a GoCardless customer is: rules 1-3 of docs/reconciliation.md."""

from __future__ import annotations

from collections import Counter

import pandas as pd

from ml_connector_dagster.matching.bulk import gc_paused
from ml_connector_dagster.matching.inputs import metadata_value
from ml_connector_dagster.matching.model import CANDIDATE_LIMIT

__all__ = ["resolve_customers"]


def resolve_customers(gc_customers: pd.DataFrame, sage_customers: pd.DataFrame) -> pd.DataFrame:
    """Map every GoCardless customer to a Sage customer key, by metadata then by unique email."""
    with gc_paused():
        keys = _customer_keys(sage_customers)
        key_by_norm = {key.upper(): key for key in reversed(keys)}  # first row wins on duplicates
        emails = _norm_emails(sage_customers["EmailAddress"].tolist())
        counts = Counter(emails)
        key_by_email = {e: k for e, k in zip(emails, keys, strict=True) if e is not None and counts[e] == 1}

        meta = [_meta_customer(m) for m in _column(gc_customers, "metadata")]
        gc_emails = _norm_emails(_column(gc_customers, "email"))
        sage, resolved_by = [], []
        for m, e in zip(meta, gc_emails, strict=True):
            key = key_by_norm.get(m) if m else None
            how = "metadata" if key else None
            if key is None and e is not None:
                key = key_by_email.get(e)
                how = "email" if key else None
            sage.append(key)
            resolved_by.append(how)

        candidates: list[list[str]] = [[] for _ in sage]
        unresolved = [i for i, key in enumerate(sage) if key is None]
        if unresolved:
            names = _gc_names(gc_customers, unresolved)
            gc_unresolved = [gc_emails[i] for i in unresolved]
            finder = _CandidateFinder(sage_customers, keys, emails, gc_unresolved, names, [meta[i] for i in unresolved])
            for i, own in zip(unresolved, names, strict=True):
                candidates[i] = finder.find(gc_emails[i], own, meta[i])
        return pd.DataFrame(
            {
                "gocardless_customer": pd.Series(gc_customers["id"].tolist(), dtype=object),
                "sage_customer": pd.Series(sage, dtype=object),
                "resolved_by": pd.Series(resolved_by, dtype=object),
                "candidates": pd.Series(candidates, dtype=object),
            }
        )


def _column(frame: pd.DataFrame, name: str) -> list[object]:
    """A column as a list, or Nones when the frame does not have it."""
    return frame[name].tolist() if name in frame else [None] * len(frame)


def _customer_keys(sage_customers: pd.DataFrame) -> list[str]:
    """``"DD-CUSTNO"`` of every Sage customer (spaces trimmed)."""
    divs = sage_customers["ARDivisionNo"].tolist()
    custs = sage_customers["CustomerNo"].tolist()
    return [f"{str(d).strip()}-{str(c).strip()}" for d, c in zip(divs, custs, strict=True)]


def _norm_emails(emails: list[object]) -> list[str | None]:
    """Trimmed, lower-case emails; missing or blank ones become None (they never match)."""
    return [(e.strip().lower() or None) if isinstance(e, str) else None for e in emails]


def _meta_customer(metadata: object) -> str | None:
    """Normalised ``DD-CUSTNO`` from metadata ``sage_customer`` (upper case, spaces trimmed)."""
    value = metadata_value(metadata, "sage_customer")
    if not value or "-" not in value:
        return None
    div, cust = value.split("-", 1)
    return f"{div.strip()}-{cust.strip()}".upper()


def _gc_names(gc_customers: pd.DataFrame, rows: list[int]) -> list[list[str]]:
    """Normalised names of some GoCardless customers: company name, then "given family"."""

    company, given, family = (_column(gc_customers, c) for c in ("company_name", "given_name", "family_name"))
    names = []
    for i in rows:
        person = " ".join(x for x in (given[i], family[i]) if isinstance(x, str) and x.strip())
        names.append([x for x in (_norm_name(company[i]), _norm_name(person)) if x])
    return names


def _norm_name(name: object) -> str:
    return " ".join(name.lower().split()) if isinstance(name, str) else ""


class _CandidateFinder:
    """Likely Sage customers of unresolved GoCardless customers: same email, same name, same number.

    Indexes only the values the unresolved customers have, so building it is one cheap pass.
    """

    def __init__(
        self,
        sage_customers: pd.DataFrame,
        keys: list[str],
        emails: list[str | None],
        gc_emails: list[str | None],
        names: list[list[str]],
        meta: list[str | None],
    ) -> None:
        wanted_emails = set(gc_emails) - {None}
        wanted_names = {n for own in names for n in own}
        wanted_custnos = {m.split("-", 1)[1] for m in meta if m}
        self.by_email: dict[str, list[str]] = {}
        self.by_name: dict[str, list[str]] = {}
        self.by_custno: dict[str, list[str]] = {}
        custnos = sage_customers["CustomerNo"].tolist()
        sage_names = sage_customers["CustomerName"].tolist()
        for key, email, name, custno in zip(keys, emails, sage_names, custnos, strict=True):
            if email is not None and email in wanted_emails:
                self.by_email.setdefault(email, []).append(key)
            if wanted_custnos and str(custno).strip().upper() in wanted_custnos:
                self.by_custno.setdefault(str(custno).strip().upper(), []).append(key)
            if wanted_names and isinstance(name, str):
                low = name.lower()
                norm = low if low in wanted_names else _norm_name(name)
                if norm in wanted_names:
                    self.by_name.setdefault(norm, []).append(key)

    def find(self, email: str | None, names: list[str], meta: str | None) -> list[str]:
        found = list(self.by_email.get(email, ())) if email else []
        for name in names:
            found += self.by_name.get(name, ())
        if meta:
            found += self.by_custno.get(meta.split("-", 1)[1], ())
        return sorted(set(found))[:CANDIDATE_LIMIT]
