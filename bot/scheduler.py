"""The sync schedule: one job with a fixed id that syncs every company whose time has come."""

from __future__ import annotations

import asyncio
import logging

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.runtime import Deps
from bot.sync import due_companies, sync_company

log = logging.getLogger(__name__)

JOB_ID = "sync-due-companies"
# How many companies sync at once: Visma's limits are per client and endpoint, so a few at a time.
PARALLEL_SYNCS = 4


async def sync_due(deps: Deps) -> int:
    """Sync every company that is due; returns how many were started."""
    async with deps.store.session() as session:
        due = await due_companies(session, now=deps.clock())
    gate = asyncio.Semaphore(PARALLEL_SYNCS)

    async def one(company_id: int) -> None:
        async with gate:
            await sync_company(deps, company_id=company_id, actor="schedule")

    results = await asyncio.gather(*(one(company_id) for company_id in due), return_exceptions=True)
    for company_id, outcome in zip(due, results, strict=True):
        if isinstance(outcome, BaseException):
            log.error("scheduled sync of company %s failed", company_id, exc_info=outcome)
    return len(due)


def build_scheduler(deps: Deps, *, every_seconds: int = 60) -> AsyncIOScheduler:
    """An asyncio scheduler with the sync job; `replace_existing` and a fixed id keep restarts from piling up."""
    scheduler = AsyncIOScheduler(timezone="UTC")
    scheduler.add_job(
        sync_due,
        "interval",
        seconds=every_seconds,
        args=[deps],
        id=JOB_ID,
        replace_existing=True,
        max_instances=1,
        coalesce=True,
    )
    return scheduler
