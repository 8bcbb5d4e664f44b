"""A simulated Sage 100 company in SQLite (company.py)."""

from .company import CUSTOMER_FIELDS, DB_FILE, SageCompany

__all__ = ["CUSTOMER_FIELDS", "DB_FILE", "SageCompany"]
