"""kill -9 of a real `serve` process in the middle of a sync, then a restart: the store ends up exactly as an
uninterrupted run leaves it — nothing lost, nothing twice — and the company is not stuck.

The simulators run in the test's event loop; the bot runs as `python -m bot.cli serve` with settings from the
environment, exactly as in production, against a database the test prepared with one connected company.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlmodel import col, select

from bot.app import build_deps
from bot.crypto import Vault
from bot.domain.types import AccountingSystem, CompanyState, SyncStatus
from bot.settings import Settings
from bot.simulators.eaccounting import add_bulk_company, seed_world
from bot.simulators.server import ResponseLog, create_simulators
from bot.simulators.serving import LoopbackServer, free_port
from bot.simulators.slack import SlackWorld
from bot.simulators.stack import ALERT_CHANNEL, BOT_TOKEN, CLIENT_ID, CLIENT_SECRET, SIGNING_SECRET
from bot.store.engine import Store
from bot.store.models import Company, Connection, SyncRun, Voucher
from bot.sync.engine import sync_company
from bot.visma.eaccounting import SCOPES
from tests import factories
from tests.conftest import REPO

VOUCHERS = 6000
NOW = datetime.now(UTC)


def environment(*, sim: str, database_url: str, key: str, port: int) -> dict[str, str]:
    return {
        "SLACK_BOT_TOKEN": BOT_TOKEN,
        "SLACK_SIGNING_SECRET": SIGNING_SECRET,
        "SLACK_API_URL": f"{sim}/slack/api/",
        "ALERT_CHANNEL": ALERT_CHANNEL,
        "DATABASE_URL": database_url,
        "PUBLIC_URL": f"http://127.0.0.1:{port}",
        "FIRM_NAME": "Fjordbris Regnskap",
        "PORT": str(port),
        "ENCRYPTION_KEY": key,
        "EACCOUNTING_CLIENT_ID": CLIENT_ID,
        "EACCOUNTING_CLIENT_SECRET": CLIENT_SECRET,
        "EACCOUNTING_IDENTITY_URL": f"{sim}/eaccounting/identity",
        "EACCOUNTING_API_URL": f"{sim}/eaccounting/api",
        # Slow enough to be killed part way (100 pages of 60 at 40 a second), quick to recover.
        "EACCOUNTING_RATE_LIMIT": "40",
        "EACCOUNTING_RATE_WINDOW_SECONDS": "1",
        "VISMA_PAGE_SIZE": "60",
        "SYNC_TICK_SECONDS": "1",
        "SYNC_RUN_LEASE_SECONDS": "3",
    }


async def prepare(database_url: str, key: str, world: Any, company_id: str) -> int:
    """A migrated database with Bulk Regnskap AS connected and due now; returns its id."""
    store = Store(database_url)
    await store.migrate()
    vault = Vault(key)
    sim_company = world.companies[company_id]
    tokens = world.issue_tokens(company_id, client_id=CLIENT_ID, scopes=SCOPES)
    async with store.session() as session:
        company = factories.company(
            name=sim_company.name,
            org_number=sim_company.org_number,
            state=CompanyState.CONNECTED,
            now=NOW,
            reconciliation_start=date(2024, 1, 1),
            next_sync_at=NOW - timedelta(minutes=1),
        )
        session.add(company)
        await session.flush()
        assert company.id is not None
        session.add(
            Connection(
                company_id=company.id,
                system=AccountingSystem.EACCOUNTING,
                access_token_sealed=vault.seal(tokens["access_token"]),
                refresh_token_sealed=vault.seal(tokens["refresh_token"]),
                access_expires_at=NOW + timedelta(minutes=50),
                scopes=" ".join(SCOPES),
                connected_by="Ola Nordmann",
                connected_at=NOW,
            )
        )
        await session.commit()
        result = company.id
    await store.close()
    return result


async def vouchers(database_url: str) -> dict[str, tuple[Any, ...]]:
    store = Store(database_url)
    async with store.session() as session:
        rows = (await session.exec(select(Voucher))).all()
    await store.close()
    return {row.external_id: (row.text, row.voucher_date, row.modified_at, len(row.rows)) for row in rows}


async def latest_run(database_url: str) -> SyncRun | None:
    store = Store(database_url)
    async with store.session() as session:
        run = (await session.exec(select(SyncRun).order_by(col(SyncRun.id).desc()))).first()
    await store.close()
    return run


async def serve(env: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "serve",
        cwd=REPO,
        env={**os.environ, **env},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )


async def wait_for(check: Any, *, seconds: float, what: str) -> Any:
    deadline = asyncio.get_running_loop().time() + seconds
    while asyncio.get_running_loop().time() < deadline:
        value = await check()
        if value:
            return value
        await asyncio.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def second_database_url(tmp_path):
    """Where the reference run writes (its backend does not matter: only what it stores is compared)."""
    return f"sqlite:///{tmp_path / 'uninterrupted.db'}"


async def test_kill_9_mid_sync_then_restart_gives_the_store_of_an_uninterrupted_run(
    database_url, second_database_url, tmp_path
):
    world = seed_world()
    bulk = add_bulk_company(world, org_number="916981694", name="Bulk Regnskap AS", vouchers=VOUCHERS, years=3)
    world.switches.rate_limit_per_minute = 40
    world.switches.rate_limit_window_seconds = 1
    key = Fernet.generate_key().decode()
    slack = SlackWorld(tokens={BOT_TOKEN})
    async with LoopbackServer(create_simulators(slack=slack, eaccounting=world, responses=ResponseLog())) as sim:
        port = free_port()
        world.register_client(CLIENT_ID, CLIENT_SECRET, {f"http://127.0.0.1:{port}/oauth/eaccounting/callback"})
        env = environment(sim=sim.url, database_url=database_url, key=key, port=port)
        await prepare(database_url, key, world, bulk.id)

        bot = await serve(env)

        async def part_way() -> bool:
            run = await latest_run(database_url)
            return run is not None and run.status == SyncStatus.RUNNING and run.rows_written >= 1500

        try:
            await wait_for(part_way, seconds=60, what="the first run to write some vouchers")
        finally:
            bot.send_signal(signal.SIGKILL)
            await bot.wait()
        stranded = await latest_run(database_url)
        assert stranded is not None
        assert stranded.status == SyncStatus.RUNNING
        assert 0 < len(await vouchers(database_url)) < VOUCHERS

        bot = await serve(env)

        async def finished() -> SyncRun | None:
            run = await latest_run(database_url)
            return run if run is not None and run.status == SyncStatus.OK else None

        try:
            done = await wait_for(finished, seconds=90, what="the restarted bot to finish the sync")
        finally:
            bot.send_signal(signal.SIGTERM)
            _, errors = await bot.communicate()
        assert done.status == SyncStatus.OK
        assert b"Traceback" not in errors, errors.decode()[-2000:]
        store = Store(database_url)
        async with store.session() as session:
            runs = (await session.exec(select(SyncRun).order_by(col(SyncRun.id)))).all()
            company = (await session.exec(select(Company))).one()
        await store.close()
        assert next(run.status for run in runs) == SyncStatus.ABANDONED
        assert company.state == CompanyState.HEALTHY
        resumed = await vouchers(database_url)

        # The same company synced in one go, in-process, into a fresh database.
        reference_id = await prepare(second_database_url, key, world, bulk.id)
        settings = Settings(**{name.lower(): value for name, value in env.items()}, _env_file=None)  # type: ignore[arg-type]
        settings = settings.model_copy(update={"database_url": second_database_url, "eaccounting_rate_limit": 10_000})
        world.switches.rate_limit_per_minute = 10_000
        deps = build_deps(settings)
        try:
            assert await sync_company(deps, company_id=reference_id, actor="reference") == SyncStatus.OK
        finally:
            await deps.close_http()
            await deps.store.close()
        reference = await vouchers(second_database_url)

    assert len(reference) == VOUCHERS
    assert resumed == reference
