"""The outbox: what Slack should show, recorded in the same transaction as the change it reports.

The core never calls Slack. It writes (or bumps) a `SlackMessage` row saying what happened, in plain facts;
after the commit the Slack side (commands/delivery) renders each due message from the company's current
state and delivers it, with retries, pacing and restarts in between. Nothing here knows mrkdwn or Block Kit.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select
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
    INCIDENT = "incident"  # one message in the channel for many companies hit by the same cause (an outage)
    REQUESTER_NOTE = "requester_note"  # a DM to whoever sent the link: approved, declined, expired or failed
    REMINDER = "reminder"  # a reminder, in the approver's DM, that the link runs out soon
    DIGEST = "digest"  # the team channel's daily digest: counts, what needs a person, a chart of sync health


class Note(StrEnum):
    """Thread notes: something happened that the team should read once."""

    CONNECTED = "connected"
    DECLINED = "declined"
    FIRST_SYNC = "first_sync"
    RECOVERED = "recovered"
    OUTAGE = "outage"
    EXPIRED = "expired"
    SNOOZE_OVER = "snooze_over"


def _wrote(session: AsyncSession) -> None:
    session.info[OUTBOX_WRITTEN] = True


# Many companies failing with one cause within this window roll up into one message that lists them.
ROLLUP_AT = 3
ROLLUP_WINDOW = timedelta(minutes=15)


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
        message = _new(session, kind=Kind.CARD, now=now, company_id=company.id, channel=company.channel)
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


# Alerts and roll-ups are read, then written, by whichever run ends: on PostgreSQL (read committed) two run endings
# at once could each fold or count on the same rows and one change would be lost. They take this lock, held to
# the end of their transaction, so they go one at a time (SQLite's single writer already does this).
_ALERTS_LOCK = 0x6F6E626F61726431


async def in_turn(session: AsyncSession) -> None:
    """Wait for the alerts' turn (a no-op on SQLite); read the alert again after it."""
    if session.bind is not None and session.bind.dialect.name == "postgresql":
        await session.exec(select(func.pg_advisory_xact_lock(_ALERTS_LOCK)))


async def alert(session: AsyncSession, *, company: Company, problem: Problem, now: datetime) -> SlackMessage:
    """A problem in the card's thread; the same cause again counts on the open alert instead of a new one."""
    await in_turn(session)
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
        await _touch_incident(session, current, now=now)
        return current
    if current is not None:
        await close_alert(session, current, how="replaced", now=now)
    facts = {"problem": problem.facts(), "code": problem.code, "count": 1, "last_seen": now.isoformat()}
    return await _trouble(session, company, kind=Kind.ALERT, cause=problem.code, facts=facts, problem=problem, now=now)


async def outage(session: AsyncSession, *, company: Company, now: datetime, **facts: Any) -> SlackMessage:
    """The company's syncs have failed for a while for a reason nobody at the client can fix (Visma does not
    answer): a note in its thread, or a line in the roll-up when many companies of the system fail at once."""
    await in_turn(session)
    facts = {"note": Note.OUTAGE, **facts}
    return await _trouble(session, company, kind=Kind.NOTE, cause="outage", facts=facts, problem=None, now=now)


async def _trouble(
    session: AsyncSession,
    company: Company,
    *,
    kind: Kind,
    cause: str,
    facts: dict[str, Any],
    problem: Problem | None,
    now: datetime,
) -> SlackMessage:
    """A new alert or outage note in the company's thread, rolled up with others of the same cause."""
    parent = await card(session, company=company, now=now)
    message = _new(
        session,
        kind=kind,
        now=now,
        company_id=company.id,
        parent_id=parent.id,
        cause=f"{company.system}:{cause}",
        facts=facts,
    )
    await session.flush()
    await _roll_up(session, message, problem=problem.facts() if problem else None, now=now)
    return message


async def outage_over(session: AsyncSession, *, company: Company, now: datetime) -> bool | None:
    """The company's outage note is over: None when it had none, True when it was part of a roll-up (which is
    edited; the company's thread hears nothing more), False when the thread should hear of the recovery."""
    await in_turn(session)
    query = select(SlackMessage).where(
        SlackMessage.kind == Kind.NOTE,
        SlackMessage.company_id == company.id,
        col(SlackMessage.cause).is_not(None),
        col(SlackMessage.closed_at).is_(None),
    )
    notes = (await session.exec(query)).all()
    rolled = False
    for message in notes:
        message.closed_at = now
        session.add(message)
        rolled = await _touch_incident(session, message, now=now) or rolled
    return rolled if notes else None


async def close_alert(session: AsyncSession, message: SlackMessage, *, how: str, now: datetime, **facts: Any) -> None:
    """Mark an alert resolved (it keeps its explanation, gains a resolved line and loses its buttons)."""
    message.closed_at = now
    message.snoozed_until = None
    message.facts = {**message.facts, "resolved": how, **facts}
    changed(session, message, now=now)
    await _touch_incident(session, message, now=now)


def snooze(session: AsyncSession, message: SlackMessage, *, until: datetime | None, by: str, now: datetime) -> None:
    """Quiet an open alert until `until` (None ends a snooze): it keeps counting; if it is still open then, the
    thread hears so. The time is the row's `snoozed_until`; the facts keep only who snoozed it."""
    message.snoozed_until = until
    facts = {key: value for key, value in message.facts.items() if key != "snoozed_by"}
    message.facts = {**facts, "snoozed_by": by} if until is not None else facts
    changed(session, message, now=now)


async def snoozes_over(session: AsyncSession, *, now: datetime) -> list[SlackMessage]:
    """Open alerts whose snooze has passed: each gets a note in its thread, and is drawn without the snooze."""
    query = select(SlackMessage).where(
        SlackMessage.kind == Kind.ALERT,
        col(SlackMessage.closed_at).is_(None),
        col(SlackMessage.snoozed_until) <= now,
    )
    woken = list((await session.exec(query)).all())
    for message in woken:
        message.snoozed_until = None
        changed(session, message, now=now)
        await _redraw_card(session, message.company_id, now=now)
        if message.parent_id is not None and not message.facts.get("folded"):
            _new(
                session,
                kind=Kind.NOTE,
                now=now,
                company_id=message.company_id,
                parent_id=message.parent_id,
                facts={"note": Note.SNOOZE_OVER, "alert": message.id, "by": message.facts.get("snoozed_by")},
            )
    return woken


async def _redraw_card(session: AsyncSession, company_id: int | None, *, now: datetime) -> None:
    card_message = await card_of(session, company_id=company_id) if company_id is not None else None
    if card_message is not None:
        changed(session, card_message, now=now)


async def incident_of(session: AsyncSession, *, cause: str) -> SlackMessage | None:
    """The open roll-up of a cause, if any."""
    query = select(SlackMessage).where(
        SlackMessage.kind == Kind.INCIDENT, SlackMessage.cause == cause, col(SlackMessage.closed_at).is_(None)
    )
    return (await session.exec(query)).first()


def _open_members(cause: str, *, incident_id: int | None, since: datetime | None = None) -> Any:
    query = select(SlackMessage).where(
        col(SlackMessage.kind).in_([Kind.ALERT, Kind.NOTE]),
        SlackMessage.cause == cause,
        col(SlackMessage.closed_at).is_(None),
        col(SlackMessage.company_id).is_not(None),
    )
    if since is not None:
        query = query.where(col(SlackMessage.created_at) >= since)
    # With no open roll-up for the cause, no open member is folded: a roll-up closes only once all of its are.
    return query if incident_id is None else query.where(SlackMessage.parent_id == incident_id)


async def _roll_up(
    session: AsyncSession, message: SlackMessage, *, problem: dict[str, Any] | None, now: datetime
) -> None:
    """Fold a new alert or outage note into its cause's roll-up, starting one when enough companies have it."""
    assert message.cause is not None
    incident = await incident_of(session, cause=message.cause)
    if incident is None:
        recent = list(
            (await session.exec(_open_members(message.cause, incident_id=None, since=now - ROLLUP_WINDOW))).all()
        )
        if len(recent) < ROLLUP_AT:
            return
        incident = await _start_incident(session, cause=message.cause, problem=problem, now=now)
        members = recent
    else:
        members = [message]
    for member in members:
        if member.facts.get("folded"):
            continue
        await _redraw_card(session, member.company_id, now=now)  # it now points at the roll-up
        member.parent_id = incident.id
        member.facts = {**member.facts, "folded": True}
        if member.ts is None:
            member.pending = False  # never posted on its own: the roll-up lists it
            session.add(member)
        else:
            changed(session, member, now=now)  # posted before the roll-up began: now points at it
    incident.facts = {**incident.facts, "last_seen": now.isoformat()}
    changed(session, incident, now=now)


async def _start_incident(
    session: AsyncSession, *, cause: str, problem: dict[str, Any] | None, now: datetime
) -> SlackMessage:
    facts = {"cause": cause, "problem": problem, "first_seen": now.isoformat(), "last_seen": now.isoformat()}
    try:
        async with session.begin_nested():
            incident = _new(session, kind=Kind.INCIDENT, now=now, cause=cause, facts=facts)
            await session.flush()
    except IntegrityError:  # another run started it a moment ago
        existing = await incident_of(session, cause=cause)
        assert existing is not None
        return existing
    return incident


async def retry_incident(session: AsyncSession, *, incident_id: int, now: datetime) -> int:
    """Make every company a roll-up lists as failing due now; how many there are."""
    incident = await session.get(SlackMessage, incident_id)
    if incident is None or incident.kind != Kind.INCIDENT or incident.closed_at is not None:
        return 0
    query = select(Company).where(
        col(Company.id).in_(
            select(SlackMessage.company_id).where(
                SlackMessage.parent_id == incident_id, col(SlackMessage.closed_at).is_(None)
            )
        ),
        col(Company.next_sync_at).is_not(None),
    )
    failing = list((await session.exec(query)).all())
    for company in failing:
        company.next_sync_at = now
        session.add(company)
    return len(failing)


async def _touch_incident(session: AsyncSession, member: SlackMessage, *, now: datetime) -> bool:
    """A member of a roll-up changed: the roll-up is drawn again, and closed once no member is open. True when
    the member belongs to one."""
    if not member.facts.get("folded") or member.parent_id is None:
        return False
    incident = await session.get(SlackMessage, member.parent_id)
    if incident is None or incident.kind != Kind.INCIDENT:
        return False
    await session.flush()
    if incident.closed_at is None:
        still = (
            select(func.count())
            .select_from(SlackMessage)
            .where(SlackMessage.parent_id == incident.id, col(SlackMessage.closed_at).is_(None))
        )
        if (await session.exec(still)).one() == 0:
            incident.closed_at = now
    changed(session, incident, now=now)
    return True


async def resolve_alert(session: AsyncSession, *, company: Company, how: str, now: datetime, **facts: Any) -> bool:
    """Resolve the company's open alert, if any; True when there was one."""
    await in_turn(session)
    assert company.id is not None
    current = await open_alert(session, company_id=company.id)
    if current is None:
        return False
    await close_alert(session, current, how=how, now=now, **facts)
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


async def requester_note(
    session: AsyncSession, *, request: ApprovalRequest, event: str, now: datetime, **facts: Any
) -> bool:
    """Tell whoever sent the link what became of it (approved, declined, expired, failed), by DM and once per
    request and event; False when it was already said."""
    said = select(SlackMessage.id).where(
        SlackMessage.kind == Kind.REQUESTER_NOTE, SlackMessage.request_id == request.id, SlackMessage.cause == event
    )
    if (await session.exec(said)).first() is not None:
        return False
    # `cause` holds the event, so that a second failure of the same link says nothing new.
    _new(
        session,
        kind=Kind.REQUESTER_NOTE,
        now=now,
        company_id=request.company_id,
        request_id=request.id,
        user_id=request.requested_by,
        cause=event,
        facts={"event": event, **facts},
    )
    return True


async def reminder(session: AsyncSession, *, request: ApprovalRequest, now: datetime) -> None:
    """Remind the approver (in their DM's thread), or the requester when the approver is not in Slack or the DM
    never reached them, that the link runs out soon."""
    dm = await dm_of(session, request_id=request.id) if request.id is not None else None
    reached = dm is not None and dm.ts is not None
    _new(
        session,
        kind=Kind.REMINDER,
        now=now,
        company_id=request.company_id,
        request_id=request.id,
        parent_id=dm.id if reached and dm else None,
        user_id=request.approver_user_id if reached else request.requested_by,
        facts={"to": "approver" if reached else "requester"},
    )
    request.reminded_at = now
    session.add(request)


async def notice(session: AsyncSession, *, key: str, now: datetime, **facts: Any) -> bool:
    """A notice to the team channel, said once per `key`; False when it was already said."""
    said = select(SlackMessage).where(SlackMessage.kind == Kind.NOTICE, SlackMessage.user_id == key)
    if (await session.exec(said)).first() is not None:
        return False
    # `user_id` holds the notice's key: notices go to the channel, never to a person.
    _new(session, kind=Kind.NOTICE, now=now, user_id=key, facts={"key": key, **facts})
    return True


def digest_key(day: date) -> str:
    """The key a day's digest is written under (in `user_id`, as a notice's key)."""
    return f"digest:{day.isoformat()}"


async def digest(session: AsyncSession, *, day: date, now: datetime) -> bool:
    """The team channel's digest for `day` (a local date), said once; False when that day's was already written.
    Only the day is recorded: the deliverer gathers the figures and draws the chart when it sends."""
    key = digest_key(day)
    said = select(SlackMessage.id).where(SlackMessage.kind == Kind.DIGEST, SlackMessage.user_id == key)
    if (await session.exec(said)).first() is not None:
        return False
    _new(session, kind=Kind.DIGEST, now=now, user_id=key, facts={"day": day.isoformat()})
    return True
