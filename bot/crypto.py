"""Secrets at rest: Fernet encryption of Visma tokens, and hashes of approval-link tokens."""

from __future__ import annotations

import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

GENERATE_HINT = (
    "generate one with python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


def split_keys(key_setting: str) -> list[str]:
    """The Fernet keys of an ENCRYPTION_KEY setting, in order: `new` or `new,old,…` (spaces around them ignored)."""
    return [key.strip() for key in key_setting.split(",")]


def validate_key(key_setting: str) -> None:
    """Raise ValueError unless every key of the setting is a Fernet key (urlsafe base64 of 32 bytes)."""
    keys = split_keys(key_setting)
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            # Never the key itself in the message: it is a secret even when malformed (a typo of the real one).
            if len(keys) == 1:
                raise ValueError(f"must be a Fernet key: {GENERATE_HINT}") from None
            what = "is empty" if not key else "is not a Fernet key"
            raise ValueError(
                f"key {position} of {len(keys)} {what} (keys are separated by commas, the first encrypts): "
                f"{GENERATE_HINT}"
            ) from None


class Vault:
    """Encrypts with the first key of ENCRYPTION_KEY and decrypts with any of them, so keys can be rotated."""

    def __init__(self, key_setting: str) -> None:
        keys = [Fernet(key.encode()) for key in split_keys(key_setting)]
        self._first = keys[0]
        self._fernet = MultiFernet(keys)

    def seal(self, plain: str) -> str:
        """Encrypt a secret for storage (with the first key)."""
        return self._fernet.encrypt(plain.encode()).decode()

    def open(self, sealed: str) -> str:
        """Decrypt a stored secret; raises DecryptError when none of the keys matches."""
        try:
            return self._fernet.decrypt(sealed.encode()).decode()
        except InvalidToken:
            raise DecryptError("stored secret cannot be decrypted with ENCRYPTION_KEY") from None

    def is_current(self, sealed: str) -> bool:
        """Whether a stored secret is already sealed with the first key."""
        try:
            self._first.decrypt(sealed.encode())
        except InvalidToken:
            return False
        return True

    def rotate(self, sealed: str) -> str:
        """Re-encrypt a stored secret with the first key; raises DecryptError when none of the keys opens it."""
        try:
            return self._fernet.rotate(sealed.encode()).decode()
        except InvalidToken:
            raise DecryptError("stored secret cannot be decrypted with ENCRYPTION_KEY") from None


class DecryptError(Exception):
    """A stored secret was sealed with a key that ENCRYPTION_KEY no longer lists."""


def new_link_token() -> str:
    """An unguessable token for an approval link (256 bits)."""
    return secrets.token_urlsafe(32)


def token_hash(token: str) -> str:
    """The SHA-256 hex digest under which a link token or OAuth state is stored."""
    return hashlib.sha256(token.encode()).hexdigest()
