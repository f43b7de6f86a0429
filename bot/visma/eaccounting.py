"""Visma eAccounting (eEkonomi): consent against its identity server, and its books from API v2.

The module declares; the engine in bot/sync runs. Quirks that shape it:
- Scopes are per endpoint ("Requires any of the following scopes" in the Swagger): companysettings needs
  `ea:sales*`, the books need `ea:accounting*`. We ask for the read-only ones and nothing else.
- Product variants: an Invoicing-only company has vouchers and accounts but no account balances (4009).
- Rate limit: 600 requests a minute per client *and endpoint URL*; a 429 (ErrorCode 4010) only says how long
  to wait in its prose ("Try again in 55 seconds").
- Refresh tokens rotate: each refresh returns a new one and the old one dies.
- Vouchers are read incrementally by `ModifiedUtc` (OData `$filter`/`$orderby`), keyset-paged so that a
  voucher booked or changed while we page is read at the end instead of shifting pages under us.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

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
    NotOffered,
    OAuthError,
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
from bot.visma.reading import account_number, day, instant, iso, json_object, skip, tokens_from

log = logging.getLogger(__name__)

# The least the bot's reads need (see the module docstring); `offline_access` is what returns a refresh token.
SCOPES = ("ea:api", "offline_access", "ea:accounting_readonly", "ea:sales_readonly")
PAGE_SIZE = 500
# Rows committed late at Visma can carry a ModifiedUtc a little older than what we already read; each run
# re-reads this much before its watermark (upserts make the overlap harmless).
OVERLAP = timedelta(minutes=5)
# ProductVariant numbers from companysettings, and the variants that have no account balances (Swagger).
VARIANTS = {1: "Standard", 2: "Invoicing", 3: "Bookkeeping", 4: "Solo", 5: "Pro", 6: "InvoicingCollaboration"}
_NO_BALANCES = {"Invoicing", "InvoicingCollaboration"}
# ErrorCodes that only a person at the client can fix; everything else is retried or reported as unexpected
# (4034, a sandbox client against production, is the firm's configuration and shows as a failure on the card).
_PERMISSION_CODES = {4002, 4003, 4004, 4006, 4007, 4011, 4012}


class EAccounting:
    """The eAccounting system module for one firm's app registration."""

    system = AccountingSystem.EACCOUNTING
    label = "Visma eAccounting"
    grant = Grant.CONSENT

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        identity_url: str,
        api_url: str,
        client_id: str,
        client_secret: str,
        rate_limit: int = 600,
        rate_window: float = 60.0,
        page_size: int = PAGE_SIZE,
    ) -> None:
        self._http = http
        self._identity = identity_url.rstrip("/")
        self._api = api_url.rstrip("/") + "/v2"
        self._client_id = client_id
        self._client_secret = client_secret
        self._rate = (rate_limit, rate_window)
        self.page_size = page_size

    # ------------------------------------------------------------------ access

    def authorize_url(self, *, state: str, challenge: str, redirect_uri: str, locale: str | None = None) -> str:
        """Where the approver is sent to log in, pick the company and consent."""
        params = {
            "client_id": self._client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": " ".join(SCOPES),
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "prompt": "login",
            # Without this, a user with a *default company* set in Visma Online is never shown the company
            # picker: Visma silently authorises the default one, which is often not the client we asked for.
            "acr_values": "forceselectcompany:true",
        }
        if locale:
            params["ui_locales"] = locale
        return f"{self._identity}/connect/authorize?{urlencode(params)}"

    async def exchange_code(self, *, code: str, verifier: str, redirect_uri: str, now: datetime) -> TokenSet:
        """Trade the authorization code (with its PKCE verifier) for tokens (raises OAuthError)."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        response = await self._token_request({**form, "code_verifier": verifier})
        body = json_object(response)
        if response.status_code != 200 or "access_token" not in body:
            raise OAuthError(
                response.status_code, str(body.get("error", "invalid_response")), body.get("error_description")
            )
        return tokens_from(body, now)

    async def refresh(self, *, refresh_token: str, now: datetime) -> TokenSet:
        """New tokens; the refresh token rotates, so the answer's one must be stored before anything else."""
        try:
            response = await self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})
        except httpx.HTTPError as exc:
            raise IdentityUnavailable(f"the identity server did not answer ({type(exc).__name__})") from exc
        body = json_object(response)
        if response.status_code == 200 and "access_token" in body:
            return tokens_from(body, now)
        error = str(body.get("error") or "")
        if error == "invalid_grant":
            raise GrantRevoked("the refresh token was refused (invalid_grant)", status=response.status_code, code=error)
        if error in {"invalid_client", "unauthorized_client", "invalid_scope", "unsupported_grant_type"}:
            raise OurConfiguration(
                f"the identity server refused the firm's app registration ({error})",
                status=response.status_code,
                code=error,
            )
        raise IdentityUnavailable(
            f"the identity server answered HTTP {response.status_code}", status=response.status_code
        )

    async def _token_request(self, form: dict[str, str]) -> httpx.Response:
        return await self._http.post(
            f"{self._identity}/connect/token", data=form, auth=(self._client_id, self._client_secret)
        )

    async def approver_name(self, api: Api) -> str | None:
        """The name of the user who consented (None where the variant has no user list)."""
        try:
            async for item in _items(api, "users", self.page_size):
                if item.get("IsCurrentUser"):
                    name = " ".join(part for part in (item.get("FirstName"), item.get("LastName")) if part)
                    return name or item.get("Email")
        except NotOffered:
            return None
        return None

    # ------------------------------------------------------------------ reading

    def url(self, path: str) -> str:
        """The absolute URL of an API path."""
        return f"{self._api}/{path}"

    def rate_limit(self, path: str, *, scope: str | None = None) -> RateLimit:
        """eAccounting counts per client and endpoint URL: every distinct path is its own budget."""
        count, window = self._rate
        return RateLimit(key=f"{self.system.value}:{self._client_id}:{path}", count=count, window=window)

    def pace(self, response: httpx.Response) -> float | None:
        """eAccounting sends no rate-limit headers; its 429 says how long to wait (see `parse`)."""
        return None

    async def service_token(self, *, tenant: str | None, now: datetime) -> TokenSet:
        """eAccounting has no client-credentials access to a company's books: only a person's consent."""
        raise OurConfiguration("eAccounting connections are made by consent, not with client credentials")

    def parse(self, response: httpx.Response) -> Any:
        """The parsed body of a 200, or the typed error the answer means."""
        status = response.status_code
        if status == 200:
            try:
                return orjson.loads(response.content)
            except orjson.JSONDecodeError:
                kind = response.headers.get("content-type", "unknown content").split(";")[0]
                raise Transient(
                    f"Visma eAccounting answered 200 with a body that is not JSON ({kind})", status=200
                ) from None
        body = json_object(response)
        raw_code = body.get("ErrorCode")
        code = int(raw_code) if isinstance(raw_code, int | str) and str(raw_code).isdigit() else None
        message = str(body.get("DeveloperErrorMessage") or response.reason_phrase or "no message")
        label = f"eAccounting {code or status}"
        if error_id := body.get("ErrorId"):
            message = f"{message} (ErrorId {error_id})"
        if status == 429 or code == 4010:
            raise RateLimited(message, retry_after=_retry_after(response, message), code=label)
        if status == 401 or code == 4005:
            raise Unauthorized(message, status=status, code=label)
        if status >= 500 or code in {5000, 5001, 5002}:
            raise Transient(f"Visma eAccounting answered {status}: {message}", status=status, code=label)
        if code == 4009:
            raise NotOffered(message, status=status, code=label)
        if code in _PERMISSION_CODES:
            raise Refused(message, status=status, code=label)
        raise VismaError(f"Visma eAccounting refused the request (HTTP {status}): {message}", status=status, code=label)

    async def profile(self, api: Api, *, external_id: str | None = None) -> Profile:
        """The connected company's name, organisation number, variant and lock date."""
        body = await api.get("companysettings")
        locked = body.get("AccountingLockedTo")
        variant = body.get("ProductVariant")
        return Profile(
            name=str(body.get("Name") or "unnamed company"),
            org_number=body.get("CorporateIdentityNumber"),
            country=body.get("CountryCode"),
            currency=body.get("CurrencyCode"),
            locked_to=datetime.fromisoformat(locked).date() if locked else None,
            variant=VARIANTS.get(variant) if isinstance(variant, int) else None,
        )

    def books(self, profile: Profile, target: Target) -> tuple[Book, ...]:
        """Every book eAccounting offers this company; balances only where the variant has bookkeeping."""
        books = [Book.FISCAL_YEARS, Book.VAT_CODES, Book.ACCOUNTS, Book.OPENING_BALANCES, Book.VOUCHERS]
        if profile.variant not in _NO_BALANCES:
            books.append(Book.BALANCES)
        return tuple(books)

    def read(
        self, book: Book, api: Api, *, target: Target, profile: Profile, cursor: dict[str, Any] | None, notes: RunNotes
    ) -> AsyncIterator[Page]:
        """Read one book page by page from `cursor`."""
        readers: dict[Book, Callable[..., AsyncIterator[Page]]] = {
            Book.FISCAL_YEARS: self._fiscal_years,
            Book.VAT_CODES: self._vat_codes,
            Book.ACCOUNTS: self._accounts,
            Book.OPENING_BALANCES: self._opening_balances,
            Book.VOUCHERS: self._vouchers,
            Book.BALANCES: self._balances,
        }
        return readers[book](api, target=target, profile=profile, cursor=cursor, notes=notes)

    async def _fiscal_years(self, api: Api, *, notes: RunNotes, **_: Any) -> AsyncIterator[Page]:
        years: list[tuple[str, date, date]] = []
        async for page in _pages(api, "fiscalyears", self.page_size):
            rows = []
            for item in page:
                start, end = day(item["StartDate"]), day(item["EndDate"])
                years.append((item["Id"], start, end))
                rows.append((item["Id"], start, end, bool(item.get("IsLockedForAccounting"))))
            yield Page(rows, None)
        notes.values["fiscal_years"] = years

    async def _vat_codes(self, api: Api, **_: Any) -> AsyncIterator[Page]:
        body = await api.get("vatcodes")
        items = body if isinstance(body, list) else body.get("Data", [])
        yield Page(
            [(item["Id"], item.get("Code"), item.get("Description"), item.get("VatRate")) for item in items], None
        )

    async def _accounts(self, api: Api, *, target: Target, notes: RunNotes, **_: Any) -> AsyncIterator[Page]:
        for year_id, start, end in notes.values.get("fiscal_years", []):
            if end < target.reconciliation_start or start > target.today:
                continue
            async for page in _pages(api, f"accounts/{year_id}", self.page_size):
                yield Page(
                    [
                        (
                            year_id,
                            number,
                            str(item.get("Name") or ""),
                            bool(item.get("IsActive", True)),
                            item.get("VatCodeId"),
                            item.get("Type"),
                            instant(item.get("ModifiedUtc")),
                        )
                        for item in page
                        if (number := account_number(item.get("Number"), notes)) is not None
                    ],
                    None,
                )

    async def _opening_balances(self, api: Api, *, notes: RunNotes, **_: Any) -> AsyncIterator[Page]:
        async for page in _pages(api, "fiscalyears/openingbalances", self.page_size):
            yield Page(
                [
                    (number, item.get("Name"), item.get("Balance") or 0)
                    for item in page
                    if (number := account_number(item.get("Number"), notes)) is not None
                ],
                None,
            )

    async def _vouchers(
        self, api: Api, *, target: Target, cursor: dict[str, Any] | None, notes: RunNotes, **_: Any
    ) -> AsyncIterator[Page]:
        # Keyset paging on ModifiedUtc: ask for `ModifiedUtc ge W`, then move W to the newest value seen. A
        # voucher changed meanwhile gets a newer ModifiedUtc and so comes later; nothing shifts under us.
        # Only a page that is all one ModifiedUtc (a burst of ties) is paged by number within that value.
        cursor = cursor or {}
        watermark = instant(cursor.get("watermark"))
        if "position" in cursor:  # resuming a run that stopped part way
            current, page_number = instant(cursor["position"]), int(cursor.get("page", 1))
        else:
            current, page_number = (watermark - OVERLAP if watermark else None), 1
        newest = watermark
        while True:
            conditions = [f"VoucherDate ge {target.reconciliation_start.isoformat()}"]
            if current is not None:
                conditions.insert(0, f"ModifiedUtc ge {_odata_instant(current)}")
            body = await api.get(
                "vouchers",
                {
                    "$filter": " and ".join(conditions),
                    "$orderby": "ModifiedUtc",
                    "$page": page_number,
                    "$pagesize": self.page_size,
                },
            )
            items = body.get("Data") or []
            rows, page_newest = [], None
            for item in items:
                row = _voucher_row(item)
                if row is None:
                    skip(notes, f"voucher {item.get('Id')} came without a VoucherDate or Id")
                    continue
                rows.append(row)
                modified = row[6]
                if modified is not None and (page_newest is None or modified > page_newest):
                    page_newest = modified
            if page_newest is not None and (newest is None or page_newest > newest):
                newest = page_newest
            last = page_number >= int((body.get("Meta") or {}).get("TotalNumberOfPages") or 1) or not items
            if last:
                yield Page(rows, {"watermark": iso(newest)} if newest else {})
                return
            if page_newest is None or (current is not None and page_newest <= current):
                page_number += 1  # a page of ties: page on within the same ModifiedUtc
            else:
                current, page_number = page_newest, 1
            position = {"position": iso(current), "page": page_number} if current else {"page": page_number}
            yield Page(rows, {"watermark": iso(watermark), **position} if watermark else position)

    async def _balances(
        self,
        api: Api,
        *,
        target: Target,
        profile: Profile,
        cursor: dict[str, Any] | None,
        notes: RunNotes,
        **_: Any,
    ) -> AsyncIterator[Page]:
        # Balances move only where vouchers can still change: after the lock date. A first read (or a full
        # resync) takes every month from the reconciliation start.
        cursor = cursor or {}
        start = target.reconciliation_start
        if cursor.get("complete") and profile.locked_to is not None:
            start = max(start, profile.locked_to + timedelta(days=1))
        if resume := cursor.get("next"):
            start = max(start, date.fromisoformat(resume))
        ends = month_ends(start, target.today)
        for index, on in enumerate(ends):
            rows = [
                (number, on, item.get("Balance") or 0)
                async for item in _items(api, f"accountbalances/{on.isoformat()}", self.page_size)
                if (number := account_number(item.get("AccountNumber"), notes)) is not None
            ]
            following = ends[index + 1] if index + 1 < len(ends) else None
            yield Page(rows, {"complete": True} if following is None else {"next": following.isoformat()})

    # ------------------------------------------------------------------ problems

    def classify(self, error: VismaError, *, company: str) -> Problem:
        """What a refusal means for people, in the shared catalogue."""
        if isinstance(error, GrantRevoked | Unauthorized):
            return problems.consent_revoked(company=company, code=error.code or "eAccounting invalid_grant")
        code = int(error.code.split()[-1]) if error.code and error.code.split()[-1].isdigit() else None
        return problems.from_eaccounting(status=error.status or 0, error_code=code, company=company)


def month_ends(start: date, today: date) -> list[date]:
    """The last day of each month from `start` up to today, and today itself for the open month."""
    ends: list[date] = []
    year, month = start.year, start.month
    while True:
        end = date(year, month, calendar.monthrange(year, month)[1])
        if end >= today:
            ends.append(today)
            return ends
        ends.append(end)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _voucher_row(item: Mapping[str, Any]) -> tuple[Any, ...] | None:
    voucher_date = item.get("VoucherDate")
    if not voucher_date or not item.get("Id"):
        return None
    return (
        item["Id"],
        day(voucher_date),
        item.get("NumberAndNumberSeries"),
        item.get("NumberSeries"),
        item.get("VoucherType"),
        item.get("VoucherText"),
        instant(item.get("ModifiedUtc")),
        item.get("SourceId"),
        item.get("Attachments"),
        item.get("Rows") or [],
    )


async def _pages(api: Api, path: str, size: int) -> AsyncIterator[list[dict[str, Any]]]:
    page = 1
    while True:
        body = await api.get(path, {"$page": page, "$pagesize": size})
        if isinstance(body, list):  # some endpoints answer a bare array
            yield body
            return
        yield list(body.get("Data") or [])
        if page >= int((body.get("Meta") or {}).get("TotalNumberOfPages") or 1):
            return
        page += 1


async def _items(api: Api, path: str, size: int) -> AsyncIterator[dict[str, Any]]:
    async for page in _pages(api, path, size):
        for item in page:
            yield item


def _odata_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _retry_after(response: httpx.Response, message: str) -> float:
    # Visma puts the wait only in the prose: "... Try again in 55 seconds."
    header = response.headers.get("Retry-After")
    if header and header.isdigit():
        return float(header)
    words = message.split()
    for index, word in enumerate(words[:-1]):
        if word == "in" and words[index + 1].isdigit():
            return float(words[index + 1])
    return 60.0
