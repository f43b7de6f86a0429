"""The approver's pages: the explanation behind the link, the way to Visma and back, and the result.

Links carry a secret in the path, so every page is sent with no-store and no-referrer: the token must not
end up in a proxy cache or in the Referer header sent to Visma.

Each page is in Norwegian, Swedish or English (bot/i18n). The approver picks with `?lang=nb|sv|en` (the switch at
the top of every page that can be shown again); otherwise it is the company's country's language, unless the
browser's Accept-Language lists some of our languages but not that one (`i18n.negotiate`). The language chosen
travels in the URLs of the page's forms (Continue, Decline, Check again) and, for the way back from Visma (whose
callback URL is fixed and whose state tells nothing of the page), in a small cookie set when the approver
leaves for Visma.
"""

from __future__ import annotations

import logging
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from sqlmodel import select
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Route

from bot import connect, i18n
from bot.connect import ConsentResult, Outcome
from bot.crypto import token_hash
from bot.domain.orgnumber import display
from bot.domain.problems import Problem
from bot.domain.types import AccountingSystem, Country
from bot.i18n import N_, Language, translate
from bot.runtime import Deps
from bot.services import approvals, companies
from bot.services.approvals import LinkProblem, LinkRefused
from bot.store.models import ApprovalRequest, Company
from bot.visma.base import Grant, Refused

log = logging.getLogger(__name__)


def _strong(value: Any) -> Markup:
    return Markup("<strong>{}</strong>").format(value)


def _em(value: Any) -> Markup:
    return Markup("<em>{}</em>").format(value)


_templates = Environment(
    loader=FileSystemLoader(Path(__file__).with_name("templates")),
    autoescape=select_autoescape(["html"]),
    enable_async=False,
)
_templates.filters["strong"] = _strong
_templates.filters["em"] = _em
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}
# The language the approver read when they left for Visma, for the page they come back to.
LANGUAGE_COOKIE = "approval_lang"
LANGUAGE_COOKIE_SECONDS = 24 * 3600
# The switch's order: the clients' languages first.
SWITCH = (Language.NB, Language.SV, Language.EN)


@dataclass(frozen=True, slots=True)
class ResultPage:
    """A result page's words (in the page's language)."""

    heading: str
    paragraphs: list[str]
    tone: str = "bad"
    steps: list[str] = field(default_factory=list)
    status: int = 200
    retry_url: str | None = None
    retry_label: str | None = None


# Why a link does not work: the heading, what to do, and the HTTP status.
_REFUSED = {
    LinkProblem.UNKNOWN: (
        N_("This link does not work"),
        N_(
            "The address may be incomplete: open the link straight from the message you got, or ask the person "
            "who sent it for a new one."
        ),
        404,
    ),
    LinkProblem.EXPIRED: (
        N_("This link has expired"),
        N_("Approval links work for a limited time. Ask the person who sent it for a new link."),
        410,
    ),
    LinkProblem.USED: (
        N_("This link has already been used"),
        N_(
            "The company is already connected, so there is nothing more to do. If you think something is wrong, "
            "contact the person who sent the link."
        ),
        410,
    ),
    LinkProblem.DECLINED: (
        N_("This request was declined"),
        N_("The link no longer works. If it was declined by mistake, ask the person who sent it for a new one."),
        410,
    ),
    LinkProblem.SUPERSEDED: (
        N_("A newer link was sent"),
        N_("This link was replaced by a newer one. Use the newest message you received."),
        410,
    ),
    LinkProblem.BAD_STATE: (
        N_("We could not match this return from Visma"),
        N_(
            "The sign-in took too long or was already completed in another window. Open the approval link "
            "again to start over."
        ),
        400,
    ),
}


def refused_page(problem: LinkProblem, language: Language) -> ResultPage:
    """The page of a link that cannot be used, saying why and what to do."""
    heading, paragraph, status = _REFUSED[problem]
    return ResultPage(translate(language, heading), [translate(language, paragraph)], status=status)


# The consent systems' "who can approve" lines on the approval page ({company} is the company's name).
WHO_CAN_APPROVE = {
    AccountingSystem.EACCOUNTING: (
        N_("A user with full program permission in {company} (Settings → Permissions in eAccounting)."),
        N_("The company must have the bookkeeping module."),
    ),
    AccountingSystem.VISMA_ERP: (
        N_("A user with the API User role for {company} in Visma.net (Admin → Users and roles)."),
        N_("Visma asks you to choose the company and shows the access asked for: leave every box ticked."),
    ),
}
# What each way in reads, in plain words.
ACCESS = {
    Grant.TENANT: N_("Read accounting data: periods, accounts, journal transactions, balances, VAT — no changes"),
    Grant.LISTED: N_("Read accounting data: accounts, vouchers, VAT codes — no changes"),
}
ACCESS_BY_CONSENT = N_("Read accounting data: fiscal years, accounts, vouchers and balances — no changes")


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


def _words(language: Language) -> Callable[..., Markup]:
    """The templates' `_("…", name=value)`: the text in the page's language, its values escaped (a value that is
    already markup, like `name|strong`, is kept)."""

    def words(message: str, /, **values: Any) -> Markup:
        return Markup.escape(i18n.lookup(language, message)).format(**values)

    return words


def render(
    template: str,
    deps: Deps,
    language: Language,
    *,
    status: int = 200,
    switch_url: str | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a page in a language, with the firm's name, the language switch (when the page can be shown
    again at `switch_url`) and the security headers."""
    nonce = secrets.token_urlsafe(16)
    html = _templates.get_template(template).render(
        firm_name=deps.settings.firm_name,
        csp_nonce=nonce,
        lang=language.value,
        _=_words(language),
        languages=[(choice.value, choice.native_name) for choice in SWITCH],
        switch_url=switch_url,
        **context,
    )
    headers = {**SECURITY_HEADERS, "Content-Security-Policy": content_policy(deps, nonce)}
    return HTMLResponse(html, status_code=status, headers=headers)


def result(
    deps: Deps,
    language: Language,
    page: ResultPage,
    *,
    reference: str | None = None,
    switch_url: str | None = None,
) -> HTMLResponse:
    """Render a result page."""
    return render(
        "result.html",
        deps,
        language,
        status=page.status,
        switch_url=switch_url,
        heading=page.heading,
        paragraphs=page.paragraphs,
        steps=page.steps,
        tone=page.tone,
        retry_url=page.retry_url,
        retry_label=page.retry_label or translate(language, "Try again with the right company"),
        reference=reference,
    )


def consent_page(outcome: ConsentResult, language: Language = Language.EN) -> ResultPage:
    """The page for a return from Visma."""
    if outcome.outcome is Outcome.CONNECTED:
        requester = outcome.requester_name or translate(language, "Your accountant")
        return ResultPage(
            translate(language, "{company} is connected — thank you", company=outcome.company_name),
            [
                translate(
                    language,
                    "We checked that the company you approved is {company} ({number}). {requester} has been told; "
                    "there is nothing more for you to do.",
                    company=outcome.company_name,
                    number=outcome.org_number,
                    requester=requester,
                ),
                translate(language, "You can withdraw the access at any time in Visma."),
            ],
            tone="good",
        )
    if outcome.outcome is Outcome.WRONG_COMPANY:
        return ResultPage(
            translate(language, "The wrong company was connected"),
            [
                translate(
                    language,
                    "You approved {got_name} ({got_number}), but the request is for {company} ({number}). Visma "
                    "picked your default company without asking. We did not keep this connection.",
                    got_name=outcome.got_name,
                    got_number=outcome.got_number,
                    company=outcome.company_name,
                    number=outcome.org_number,
                )
            ],
            steps=[
                translate(
                    language,
                    "In Visma eAccounting, open the menu at the top right and choose Choose company → Choose "
                    "default company, and clear the default company (the star).",
                ),
                translate(
                    language,
                    "Press the button below, log in again and choose {company}.",
                    company=outcome.company_name,
                ),
            ],
            retry_url=outcome.retry_url,
        )
    if outcome.outcome is Outcome.NOT_YET and outcome.problem is not None:
        problem = outcome.problem
        return ResultPage(
            translate(language, "Not connected yet"),
            [
                translate(
                    language,
                    "Visma says {what} ({code}). We did not keep this connection.",
                    what=problem.plain(problem.what, language),
                    code=problem.code,
                ),
                translate(language, "Who can fix it: {who}.", who=problem.plain(problem.who, language)),
            ],
            steps=[problem.plain(step, language) for step in problem.steps],
            retry_url=outcome.retry_url,
            retry_label=translate(language, "Sign in to Visma again"),
            status=422,
        )
    if outcome.outcome is Outcome.CANCELLED:
        return ResultPage(
            translate(language, "Nothing was connected"),
            [
                translate(
                    language,
                    "The approval was cancelled in Visma. The link still works: open it again when you are ready.",
                )
            ],
        )
    if outcome.outcome is Outcome.VISMA_ERROR:
        return ResultPage(
            translate(language, "Visma did not complete the connection"),
            [
                translate(
                    language,
                    "Visma answered with an error while we checked the connection. Open the link again in a few "
                    "minutes; if it keeps failing, contact the person who sent it.",
                )
            ],
            status=502,
        )
    return refused_page(outcome.link_problem or LinkProblem.BAD_STATE, language)


def _deps(request: Request) -> Deps:
    deps: Deps = request.app.state.deps
    return deps


def _picked(request: Request) -> Language | None:
    """The language the approver picked with the switch (an unknown `?lang=` is ignored)."""
    return i18n.language_for_locale(request.query_params.get("lang"))


def _language(request: Request, company: Company | None = None) -> Language:
    """A page's language: the approver's pick, else the company's country's unless the browser asks for
    another of ours."""
    preferred = i18n.language_for_country(company.country) if company is not None else None
    return _picked(request) or i18n.negotiate(request.headers.get("accept-language"), preferred=preferred)


async def _token_language(deps: Deps, request: Request, token: str) -> Language:
    """The language of a page behind a link whose request and company are not at hand (a used or declined link
    included)."""
    picked = _picked(request)
    if picked is not None:
        return picked
    async with deps.store.session() as session:
        found = await session.exec(select(ApprovalRequest).where(ApprovalRequest.token_hash == token_hash(token)))
        approval = found.first()
        company = await session.get(Company, approval.company_id) if approval is not None else None
    return _language(request, company)


def _at(path: str, language: Language) -> str:
    """One of our URLs, keeping the page's language."""
    return f"{path}?lang={language.value}"


async def _refused(deps: Deps, request: Request, token: str, refused: LinkRefused) -> HTMLResponse:
    """The page of a link that turned out unusable."""
    language = await _token_language(deps, request, token)
    return result(deps, language, refused_page(refused.problem, language), switch_url=f"/approve/{token}")


async def _link(deps: Deps, request: Request, token: str) -> tuple[ApprovalRequest, Company, Language] | Response:
    """The request and company behind a link, and the page's language, or the page saying why the link does not
    work."""
    async with deps.store.session() as session:
        try:
            approval = await approvals.by_token(session, token=token, now=deps.clock())
        except LinkRefused as refused:
            return await _refused(deps, request, token, refused)
        company = await companies.get(session, company_id=approval.company_id)
    return approval, company, _language(request, company)


async def approval_page(request: Request) -> Response:
    """GET /approve/{token}: who asks for what, who can approve, and the way on."""
    deps = _deps(request)
    token = request.path_params["token"]
    found = await _link(deps, request, token)
    if isinstance(found, Response):
        return found
    approval, company, language = found
    grant = deps.system_for(company.system).grant
    if grant is Grant.TENANT:
        return _tenant_page(deps, language, token, approval, company, tenant=company.external_id)
    if grant is Grant.LISTED:
        return _listed_page(deps, language, token, approval, company)
    return render(
        "approve.html",
        deps,
        language,
        **_link_facts(language, token, approval, company, None),
        who_can_approve=[
            translate(language, line, company=company.name)
            for line in WHO_CAN_APPROVE.get(AccountingSystem(company.system), ())
        ],
        access=translate(language, ACCESS_BY_CONSENT),
        continue_url=_at(f"/approve/{token}", language),
    )


def _tenant_page(
    deps: Deps,
    language: Language,
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
        language,
        **_link_facts(language, token, approval, company, outcome),
        access=translate(language, ACCESS[Grant.TENANT]),
        check_url=_at(f"/approve/{token}/tenant", language),
        tenant=tenant,
        got_name=outcome.got_name if outcome else None,
        got_number=outcome.got_number if outcome else None,
    )


def _link_facts(
    language: Language, token: str, approval: ApprovalRequest, company: Company, outcome: ConsentResult | None
) -> dict[str, Any]:
    """What every approval page says about the link, and what a check that did not connect found."""
    problem = outcome.problem if outcome else None
    return {
        "status": 200 if outcome is None else 422,
        "switch_url": f"/approve/{token}",
        "company_name": company.name,
        "org_number": display(Country(company.country), company.org_number),
        "system_label": i18n.system_label(company.system, language),
        "requester_name": approval.requested_by_name or translate(language, "Your accountant"),
        "expires": i18n.format_date(approval.expires_at, language, tz=_zone(company)),
        "decline_url": _at(f"/approve/{token}/decline", language),
        "problem": None if problem is None else _shown(problem, language),
    }


def _zone(company: Company) -> str:
    """The time zone a company's dates are shown in: its country's."""
    return {"NO": "Europe/Oslo", "SE": "Europe/Stockholm", "DK": "Europe/Copenhagen", "FI": "Europe/Helsinki"}.get(
        company.country, "UTC"
    )


def _listed_page(
    deps: Deps,
    language: Language,
    token: str,
    approval: ApprovalRequest,
    company: Company,
    *,
    outcome: ConsentResult | None = None,
) -> HTMLResponse:
    """The page of a listed system (Business NXT): the activation steps and "Check again"."""
    system = deps.system_for(company.system)
    steps = system.classify(Refused("not activated", code="NXT AccessDenied"), company=company.name)
    return render(
        "approve_listed.html",
        deps,
        language,
        **_link_facts(language, token, approval, company, outcome),
        access=translate(language, ACCESS[Grant.LISTED]),
        check_url=_at(f"/approve/{token}/check", language),
        steps=[steps.plain(step, language) for step in steps.steps],
    )


def _shown(problem: Problem, language: Language) -> dict[str, Any]:
    """A problem as a page shows it (plain text; the template escapes)."""
    return {
        "what": problem.plain(problem.what, language),
        "who": problem.plain(problem.who, language),
        "steps": [problem.plain(step, language) for step in problem.steps],
        "code": problem.code,
    }


async def check_listed(request: Request) -> Response:
    """POST /approve/{token}/check: has the system administrator activated the integration yet?"""
    deps = _deps(request)
    token = request.path_params["token"]
    found = await _link(deps, request, token)
    if isinstance(found, Response):
        return found
    approval, company, language = found
    assert company.id is not None
    outcome = await connect.check_listed(deps, company_id=company.id)
    if outcome.outcome is Outcome.NOT_YET:
        return _listed_page(deps, language, token, approval, company, outcome=outcome)
    return result(deps, language, consent_page(outcome, language), switch_url=f"/approve/{token}")


async def check_tenant(request: Request) -> Response:
    """POST /approve/{token}/tenant: the approver gives the Tenant ID; it is checked at once."""
    deps = _deps(request)
    token = request.path_params["token"]
    form = await request.form(max_files=0, max_fields=5)
    tenant = str(form.get("tenant_id") or "")[:100]
    try:
        outcome = await connect.check_tenant(deps, token=token, tenant=tenant)
    except LinkRefused as refused:
        return await _refused(deps, request, token, refused)
    if outcome.outcome in (Outcome.NOT_YET, Outcome.WRONG_COMPANY):
        found = await _link(deps, request, token)
        if isinstance(found, Response):
            return found
        approval, company, language = found
        return _tenant_page(deps, language, token, approval, company, tenant=tenant, outcome=outcome)
    language = await _token_language(deps, request, token)
    return result(deps, language, consent_page(outcome, language), switch_url=f"/approve/{token}")


async def continue_to_visma(request: Request) -> Response:
    """POST /approve/{token}: off to Visma's login, company picker and consent (the page's language goes along
    in a cookie, for the page the approver comes back to)."""
    deps = _deps(request)
    token = request.path_params["token"]
    try:
        url = await connect.begin(deps, token=token)
    except LinkRefused as refused:
        return await _refused(deps, request, token, refused)
    language = await _token_language(deps, request, token)
    response = RedirectResponse(url, status_code=303, headers=SECURITY_HEADERS)
    response.set_cookie(
        LANGUAGE_COOKIE,
        language.value,
        max_age=LANGUAGE_COOKIE_SECONDS,
        path="/",
        secure=str(deps.settings.public_url).startswith("https://"),
        httponly=True,
        samesite="lax",  # sent on the top-level redirect back from Visma
    )
    return response


async def decline_page(request: Request) -> Response:
    """GET /approve/{token}/decline: asks to confirm (the language switch of that question links here)."""
    deps = _deps(request)
    token = request.path_params["token"]
    found = await _link(deps, request, token)
    if isinstance(found, Response):
        return found
    approval, company, language = found
    return render(
        "decline.html",
        deps,
        language,
        switch_url=f"/approve/{token}/decline",
        company_name=company.name,
        requester_name=approval.requested_by_name or translate(language, "the person who sent it"),
        decline_url=_at(f"/approve/{token}/decline", language),
        back_url=_at(f"/approve/{token}", language),
    )


async def decline(request: Request) -> Response:
    """POST /approve/{token}/decline: asks to confirm, then the approver's no stops the link."""
    deps = _deps(request)
    token = request.path_params["token"]
    form = await request.form(max_files=0, max_fields=5)
    if form.get("confirm") != "yes":
        return await decline_page(request)
    try:
        outcome = await connect.decline(deps, token=token)
    except LinkRefused as refused:
        return await _refused(deps, request, token, refused)
    language = await _token_language(deps, request, token)
    requester = outcome.requester_name or translate(language, "the person who sent it")
    page = ResultPage(
        translate(language, "You declined the request"),
        [translate(language, "Thank you — we told {requester}. The link no longer works.", requester=requester)],
        tone="good",
    )
    return result(deps, language, page, switch_url=f"/approve/{token}")


def _returning_language(request: Request) -> Language:
    """The language of a page without a link in its URL (the return from Visma, an error): the approver's pick,
    else the one they read when they left for Visma, else their browser's."""
    return (
        _picked(request)
        or i18n.language_for_locale(request.cookies.get(LANGUAGE_COOKIE))
        or i18n.negotiate(request.headers.get("accept-language"))
    )


async def oauth_callback(request: Request) -> Response:
    """GET /oauth/{system}/callback: check the connection for real and say how it went.

    No language switch here: the page answers a sign-in whose state is now used up, so it cannot be drawn
    again; it is in the language the approver read when they left for Visma."""
    deps = _deps(request)
    params = request.query_params
    outcome = await connect.finish(deps, state=params.get("state"), code=params.get("code"), error=params.get("error"))
    language = _returning_language(request)
    return result(deps, language, consent_page(outcome, language))


async def server_error(request: Request, exc: Exception) -> Response:
    """Anything unexpected: logged with a reference, and a plain page (never a stack trace)."""
    reference = uuid.uuid4().hex[:8]
    log.error("unhandled error on %s %s (ref %s)", request.method, request.url.path, reference, exc_info=exc)
    language = _returning_language(request)
    page = ResultPage(
        translate(language, "Something went wrong on our side"),
        [
            translate(
                language,
                "Nothing was changed. Try again in a minute; if it keeps happening, tell the person who sent you "
                "the link and give them the reference below.",
            )
        ],
        status=500,
    )
    return result(_deps(request), language, page, reference=reference)


routes = [
    Route("/approve/{token}", approval_page, methods=["GET"]),
    Route("/approve/{token}", continue_to_visma, methods=["POST"]),
    Route("/approve/{token}/decline", decline_page, methods=["GET"]),
    Route("/approve/{token}/decline", decline, methods=["POST"]),
    Route("/approve/{token}/tenant", check_tenant, methods=["POST"]),
    Route("/approve/{token}/check", check_listed, methods=["POST"]),
    Route("/oauth/{system}/callback", oauth_callback, methods=["GET"]),
]
