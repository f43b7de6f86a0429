"""The outbox: what Slack should show, recorded in the same transaction as the change it reports.

The core never calls Slack. It writes (or bumps) a `SlackMessage` row saying what happened, in plain facts;
after the commit the Slack side (commands/delivery) renders each due message from the company's current
state and delivers it, with retries, pacing and restarts in between. Nothing here knows mrkdwn or Block Kit.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.problems import Problem
from bot.store.engine import OUTBOX_WRITTEN
from bot.store.models import ApprovalRequest, Company, SlackMessage


class Kind(StrEnum):
    """What a message is; each is rendered and delivered its own way."""

    CARD = "card"  # the company's one status card in the team channel, edited in place
    NOTE = "note"  # a line in the card's thread (connected, declined, first sync, recovered, outage)
    ALERT = "alert"  # a problem in the card's thread, updated with a count, resolved in place
    APPROVAL_DM = "approval_dm"  # the approver's DM with the link, edited when approved or declined
    CONFIRMATION = "confirmation"  # the requester's ephemeral "saved; the link went to …" (a DM if it cannot)
    NOTICE = "notice"  # a message to the team about the firm's own set-up (a client secret about to expire)


class Note(StrEnum):
    """Thread notes: something happened that the team should read once."""

    CONNECTED = "connected"
    DECLINED = "declined"
    FIRST_SYNC = "first_sync"
    RECOVERED = "recovered"
    OUTAGE = "outage"
    EXPIRED = "expired"


def _wrote(session: AsyncSession) -> None:
    session.info[OUTBOX_WRITTEN] = True


def _new(session: AsyncSession, *, kind: Kind, now: datetime, **values: Any) -> SlackMessage:
    message = SlackMessage(kind=kind, next_attempt_at=now, created_at=now, **values)
    session.add(message)
    _wrote(session)
    return message


def changed(session: AsyncSession, message: SlackMessage, *, now: datetime) -> None:
    """Ask for the message to be drawn again from the current state (one edit however many changes)."""
    message.version += 1
    if not message.dead:
        message.pending = True
        message.next_attempt_at = min(message.next_attempt_at, now)
    session.add(message)
    _wrote(session)


async def card(session: AsyncSession, *, company: Company, now: datetime) -> SlackMessage:
    """The company's card changed: post it, or edit it in place."""
    assert company.id is not None
    message = await card_of(session, company_id=company.id)
    if message is None:
        message = _new(session, kind=Kind.CARD, now=now, company_id=company.id)
        await session.flush()
    else:
        changed(session, message, now=now)
    return message


async def card_of(session: AsyncSession, *, company_id: int) -> SlackMessage | None:
    """The company's card message, if one was ever asked for."""
    query = select(SlackMessage).where(SlackMessage.kind == Kind.CARD, SlackMessage.company_id == company_id)
    return (await session.exec(query)).first()


async def note(session: AsyncSession, *, company: Company, note: Note, now: datetime, **facts: Any) -> None:
    """A line in the card's thread (the card is posted first)."""
    parent = await card(session, company=company, now=now)
    _new(session, kind=Kind.NOTE, now=now, company_id=company.id, parent_id=parent.id, facts={"note": note, **facts})


async def open_alert(session: AsyncSession, *, company_id: int) -> SlackMessage | None:
    """The company's unresolved alert, if any."""
    query = select(SlackMessage).where(
        SlackMessage.kind == Kind.ALERT,
        SlackMessage.company_id == company_id,
        col(SlackMessage.closed_at).is_(None),
    )
    return (await session.exec(query.order_by(col(SlackMessage.id).desc()))).first()


async def alert(session: AsyncSession, *, company: Company, problem: Problem, now: datetime) -> SlackMessage:
    """A problem in the card's thread; the same cause again counts on the open alert instead of a new one."""
    assert company.id is not None
    current = await open_alert(session, company_id=company.id)
    if current is not None and current.facts.get("code") == problem.code:
        current.facts = {
            **current.facts,
            "problem": problem.facts(),
            "count": int(current.facts.get("count", 1)) + 1,
            "last_seen": now.isoformat(),
        }
        changed(session, current, now=now)
        return current
    if current is not None:
        close_alert(session, current, how="replaced", now=now)
    parent = await card(session, company=company, now=now)
    message = _new(
        session,
        kind=Kind.ALERT,
        now=now,
        company_id=company.id,
        parent_id=parent.id,
        facts={"problem": problem.facts(), "code": problem.code, "count": 1, "last_seen": now.isoformat()},
    )
    await session.flush()
    return message


def close_alert(session: AsyncSession, message: SlackMessage, *, how: str, now: datetime, **facts: Any) -> None:
    """Mark an alert resolved (it keeps its explanation, gains a resolved line and loses its buttons)."""
    message.closed_at = now
    message.facts = {**message.facts, "resolved": how, **facts}
    changed(session, message, now=now)


async def resolve_alert(session: AsyncSession, *, company: Company, how: str, now: datetime, **facts: Any) -> bool:
    """Resolve the company's open alert, if any; True when there was one."""
    assert company.id is not None
    current = await open_alert(session, company_id=company.id)
    if current is None:
        return False
    close_alert(session, current, how=how, now=now, **facts)
    return True


async def approval_dm(
    session: AsyncSession, *, request: ApprovalRequest, link_sealed: str, now: datetime
) -> SlackMessage:
    """The approver's DM with the link (the link travels sealed, and is wiped once the DM is posted)."""
    message = _new(
        session,
        kind=Kind.APPROVAL_DM,
        now=now,
        company_id=request.company_id,
        request_id=request.id,
        user_id=request.approver_user_id,
        secret_sealed=link_sealed,
    )
    await session.flush()
    return message


async def dm_of(session: AsyncSession, *, request_id: int) -> SlackMessage | None:
    """The approver's DM of a request, if one was asked for."""
    query = select(SlackMessage).where(SlackMessage.kind == Kind.APPROVAL_DM, SlackMessage.request_id == request_id)
    return (await session.exec(query)).first()


async def approval_changed(session: AsyncSession, *, request: ApprovalRequest, now: datetime) -> None:
    """The request was approved, declined or replaced: its DM is drawn again (without the link's button)."""
    assert request.id is not None
    message = await dm_of(session, request_id=request.id)
    if message is not None and message.ts is not None:
        changed(session, message, now=now)
    elif message is not None:
        # Never posted (the approver was unreachable, or Slack has not taken it yet): nothing to edit, and
        # a link that no longer works is not worth posting.
        message.pending, message.dead, message.secret_sealed = False, True, None
        message.last_error = f"request {request.status}"
        session.add(message)


def confirmation(
    session: AsyncSession,
    *,
    company: Company,
    request: ApprovalRequest,
    dm: SlackMessage | None,
    channel: str,
    user: str,
    link_sealed: str,
    now: datetime,
) -> None:
    """Tell the requester where the link went; it waits for the DM, and carries the link to forward if the
    approver could not be reached."""
    _new(
        session,
        kind=Kind.CONFIRMATION,
        now=now,
        company_id=company.id,
        request_id=request.id,
        parent_id=dm.id if dm else None,
        channel=channel,
        user_id=user,
        secret_sealed=link_sealed,
    )


async def notice(session: AsyncSession, *, key: str, now: datetime, **facts: Any) -> bool:
    """A notice to the team channel, said once per `key`; False when it was already said."""
    said = select(SlackMessage).where(SlackMessage.kind == Kind.NOTICE, SlackMessage.user_id == key)
    if (await session.exec(said)).first() is not None:
        return False
    # `user_id` holds the notice's key: notices go to the channel, never to a person.
    _new(session, kind=Kind.NOTICE, now=now, user_id=key, facts={"key": key, **facts})
    return True
