"""The eAccounting module: what each answer means, and keyset paging of vouchers that nothing can shift."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest

from bot.domain.books import COLUMNS, Book
from bot.domain.problems import ProblemKind
from bot.visma.base import (
    GrantRevoked,
    NotOffered,
    Profile,
    RateLimited,
    Refused,
    RunNotes,
    Target,
    Transient,
    Unauthorized,
    VismaError,
)
from bot.visma.eaccounting import EAccounting, month_ends


@pytest.fixture
def module():
    return EAccounting(
        httpx.AsyncClient(),
        identity_url="http://idp",
        api_url="http://api",
        client_id="bot",
        client_secret="s",
        page_size=3,
    )


def answer(status: int, body: Any = None, *, text: str | None = None, headers: dict[str, str] | None = None):
    if text is not None:
        return httpx.Response(status, text=text, headers=headers or {"content-type": "text/html"})
    return httpx.Response(status, json=body, headers=headers)


def envelope(code: int, message: str = "message") -> dict[str, Any]:
    return {"ErrorCode": code, "DeveloperErrorMessage": message, "ErrorId": "6f1c"}


@pytest.mark.parametrize(
    ("response", "kind"),
    [
        (answer(429, envelope(4010, "API calls quota exceeded! Try again in 55 seconds.")), RateLimited),
        (answer(503, envelope(5001)), Transient),
        (answer(500, text="<html>oops</html>"), Transient),
        (answer(200, text="<html>down for maintenance</html>"), Transient),
        (answer(401, envelope(4005)), Unauthorized),
        (answer(403, envelope(4007)), Refused),
        (answer(403, envelope(4009)), NotOffered),
        (answer(400, envelope(6000)), VismaError),
        (answer(404, envelope(3000)), VismaError),
    ],
)
def test_answers_become_typed_errors(module, response, kind):
    with pytest.raises(kind) as caught:
        module.parse(response)
    assert type(caught.value) is kind


def test_the_wait_is_read_from_the_prose(module):
    with pytest.raises(RateLimited) as caught:
        module.parse(answer(429, envelope(4010, "maximum admitted 600 per Minute. Try again in 55 seconds.")))
    assert caught.value.retry_after == 55
    with pytest.raises(RateLimited) as caught:
        module.parse(answer(429, {}, headers={"Retry-After": "7"}))
    assert caught.value.retry_after == 7


def test_only_person_fixable_refusals_are_permission_problems(module):
    assert module.classify(Refused("x", status=403, code="eAccounting 4007"), company="A").is_permission
    revoked = module.classify(GrantRevoked("x", code="invalid_grant"), company="A")
    assert revoked.kind is ProblemKind.CONSENT_REVOKED


def test_invoicing_variant_has_no_balances(module):
    target = Target(1, "A", date(2026, 1, 1), (), date(2026, 11, 25))
    assert Book.BALANCES in module.books(Profile("A", "1", variant="Standard"), target)
    assert Book.BALANCES not in module.books(Profile("A", "1", variant="Invoicing"), target)


def test_month_ends():
    assert month_ends(date(2026, 1, 15), date(2026, 3, 10)) == [date(2026, 1, 31), date(2026, 2, 28), date(2026, 3, 10)]


class VoucherApi:
    """Serves vouchers like eAccounting: `ModifiedUtc ge X` filter, ordered by ModifiedUtc, paged."""

    def __init__(self, vouchers: list[dict[str, Any]]) -> None:
        self.vouchers = vouchers
        self.calls: list[dict[str, Any]] = []
        self.after_call: Any = None

    async def get(self, path: str, params: Any = None) -> Any:
        assert path == "vouchers"
        self.calls.append(dict(params))
        rows = sorted(self.vouchers, key=lambda v: v["ModifiedUtc"])
        for condition in params["$filter"].split(" and "):
            field, op, value = condition.split(" ")
            assert op == "ge"
            if field == "ModifiedUtc":
                bound = datetime.fromisoformat(value)
                rows = [v for v in rows if datetime.fromisoformat(v["ModifiedUtc"]) >= bound]
            else:
                rows = [v for v in rows if v["VoucherDate"][:10] >= value]
        size, page = params["$pagesize"], params["$page"]
        pages = max(1, -(-len(rows) // size))
        data = [dict(item) for item in rows[(page - 1) * size : page * size]]  # as sent, before any change
        if self.after_call:
            self.after_call(self)
        return {"Meta": {"CurrentPage": page, "TotalNumberOfPages": pages}, "Data": data}


BASE = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def voucher(n: int, minutes: int) -> dict[str, Any]:
    return {
        "Id": f"v{n}",
        "VoucherDate": "2026-03-01T00:00:00",
        "ModifiedUtc": (BASE + timedelta(minutes=minutes)).isoformat().replace("+00:00", "Z"),
        "Rows": [],
    }


async def read_all(module, api, cursor=None):
    target = Target(1, "A", date(2026, 1, 1), (), date(2026, 11, 25))
    pages = []
    async for page in module.read(
        Book.VOUCHERS, api, target=target, profile=Profile("A", "1"), cursor=cursor, notes=RunNotes()
    ):
        pages.append(page)
    return pages


async def test_ties_larger_than_a_page_are_paged_by_number_and_nothing_is_missed(module):
    # Seven vouchers share one ModifiedUtc (page size 3), then two later ones.
    api = VoucherApi([voucher(n, 0) for n in range(7)] + [voucher(7, 5), voucher(8, 9)])
    pages = await read_all(module, api)
    ids = {row[0] for page in pages for row in page.rows}
    assert ids == {f"v{n}" for n in range(9)}
    assert len(pages[0].rows[0]) == len(COLUMNS[Book.VOUCHERS])
    assert pages[-1].cursor == {"watermark": (BASE + timedelta(minutes=9)).isoformat()}


async def test_a_voucher_changed_while_paging_is_read_at_the_end_not_skipped(module):
    vouchers = [voucher(n, n) for n in range(10)]
    api = VoucherApi(vouchers)

    def change_early_voucher(api: VoucherApi) -> None:
        if len(api.calls) == 1:  # after the first page: v1 is edited, so it moves to the end
            vouchers[1]["ModifiedUtc"] = (BASE + timedelta(minutes=60)).isoformat()
            vouchers.append(voucher(99, 61))  # and a voucher is booked

    api.after_call = change_early_voucher
    ids = {row[0] for page in await read_all(module, api) for row in page.rows}
    assert ids == {f"v{n}" for n in range(10)} | {"v99"}


async def test_an_incremental_run_reads_from_the_watermark_less_the_overlap(module):
    api = VoucherApi([voucher(n, n * 10) for n in range(10)])
    first = await read_all(module, api)
    api.vouchers.append(voucher(50, 200))
    api.calls.clear()
    second = await read_all(module, api, cursor=first[-1].cursor)
    assert [row[0] for page in second for row in page.rows] == ["v9", "v50"]  # v9 is inside the 5-minute overlap
    assert api.calls[0]["$filter"].startswith("ModifiedUtc ge 2026-03-01T13:25:00")


async def test_a_run_resumes_from_its_position(module):
    api = VoucherApi([voucher(n, n) for n in range(9)])
    pages = await read_all(module, api)
    middle = pages[1].cursor
    assert "position" in middle
    api.calls.clear()
    resumed = await read_all(module, api, cursor=middle)
    assert resumed[0].rows[0][0] == "v4"  # from where it stood (the last value read, again), not from the start
    assert {row[0] for page in resumed for row in page.rows} >= {"v6", "v7", "v8"}


async def test_a_voucher_without_a_date_is_skipped_and_counted(module):
    broken = voucher(1, 1)
    del broken["VoucherDate"]
    api = VoucherApi([voucher(0, 0)])
    api.vouchers.append({**broken, "VoucherDate": "2026-03-01T00:00:00"})
    notes = RunNotes()
    target = Target(1, "A", date(2026, 1, 1), (), date(2026, 11, 25))

    class Broken(VoucherApi):
        async def get(self, path, params=None):
            body = await super().get(path, params)
            body["Data"] = [
                {k: v for k, v in item.items() if not (item["Id"] == "v1" and k == "VoucherDate")}
                for item in body["Data"]
            ]
            return body

    broken_api = Broken(api.vouchers)
    rows = [
        row
        async for page in module.read(
            Book.VOUCHERS, broken_api, target=target, profile=Profile("A", "1"), cursor=None, notes=notes
        )
        for row in page.rows
    ]
    assert [row[0] for row in rows] == ["v0"]
    assert notes.values["skipped"] == 1


async def test_an_account_whose_number_is_not_a_number_is_skipped_not_fatal(module):
    class Accounts:
        async def get(self, path, params=None):
            return {
                "Meta": {"TotalNumberOfPages": 1},
                "Data": [{"Number": "1920", "Name": "Bank"}, {"Number": "19x0", "Name": "Broken"}],
            }

    notes = RunNotes(values={"fiscal_years": [("fy", date(2026, 1, 1), date(2026, 12, 31))]})
    target = Target(1, "A", date(2026, 1, 1), (), date(2026, 11, 25))
    pages = [
        page
        async for page in module.read(
            Book.ACCOUNTS, Accounts(), target=target, profile=Profile("A", "1"), cursor=None, notes=notes
        )
    ]
    assert [row[1] for page in pages for row in page.rows] == [1920]
    assert notes.values["skipped"] == 1
