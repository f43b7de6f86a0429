"""The Business NXT simulator: client-credentials tokens, companies visible only once activated, cursor paging
over filtered tables, NXT's 401 HTML page and errors inside HTTP 200, and each failure switch."""

from __future__ import annotations

import asyncio
import base64
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.simulators.business_nxt import READONLY_SCOPE, create_business_nxt_app, seed_business_nxt

CLIENT, SECRET = "isv_onboarding_bot", "nxt-demo-secret"
SJOMAT, EIENDOM, HOLDING = 5280011, 5280012, 5280013
TABLE = (
    "query($no: Int!, $first: Int, $after: String, $filter: FilterExpression_Voucher) { useCompany(no: $no) {"
    " voucher(first: $first, after: $after, filter: $filter, orderBy: [{changedTimestamp: ASC}]) {"
    " totalCount pageInfo { hasNextPage endCursor } items { voucherNo lineNo changedTimestamp } } } }"
)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def world(clock):
    return seed_business_nxt(now=clock, client_id=CLIENT)


@pytest.fixture
async def client(world):
    transport = httpx.ASGITransport(app=create_business_nxt_app(world))
    async with httpx.AsyncClient(transport=transport, base_url="http://nxt.test") as http:
        yield http


async def token(client, **form) -> httpx.Response:
    body = {"grant_type": "client_credentials", "scope": READONLY_SCOPE, **form}
    return await client.post("/connect/token", data=body, auth=(CLIENT, SECRET))


async def ask(client, world, query: str, variables=None, *, bearer: str | None = None) -> httpx.Response:
    bearer = bearer if bearer is not None else world.issue_token(CLIENT)
    headers = {"Authorization": f"Bearer {bearer}"}
    return await client.post("/api/graphql-service", json={"query": query, "variables": variables}, headers=headers)


# ------------------------------------------------------------------------------------------- token endpoint


async def test_client_credentials_by_basic_auth_or_in_the_body(client):
    by_header = await token(client)
    assert by_header.status_code == 200
    assert by_header.json()["token_type"] == "Bearer"
    assert by_header.json()["expires_in"] == 3600
    form = {"grant_type": "client_credentials", "scope": READONLY_SCOPE, "client_id": CLIENT, "client_secret": SECRET}
    assert (await client.post("/connect/token", data=form)).status_code == 200


@pytest.mark.parametrize(
    ("form", "auth", "status", "error"),
    [
        ({}, (CLIENT, "wrong"), 401, "invalid_client"),
        ({}, ("isv_someone_else", SECRET), 401, "invalid_client"),
        ({"scope": "business-graphql-api:access-group-based"}, (CLIENT, SECRET), 400, "invalid_scope"),
        ({"scope": ""}, (CLIENT, SECRET), 400, "invalid_scope"),
        ({"grant_type": "authorization_code"}, (CLIENT, SECRET), 400, "unsupported_grant_type"),
    ],
)
async def test_token_refusals(client, form, auth, status, error):
    body = {"grant_type": "client_credentials", "scope": READONLY_SCOPE, **form}
    response = await client.post("/connect/token", data=body, auth=auth)
    assert (response.status_code, response.json()) == (status, {"error": error})


async def test_a_basic_header_that_is_not_base64_is_an_invalid_client(client):
    headers = {"Authorization": "Basic " + base64.b64encode(b"\xff\xfe").decode()}
    response = await client.post("/connect/token", data={"grant_type": "client_credentials"}, headers=headers)
    assert response.status_code == 401


# ------------------------------------------------------------------------------------------- discovery


async def test_only_companies_activated_for_the_client_are_listed(client, world):
    query = (
        "{ availableCustomers { totalCount items { name vismaNetCustomerId } }"
        " availableCompanies(customerNo: 1234567) { totalCount items { name vismaNetCompanyId vismaNetCustomerId } } }"
    )
    data = (await ask(client, world, query)).json()["data"]
    assert data["availableCustomers"]["items"] == [{"name": "Fjordkraft Regnskap Kunde", "vismaNetCustomerId": 1234567}]
    assert {item["vismaNetCompanyId"] for item in data["availableCompanies"]["items"]} == {SJOMAT, EIENDOM}
    world.activate(CLIENT, 3)  # the system administrator adds the access row for Havbris Holding
    data = (await ask(client, world, query)).json()["data"]
    assert data["availableCompanies"]["totalCount"] == 3


async def test_another_client_sees_nothing(client, world):
    world.register_client("isv_other", "x")
    response = await ask(client, world, "{ availableCompanies { totalCount } }", bearer=world.issue_token("isv_other"))
    assert response.json() == {"data": {"availableCompanies": {"totalCount": 0}}}


async def test_a_company_not_activated_is_null_with_an_access_error_inside_200(client, world):
    response = await ask(client, world, TABLE, {"no": HOLDING, "first": 2})
    assert response.status_code == 200
    body = response.json()
    assert body["data"] == {"useCompany": None}
    [error] = body["errors"]
    assert error["extensions"]["status_name"] == "AccessDenied"
    assert error["path"] == ["useCompany"]
    assert CLIENT in error["message"]


async def test_a_query_the_schema_does_not_have_is_an_error_without_status_name(client, world):
    body = (await ask(client, world, "{ useCompany(no: 5280011) { payroll { items { x } } } }")).json()
    assert "data" not in body
    assert "status_name" not in body["errors"][0].get("extensions", {})


# ------------------------------------------------------------------------------------------- tables


async def test_cursor_paging_reads_every_row_once_in_order(client, world):
    seen, after = [], None
    while True:
        body = (await ask(client, world, TABLE, {"no": SJOMAT, "first": 50, "after": after})).json()
        table = body["data"]["useCompany"]["voucher"]
        seen += [(item["voucherNo"], item["lineNo"]) for item in table["items"]]
        if not table["pageInfo"]["hasNextPage"]:
            break
        after = table["pageInfo"]["endCursor"]
    company = world.companies[SJOMAT]
    assert len(seen) == len(set(seen)) == table["totalCount"] == len(company.vouchers)


async def test_the_filter_on_the_change_timestamp_reads_only_changes(client, world, clock):
    world.touch_voucher_line(SJOMAT, 10, 2)
    number = world.book_voucher(SJOMAT, day=clock.now.date(), debit=6800, credit=1920, amount=300.0, text="Papir")
    since = {"changedTimestamp": {"_gte": (clock.now - timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S.000")}}
    body = (await ask(client, world, TABLE, {"no": SJOMAT, "filter": since})).json()
    items = body["data"]["useCompany"]["voucher"]["items"]
    assert [(item["voucherNo"], item["lineNo"]) for item in items] == [(10, 2), (number, 1)]
    assert items[0]["changedTimestamp"] == "2026-11-24T13:00:00.000"  # Norwegian local time, no zone


async def test_a_row_changed_while_paging_moves_to_the_end_and_nothing_shifts(client, world):
    first = (await ask(client, world, TABLE, {"no": SJOMAT, "first": 10})).json()["data"]["useCompany"]["voucher"]
    world.touch_voucher_line(SJOMAT, first["items"][0]["voucherNo"], first["items"][0]["lineNo"])
    after = first["pageInfo"]["endCursor"]
    rest = []
    while after:
        table = (await ask(client, world, TABLE, {"no": SJOMAT, "first": 100, "after": after})).json()
        table = table["data"]["useCompany"]["voucher"]
        rest += [(item["voucherNo"], item["lineNo"]) for item in table["items"]]
        after = table["pageInfo"]["endCursor"] if table["pageInfo"]["hasNextPage"] else None
    read = {(item["voucherNo"], item["lineNo"]) for item in first["items"]} | set(rest)
    assert len(read) == len(world.companies[SJOMAT].vouchers)
    assert rest[-1] == (first["items"][0]["voucherNo"], first["items"][0]["lineNo"])


async def test_in_filter_and_a_bad_cursor(client, world):
    query = "query($no: Int!, $after: String) { useCompany(no: $no) { voucher(after: $after, filter: {voucherNo: {_in: [3, 4]}}) { items { voucherNo } } } }"  # noqa: E501
    body = (await ask(client, world, query, {"no": SJOMAT})).json()
    assert {item["voucherNo"] for item in body["data"]["useCompany"]["voucher"]["items"]} == {3, 4}
    body = (await ask(client, world, query, {"no": SJOMAT, "after": "not-a-cursor"})).json()
    assert body["errors"][0]["extensions"]["status_name"] == "BadRequest"


async def test_books_hold_payroll_accounts_for_a07_and_balance(client, world):
    company = world.companies[SJOMAT]
    accounts = {row["accountNo"] for row in company.accounts}
    assert {2600, 2770, 5000, 5400} <= accounts
    payroll = [line for line in company.vouchers if line["debitAccountNo"] == 5400]
    assert len(payroll) == 22  # one a month, January 2025 to October 2026
    assert seed_business_nxt().companies[SJOMAT].vouchers == company.vouchers  # deterministic


# ------------------------------------------------------------------------------------------- auth and switches


async def test_missing_unknown_and_expired_tokens_get_nginx_html(client, world, clock):
    expired = world.issue_token(CLIENT)
    clock.now += timedelta(hours=1, seconds=1)
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": f"Bearer {expired}"}):
        response = await client.post(
            "/api/graphql-service", json={"query": "{ availableCustomers { totalCount } }"}, headers=headers
        )
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("text/html")
        assert "<title>401 Authorization Required</title>" in response.text
        assert "nginx" in response.text


async def test_switches(client, world):
    query = "{ availableCustomers { totalCount } }"
    assert (await client.post("/_sim/switches", json={"token_expired": True})).status_code == 200
    assert (await ask(client, world, query)).status_code == 401
    world.reset()
    world.switch(unavailable=True)
    assert (await ask(client, world, query)).status_code == 503
    world.reset()
    world.switch(identity_unavailable=True)
    assert (await token(client)).status_code == 503
    world.reset()
    world.switch(error_in_200="Timeout")
    response = await ask(client, world, query)
    assert response.status_code == 200
    assert response.json()["errors"][0]["extensions"]["status_name"] == "Timeout"
    world.reset()
    world.switch(not_activated=[1])
    companies = (await ask(client, world, "{ availableCompanies { items { vismaNetCompanyId } } }")).json()
    assert companies["data"]["availableCompanies"]["items"] == [{"vismaNetCompanyId": EIENDOM}]
    assert (await ask(client, world, TABLE, {"no": SJOMAT})).json()["data"] == {"useCompany": None}
    assert (await client.post("/_sim/switches", json={"no_such": 1})).status_code == 400
    assert (await client.post("/_sim/reset")).json() == {"ok": True}
    assert (await client.get("/_sim/switches")).json()["not_activated"] == []


async def test_a_hanging_server_is_cut_off_by_the_client_timeout(client, world):
    world.switch(hang_seconds=5.0)
    with pytest.raises(asyncio.TimeoutError):
        await asyncio.wait_for(ask(client, world, "{ availableCustomers { totalCount } }"), timeout=0.05)


async def test_requests_are_recorded(client, world):
    await token(client)
    await ask(client, world, TABLE, {"no": SJOMAT, "first": 1})
    assert [(r.path, r.status, r.fields, r.company) for r in world.requests] == [
        ("/connect/token", 200, [], None),
        ("/api/graphql-service", 200, ["useCompany"], SJOMAT),
    ]
    assert world.requests[1].client_id == CLIENT
