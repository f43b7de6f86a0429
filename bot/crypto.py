"""Secrets at rest: Fernet encryption of Visma tokens, and hashes of approval-link tokens."""

from __future__ import annotations

import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken


def validate_key(key: str) -> None:
    """Raise ValueError unless `key` is a Fernet key (urlsafe base64 of 32 bytes)."""
    try:
        Fernet(key.encode())
    except (ValueError, TypeError):
        raise ValueError(
            "must be a Fernet key: generate one with "
            "python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
        ) from None


class Vault:
    """Encrypts and decrypts secrets with the configured ENCRYPTION_KEY."""

    def __init__(self, key: str) -> None:
        self._fernet = Fernet(key.encode())

    def seal(self, plain: str) -> str:
        """Encrypt a secret for storage."""
        return self._fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        """Decrypt a stored secret; raises DecryptError when the key does not match."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise DecryptError("stored secret cannot be decrypted with ENCRYPTION_KEY") from None


class DecryptError(Exception):
    """A stored secret was sealed with another key."""


def new_link_token() -> str:
    """An unguessable token for an approval link (256 bits)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The SHA-256 hex digest under which a link token or OAuth state is stored."""
    return hashlib.sha256(token.encode()).hexdigest()
