"""Visma.net Financials (the Visma.net ERP API): client-credentials access per Tenant ID, and its books.

The module declares; the engine in bot/sync runs. Quirks that shape it:
- Access is not a consent through our link: the client's *Integration Administrator* integrates our app in the
  Visma App Store for each company, and gives us the company's Tenant ID. We then take a client-credentials token
  from Visma Connect with `tenant_id`; `invalid_tenant` means the app is not integrated for that company (yet,
  or any more), or the integrating user lacks the *API User* role in it.
- A Visma *customer* has a tenant id of its own beside each company's. A token for the customer-level id is
  issued without complaint, and then every ERP call answers 401 with an empty body.
- `pageNumber`/`pageSize` are mandatory on every list and a larger size is clamped silently, so a short page
  only means the end when we asked for no more than the endpoint's maximum (`_MAX_PAGE`).
- Journal transactions (v2) are paged by *lines*: one batch can be split over two pages, so the last batch of a
  page is held back until the next page shows it complete.
- Rate limit: an unpublished number of requests an hour per company *and* client, announced in
  X-RateLimit-Remaining/-Reset on every answer; we hold back when Remaining reaches 0 instead of running into 429s.
- Opening balances have no endpoint of their own (they are a journal batch like any other): not offered.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import orjson

from bot.domain import problems
from bot.domain.books import Book
from bot.domain.problems import Problem
from bot.domain.types import AccountingSystem
from bot.visma.base import (
    Api,
    Grant,
    GrantRevoked,
    IdentityUnavailable,
    OurConfiguration,
    Page,
    Profile,
    RateLimit,
    RateLimited,
    Refused,
    RunNotes,
    Target,
    TokenSet,
    Transient,
    Unauthorized,
    VismaError,
)
from bot.visma.eaccounting import month_ends
from bot.visma.reading import NoConsent, account_number, day, instant, iso, json_object, skip

log = logging.getLogger(__name__)

SCOPE = "vismanet_erp_service_api:read"
PAGE_SIZE = 500
RATE_LIMIT = 3000  # an hour per company and client: Visma does not publish it; the headers say the real one
RATE_WINDOW = 3600.0
# A batch committed late can carry a lastModifiedDateTime a little older than what we already read.
OVERLAP = timedelta(minutes=5)
# Each list's page maximum (Visma clamps a larger pageSize without saying so in the body).
_MAX_PAGE = {"journaltransaction": 500}
_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
_LICENCE = "12027"


class VismaNet(NoConsent):
    """The Visma.net Financials system module for one firm's app registration."""

    system = AccountingSystem.VISMA_NET
    label = "Visma.net Financials"
    grant = Grant.TENANT

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        connect_url: str,
        api_url: str,
        client_id: str,
        client_secret: str,
        rate_limit: int = RATE_LIMIT,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._http = http
        self._connect = connect_url.rstrip("/")
        self._api = api_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._rate = rate_limit
        self.page_size = page_size

    # ------------------------------------------------------------------ access

    async def service_token(self, *, tenant: str | None, now: datetime) -> TokenSet:
        """A client-credentials token for the company's tenant (GrantRevoked on `invalid_tenant`)."""
        if not tenant:
            raise GrantRevoked("no Tenant ID is known for this company", code="invalid_tenant")
        form = {"grant_type": "client_credentials", "scope": SCOPE, "tenant_id": tenant}
        try:
            response = await self._http.post(
                f"{self._connect}/connect/token", data=form, auth=(self._client_id, self._client_secret)
            )
        except httpx.HTTPError as exc:
            raise IdentityUnavailable(f"Visma Connect did not answer ({type(exc).__name__})") from exc
        body = json_object(response)
        if response.status_code == 200 and "access_token" in body:
            return TokenSet(
                access_token=str(body["access_token"]),
                refresh_token=None,
                expires_at=now + timedelta(seconds=int(body.get("expires_in", 3600))),
                scope=str(body.get("scope", "")),
            )
        error = str(body.get("error") or "")
        status = response.status_code
        if error in {"invalid_tenant", "invalid_grant"}:
            raise GrantRevoked(f"Visma Connect refused the tenant ({error})", status=status, code=error)
        if error in {"invalid_client", "unauthorized_client", "invalid_scope", "unsupported_grant_type"}:
            raise OurConfiguration(
                f"Visma Connect refused the firm's app registration ({error})", status=status, code=error
            )
        raise IdentityUnavailable(f"Visma Connect answered HTTP {status}", status=status)

    # ------------------------------------------------------------------ reading

    def url(self, path: str) -> str:
        """The absolute URL of an API path ("v1/account")."""
        return f"{self._api}/{path.lstrip('/')}"

    def rate_limit(self, path: str, *, scope: str | None = None) -> RateLimit:
        """Visma.net counts per company and client: one hourly window per tenant, whatever the path."""
        return RateLimit(key=f"{self.system.value}:{self._client_id}:{scope}", count=self._rate, window=RATE_WINDOW)

    def pace(self, response: httpx.Response) -> float | None:
        """Seconds to hold back when the window is spent (X-RateLimit-Remaining 0, X-RateLimit-Reset)."""
        remaining = response.headers.get("X-RateLimit-Remaining")
        if remaining is None or not remaining.strip().isdigit() or int(remaining) > 0:
            return None
        reset = response.headers.get("X-RateLimit-Reset", "")
        try:
            return max(1.0, float(reset))
        except ValueError:
            return RATE_WINDOW

    def parse(self, response: httpx.Response) -> Any:
        """The parsed body of a 200, or the typed error the answer means."""
        status = response.status_code
        if status == 200:
            try:
                return orjson.loads(response.content)
            except orjson.JSONDecodeError:
                kind = response.headers.get("content-type", "unknown content").split(";")[0]
                raise Transient(f"Visma.net answered 200 with a body that is not JSON ({kind})", status=200) from None
        body = json_object(response)
        fault = str(body.get("ExceptionFaultCode") or "")
        message = str(body.get("ExceptionMessage") or body.get("message") or response.reason_phrase or "no message")
        # The IPP body wins over the status: 12027 comes as a 500 but is no outage.
        if fault == _LICENCE:
            raise Refused(message, status=status, code=f"Visma.net {fault}")
        if status == 429:
            raise RateLimited(message, retry_after=_retry_after(response), code="Visma.net 429")
        if status == 401:
            trace = response.headers.get("x-vbc-traceid")
            text = "the ERP API refused the token" + (f" (x-vbc-traceid {trace})" if trace else "")
            raise Unauthorized(text, status=status, code="Visma.net 401")
        if status == 403:
            raise Refused(message, status=status, code="Visma.net 403")
        if status >= 500:
            raise Transient(f"Visma.net answered {status}: {message}", status=status, code=f"Visma.net {status}")
        raise VismaError(f"Visma.net refused the request (HTTP {status}): {message}", status=status, code=fault or None)

    async def profile(self, api: Api, *, external_id: str | None = None) -> Profile:
        """The company's name, organisation number (`corporateId`), country and currency from /v1/organization."""
        body = await api.get("v1/organization")
        items = body if isinstance(body, list) else [body]
        item = items[0] if items else {}
        country = item.get("defaultCountry")
        currency = item.get("currency")
        return Profile(
            name=str(item.get("name") or "unnamed company"),
            org_number=item.get("corporateId"),
            country=country.get("id") if isinstance(country, dict) else country,
            currency=item.get("baseCurrency") or (currency.get("id") if isinstance(currency, dict) else currency),
        )

    def books(self, profile: Profile, target: Target) -> tuple[Book, ...]:
        """Fiscal years, VAT codes, accounts, vouchers and balances (no opening balances: see the docstring)."""
        return (Book.FISCAL_YEARS, Book.VAT_CODES, Book.ACCOUNTS, Book.VOUCHERS, Book.BALANCES)

    def read(
        self, book: Book, api: Api, *, target: Target, profile: Profile, cursor: dict[str, Any] | None, notes: RunNotes
    ) -> AsyncIterator[Page]:
        """Read one book page by page from `cursor`."""
        readers: dict[Book, Callable[..., AsyncIterator[Page]]] = {
            Book.FISCAL_YEARS: self._fiscal_years,
            Book.VAT_CODES: self._vat_codes,
            Book.ACCOUNTS: self._accounts,
            Book.VOUCHERS: self._vouchers,
            Book.BALANCES: self._balances,
        }
        return readers[book](api, target=target, profile=profile, cursor=cursor, notes=notes)

    def _size(self, resource: str) -> int:
        return min(self.page_size, _MAX_PAGE.get(resource, 1000))

    async def _list(self, api: Api, resource: str, params: Mapping[str, str | int] | None = None) -> AsyncIterator[Any]:
        """Every item of a list, page by page; a page shorter than asked for is the last."""
        size, number = self._size(resource), 1
        while True:
            body = await api.get(f"v1/{resource}", {**(params or {}), "pageNumber": number, "pageSize": size})
            items = body if isinstance(body, list) else []
            for item in items:
                yield item
            if len(items) < size:
                return
            number += 1

    async def _fiscal_years(self, api: Api, *, notes: RunNotes, **_: Any) -> AsyncIterator[Page]:
        # Visma.net has financial periods, not fiscal years: a year is its periods together, locked when every
        # period is closed in the general ledger.
        years: dict[int, list[dict[str, Any]]] = {}
        closed: set[str] = set()
        async for item in self._list(api, "financialPeriod"):
            years.setdefault(int(item["year"]), []).append(item)
            if item.get("closedInGeneralLedger"):
                period = str(item.get("period") or "")
                closed.add(f"{period[2:]}{period[:2]}")  # "012026" -> "202601"
        rows, spans = [], []
        for year, periods in sorted(years.items()):
            start = min(day(item["startDate"]) for item in periods)
            end = max(day(item["endDate"]) for item in periods)
            rows.append((str(year), start, end, all(bool(item.get("closedInGeneralLedger")) for item in periods)))
            spans.append((str(year), start, end))
        notes.values["fiscal_years"] = spans
        notes.values["closed_periods"] = closed
        yield Page(rows, None)

    async def _vat_codes(self, api: Api, **_: Any) -> AsyncIterator[Page]:
        rows = []
        async for item in self._list(api, "vat"):
            schedules = sorted(item.get("schedules") or [], key=lambda entry: str(entry.get("startDate") or ""))
            rate = schedules[-1].get("vatRate") if schedules else None
            fraction = (Decimal(str(rate)) / 100).normalize() if rate is not None else None
            rows.append((str(item["vatId"]), str(item["vatId"]), item.get("description"), fraction))
        yield Page(rows, None)

    async def _accounts(self, api: Api, *, target: Target, notes: RunNotes, **_: Any) -> AsyncIterator[Page]:
        # One chart for the company; the books keep accounts per fiscal year, so it is written for each year
        # the reconciliation looks at.
        items = [item async for item in self._list(api, "account")]
        names: dict[int, str] = {}
        accounts = []
        for item in items:
            number = account_number(item.get("accountCd"), notes)
            if number is None:
                continue
            names[number] = str(item.get("description") or "")
            accounts.append((number, item))
        notes.values["account_names"] = names
        for year_id, start, end in notes.values.get("fiscal_years", []):
            if end < target.reconciliation_start or start > target.today:
                continue
            yield Page(
                [
                    (
                        year_id,
                        number,
                        names[number],
                        bool(item.get("active", True)),
                        None,  # Visma.net accounts carry a VAT category, not a VAT code
                        None,  # the type is a word (Asset, Liability, Income, Expense), the column a number
                        instant(item.get("lastModifiedDateTime")),
                    )
                    for number, item in accounts
                ],
                None,
            )

    async def _vouchers(
        self, api: Api, *, target: Target, cursor: dict[str, Any] | None, notes: RunNotes, **_: Any
    ) -> AsyncIterator[Page]:
        # Keyset paging on lastModifiedDateTime (>=) as for eAccounting: move the bound to the newest value seen
        # and start again at page 1, so nothing shifts under us. Pages count lines, so the last batch of a page
        # may go on in the next one: it is held back. Moving the bound re-reads that batch whole; paging on
        # within one value (a page all of one timestamp) carries it over instead.
        cursor = cursor or {}
        watermark = instant(cursor.get("watermark"))
        if "position" in cursor:
            current: datetime = instant(cursor["position"]) or _EPOCH
            number, start_at = int(cursor.get("page", 1)), cursor.get("from")
        else:
            current, number, start_at = (watermark - OVERLAP if watermark else _EPOCH), 1, None
        newest = watermark
        size = self._size("journaltransaction")
        held: dict[str, Any] | None = None
        held_page = number
        names = notes.values.get("account_names", {})
        while True:
            body = await api.get(
                "v2/journaltransaction",
                {
                    "lastModifiedDateTime": _query_instant(current),
                    "lastModifiedDateTimeCondition": ">=",
                    "pageNumber": number,
                    "pageSize": size,
                },
            )
            items = [item for item in (body if isinstance(body, list) else []) if isinstance(item, dict)]
            if start_at is not None:  # resuming inside a run of ties: skip what came before the held batch
                keys = [_key(item) for item in items]
                items = items[keys.index(start_at) :] if start_at in keys else items
                start_at = None
            lines = sum(len(item.get("journalTransactionLines") or []) for item in items)
            batches: list[dict[str, Any]] = []
            for item in items:
                if held is not None and _key(held) == _key(item):
                    held["journalTransactionLines"] = [
                        *held["journalTransactionLines"],
                        *(item.get("journalTransactionLines") or []),
                    ]
                    continue
                if held is not None:
                    batches.append(held)
                held = {**item, "journalTransactionLines": list(item.get("journalTransactionLines") or [])}
                held_page = number
            page_newest = max((m for item in items if (m := instant(item.get("lastModifiedDateTime")))), default=None)
            if page_newest is not None and (newest is None or page_newest > newest):
                newest = page_newest
            if lines < size:  # the last page: the held batch is complete
                if held is not None:
                    batches.append(held)
                yield Page(
                    self._voucher_rows(batches, target, names, notes), {"watermark": iso(newest)} if newest else {}
                )
                return
            if page_newest is not None and page_newest > current:
                current, number, held = page_newest, 1, None  # the held batch is read again, whole
                position: dict[str, Any] = {"position": iso(current), "page": 1}
            else:
                # A page of ties: page on within the same lastModifiedDateTime. A resumed run starts again on
                # the page where the held batch began, from that batch.
                number += 1
                position = {"position": iso(current), "page": number}
                if held is not None:
                    position.update(page=held_page, **{"from": _key(held)})
            if watermark:
                position["watermark"] = iso(watermark)
            yield Page(self._voucher_rows(batches, target, names, notes), position)

    def _voucher_rows(
        self, batches: list[dict[str, Any]], target: Target, names: Mapping[int, str], notes: RunNotes
    ) -> list[tuple[Any, ...]]:
        rows = []
        for batch in batches:
            row = _voucher_row(batch, names, notes)
            if row is None:
                skip(notes, f"journal transaction {batch.get('batchNumber')} came without a date or number")
            elif row[1] >= target.reconciliation_start:
                rows.append(row)
        return rows

    async def _balances(
        self, api: Api, *, target: Target, cursor: dict[str, Any] | None, notes: RunNotes, **_: Any
    ) -> AsyncIterator[Page]:
        # One generalLedgerBalance read per month since the reconciliation start. A later run skips the months
        # whose period is closed in the general ledger: their balances can no longer move.
        cursor = cursor or {}
        start = target.reconciliation_start
        if resume := cursor.get("next"):
            start = max(start, date.fromisoformat(resume))
        closed: set[str] = notes.values.get("closed_periods", set()) if cursor.get("complete") else set()
        ends = month_ends(start, target.today)
        for index, on in enumerate(ends):
            period = f"{on.year}{on.month:02d}"
            rows: list[tuple[Any, ...]] = []
            if period not in closed:
                async for item in self._list_v2(api, "generalLedgerBalance", {"periodId": period}):
                    account = item.get("account") or {}
                    number = account_number(account.get("number") if isinstance(account, dict) else account, notes)
                    if number is not None:
                        rows.append((number, on, Decimal(str(item.get("yearToDateBalance") or 0))))
            following = ends[index + 1] if index + 1 < len(ends) else None
            yield Page(rows, {"complete": True} if following is None else {"next": following.isoformat()})

    async def _list_v2(self, api: Api, resource: str, params: Mapping[str, str | int]) -> AsyncIterator[Any]:
        size, number = self._size(resource), 1
        while True:
            body = await api.get(f"v2/{resource}", {**params, "pageNumber": number, "pageSize": size})
            items = body if isinstance(body, list) else []
            for item in items:
                yield item
            if len(items) < size:
                return
            number += 1

    # ------------------------------------------------------------------ problems

    def classify(self, error: VismaError, *, company: str) -> Problem:
        """What a refusal means for people, in the shared catalogue."""
        code = (error.code or "").removeprefix("Visma.net ").strip() or None
        if isinstance(error, Unauthorized):
            code = "401"
        elif isinstance(error, RateLimited):
            code = "429"
        return problems.from_visma_net(status=error.status or 0, code=code, company=company)


def _key(item: Mapping[str, Any]) -> str:
    return f"{str(item.get('module') or '').removeprefix('Module')}-{item.get('batchNumber')}"


def _voucher_row(batch: Mapping[str, Any], names: Mapping[int, str], notes: RunNotes) -> tuple[Any, ...] | None:
    booked = batch.get("transactionDate")
    if not booked or not batch.get("batchNumber"):
        return None
    rows = []
    for line in batch.get("journalTransactionLines") or []:
        number = account_number(line.get("accountNumber"), notes)
        if number is None:
            continue
        # The same keys eAccounting's rows have, so reports read every system's vouchers alike.
        row: dict[str, Any] = {
            "AccountNumber": number,
            "AccountDescription": names.get(number),
            "DebitAmount": line.get("debitAmount") or 0,
            "CreditAmount": line.get("creditAmount") or 0,
            "TransactionText": line.get("transactionDescription"),
        }
        vat = line.get("vatCode")
        if isinstance(vat, dict) and vat.get("id"):
            row["VatCodeId"] = str(vat["id"])
        rows.append(row)
    module = str(batch.get("module") or "").removeprefix("Module")
    return (
        _key(batch),
        day(str(booked)),
        str(batch["batchNumber"]),
        module or None,
        None,  # Visma.net has no numeric voucher type; the module (GL, AR, AP…) is the number series
        batch.get("description"),
        instant(batch.get("lastModifiedDateTime")),
        None,
        None,
        rows,
    )


def _query_instant(moment: datetime) -> str:
    """yyyy-MM-dd HH:mm:ss.FFF, one of the formats lastModifiedDateTime accepts."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _retry_after(response: httpx.Response) -> float:
    for header in ("Retry-After", "X-RateLimit-Reset"):
        value = response.headers.get(header, "")
        if value.strip().isdigit():
            return float(value)
    return 60.0
