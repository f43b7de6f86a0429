import logging

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from bot.crypto import DecryptError, Vault, new_link_token, token_hash, validate_key
from bot.logs import RedactingFilter, redact
from tests.conftest import make_settings


def test_vault_round_trips_and_refuses_another_key():
    vault = Vault(Fernet.generate_key().decode())
    sealed = vault.seal("access-token-value")
    assert "access-token-value" not in sealed
    assert vault.open(sealed) == "access-token-value"
    with pytest.raises(DecryptError):
        Vault(Fernet.generate_key().decode()).open(sealed)


def test_a_second_key_opens_old_secrets_while_the_first_seals_and_rotate_moves_them_to_it():
    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    sealed_before = Vault(old).seal("refresh-token-value")
    vault = Vault(f" {new} , {old} ")
    assert vault.open(sealed_before) == "refresh-token-value"
    assert not vault.is_current(sealed_before)
    sealed_now = vault.seal("access-token-value")
    assert vault.is_current(sealed_now)
    assert Vault(new).open(sealed_now) == "access-token-value"
    with pytest.raises(DecryptError):
        Vault(old).open(sealed_now)
    rotated = vault.rotate(sealed_before)
    assert vault.is_current(rotated)
    assert Vault(new).open(rotated) == "refresh-token-value"
    with pytest.raises(DecryptError):
        Vault(new).open(sealed_before)


def test_rotate_refuses_a_secret_that_no_key_opens():
    stranger = Vault(Fernet.generate_key().decode()).seal("x")
    vault = Vault(f"{Fernet.generate_key().decode()},{Fernet.generate_key().decode()}")
    assert not vault.is_current(stranger)
    with pytest.raises(DecryptError):
        vault.rotate(stranger)


@pytest.mark.parametrize(("second", "says"), [("not-a-key", "is not a Fernet key"), ("", "is empty")])
def test_a_malformed_key_is_named_by_position_and_never_shown(second, says):
    first, third = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    with pytest.raises(ValueError, match=f"key 2 of 3 {says}") as caught:
        validate_key(f"{first},{second},{third}")
    assert first not in str(caught.value)
    assert "not-a-key" not in str(caught.value)
    validate_key(f"{first}, {third}")


def test_encryption_key_takes_several_keys_and_names_a_malformed_one():
    new, old = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings = make_settings(encryption_key=f"{new}, {old}")
    sealed = Vault(old).seal("t")
    assert Vault(settings.encryption_key.get_secret_value()).open(sealed) == "t"
    with pytest.raises(ValidationError, match="key 2 of 2 is not a Fernet key"):
        make_settings(encryption_key=f"{new},{old[:-2]}")


def test_link_tokens_are_long_random_and_stored_as_hashes():
    first, second = new_link_token(), new_link_token()
    assert first != second
    assert len(first) >= 43
    assert token_hash(first) != first
    assert len(token_hash(first)) == 64


@pytest.mark.parametrize(
    "secret_text",
    [
        "Authorization: Bearer eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.payload",
        "token=xoxb-1234-5678-abcdefghijkl",
        '{"access_token": "a1b2c3d4e5f6g7h8i9", "refresh_token": "r1r2r3r4r5r6r7r8"}',
        "GET /approve/Zx8y7w6v5u4t3s2r1q0pAbCdEfGh HTTP/1.1",
        "POST /oauth/eaccounting/callback?code=abcdef123456789&state=qwertyuiop123456",
    ],
)
def test_token_shapes_are_redacted(secret_text):
    cleaned = redact(secret_text)
    assert "[redacted]" in cleaned
    for secret in (
        "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9",
        "xoxb-1234",
        "a1b2c3d4e5f6g7h8i9",
        "r1r2r3r4r5r6r7r8",
        "Zx8y7w6v5u4t3s2r1q0p",
        "abcdef123456789",
        "qwertyuiop123456",
    ):
        assert secret not in cleaned


def test_the_filter_redacts_arguments_and_tracebacks():
    record = logging.LogRecord(
        "t", logging.ERROR, __file__, 1, "refresh failed for %s", ("refresh_token=zzzzzzzzzzzz",), None
    )
    try:
        raise RuntimeError("Bearer abcdefghijklmnop")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    assert RedactingFilter().filter(record)
    assert "zzzzzzzzzzzz" not in record.getMessage()
    assert record.exc_text is not None
    assert "abcdefghijklmnop" not in record.exc_text
