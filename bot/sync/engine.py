"""One sync run of one company: read every book the company's system offers, write it as it arrives.

The engine knows no Visma system by name: it asks the company's system module what to read and how, and
brings the rest — a leased run row, pacing and retries (bot/sync/calls.py), tokens (bot/sync/tokens.py),
batched upserts with a checkpoint per book committed together with its rows, and an outcome recorded for
every way a run can end. Slack hears of it only after the outcome is committed, so a Slack failure can
never leave a company half-synced.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.books import Book
from bot.domain.problems import Problem
from bot.domain.schedule import next_sync
from bot.domain.types import AccountingSystem, CompanyState, SyncStatus
from bot.runtime import Deps
from bot.services import approvals, companies
from bot.store import books as store_books
from bot.store.models import Company, LedgerAccount, SyncRun, Voucher
from bot.sync import policy, report, runs
from bot.sync.calls import Calls
from bot.sync.tokens import TokenKeeper
from bot.visma.base import (
    GrantRevoked,
    NotOffered,
    Page,
    Profile,
    Refused,
    RunNotes,
    System,
    Target,
    Unauthorized,
    VismaError,
)

log = logging.getLogger(__name__)

# Rows written per transaction: pages are gathered until this many (or a second has passed), then upserted
# together with the book's cursor.
BATCH_ROWS = 2000
BATCH_SECONDS = 1.0
# The actor of runs the schedule starts.
SCHEDULE = "schedule"
# Pages read ahead while the previous ones are written (the writer runs in the database driver's thread).
READ_AHEAD = 2


class Interrupted(Exception):
    """The process is shutting down: the run stopped at a page boundary, its checkpoints committed."""


class LeaseLost(Exception):
    """Someone closed this run (its lease had run out): stop without writing more."""


@dataclass
class Outcome:
    """How a run ended, for the record and for the people watching."""

    status: SyncStatus
    problem: Problem | None = None
    failure: str | None = None
    # The few words the card shows ("answered 503"); `failure` is the whole story for the run record.
    short: str | None = None
    written: dict[Book, int] = field(default_factory=dict)
    skipped_books: list[Book] = field(default_factory=list)
    notes: RunNotes = field(default_factory=RunNotes)


async def sync_company(deps: Deps, *, company_id: int, actor: str, full: bool = False) -> SyncStatus | None:
    """Run one sync of a company; None when it is not syncable or a run is already going."""
    now = deps.clock()
    async with deps.store.session() as session:
        company = await session.get(Company, company_id)
        connection = await approvals.connection_for(session, company_id=company_id)
        if company is None or connection is None or CompanyState(company.state) not in runs.SYNCABLE:
            return None
        system = deps.systems.get(AccountingSystem(company.system))
        if system is None:
            log.error("company %s is in %s, which this installation has no module for", company_id, company.system)
            return None
        if full:
            await store_books.forget_cursors(session, company_id=company_id)
        run = await runs.start(
            session, company_id=company_id, owner=deps.owner, actor=actor, full=full, now=now, lease=deps.run_lease
        )
        if run is None:
            await session.rollback()
            return None
        if actor != SCHEDULE:
            # Someone pressed a button and watches the card; the nightly runs of hundreds of companies change
            # each card once, at the end, to stay well inside Slack's rate limits for chat.update.
            await report.run_started(session, company=company, now=now)
        await session.commit()
        assert run.id is not None
        assert connection.id is not None
        run_id, connection_id = run.id, connection.id
        target = Target(
            company_id=company_id,
            name=company.name,
            reconciliation_start=company.reconciliation_start,
            modules=tuple(company.modules),
            today=now.date(),
            external_id=company.external_id,
        )
    heartbeat = asyncio.create_task(_heartbeat(deps, run_id), name=f"lease-{run_id}")
    calls: Calls | None = None
    progress = Outcome(SyncStatus.OK)
    try:
        keeper = TokenKeeper(deps, system, connection_id=connection_id, policy=deps.retry_policy)
        calls = Calls(
            system=system,
            http=deps.http,
            limiters=deps.limiters,
            tokens=keeper,
            policy=deps.retry_policy,
            sleep=deps.sleep,
            scope=target.external_id,
        )
        outcome = await _read(deps, system, calls, progress, run_id=run_id, target=target, heartbeat=heartbeat)
    except asyncio.CancelledError:
        # A shutdown that could not wait: record it (shielded from the cancellation) and let it propagate.
        progress.status = SyncStatus.INTERRUPTED
        await asyncio.shield(_finish(deps, run_id, target, progress, calls))
        raise
    except Exception as exc:
        outcome = _failed(system, exc, company=target.name, run_id=run_id)
        outcome.written, outcome.notes = progress.written, progress.notes
    finally:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await heartbeat
    try:
        await _finish(deps, run_id, target, outcome, calls)
    except Exception:
        # The run row stays `running` until its lease runs out; then the next tick closes it and the company
        # resumes. Nothing is stuck, but someone should look.
        log.exception("could not record how sync run %s of company %s ended", run_id, company_id)
        return SyncStatus.FAILED
    return outcome.status


def _failed(system: System, exc: Exception, *, company: str, run_id: int) -> Outcome:
    if isinstance(exc, Interrupted):
        return Outcome(SyncStatus.INTERRUPTED, failure="stopped by a restart; resumes from its checkpoints")
    if isinstance(exc, LeaseLost):
        return Outcome(SyncStatus.ABANDONED, failure=str(exc))
    if isinstance(exc, Refused | GrantRevoked | Unauthorized):
        problem = system.classify(exc, company=company)
        if problem.is_permission:
            return Outcome(SyncStatus.FAILED, problem=problem, failure=problem.summary)
        return Outcome(SyncStatus.FAILED, failure=f"{problem.summary} ({problem.code})")
    if isinstance(exc, VismaError):
        # Outages, exhausted retries, our own configuration, an answer we do not understand: nobody at the
        # client can fix these, so they are counted and shown on the card only once they last.
        short = f"answered {exc.status}" if exc.status and exc.status != 200 else exc.message
        return Outcome(SyncStatus.FAILED, failure=exc.message, short=short[:100])
    reference = uuid.uuid4().hex[:8]
    log.error("sync run %s failed unexpectedly (ref %s)", run_id, reference, exc_info=exc)
    words = f"an unexpected error on our side (reference {reference})"
    return Outcome(SyncStatus.FAILED, failure=words, short=words)


async def _read(
    deps: Deps,
    system: System,
    calls: Calls,
    outcome: Outcome,
    *,
    run_id: int,
    target: Target,
    heartbeat: asyncio.Task[None],
) -> Outcome:
    profile = await system.profile(calls, external_id=target.external_id)
    await _remember_profile(deps, target.company_id, profile)
    async with deps.store.session() as session:
        stored = await store_books.cursors(session, company_id=target.company_id)
    for book in system.books(profile, target):
        try:
            written = await _read_book(
                deps,
                system,
                calls,
                book,
                run_id=run_id,
                target=target,
                profile=profile,
                cursor=stored.get(book),
                notes=outcome.notes,
                heartbeat=heartbeat,
            )
        except NotOffered:
            log.info("company %s: %s does not offer %s", target.company_id, system.label, book.value)
            outcome.skipped_books.append(book)
            continue
        outcome.written[book] = written
    return outcome


async def _read_book(
    deps: Deps,
    system: System,
    calls: Calls,
    book: Book,
    *,
    run_id: int,
    target: Target,
    profile: Profile,
    cursor: dict[str, Any] | None,
    notes: RunNotes,
    heartbeat: asyncio.Task[None],
) -> int:
    pages: asyncio.Queue[Page | BaseException | None] = asyncio.Queue(maxsize=READ_AHEAD)

    async def reader() -> None:
        try:
            async for page in system.read(book, calls, target=target, profile=profile, cursor=cursor, notes=notes):
                await pages.put(page)
                if deps.stopping.is_set():
                    await pages.put(Interrupted())
                    return
            await pages.put(None)
        except asyncio.CancelledError:
            raise  # the writer stopped (it failed or was cancelled): nobody reads the queue any more
        except Exception as exc:  # handed to the writer, which raises it in the run's task
            await pages.put(exc)

    task = asyncio.create_task(reader(), name=f"read-{run_id}-{book.value}")
    written = 0
    rows: list[tuple[Any, ...]] = []
    last_cursor: dict[str, Any] | None = None
    have_cursor = False
    flushed = time.monotonic()
    try:
        while True:
            item = await pages.get()
            if heartbeat.done():
                raise LeaseLost("the run's lease was lost")
            if isinstance(item, BaseException):
                if isinstance(item, Interrupted):
                    written += await _write(deps, run_id, target.company_id, book, rows, last_cursor, have_cursor)
                raise item
            if item is None:
                break
            rows.extend(item.rows)
            last_cursor, have_cursor = item.cursor, True
            if len(rows) >= BATCH_ROWS or time.monotonic() - flushed >= BATCH_SECONDS:
                written += await _write(deps, run_id, target.company_id, book, rows, last_cursor, have_cursor)
                rows, have_cursor, flushed = [], False, time.monotonic()
        written += await _write(deps, run_id, target.company_id, book, rows, last_cursor, have_cursor)
    finally:
        if not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
    return written


async def _write(
    deps: Deps,
    run_id: int,
    company_id: int,
    book: Book,
    rows: list[tuple[Any, ...]],
    cursor: dict[str, Any] | None,
    have_cursor: bool,
) -> int:
    if not rows and not have_cursor:
        return 0
    async with deps.store.writing(), deps.store.session() as session:
        written = await store_books.upsert(session, book=book, company_id=company_id, rows=rows)
        if have_cursor:
            await store_books.save_cursor(session, company_id=company_id, book=book, cursor=cursor, now=deps.clock())
        run = await session.get(SyncRun, run_id)
        if run is None or run.status != SyncStatus.RUNNING or run.owner != deps.owner:
            await session.rollback()
            raise LeaseLost("the run was closed by another process")
        run.rows_written += written
        session.add(run)
        await session.commit()
    return written


async def _heartbeat(deps: Deps, run_id: int) -> None:
    """Renew the run's lease while it works; end (and so stop the run) when the lease is no longer ours."""
    every = deps.run_lease.total_seconds() / 3
    while True:
        await asyncio.sleep(every)
        try:
            async with deps.store.session() as session:
                ours = await runs.renew(session, run_id=run_id, owner=deps.owner, until=deps.clock() + deps.run_lease)
                await session.commit()
        except Exception as exc:  # a busy database: the lease has two more beats before it runs out
            log.warning("could not renew the lease of sync run %s: %r", run_id, exc)
            continue
        if not ours:
            log.warning("sync run %s lost its lease", run_id)
            return


async def _remember_profile(deps: Deps, company_id: int, profile: Profile) -> None:
    async with deps.store.session() as session:
        company = await session.get(Company, company_id)
        if company is not None and company.books_locked_to != profile.locked_to:
            company.books_locked_to = profile.locked_to
            session.add(company)
            await session.commit()


async def _finish(deps: Deps, run_id: int, target: Target, outcome: Outcome, calls: Calls | None) -> None:
    """Record the outcome and move the company on, in one transaction (in turn with the other writers on
    SQLite: when many runs end at once, in an outage, they would otherwise fight over its one write lock)."""
    now = deps.clock()
    async with deps.store.writing(), deps.store.session() as session:
        run = await session.get(SyncRun, run_id)
        company = await session.get(Company, target.company_id)
        if run is None or company is None:
            return
        if run.status != SyncStatus.RUNNING or run.owner != deps.owner:
            return  # someone closed it as abandoned meanwhile; their record stands
        run.status = outcome.status
        run.finished_at = now
        run.lease_until = now
        if calls is not None:
            run.requests, run.retries = calls.requests, calls.retries
        run.written = {book.value: count for book, count in outcome.written.items()}
        if outcome.problem is not None:
            run.error_code, run.error_message = outcome.problem.code, outcome.problem.summary
        elif outcome.failure:
            run.error_message = outcome.failure
        if skipped := outcome.notes.values.get("skipped"):
            run.error_message = f"{skipped} row(s) from Visma lacked a date or an account number and were not stored"
        state = CompanyState(company.state)
        if outcome.status is SyncStatus.OK:
            await _totals(session, run, target.company_id)
            if state in (CompanyState.CONNECTED, CompanyState.PERMISSION_ERROR):
                companies.transition(
                    session, company=company, to=CompanyState.HEALTHY, actor=run.actor or "sync", now=now
                )
            company.last_sync_at = now
            company.failing_since, company.failure_count, company.failure_reason = None, 0, None
            company.next_sync_at = _scheduled(deps, company, now)
        elif outcome.status in (SyncStatus.INTERRUPTED, SyncStatus.ABANDONED):
            company.next_sync_at = now  # resume as soon as a process is there to do it
        elif outcome.problem is not None:
            companies.transition(
                session,
                company=company,
                to=CompanyState.PERMISSION_ERROR,
                actor="sync",
                now=now,
                reason=outcome.problem.summary,
            )
            company.next_sync_at = _scheduled(deps, company, now)
        else:
            log.warning("sync run %s of company %s failed: %s", run_id, target.company_id, outcome.failure)
            company.failure_count += 1
            company.failing_since = company.failing_since or run.started_at
            company.failure_reason = outcome.short or outcome.failure
            company.next_sync_at = policy.retry_after_failure(count=company.failure_count, now=now)
        session.add_all([run, company])
        await report.run_finished(session, company=company, outcome=outcome.status, problem=outcome.problem, now=now)
        await session.commit()


async def _totals(session: AsyncSession, run: SyncRun, company_id: int) -> None:
    """What the store now holds for the company: the card's "237 vouchers, 8 accounts, Jan–Oct 2026"."""
    vouchers = (
        await session.exec(
            select(func.count(), func.min(Voucher.voucher_date), func.max(Voucher.voucher_date)).where(
                Voucher.company_id == company_id
            )
        )
    ).one()
    accounts = (
        await session.exec(
            select(func.count(func.distinct(LedgerAccount.number))).where(LedgerAccount.company_id == company_id)
        )
    ).one()
    run.vouchers, run.period_from, run.period_to = int(vouchers[0]), vouchers[1], vouchers[2]
    run.accounts = int(accounts)


def _scheduled(deps: Deps, company: Company, now: datetime) -> datetime:
    assert company.id is not None
    return next_sync(
        now=now,
        company_id=company.id,
        vat_frequency=company.vat_frequency,
        period_type=company.period_type,
        country=company.country,
        nightly_hour=deps.settings.sync_nightly_hour,
        busy_every=deps.settings.sync_busy_interval,
        tz=deps.settings.timezone,
    )


async def release(deps: Deps, *, company_id: int) -> None:
    """Give back a claimed company that was not started (a shutdown came first): it is due again at once."""
    async with deps.store.session() as session:
        company = await session.get(Company, company_id)
        if company is not None:
            company.next_sync_at = deps.clock()
            session.add(company)
            await session.commit()


async def due(deps: Deps, *, limit: int, hold: float) -> list[int]:
    """Claim up to `limit` due companies: their next_sync_at moves `hold` seconds ahead so no other tick takes them."""
    now = deps.clock()
    async with deps.store.session() as session:
        due_ids = (
            select(Company.id)
            .where(col(Company.next_sync_at) <= now, col(Company.state).in_([s.value for s in runs.SYNCABLE]))
            .order_by(col(Company.next_sync_at))
            .limit(limit)
        )
        result = await session.exec(
            update(Company)
            .where(col(Company.id).in_(due_ids.scalar_subquery()))
            .values(next_sync_at=now + timedelta(seconds=hold))
            .returning(col(Company.id))
        )
        claimed = [int(row[0]) for row in result.all()]
        await session.commit()
    return claimed
