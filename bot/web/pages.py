"""The approver's pages: the explanation behind the link, the way to Visma and back, and the result.

Links carry a secret in the path, so every page is sent with no-store and no-referrer: the token must not
end up in a proxy cache or in the Referer header sent to Visma.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from bot import connect
from bot.connect import ConsentResult, Outcome
from bot.domain.orgnumber import display
from bot.domain.problems import Problem
from bot.domain.types import AccountingSystem, Country
from bot.runtime import Deps
from bot.services import approvals, companies
from bot.services.approvals import LinkProblem, LinkRefused
from bot.store.models import ApprovalRequest, Company
from bot.visma.base import Grant, Refused

log = logging.getLogger(__name__)

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
    enable_async=False,
)
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


@dataclass(frozen=True, slots=True)
class ResultPage:
    """A result page's words."""

    heading: str
    paragraphs: list[str]
    tone: str = "bad"
    steps: list[str] = field(default_factory=list)
    status: int = 200
    retry_url: str | None = None
    retry_label: str | None = None


_REFUSED = {
    LinkProblem.UNKNOWN: ResultPage(
        "This link does not work",
        [
            "The address may be incomplete: open the link straight from the message you got, or ask the person "
            "who sent it for a new one."
        ],
        status=404,
    ),
    LinkProblem.EXPIRED: ResultPage(
        "This link has expired",
        ["Approval links work for a limited time. Ask the person who sent it for a new link."],
        status=410,
    ),
    LinkProblem.USED: ResultPage(
        "This link has already been used",
        [
            "The company is already connected, so there is nothing more to do. If you think something is wrong, "
            "contact the person who sent the link."
        ],
        status=410,
    ),
    LinkProblem.DECLINED: ResultPage(
        "This request was declined",
        ["The link no longer works. If it was declined by mistake, ask the person who sent it for a new one."],
        status=410,
    ),
    LinkProblem.SUPERSEDED: ResultPage(
        "A newer link was sent",
        ["This link was replaced by a newer one. Use the newest message you received."],
        status=410,
    ),
    LinkProblem.BAD_STATE: ResultPage(
        "We could not match this return from Visma",
        [
            "The sign-in took too long or was already completed in another window. Open the approval link "
            "again to start over."
        ],
        status=400,
    ),
}


# The consent systems' "who can approve" lines on the approval page ({company} is the company's name).
WHO_CAN_APPROVE = {
    AccountingSystem.EACCOUNTING: (
        "A user with full program permission in {company} (Settings → Permissions in eAccounting).",
        "The company must have the bookkeeping module.",
    ),
    AccountingSystem.VISMA_ERP: (
        "A user with the API User role for {company} in Visma.net (Admin → Users and roles).",
        "Visma asks you to choose the company and shows the access asked for: leave every box ticked.",
    ),
}


def content_policy(deps: Deps, nonce: str) -> str:
    """The page's Content-Security-Policy: nothing but our one style block; forms post to us, and from us on
    to the Visma identity servers the approver is sent to (browsers apply form-action to that redirect)."""
    settings = deps.settings
    identity = sorted({_origin(str(url)) for url in (settings.eaccounting_identity_url, settings.visma_connect_url)})
    return (
        f"default-src 'none'; style-src 'nonce-{nonce}'; form-action 'self' {' '.join(identity)}; "
        "frame-ancestors 'none'; base-uri 'none'"
    )


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def render(template: str, deps: Deps, *, status: int = 200, **context: Any) -> HTMLResponse:
    """Render a page with the firm's name and the security headers."""
    nonce = secrets.token_urlsafe(16)
    html = _templates.get_template(template).render(firm_name=deps.settings.firm_name, csp_nonce=nonce, **context)
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": content_policy(deps, nonce)}
    return HTMLResponse(html, status_code=status, headers=headers)


def result(deps: Deps, page: ResultPage, *, reference: str | None = None) -> HTMLResponse:
    """Render a result page."""
    return render(
        "result.html",
        deps,
        status=page.status,
        heading=page.heading,
        paragraphs=page.paragraphs,
        steps=page.steps,
        tone=page.tone,
        retry_url=page.retry_url,
        retry_label=page.retry_label,
        reference=reference,
    )


def consent_page(outcome: ConsentResult) -> ResultPage:
    """The page for a return from Visma."""
    if outcome.outcome is Outcome.CONNECTED:
        return ResultPage(
            f"{outcome.company_name} is connected — thank you",
            [
                f"We checked that the company you approved is {outcome.company_name} ({outcome.org_number}). "
                f"{outcome.requester_name or 'Your accountant'} has been told; there is nothing more for you to do.",
                "You can withdraw the access at any time in Visma.",
            ],
            tone="good",
        )
    if outcome.outcome is Outcome.WRONG_COMPANY:
        return ResultPage(
            "The wrong company was connected",
            [
                f"You approved {outcome.got_name} ({outcome.got_number}), but the request is for "
                f"{outcome.company_name} ({outcome.org_number}). Visma picked your default company without asking. "
                "We did not keep this connection."
            ],
            steps=[
                "In Visma eAccounting, open the menu at the top right and choose Choose company → Choose "
                "default company, and clear the default company (the star).",
                f"Press the button below, log in again and choose {outcome.company_name}.",
            ],
            retry_url=outcome.retry_url,
        )
    if outcome.outcome is Outcome.NOT_YET and outcome.problem is not None:
        problem = outcome.problem
        return ResultPage(
            "Not connected yet",
            [
                f"Visma says {problem.plain(problem.what)} ({problem.code}). We did not keep this connection.",
                f"Who can fix it: {problem.plain(problem.who)}.",
            ],
            steps=[problem.plain(step) for step in problem.steps],
            retry_url=outcome.retry_url,
            retry_label="Sign in to Visma again",
            status=422,
        )
    if outcome.outcome is Outcome.CANCELLED:
        return ResultPage(
            "Nothing was connected",
            ["The approval was cancelled in Visma. The link still works: open it again when you are ready."],
        )
    if outcome.outcome is Outcome.VISMA_ERROR:
        return ResultPage(
            "Visma did not complete the connection",
            [
                "Visma answered with an error while we checked the connection. Open the link again in a few "
                "minutes; if it keeps failing, contact the person who sent it."
            ],
            status=502,
        )
    return _REFUSED[outcome.link_problem or LinkProblem.BAD_STATE]


def _deps(request: Request) -> Deps:
    deps: Deps = request.app.state.deps
    return deps


async def _link(deps: Deps, token: str) -> tuple[ApprovalRequest, Company] | Response:
    """The request and company behind a link, or the page saying why the link does not work."""
    async with deps.store.session() as session:
        try:
            approval = await approvals.by_token(session, token=token, now=deps.clock())
        except LinkRefused as refused:
            return result(deps, _REFUSED[refused.problem])
        return approval, await companies.get(session, company_id=approval.company_id)


async def approval_page(request: Request) -> Response:
    """GET /approve/{token}: who asks for what, who can approve, and the way on."""
    deps = _deps(request)
    token = request.path_params["token"]
    found = await _link(deps, token)
    if isinstance(found, Response):
        return found
    approval, company = found
    grant = deps.system_for(company.system).grant
    if grant is Grant.TENANT:
        return _tenant_page(deps, token, approval, company, tenant=company.external_id)
    if grant is Grant.LISTED:
        return _listed_page(deps, token, approval, company)
    country = Country(company.country)
    return render(
        "approve.html",
        deps,
        who_can_approve=WHO_CAN_APPROVE.get(AccountingSystem(company.system), ()),
        company_name=company.name,
        org_number=display(country, company.org_number),
        system_label=AccountingSystem(company.system).label,
        requester_name=approval.requested_by_name or "Your accountant",
        expires=approval.expires_at.strftime("%d %B %Y"),
        continue_url=f"/approve/{token}",
        decline_url=f"/approve/{token}/decline",
    )


def _tenant_page(
    deps: Deps,
    token: str,
    approval: ApprovalRequest,
    company: Company,
    *,
    tenant: str | None,
    outcome: ConsentResult | None = None,
) -> HTMLResponse:
    """The page of a tenant-based system: the steps in Visma, and the Tenant ID form (again, with what is
    missing, after a check that did not connect)."""
    return render(
        "approve_tenant.html",
        deps,
        **_link_facts(token, approval, company, outcome),
        check_url=f"/approve/{token}/tenant",
        tenant=tenant,
        got_name=outcome.got_name if outcome else None,
        got_number=outcome.got_number if outcome else None,
    )


def _link_facts(
    token: str, approval: ApprovalRequest, company: Company, outcome: ConsentResult | None
) -> dict[str, Any]:
    """What every approval page says about the link, and what a check that did not connect found."""
    problem = outcome.problem if outcome else None
    return {
        "status": 200 if outcome is None else 422,
        "company_name": company.name,
        "org_number": display(Country(company.country), company.org_number),
        "system_label": AccountingSystem(company.system).label,
        "requester_name": approval.requested_by_name or "Your accountant",
        "expires": approval.expires_at.strftime("%d %B %Y"),
        "decline_url": f"/approve/{token}/decline",
        "problem": None if problem is None else _shown(problem),
    }


def _listed_page(
    deps: Deps, token: str, approval: ApprovalRequest, company: Company, *, outcome: ConsentResult | None = None
) -> HTMLResponse:
    """The page of a listed system (Business NXT): the activation steps and "Check again"."""
    system = deps.system_for(company.system)
    steps = system.classify(Refused("not activated", code="NXT AccessDenied"), company=company.name)
    return render(
        "approve_listed.html",
        deps,
        **_link_facts(token, approval, company, outcome),
        check_url=f"/approve/{token}/check",
        steps=[steps.plain(step) for step in steps.steps],
    )


def _shown(problem: Problem) -> dict[str, Any]:
    """A problem as a page shows it (plain text; the template escapes)."""
    return {
        "what": problem.plain(problem.what),
        "who": problem.plain(problem.who),
        "steps": [problem.plain(step) for step in problem.steps],
        "code": problem.code,
    }


async def check_listed(request: Request) -> Response:
    """POST /approve/{token}/check: has the system administrator activated the integration yet?"""
    deps = _deps(request)
    token = request.path_params["token"]
    found = await _link(deps, token)
    if isinstance(found, Response):
        return found
    approval, company = found
    assert company.id is not None
    outcome = await connect.check_listed(deps, company_id=company.id)
    if outcome.outcome is Outcome.NOT_YET:
        return _listed_page(deps, token, approval, company, outcome=outcome)
    return result(deps, consent_page(outcome))


async def check_tenant(request: Request) -> Response:
    """POST /approve/{token}/tenant: the approver gives the Tenant ID; it is checked at once."""
    deps = _deps(request)
    token = request.path_params["token"]
    form = await request.form(max_files=0, max_fields=5)
    tenant = str(form.get("tenant_id") or "")[:100]
    try:
        outcome = await connect.check_tenant(deps, token=token, tenant=tenant)
    except LinkRefused as refused:
        return result(deps, _REFUSED[refused.problem])
    if outcome.outcome in (Outcome.NOT_YET, Outcome.WRONG_COMPANY):
        found = await _link(deps, token)
        if isinstance(found, Response):
            return found
        approval, company = found
        return _tenant_page(deps, token, approval, company, tenant=tenant, outcome=outcome)
    return result(deps, consent_page(outcome))


async def continue_to_visma(request: Request) -> Response:
    """POST /approve/{token}: off to Visma's login, company picker and consent."""
    deps = _deps(request)
    try:
        url = await connect.begin(deps, token=request.path_params["token"])
    except LinkRefused as refused:
        return result(deps, _REFUSED[refused.problem])
    return RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)


async def decline(request: Request) -> Response:
    """POST /approve/{token}/decline: asks to confirm, then the approver's no stops the link."""
    deps = _deps(request)
    token = request.path_params["token"]
    form = await request.form(max_files=0, max_fields=5)
    if form.get("confirm") != "yes":
        found = await _link(deps, token)
        if isinstance(found, Response):
            return found
        approval, company = found
        return render(
            "decline.html",
            deps,
            company_name=company.name,
            requester_name=approval.requested_by_name or "the person who sent it",
            decline_url=f"/approve/{token}/decline",
            back_url=f"/approve/{token}",
        )
    try:
        outcome = await connect.decline(deps, token=token)
    except LinkRefused as refused:
        return result(deps, _REFUSED[refused.problem])
    return result(
        deps,
        ResultPage(
            "You declined the request",
            [f"Thank you — we told {outcome.requester_name or 'the person who sent it'}. The link no longer works."],
            tone="good",
        ),
    )


async def oauth_callback(request: Request) -> Response:
    """GET /oauth/{system}/callback: check the connection for real and say how it went."""
    deps = _deps(request)
    params = request.query_params
    outcome = await connect.finish(deps, state=params.get("state"), code=params.get("code"), error=params.get("error"))
    return result(deps, consent_page(outcome))


async def server_error(request: Request, exc: Exception) -> Response:
    """Anything unexpected: logged with a reference, and a plain page (never a stack trace)."""
    reference = uuid.uuid4().hex[:8]
    log.error("unhandled error on %s %s (ref %s)", request.method, request.url.path, reference, exc_info=exc)
    page = ResultPage(
        "Something went wrong on our side",
        [
            "Nothing was changed. Try again in a minute; if it keeps happening, tell the person who "
            "sent you the link and give them the reference below."
        ],
        status=500,
    )
    return result(_deps(request), page, reference=reference)


routes = [
    Route("/approve/{token}", approval_page, methods=["GET"]),
    Route("/approve/{token}", continue_to_visma, methods=["POST"]),
    Route("/approve/{token}/decline", decline, methods=["POST"]),
    Route("/approve/{token}/tenant", check_tenant, methods=["POST"]),
    Route("/approve/{token}/check", check_listed, methods=["POST"]),
    Route("/oauth/{system}/callback", oauth_callback, methods=["GET"]),
]
