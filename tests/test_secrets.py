"""Secrets at rest: Fernet-encrypted under ML_CONNECTOR_HOME, names visible, values never."""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import pytest

from ml_connector_dagster.secrets import Secret, SecretsError, SecretStore, generate_key, mask_credentials


def test_a_stored_secret_round_trips_with_the_same_key(tmp_path: Path) -> None:
    key = Secret(generate_key())
    SecretStore(tmp_path, key).set("gocardless_access_token", "live_abc123")

    assert SecretStore(tmp_path, key).get("gocardless_access_token").reveal() == "live_abc123"


def test_the_file_holds_no_plaintext(tmp_path: Path) -> None:
    SecretStore(tmp_path, Secret(generate_key())).set("sage_password", "hunter2-plaintext")

    assert "hunter2-plaintext" not in (tmp_path / "secrets.json").read_text()


def test_the_secrets_file_is_readable_by_its_owner_only(tmp_path: Path) -> None:
    SecretStore(tmp_path, Secret(generate_key())).set("sage_password", "x-secret")

    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600


def test_a_wrong_key_fails_with_a_message_not_a_traceback(tmp_path: Path) -> None:
    SecretStore(tmp_path, Secret(generate_key())).set("sage_password", "x-secret")

    with pytest.raises(SecretsError, match="not the key it was stored with"):
        SecretStore(tmp_path, Secret(generate_key())).get("sage_password")


@pytest.mark.parametrize(
    "entry",
    [5, None, ["x"], "not-a-token", "gAAAAA", "été"],
    ids=["number", "null", "list", "garbage", "truncated", "non-ascii"],
)
def test_an_entry_that_is_not_an_encrypted_value_is_reported_as_damaged_naming_it(tmp_path: Path, entry) -> None:
    key = Secret(generate_key())
    SecretStore(tmp_path, key).set("gocardless_access_token", "kept")
    (tmp_path / "secrets.json").write_text(json.dumps({"gocardless_access_token": "x", "sage_password": entry}))

    with pytest.raises(SecretsError) as err:
        SecretStore(tmp_path, key).get("sage_password")

    assert "stored secret 'sage_password'" in str(err.value) and "damaged" in str(err.value)
    assert "ml-connector secrets set sage_password" in str(err.value)


def test_a_token_of_another_key_is_reported_as_the_wrong_key_not_as_damaged(tmp_path: Path) -> None:
    SecretStore(tmp_path, Secret(generate_key())).set("sage_password", "x-secret")

    with pytest.raises(SecretsError) as err:
        SecretStore(tmp_path, Secret(generate_key())).get("sage_password")

    assert "not the key it was stored with" in str(err.value)
    assert "damaged" not in str(err.value)


def test_a_damaged_entry_is_repaired_by_storing_it_again(tmp_path: Path) -> None:
    key = Secret(generate_key())
    (tmp_path / "secrets.json").write_text(json.dumps({"sage_password": 5}))

    SecretStore(tmp_path, key).set("sage_password", "new-secret")

    assert SecretStore(tmp_path, key).get("sage_password").reveal() == "new-secret"


def test_a_malformed_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match="not a valid Fernet key"):
        SecretStore(tmp_path, Secret("short")).set("sage_password", "x")


def test_an_unknown_secret_name_is_refused(tmp_path: Path) -> None:
    with pytest.raises(SecretsError, match="unknown secret name"):
        SecretStore(tmp_path, Secret(generate_key())).set("my_password", "x")


def test_names_are_listed_without_values(tmp_path: Path) -> None:
    store = SecretStore(tmp_path, Secret(generate_key()))
    store.set("sage_password", "a-secret")
    store.set("gocardless_access_token", "b-secret")

    assert store.names() == ["gocardless_access_token", "sage_password"]


def test_a_secret_does_not_show_itself() -> None:
    secret = Secret("do-not-print-me")

    assert "do-not-print-me" not in repr(secret) + str(secret) + f"{secret}" + repr([secret])
    with pytest.raises(TypeError):
        pickle.dumps(secret)


@pytest.mark.parametrize(
    "text, shown",
    [
        ("postgresql+psycopg://ops:S3CRETPW@db:5432/ops", "postgresql+psycopg://ops:********@db:5432/ops"),
        ("url 'mysql://ops:S3CRET@PW@db/ops' refused", "url 'mysql://ops:********@db/ops' refused"),
        ("https://db/ops?user=ops&password=S3CRETPW&ssl=1", "https://db/ops?user=ops&password=********&ssl=1"),
        ("https://x/y?access_token=S3CRETPW", "https://x/y?access_token=********"),
        ("host=db password=S3CRETPW dbname=ops", "host=db password=******** dbname=ops"),
    ],
    ids=["userinfo", "unencoded-at", "query-password", "query-token", "libpq-dsn"],
)
def test_credentials_inside_urls_are_masked(text: str, shown: str) -> None:
    assert mask_credentials(text) == shown


@pytest.mark.parametrize(
    "text",
    [
        "postgresql://ops@db:5432/ops",
        "https://sage.example:8443/agent?wsdl",
        "sqlite:////srv/connector/ops.sqlite",
        "ML_CONNECTOR_SAGE_PASSWORD = ******** (1 set)",
    ],
)
def test_text_without_credentials_is_left_alone(text: str) -> None:
    assert mask_credentials(text) == text
