"""The Visma.net module against the simulator: service tokens, profile, every book, increments, pacing, problems."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest

from bot.domain.books import COLUMNS, Book
from bot.domain.problems import Fix, ProblemKind
from bot.simulators.visma_net import (
    DRIFT_TENANT,
    HAVBRIS_CUSTOMER,
    SERVICE_READ,
    SJOMAT_TENANT,
    create_visma_net_app,
    seed_visma_net,
)
from bot.visma.base import (
    GrantRevoked,
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
from bot.visma.visma_net import VismaNet

SECRET = "secret"
START = date(2026, 1, 1)
TODAY = date(2026, 11, 24)


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 24, 12, 10, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


class Direct:
    """The engine's `Api`, reduced to what a module sees: one token, GETs parsed by the module, holds recorded."""

    def __init__(self, module: VismaNet, http: httpx.AsyncClient, token: str) -> None:
        self.module, self.http, self.token = module, http, token
        self.holds: list[float | None] = []

    async def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        response = await self.http.get(
            self.module.url(path), params=dict(params or {}), headers={"Authorization": f"Bearer {self.token}"}
        )
        self.holds.append(self.module.pace(response))
        return self.module.parse(response)

    async def post(self, path: str, body: Mapping[str, Any]) -> Any:
        raise NotImplementedError


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def world(clock):
    return seed_visma_net(now=clock, client_id="bot", client_secret=SECRET)


@pytest.fixture
async def http(world):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=create_visma_net_app(world))) as client:
        yield client


def make(http, *, page_size=500, secret=SECRET) -> VismaNet:
    return VismaNet(
        http,
        connect_url="http://visma.test",
        api_url="http://visma.test/erp",
        client_id="bot",
        client_secret=secret,
        page_size=page_size,
    )


@pytest.fixture
def module(http):
    return make(http, page_size=7)


async def api_for(module, clock, tenant=SJOMAT_TENANT) -> Direct:
    tokens = await module.service_token(tenant=tenant, now=clock())
    return Direct(module, module._http, tokens.access_token)


def target() -> Target:
    return Target(1, "Havbris Sjømat AS", START, (), TODAY, external_id=SJOMAT_TENANT)


async def read(module, book, api, *, cursor=None, notes=None):
    notes = notes if notes is not None else RunNotes()
    pages = []
    async for page in module.read(book, api, target=target(), profile=Profile("A", "1"), cursor=cursor, notes=notes):
        pages.append(page)
    return pages


async def read_all(module, api) -> tuple[dict[Book, list[Any]], RunNotes]:
    notes = RunNotes()
    out = {}
    for book in module.books(Profile("A", "1"), target()):
        out[book] = await read(module, book, api, notes=notes)
    return out, notes


# ---------------------------------------------------------------- access and profile


async def test_a_service_token_for_the_tenant(module, clock, world):
    tokens = await module.service_token(tenant=SJOMAT_TENANT, now=clock())
    assert tokens.scope == SERVICE_READ
    assert tokens.refresh_token is None
    assert tokens.expires_at == clock() + timedelta(hours=1)
    assert world.token_requests[-1] == {
        "grant_type": "client_credentials",
        "scope": SERVICE_READ,
        "tenant_id": SJOMAT_TENANT,
    }


async def test_the_profile_is_read_from_the_organisation(module, clock):
    profile = await module.profile(await api_for(module, clock))
    assert profile == Profile("Havbris Sjømat AS", "931184202", country="NO", currency="NOK")


async def test_consent_entry_points_are_not_for_this_system(module, clock):
    with pytest.raises(OurConfiguration):
        module.authorize_url(state="s", challenge="c", redirect_uri="http://x")
    with pytest.raises(OurConfiguration):
        await module.refresh(refresh_token="r", now=clock())


# ---------------------------------------------------------------- books


async def test_every_book_in_the_shared_column_order(module, clock, world):
    api = await api_for(module, clock)
    books, _ = await read_all(module, api)
    assert Book.OPENING_BALANCES not in books
    for book, pages in books.items():
        for page in pages:
            for row in page.rows:
                assert len(row) == len(COLUMNS[book]), book
    years = [row for page in books[Book.FISCAL_YEARS] for row in page.rows]
    assert years == [
        ("2025", date(2025, 1, 1), date(2025, 12, 31), True),
        ("2026", date(2026, 1, 1), date(2026, 12, 31), False),
    ]
    vat = {row[0]: row for page in books[Book.VAT_CODES] for row in page.rows}
    assert vat["3"][3] == Decimal("0.25")
    accounts = [row for page in books[Book.ACCOUNTS] for row in page.rows]
    assert {row[0] for row in accounts} == {"2026"}  # 2025 ends before the reconciliation start
    assert (1920, "Bankinnskudd") in {(row[1], row[2]) for row in accounts}


async def test_vouchers_are_whole_although_pages_split_batches(module, clock, world):
    api = await api_for(module, clock)
    books, notes = await read_all(module, api)
    vouchers = {row[0]: row for page in books[Book.VOUCHERS] for row in page.rows}
    company = world.companies[SJOMAT_TENANT]
    expected = {f"GL-{b['batchNumber']}": b for b in company.transactions if b["transactionDate"][:10] >= "2026-01-01"}
    assert set(vouchers) == set(expected)
    for key, batch in expected.items():
        rows = vouchers[key][9]
        assert len(rows) == len(batch["journalTransactionLines"]), key
        assert sum(row["DebitAmount"] for row in rows) == pytest.approx(sum(row["CreditAmount"] for row in rows))
    sample = next(iter(vouchers.values()))
    assert sample[3] == "GL"
    assert set(sample[9][0]) >= {
        "AccountNumber",
        "AccountDescription",
        "DebitAmount",
        "CreditAmount",
        "TransactionText",
    }
    assert notes.values.get("skipped", 0) == 0


async def test_balances_per_month_since_the_start(module, clock, world):
    api = await api_for(module, clock)
    books, _ = await read_all(module, api)
    pages = books[Book.BALANCES]
    assert len(pages) == 11  # January to October, and November as of today
    assert pages[-1].cursor == {"complete": True}
    october = [row for row in pages[9].rows]
    assert {row[1] for row in october} == {date(2026, 10, 31)}
    assert abs(sum(row[2] for row in october)) < Decimal("0.01")
    periods = [r.params.get("periodId") for r in world.requests if r.path == "/v2/generalLedgerBalance"]
    assert list(dict.fromkeys(periods))[:2] == ["202601", "202602"]


async def test_a_second_run_reads_only_what_changed(module, clock, world):
    api = await api_for(module, clock)
    first, notes = await read_all(module, api)
    cursor = first[Book.VOUCHERS][-1].cursor
    clock.now += timedelta(hours=2)
    added = world.book(SJOMAT_TENANT, when=date(2026, 11, 20))
    touched = world.touch(SJOMAT_TENANT, world.companies[SJOMAT_TENANT].transactions[-30]["batchNumber"])
    world.requests.clear()
    api = await api_for(module, clock)  # the first token has expired meanwhile
    second = await read(module, Book.VOUCHERS, api, cursor=cursor, notes=notes)
    keys = {row[0] for page in second for row in page.rows}
    assert {f"GL-{added['batchNumber']}", f"GL-{touched['batchNumber']}"} <= keys
    assert len(keys) <= 4  # and whatever sits inside the five-minute overlap
    journal = [r for r in world.requests if r.path == "/v2/journaltransaction"]
    assert journal[0].params["lastModifiedDateTimeCondition"] == ">="
    # Only from the watermark less the overlap on: a handful of lines, not the year again.
    assert all(r.params["lastModifiedDateTime"] >= "2026-10-31" for r in journal)
    assert len(journal) <= 2


async def test_ties_bigger_than_a_page_and_a_resume_inside_them(module, clock, world):
    # Twelve batches edited in one go share one lastModifiedDateTime; pages of 7 lines split them.
    company = world.companies[SJOMAT_TENANT]
    clock.now += timedelta(days=1)
    for batch in company.transactions[-12:]:
        world.touch(SJOMAT_TENANT, batch["batchNumber"])
    api = await api_for(module, clock)
    watermark = {"watermark": (clock.now - timedelta(minutes=1)).isoformat()}
    pages = await read(module, Book.VOUCHERS, api, cursor=watermark)
    lines = {f"GL-{b['batchNumber']}": len(b["journalTransactionLines"]) for b in company.transactions[-12:]}
    got = {row[0]: len(row[9]) for page in pages for row in page.rows}
    assert got == lines
    middle = next(page.cursor for page in pages if page.cursor and "from" in page.cursor)
    resumed = await read(module, Book.VOUCHERS, api, cursor=middle)
    again = {row[0]: len(row[9]) for page in resumed for row in page.rows}
    assert again
    assert all(again[key] == lines[key] for key in again)  # no batch comes back cut in half


async def test_pace_holds_when_the_hourly_window_is_spent(module, clock, world):
    api = await api_for(module, clock)
    world.switch(rate_limit_per_hour=2)
    await module.profile(api)
    assert api.holds[-1] is None
    await module.profile(api)
    assert api.holds[-1] == 50 * 60  # Remaining 0: hold until the hour turns
    with pytest.raises(RateLimited) as caught:
        await module.profile(api)
    assert caught.value.retry_after == 50 * 60
    limit = module.rate_limit("v1/account", scope=SJOMAT_TENANT)
    assert limit == module.rate_limit("v2/journaltransaction", scope=SJOMAT_TENANT)
    assert limit.window == 3600
    assert limit.key != module.rate_limit("v1/account", scope=DRIFT_TENANT).key


# ---------------------------------------------------------------- failures


async def failure(module, clock, world, switch: str) -> VismaError:
    if switch == "customer_tenant_id":
        world.approve("bot", HAVBRIS_CUSTOMER, {SERVICE_READ})
        api = await api_for(module, clock, HAVBRIS_CUSTOMER)
        with pytest.raises(VismaError) as caught:
            await module.profile(api)
        return caught.value
    if switch == "later_company":
        world.switch(later_company=True)
        with pytest.raises(VismaError) as caught:
            await module.service_token(tenant=DRIFT_TENANT, now=clock())
        return caught.value
    if switch == "wrong_secret":
        with pytest.raises(VismaError) as caught:
            await make(module._http, secret="nope").service_token(tenant=SJOMAT_TENANT, now=clock())
        return caught.value
    if switch == "rate_limit_per_hour":
        world.switch(rate_limit_per_hour=0)
    else:
        world.switch(**{switch: True})
    with pytest.raises(VismaError) as caught:
        await module.profile(await api_for(module, clock))
    return caught.value


@pytest.mark.parametrize(
    ("switch", "error", "kind", "fix"),
    [
        ("not_approved", GrantRevoked, ProblemKind.TENANT_NOT_APPROVED, Fix.NEW_LINK),
        ("no_api_user", GrantRevoked, ProblemKind.TENANT_NOT_APPROVED, Fix.NEW_LINK),
        ("consent_revoked", GrantRevoked, ProblemKind.TENANT_NOT_APPROVED, Fix.NEW_LINK),
        ("later_company", GrantRevoked, ProblemKind.TENANT_NOT_APPROVED, Fix.NEW_LINK),
        ("customer_tenant", Unauthorized, ProblemKind.CUSTOMER_TENANT, Fix.NEW_LINK),
        ("customer_tenant_id", Unauthorized, ProblemKind.CUSTOMER_TENANT, Fix.NEW_LINK),
        ("read_scope_off", Refused, ProblemKind.SCOPE_MISSING, Fix.NEW_LINK),
        ("no_licence", Refused, ProblemKind.NO_LICENCE, Fix.RETRY),
        ("unavailable", Transient, ProblemKind.OUTAGE, Fix.WAIT),
        ("connect_unavailable", IdentityUnavailable, ProblemKind.OUTAGE, Fix.WAIT),
        ("rate_limit_per_hour", RateLimited, ProblemKind.RATE_LIMITED, Fix.WAIT),
        ("wrong_secret", OurConfiguration, ProblemKind.UNKNOWN, Fix.RETRY),
    ],
)
async def test_each_failure_is_classified(module, clock, world, switch, error, kind, fix):
    caught = await failure(module, clock, world, switch)
    assert type(caught) is error
    problem = module.classify(caught, company="Havbris <Sjømat> AS")
    assert (problem.kind, problem.fix) == (kind, fix)
    assert problem.is_permission is (fix is Fix.NEW_LINK or kind is ProblemKind.NO_LICENCE)
    # Names stay in values; the templates never carry them.
    for template in (problem.what, problem.who, *problem.steps):
        assert "Sjømat" not in template
    if "{company}" in problem.who:
        assert problem.values["company"] == "Havbris <Sjømat> AS"
        assert "Havbris <Sjømat> AS" in problem.plain(problem.who)


async def test_the_tenant_problem_walks_through_the_roles_and_the_app_store(module, clock, world):
    problem = module.classify(await failure(module, clock, world, "not_approved"), company="X")
    text = " ".join((problem.what, problem.who, *problem.steps))
    for words in (
        "Customer administrator",
        "Integration Administrator",
        "App Store",
        "API User",
        "Integrate",
        "Tenant ID",
    ):
        assert words in text
    assert problem.code == "Visma.net invalid_tenant"


def test_answers_become_typed_errors(module):
    with pytest.raises(Transient):
        module.parse(httpx.Response(200, text="<html>maintenance</html>", headers={"content-type": "text/html"}))
    with pytest.raises(RateLimited) as caught:
        module.parse(httpx.Response(429, json={"message": "slow down"}, headers={"Retry-After": "411"}))
    assert caught.value.retry_after == 411
    with pytest.raises(Refused) as refused:
        module.parse(httpx.Response(400, json={"ExceptionType": "IPPException", "ExceptionFaultCode": "12027"}))
    assert refused.value.code == "Visma.net 12027"
    assert type(_raised(module, httpx.Response(404, json={"message": "VismaId: x. Not found"}))) is VismaError
    assert module.pace(httpx.Response(200, headers={"X-RateLimit-Remaining": "5", "X-RateLimit-Reset": "9"})) is None


def _raised(module, response):
    try:
        module.parse(response)
    except VismaError as exc:
        return exc
    raise AssertionError("no error")
