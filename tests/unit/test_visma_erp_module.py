"""The Visma ERP module against the simulator: the consent link, Visma Connect's sign-in pages, the code exchange
with PKCE, the tenant and scopes granted, refresh tokens, and the books read with the approver's token."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.domain.books import Book
from bot.domain.problems import Fix, ProblemKind
from bot.domain.types import AccountingSystem
from bot.simulators.browser import FormBrowser
from bot.simulators.visma_net import (
    EIENDOM_TENANT,
    HAVBRIS_CUSTOMER,
    SJOMAT_TENANT,
    create_visma_net_app,
    seed_visma_net,
)
from bot.visma.base import (
    Grant,
    GrantRevoked,
    OAuthError,
    OurConfiguration,
    Pkce,
    Profile,
    Refused,
    RunNotes,
    System,
    Target,
    TokenSet,
    Unauthorized,
)
from bot.visma.visma_erp import READ_SCOPE, ConsentTokens, VismaErp
from bot.visma.visma_net import VismaNet

SECRET = "secret"
CALLBACK = "http://bot.test/oauth/visma_erp/callback"
CONNECT = "http://visma.test"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 12, 10, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Routed(httpx.AsyncBaseTransport):
    """The simulator on visma.test; the bot's callback answered with 200 (the browser stops there)."""

    def __init__(self, world) -> None:
        self.app = httpx.ASGITransport(app=create_visma_net_app(world))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "visma.test":
            return await self.app.handle_async_request(request)
        return httpx.Response(200, text="callback reached")


class Direct:
    """The engine's `Api`, reduced to what a module sees: one token, GETs parsed by the module."""

    def __init__(self, module: VismaNet, http: httpx.AsyncClient, token: str) -> None:
        self.module, self.http, self.token = module, http, token

    async def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        response = await self.http.get(
            self.module.url(path), params=dict(params or {}), headers={"Authorization": f"Bearer {self.token}"}
        )
        return self.module.parse(response)

    async def post(self, path: str, body: Mapping[str, Any]) -> Any:
        raise NotImplementedError


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def world(clock):
    return seed_visma_net(now=clock, client_id="bot", client_secret=SECRET, redirect_uris={CALLBACK})


@pytest.fixture
async def http(world):
    async with httpx.AsyncClient(transport=Routed(world)) as client:
        yield client


def make(http, *, secret=SECRET) -> VismaErp:
    return VismaErp(
        http,
        connect_url=CONNECT,
        api_url=f"{CONNECT}/erp",
        client_id="bot",
        client_secret=secret,
        rate_limit=3000,
        page_size=500,
    )


@pytest.fixture
def module(http):
    return make(http)


async def consent(
    module: VismaErp,
    http,
    *,
    email="kari@havbris.no",
    tenant=SJOMAT_TENANT,
    untick: tuple[str, ...] = (),
    scopes: tuple[str, ...] = (),
) -> tuple[httpx.QueryParams, Pkce]:
    """The approver follows our link: signs in, picks an organisation, accepts (leaving `untick` unticked)."""
    pkce = Pkce.new()
    url = module.authorize_url(state="st", challenge=pkce.challenge, redirect_uri=CALLBACK, scopes=scopes)
    browser = FormBrowser(http)
    page = await browser.get(url)
    page = await browser.submit(page, values={"email": email, "password": "demo"})
    page = await browser.submit(page, values={"tenant_id": tenant})
    page = await browser.submit(page, values={f"grant:{scope}": "" for scope in untick}, button=("decision", "accept"))
    assert page.url.startswith(CALLBACK), page.text
    return httpx.URL(page.url).params, pkce


async def connected(module: VismaErp, http, clock, **kwargs) -> ConsentTokens:
    query, pkce = await consent(module, http, **kwargs)
    return await module.exchange_code(code=query["code"], verifier=pkce.verifier, redirect_uri=CALLBACK, now=clock())


# ---------------------------------------------------------------- the module on the seam


def test_a_consent_system_on_the_seam(module):
    system: System = module
    assert (system.system, system.grant, system.label) == (AccountingSystem.VISMA_ERP, Grant.CONSENT, "Visma ERP")
    assert module.url("v1/account") == "http://visma.test/erp/v1/account"
    limit = module.rate_limit("v1/account", scope=SJOMAT_TENANT)
    assert (limit.key, limit.count, limit.window) == (f"visma_erp:bot:{SJOMAT_TENANT}", 3000, 3600.0)


async def test_no_client_credentials_for_a_consent_system(module, clock):
    with pytest.raises(OurConfiguration):
        await module.service_token(tenant=SJOMAT_TENANT, now=clock())


def test_the_authorize_url_asks_for_a_refresh_token_and_the_interactive_read_scope(module):
    url = httpx.URL(module.authorize_url(state="st", challenge="ch", redirect_uri=CALLBACK, locale="nb-NO"))
    assert (url.host, url.path) == ("visma.test", "/connect/authorize")
    params = dict(url.params)
    assert params.pop("scope").split() == ["openid", "profile", "email", "offline_access", READ_SCOPE]
    assert params == {
        "client_id": "bot",
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "state": "st",
        "code_challenge": "ch",
        "code_challenge_method": "S256",
        "ui_locales": "nb-NO",
    }  # no tenant hint: Visma Connect documents none


def test_extra_scopes_staff_ask_for_are_added_once_and_unknown_ones_refused(module):
    extra = ("vismanet_erp_interactive_api:create", READ_SCOPE)
    url = httpx.URL(module.authorize_url(state="s", challenge="c", redirect_uri=CALLBACK, scopes=extra))
    assert url.params["scope"].split()[-2:] == [READ_SCOPE, "vismanet_erp_interactive_api:create"]
    with pytest.raises(OurConfiguration):
        module.authorize_url(state="s", challenge="c", redirect_uri=CALLBACK, scopes=("ea:api",))


# ---------------------------------------------------------------- consent and code exchange


async def test_the_code_is_exchanged_with_pkce_and_the_tenant_and_scopes_read_back(module, http, clock, world):
    tokens = await connected(module, http, clock)
    assert module.tenant_of(tokens) == SJOMAT_TENANT
    assert set(tokens.scope.split()) >= {"offline_access", READ_SCOPE}
    assert tokens.refresh_token
    assert tokens.expires_at == clock() + timedelta(hours=1)
    assert module.check_grant(tokens, company="Havbris Sjømat AS", tenant=SJOMAT_TENANT.upper()) is None
    exchanged = world.token_requests[-1]
    assert exchanged["grant_type"] == "authorization_code"
    assert exchanged["redirect_uri"] == CALLBACK
    assert "code_verifier" in exchanged
    assert tokens.access_token not in repr(tokens)
    assert str(tokens.refresh_token) not in repr(tokens)


async def test_a_wrong_verifier_is_refused(module, http, clock):
    query, _ = await consent(module, http)
    with pytest.raises(OAuthError) as refused:
        await module.exchange_code(code=query["code"], verifier=Pkce.new().verifier, redirect_uri=CALLBACK, now=clock())
    assert (refused.value.status, refused.value.error) == (400, "invalid_grant")


async def test_a_wrong_client_secret_is_refused(http, clock):
    module = make(http, secret="wrong")
    query, pkce = await consent(module, http)
    with pytest.raises(OAuthError) as refused:
        await module.exchange_code(code=query["code"], verifier=pkce.verifier, redirect_uri=CALLBACK, now=clock())
    assert (refused.value.status, refused.value.error) == (401, "invalid_client")


async def test_an_approver_without_api_user_is_told_so(module, http, clock):
    # Kari is only Customer administrator in Havbris Eiendom: Visma Connect refuses the exchange.
    query, pkce = await consent(module, http, tenant=EIENDOM_TENANT)
    with pytest.raises(OAuthError) as refused:
        await module.exchange_code(code=query["code"], verifier=pkce.verifier, redirect_uri=CALLBACK, now=clock())
    problem = module.classify(refused.value, company="Havbris Eiendom AS")
    assert (problem.kind, problem.fix, problem.code) == (
        ProblemKind.ERP_NO_API_USER,
        Fix.NEW_LINK,
        "Visma ERP invalid_tenant",
    )
    assert "API User" in problem.summary


async def test_another_tenant_than_the_one_asked_for(module, http, clock):
    tokens = await connected(module, http, clock, email="lars@havbris.no", tenant=EIENDOM_TENANT)
    assert module.tenant_of(tokens) == EIENDOM_TENANT
    problem = module.check_grant(tokens, company="Havbris Sjømat AS", tenant=SJOMAT_TENANT)
    assert problem is not None
    assert (problem.kind, problem.fix) == (ProblemKind.WRONG_TENANT, Fix.NEW_LINK)
    assert EIENDOM_TENANT in problem.summary
    assert SJOMAT_TENANT in problem.summary
    assert module.check_grant(tokens, company="Havbris Eiendom AS") is None  # no Tenant ID given: nothing to compare


async def test_the_customer_picked_instead_of_the_company(module, http, clock):
    tokens = await connected(module, http, clock, tenant=HAVBRIS_CUSTOMER)
    assert module.tenant_of(tokens) == HAVBRIS_CUSTOMER
    with pytest.raises(Unauthorized) as refused:
        await module.profile(Direct(module, http, tokens.access_token))
    problem = module.classify(refused.value, company="Havbris Sjømat AS")
    assert (problem.kind, problem.code) == (ProblemKind.CUSTOMER_TENANT, "Visma ERP 401")
    assert "Choose organisation" in " ".join(problem.steps)


async def test_a_read_scope_left_unticked_is_missing(module, http, clock):
    tokens = await connected(module, http, clock, untick=(READ_SCOPE,))
    assert READ_SCOPE not in tokens.scope.split()
    problem = module.check_grant(tokens, company="Havbris Sjømat AS", tenant=SJOMAT_TENANT)
    assert problem is not None
    assert (problem.kind, problem.code, problem.values["missing"]) == (
        ProblemKind.SCOPE_MISSING,
        "Visma ERP scope_missing",
        READ_SCOPE,
    )
    with pytest.raises(Refused) as refused:  # and the ERP says so too
        await module.profile(Direct(module, http, tokens.access_token))
    assert module.classify(refused.value, company="Havbris Sjømat AS").kind is ProblemKind.SCOPE_MISSING


async def test_an_extra_scope_asked_for_must_be_granted_too(module, http, clock):
    create = "vismanet_erp_interactive_api:create"
    tokens = await connected(module, http, clock, scopes=(create,), untick=(create,))
    assert module.check_grant(tokens, company="A", tenant=SJOMAT_TENANT) is None
    problem = module.check_grant(tokens, company="A", tenant=SJOMAT_TENANT, scopes=(create,))
    assert problem is not None
    assert problem.values["missing"] == create


def test_a_token_without_a_tenant_says_none(module, clock):
    plain = TokenSet("a", "r", clock(), "openid")
    assert module.tenant_of(plain) is None


# ---------------------------------------------------------------- who approved


async def test_the_approver_is_named_from_userinfo(module, http, clock):
    tokens = await connected(module, http, clock)
    assert await module.approver_name(Direct(module, http, tokens.access_token)) == "Kari Havik"
    assert await module.approver_name(Direct(module, http, "expired")) is None


# ---------------------------------------------------------------- refresh


async def test_refresh_tokens_rotate_and_a_used_one_is_invalid_grant(module, http, clock):
    first = await connected(module, http, clock)
    assert first.refresh_token
    second = await module.refresh(refresh_token=first.refresh_token, now=clock())
    assert second.refresh_token
    assert second.refresh_token != first.refresh_token
    assert module.tenant_of(second) == SJOMAT_TENANT
    clock.now += timedelta(seconds=31)  # past the grace period
    with pytest.raises(GrantRevoked) as revoked:
        await module.refresh(refresh_token=first.refresh_token, now=clock())
    problem = module.classify(revoked.value, company="Havbris Sjømat AS")
    assert (problem.kind, problem.fix, problem.code) == (
        ProblemKind.CONSENT_REVOKED,
        Fix.NEW_LINK,
        "Visma ERP invalid_grant",
    )
    assert (await module.refresh(refresh_token=second.refresh_token, now=clock())).access_token


async def test_a_reusable_refresh_token_comes_back_the_same(module, http, clock, world):
    world.clients["bot"].refresh_mode = "reusable"
    first = await connected(module, http, clock)
    assert first.refresh_token
    again = await module.refresh(refresh_token=first.refresh_token, now=clock())
    assert again.refresh_token == first.refresh_token


async def test_consent_withdrawn_and_our_client_refused(module, http, clock, world):
    tokens = await connected(module, http, clock)
    assert tokens.refresh_token
    with pytest.raises(OurConfiguration):
        await make(http, secret="wrong").refresh(refresh_token=tokens.refresh_token, now=clock())
    world.switch(consent_revoked=True)
    with pytest.raises(GrantRevoked):
        await module.refresh(refresh_token=tokens.refresh_token, now=clock())


# ---------------------------------------------------------------- books


async def test_the_books_read_with_the_approvers_token_are_visma_nets(module, http, clock, world):
    tokens = await connected(module, http, clock)
    api = Direct(module, http, tokens.access_token)
    profile = await module.profile(api)
    assert profile == Profile("Havbris Sjømat AS", "931184202", country="NO", currency="NOK")
    target = Target(1, profile.name, date(2026, 1, 1), (), date(2026, 11, 24))
    service = VismaNet(http, connect_url=CONNECT, api_url=f"{CONNECT}/erp", client_id="bot", client_secret=SECRET)
    service_api = Direct(service, http, (await service.service_token(tenant=SJOMAT_TENANT, now=clock())).access_token)
    ours, theirs = RunNotes(), RunNotes()
    assert module.books(profile, target) == service.books(profile, target)
    for book in module.books(profile, target):
        got = [p async for p in module.read(book, api, target=target, profile=profile, cursor=None, notes=ours)]
        want = [
            p async for p in service.read(book, service_api, target=target, profile=profile, cursor=None, notes=theirs)
        ]
        assert [page.rows for page in got] == [page.rows for page in want], book
    vouchers = [request for request in world.requests if request.path.endswith("journaltransaction")]
    assert vouchers
    assert all(request.path == "/v2/journaltransaction" for request in vouchers)
    assert Book.VOUCHERS in module.books(profile, target)
