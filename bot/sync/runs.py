"""Sync runs as leased rows: started by one process, renewed while it works, closed whatever happens.

A run that is `running` holds a lease (owner, lease_until). Its owner renews the lease while it works; if the
process dies (a crash, a deploy, kill -9) the lease runs out, and the next tick or start-up closes the run as
abandoned and makes the company due again, so it resumes from its checkpoints. A partial unique index allows
one running run per company across every process sharing the database.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.types import CompanyState, SyncStatus
from bot.store.models import Company, SyncRun

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
SYNCABLE = (CompanyState.CONNECTED, CompanyState.HEALTHY, CompanyState.PERMISSION_ERROR)


async def start(
    session: AsyncSession,
    *,
    company_id: int,
    owner: str,
    actor: str,
    full: bool,
    now: datetime,
    lease: timedelta = LEASE,
) -> SyncRun | None:
    """Open a run for the company, or None when one is already running (here or in another process)."""
    await reap(session, now=now, company_id=company_id)
    run = SyncRun(company_id=company_id, started_at=now, owner=owner, lease_until=now + lease, actor=actor, full=full)
    session.add(run)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError:
        return None
    return run


async def reap(session: AsyncSession, *, now: datetime, company_id: int | None = None) -> list[int]:
    """Close running runs whose lease has run out; their companies become due at once. Returns the companies."""
    query = select(SyncRun).where(SyncRun.status == SyncStatus.RUNNING, col(SyncRun.lease_until) < now)
    if company_id is not None:
        query = query.where(SyncRun.company_id == company_id)
    stale = list((await session.exec(query)).all())
    for run in stale:
        log.warning("sync run %s of company %s lost its owner %s; closing it", run.id, run.company_id, run.owner)
        run.status = SyncStatus.ABANDONED
        run.finished_at = now
        run.error_message = "the process running it stopped; the next run resumes from its checkpoints"
        session.add(run)
        company = await session.get(Company, run.company_id)
        if company is not None and CompanyState(company.state) in SYNCABLE:
            company.next_sync_at = now
            session.add(company)
    return [run.company_id for run in stale]


async def renew(session: AsyncSession, *, run_id: int, owner: str, until: datetime) -> bool:
    """Extend a run's lease; False when the run is no longer ours (closed by someone else)."""
    result = await session.exec(
        update(SyncRun)
        .where(col(SyncRun.id) == run_id, col(SyncRun.owner) == owner, col(SyncRun.status) == SyncStatus.RUNNING)
        .values(lease_until=until)
    )
    return bool(result.rowcount)


async def live(session: AsyncSession, *, company_id: int, now: datetime) -> SyncRun | None:
    """The company's run that is running now, if any (a run whose lease ran out is not running)."""
    query = select(SyncRun).where(
        SyncRun.company_id == company_id, SyncRun.status == SyncStatus.RUNNING, col(SyncRun.lease_until) >= now
    )
    return (await session.exec(query)).first()
