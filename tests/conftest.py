"""Shared fixtures: settings built directly (never from the environment) and a migrated store per test."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

from bot.settings import Settings
from bot.store.engine import Store, sync_url

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO.parent / "shared" / "reference" / "specs"
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL")

BACKENDS = ["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: runs against the PostgreSQL server in TEST_POSTGRES_URL")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if POSTGRES_URL:
        return
    skip = pytest.mark.skip(reason="PostgreSQL skipped: TEST_POSTGRES_URL is not set (no server found)")
    for item in items:
        if "postgres" in item.keywords:
            item.add_marker(skip)


def pytest_report_header(config: pytest.Config) -> str:
    if POSTGRES_URL:
        return f"PostgreSQL: store and scenario tests also run against {POSTGRES_URL}"
    return "PostgreSQL: NOT tested (TEST_POSTGRES_URL is not set); store and scenario tests run on SQLite only"


def make_settings(**overrides: object) -> Settings:
    """Settings for tests; every outside URL points at loopback."""
    values: dict[str, object] = {
        "slack_bot_token": "xoxb-test-bot-token-0000",
        "slack_signing_secret": "test-signing-secret",
        "slack_api_url": "http://127.0.0.1:9/slack/api/",
        "alert_channel": "C0ALERTS",
        "database_url": "sqlite:///:memory:",
        "public_url": "http://127.0.0.1:9",
        "encryption_key": Fernet.generate_key().decode(),
        "eaccounting_client_id": "fjordbris-onboarding",
        "eaccounting_client_secret": "test-client-secret",
        "eaccounting_identity_url": "http://127.0.0.1:9/eaccounting/identity",
        "eaccounting_api_url": "http://127.0.0.1:9/eaccounting/api",
        "firm_name": "Fjordbris Regnskap",
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


@pytest.fixture
def settings() -> Settings:
    return make_settings()


def _fresh_postgres_schema(url: str) -> Iterator[str]:
    import sqlalchemy

    schema = f"t_{uuid.uuid4().hex[:12]}"
    engine = sqlalchemy.create_engine(sync_url(url))
    with engine.begin() as connection:
        connection.exec_driver_sql(f'CREATE SCHEMA "{schema}"')
    separator = "&" if "?" in url else "?"
    yield f"{url}{separator}options=-csearch_path%3D{schema}"
    with engine.begin() as connection:
        connection.exec_driver_sql(f'DROP SCHEMA "{schema}" CASCADE')
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database: a SQLite file, or a new schema on the PostgreSQL test server."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'bot.db'}"
        return
    assert POSTGRES_URL
    yield from _fresh_postgres_schema(POSTGRES_URL)


@pytest.fixture
async def store(database_url: str) -> AsyncIterator[Store]:
    store = Store(database_url)
    await store.migrate()
    yield store
    await store.close()
