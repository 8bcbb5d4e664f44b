"""One typed settings object, read from ML_CONNECTOR_* environment variables (and an optional TOML file).

Precedence for every setting: environment variable > stored encrypted secret (secrets only) > TOML file
named by ML_CONNECTOR_CONFIG > default. Everything is validated at load time, and every problem is
reported at once, naming the variable and how to fix it.

Settings a component cannot work without but a deployment may leave unset (a receiver host has no Sage
password) are optional in `Settings`; each component asks for the part it needs as a sub-object whose
fields cannot be None: `sage_agent()`, `sage_ebusiness()`, `gocardless()`, `webhooks()`, `reconciliation()`.
Each raises SettingsError naming every missing variable and how to set it.

Import from here (`from ml_connector_dagster.settings import Settings, SettingsError, load_settings`); the
modules behind it are `model.py` (Settings and its parts), `load.py` (load_settings), `parse.py` (each
value's checks and bounds), `toml_file.py` (the TOML file) and `names.py` (variable names and their help).
"""

from __future__ import annotations

from .load import home_folder, load_settings
from .model import (
    DEFAULT_EVENT_WHITELIST,
    SECRET_SETTINGS,
    GoCardlessSettings,
    ReconciliationSettings,
    SageSettings,
    Settings,
    SettingsError,
    WebhookSettings,
)
from .names import PREFIX, env_name

__all__ = [
    "DEFAULT_EVENT_WHITELIST",
    "PREFIX",
    "SECRET_SETTINGS",
    "GoCardlessSettings",
    "ReconciliationSettings",
    "SageSettings",
    "Settings",
    "SettingsError",
    "WebhookSettings",
    "env_name",
    "home_folder",
    "load_settings",
]
