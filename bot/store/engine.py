"""Database engine, sessions and schema migrations; one code path for SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlmodel import Session
from sqlmodel.ext.asyncio.session import AsyncSession

MIGRATIONS = Path(__file__).with_name("migrations")
# Set in a session's `info` by whoever writes outbox rows; the store wakes the deliverer when it commits.
OUTBOX_WRITTEN = "outbox_written"


def sync_url(database_url: str) -> str:
    """The URL with a synchronous driver, as Alembic runs it."""
    url = make_url(_normalise(database_url))
    driver = "sqlite" if url.get_backend_name() == "sqlite" else "postgresql+psycopg"
    return url.set(drivername=driver).render_as_string(hide_password=False)


def async_url(database_url: str) -> str:
    """The URL with an asyncio driver, as the running bot uses it."""
    url = make_url(_normalise(database_url))
    driver = "sqlite+aiosqlite" if url.get_backend_name() == "sqlite" else "postgresql+psycopg"
    return url.set(drivername=driver).render_as_string(hide_password=False)


def _normalise(database_url: str) -> str:
    # Heroku-style URLs say postgres://, which SQLAlchemy no longer accepts.
    if database_url.startswith("postgres://"):
        return "postgresql://" + database_url.removeprefix("postgres://")
    return database_url


def migrate(database_url: str) -> None:
    """Bring the schema up to the newest migration (blocking; run it in a thread from async code)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", sync_url(database_url).replace("%", "%%"))
    command.upgrade(config, "head")


class Store:
    """Owns the async engine and hands out one session per unit of work."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.engine: AsyncEngine = create_async_engine(async_url(database_url), pool_pre_ping=True)
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
        # A session class of its own, so that the commit hook below sees this store's sessions only.
        session_class = type("StoreSession", (Session,), {})
        event.listen(session_class, "after_commit", self._after_commit)
        event.listen(session_class, "after_rollback", lambda session: session.info.pop(OUTBOX_WRITTEN, None))
        self._sessions = async_sessionmaker(
            self.engine, class_=AsyncSession, sync_session_class=session_class, expire_on_commit=False
        )
        self._write_lock = asyncio.Lock()
        # Set after a commit that wrote outbox rows: the deliverer waits on it instead of polling hard.
        self.outbox_written = asyncio.Event()

    def _after_commit(self, session: Session) -> None:
        if session.info.pop(OUTBOX_WRITTEN, False):
            self.outbox_written.set()

    def writing(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold this around a large write transaction: SQLite has one write lock per database, and many
        concurrent writers in one process would otherwise wait on it with busy-timeouts instead of in turn."""
        return self._write_lock if self.engine.dialect.name == "sqlite" else contextlib.nullcontext()

    async def migrate(self) -> None:
        """Apply pending migrations without blocking the event loop."""
        await asyncio.to_thread(migrate, self.database_url)

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for one unit of work; the caller commits, anything unfinished is rolled back."""
        async with self._sessions() as session:
            yield session

    async def close(self) -> None:
        """Dispose of the connection pool."""
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    # Sync runs write in batches while pages, clicks and ticks write too: wait for the lock rather than fail.
    cursor.execute("PRAGMA busy_timeout=30000")
    # WAL with NORMAL: a commit is durable against a crash of the process (what kill -9 tests), and the fsync
    # per commit that FULL adds is saved.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()
