"""The sync schedule: one tick job with a fixed id that finds due companies in the database and starts them.

No APScheduler job per company: each company's `next_sync_at` is the schedule. Exactly one process ticks at a
time (a lease row in the database), a tick first closes runs whose owner vanished, then claims the due
companies by moving their `next_sync_at` ahead, and hands them to a bounded pool of runs.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from zoneinfo import ZoneInfo

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from bot.domain.types import SyncStatus
from bot.runtime import Deps
from bot.services import approvals, outbox
from bot.services.outbox import Note
from bot.store.models import Company, JobLease
from bot.sync import engine, report, runs

log = logging.getLogger(__name__)

JOB_ID = "sync-due-companies"
TICK_LEASE = "sync-tick"
# A claimed company not started within this long (its process died first) becomes due again by itself.
CLAIM_HOLD = timedelta(minutes=15)


async def recover(deps: Deps) -> list[int]:
    """Close runs whose lease ran out (at start-up and on every tick); their cards stop saying "syncing"."""
    now = deps.clock()
    async with deps.store.session() as session:
        companies = await runs.reap(session, now=now)
        for company_id in companies:
            company = await session.get(Company, company_id)
            if company is not None:
                await report.run_finished(session, company=company, outcome=SyncStatus.ABANDONED, problem=None, now=now)
        await session.commit()
    return companies


async def claim_tick(deps: Deps, *, lease: timedelta) -> bool:
    """Take (or keep) the tick's lease; False when another live process holds it."""
    now = deps.clock()
    async with deps.store.session() as session:
        result = await session.exec(
            update(JobLease)
            .where(
                col(JobLease.name) == TICK_LEASE,
                (col(JobLease.owner) == deps.owner) | (col(JobLease.lease_until) < now),
            )
            .values(owner=deps.owner, lease_until=now + lease)
        )
        if result.rowcount:
            await session.commit()
            return True
        session.add(JobLease(name=TICK_LEASE, owner=deps.owner, lease_until=now + lease))
        try:
            await session.commit()
        except IntegrityError:
            return False  # the row exists and someone else's lease is alive
        return True


class SyncPool:
    """Runs claimed companies, at most `parallel` at a time, as tracked background work."""

    def __init__(self, deps: Deps, *, parallel: int) -> None:
        self._deps = deps
        self._gate = asyncio.Semaphore(parallel)
        self.running: set[int] = set()

    def submit(self, company_id: int, *, actor: str = engine.SCHEDULE) -> None:
        """Start a company's run as soon as a slot is free."""
        if company_id in self.running:
            return
        self.running.add(company_id)
        self._deps.background.spawn(self._run(company_id, actor), name=f"sync-{company_id}")

    async def _run(self, company_id: int, actor: str) -> None:
        try:
            async with self._gate:
                if self._deps.stopping.is_set():
                    await engine.release(self._deps, company_id=company_id)
                else:
                    await engine.sync_company(self._deps, company_id=company_id, actor=actor)
        finally:
            self.running.discard(company_id)


async def tick(deps: Deps, pool: SyncPool, *, every: timedelta) -> list[int]:
    """One tick: recover, claim what is due, start it. Returns the claimed companies."""
    try:
        return await _tick(deps, pool, every=every)
    except asyncio.CancelledError:
        # A shutdown that could not wait for the tick. Each of its steps is its own transaction and the next
        # start redoes what is left, so this is no failure: one line, not the scheduler's traceback.
        log.info("tick stopped by the shutdown")
        return []


async def _tick(deps: Deps, pool: SyncPool, *, every: timedelta) -> list[int]:
    if deps.stopping.is_set() or not await claim_tick(deps, lease=every * 3):
        return []
    await recover(deps)
    await expire_links(deps)
    await remind_approvers(deps)
    await wake_snoozed(deps)
    await warn_secret_expiry(deps)
    await daily_digest(deps)
    claimed = await engine.due(deps, limit=deps.settings.sync_claim_batch, hold=CLAIM_HOLD.total_seconds())
    for company_id in claimed:
        pool.submit(company_id)
    if claimed:
        log.info("tick: %d companies due", len(claimed))
    return claimed


async def expire_links(deps: Deps) -> int:
    """Links whose time is up: the card says so, the requester hears it in the thread, the DM loses its button."""
    now = deps.clock()
    async with deps.store.session() as session:
        expired = await approvals.expire_due(session, now=now)
        for request in expired:
            company = await session.get(Company, request.company_id)
            if company is None:
                continue
            await outbox.approval_changed(session, request=request, now=now)
            await outbox.note(session, company=company, note=Note.EXPIRED, now=now, requested_by=request.requested_by)
            await outbox.requester_note(session, request=request, event="expired", now=now)
            await outbox.card(session, company=company, now=now)
        await session.commit()
    return len(expired)


# A pending link is reminded of once, this long before it runs out (when it was sent at least this long ago).
REMIND_BEFORE = timedelta(hours=24)


async def remind_approvers(deps: Deps) -> int:
    """Links that run out within a day and were not used: the approver hears once (the requester, when the
    approver is not in Slack). Returns how many."""
    now = deps.clock()
    async with deps.store.session() as session:
        due = await approvals.to_remind(session, now=now, before=REMIND_BEFORE)
        for request in due:
            await outbox.reminder(session, request=request, now=now)
        await session.commit()
    return len(due)


async def wake_snoozed(deps: Deps) -> int:
    """Alerts whose snooze is over and that are still open: their threads hear so."""
    async with deps.store.session() as session:
        woken = await outbox.snoozes_over(session, now=deps.clock())
        await session.commit()
    return len(woken)


SECRET_WARNING = timedelta(days=14)


async def warn_secret_expiry(deps: Deps) -> bool:
    """Two weeks before the Visma Connect client secret expires, tell the team once (and once more when it
    has expired). True when a notice was written."""
    expires = deps.settings.visma_client_secret_expires
    if expires is None:
        return False
    today = deps.clock().date()
    if today < expires - SECRET_WARNING:
        return False
    stage = "expired" if today >= expires else "expiring"
    async with deps.store.session() as session:
        written = await outbox.notice(
            session,
            key=f"secret:{expires.isoformat()}:{stage}",
            now=deps.clock(),
            notice="secret_expiry",
            expires=expires.isoformat(),
            stage=stage,
        )
        await session.commit()
    return written


async def daily_digest(deps: Deps) -> bool:
    """Once DIGEST_TIME has passed in TIMEZONE, today's digest for the team channel is written, once: a later
    tick, a restart or another process finds it written. True when this call wrote it."""
    settings = deps.settings
    if not settings.digest_enabled:
        return False
    now = deps.clock()
    local = now.astimezone(ZoneInfo(settings.timezone))
    if local.time() < settings.digest_time:
        return False
    async with deps.store.session() as session:
        if not await outbox.digest(session, day=local.date(), now=now):
            return False
        # The tick's lease keeps other processes out, but one whose tick stalled past its lease could get here
        # at the same moment: the day's claim row (its name is the primary key) lets only one of them commit.
        session.add(JobLease(name=outbox.digest_key(local.date()), owner=deps.owner, lease_until=now))
        try:
            await session.commit()
        except IntegrityError:
            return False
    return True


def build_scheduler(deps: Deps, *, every_seconds: int = 60) -> AsyncIOScheduler:
    """An asyncio scheduler with the tick job; `replace_existing` and a fixed id keep restarts from piling up."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    pool = SyncPool(deps, parallel=deps.settings.sync_parallel)
    scheduler.add_job(
        tick,
        "interval",
        seconds=every_seconds,
        args=[deps, pool],
        kwargs={"every": timedelta(seconds=every_seconds)},
        id=JOB_ID,
        replace_existing=True,
        max_instances=1,
        coalesce=True,
    )
    return scheduler
