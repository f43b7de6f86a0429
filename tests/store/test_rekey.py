"""Key rotation against a real database: every sealed column is re-encrypted with the first key, in batches."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from cryptography.fernet import Fernet
from sqlmodel import SQLModel, col, select

from bot import cli
from bot.crypto import DecryptError, Vault
from bot.domain.types import AccountingSystem
from bot.store.engine import Store, migrate
from bot.store.models import Connection
from bot.store.rekey import SEALED, UNDECRYPTABLE, rotate_keys
from tests import factories

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
ACCESS, REFRESH = "connection.access_token_sealed", "connection.refresh_token_sealed"
# Tables these tests leave empty report 0.
EMPTY = {"oauth_attempt.verifier_sealed": 0, "slack_message.secret_sealed": 0}


def key() -> str:
    return Fernet.generate_key().decode()


async def connect(store: Store, vault: Vault, *, count: int, start: int = 0, refresh: bool = True) -> list[int]:
    """Companies `start`… connected, with tokens `access-N` and `refresh-N` sealed by `vault`; connection ids."""
    ids = []
    async with store.session() as session:
        for n in range(start, start + count):
            company = factories.company(name=f"Firma {n} AS", org_number=f"9{n:08d}")
            session.add(company)
            await session.flush()
            assert company.id is not None
            connection = Connection(
                company_id=company.id,
                system=AccountingSystem.EACCOUNTING,
                access_token_sealed=vault.seal(f"access-{n}"),
                refresh_token_sealed=vault.seal(f"refresh-{n}") if refresh else None,
                access_expires_at=NOW + timedelta(hours=1),
                scopes="ea:api offline_access",
                connected_by="U0OLA",
                connected_at=NOW,
            )
            session.add(connection)
            await session.flush()
            assert connection.id is not None
            ids.append(connection.id)
        await session.commit()
    return ids


async def stored(store: Store) -> list[Connection]:
    async with store.session() as session:
        return list((await session.exec(select(Connection).order_by(col(Connection.id)))).all())


def test_the_registry_names_every_sealed_column():
    registered = {(model.__tablename__, name) for model, name in SEALED}
    sealed_columns = {
        (table.name, column.name)
        for table in SQLModel.metadata.sorted_tables
        for column in table.columns
        if column.name.endswith("_sealed")
    }
    missing = sorted(sealed_columns - registered)
    assert not missing, f"add these sealed columns to bot.store.rekey.SEALED: {missing}"


async def test_rotation_moves_every_token_to_the_first_key_batch_by_batch(store):
    new, old = key(), key()
    await connect(store, Vault(old), count=4)
    await connect(store, Vault(old), count=1, start=4, refresh=False)

    counts = await rotate_keys(store, Vault(f"{new},{old}"), batch=2)

    assert counts == {ACCESS: 5, REFRESH: 4, UNDECRYPTABLE: 0, **EMPTY}
    only_new = Vault(new)
    connections = await stored(store)
    assert [only_new.open(c.access_token_sealed) for c in connections] == [f"access-{n}" for n in range(5)]
    assert [c.refresh_token_sealed and only_new.open(c.refresh_token_sealed) for c in connections] == [
        *(f"refresh-{n}" for n in range(4)),
        None,
    ]
    with pytest.raises(DecryptError):
        Vault(old).open(connections[0].access_token_sealed)


async def test_a_second_run_is_harmless(store):
    new, old = key(), key()
    await connect(store, Vault(old), count=3)
    vault = Vault(f"{new},{old}")
    await rotate_keys(store, vault, batch=2)
    first = [(c.access_token_sealed, c.refresh_token_sealed) for c in await stored(store)]

    again = await rotate_keys(store, vault, batch=2)

    assert again == {ACCESS: 0, REFRESH: 0, UNDECRYPTABLE: 0, **EMPTY}
    assert [(c.access_token_sealed, c.refresh_token_sealed) for c in await stored(store)] == first
    assert Vault(new).open(first[2][1] or "") == "refresh-2"


async def test_a_value_no_key_opens_is_counted_and_left_alone(store):
    new, old = key(), key()
    await connect(store, Vault(old), count=2)
    (lost_id,) = await connect(store, Vault(key()), count=1, start=2, refresh=False)
    lost_before = next(c for c in await stored(store) if c.id == lost_id).access_token_sealed

    counts = await rotate_keys(store, Vault(f"{new},{old}"))

    assert counts == {ACCESS: 2, REFRESH: 2, UNDECRYPTABLE: 1, **EMPTY}
    connections = await stored(store)
    assert next(c for c in connections if c.id == lost_id).access_token_sealed == lost_before
    assert Vault(new).open(connections[1].refresh_token_sealed or "") == "refresh-1"


@pytest.fixture
def restored_logging() -> Iterator[None]:
    """`main` configures logging for a real process; put back what pytest had."""
    manager = logging.Logger.manager
    before = {
        logger: (logger.level, logger.handlers[:], logger.propagate)
        for logger in [logging.getLogger(), *manager.loggerDict.values()]
        if isinstance(logger, logging.Logger)
    }
    yield
    for logger in [logging.getLogger(), *manager.loggerDict.values()]:
        if isinstance(logger, logging.Logger):
            level, handlers, propagate = before.get(logger, (logging.NOTSET, [], True))
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.propagate = propagate


@pytest.fixture
def env(monkeypatch, tmp_path, database_url, restored_logging):
    """The environment of `onboarding-bot` run by an operator, on a migrated database."""
    monkeypatch.chdir(tmp_path)  # no stray .env
    for name, value in {
        "SLACK_BOT_TOKEN": "xoxb-1",
        "SLACK_SIGNING_SECRET": "s",
        "ALERT_CHANNEL": "C0ALERTS",
        "EACCOUNTING_CLIENT_ID": "id",
        "EACCOUNTING_CLIENT_SECRET": "secret",
        "FIRM_NAME": "Fjordbris Regnskap",
        "DATABASE_URL": database_url,
    }.items():
        monkeypatch.setenv(name, value)
    migrate(database_url)
    return monkeypatch


def seed(database_url: str, vault: Vault, *, count: int) -> None:
    async def run() -> None:
        store = Store(database_url)
        try:
            await connect(store, vault, count=count)
        finally:
            await store.close()

    asyncio.run(run())


def test_the_rotate_key_command_prints_one_line(env, database_url, capsys):
    new, old = key(), key()
    seed(database_url, Vault(old), count=2)
    env.setenv("ENCRYPTION_KEY", f"{new}, {old}")

    assert cli.main(["rotate-key"]) == 0

    out, err = capsys.readouterr()
    assert out == (
        "re-encrypted 4 secrets with the first ENCRYPTION_KEY key; the other keys can be removed once every "
        "process runs with the new setting\n"
    )
    assert new not in out + err
    assert old not in out + err


def test_the_rotate_key_command_fails_on_secrets_no_key_opens(env, database_url, capsys):
    new, old = key(), key()
    seed(database_url, Vault(old), count=1)
    env.setenv("ENCRYPTION_KEY", new)

    assert cli.main(["rotate-key"]) == 1

    out, err = capsys.readouterr()
    assert out.startswith("re-encrypted 0 secrets with the first ENCRYPTION_KEY key")
    assert "left 2 secrets unchanged that none of the ENCRYPTION_KEY keys opens" in err


def test_the_rotate_key_command_names_a_malformed_key_in_one_line(env, capsys):
    env.setenv("ENCRYPTION_KEY", f"{key()},not-a-key")

    assert cli.main(["rotate-key"]) == 2

    err = capsys.readouterr().err.strip()
    assert err.startswith("onboarding-bot: configuration error: ENCRYPTION_KEY is malformed: key 2 of 2")
    assert "\n" not in err
