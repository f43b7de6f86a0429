"""Companies: registering one, moving it through its life, and the audit trail. Knows nothing of Slack."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain.types import AccountingSystem, CompanyState, Country
from bot.store.models import AuditEvent, Company


class CompanyIdentity(BaseModel):
    """Which company, in which accounting system."""

    system: AccountingSystem
    name: str
    country: Country
    org_number: str
    # Where the company is in its system when staff know it (a Visma.net Tenant ID); else the approver says.
    external_id: str | None = None
    # What the system needs beyond that (Visma ERP: the API version and the extra scopes to ask for).
    options: dict[str, Any] = Field(default_factory=dict)


class ReconciliationSettings(BaseModel):
    """How the company is reconciled."""

    period_type: str
    fiscal_year_start_month: int
    reconciliation_start: date
    vat_frequency: str
    responsible_user_id: str
    modules: list[str]
    comment: str | None = None
    # The channel of the team that looks after the company (its card and alerts go there), else ALERT_CHANNEL.
    channel: str | None = None


class CompanyDraft(CompanyIdentity, ReconciliationSettings):
    """Everything staff enter for a new company, already validated."""

    approver_user_id: str | None = None
    approver_email: str | None = None


class CompanyExists(Exception):
    """A company with this organisation number is already onboarded."""

    def __init__(self, company: Company) -> None:
        super().__init__(f"{company.name} is already onboarded")
        self.company = company


async def find_by_org_number(session: AsyncSession, *, country: Country, org_number: str) -> Company | None:
    """The company with this organisation number, if any."""
    query = select(Company).where(Company.country == country.value, Company.org_number == org_number)
    return (await session.exec(query)).first()


async def find_by_view(session: AsyncSession, *, view_id: str) -> Company | None:
    """The company created from this modal (a double submit or a Slack retry finds it here)."""
    return (await session.exec(select(Company).where(Company.source_view_id == view_id))).first()


async def get(session: AsyncSession, *, company_id: int) -> Company:
    """The company with this id (raises LookupError when there is none)."""
    company = await session.get(Company, company_id)
    if company is None:
        raise LookupError(f"no company {company_id}")
    return company


async def register(
    session: AsyncSession, *, draft: CompanyDraft, actor: str, view_id: str, now: datetime
) -> tuple[Company, bool]:
    """Save a new company awaiting approval; returns (company, created). Idempotent per modal view."""
    existing = await find_by_view(session, view_id=view_id)
    if existing is not None:
        return existing, False
    duplicate = await find_by_org_number(session, country=draft.country, org_number=draft.org_number)
    if duplicate is not None:
        raise CompanyExists(duplicate)
    company = Company(
        name=draft.name,
        org_number=draft.org_number,
        country=draft.country.value,
        system=draft.system,
        external_id=draft.external_id,
        options=dict(draft.options),
        state=CompanyState.AWAITING_APPROVAL,
        state_since=now,
        comment=draft.comment,
        channel=draft.channel,
        period_type=draft.period_type,
        fiscal_year_start_month=draft.fiscal_year_start_month,
        reconciliation_start=draft.reconciliation_start,
        vat_frequency=draft.vat_frequency,
        modules=list(draft.modules),
        responsible_user_id=draft.responsible_user_id,
        approver_user_id=draft.approver_user_id,
        approver_email=draft.approver_email,
        requested_by=actor,
        source_view_id=view_id,
        created_at=now,
    )
    session.add(company)
    try:
        await session.flush()
    except IntegrityError:
        # Two submits raced past the checks above; the unique constraints decide, and the loser finds
        # what the winner wrote.
        await session.rollback()
        winner = await find_by_view(session, view_id=view_id)
        if winner is not None:
            return winner, False
        duplicate = await find_by_org_number(session, country=draft.country, org_number=draft.org_number)
        if duplicate is None:
            raise
        raise CompanyExists(duplicate) from None
    audit(
        session,
        actor=actor,
        company=company,
        action="company.registered",
        at=now,
        detail={"system": draft.system.value, "state": CompanyState.AWAITING_APPROVAL.value},
    )
    return company, True


def transition(
    session: AsyncSession,
    *,
    company: Company,
    to: CompanyState,
    actor: str,
    now: datetime,
    reason: str | None = None,
) -> bool:
    """Move a company to a new state and record it; returns False when it was already there."""
    before = CompanyState(company.state)
    if before is to and company.state_reason == reason:
        return False
    company.state = to
    company.state_reason = reason
    if before is not to:
        company.state_since = now
    session.add(company)
    audit(
        session,
        actor=actor,
        company=company,
        action="company.state",
        at=now,
        detail={"from": before.value, "to": to.value, "reason": reason},
    )
    return True


def change_approver(
    session: AsyncSession, *, company: Company, user_id: str | None, email: str | None, actor: str, now: datetime
) -> None:
    """Someone else approves at the client (a person in Slack, or an e-mail); recorded."""
    before = {"user": company.approver_user_id, "email": company.approver_email}
    company.approver_user_id, company.approver_email = user_id, email
    session.add(company)
    audit(
        session,
        actor=actor,
        company=company,
        action="company.approver_changed",
        at=now,
        detail={"from": before, "to": {"user": user_id, "email": email}},
    )


def audit(
    session: AsyncSession,
    *,
    actor: str,
    company: Company | None,
    action: str,
    at: datetime,
    detail: dict[str, object] | None = None,
) -> None:
    """Append an audit event (never holds a secret)."""
    session.add(
        AuditEvent(
            at=at,
            actor=actor,
            company_id=company.id if company else None,
            action=action,
            detail=dict(detail or {}),
        )
    )


async def history(session: AsyncSession, *, company_id: int) -> list[AuditEvent]:
    """A company's audit trail, oldest first."""
    query = select(AuditEvent).where(AuditEvent.company_id == company_id).order_by(col(AuditEvent.id))
    return list((await session.exec(query)).all())
