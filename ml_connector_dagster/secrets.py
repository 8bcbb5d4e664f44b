"""Secrets: a masking wrapper and encryption at rest (Fernet) under ML_CONNECTOR_HOME.

Stored secrets live in `secrets.json` as Fernet tokens; the key comes from ML_CONNECTOR_SECRET_KEY and is
never written. A wrong key and a damaged entry are told apart and reported as such, never as a traceback.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import tempfile
from pathlib import Path
from typing import NoReturn

from cryptography.fernet import Fernet, InvalidToken

from .fileperms import private_folder

SECRET_NAMES = ("gocardless_access_token", "sage_password", "gocardless_webhook_secrets")
SECRETS_FILE = "secrets.json"
MASK = "********"
# The password of a URL's userinfo (scheme://user:PASSWORD@host): greedy up to the last '@' of the token,
# so an unencoded '@' or '/' in the password is masked too (over-masking is the safe failure).
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.-]*://[^\s:/?#@]*:)(?P<secret>\S*)(?=@)")
# A credential passed as a key=value pair: in a query string (?password=..., &sslpassword=...) or a libpq DSN.
_SECRET_PARAM = re.compile(
    r"(?i)(?P<head>(?:^|(?<=[?&;\s]))[^=&;\s#]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|sig)"
    r"[^=&;\s#]*=)(?P<secret>[^&;\s#]+)"
)


def mask_credentials(text: str) -> str:
    """`text` with every credential inside a URL masked: the password of user:password@host and any
    password/secret/token/key query parameter. The one function for settings shown, logged or in errors."""
    text = _URL_PASSWORD.sub(lambda m: m["head"] + MASK, text)
    return _SECRET_PARAM.sub(lambda m: m["head"] + MASK, text)


class Secret:
    """A string that never shows itself in repr, str, logs or tracebacks; call `reveal()` to use it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)

    def __reduce__(self) -> NoReturn:  # pickling would write the plaintext somewhere we do not control
        raise TypeError("Secret values cannot be pickled")


class SecretsError(Exception):
    """A secret could not be stored or read; the message says what to do."""


class DamagedSecret(SecretsError):
    """One entry of secrets.json is not an encrypted value at all (edited by hand, truncated); `name` says which."""

    def __init__(self, name: str, path: Path) -> None:
        self.name = name
        super().__init__(
            f"stored secret {name!r} in {path} is damaged (it is not an encrypted value); store it again with "
            f"`ml-connector secrets set {name}`"
        )


# A Fernet token: version 0x80, 8-byte timestamp, 16-byte IV, AES-CBC ciphertext (whole 16-byte blocks), 32-byte HMAC.
_FERNET_VERSION, _FERNET_OVERHEAD, _AES_BLOCK = 0x80, 1 + 8 + 16 + 32, 16


def _is_fernet_token(token: object) -> bool:
    """Whether `token` has a Fernet token's shape: if it has, a failed decryption means another key."""
    if not isinstance(token, str):
        return False
    try:
        raw = base64.urlsafe_b64decode(token.encode("ascii"))
    except (UnicodeEncodeError, binascii.Error, ValueError):
        return False
    body = len(raw) - _FERNET_OVERHEAD
    return raw[:1] == bytes([_FERNET_VERSION]) and body >= _AES_BLOCK and body % _AES_BLOCK == 0


def generate_key() -> str:
    return Fernet.generate_key().decode("ascii")


def _fernet(key: Secret | None) -> Fernet:
    if key is None or not key.reveal():
        raise SecretsError(
            "ML_CONNECTOR_SECRET_KEY is not set: stored secrets need it. "
            "Create one with `ml-connector secrets generate-key` and export it."
        )
    try:
        return Fernet(key.reveal().encode("ascii"))
    except (ValueError, UnicodeEncodeError):
        raise SecretsError(
            "ML_CONNECTOR_SECRET_KEY is not a valid Fernet key (32 url-safe base64-encoded bytes). "
            "Create one with `ml-connector secrets generate-key`."
        ) from None


class SecretStore:
    """Encrypted name -> value store in `<home>/secrets.json` (names are visible, values are not)."""

    def __init__(self, home: Path, key: Secret | None) -> None:
        self.path = Path(home) / SECRETS_FILE
        self._key = key

    def names(self) -> list[str]:
        return sorted(self._load())

    def set(self, name: str, value: str) -> None:
        if name not in SECRET_NAMES:
            raise SecretsError(f"unknown secret name {name!r}: use one of {', '.join(SECRET_NAMES)}")
        if not value:
            raise SecretsError(f"refusing to store an empty value for {name}")
        token = _fernet(self._key).encrypt(value.encode("utf-8")).decode("ascii")
        data = self._load()
        data[name] = token
        self._write(data)

    def get(self, name: str) -> Secret | None:
        stored = self._load()
        if name not in stored:
            return None
        token = stored[name]
        fernet = _fernet(self._key)
        if not _is_fernet_token(token):
            raise DamagedSecret(name, self.path)
        try:
            return Secret(fernet.decrypt(token.encode("ascii")).decode("utf-8"))
        except UnicodeDecodeError:
            raise DamagedSecret(name, self.path) from None
        except InvalidToken:
            raise SecretsError(
                f"cannot decrypt stored secret {name!r} in {self.path}: ML_CONNECTOR_SECRET_KEY is not the "
                "key it was stored with. Set the original key, or store the secret again with "
                f"`ml-connector secrets set {name}`."
            ) from None

    def _load(self) -> dict[str, str]:
        if not self.path.exists():
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise SecretsError(f"cannot read {self.path}: {exc.__class__.__name__}") from None
        if not isinstance(data, dict):
            raise SecretsError(f"{self.path} is not a JSON object; remove it and store the secrets again")
        return data

    def _write(self, data: dict[str, str]) -> None:
        private_folder(self.path.parent)
        fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".secrets.")
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=2, sort_keys=True)
        os.chmod(tmp, 0o600)
        os.replace(tmp, self.path)
