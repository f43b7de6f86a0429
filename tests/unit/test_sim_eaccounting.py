"""The eAccounting simulator answers in Visma's published shapes and reproduces its failure modes."""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.simulators.browser import FormBrowser
from bot.simulators.eaccounting import create_api_app, create_identity_app, seed_world
from tests.conftest import SPECS

CALLBACK = "http://bot.test/oauth/eaccounting/callback"
SWAGGER = SPECS / "eaccounting-v2.swagger.json"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def pkce() -> tuple[str, str]:
    verifier = "v" * 50
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


class Routed(httpx.AsyncBaseTransport):
    """Identity on idp.test, API on api.test, and the bot's callback answered with 200 (not followed further)."""

    def __init__(self, world) -> None:
        self.idp = httpx.ASGITransport(app=create_identity_app(world))
        self.api = httpx.ASGITransport(app=create_api_app(world))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "idp.test":
            return await self.idp.handle_async_request(request)
        if request.url.host == "api.test":
            return await self.api.handle_async_request(request)
        return httpx.Response(200, text="callback reached")


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def world(clock):
    world = seed_world(now=clock)
    world.register_client("bot", "secret", {CALLBACK})
    return world


@pytest.fixture
async def http(world):
    async with httpx.AsyncClient(transport=Routed(world)) as client:
        yield client


def authorize_url(challenge: str, *, force: bool = True) -> str:
    params = {
        "client_id": "bot",
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "state": "s1",
        "scope": "ea:api offline_access ea:accounting_readonly",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if force:
        params["acr_values"] = "forceselectcompany:true"
    return str(httpx.URL("http://idp.test/connect/authorize", params=params))


async def consent(http, world, *, force=True, company_org="988077917"):
    verifier, challenge = pkce()
    browser = FormBrowser(http)
    page = await browser.get(authorize_url(challenge, force=force))
    page = await browser.submit(page, values={"email": "ola@nordlysbakeri.no", "password": "demo"})
    picker = any("company_id" in form.fields for form in page.forms)
    if picker:
        page = await browser.submit(page, values={"company_id": world.company_id_by_org(company_org)})
    page = await browser.submit(page, button=("decision", "accept"))
    query = httpx.URL(page.url).params
    return picker, query["code"], verifier, page


async def tokens(http, world, **kwargs):
    _, code, verifier, _ = await consent(http, world, **kwargs)
    response = await http.post(
        "http://idp.test/connect/token",
        auth=("bot", "secret"),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def get(http, token, path):
    return await http.get(f"http://api.test/v2/{path}", headers={"Authorization": f"Bearer {token}"})


async def test_forceselectcompany_shows_the_picker_and_the_chosen_company_is_connected(http, world):
    world.switches.default_company = True
    body = await tokens(http, world, force=True)
    settings = (await get(http, body["access_token"], "companysettings")).json()
    assert settings["CorporateIdentityNumber"] == "988077917"
    assert body["expires_in"] == 3600
    assert body["refresh_token"]


async def test_without_forceselectcompany_the_default_company_is_chosen_silently(http, world):
    world.switches.default_company = True
    picker, code, verifier, _ = await consent(http, world, force=False)
    assert picker is False
    response = await http.post(
        "http://idp.test/connect/token",
        auth=("bot", "secret"),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier},
    )
    settings = (await get(http, response.json()["access_token"], "companysettings")).json()
    assert settings["Name"] == "Feil Firma AS"


@pytest.mark.parametrize(
    ("change", "error", "status"),
    [
        ({"code_verifier": "w" * 50}, "invalid_grant", 400),
        ({"redirect_uri": "http://evil.test/cb"}, "invalid_grant", 400),
        ({"grant_type": "password"}, "unsupported_grant_type", 400),
    ],
)
async def test_token_requests_are_checked(http, world, change, error, status):
    _, code, verifier, _ = await consent(http, world)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier}
    response = await http.post("http://idp.test/connect/token", auth=("bot", "secret"), data={**form, **change})
    assert (response.status_code, response.json()["error"]) == (status, error)


async def test_a_bad_client_secret_and_a_reused_code_are_refused(http, world):
    _, code, verifier, _ = await consent(http, world)
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier}
    bad = await http.post("http://idp.test/connect/token", auth=("bot", "wrong"), data=form)
    assert (bad.status_code, bad.json()["error"]) == (401, "invalid_client")
    first = await http.post("http://idp.test/connect/token", auth=("bot", "secret"), data=form)
    again = await http.post("http://idp.test/connect/token", auth=("bot", "secret"), data=form)
    assert first.status_code == 200
    assert (again.status_code, again.json()["error"]) == (400, "invalid_grant")


async def test_refresh_tokens_rotate(http, world):
    body = await tokens(http, world)
    form = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    first = await http.post("http://idp.test/connect/token", auth=("bot", "secret"), data=form)
    reused = await http.post("http://idp.test/connect/token", auth=("bot", "secret"), data=form)
    assert first.status_code == 200
    assert first.json()["refresh_token"] != body["refresh_token"]
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")


async def test_access_tokens_expire_after_an_hour(http, world, clock):
    body = await tokens(http, world)
    clock.now += timedelta(minutes=59)
    assert (await get(http, body["access_token"], "fiscalyears")).status_code == 200
    clock.now += timedelta(minutes=2)
    expired = await get(http, body["access_token"], "fiscalyears")
    assert expired.status_code == 401
    assert set(expired.json()) == {"ErrorCode", "DeveloperErrorMessage", "ErrorId"}


@pytest.mark.parametrize(
    ("switch", "status", "code", "path"),
    [
        ("no_full_permission", 403, 4007, "vouchers"),
        ("no_bookkeeping", 403, 4002, "vouchers"),
        ("product_variant", 403, 4009, "accounts"),
        ("scope_missing", 403, 4006, "fiscalyears"),
        ("no_user_access", 403, 4011, "companysettings"),
        ("licence_not_accepted", 403, 4012, "users"),
        ("consent_revoked", 401, 4005, "companysettings"),
        ("outage", 503, 5001, "fiscalyears"),
    ],
)
async def test_each_switch_gives_its_error_code(http, world, switch, status, code, path):
    body = await tokens(http, world)
    setattr(world.switches, switch, True)
    response = await get(http, body["access_token"], path)
    assert response.status_code == status
    assert response.json()["ErrorCode"] == code


async def test_no_bookkeeping_still_reads_companysettings(http, world):
    body = await tokens(http, world)
    world.switches.no_bookkeeping = True
    assert (await get(http, body["access_token"], "companysettings")).status_code == 200


async def test_the_rate_limit_is_per_endpoint(http, world):
    body = await tokens(http, world)
    world.switches.rate_limit_per_minute = 5
    statuses = [(await get(http, body["access_token"], "fiscalyears")).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    limited = await get(http, body["access_token"], "fiscalyears")
    assert limited.json()["ErrorCode"] == 4010
    assert "Try again in" in limited.json()["DeveloperErrorMessage"]
    assert (await get(http, body["access_token"], "users")).status_code == 200


async def test_paging_envelope(http, world):
    body = await tokens(http, world)
    page = (await get(http, body["access_token"], "vouchers?$page=2&$pagesize=100")).json()
    meta = page["Meta"]
    assert meta["CurrentPage"] == 2
    assert meta["PageSize"] == 100
    assert meta["TotalNumberOfPages"] == -(-meta["TotalNumberOfResults"] // 100)
    assert len(page["Data"]) == 100


async def test_vouchers_balance_and_balances_follow_them(http, world):
    body = await tokens(http, world)
    vouchers = (await get(http, body["access_token"], "vouchers?$pagesize=1000")).json()["Data"]
    for voucher in vouchers:
        debit = round(sum(row["DebitAmount"] for row in voucher["Rows"]), 2)
        credit = round(sum(row["CreditAmount"] for row in voucher["Rows"]), 2)
        assert debit == credit
    balances = (await get(http, body["access_token"], "accountbalances/2026-10-31")).json()["Data"]
    assert round(sum(item["Balance"] for item in balances), 2) == 0
    bad = await get(http, body["access_token"], "accountbalances/31-10-2026")
    assert (bad.status_code, bad.json()["ErrorCode"]) == (400, 6001)


@pytest.fixture
def swagger():
    if not SWAGGER.exists():
        pytest.skip(f"eAccounting Swagger not present at {SWAGGER} (no ../shared beside this clone)")
    return json.loads(SWAGGER.read_text())


@pytest.mark.parametrize(
    ("path", "definition"),
    [
        ("companysettings", "CompanySettingsApi"),
        ("fiscalyears", "PaginatedResponse[FiscalYearApi]"),
        ("accounts", "PaginatedResponse[AccountApi]"),
        ("vouchers", "PaginatedResponse[VoucherApi]"),
        ("accountbalances/2026-06-30", "PaginatedResponse[AccountBalanceAPI]"),
        ("users", "PaginatedResponse[UserApi]"),
    ],
)
async def test_responses_validate_against_the_published_swagger(http, world, swagger, path, definition):
    from jsonschema import Draft4Validator

    body = await tokens(http, world)
    response = await get(http, body["access_token"], path)
    schema = {"definitions": swagger["definitions"], "$ref": f"#/definitions/{definition}"}
    errors = list(Draft4Validator(schema).iter_errors(response.json()))
    assert errors == [], [error.message for error in errors[:5]]
    # The check is real: a wrong type in the same body fails it.
    broken = response.json()
    if "Data" in broken:
        broken["Meta"]["CurrentPage"] = "one"
    else:
        broken["Name"] = 42
    assert list(Draft4Validator(schema).iter_errors(broken))
