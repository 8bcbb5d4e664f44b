"""Fixtures for the agent side: a simulated company from the bundled scenario, the agent serving it, and the
BOI backend over a fake of Sage's COM objects."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from ml_connector_dagster.agent import BOIBackend, agent_app
from ml_connector_dagster.agent.ledger import AgentLedger
from ml_connector_dagster.httpserve import ServerHandle, serve_in_thread
from ml_connector_dagster.sage100.model import Credentials
from ml_connector_dagster.sandbox.sage_company import DB_FILE, SageCompany
from ml_connector_dagster.sandbox.scenario import Scenario, bundled, load_scenario
from ml_connector_dagster.sandbox.simulated_backend import SimulatedBackend

from support.boi_fake import HOME, TODAY, FakeSage
from support.sage import MakeRequest, cash_receipt_request

@pytest.fixture(scope="session")
def scenario() -> Scenario:
    return load_scenario(bundled("small"))


@pytest.fixture
def company(tmp_path: Path, scenario: Scenario) -> SageCompany:
    return SageCompany.create(tmp_path / DB_FILE, scenario)


@pytest.fixture
def credentials(scenario: Scenario) -> Credentials:
    c = scenario.company
    return Credentials(c.username, c.password, c.company_code)


@pytest.fixture
def make_request() -> MakeRequest:
    """A cash receipt for 01-ABF; by default 450.00 paying invoice 0100031 in full."""
    return cash_receipt_request


@pytest.fixture
def sage() -> FakeSage:
    """Sage's COM objects as the BOI backend sees them (the real ones exist only on a Windows Sage server)."""
    return FakeSage()


@pytest.fixture
def backend(sage: FakeSage, tmp_path: Path) -> Iterator[BOIBackend]:
    backend = BOIBackend(HOME, AgentLedger(tmp_path / "ledger.sqlite"), dispatch=sage.dispatch, today=lambda: TODAY)
    yield backend
    backend.ledger.close()


@pytest.fixture
def creds() -> Credentials:
    """The logon the fake's SY_Session accepts."""
    return Credentials("demo", "demo-password", "ABC")


@pytest.fixture
def agent_server(company: SageCompany) -> Iterator[ServerHandle]:
    handle = serve_in_thread(agent_app(SimulatedBackend(company), page_size=3))
    yield handle
    handle.stop()


@pytest.fixture
def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 and its key (PEM); the certificate doubles as the CA bundle."""
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ml-connector test agent")])
    now = dt.datetime.now(dt.timezone.utc)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                    x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "agent.crt", tmp_path / "agent.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path
