"""The approver's side: the approval page's "Continue to Visma", the OAuth callback, and the real check.

The check is the point of the whole flow: Visma can silently connect a user's *default company*, so the
callback reads the connected company's settings through its system module and compares organisation numbers
before anything is kept.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot import notify
from bot.domain import problems
from bot.domain.orgnumber import display
from bot.domain.types import AccountingSystem, ApprovalStatus, CompanyState, Country
from bot.runtime import Deps
from bot.services import approvals, companies
from bot.services.approvals import LinkProblem, LinkRefused
from bot.slack_format import escape
from bot.store.models import ApprovalRequest, Company
from bot.sync.engine import sync_company
from bot.visma.base import Api, OAuthError, System, VismaError
from commands.approval.views import dm_approved_blocks, dm_declined_blocks
from commands.card.views import note_blocks

log = logging.getLogger(__name__)


def callback_path(system: AccountingSystem | str) -> str:
    """Where a system's identity server sends the approver back (the redirect URI registered with Visma)."""
    return f"oauth/{AccountingSystem(system).value}/callback"


class _Once:
    """The `Api` of the consent check: one token, no pacing, nothing retried (the approver is waiting)."""

    def __init__(self, deps: Deps, system: System, token: str) -> None:
        self._deps = deps
        self._system = system
        self._token = token

    async def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        """GET once with the fresh token."""
        response = await self._deps.http.get(
            self._system.url(path), params=dict(params or {}), headers={"Authorization": f"Bearer {self._token}"}
        )
        return self._system.parse(response)


class Outcome(StrEnum):
    """How a return from Visma ended, one result page each."""

    CONNECTED = "connected"
    WRONG_COMPANY = "wrong_company"
    CANCELLED = "cancelled"
    REFUSED = "refused"
    VISMA_ERROR = "visma_error"


@dataclass(frozen=True, slots=True)
class ConsentResult:
    """What the result page shows."""

    outcome: Outcome
    company_name: str | None = None
    org_number: str | None = None
    got_name: str | None = None
    got_number: str | None = None
    link_problem: LinkProblem | None = None
    retry_url: str | None = None
    requester_name: str | None = None
    detail: str | None = None


async def begin(deps: Deps, *, token: str) -> str:
    """Start consent for a link: returns the identity server's authorize URL (raises LinkRefused)."""
    async with deps.store.session() as session:
        request = await approvals.by_token(session, token=token, now=deps.clock())
        company = await companies.get(session, company_id=request.company_id)
        state, pkce = await approvals.start_oauth(session, request=request, vault=deps.vault, now=deps.clock())
        await session.commit()
    return deps.system_for(company.system).authorize_url(
        state=state, challenge=pkce.challenge, redirect_uri=deps.settings.url(callback_path(company.system))
    )


async def decline(deps: Deps, *, token: str) -> ConsentResult:
    """The approver says the request is not for them: the link stops working and staff are told."""
    async with deps.store.session() as session:
        request = await approvals.by_token(session, token=token, now=deps.clock())
        company = await companies.get(session, company_id=request.company_id)
        await _decline(deps, session, request=request, company=company, actor=request.approver_email or "approver")
        await session.commit()
    return ConsentResult(
        Outcome.REFUSED,
        company_name=company.name,
        link_problem=LinkProblem.DECLINED,
        requester_name=request.requested_by_name,
    )


async def decline_by_request(deps: Deps, *, request_id: int, actor: str) -> Company | None:
    """Decline from the DM's button; returns the company, or None when the request is no longer pending."""
    async with deps.store.session() as session:
        request = await session.get(ApprovalRequest, request_id)
        if request is None or request.status != ApprovalStatus.PENDING:
            return None
        company = await companies.get(session, company_id=request.company_id)
        await _decline(deps, session, request=request, company=company, actor=actor)
        await session.commit()
        return company


async def _decline(
    deps: Deps, session: AsyncSession, *, request: ApprovalRequest, company: Company, actor: str
) -> None:
    await approvals.decline(session, request=request, actor=actor, now=deps.clock())
    await notify.edit_dm(
        deps,
        request=request,
        blocks=dm_declined_blocks(company_name=company.name, requester_name=request.requested_by_name),
        text=f"You declined connecting {company.name}",
    )
    await notify.thread(
        deps,
        company=company,
        blocks=note_blocks(
            f"⛔ The approver declined the request (<@{request.requested_by}>: "
            "check who should approve, then *Resend link*)."
        ),
        text=f"{company.name}: the approver declined",
    )


async def finish(deps: Deps, *, state: str | None, code: str | None, error: str | None) -> ConsentResult:
    """Handle the OAuth callback: exchange the code, check the company, store the connection."""
    if not state:
        return ConsentResult(Outcome.REFUSED, link_problem=LinkProblem.BAD_STATE)
    now = deps.clock()
    async with deps.store.session() as session:
        try:
            request = await approvals.by_state(session, state=state, now=now)
        except LinkRefused as refused:
            return ConsentResult(Outcome.REFUSED, link_problem=refused.problem)
        company = await companies.get(session, company_id=request.company_id)
        verifier = deps.vault.open(request.pkce_verifier_sealed or "")
        # The state is single use: a replayed or double-clicked callback finds nothing from here on.
        approvals.consume_state(session, request=request)
        await session.commit()
    if error or not code:
        return ConsentResult(Outcome.CANCELLED, company_name=company.name, detail=error or "no code")
    system = deps.system_for(company.system)
    try:
        tokens = await system.exchange_code(
            code=code, verifier=verifier, redirect_uri=deps.settings.url(callback_path(company.system)), now=now
        )
        api: Api = _Once(deps, system, tokens.access_token)
        settings = await system.profile(api)
        approver = await system.approver_name(api) or "the approver"
    except (OAuthError, VismaError) as exc:
        log.warning("consent for company %s failed at Visma: %s", company.id, exc)
        return ConsentResult(Outcome.VISMA_ERROR, company_name=company.name, detail=str(exc))
    country = Country(company.country)
    got_number = _digits(settings.org_number or "")
    async with deps.store.session() as session:
        company = await companies.get(session, company_id=request.company_id)
        request = await session.get(ApprovalRequest, request.id) or request
        if got_number != _digits(company.org_number):
            problem = problems.wrong_company(
                asked_for=company.name,
                got_name=settings.name,
                got_number=_shown(country, got_number),
            )
            companies.transition(
                session,
                company=company,
                to=CompanyState.PERMISSION_ERROR,
                actor=approver,
                now=now,
                reason=f"{escape(settings.name)} was connected instead",
            )
            companies.audit(
                session,
                actor=approver,
                company=company,
                action="approval.wrong_company",
                at=now,
                detail={"got_org_number": got_number, "got_name": settings.name},
            )
            await notify.refresh_card(deps, session, company=company)
            await notify.alert(deps, session, company=company, problem=problem)
            # The link stays usable: the result page's button starts a fresh consent for the same request.
            retry_state, pkce = await approvals.start_oauth(session, request=request, vault=deps.vault, now=now)
            await session.commit()
            return ConsentResult(
                Outcome.WRONG_COMPANY,
                company_name=company.name,
                org_number=display(country, company.org_number),
                got_name=settings.name,
                got_number=_shown(country, got_number),
                retry_url=system.authorize_url(
                    state=retry_state,
                    challenge=pkce.challenge,
                    redirect_uri=deps.settings.url(callback_path(company.system)),
                ),
            )
        await approvals.save_connection(
            session,
            company=company,
            tokens=tokens,
            vault=deps.vault,
            external_company_name=settings.name,
            connected_by=approver,
            now=now,
        )
        approvals.complete(session, request=request, actor=approver, now=now)
        companies.transition(session, company=company, to=CompanyState.CONNECTED, actor=approver, now=now)
        await notify.resolve_alert(
            deps,
            session,
            company=company,
            how=f"approved again by {escape(approver)}, and the right company came back.",
        )
        company.next_sync_at = now
        await notify.refresh_card(deps, session, company=company)
        await notify.thread(
            deps,
            company=company,
            blocks=note_blocks(
                f"✅ Approved in Visma by {escape(approver)}; the company that "
                "came back is the one asked for. First sync starting."
            ),
            text=f"{company.name} connected",
        )
        await session.commit()
    await notify.edit_dm(
        deps,
        request=request,
        blocks=dm_approved_blocks(company_name=company.name, at=now),
        text=f"{company.name} approved — thank you",
    )
    assert company.id is not None
    deps.background.spawn(
        sync_company(deps, company_id=company.id, actor="first sync"), name=f"first-sync-{company.id}"
    )
    return ConsentResult(
        Outcome.CONNECTED,
        company_name=company.name,
        org_number=display(country, company.org_number),
        requester_name=request.requested_by_name,
    )


def _digits(value: str) -> str:
    return re.sub(r"\D", "", value)


def _shown(country: Country, number: str) -> str:
    try:
        return display(country, number)
    except Exception:  # a number from another country does not format; show it as it came
        return number
