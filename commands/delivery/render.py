"""What an outbox message looks like now: drawn from the company's current state when it is delivered."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from slack_sdk.models.blocks import Block
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.problems import Problem
from bot.domain.types import AccountingSystem, ApprovalStatus, CompanyState, Country
from bot.i18n import Language
from bot.runtime import Deps
from bot.services import status
from bot.services.outbox import Note
from bot.slack_format import escape
from bot.store.models import ApprovalRequest, Company, SlackMessage
from commands.approval.views import (
    ApprovalAsk,
    Ended,
    dm_approved_blocks,
    dm_blocks,
    dm_closed_blocks,
    dm_declined_blocks,
    dm_ended_text,
    dm_text,
)
from commands.card.ids import ButtonRef
from commands.card.views import (
    Member,
    alert_blocks,
    alert_text,
    card_blocks,
    card_text,
    folded_line,
    incident_blocks,
    incident_text,
    note_blocks,
    note_message,
)


@dataclass(frozen=True, slots=True)
class Rendered:
    """Blocks and the fallback text of one message."""

    blocks: list[Block]
    text: str


async def card(deps: Deps, session: AsyncSession, company: Company) -> Rendered:
    """The company's status card as it stands."""
    drawn = await status.load_card(session, company=company, now=deps.clock())
    return Rendered(card_blocks(drawn), card_text(drawn))


def note(message: SlackMessage, company: Company, language: Language = Language.EN) -> Rendered:
    """A thread note."""
    if message.facts.get("folded"):
        return Rendered(note_blocks(folded_line(company.name, language)), f"{escape(company.name)}: see the roll-up")
    blocks, text = note_message(
        Note(message.facts["note"]),
        message.facts,
        company_name=company.name,
        system_label=AccountingSystem(company.system).label,
        language=language,
    )
    return Rendered(blocks, text)


def alert(message: SlackMessage, company: Company, language: Language = Language.EN) -> Rendered:
    """An alert, open (with the buttons that fix it) or resolved (with how)."""
    assert company.id is not None
    assert message.id is not None
    facts = message.facts
    problem = Problem.from_facts(facts["problem"]) if facts.get("problem") else None
    resolved = facts.get("resolved") if message.closed_at else None
    ref = ButtonRef(company.id, CompanyState(company.state).value, message.id)
    blocks = alert_blocks(
        company_name=company.name,
        responsible_user_id=company.responsible_user_id,
        problem=problem,
        ref=ref,
        count=int(facts.get("count", 1)),
        resolved=resolved,
        facts=facts,
        snoozed_until=message.snoozed_until,
        language=language,
    )
    return Rendered(blocks, alert_text(company.name, problem, resolved))


async def incident(session: AsyncSession, message: SlackMessage) -> Rendered:
    """A roll-up: the cause, who can fix it, and the companies it hit, failing and working again."""
    assert message.id is not None
    query = (
        select(Company.name, SlackMessage.created_at, SlackMessage.closed_at)
        .join(Company, col(Company.id) == SlackMessage.company_id)
        .where(SlackMessage.parent_id == message.id)
        .order_by(col(Company.name))
    )
    members = [Member(name, since, closed is None) for name, since, closed in (await session.exec(query)).all()]
    facts = message.facts
    problem = Problem.from_facts(facts["problem"]) if facts.get("problem") else None
    system = str(message.cause or "").split(":", 1)[0]
    label = AccountingSystem(system).label if system in {member.value for member in AccountingSystem} else "Visma"
    blocks = incident_blocks(
        incident_id=message.id, system_label=label, problem=problem, members=members, closed_at=message.closed_at
    )
    still = sum(member.open for member in members)
    return Rendered(blocks, incident_text(label, problem, still, message.closed_at is not None))


def approval_dm(
    deps: Deps,
    request: ApprovalRequest,
    company: Company,
    *,
    link: str | None,
    language: Language = Language.EN,
    tz: str | None = None,
) -> Rendered:
    """The approver's DM, in their language (dates in their time zone): the ask while the link works, then what
    became of it."""
    state = ApprovalStatus(request.status)
    name = company.name
    if state is ApprovalStatus.COMPLETED and request.used_at:
        return Rendered(
            dm_approved_blocks(company_name=name, at=request.used_at, language=language, tz=tz),
            dm_ended_text(Ended.APPROVED, company_name=name, language=language),
        )
    if state is ApprovalStatus.DECLINED:
        return Rendered(
            dm_declined_blocks(company_name=name, requester_name=request.requested_by_name or "", language=language),
            dm_ended_text(Ended.DECLINED, company_name=name, language=language),
        )
    if state is ApprovalStatus.EXPIRED or state is ApprovalStatus.SUPERSEDED or link is None:
        ended = Ended.EXPIRED if state is ApprovalStatus.EXPIRED else Ended.REPLACED
        return Rendered(
            dm_closed_blocks(company_name=name, why=ended, language=language),
            dm_ended_text(ended, company_name=name, language=language),
        )
    assert request.id is not None
    ask = ApprovalAsk(
        request_id=request.id,
        requester_name=request.requested_by_name or "",
        firm_name=deps.settings.firm_name,
        company_name=name,
        org_number=company.org_number,
        country=Country(company.country),
        system=AccountingSystem(company.system),
        link=link,
        expires_at=request.expires_at,
        language=language,
        tz=tz,
    )
    return Rendered(dm_blocks(ask), dm_text(ask))


def notice(message: SlackMessage, *, today: date) -> Rendered:
    """A notice about the firm's own set-up (today: the Visma Connect client secret's expiry)."""
    expires = date.fromisoformat(str(message.facts["expires"]))
    days = (expires - today).days
    when = f"expired on {expires:%-d %b %Y}" if days < 0 else f"expires on {expires:%-d %b %Y} (in {days} days)"
    text = (
        f"⚠️ The firm's Visma Connect client secret {when}. Without it Visma.net, Business NXT and Visma ERP "
        "companies stop syncing. Generate a new secret in the Visma Developer Portal (your app → Credentials), "
        "then set VISMA_CLIENT_SECRET and VISMA_CLIENT_SECRET_EXPIRES and restart the bot."
    )
    return Rendered(note_blocks(text), "The Visma Connect client secret " + when)


def requester(request: ApprovalRequest) -> str:
    """Who asked, by name once Slack has told us, else a neutral word."""
    return request.requested_by_name or "Your accountant"
