"""The agent on the Sage 100 server: a small SOAP service in Sage's style over a backend (BOI on Windows).

Run it with `ml-connector agent`; clients live in `ml_connector_dagster.sage100`. The simulated backend
belongs to the sandbox (`ml_connector_dagster.sandbox.simulated_backend`).
"""

from .backends import Backend, BOIBackend, BOINames
from .service import AgentService, agent_app

__all__ = ["AgentService", "BOIBackend", "BOINames", "Backend", "agent_app"]
