"""Every company at a glance, for the staff's App Home: counts per state, one page of companies matching a
filter, pending approval links and open alerts. Reads only; knows nothing of Slack."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import case, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.problems import Problem
from bot.domain.types import AccountingSystem, ApprovalStatus, CompanyState
from bot.services import status
from bot.services.outbox import Kind
from bot.store.models import ApprovalRequest, Company, SlackMessage


class StateGroup(StrEnum):
    """The states people filter by, from the most urgent."""

    NEEDS_ACTION = "needs_action"
    AWAITING_APPROVAL = "awaiting_approval"
    HEALTHY = "healthy"
    DEACTIVATED = "deactivated"
    ALL = "all"

    @property
    def states(self) -> tuple[CompanyState, ...]:
        """The company states in the group (every state for ALL)."""
        if self is StateGroup.ALL:
            return tuple(CompanyState)
        return _GROUP_STATES[self]


_GROUP_STATES: dict[StateGroup, tuple[CompanyState, ...]] = {
    StateGroup.NEEDS_ACTION: (CompanyState.PERMISSION_ERROR, CompanyState.DISCONNECTED),
    StateGroup.AWAITING_APPROVAL: (CompanyState.AWAITING_APPROVAL, CompanyState.DRAFT),
    StateGroup.HEALTHY: (CompanyState.HEALTHY, CompanyState.CONNECTED, CompanyState.SYNCING),
    StateGroup.DEACTIVATED: (CompanyState.DEACTIVATED,),
}


def group_of(state: CompanyState) -> StateGroup:
    """The group a state belongs to."""
    return next(group for group, states in _GROUP_STATES.items() if state in states)


@dataclass(frozen=True, slots=True)
class Filter:
    """Which companies to list: a state group, one system (or all), and text in the name or number."""

    group: StateGroup = StateGroup.ALL
    system: AccountingSystem | None = None
    text: str = ""


@dataclass(frozen=True, slots=True)
class Page:
    """One page of the companies matching a filter, with where each one's card is."""

    cards: list[status.Card]
    total: int
    offset: int
    # company id -> (channel, ts) of its card, for those Slack has been given.
    card_messages: dict[int, tuple[str, str]]


@dataclass(frozen=True, slots=True)
class PendingApproval:
    """An approval link that is out and unused."""

    company_id: int
    company_name: str
    approver_user_id: str | None
    approver_email: str | None
    sent_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class OpenAlert:
    """An alert nobody has resolved yet."""

    company_id: int
    company_name: str
    summary: str
    since: datetime
    count: int
    snoozed_until: datetime | None


def _matching(query: Any, wanted: Filter, *, with_group: bool = True) -> Any:
    if with_group and wanted.group is not StateGroup.ALL:
        query = query.where(col(Company.state).in_([state.value for state in wanted.group.states]))
    if wanted.system is not None:
        query = query.where(Company.system == wanted.system.value)
    text = wanted.text.strip()
    if text:
        found = col(Company.name).icontains(text, autoescape=True)
        # An organisation number as people type it ("988 077 917", "556677-8899") is looked up without its spaces.
        digits = "".join(text.replace("-", "").split())
        if digits.isdigit():
            found = or_(found, col(Company.org_number).contains(digits, autoescape=True))
        query = query.where(found)
    return query


async def counts(session: AsyncSession, *, wanted: Filter) -> dict[CompanyState, int]:
    """How many companies are in each state, within the filter's system and text (not its state group)."""
    query = _matching(select(Company.state, func.count()), wanted, with_group=False).group_by(Company.state)
    return {CompanyState(state): int(number) for state, number in (await session.exec(query)).all()}


_URGENCY = case(
    *((col(Company.state).in_([s.value for s in states]), rank) for rank, states in enumerate(_GROUP_STATES.values())),
    else_=len(_GROUP_STATES),
)


async def page(session: AsyncSession, *, wanted: Filter, offset: int, limit: int, now: datetime) -> Page:
    """The companies matching the filter, the most urgent first, then by name; `offset` is clamped to the last
    page when the list got shorter since."""
    total = int((await session.exec(_matching(select(func.count()).select_from(Company), wanted))).one())
    if offset >= total:
        offset = max(total - 1, 0) // limit * limit
    query = _matching(select(Company), wanted).order_by(_URGENCY, func.lower(Company.name), col(Company.id))
    rows = (await session.exec(query.offset(offset).limit(limit))).all()
    cards = [await status.load_card(session, company=company, now=now) for company in rows]
    return Page(cards, total, offset, await card_messages(session, company_ids=[card.company_id for card in cards]))


async def card_messages(session: AsyncSession, *, company_ids: Iterable[int]) -> dict[int, tuple[str, str]]:
    """Where each company's card is in Slack (channel, ts), for the cards that have been posted."""
    ids = list(company_ids)
    if not ids:
        return {}
    query = select(SlackMessage.company_id, SlackMessage.channel, SlackMessage.ts).where(
        SlackMessage.kind == Kind.CARD, col(SlackMessage.company_id).in_(ids)
    )
    return {
        int(company_id): (channel, ts)
        for company_id, channel, ts in (await session.exec(query)).all()
        if company_id is not None and channel and ts
    }


async def pending_approvals(session: AsyncSession, *, limit: int) -> tuple[list[PendingApproval], int]:
    """Approval links out and unused, the soonest to expire first; and how many there are in all."""
    where = (ApprovalRequest.status == ApprovalStatus.PENDING,)
    total = int((await session.exec(select(func.count()).select_from(ApprovalRequest).where(*where))).one())
    query = (
        select(ApprovalRequest, Company.name)
        .join(Company, col(Company.id) == ApprovalRequest.company_id)
        .where(*where)
        .order_by(col(ApprovalRequest.expires_at), col(ApprovalRequest.id))
        .limit(limit)
    )
    found = [
        PendingApproval(
            company_id=request.company_id,
            company_name=name,
            approver_user_id=request.approver_user_id,
            approver_email=request.approver_email,
            sent_at=request.created_at,
            expires_at=request.expires_at,
        )
        for request, name in (await session.exec(query)).all()
    ]
    return found, total


async def open_alerts(session: AsyncSession, *, limit: int) -> tuple[list[OpenAlert], int]:
    """Alerts not yet resolved, the oldest first; and how many there are in all."""
    where = (SlackMessage.kind == Kind.ALERT, col(SlackMessage.closed_at).is_(None))
    total = int((await session.exec(select(func.count()).select_from(SlackMessage).where(*where))).one())
    query = (
        select(SlackMessage, Company.name)
        .join(Company, col(Company.id) == SlackMessage.company_id)
        .where(*where)
        .order_by(col(SlackMessage.created_at), col(SlackMessage.id))
        .limit(limit)
    )
    found = []
    for message, name in (await session.exec(query)).all():
        facts = message.facts or {}
        problem = facts.get("problem")
        summary = Problem.from_facts(problem).summary if problem else "a problem"
        found.append(
            OpenAlert(
                company_id=int(message.company_id or 0),
                company_name=name,
                summary=summary,
                since=message.created_at,
                count=int(facts.get("count", 1)),
                snoozed_until=message.snoozed_until,
            )
        )
    return found, total
