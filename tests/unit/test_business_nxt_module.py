"""The Business NXT module against the simulator: service token, activated companies, every book, incremental
voucher reads that keep vouchers whole, and what NXT's answers mean (401 HTML, errors inside HTTP 200)."""

from __future__ import annotations

import asyncio
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.routing import Mount

from bot.domain.books import COLUMNS, Book
from bot.domain.problems import Fix, ProblemKind
from bot.simulators.business_nxt import create_business_nxt_app, seed_business_nxt
from bot.visma.base import (
    IdentityUnavailable,
    OurConfiguration,
    Profile,
    RateLimited,
    Refused,
    RunNotes,
    Target,
    Transient,
    Unauthorized,
    VismaError,
)
from bot.visma.business_nxt import BusinessNxt, NxtCompany, NxtCustomer

CLIENT, SECRET = "isv_onboarding_bot", "nxt-demo-secret"
SJOMAT, EIENDOM, HOLDING = 5280011, 5280012, 5280013
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> datetime:
        return self.now


class SimApi:
    """The engine's `Api` in miniature: a service token, each POST parsed by the module (no retries)."""

    def __init__(self, module: BusinessNxt, http: httpx.AsyncClient) -> None:
        self.module, self.http = module, http
        self.token: str | None = None
        self.posts: list[dict[str, Any]] = []

    async def get(self, path: str, params: Any = None) -> Any:
        raise AssertionError("Business NXT is read with POSTs only")

    async def post(self, path: str, body: Any) -> Any:
        if self.token is None:
            self.token = (await self.module.service_token(tenant=None, now=NOW)).access_token
        self.posts.append(dict(body))
        headers = {"Authorization": f"Bearer {self.token}"}
        return self.module.parse(await self.http.post(self.module.url(path), json=body, headers=headers))


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def world(clock):
    return seed_business_nxt(now=clock, client_id=CLIENT)


@pytest.fixture
async def http(world):
    # Mounted under /nxt, as the lead engineer will mount it: the routes are relative to the mount point.
    app = Starlette(routes=[Mount("/nxt", app=create_business_nxt_app(world))])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:
        yield client


def make(http: httpx.AsyncClient, *, secret: str = SECRET, page_size: int = 500) -> BusinessNxt:
    return BusinessNxt(
        http,
        token_url="http://nxt.test/nxt/connect/token",
        api_url="http://nxt.test/nxt/api",
        client_id=CLIENT,
        client_secret=secret,
        page_size=page_size,
    )


@pytest.fixture
def module(http):
    return make(http)


@pytest.fixture
def api(module, http):
    return SimApi(module, http)


def target(company: int = SJOMAT) -> Target:
    return Target(1, "Havbris Sjømat AS", date(2025, 1, 1), (), NOW.date(), external_id=str(company))


async def read(module, api, book: Book, *, cursor=None, company: int = SJOMAT, notes: RunNotes | None = None):
    pages = []
    profile = Profile("Havbris Sjømat AS", "988077917")
    async for page in module.read(
        book, api, target=target(company), profile=profile, cursor=cursor, notes=notes or RunNotes()
    ):
        pages.append(page)
    return pages


def rows(pages) -> list[tuple[Any, ...]]:
    return [row for page in pages for row in page.rows]


# ------------------------------------------------------------------------------------------- access


async def test_service_token(module):
    tokens = await module.service_token(tenant=None, now=NOW)
    assert tokens.refresh_token is None
    assert tokens.expires_at == NOW + timedelta(hours=1)
    assert tokens.scope == "business-graphql-service-api:access-group-based-readonly"
    assert "access_token" not in repr(tokens)


async def test_a_wrong_secret_is_our_configuration(http):
    with pytest.raises(OurConfiguration) as caught:
        await make(http, secret="wrong").service_token(tenant=None, now=NOW)
    assert caught.value.code == "invalid_client"


async def test_identity_outages_are_identity_unavailable(module, world):
    world.switch(identity_unavailable=True)
    with pytest.raises(IdentityUnavailable):
        await module.service_token(tenant=None, now=NOW)

    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    async with httpx.AsyncClient(transport=httpx.MockTransport(refuse)) as down:
        with pytest.raises(IdentityUnavailable):
            await make(down).service_token(tenant=None, now=NOW)


async def test_consent_paths_are_not_used(module):
    with pytest.raises(OurConfiguration):
        module.authorize_url(state="s", challenge="c", redirect_uri="http://bot/cb")
    with pytest.raises(OurConfiguration):
        await module.exchange_code(code="c", verifier="v", redirect_uri="http://bot/cb", now=NOW)
    with pytest.raises(OurConfiguration):
        await module.refresh(refresh_token="r", now=NOW)


async def test_rate_limit_is_one_generous_window_per_client(module):
    limit = module.rate_limit("graphql-service", scope="5280011")
    assert limit == module.rate_limit("graphql-service", scope="5280012")
    assert limit.count >= 600
    assert module.pace(httpx.Response(200)) is None


# ------------------------------------------------------------------------------------------- discovery


async def test_available_companies_are_those_activated_for_our_client(module, api, world):
    assert await module.available_customers(api) == [NxtCustomer(1234567, "Fjordkraft Regnskap Kunde")]
    companies = await module.available_companies(api, customer_ids=[1234567])
    assert companies == [
        NxtCompany("Havbris Eiendom AS", EIENDOM, 1234567),
        NxtCompany("Havbris Sjømat AS", SJOMAT, 1234567),
    ]
    world.activate(CLIENT, 3)  # the client's system administrator adds the Connect Application Access row
    assert len(await module.available_companies(api, customer_ids=[])) == 3
    assert await module.available_companies(api, customer_ids=[999]) == []


async def test_profile(module, api):
    profile = await module.profile(api, external_id=str(SJOMAT))
    assert profile == Profile("Havbris Sjømat AS", "988077917", country="NO", currency="NOK")
    assert await module.profile_for(api, EIENDOM) == Profile("Havbris Eiendom AS", "923609016", "NO", "NOK")
    with pytest.raises(OurConfiguration):
        await module.profile(api)  # NXT needs the company number: the token does not say


# ------------------------------------------------------------------------------------------- books


async def test_books_and_their_columns(module, api, world):
    assert module.books(Profile("A", None), target()) == (Book.VAT_CODES, Book.ACCOUNTS, Book.VOUCHERS)
    vat = rows(await read(module, api, Book.VAT_CODES))
    assert ("3", "3", "Utgående mva, høy sats", 0.25) in vat
    accounts = rows(await read(module, api, Book.ACCOUNTS))
    assert all(len(row) == len(COLUMNS[Book.ACCOUNTS]) for row in accounts)
    by_number = {row[1]: row for row in accounts}
    assert {2600, 2770, 5000, 5400} <= set(by_number)  # what the A07 reconciliation needs
    assert by_number[3000][4] == "3"
    assert by_number[3000][6].tzinfo is not None


async def test_vouchers_are_whole_balanced_and_in_column_order(module, api, world):
    pages = await read(module, api, Book.VOUCHERS)
    vouchers = rows(pages)
    assert len({row[0] for row in vouchers}) == len({line["voucherNo"] for line in world.companies[SJOMAT].vouchers})
    for row in vouchers:
        assert len(row) == len(COLUMNS[Book.VOUCHERS])
        debit = sum(Decimal(str(r["DebitAmount"])) for r in row[9])
        credit = sum(Decimal(str(r["CreditAmount"])) for r in row[9])
        assert debit == credit
        assert debit > 0
    payroll = next(row for row in vouchers if row[5].startswith("Lønn"))
    assert {r["AccountNumber"] for r in payroll[9]} == {5000, 1920, 2600, 5400, 2770, 5180, 2940}
    sale = next(row for row in vouchers if row[5].startswith("Faktura"))
    assert [r.get("VatCodeId") for r in sale[9] if r["AccountNumber"] == 3000] == ["3"]
    assert pages[-1].cursor == {"watermark": max(line["changedTimestamp"] for line in world.companies[SJOMAT].vouchers)}


async def test_vouchers_before_the_reconciliation_start_are_not_read(module, api):
    late = Target(1, "A", date(2026, 10, 1), (), NOW.date(), external_id=str(SJOMAT))
    pages = [
        page
        async for page in module.read(
            Book.VOUCHERS, api, target=late, profile=Profile("A", None), cursor=None, notes=RunNotes()
        )
    ]
    assert {row[1] >= date(2026, 10, 1) for row in rows(pages)} == {True}


async def test_a_second_run_reads_only_changes_and_keeps_the_voucher_whole(module, api, world, clock):
    first = await read(module, api, Book.VOUCHERS)
    watermark = first[-1].cursor["watermark"]
    last = {
        str(line["voucherNo"]) for line in world.companies[SJOMAT].vouchers if line["changedTimestamp"] == watermark
    }
    clock.now = NOW + timedelta(days=1)
    world.touch_voucher_line(SJOMAT, 10, 2)  # only the second line of voucher 10 changes
    new = world.book_voucher(SJOMAT, day=date(2026, 11, 25), debit=6800, credit=1920, amount=300.0, text="Papir")
    api.posts.clear()
    api.token = None  # a new run, a new service token
    second = await read(module, api, Book.VOUCHERS, cursor=first[-1].cursor)
    changed = {row[0]: row for row in rows(second)}
    assert set(changed) == {"10", str(new)} | last  # the last voucher of the first run is inside the overlap
    assert len(changed["10"][9]) == 4  # both lines, each a debit and a credit row
    assert "(corrected)" in changed["10"][9][2]["TransactionText"]
    assert changed["10"][6] == datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    assert len(api.posts) == 2  # the changed lines, then the whole vouchers
    since = api.posts[0]["variables"]["filter"]["_and"][0]["changedTimestamp"]["_gte"]
    assert datetime.fromisoformat(since) == datetime.fromisoformat(watermark) - timedelta(minutes=5)
    assert second[-1].cursor == {"watermark": "2026-11-25T13:00:00.000"}


async def test_a_run_resumes_from_its_cursor(http, world):
    module = make(http, page_size=40)
    api = SimApi(module, http)
    pages = await read(module, api, Book.VOUCHERS)
    assert len(pages) > 3
    middle = pages[1].cursor
    assert "after" in middle
    resumed = await read(module, api, Book.VOUCHERS, cursor=middle)
    assert {row[0] for row in rows(pages[2:])} <= {row[0] for row in rows(resumed)}
    assert resumed[-1].cursor == pages[-1].cursor


# ------------------------------------------------------------------------------------------- failures


async def test_an_expired_token_is_unauthorized_and_a_refused_service(module, api, world):
    world.switch(token_expired=True)
    with pytest.raises(Unauthorized) as caught:
        await module.profile(api, external_id=str(SJOMAT))
    problem = module.classify(caught.value, company="Havbris Sjømat AS")
    assert problem.kind is ProblemKind.NXT_SERVICE_REFUSED
    assert not problem.is_permission


async def test_a_company_not_activated_is_a_problem_for_the_clients_system_administrator(module, api):
    with pytest.raises(Refused) as caught:
        await read(module, api, Book.VOUCHERS, company=HOLDING)
    assert caught.value.code == "NXT AccessDenied"
    problem = module.classify(caught.value, company="Havbris Holding AS")
    assert problem.kind is ProblemKind.NXT_NOT_ACTIVATED
    assert problem.fix is Fix.NEW_LINK
    assert problem.is_permission
    assert "system administrator" in problem.who
    steps = " ".join(problem.plain(step) for step in problem.steps)
    assert CLIENT in steps
    assert "Connect Application Access" in steps
    assert problem.summary == "our integration is not activated for Havbris Holding AS in Visma Business NXT"


async def test_the_not_activated_switch(module, api, world):
    world.switch(not_activated=[1])
    with pytest.raises(Refused):
        await module.profile(api, external_id=str(SJOMAT))
    assert [company.company_no for company in await module.available_companies(api, customer_ids=[])] == [EIENDOM]


@pytest.mark.parametrize(
    ("status_name", "kind", "problem"),
    [
        ("Timeout", Transient, ProblemKind.OUTAGE),
        ("InternalError", Transient, ProblemKind.OUTAGE),
        ("LicenseMissing", Refused, ProblemKind.UNKNOWN),
    ],
)
async def test_errors_inside_200(module, api, world, status_name, kind, problem):
    world.switch(error_in_200=status_name)
    with pytest.raises(kind) as caught:
        await module.profile(api, external_id=str(SJOMAT))
    assert type(caught.value) is kind
    assert module.classify(caught.value, company="A").kind is problem


async def test_unavailable_is_transient(module, api, world):
    world.switch(unavailable=True)
    with pytest.raises(Transient) as caught:
        await module.profile(api, external_id=str(SJOMAT))
    assert caught.value.status == 503
    assert module.classify(caught.value, company="A").kind is ProblemKind.OUTAGE


async def test_a_hanging_server_is_left_to_the_callers_timeout(module, api, world):
    await module.service_token(tenant=None, now=NOW)
    world.switch(hang_seconds=5.0)
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(module.profile(api, external_id=str(SJOMAT)), timeout=0.05)


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (httpx.Response(401, text="<html><head><title>401 Authorization Required</title></head></html>"), Unauthorized),
        (httpx.Response(502, text="<html>bad gateway</html>"), Transient),
        (httpx.Response(200, text="<html>maintenance</html>"), Transient),
        (httpx.Response(429, headers={"Retry-After": "3"}), RateLimited),
        (httpx.Response(404, text="not found"), VismaError),
        (httpx.Response(200, json={"errors": [{"message": "Cannot query field 'x' on type 'Query'."}]}), VismaError),
        (httpx.Response(200, json={"errors": [{"message": "m", "status_name": "AccessDenied"}]}), Refused),
    ],
)
def test_answers_become_typed_errors(module, response, kind):
    with pytest.raises(kind) as caught:
        module.parse(response)
    assert type(caught.value) is kind


def test_data_is_returned_from_a_clean_answer(module):
    assert module.parse(httpx.Response(200, json={"data": {"a": 1}})) == {"a": 1}
