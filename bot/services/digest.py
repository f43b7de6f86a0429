"""The team's daily digest as facts read from the store. Plain values; nothing here knows Slack.

How many companies stand where, which connected companies' data is stale, which approval links run out within
48 hours (and who approves them), the problems still open, and per day of the last 14 how many companies
synced OK and how many only failed.

Stale, from the schedule: every connected company has a run each night in its slot of the nightly window
(SYNC_NIGHTLY_HOUR plus three hours) and, when that fails, retries within the hour. One missed night is what an
outage at Visma looks like and usually heals by itself; a company whose newest successful sync is older than
the start of the *last two* nightly windows that have closed has missed two nights in a row, and someone should
look. At 08:00 with the default hour 2 that is "no successful sync since 02:00 yesterday": data about 30 hours
old at the least, and at most about two days old when it is first listed. Companies whose access needs fixing
(permission error, disconnected) are counted as needing action instead, and deactivated ones are left out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, case, or_
from sqlmodel import col, func, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.problems import Problem
from bot.domain.schedule import NIGHT_SPREAD
from bot.domain.types import ApprovalStatus, CompanyState, SyncStatus
from bot.services.outbox import Kind
from bot.store.models import ApprovalRequest, Company, SlackMessage, SyncRun

HEALTH_DAYS = 14
EXPIRING_WITHIN = timedelta(hours=48)
# Companies that are meant to sync on the schedule (SYNCING is no longer entered, but old rows may hold it).
ON_SCHEDULE = (CompanyState.CONNECTED, CompanyState.SYNCING, CompanyState.HEALTHY)


@dataclass(frozen=True, slots=True)
class ExpiringLink:
    """A pending approval link that runs out soon, and who can approve it."""

    company_id: int
    company_name: str
    approver_user_id: str | None
    approver_email: str | None
    requested_by: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class StaleCompany:
    """A connected company without a successful sync since the stale line."""

    company_id: int
    name: str
    responsible_user_id: str
    last_sync_at: datetime | None
    connected_since: datetime


@dataclass(frozen=True, slots=True)
class OpenProblem:
    """An alert nobody has resolved yet."""

    company_id: int
    company_name: str
    responsible_user_id: str
    summary: str
    since: datetime
    count: int


@dataclass(frozen=True, slots=True)
class DayHealth:
    """One local day of syncs: companies with a successful run, and companies whose every run failed."""

    day: date
    ok: int
    failed: int


@dataclass(frozen=True, slots=True)
class Digest:
    """Everything one day's digest says."""

    day: date
    by_state: dict[CompanyState, int]
    expiring: list[ExpiringLink]
    stale: list[StaleCompany]
    stale_before: datetime
    problems: list[OpenProblem]
    health: list[DayHealth]

    @property
    def companies(self) -> int:
        """All registered companies."""
        return sum(self.by_state.values())


async def gather(session: AsyncSession, *, day: date, now: datetime, tz: str, nightly_hour: int) -> Digest:
    """Read a day's digest from the store as it is `now`."""
    stale_before = stale_line(now, tz=tz, nightly_hour=nightly_hour)
    return Digest(
        day=day,
        by_state=await counts_by_state(session),
        expiring=await expiring_links(session, now=now),
        stale=await stale_companies(session, before=stale_before),
        stale_before=stale_before,
        problems=await open_problems(session),
        health=await sync_health(session, last_day=day, now=now, tz=tz),
    )


async def counts_by_state(session: AsyncSession) -> dict[CompanyState, int]:
    """How many companies are in each state (states with none are left out)."""
    query = select(Company.state, func.count()).group_by(Company.state)
    return {CompanyState(state): int(count) for state, count in (await session.exec(query)).all()}


async def expiring_links(
    session: AsyncSession, *, now: datetime, within: timedelta = EXPIRING_WITHIN
) -> list[ExpiringLink]:
    """Pending links that still work but run out within `within`, soonest first."""
    query = (
        select(ApprovalRequest, Company.name)
        .join(Company, col(Company.id) == col(ApprovalRequest.company_id))
        .where(
            ApprovalRequest.status == ApprovalStatus.PENDING,
            col(ApprovalRequest.expires_at) > now,
            col(ApprovalRequest.expires_at) <= now + within,
        )
        .order_by(col(ApprovalRequest.expires_at), col(ApprovalRequest.id))
    )
    return [
        ExpiringLink(
            company_id=request.company_id,
            company_name=name,
            approver_user_id=request.approver_user_id,
            approver_email=request.approver_email,
            requested_by=request.requested_by,
            expires_at=request.expires_at,
        )
        for request, name in (await session.exec(query)).all()
    ]


def stale_line(now: datetime, *, tz: str, nightly_hour: int) -> datetime:
    """The start of the second-newest nightly window that has closed by `now`: a company on the schedule whose
    newest successful sync is older has missed two nights in a row (see the module's docstring)."""
    zone = ZoneInfo(tz)
    local_day = now.astimezone(zone).date()

    def window_start(day: date) -> datetime:
        return datetime.combine(day, time(nightly_hour), tzinfo=zone).astimezone(UTC)

    newest = window_start(local_day)
    while newest + NIGHT_SPREAD > now:  # tonight's window (or one that spans midnight) is not over yet
        local_day -= timedelta(days=1)
        newest = window_start(local_day)
    return window_start(local_day - timedelta(days=1))


async def stale_companies(session: AsyncSession, *, before: datetime) -> list[StaleCompany]:
    """Companies on the schedule whose newest successful sync (or, with none yet, their connection) is older
    than `before`, oldest first."""
    never = and_(col(Company.last_sync_at).is_(None), col(Company.state_since) < before)
    query = (
        select(Company)
        .where(col(Company.state).in_(ON_SCHEDULE), or_(col(Company.last_sync_at) < before, never))
        .order_by(col(Company.last_sync_at).is_not(None), col(Company.last_sync_at), col(Company.name))
    )
    return [
        StaleCompany(
            company_id=company.id,
            name=company.name,
            responsible_user_id=company.responsible_user_id,
            last_sync_at=company.last_sync_at,
            connected_since=company.state_since,
        )
        for company in (await session.exec(query)).all()
        if company.id is not None
    ]


async def open_problems(session: AsyncSession) -> list[OpenProblem]:
    """Alerts not yet resolved (a healthy sync or a person closes them), oldest first."""
    query = (
        select(SlackMessage, Company)
        .join(Company, col(Company.id) == col(SlackMessage.company_id))
        .where(SlackMessage.kind == Kind.ALERT, col(SlackMessage.closed_at).is_(None))
        .order_by(col(SlackMessage.created_at), col(SlackMessage.id))
    )
    return [
        OpenProblem(
            company_id=company.id,
            company_name=company.name,
            responsible_user_id=company.responsible_user_id,
            summary=_summary(message.facts),
            since=message.created_at,
            count=int(message.facts.get("count", 1)),
        )
        for message, company in (await session.exec(query)).all()
        if company.id is not None
    ]


def _summary(facts: dict[str, Any]) -> str:
    try:
        return Problem.from_facts(facts["problem"]).summary
    except (KeyError, TypeError, ValueError):
        return "see the alert in the card's thread"


async def sync_health(
    session: AsyncSession, *, last_day: date, now: datetime, tz: str, days: int = HEALTH_DAYS
) -> list[DayHealth]:
    """Per local day, the `days` days up to `last_day` (that day until `now`): companies with at least one
    successful run, and companies with failed runs and no successful one. Runs stopped by a shutdown or a
    crash count as neither: they resume. Days without runs are there, with zeros."""
    zone = ZoneInfo(tz)
    first = last_day - timedelta(days=days - 1)
    # Local midnights as instants, so that a day with a clock change is 23 or 25 hours long, as it was.
    edges = [datetime.combine(first + timedelta(days=n), time(0), tzinfo=zone).astimezone(UTC) for n in range(days + 1)]
    edges[-1] = min(edges[-1], now)
    finished = col(SyncRun.finished_at)
    # The day of each run is worked out in SQL from the edges, which any database compares the same way; the
    # grouping is on a subquery's columns, since PostgreSQL does not match a CASE with bound values in GROUP BY.
    day_of = case(*((finished < edge, n) for n, edge in enumerate(edges[1:])), else_=None)
    runs = (
        select(
            day_of.label("day"),
            col(SyncRun.company_id).label("company_id"),
            case((col(SyncRun.status) == SyncStatus.OK, 1), else_=0).label("ok"),
        )
        .where(
            finished >= edges[0],
            finished < edges[-1],
            col(SyncRun.status).in_([SyncStatus.OK, SyncStatus.FAILED]),
        )
        .subquery()
    )
    per_company = (
        select(runs.c.day, runs.c.company_id, func.max(runs.c.ok).label("ok"))
        .group_by(runs.c.day, runs.c.company_id)
        .subquery()
    )
    per_day = select(per_company.c.day, func.sum(per_company.c.ok), func.count()).group_by(per_company.c.day)
    counted: dict[int, tuple[int, int]] = {}
    for n, ok, companies in (await session.exec(per_day)).all():
        if n is not None:
            counted[int(n)] = (int(ok or 0), int(companies) - int(ok or 0))
    return [
        DayHealth(day=first + timedelta(days=n), ok=counted.get(n, (0, 0))[0], failed=counted.get(n, (0, 0))[1])
        for n in range(days)
    ]
