"""The approver's side: the approval page's "Continue to Visma", the OAuth callback, and the real check.

The check is the point of the whole flow: Visma can silently connect a user's *default company*, so the
callback reads the connected company's settings through its system module and compares country and
organisation number before anything is kept.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.domain import problems
from bot.domain.orgnumber import display, same_company
from bot.domain.problems import Problem
from bot.domain.types import AccountingSystem, ApprovalStatus, CompanyState, Country
from bot.runtime import Deps
from bot.services import approvals, companies, firm, outbox
from bot.services.approvals import LinkProblem, LinkRefused
from bot.services.outbox import Note
from bot.store.models import ApprovalRequest, Company
from bot.sync.engine import sync_company
from bot.visma.base import Api, OAuthError, OurConfiguration, Profile, Refused, System, TokenSet, VismaError
from bot.visma.business_nxt import BusinessNxt
from bot.visma.visma_erp import VismaErp

log = logging.getLogger(__name__)


def callback_path(system: AccountingSystem | str) -> str:
    """Where a system's identity server sends the approver back (the redirect URI registered with Visma)."""
    return f"oauth/{AccountingSystem(system).value}/callback"


class _Once:
    """The `Api` of a connection check: one token, no pacing, nothing retried (the approver is waiting)."""

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

    async def post(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST once with the fresh token."""
        response = await self._deps.http.post(
            self._system.url(path), json=dict(body), headers={"Authorization": f"Bearer {self._token}"}
        )
        return self._system.parse(response)


class Outcome(StrEnum):
    """How a return from Visma ended, one result page each."""

    CONNECTED = "connected"
    NOT_YET = "not_yet"
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
    # Why a check did not connect yet, in Visma's terms, with who can fix it and how (tenant-based systems).
    problem: Problem | None = None
    tenant: str | None = None


async def begin(deps: Deps, *, token: str) -> str:
    """Start consent for a link: returns the identity server's authorize URL (raises LinkRefused). Each call is
    an attempt of its own, so a second tab or a second try does not break a sign-in already under way."""
    async with deps.store.session() as session:
        request = await approvals.by_token(session, token=token, now=deps.clock())
        company = await companies.get(session, company_id=request.company_id)
        state, pkce = await approvals.start_oauth(session, request=request, vault=deps.vault, now=deps.clock())
        await session.commit()
    return _authorize_url(deps, company, state=state, challenge=pkce.challenge)


def _authorize_url(deps: Deps, company: Company, *, state: str, challenge: str) -> str:
    system = deps.system_for(company.system)
    redirect_uri = deps.settings.url(callback_path(company.system))
    if isinstance(system, VismaErp):
        # Visma ERP asks for the scopes staff chose for the company, besides reading.
        extra = [str(scope) for scope in company.options.get("scopes") or []]
        return system.authorize_url(state=state, challenge=challenge, redirect_uri=redirect_uri, scopes=extra)
    return system.authorize_url(state=state, challenge=challenge, redirect_uri=redirect_uri)


async def decline(deps: Deps, *, token: str) -> ConsentResult:
    """The approver confirmed the request is not for them: the link stops working and staff are told."""
    async with deps.store.session() as session:
        request = await approvals.by_token(session, token=token, now=deps.clock())
        company = await companies.get(session, company_id=request.company_id)
        if not await _decline(
            deps, session, request=request, company=company, actor=request.approver_email or "approver"
        ):
            approvals.check_usable(request, deps.clock())  # says why (used, superseded…)
        await session.commit()
    return ConsentResult(
        Outcome.REFUSED,
        company_name=company.name,
        link_problem=LinkProblem.DECLINED,
        requester_name=request.requested_by_name,
    )


async def decline_by_request(deps: Deps, *, request_id: int, actor: str) -> Company | None:
    """Decline from the DM's button (only its approver may); None when the request is no longer pending."""
    async with deps.store.session() as session:
        request = await session.get(ApprovalRequest, request_id)
        if request is None or request.status != ApprovalStatus.PENDING or request.approver_user_id != actor:
            return None
        company = await companies.get(session, company_id=request.company_id)
        declined = await _decline(deps, session, request=request, company=company, actor=actor)
        await session.commit()
        return company if declined else None


async def _decline(
    deps: Deps, session: AsyncSession, *, request: ApprovalRequest, company: Company, actor: str
) -> bool:
    now = deps.clock()
    if not await approvals.decline(session, request=request, actor=actor, now=now):
        return False
    await outbox.approval_changed(session, request=request, now=now)
    await outbox.note(session, company=company, note=Note.DECLINED, now=now, requested_by=request.requested_by)
    await outbox.requester_note(session, request=request, event="declined", now=now)
    await outbox.card(session, company=company, now=now)
    return True


async def check_tenant(deps: Deps, *, token: str, tenant: str) -> ConsentResult:
    """The approver gives the Tenant ID (Visma.net): take a client-credentials token for it, read the company,
    and keep the connection when it is the company asked for. What is missing comes back in Visma's terms."""
    now = deps.clock()
    async with deps.store.session() as session:
        request = await approvals.by_token(session, token=token, now=now)
        company = await companies.get(session, company_id=request.company_id)
    country = Country(company.country)
    number = display(country, company.org_number)

    def result(outcome: Outcome, **more: Any) -> ConsentResult:
        return ConsentResult(outcome, company_name=company.name, org_number=number, tenant=tenant, **more)

    try:
        tenant = str(uuid.UUID(tenant.strip()))
    except ValueError:
        return result(Outcome.NOT_YET, problem=problems.not_a_tenant_id())
    system = deps.system_for(company.system)
    try:
        tokens = await system.service_token(tenant=tenant, now=now)
        settings = await system.profile(_Once(deps, system, tokens.access_token))
    except VismaError as exc:
        log.info("tenant check for company %s: %s", company.id, exc)
        return result(Outcome.NOT_YET, problem=system.classify(exc, company=company.name))
    if not same_company(country, company.org_number, got_country=settings.country, got_number=settings.org_number):
        return result(
            Outcome.WRONG_COMPANY, got_name=settings.name, got_number=_shown(country, settings.org_number or "")
        )
    async with deps.store.session() as session:
        company = await companies.get(session, company_id=request.company_id)
        request = await session.get(ApprovalRequest, request.id) or request
        try:
            await approvals.complete(session, request=request, now=now)
        except LinkRefused as refused:
            return result(Outcome.REFUSED, link_problem=refused.problem)
        company.external_id = tenant
        admin = "the client's administrator"
        await _connected(deps, session, company=company, request=request, tokens=tokens, got=settings, by=admin)
        await session.commit()
    first_sync(deps, company)
    return result(Outcome.CONNECTED, requester_name=request.requested_by_name)


async def listed_companies(deps: Deps) -> list[tuple[str, str]]:
    """(company number, name) of the Business NXT companies our integration may read for the firm's customer
    IDs: what /addcompany offers to pick from, fed live."""
    system = deps.systems.get(AccountingSystem.BUSINESS_NXT)
    if not isinstance(system, BusinessNxt):
        return []
    async with deps.store.session() as session:
        customer_ids = firm.customer_ids(await firm.settings(session))
        await session.commit()
    tokens = await system.service_token(tenant=None, now=deps.clock())
    listed = await system.available_companies(_Once(deps, system, tokens.access_token), customer_ids=customer_ids)
    return [(str(company.company_no), company.name) for company in listed]


async def check_listed(deps: Deps, *, company_id: int) -> ConsentResult:
    """Business NXT: is the company among those our integration may read (the client's system administrator
    activated it)? Its organisation number decides which listed company it is; found, the connection is kept.
    Run right after /addcompany (a company picked from the list) and from the page's "Check again"."""
    now = deps.clock()
    async with deps.store.session() as session:
        company = await companies.get(session, company_id=company_id)
        customer_ids = firm.customer_ids(await firm.settings(session))
    country = Country(company.country)
    number = display(country, company.org_number)

    def result(outcome: Outcome, **more: Any) -> ConsentResult:
        return ConsentResult(outcome, company_name=company.name, org_number=number, **more)

    system = deps.system_for(company.system)
    if not isinstance(system, BusinessNxt):
        raise OurConfiguration(f"{system.label} does not list companies")
    try:
        tokens = await system.service_token(tenant=None, now=now)
        api = _Once(deps, system, tokens.access_token)
        listed = await system.available_companies(api, customer_ids=customer_ids)
        found = None
        for candidate in listed:
            if company.external_id and str(candidate.company_no) != company.external_id:
                continue
            got = await system.profile(api, external_id=str(candidate.company_no))
            if same_company(country, company.org_number, got_country=got.country, got_number=got.org_number):
                found = (candidate, got)
                break
    except VismaError as exc:
        log.info("listed check for company %s: %s", company.id, exc)
        return result(Outcome.NOT_YET, problem=system.classify(exc, company=company.name))
    if found is None:
        missing = Refused("the company is not among those our integration may read", code="NXT AccessDenied")
        return result(Outcome.NOT_YET, problem=system.classify(missing, company=company.name))
    candidate, got = found
    async with deps.store.session() as session:
        company = await companies.get(session, company_id=company_id)
        request = await approvals.latest(session, company_id=company_id)
        if request is None:
            return result(Outcome.REFUSED, link_problem=LinkProblem.UNKNOWN)
        try:
            await approvals.complete(session, request=request, now=now)
        except LinkRefused as refused:
            return result(Outcome.REFUSED, link_problem=refused.problem)
        company.external_id = str(candidate.company_no)
        admin = "the client's system administrator"
        await _connected(deps, session, company=company, request=request, tokens=tokens, got=got, by=admin)
        await session.commit()
    first_sync(deps, company)
    return result(Outcome.CONNECTED, requester_name=request.requested_by_name)


async def _connected(
    deps: Deps,
    session: AsyncSession,
    *,
    company: Company,
    request: ApprovalRequest,
    tokens: TokenSet,
    got: Profile,
    by: str,
) -> None:
    """Keep the connection, move the company on and tell the team (the caller commits, then `first_sync`)."""
    now = deps.clock()
    await approvals.save_connection(
        session,
        company=company,
        tokens=tokens,
        vault=deps.vault,
        external_company_name=got.name,
        external_company_id=company.external_id,
        connected_by=by,
        now=now,
    )
    companies.transition(session, company=company, to=CompanyState.CONNECTED, actor=by, now=now)
    await outbox.resolve_alert(session, company=company, how="approved_again", now=now, approver=by)
    company.next_sync_at = now
    session.add(company)
    await outbox.note(session, company=company, note=Note.CONNECTED, now=now, approver=by)
    await outbox.requester_note(session, request=request, event="approved", now=now, approver=by)
    await outbox.card(session, company=company, now=now)
    await outbox.approval_changed(session, request=request, now=now)


def first_sync(deps: Deps, company: Company) -> None:
    """Start the company's first sync in the background (after the connection is committed)."""
    assert company.id is not None
    deps.background.spawn(
        sync_company(deps, company_id=company.id, actor="first sync"), name=f"first-sync-{company.id}"
    )


async def finish(deps: Deps, *, state: str | None, code: str | None, error: str | None) -> ConsentResult:
    """Handle the OAuth callback: use up the state, exchange the code, check the company, keep the connection.

    The state is claimed by one conditional update (of concurrent callbacks one goes on), Visma is asked
    outside any transaction, and the request is claimed again when the tokens are kept: a decline or a newer
    link that arrived meanwhile wins, and the tokens are dropped.
    """
    if not state:
        return ConsentResult(Outcome.REFUSED, link_problem=LinkProblem.BAD_STATE)
    now = deps.clock()
    async with deps.store.session() as session:
        try:
            request, verifier_sealed = await approvals.claim_state(session, state=state, now=now)
        except LinkRefused as refused:
            return ConsentResult(Outcome.REFUSED, link_problem=refused.problem)
        company = await companies.get(session, company_id=request.company_id)
        await session.commit()
    if error or not code:
        return ConsentResult(Outcome.CANCELLED, company_name=company.name, detail=error or "no code")
    verifier = deps.vault.open(verifier_sealed)
    system = deps.system_for(company.system)
    country = Country(company.country)
    settings: Profile | None = None
    granted: Problem | None = None
    approver = "the approver"
    try:
        tokens = await system.exchange_code(
            code=code, verifier=verifier, redirect_uri=deps.settings.url(callback_path(company.system)), now=now
        )
        if isinstance(system, VismaErp):
            # The approver may untick a scope or pick another tenant than the one staff gave: checked first.
            extra = [str(scope) for scope in company.options.get("scopes") or []]
            granted = system.check_grant(tokens, company=company.name, tenant=company.external_id, scopes=extra)
        if granted is None:
            api: Api = _Once(deps, system, tokens.access_token)
            settings = await system.profile(api)
            approver = await system.approver_name(api) or approver
    except (OAuthError, VismaError) as exc:
        log.warning("consent for company %s failed at Visma: %s", company.id, exc)
        if not isinstance(system, VismaErp) and not isinstance(exc, Refused):
            return ConsentResult(Outcome.VISMA_ERROR, company_name=company.name, detail=str(exc))
        # Said in Visma's terms, with who can fix it: a refusal reading the company right after the consent (the
        # approver lacks full program permission in eAccounting, the company has no bookkeeping module), or Visma
        # ERP's own (no API User role, the customer picked instead of the company).
        granted = system.classify(exc, company=company.name)
    right = settings is not None and same_company(
        country, company.org_number, got_country=settings.country, got_number=settings.org_number
    )
    async with deps.store.session() as session:
        company = await companies.get(session, company_id=request.company_id)
        request = await session.get(ApprovalRequest, request.id) or request
        if granted is not None:
            try:
                approvals.check_usable(request, now)
            except LinkRefused as refused:
                return ConsentResult(Outcome.REFUSED, company_name=company.name, link_problem=refused.problem)
            retry = await _not_kept(deps, session, company=company, request=request, problem=granted, by=approver)
            await session.commit()
            return ConsentResult(
                Outcome.NOT_YET,
                company_name=company.name,
                org_number=display(country, company.org_number),
                problem=granted,
                retry_url=retry,
            )
        assert settings is not None  # read whenever nothing was refused
        try:
            if right:
                await approvals.complete(session, request=request, now=now)
            else:
                approvals.check_usable(request, now)
        except LinkRefused as refused:
            log.info(
                "consent for company %s arrived after its link was %s; tokens dropped", company.id, refused.problem
            )
            return ConsentResult(Outcome.REFUSED, company_name=company.name, link_problem=refused.problem)
        if not right:
            result = await _wrong_company(deps, session, company=company, request=request, got=settings, by=approver)
            await session.commit()
            return result
        if isinstance(system, VismaErp):
            company.external_id = system.tenant_of(tokens) or company.external_id
        await _connected(deps, session, company=company, request=request, tokens=tokens, got=settings, by=approver)
        await session.commit()
    first_sync(deps, company)
    return ConsentResult(
        Outcome.CONNECTED,
        company_name=company.name,
        org_number=display(country, company.org_number),
        requester_name=request.requested_by_name,
    )


async def _wrong_company(
    deps: Deps, session: AsyncSession, *, company: Company, request: ApprovalRequest, got: Profile, by: str
) -> ConsentResult:
    """Visma connected another company (the default-company pitfall): nothing is kept, the team is told, and
    the result page offers a fresh attempt of the same link."""
    now = deps.clock()
    country = Country(company.country)
    got_number = got.org_number or ""
    shown = _shown(country, got_number)
    default_company = AccountingSystem(company.system) is AccountingSystem.EACCOUNTING
    pitfall = problems.wrong_company if default_company else problems.another_company
    problem = pitfall(asked_for=company.name, got_name=got.name, got_number=shown)
    companies.transition(
        session,
        company=company,
        to=CompanyState.PERMISSION_ERROR,
        actor=by,
        now=now,
        reason=f"{got.name} was connected instead",
    )
    companies.audit(
        session,
        actor=by,
        company=company,
        action="approval.wrong_company",
        at=now,
        detail={"got_org_number": got_number, "got_country": got.country, "got_name": got.name},
    )
    await outbox.alert(session, company=company, problem=problem, now=now)
    await outbox.requester_note(session, request=request, event="failed", now=now, problem=problem.facts())
    await outbox.card(session, company=company, now=now)
    retry_state, pkce = await approvals.start_oauth(session, request=request, vault=deps.vault, now=now)
    if not default_company:  # no default company to blame: the page explains it as the problem it is
        return ConsentResult(
            Outcome.NOT_YET,
            company_name=company.name,
            org_number=display(country, company.org_number),
            problem=problem,
            retry_url=_authorize_url(deps, company, state=retry_state, challenge=pkce.challenge),
        )
    return ConsentResult(
        Outcome.WRONG_COMPANY,
        company_name=company.name,
        org_number=display(country, company.org_number),
        got_name=got.name,
        got_number=shown,
        retry_url=_authorize_url(deps, company, state=retry_state, challenge=pkce.challenge),
    )


async def _not_kept(
    deps: Deps, session: AsyncSession, *, company: Company, request: ApprovalRequest, problem: Problem, by: str
) -> str:
    """A consent that cannot be kept (a scope unticked, another tenant picked): the team is told in Visma's
    terms, and the page gets a fresh attempt of the same link."""
    now = deps.clock()
    companies.audit(
        session, actor=by, company=company, action="approval.not_kept", at=now, detail={"code": problem.code}
    )
    await outbox.alert(session, company=company, problem=problem, now=now)
    await outbox.requester_note(session, request=request, event="failed", now=now, problem=problem.facts())
    await outbox.card(session, company=company, now=now)
    state, pkce = await approvals.start_oauth(session, request=request, vault=deps.vault, now=now)
    return _authorize_url(deps, company, state=state, challenge=pkce.challenge)


def _shown(country: Country, number: str) -> str:
    try:
        return display(country, number)
    except Exception:  # a number from another country does not format; show it as it came
        return number
