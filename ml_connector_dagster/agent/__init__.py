"""The agent on the Sage 100 server: a small SOAP service in Sage's style over BOI or the simulated company.

Run it with `ml-connector agent`; clients live in `ml_connector_dagster.sage100.clients`.
"""

from .backends import Backend, BOIBackend, BOINames, SimulatedBackend
from .service import AgentService, agent_app

__all__ = ["AgentService", "Backend", "BOIBackend", "BOINames", "SimulatedBackend", "agent_app"]
