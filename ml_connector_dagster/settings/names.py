"""What a setting is called in the environment, and how to set the ones a component cannot work without.

`HELP` is the text after 'VARIABLE: not set;' (and after a bad URL) in a SettingsError: one line per
setting an operator must give, saying what it is or which command sets it.
"""

from __future__ import annotations

PREFIX = "ML_CONNECTOR_"

HELP = {
    "sage_ebusiness_wsdl": "the URL of Sage's eBusiness Web Services WSDL, e.g. https://sage.example/ebusiness?wsdl",
    "sage_agent_wsdl": "the URL of the local agent's WSDL, e.g. https://sage-server:8443/agent?wsdl",
    "sage_username": "the Sage 100 user enabled for web services",
    "sage_password": "export it or store it with `ml-connector secrets set sage_password`",
    "sage_company_code": "the 3-character Sage company code, e.g. ABC",
    "sage_home_currency": "the ISO 4217 code of the company's home currency, e.g. GBP",
    "sage_bank_code": "the 1-character Sage bank code cash receipts are deposited to, e.g. A",
    "gocardless_access_token": "export it or store it with `ml-connector secrets set gocardless_access_token`",
    "gocardless_webhook_secrets": "export it or store it with `ml-connector secrets set gocardless_webhook_secrets`",
    "secret_key": "create one with `ml-connector secrets generate-key`",
}


def env_name(setting: str) -> str:
    """`sage_bank_code` -> `ML_CONNECTOR_SAGE_BANK_CODE`."""
    return PREFIX + setting.upper()
