import logging

import pytest
from cryptography.fernet import Fernet

from bot.crypto import DecryptError, Vault, new_link_token, token_hash
from bot.logs import RedactingFilter, redact


def test_vault_round_trips_and_refuses_another_key():
    vault = Vault(Fernet.generate_key().decode())
    sealed = vault.seal("access-token-value")
    assert "access-token-value" not in sealed
    assert vault.open(sealed) == "access-token-value"
    with pytest.raises(DecryptError):
        Vault(Fernet.generate_key().decode()).open(sealed)


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
