"""The eAccounting simulator answers in Visma's published shapes, applies its rules and reproduces its failures."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import re
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from bot.simulators import odata
from bot.simulators.browser import FormBrowser
from bot.simulators.eaccounting import (
    ENDPOINT_RULES,
    FIELDS,
    MAX_PAGE_SIZE,
    READ_SCOPES,
    add_bulk_company,
    create_api_app,
    create_identity_app,
    load_endpoint_rules,
    modify_bulk,
    seed_world,
)
from tests.conftest import SPECS

CALLBACK = "http://bot.test/oauth/eaccounting/callback"
SWAGGER = SPECS / "eaccounting-v2.swagger.json"
NORDLYS = "988077917"
FJALL = "5560360793"
SCOPE = " ".join(READ_SCOPES)


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


@pytest.fixture
def swagger():
    if not SWAGGER.exists():
        pytest.skip(f"eAccounting Swagger not present at {SWAGGER} (no ../shared beside this clone)")
    return json.loads(SWAGGER.read_text())


def authorize_url(challenge: str, *, force: bool = True, scope: str = SCOPE) -> str:
    params = {
        "client_id": "bot",
        "redirect_uri": CALLBACK,
        "response_type": "code",
        "state": "s1",
        "scope": scope,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
    }
    if force:
        params["acr_values"] = "forceselectcompany:true"
    return str(httpx.URL("http://idp.test/connect/authorize", params=params))


async def consent(http, world, *, force=True, company_org=NORDLYS, scope=SCOPE):
    verifier, challenge = pkce()
    browser = FormBrowser(http)
    page = await browser.get(authorize_url(challenge, force=force, scope=scope))
    page = await browser.submit(page, values={"email": "ola@nordlysbakeri.no", "password": "demo"})
    picker = any("company_id" in form.fields for form in page.forms)
    if picker:
        page = await browser.submit(page, values={"company_id": world.company_id_by_org(company_org)})
    shown = page.text
    page = await browser.submit(page, button=("decision", "accept"))
    query = httpx.URL(page.url).params
    return picker, query["code"], verifier, shown


async def tokens(http, world, **kwargs):
    _, code, verifier, _ = await consent(http, world, **kwargs)
    response = await http.post(
        "http://idp.test/connect/token",
        auth=("bot", "secret"),
        data={"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier},
    )
    assert response.status_code == 200, response.text
    return response.json()


def token_for(world, org=NORDLYS, scopes=READ_SCOPES) -> str:
    return world.issue_tokens(world.company_id_by_org(org), client_id="bot", scopes=scopes)["access_token"]


async def get(http, token, path, **params):
    return await http.get(
        f"http://api.test/v2/{path}", params=params or None, headers={"Authorization": f"Bearer {token}"}
    )


async def refresh(http, refresh_token):
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    return await http.post("http://idp.test/connect/token", auth=("bot", "secret"), data=form)


async def every(http, token, path, **params):
    """All items of a list, page by page."""
    items, page = [], 1
    while True:
        body = (await get(http, token, path, **params, **{"$page": page})).json()
        items += body["Data"]
        if page >= body["Meta"]["TotalNumberOfPages"]:
            return items
        page += 1


def amount(row) -> Decimal:
    return Decimal(str(row["DebitAmount"])) - Decimal(str(row["CreditAmount"]))


# ---------------------------------------------------------------- identity


async def test_forceselectcompany_shows_the_picker_and_the_chosen_company_is_connected(http, world):
    world.switches.default_company = True
    body = await tokens(http, world, force=True)
    settings = (await get(http, body["access_token"], "companysettings")).json()
    assert settings["CorporateIdentityNumber"] == NORDLYS
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


async def test_only_known_scopes_that_were_asked_for_are_granted_and_the_consent_page_names_them(http, world):
    scope = "ea:api offline_access ea:accounting_readonly ea:nonsense"
    _, code, verifier, shown = await consent(http, world, scope=scope)
    assert "Read accounting data" in shown
    assert "Keep access when you are not logged in" in shown
    assert "nonsense" not in shown
    assert "sales" not in shown
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CALLBACK, "code_verifier": verifier}
    body = (await http.post("http://idp.test/connect/token", auth=("bot", "secret"), data=form)).json()
    assert body["scope"].split() == ["ea:api", "offline_access", "ea:accounting_readonly"]


async def test_refresh_tokens_rotate_with_a_grace_period(http, world, clock):
    body = await tokens(http, world)
    first = await refresh(http, body["refresh_token"])
    assert first.status_code == 200
    assert first.json()["refresh_token"] != body["refresh_token"]
    # Within the grace period the rotated token still works; it hands out yet another set, and the successor
    # from the first refresh stays valid too.
    clock.now += timedelta(seconds=59)
    again = await refresh(http, body["refresh_token"])
    assert again.status_code == 200
    assert again.json()["refresh_token"] not in {body["refresh_token"], first.json()["refresh_token"]}
    assert (await refresh(http, first.json()["refresh_token"])).status_code == 200
    clock.now += timedelta(seconds=2)
    late = await refresh(http, body["refresh_token"])
    assert (late.status_code, late.json()["error"]) == (400, "invalid_grant")


async def test_without_a_grace_period_a_used_refresh_token_is_dead_at_once(http, world):
    world.switch(refresh_grace_seconds=0)
    body = await tokens(http, world)
    assert (await refresh(http, body["refresh_token"])).status_code == 200
    reused = await refresh(http, body["refresh_token"])
    assert (reused.status_code, reused.json()["error"]) == (400, "invalid_grant")


async def test_a_refresh_by_another_client_is_refused(http, world):
    world.register_client("other", "pw", {CALLBACK})
    body = await tokens(http, world)
    form = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    stolen = await http.post("http://idp.test/connect/token", auth=("other", "pw"), data=form)
    assert (stolen.status_code, stolen.json()["error"]) == (400, "invalid_grant")


async def test_access_tokens_expire_after_an_hour(http, world, clock):
    body = await tokens(http, world)
    clock.now += timedelta(minutes=59)
    assert (await get(http, body["access_token"], "fiscalyears")).status_code == 200
    clock.now += timedelta(minutes=2)
    expired = await get(http, body["access_token"], "fiscalyears")
    assert expired.status_code == 401
    assert set(expired.json()) == {"ErrorCode", "DeveloperErrorMessage", "ErrorId"}


# ---------------------------------------------------------------- scopes and variants


def _rules_in_spec(swagger) -> dict[str, tuple[set[str], set[str]]]:
    found = {}
    for path in ENDPOINT_RULES:
        description = swagger["paths"][path]["get"]["description"]
        scopes = re.search(r"scopes: <br><b>(.*?)</b>", description).group(1).split(", ")
        variants = re.search(r"variants: <br><b>(.*?)</b>", description).group(1).split(", ")
        found[path] = (set(scopes) - {"ea.local:mobile_user"}, set(variants))
    return found


def test_the_built_in_endpoint_table_is_what_the_swagger_says(swagger):
    in_spec = _rules_in_spec(swagger)
    assert {path: (set(rule.scopes), set(rule.variants)) for path, rule in ENDPOINT_RULES.items()} == in_spec
    assert load_endpoint_rules(SWAGGER) == ENDPOINT_RULES


def test_the_built_in_field_kinds_are_the_swaggers_definitions(swagger):
    def kind(prop):
        if "$ref" in prop or prop.get("type") in {"object", "array"}:
            return "object"
        if prop["type"] == "string":
            return {"date-time": "datetime", "uuid": "guid"}.get(prop.get("format"), "string")
        return prop["type"]

    for name, fields in FIELDS.items():
        assert fields == {key: kind(prop) for key, prop in swagger["definitions"][name]["properties"].items()}, name


async def test_the_world_reads_its_endpoint_table_from_a_spec_when_given_one(tmp_path, clock):
    description = (
        "<p>Requires any of the following scopes: <br><b>ea:accounting_readonly, ea.local:mobile_user</b></p>"
        "<p>Available in any of the following variants: <br><b>Standard</b></p>"
    )
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"paths": {"/v2/companysettings": {"get": {"description": description}}}}))
    world = seed_world(now=clock, spec=spec)
    assert world.endpoints["/v2/companysettings"].scopes == {"ea:accounting_readonly"}
    assert world.endpoints["/v2/vouchers"] == ENDPOINT_RULES["/v2/vouchers"]
    assert seed_world(now=clock, spec=tmp_path / "missing.json").endpoints == ENDPOINT_RULES
    async with httpx.AsyncClient(transport=Routed(world)) as http:
        token = token_for(world, scopes=["ea:api", "ea:accounting_readonly"])
        assert (await get(http, token, "companysettings")).status_code == 200


@pytest.mark.parametrize(
    ("scopes", "path", "status"),
    [
        (["ea:api", "ea:accounting_readonly"], "companysettings", 403),
        (["ea:api", "ea:sales_readonly"], "companysettings", 200),
        (["ea:api", "ea:sales"], "companysettings", 200),
        (["ea:api", "ea:sales_readonly"], "fiscalyears", 200),
        (["ea:api", "ea:sales_readonly"], "fiscalyears/openingbalances", 200),
        (["ea:api", "ea:sales_readonly"], "vouchers", 403),
        (["ea:api", "ea:sales_readonly"], "vatcodes", 403),
        (["ea:api", "ea:accounting"], "accountbalances/2026-01-31", 200),
        (["ea:api", "ea:purchase_readonly"], "users", 200),
        (["ea:api", "ea:purchase_readonly"], "accounts", 403),
        (["ea:api", "ea:settings"], "users", 403),
    ],
)
async def test_each_endpoint_needs_one_of_its_scopes(http, world, scopes, path, status):
    response = await get(http, token_for(world, scopes=scopes), path)
    assert response.status_code == status
    if status == 403:
        assert response.json()["ErrorCode"] == 4006
        assert "requires any of the scopes" in response.json()["DeveloperErrorMessage"]


@pytest.mark.parametrize(
    ("variant", "path", "status"),
    [
        (2, "vouchers", 200),
        (2, "accounts", 200),
        (2, "fiscalyears", 200),
        (2, "companysettings", 200),
        (2, "vatcodes", 200),
        (2, "accountbalances/2026-01-31", 403),
        (2, "users", 403),
        (3, "accountbalances/2026-01-31", 200),
        (4, "users", 200),
        (5, "users", 200),
        (6, "vouchers", 403),
        (6, "companysettings", 403),
    ],
)
async def test_each_endpoint_is_in_some_product_variants(http, world, variant, path, status):
    world.companies[world.company_id_by_org(NORDLYS)].product_variant = variant
    response = await get(http, token_for(world), path)
    assert response.status_code == status
    if status == 403:
        assert response.json()["ErrorCode"] == 4009


async def test_the_product_variant_switch_makes_the_company_invoicing_only(http, world):
    token = token_for(world)
    world.switch(product_variant=True)
    assert (await get(http, token, "vouchers")).status_code == 200
    assert (await get(http, token, "companysettings")).json()["ProductVariant"] == 2
    refused = await get(http, token, "accountbalances/2026-01-31")
    assert (refused.status_code, refused.json()["ErrorCode"]) == (403, 4009)
    assert "Invoicing" in refused.json()["DeveloperErrorMessage"]


async def test_companysettings_carry_the_variant_and_the_lock_date(http, world):
    settings = (await get(http, token_for(world), "companysettings")).json()
    assert settings["ProductVariant"] == 1
    assert settings["AccountingLockedTo"] == "2025-12-31T00:00:00"
    locked = [
        year
        for year in (await get(http, token_for(world), "fiscalyears")).json()["Data"]
        if year["IsLockedForAccounting"]
    ]
    assert [year["EndDate"] for year in locked] == [settings["AccountingLockedTo"]]
    assert (await get(http, token_for(world, FJALL), "companysettings")).json()["ProductVariant"] == 5


# ---------------------------------------------------------------- switches, errors, rate limit


@pytest.mark.parametrize(
    ("switch", "status", "code", "path"),
    [
        ("no_full_permission", 403, 4007, "vouchers"),
        ("no_bookkeeping", 403, 4002, "vouchers"),
        ("product_variant", 403, 4009, "accountbalances/2026-06-30"),
        ("product_variant", 403, 4009, "users"),
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


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/v2/nothing", 404), ("GET", "/v3/vouchers", 404), ("POST", "/v2/vouchers", 405)],
)
async def test_unknown_routes_and_methods_answer_in_the_error_envelope(http, world, method, path, status):
    response = await http.request(method, f"http://api.test{path}", headers={"Authorization": "Bearer x"})
    assert response.status_code == status
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"ErrorCode", "DeveloperErrorMessage", "ErrorId"}
    assert body["ErrorCode"] == 3000


async def test_the_rate_limit_is_per_endpoint(http, world):
    token = token_for(world)
    world.switches.rate_limit_per_minute = 5
    statuses = [(await get(http, token, "fiscalyears")).status_code for _ in range(6)]
    assert statuses == [200] * 5 + [429]
    limited = await get(http, token, "fiscalyears")
    assert limited.json()["ErrorCode"] == 4010
    assert limited.json()["DeveloperErrorMessage"] == (
        "API calls quota exceeded! maximum admitted 5 per Minute. Try again in 60 seconds."
    )
    assert (await get(http, token, "users")).status_code == 200


async def test_the_rate_limit_window_is_settable_and_the_wait_counts_down(http, world, clock):
    token = token_for(world)
    world.switch(rate_limit_per_minute=2, rate_limit_window_seconds=10.0)
    assert [(await get(http, token, "vouchers")).status_code for _ in range(2)] == [200, 200]
    clock.now += timedelta(seconds=3.5)
    limited = await get(http, token, "vouchers")
    assert limited.status_code == 429
    assert limited.json()["DeveloperErrorMessage"].endswith("Try again in 7 seconds.")
    clock.now += timedelta(seconds=6.4)
    assert (await get(http, token, "vouchers")).json()["DeveloperErrorMessage"].endswith("Try again in 1 seconds.")
    clock.now += timedelta(seconds=0.1)
    assert (await get(http, token, "vouchers")).status_code == 200


# ---------------------------------------------------------------- fault injection


@pytest.mark.parametrize(
    ("kind", "seconds", "status", "code", "text"),
    [
        ("rate_limit", 7.0, 429, 4010, "Try again in 7 seconds."),
        ("rate_limit", 0.0, 429, 4010, "Try again in 1 seconds."),
        ("unavailable", 0.0, 503, 5001, "CantReachSystemDependency"),
        ("server_error", 0.0, 500, 5000, "InternalServerError"),
    ],
)
async def test_api_faults_answer_once_in_the_envelope(http, world, kind, seconds, status, code, text):
    token = token_for(world)
    world.inject(kind, seconds=seconds)
    response = await get(http, token, "vouchers")
    assert (response.status_code, response.json()["ErrorCode"]) == (status, code)
    assert text in response.json()["DeveloperErrorMessage"]
    assert (await get(http, token, "vouchers")).status_code == 200


async def test_the_html_fault_is_a_maintenance_page_with_status_200(http, world):
    token = token_for(world)
    world.inject("html", path="/v2/vouchers", times=2)
    assert (await get(http, token, "fiscalyears")).status_code == 200
    for _ in range(2):
        page = await get(http, token, "vouchers")
        assert page.status_code == 200
        assert page.headers["content-type"].startswith("text/html")
        assert "maintenance" in page.text
    assert (await get(http, token, "vouchers")).json()["Meta"]
    assert world.faults == []


async def test_a_hang_outlasts_a_short_client_timeout_then_answers_normally(http, world):
    token = token_for(world)
    world.inject("hang", seconds=0.3)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(get(http, token, "fiscalyears"), timeout=0.05)
    world.inject("hang", seconds=0.05)
    started = time.perf_counter()
    response = await get(http, token, "fiscalyears")
    assert response.status_code == 200
    assert time.perf_counter() - started >= 0.05


async def test_faults_are_queued_over_http_and_cleared_by_reset(http, world):
    token = token_for(world)
    queued = await http.post("http://api.test/_sim/faults", json={"kind": "server_error", "times": 3})
    assert queued.json()["api"] == [{"kind": "server_error", "path": "/v2/", "times": 3, "seconds": 0.0}]
    await http.post("http://idp.test/_sim/faults", json={"kind": "unavailable", "server": "identity"})
    assert (await http.post("http://api.test/_sim/faults", json={"kind": "nope"})).status_code == 400
    assert (await get(http, token, "users")).status_code == 500
    await http.post("http://api.test/_sim/switches", json={"rate_limit_window_seconds": 5, "refresh_grace_seconds": 0})
    shown = (await http.get("http://api.test/_sim/switches")).json()
    assert (shown["rate_limit_window_seconds"], shown["refresh_grace_seconds"]) == (5, 0)
    await http.post("http://api.test/_sim/reset")
    assert world.faults == []
    assert world.identity_faults == []
    assert world.switches.rate_limit_window_seconds == 60.0
    assert (await get(http, token, "users")).status_code == 200


def test_unknown_fault_kinds_are_refused(world):
    with pytest.raises(ValueError, match="unknown API fault"):
        world.inject("lost_response")
    with pytest.raises(ValueError, match="unknown identity fault"):
        world.inject_identity("html")


async def test_identity_unavailable_answers_html_503_then_recovers(http, world):
    body = await tokens(http, world)
    world.inject_identity("unavailable")
    down = await refresh(http, body["refresh_token"])
    assert down.status_code == 503
    assert down.headers["content-type"].startswith("text/html")
    assert (await refresh(http, body["refresh_token"])).status_code == 200


async def test_identity_hang_outlasts_a_short_timeout(http, world):
    body = await tokens(http, world)
    world.inject_identity("hang", seconds=0.3)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(refresh(http, body["refresh_token"]), timeout=0.05)


async def test_a_lost_refresh_response_is_recovered_within_the_grace_period(http, world, clock):
    body = await tokens(http, world)
    world.inject_identity("lost_response")
    lost = await refresh(http, body["refresh_token"])
    assert lost.status_code == 502
    assert lost.headers["content-type"].startswith("text/html")
    # The exchange happened: the token rotated, so only the grace period saves the client.
    assert body["refresh_token"] in world.rotated
    retried = await refresh(http, body["refresh_token"])
    assert retried.status_code == 200
    world.inject_identity("lost_response")
    await refresh(http, retried.json()["refresh_token"])
    clock.now += timedelta(seconds=61)
    dead = await refresh(http, retried.json()["refresh_token"])
    assert (dead.status_code, dead.json()["error"]) == (400, "invalid_grant")


# ---------------------------------------------------------------- books


async def test_paging_envelope_and_the_page_size_cap(http, world):
    token = token_for(world)
    page = (await get(http, token, "vouchers", **{"$page": 2, "$pagesize": 100})).json()
    meta = page["Meta"]
    assert (meta["CurrentPage"], meta["PageSize"]) == (2, 100)
    assert meta["TotalNumberOfPages"] == -(-meta["TotalNumberOfResults"] // 100)
    assert len(page["Data"]) == 100
    capped = (await get(http, token, "vouchers", **{"$pagesize": 5000})).json()
    assert capped["Meta"]["PageSize"] == MAX_PAGE_SIZE
    bad = await get(http, token, "vouchers", **{"$page": "two"})
    assert (bad.status_code, bad.json()["ErrorCode"]) == (400, 6000)


async def test_vouchers_balance_and_balances_follow_them(http, world):
    token = token_for(world)
    vouchers = (await get(http, token, "vouchers", **{"$pagesize": 1000})).json()["Data"]
    for voucher in vouchers:
        assert sum(amount(row) for row in voucher["Rows"]) == 0
    balances = (await get(http, token, "accountbalances/2026-10-31")).json()["Data"]
    assert round(sum(item["Balance"] for item in balances), 2) == 0
    bad = await get(http, token, "accountbalances/31-10-2026")
    assert (bad.status_code, bad.json()["ErrorCode"]) == (400, 6001)


async def test_income_accounts_close_at_year_end_and_balance_accounts_carry_over(http, world):
    token = token_for(world)
    vouchers = await every(http, token, "vouchers", **{"$pagesize": 1000})
    opening = {
        item["Number"]: Decimal(str(item["Balance"]))
        for item in (await get(http, token, "fiscalyears/openingbalances")).json()["Data"]
    }
    on = date(2026, 1, 31)
    balances = {
        item["AccountNumber"]: Decimal(str(item["Balance"]))
        for item in (await get(http, token, f"accountbalances/{on.isoformat()}")).json()["Data"]
    }

    def moved(account, since):
        return sum(
            (
                amount(row)
                for voucher in vouchers
                if since <= date.fromisoformat(voucher["VoucherDate"][:10]) <= on
                for row in voucher["Rows"]
                if row["AccountNumber"] == account
            ),
            Decimal(0),
        )

    assert moved(3000, date(2025, 1, 1)) != moved(3000, date(2026, 1, 1))
    assert balances[3000] == moved(3000, date(2026, 1, 1))
    assert balances[1920] == opening[1920] + moved(1920, date(2025, 1, 1))
    # The locked year was closed into equity, so the books still sum to zero.
    assert 8800 not in balances
    assert balances[2050] == opening[2050] + moved(2050, date(2025, 1, 1))
    assert sum(balances.values()) == 0


async def test_opening_balances_are_the_first_years_and_balance(http, world):
    token = token_for(world)
    page = (await get(http, token, "fiscalyears/openingbalances")).json()
    assert page["Meta"]["TotalNumberOfResults"] == len(page["Data"]) >= 4
    assert round(sum(item["Balance"] for item in page["Data"]), 2) == 0
    first_day = (await get(http, token, "accountbalances/2024-12-31")).json()["Data"]
    assert first_day == []
    assert {item["Number"] for item in page["Data"]} <= {
        item["AccountNumber"] for item in (await get(http, token, "accountbalances/2025-01-01")).json()["Data"]
    }
    assert all(item["Number"] < 3000 for item in page["Data"])


async def test_vat_codes_are_the_countrys_and_rows_and_accounts_point_at_them(http, world):
    norwegian = (await get(http, token_for(world), "vatcodes")).json()
    swedish = (await get(http, token_for(world, FJALL), "vatcodes")).json()
    assert isinstance(norwegian, list)
    assert {code["Code"]: code["VatRate"] for code in norwegian}["31"] == 0.15
    assert {"MP1", "IP1"} <= {code["Code"] for code in swedish}
    ids = {code["Id"] for code in norwegian}
    vouchers = await every(http, token_for(world), "vouchers", **{"$pagesize": 1000})
    coded = [row for voucher in vouchers for row in voucher["Rows"] if "VatCodeId" in row]
    assert coded
    assert {row["VatCodeId"] for row in coded} <= ids
    assert all(re.fullmatch(r"\d+ \(\d+%\)", row["VatCodeAndPercent"]) for row in coded)
    accounts = (await get(http, token_for(world), "accounts")).json()["Data"]
    assert all(account["ModifiedUtc"].endswith("Z") for account in accounts)
    assert {account["VatCodeId"] for account in accounts if "VatCodeId" in account} <= ids
    assert any(account["Number"] == "3000" and "VatCodeId" in account for account in accounts)
    assert (await get(http, token_for(world), "vatcodes", vatRateDate="someday")).json()["ErrorCode"] == 6001


async def test_vouchers_carry_sources_attachments_dimensions_and_shared_modified_times(http, world):
    vouchers = await every(http, token_for(world), "vouchers", **{"$pagesize": 1000})
    assert all(voucher["SourceId"] and "AttachmentIds" in voucher["Attachments"] for voucher in vouchers)
    assert any(voucher["Attachments"]["AttachmentIds"] for voucher in vouchers)
    rows = [row for voucher in vouchers for row in voucher["Rows"]]
    assert any("CostCenterItemId1" in row for row in rows)
    assert any("ProjectId" in row for row in rows)
    ties = Counter(voucher["ModifiedUtc"] for voucher in vouchers)
    assert max(ties.values()) > 1
    assert all(stamp.endswith("T12:00:00Z") for stamp in ties if not stamp.startswith("2026-01-15"))


# ---------------------------------------------------------------- OData on the lists


async def test_filter_orderby_and_select_happen_before_paging(http, world):
    token = token_for(world)
    params = {
        "$filter": "VoucherDate ge 2026-03-01 and VoucherDate lt '2026-04-01T00:00:00Z'",
        "$orderby": "ModifiedUtc desc, NumberAndNumberSeries",
        "$select": "Id,ModifiedUtc,NumberAndNumberSeries",
        "$pagesize": 10,
    }
    first = (await get(http, token, "vouchers", **params)).json()
    assert first["Meta"]["TotalNumberOfResults"] == 24
    assert first["Meta"]["TotalNumberOfPages"] == 3
    assert set(first["Data"][0]) == {"Id", "ModifiedUtc", "NumberAndNumberSeries"}
    everything = await every(http, token, "vouchers", **params)
    assert len({item["Id"] for item in everything}) == 24
    stamps = [item["ModifiedUtc"] for item in everything]
    assert stamps == sorted(stamps, reverse=True)
    assert all("2026-03-01" <= stamp < "2026-04-01" for stamp in stamps)
    # Ties on ModifiedUtc are broken by the second key.
    for before, after in itertools.pairwise(everything):
        if before["ModifiedUtc"] == after["ModifiedUtc"]:
            assert before["NumberAndNumberSeries"] <= after["NumberAndNumberSeries"]


async def test_every_list_takes_odata(http, world):
    token = token_for(world)
    years = (await get(http, token, "fiscalyears", **{"$filter": "IsLockedForAccounting eq false"})).json()
    assert [year["StartDate"] for year in years["Data"]] == ["2026-01-01T00:00:00"]
    accounts = (await get(http, token, "accounts", **{"$filter": "Number eq '3000'", "$select": "Name"})).json()
    assert accounts["Data"] == [{"Name": "Salgsinntekt, avgiftspliktig"}] * 2
    balances = (
        await get(
            http, token, "accountbalances/2026-10-31", **{"$filter": "AccountNumber ge 3000", "$orderby": "Balance"}
        )
    ).json()["Data"]
    assert balances[0]["AccountNumber"] == 3000
    opening = (await get(http, token, "fiscalyears/openingbalances", **{"$orderby": "Balance desc"})).json()["Data"]
    assert opening[0]["Number"] == 1920
    users = (await get(http, token, "users", **{"$filter": "IsCurrentUser eq true"})).json()["Data"]
    assert [user["Email"] for user in users] == ["ola@nordlysbakeri.no"]


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"$filter": "Modified ge 2026-01-01"}, "unknown field 'Modified'"),
        ({"$filter": "ModifiedUtc ge 'soon'"}, "ModifiedUtc is a date-time"),
        ({"$filter": "VoucherText eq 'Husleie"}, "unterminated string"),
        ({"$orderby": "ModifiedUtc upward"}, "expected asc or desc"),
        ({"$select": "Id,Nope"}, "unknown field 'Nope'"),
    ],
)
async def test_bad_query_options_are_6000_with_a_reason(http, world, params, message):
    response = await get(http, token_for(world), "vouchers", **params)
    assert (response.status_code, response.json()["ErrorCode"]) == (400, 6000)
    assert message in response.json()["DeveloperErrorMessage"]


# ---------------------------------------------------------------- helpers for the sync engine's tests


async def test_after_page_lets_a_test_book_a_voucher_while_the_client_pages(http, world, clock):
    token = token_for(world)
    company = world.company_id_by_org(NORDLYS)
    seen = []

    def book(path, page):
        seen.append((path, page))
        if page == 1:
            world.book_voucher(company, when=date(2026, 11, 20))

    world.after_page = book
    params = {"$filter": "ModifiedUtc ge 2026-10-01", "$orderby": "ModifiedUtc", "$pagesize": 20}
    first = (await get(http, token, "vouchers", **params)).json()
    second = (await get(http, token, "vouchers", **params, **{"$page": 2})).json()
    assert seen == [("/v2/vouchers", 1), ("/v2/vouchers", 2)]
    assert second["Meta"]["TotalNumberOfResults"] == first["Meta"]["TotalNumberOfResults"] + 1
    assert second["Data"][-1]["ModifiedUtc"] == "2026-11-24T12:00:00Z"


async def test_book_voucher_lands_in_its_fiscal_year_balanced_and_modified_now(http, world, clock):
    token = token_for(world)
    company = world.company_id_by_org(NORDLYS)
    booked = world.book_voucher(company, when=date(2026, 2, 3), amount=Decimal("999.50"))
    assert sum(amount(row) for row in booked["Rows"]) == 0
    assert booked["ModifiedUtc"] == "2026-11-24T12:00:00Z"
    year = next(item for item in world.companies[company].fiscal_years if item["StartDate"].startswith("2026"))
    in_year = await every(http, token, f"vouchers/{year['Id']}", **{"$filter": "ModifiedUtc ge 2026-11-24T12:00:00"})
    assert [item["Id"] for item in in_year] == [booked["Id"]]
    with pytest.raises(ValueError, match="no fiscal year"):
        world.book_voucher(company, when=date(2030, 1, 1))


async def test_touch_voucher_changes_the_text_and_moves_it_last_by_modified(http, world, clock):
    token = token_for(world)
    company = world.company_id_by_org(NORDLYS)
    oldest = (await get(http, token, "vouchers", **{"$orderby": "ModifiedUtc", "$pagesize": 1})).json()["Data"][0]
    clock.now += timedelta(seconds=1.5)
    touched = world.touch_voucher(company, oldest["Id"])
    assert touched["VoucherText"] == f"{oldest['VoucherText']} (endret 2026-11-24 12:00:01)"
    assert touched["ModifiedUtc"] == "2026-11-24T12:00:01.5Z"
    clock.now += timedelta(seconds=1)
    again = world.touch_voucher(company, oldest["Id"])
    assert again["VoucherText"] == f"{oldest['VoucherText']} (endret 2026-11-24 12:00:02)"
    newest = (await get(http, token, "vouchers", **{"$orderby": "ModifiedUtc desc", "$pagesize": 1})).json()
    assert newest["Data"][0]["Id"] == oldest["Id"]


# ---------------------------------------------------------------- the bulk company


@pytest.fixture
def bulk(world):
    company = add_bulk_company(world, org_number="912345670", name="Massedata AS", vouchers=3000, seed=11)
    return company


async def test_bulk_vouchers_are_ordered_by_modified_with_ties_and_span_the_years(http, world, bulk):
    token = world.issue_tokens(bulk.id, client_id="bot")["access_token"]
    everything = await every(http, token, "vouchers", **{"$pagesize": 1000})
    assert len(everything) == 3000
    stamps = [item["ModifiedUtc"] for item in everything]
    assert stamps == sorted(stamps, key=odata.parse_datetime)
    assert len(set(stamps)) < len(stamps)
    years = Counter(item["VoucherDate"][:4] for item in everything)
    assert set(years) == {"2024", "2025", "2026"}
    assert all(sum(amount(row) for row in item["Rows"]) == 0 and len(item["Rows"]) == 3 for item in everything)
    assert len({item["Id"] for item in everything}) == 3000
    twin = add_bulk_company(world, org_number="923456783", name="Tvilling AS", vouchers=10, seed=11)
    assert twin.bulk.ident(0) != bulk.bulk.ident(0)


async def test_bulk_paging_with_ge_and_gt_filters(http, world, bulk):
    token = world.issue_tokens(bulk.id, client_id="bot")["access_token"]
    pivot = bulk.bulk.voucher(1500)["ModifiedUtc"]  # shared with voucher 1501
    common = {"$orderby": "ModifiedUtc", "$pagesize": 100}
    ge = await every(http, token, "vouchers", **common, **{"$filter": f"ModifiedUtc ge {pivot}"})
    gt = await every(http, token, "vouchers", **common, **{"$filter": f"ModifiedUtc gt {pivot}"})
    assert [item["NumberAndNumberSeries"] for item in ge[:3]] == ["A 1501", "A 1502", "A 1503"]
    assert len(ge) == 1500
    assert len(gt) == 1498
    recent = await every(
        http, token, "vouchers", **common, **{"$filter": f"ModifiedUtc ge {pivot} and VoucherDate ge 2026-01-01"}
    )
    assert recent
    assert all(item["VoucherDate"] >= "2026" for item in recent)
    assert len(recent) == sum(item["VoucherDate"] >= "2026" for item in ge)


async def test_modify_bulk_moves_the_changed_vouchers_after_the_rest(http, world, bulk, clock):
    token = world.issue_tokens(bulk.id, client_id="bot")["access_token"]
    changed = modify_bulk(world, bulk.id, 25)
    assert len(set(changed)) == 25
    everything = await every(http, token, "vouchers", **{"$orderby": "ModifiedUtc", "$pagesize": 1000})
    assert len(everything) == 3000
    assert [item["Id"] for item in everything[-25:]] == sorted(changed)
    assert all(item["ModifiedUtc"] == "2026-11-24T12:00:00Z" for item in everything[-25:])
    assert all(item["VoucherText"].endswith("(endret 2026-11-24 12:00:00)") for item in everything[-25:])
    since = await every(http, token, "vouchers", **{"$filter": "ModifiedUtc ge 2026-11-01", "$orderby": "ModifiedUtc"})
    assert sorted(item["Id"] for item in since) == sorted(changed)
    # Without $orderby a changed voucher keeps its place.
    plain = await every(http, token, "vouchers", **{"$pagesize": 1000})
    assert [item["NumberAndNumberSeries"] for item in plain] == [f"A {n}" for n in range(1, 3001)]


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"$orderby": "ModifiedUtc"},
        {"$filter": "ModifiedUtc ge 2024-01-01T06:10:00Z", "$orderby": "ModifiedUtc"},
        {"$filter": "ModifiedUtc gt 2024-01-01T06:10:00Z and VoucherDate ge 2025-01-01", "$orderby": "ModifiedUtc, Id"},
        {"$filter": "ModifiedUtc ge 2026-11-24T12:00:00Z", "$orderby": "ModifiedUtc"},
        {"$filter": "VoucherDate le 2025-03-01 and ModifiedUtc lt 2024-01-01T06:20:00Z"},
        {"$filter": "Id eq {voucher100}"},
        {"$orderby": "VoucherDate, ModifiedUtc"},
        {"$filter": "ModifiedUtc ge 2024-01-01T06:10:00Z or VoucherText eq 'x'", "$orderby": "ModifiedUtc desc"},
    ],
)
@pytest.mark.parametrize("scoped", [False, True])
def test_bulk_pages_equal_a_plain_filter_and_sort_of_every_voucher(world, bulk, clock, options, scoped):
    modify_bulk(world, bulk.id, 40)
    clock.now += timedelta(minutes=5)
    world.book_voucher(bulk.id, when=date(2025, 6, 1))
    world.touch_voucher(bulk.id, bulk.bulk.ident(7))
    options = {key: value.replace("{voucher100}", bulk.bulk.ident(100)) for key, value in options.items()}
    query = odata.parse_query(options, FIELDS["VoucherApi"])
    scope = []
    if scoped:
        low, high = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 12, 31, tzinfo=UTC)
        scope = [
            odata.Comparison("VoucherDate", "ge", low, "datetime"),
            odata.Comparison("VoucherDate", "le", high, "datetime"),
        ]
    expr = odata.Conjunction((*([query.filter] if query.filter else []), *scope)) if scope else query.filter
    expected = odata.apply(odata.Query(expr, query.orderby), [bulk.bulk.voucher(i) for i in range(bulk.bulk.size())])
    for start, size in [(0, 1000), (0, 7), (990, 25), (2950, 100), (len(expected) - 3, 10), (5000, 10)]:
        start = max(start, 0)
        data, total = bulk.bulk.page(query, scope, start, size)
        assert total == len(expected)
        assert [item["Id"] for item in data] == [item["Id"] for item in expected[start : start + size]]


def test_bulk_balances_follow_the_vouchers_and_close_income_at_year_end(world, bulk):
    world.book_voucher(bulk.id, when=date(2026, 3, 1), amount=500)
    on = date(2026, 3, 1)
    vouchers = [bulk.bulk.voucher(i) for i in range(bulk.bulk.size())]
    expected = {number: Decimal(0) for number in bulk.opening_balances}
    for number, value in bulk.opening_balances.items():
        expected[number] = value
    for voucher in vouchers:
        day = voucher["VoucherDate"][:10]
        for row in voucher["Rows"]:
            number = row["AccountNumber"]
            if day <= on.isoformat() and (number < 3000 or day >= "2026-01-01"):
                expected[number] = expected.get(number, Decimal(0)) + amount(row)
    got = world.balances(bulk, on)
    assert {k: v for k, v in got.items() if v} == {k: v for k, v in expected.items() if v}


async def test_a_million_voucher_company_pages_fast_and_holds_no_vouchers(http, world):
    company = add_bulk_company(world, org_number="998877665", name="Stor AS", vouchers=1_000_000)
    changed = modify_bulk(world, company.id, 500)
    token = world.issue_tokens(company.id, client_id="bot")["access_token"]
    assert company.vouchers == []
    assert len(company.bulk.changed) == 500
    params = {
        "$filter": "ModifiedUtc gt 2024-01-03T00:00:00Z and VoucherDate ge 2025-01-01",
        "$orderby": "ModifiedUtc",
        "$pagesize": 1000,
    }
    await get(http, token, "vouchers", **params, **{"$page": 1})
    started = time.perf_counter()
    page = (await get(http, token, "vouchers", **params, **{"$page": 400})).json()
    elapsed = time.perf_counter() - started
    assert len(page["Data"]) == 1000
    assert elapsed < 0.25, f"a page of 1000 took {elapsed * 1000:.0f} ms"
    last = (await get(http, token, "vouchers", **params, **{"$page": page["Meta"]["TotalNumberOfPages"]})).json()
    assert last["Data"][-1]["ModifiedUtc"] == "2026-11-24T12:00:00Z"
    assert last["Data"][-1]["Id"] in changed


# ---------------------------------------------------------------- the Swagger


@pytest.mark.parametrize(
    ("path", "definition"),
    [
        ("companysettings", "CompanySettingsApi"),
        ("fiscalyears", "PaginatedResponse[FiscalYearApi]"),
        ("fiscalyears/openingbalances", "PaginatedResponse[OpeningBalancesApi]"),
        ("accounts", "PaginatedResponse[AccountApi]"),
        ("vouchers", "PaginatedResponse[VoucherApi]"),
        ("accountbalances/2026-06-30", "PaginatedResponse[AccountBalanceAPI]"),
        ("vatcodes", "[VatCode]"),
        ("users", "PaginatedResponse[UserApi]"),
    ],
)
@pytest.mark.parametrize("org", [NORDLYS, FJALL])
async def test_responses_validate_against_the_published_swagger(http, world, swagger, path, definition, org):
    from jsonschema import Draft4Validator

    token = token_for(world, org)
    response = await get(http, token, path, **({"$pagesize": 1000} if path == "vouchers" else {}))
    if definition.startswith("["):
        schema = {"definitions": swagger["definitions"], "type": "array", "items": {"$ref": "#/definitions/VatCode"}}
    else:
        schema = {"definitions": swagger["definitions"], "$ref": f"#/definitions/{definition}"}
    errors = list(Draft4Validator(schema).iter_errors(response.json()))
    assert errors == [], [error.message for error in errors[:5]]
    # The check is real: a wrong type in the same body fails it.
    broken = response.json()
    if isinstance(broken, list):
        broken[0]["VatRate"] = "high"
    elif "Data" in broken:
        broken["Meta"]["CurrentPage"] = "one"
    else:
        broken["Name"] = 42
    assert list(Draft4Validator(schema).iter_errors(broken))


async def test_bulk_and_booked_vouchers_validate_against_the_swagger(http, world, swagger, bulk):
    from jsonschema import Draft4Validator

    world.book_voucher(bulk.id)
    world.book_voucher(world.company_id_by_org(NORDLYS))
    schema = {"definitions": swagger["definitions"], "$ref": "#/definitions/PaginatedResponse[VoucherApi]"}
    for company in (bulk.id, world.company_id_by_org(NORDLYS)):
        token = world.issue_tokens(company, client_id="bot")["access_token"]
        body = (await get(http, token, "vouchers", **{"$orderby": "ModifiedUtc desc", "$pagesize": 5})).json()
        assert list(Draft4Validator(schema).iter_errors(body)) == []
