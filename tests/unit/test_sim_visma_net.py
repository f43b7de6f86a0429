"""The Visma Connect + Visma.net ERP simulator: tenants and App Store approvals, paging, filters, limits, switches."""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from bot.simulators.browser import FormBrowser
from bot.simulators.visma_net import (
    DRIFT_TENANT,
    EIENDOM_TENANT,
    FJALLVIND_TENANT,
    HAVBRIS_CUSTOMER,
    INTERACTIVE_READ,
    SERVICE_READ,
    SJOMAT_TENANT,
    create_visma_net_app,
    seed_visma_net,
)

CALLBACK = "http://bot.test/oauth/visma/callback"
CONNECT = "http://visma.test/connect"
ERP = "http://visma.test/erp"
SECRET = "secret"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 12, 10, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Routed(httpx.AsyncBaseTransport):
    """The simulator on visma.test; the bot's callback answered with 200 (not followed further)."""

    def __init__(self, world) -> None:
        self.app = httpx.ASGITransport(app=create_visma_net_app(world))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "visma.test":
            return await self.app.handle_async_request(request)
        return httpx.Response(200, text="callback reached")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def world(clock):
    return seed_visma_net(now=clock, client_id="bot", client_secret="secret", redirect_uris={CALLBACK})


@pytest.fixture
async def http(world):
    async with httpx.AsyncClient(transport=Routed(world)) as client:
        yield client


async def service(http, tenant=SJOMAT_TENANT, *, scope=SERVICE_READ, secret=SECRET):
    return await http.post(
        f"{CONNECT}/token",
        auth=("bot", secret),
        data={"grant_type": "client_credentials", "scope": scope, "tenant_id": tenant},
    )


async def token(http, tenant=SJOMAT_TENANT) -> str:
    response = await service(http, tenant)
    assert response.status_code == 200, response.text
    return response.json()["access_token"]


async def erp(http, access, path, **params):
    return await http.get(f"{ERP}{path}", params=params, headers={"Authorization": f"Bearer {access}"})


# ---------------------------------------------------------------- client credentials and the App Store


async def test_an_approved_company_tenant_gets_a_token_and_its_own_books(http, world):
    response = await service(http)
    body = response.json()
    assert body["scope"] == SERVICE_READ
    assert body["expires_in"] == 3600
    assert "refresh_token" not in body
    organisation = await erp(http, body["access_token"], "/v1/organization")
    assert organisation.status_code == 200
    assert organisation.json()[0]["corporateId"] == "931184202"
    assert organisation.json()[0]["name"] == "Havbris Sjømat AS"
    assert world.requests[-1].tenant == SJOMAT_TENANT


@pytest.mark.parametrize(
    ("switch", "tenant"),
    [
        (None, EIENDOM_TENANT),  # not integrated yet
        ("not_approved", SJOMAT_TENANT),
        ("no_api_user", SJOMAT_TENANT),
        ("consent_revoked", SJOMAT_TENANT),
        (None, "00000000-0000-0000-0000-000000000000"),
    ],
)
async def test_a_tenant_that_did_not_let_the_app_in_is_invalid_tenant(http, world, switch, tenant):
    if switch:
        world.switch(**{switch: True})
    response = await service(http, tenant)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_tenant",
        "error_description": "The application user or subscription is not entitled to use the API",
    }


async def test_an_integrating_user_without_api_user_makes_the_tenant_invalid(http, world):
    world.users["kari@havbris.no"].roles[SJOMAT_TENANT].discard("API User")
    assert (await service(http)).json()["error"] == "invalid_tenant"


async def test_only_an_integration_administrator_can_approve(world):
    with pytest.raises(PermissionError):
        world.approve("bot", EIENDOM_TENANT, {SERVICE_READ}, by="kari@havbris.no")


async def test_a_company_created_later_has_no_access_until_it_is_integrated(http, world):
    assert (await service(http, DRIFT_TENANT)).json()["error"] == "invalid_tenant"
    world.switch(later_company=True)
    assert (await service(http, DRIFT_TENANT)).json()["error"] == "invalid_tenant"
    world.approve("bot", DRIFT_TENANT, {SERVICE_READ})
    assert (await service(http, DRIFT_TENANT)).status_code == 200


async def test_client_and_scope_errors(http):
    assert (await service(http, secret="wrong")).status_code == 401
    assert (await service(http, secret="wrong")).json() == {"error": "invalid_client"}
    for scope in ("vismanet_erp_service_api:everything", INTERACTIVE_READ):
        response = await service(http, scope=scope)
        assert (response.status_code, response.json()["error"]) == (400, "invalid_scope")
    # A scope the tenant did not grant is no entitlement.
    assert (await service(http, scope="vismanet_erp_service_api:create")).json()["error"] == "invalid_tenant"


async def test_the_customer_level_tenant_gets_a_token_but_the_erp_answers_401_with_nothing(http, world):
    world.approve("bot", HAVBRIS_CUSTOMER, {SERVICE_READ})
    access = await token(http, HAVBRIS_CUSTOMER)
    response = await erp(http, access, "/v1/account", pageNumber=1, pageSize=10)
    assert response.status_code == 401
    assert response.content == b""
    assert response.headers["x-vbc-traceid"]


@pytest.mark.parametrize(
    ("switch", "status"),
    [("customer_tenant", 401), ("read_scope_off", 403), ("no_licence", 500), ("unavailable", 503)],
)
async def test_erp_failure_switches(http, world, switch, status):
    access = await token(http)
    world.switch(**{switch: True})
    response = await erp(http, access, "/v1/account", pageNumber=1, pageSize=10)
    assert response.status_code == status
    if switch == "no_licence":
        body = response.json()
        assert body["ExceptionType"] == "IPPException"
        assert body["ExceptionMessage"] == "No license for this company."
        assert body["ExceptionFaultCode"] == "12027"
        assert body["ExceptionMessageID"].startswith("12027_")


async def test_connect_unavailable_and_switches_over_http(http, world):
    response = await http.post(f"{ERP.removesuffix('/erp')}/_sim/switches", json={"connect_unavailable": True})
    assert response.json()["connect_unavailable"] is True
    assert (await service(http)).status_code == 503
    bad = await http.post("http://visma.test/_sim/switches", json={"no_such_switch": True})
    assert bad.status_code == 400
    await http.post("http://visma.test/_sim/reset")
    assert world.switches.connect_unavailable is False


async def test_an_unknown_or_expired_token_is_401(http, world, clock):
    access = await token(http)
    assert (await erp(http, "nope", "/v1/organization")).status_code == 401
    clock.now += timedelta(hours=1, seconds=1)
    assert (await erp(http, access, "/v1/organization")).status_code == 401


# ---------------------------------------------------------------- interactive flow


def pkce() -> tuple[str, str]:
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


async def sign_in(http, *, email="kari@havbris.no", tenant=SJOMAT_TENANT, decision="accept"):
    verifier, challenge = pkce()
    params = {
        "client_id": "bot",
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "state": "s1",
        "scope": f"openid offline_access {INTERACTIVE_READ}",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    browser = FormBrowser(http)
    page = await browser.get(str(httpx.URL(f"{CONNECT}/authorize", params=params)))
    page = await browser.submit(page, values={"email": email, "password": "demo"})
    shown = page.text
    page = await browser.submit(page, values={"tenant_id": tenant})
    page = await browser.submit(page, button=("decision", decision))
    return httpx.URL(page.url).params, verifier, shown


async def exchange(http, code, verifier, redirect_uri=CALLBACK):
    return await http.post(
        f"{CONNECT}/token",
        auth=("bot", "secret"),
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
        },
    )


async def test_the_tenant_picker_lists_the_customer_and_its_companies(http):
    query, verifier, shown = await sign_in(http)
    assert "Havbris Gruppen AS (customer)" in shown
    assert "Havbris Sjømat AS" in shown
    assert "Havbris Drift AS" not in shown  # not created yet
    response = await exchange(http, query["code"], verifier)
    assert response.status_code == 200
    body = response.json()
    assert body["refresh_token"]
    assert INTERACTIVE_READ in body["scope"]
    assert (await erp(http, body["access_token"], "/v1/organization")).json()[0]["corporateId"] == "931184202"


async def test_pkce_and_redirect_uri_are_checked(http):
    query, verifier, _ = await sign_in(http)
    assert (await exchange(http, query["code"], "w" * 50)).json()["error"] == "invalid_grant"
    query, verifier, _ = await sign_in(http)
    assert (await exchange(http, query["code"], verifier, "http://evil.test/cb")).json()["error"] == "invalid_grant"


async def test_a_user_without_api_user_in_the_company_gets_invalid_tenant(http):
    query, verifier, _ = await sign_in(http, tenant=EIENDOM_TENANT)  # Kari: Customer administrator only
    response = await exchange(http, query["code"], verifier)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_tenant")
    query, verifier, _ = await sign_in(http, email="lars@havbris.no", tenant=EIENDOM_TENANT)
    assert (await exchange(http, query["code"], verifier)).status_code == 200


async def test_deny_returns_access_denied(http):
    query, _, _ = await sign_in(http, decision="deny")
    assert query["error"] == "access_denied"
    assert query["state"] == "s1"


async def refresh(http, refresh_token):
    return await http.post(
        f"{CONNECT}/token",
        auth=("bot", "secret"),
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
    )


async def test_rotating_refresh_tokens_have_a_grace_period(http, clock):
    query, verifier, _ = await sign_in(http)
    first = (await exchange(http, query["code"], verifier)).json()["refresh_token"]
    second = (await refresh(http, first)).json()["refresh_token"]
    assert second != first
    assert (await refresh(http, first)).status_code == 200  # within the grace period
    clock.now += timedelta(seconds=31)
    response = await refresh(http, first)
    assert (response.status_code, response.json()["error"]) == (400, "invalid_grant")
    assert (await refresh(http, second)).status_code == 200


async def test_reusable_refresh_tokens_stay_until_revoked(http, world, clock):
    world.clients["bot"].refresh_mode = "reusable"
    query, verifier, _ = await sign_in(http)
    first = (await exchange(http, query["code"], verifier)).json()["refresh_token"]
    clock.now += timedelta(days=30)
    assert (await refresh(http, first)).json()["refresh_token"] == first
    assert (await refresh(http, first)).json()["refresh_token"] == first
    revoked = await http.post(f"{CONNECT}/revocation", auth=("bot", "secret"), data={"token": first})
    assert revoked.status_code == 200
    assert (await refresh(http, first)).json()["error"] == "invalid_grant"


async def test_consent_revoked_kills_refresh(http, world):
    query, verifier, _ = await sign_in(http)
    first = (await exchange(http, query["code"], verifier)).json()["refresh_token"]
    world.switch(consent_revoked=True)
    assert (await refresh(http, first)).json()["error"] == "invalid_grant"


# ---------------------------------------------------------------- ERP lists


async def test_page_number_and_size_are_mandatory(http):
    access = await token(http)
    for params in ({}, {"pageNumber": 1}, {"pageSize": 10}, {"pageNumber": "x", "pageSize": 10}):
        response = await erp(http, access, "/v1/account", **params)
        assert response.status_code == 400
        assert response.json()["message"].startswith("VismaId: ")


async def test_page_size_is_clamped_silently_and_journal_pages_count_lines(http, world):
    access = await token(http)
    response = await erp(
        http,
        access,
        "/v2/journaltransaction",
        pageNumber=1,
        pageSize=5000,
        lastModifiedDateTime="2000-01-01",
        lastModifiedDateTimeCondition=">=",
    )
    assert response.status_code == 200
    assert sum(len(item["journalTransactionLines"]) for item in response.json()) == 500


async def test_a_batch_can_be_split_over_two_pages(http, world):
    access = await token(http)
    pages = []
    for number in (1, 2, 3):
        response = await erp(
            http,
            access,
            "/v2/journaltransaction",
            pageNumber=number,
            pageSize=4,
            lastModifiedDateTime="2000-01-01",
            lastModifiedDateTimeCondition=">=",
        )
        pages.append(response.json())
    assert all(sum(len(item["journalTransactionLines"]) for item in page) == 4 for page in pages)
    assert any(a[-1]["batchNumber"] == b[0]["batchNumber"] for a, b in itertools.pairwise(pages))


async def test_journal_needs_a_period_or_a_modified_bound(http):
    access = await token(http)
    assert (await erp(http, access, "/v2/journaltransaction", pageNumber=1, pageSize=10)).status_code == 400
    by_period = await erp(http, access, "/v2/journaltransaction", pageNumber=1, pageSize=500, periodId="202603")
    assert by_period.status_code == 200
    assert {item["financialPeriod"] for item in by_period.json()} == {"202603"}


@pytest.mark.parametrize("value", ["2026-10-01", "2026-10-01 00:00:00", "2026-10-01T00:00:00.000"])
async def test_last_modified_filters_in_every_documented_format(http, world, value):
    access = await token(http)
    response = await erp(
        http,
        access,
        "/v2/journaltransaction",
        pageNumber=1,
        pageSize=500,
        lastModifiedDateTime=value,
        lastModifiedDateTimeCondition=">=",
    )
    items = response.json()
    assert items
    assert all(item["lastModifiedDateTime"] >= "2026-10-01" for item in items)
    expected = {
        b["batchNumber"]
        for b in world.companies[SJOMAT_TENANT].transactions
        if b["lastModifiedDateTime"] >= "2026-10-01"
    }
    assert {item["batchNumber"] for item in items} == expected


async def test_last_modified_needs_its_condition_and_a_known_format(http):
    access = await token(http)
    one = await erp(http, access, "/v1/account", pageNumber=1, pageSize=10, lastModifiedDateTime="2026-01-01")
    other = await erp(http, access, "/v1/account", pageNumber=1, pageSize=10, lastModifiedDateTimeCondition=">")
    bad = await erp(
        http,
        access,
        "/v1/account",
        pageNumber=1,
        pageSize=10,
        lastModifiedDateTime="01.01.2026",
        lastModifiedDateTimeCondition=">",
    )
    worse = await erp(
        http,
        access,
        "/v1/account",
        pageNumber=1,
        pageSize=10,
        lastModifiedDateTime="2026-01-01",
        lastModifiedDateTimeCondition="==",
    )
    assert [r.status_code for r in (one, other, bad, worse)] == [400, 400, 400, 400]
    older = await erp(
        http,
        access,
        "/v1/account",
        pageNumber=1,
        pageSize=10,
        lastModifiedDateTime="2026-01-01",
        lastModifiedDateTimeCondition="<",
    )
    assert len(older.json()) == 10


async def test_ledger_balances_need_a_period_and_balance(http):
    access = await token(http)
    assert (await erp(http, access, "/v2/generalLedgerBalance", pageNumber=1, pageSize=100)).status_code == 400
    assert (
        await erp(http, access, "/v2/generalLedgerBalance", pageNumber=1, pageSize=100, periodId="2026-03")
    ).status_code == 400
    rows = (await erp(http, access, "/v2/generalLedgerBalance", pageNumber=1, pageSize=1000, periodId="202610")).json()
    assert rows
    assert abs(sum(row["yearToDateBalance"] for row in rows)) < 0.01
    assert {row["financialPeriod"] for row in rows} == {"202610"}


@pytest.mark.parametrize("path", ["/v1/account", "/v1/financialPeriod", "/v1/customer", "/v1/supplier", "/v1/vat"])
async def test_every_list_answers_a_bare_array(http, path):
    access = await token(http)
    response = await erp(http, access, path, pageNumber=1, pageSize=1000)
    assert response.status_code == 200
    assert isinstance(response.json(), list)
    assert response.json()


async def test_rate_limit_headers_and_429_per_client_and_company(http, world, clock):
    world.switch(rate_limit_per_hour=3)
    access = await token(http)
    other = await token(http, FJALLVIND_TENANT)
    answers = [await erp(http, access, "/v1/organization") for _ in range(3)]
    assert [a.headers["X-RateLimit-Remaining"] for a in answers] == ["2", "1", "0"]
    assert answers[0].headers["X-RateLimit-Limit"] == "3"
    assert answers[0].headers["X-RateLimit-Policy"] == "4-fixed-window"
    assert answers[0].headers["X-RateLimit-Reset"] == str(50 * 60)  # the clock hour ends at 13:00
    limited = await erp(http, access, "/v1/organization")
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == str(50 * 60)
    assert (await erp(http, other, "/v1/organization")).status_code == 200  # another company's window
    clock.now += timedelta(minutes=50)
    fresh = await erp(http, access, "/v1/organization")
    assert fresh.status_code == 200
    assert fresh.headers["X-RateLimit-Remaining"] == "2"


async def test_mounted_at_visma_the_forms_and_the_erp_live_under_the_mount(world):
    app = Starlette(routes=[Mount("/visma", app=create_visma_net_app(world))])

    class Mounted(httpx.AsyncBaseTransport):
        def __init__(self) -> None:
            self.app = httpx.ASGITransport(app=app)

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            if request.url.host == "visma.test":
                return await self.app.handle_async_request(request)
            return httpx.Response(200, text="callback reached")

    async with httpx.AsyncClient(transport=Mounted()) as client:
        _, challenge = pkce()
        params = {
            "client_id": "bot",
            "redirect_uri": CALLBACK,
            "response_type": "code",
            "state": "s1",
            "scope": INTERACTIVE_READ,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        browser = FormBrowser(client)
        page = await browser.get(str(httpx.URL("http://visma.test/visma/connect/authorize", params=params)))
        assert page.forms[0].action == "/visma/connect/login"
        page = await browser.submit(page, values={"email": "kari@havbris.no", "password": "demo"})
        page = await browser.submit(page, values={"tenant_id": SJOMAT_TENANT})
        page = await browser.submit(page, button=("decision", "accept"))
        assert httpx.URL(page.url).params["code"]
        access = (
            await client.post(
                "http://visma.test/visma/connect/token",
                auth=("bot", SECRET),
                data={"grant_type": "client_credentials", "scope": SERVICE_READ, "tenant_id": SJOMAT_TENANT},
            )
        ).json()["access_token"]
        response = await client.get(
            "http://visma.test/visma/erp/v1/organization", headers={"Authorization": f"Bearer {access}"}
        )
        assert response.status_code == 200
        assert world.requests[-1].path == "/v1/organization"


# ---------------------------------------------------------------- interactive: id token, userinfo, scopes unticked


def _claims(id_token: str) -> dict:
    payload = id_token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


async def test_the_id_token_names_the_tenant_picked(http):
    query, verifier, _ = await sign_in(http, tenant=HAVBRIS_CUSTOMER)
    body = (await exchange(http, query["code"], verifier)).json()
    claims = _claims(body["id_token"])
    assert (claims["tenant_id"], claims["aud"]) == (HAVBRIS_CUSTOMER, "bot")
    refreshed = (await refresh(http, body["refresh_token"])).json()
    assert _claims(refreshed["id_token"])["tenant_id"] == HAVBRIS_CUSTOMER


async def test_a_service_token_has_no_id_token(http):
    assert "id_token" not in (await service(http)).json()


async def test_userinfo_answers_by_scope_and_needs_a_user_token(http):
    query, verifier, _ = await sign_in(http)
    access = (await exchange(http, query["code"], verifier)).json()["access_token"]
    claims = (await http.get(f"{CONNECT}/userinfo", headers={"Authorization": f"Bearer {access}"})).json()
    assert "sub" in claims
    assert "name" not in claims
    assert (
        await http.get(f"{CONNECT}/userinfo", headers={"Authorization": f"Bearer {await token(http)}"})
    ).status_code == 401


async def test_scopes_unticked_at_consent_are_not_granted(http):
    verifier, challenge = pkce()
    params = {
        "client_id": "bot",
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "state": "s1",
        "scope": f"openid profile offline_access {INTERACTIVE_READ}",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    browser = FormBrowser(http)
    page = await browser.get(str(httpx.URL(f"{CONNECT}/authorize", params=params)))
    page = await browser.submit(page, values={"email": "kari@havbris.no", "password": "demo"})
    page = await browser.submit(page, values={"tenant_id": SJOMAT_TENANT})
    page = await browser.submit(page, values={f"grant:{INTERACTIVE_READ}": ""}, button=("decision", "accept"))
    body = (await exchange(http, httpx.URL(page.url).params["code"], verifier)).json()
    assert body["scope"].split() == ["openid", "profile", "offline_access"]
    assert (await erp(http, body["access_token"], "/v1/organization")).status_code == 403
    claims = (await http.get(f"{CONNECT}/userinfo", headers={"Authorization": f"Bearer {body['access_token']}"})).json()
    assert claims["name"] == "Kari Havik"
