"""Visma Business NXT: a service (client-credentials) token from Visma Connect, and the books over GraphQL.

The module declares; the engine in bot/sync runs. Quirks that shape it:
- No consent and no tenant: our service application gets a token for itself, and a client company becomes
  readable when the client's NXT system administrator *activates* the integration: a User row named after our
  client_id with *Connect application* ticked, and one *Connect Application Access* row per company. Until then
  the company is missing from `availableCompanies` and `useCompany` answers null with an error.
- `useCompany(no:)` takes the company's Visma.net company id (`vismaNetCompanyId` in `availableCompanies`); it is
  what `Target.external_id` holds for an NXT company.
- Errors: a missing or expired token is HTTP 401 with nginx's HTML page, not JSON; everything else comes as
  HTTP 200 with an `errors` array whose entries carry `status_name`. Partial data next to errors is never used.
- NXT publishes no rate limit; we keep to a generous per-client window of our own.
- Vouchers are *lines* in NXT (one row per debit/credit pair). A run pages the lines changed since the last
  watermark (`changedTimestamp`, the server's local time without a zone), then reads every line of the
  vouchers those belong to, so each stored voucher is whole even when only one of its lines changed. Rows
  untouched since before October 2024 have no `changedTimestamp`; only the first (unfiltered) read sees them,
  which is all they need.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

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
from bot.visma.reading import NoConsent, json_object, skip

log = logging.getLogger(__name__)

SCOPE = "business-graphql-service-api:access-group-based-readonly"
GRAPHQL_PATH = "graphql-service"
PAGE_SIZE = 500
# Lines committed late can carry a changedTimestamp a little older than one already read; each run re-reads
# this much before its watermark (upserts make the overlap harmless).
OVERLAP = timedelta(minutes=5)
# NXT writes timestamps in the server's local time (Norway) and says so; we store instants in UTC.
SERVER_ZONE = ZoneInfo("Europe/Oslo")
# status_name values that pass by themselves: retried by the engine, never shown as the client's problem.
TRANSIENT_STATUS = frozenset({"InternalError", "Timeout", "CompanyUnavailable", "ServiceUnavailable"})
ACCOUNTS_YEAR = ""  # NXT keeps one chart of accounts for all years

CUSTOMERS_QUERY = "query customers { availableCustomers { totalCount items { name vismaNetCustomerId } } }"
COMPANIES_QUERY = (
    "query companies($customerNo: Long) { availableCompanies(customerNo: $customerNo) "
    "{ totalCount items { name vismaNetCompanyId vismaNetCustomerId } } }"
)


def table_query(table: str, columns: Sequence[str]) -> str:
    """The one query shape the module reads a company table with: a filtered, ordered page after a cursor."""
    kind = table[0].upper() + table[1:]
    return (
        f"query read($no: Int!, $first: Int!, $after: String, $filter: FilterExpression_{kind}, "
        f"$orderBy: [OrderBy_{kind}!]) {{ useCompany(no: $no) {{ {table}(first: $first, after: $after, "
        f"filter: $filter, orderBy: $orderBy) {{ totalCount pageInfo {{ hasNextPage endCursor }} "
        f"items {{ {' '.join(columns)} }} }} }} }}"
    )


@dataclass(frozen=True, slots=True)
class NxtCustomer:
    """A Visma customer (the contract holding companies) our client can see."""

    customer_id: int
    name: str


@dataclass(frozen=True, slots=True)
class NxtCompany:
    """A company our client may read: `company_no` is its vismaNetCompanyId, what `useCompany(no:)` takes."""

    name: str
    company_no: int
    customer_id: int


class BusinessNxt(NoConsent):
    """The Business NXT system module for one firm's service application."""

    system = AccountingSystem.BUSINESS_NXT
    label = "Visma Business NXT"
    grant = Grant.LISTED

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        token_url: str,
        api_url: str,
        client_id: str,
        client_secret: str,
        page_size: int = PAGE_SIZE,
        rate_limit: int = 600,
        rate_window: float = 60.0,
    ) -> None:
        self._http = http
        self._token_url = token_url
        self._api = api_url.rstrip("/")
        self._client_id = client_id
        self._client_secret = client_secret
        self._rate = (rate_limit, rate_window)
        self.page_size = page_size

    # ------------------------------------------------------------------ access

    async def service_token(self, *, tenant: str | None, now: datetime) -> TokenSet:
        """A client-credentials token for our service application (NXT has no tenant: access is per company)."""
        form = {"grant_type": "client_credentials", "scope": SCOPE}
        try:
            response = await self._http.post(self._token_url, data=form, auth=(self._client_id, self._client_secret))
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
        if error in {"invalid_client", "unauthorized_client", "invalid_scope", "unsupported_grant_type"}:
            raise OurConfiguration(
                f"Visma Connect refused the firm's Business NXT service application ({error})",
                status=response.status_code,
                code=error,
            )
        raise IdentityUnavailable(f"Visma Connect answered HTTP {response.status_code}", status=response.status_code)

    # ------------------------------------------------------------------ discovery (the modal's select)

    async def available_customers(self, api: Api) -> list[NxtCustomer]:
        """The Visma customers whose companies our client can see."""
        data = await api.post(GRAPHQL_PATH, {"query": CUSTOMERS_QUERY, "variables": {}})
        items = ((data or {}).get("availableCustomers") or {}).get("items") or []
        return [NxtCustomer(int(item["vismaNetCustomerId"]), str(item.get("name") or "")) for item in items]

    async def available_companies(self, api: Api, *, customer_ids: Sequence[int]) -> list[NxtCompany]:
        """The companies of these customers that are activated for our client (all customers when empty)."""
        found: dict[int, NxtCompany] = {}
        for customer in customer_ids or (None,):
            body = {"query": COMPANIES_QUERY, "variables": {"customerNo": customer}}
            data = await api.post(GRAPHQL_PATH, body)
            for item in ((data or {}).get("availableCompanies") or {}).get("items") or []:
                company = NxtCompany(
                    str(item.get("name") or ""), int(item["vismaNetCompanyId"]), int(item["vismaNetCustomerId"])
                )
                found[company.company_no] = company
        return sorted(found.values(), key=lambda company: company.name.casefold())

    # ------------------------------------------------------------------ reading

    def url(self, path: str) -> str:
        """The absolute URL of an API path (`graphql-service`)."""
        return f"{self._api}/{path}"

    def rate_limit(self, path: str, *, scope: str | None = None) -> RateLimit:
        """NXT publishes no limit; one generous window for all of our client's requests."""
        count, window = self._rate
        return RateLimit(key=f"{self.system.value}:{self._client_id}", count=count, window=window)

    def pace(self, response: httpx.Response) -> float | None:
        """NXT sends no rate-limit headers."""
        return None

    def parse(self, response: httpx.Response) -> Any:
        """The `data` of a 200 without errors, or the typed error the answer means."""
        status = response.status_code
        if status == 401:
            # nginx's HTML page, not JSON: the token is missing, expired or not accepted.
            raise Unauthorized("Business NXT did not accept the access token (HTTP 401)", status=401, code="NXT 401")
        if status == 429:
            header = response.headers.get("Retry-After", "")
            raise RateLimited(
                "Business NXT asked us to slow down", retry_after=float(header) if header.isdigit() else 60.0
            )
        if status >= 500:
            raise Transient(f"Visma Business NXT answered {status}", status=status, code=f"NXT {status}")
        if status != 200:
            raise VismaError(f"Visma Business NXT refused the request (HTTP {status})", status=status)
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            kind = response.headers.get("content-type", "unknown content").split(";")[0]
            raise Transient(
                f"Visma Business NXT answered 200 with a body that is not JSON ({kind})", status=200
            ) from None
        if not isinstance(body, dict):
            raise Transient("Visma Business NXT answered 200 with a body that is not a GraphQL answer", status=200)
        errors = body.get("errors") or []
        if errors:
            raise _error(errors[0] if isinstance(errors[0], dict) else {"message": str(errors[0])})
        return body.get("data")

    async def profile(self, api: Api, *, external_id: str | None = None) -> Profile:
        """The company's settings; the token does not say which company, so `external_id` (its number) must."""
        return await self.profile_for(api, _number(external_id))

    async def profile_for(self, api: Api, company_no: int) -> Profile:
        """The name, organisation number, country and currency of one company."""
        columns = ("name", "organisationNo", "countryCode", "currencyCode")
        items = [item async for page in self._pages(api, company_no, "companyInformation", columns) for item in page]
        info = items[0] if items else {}
        return Profile(
            name=str(info.get("name") or "unnamed company"),
            org_number=info.get("organisationNo"),
            country=info.get("countryCode"),
            currency=info.get("currencyCode"),
        )

    def books(self, profile: Profile, target: Target) -> tuple[Book, ...]:
        """The books this module reads from NXT."""
        return (Book.VAT_CODES, Book.ACCOUNTS, Book.VOUCHERS)

    def read(
        self, book: Book, api: Api, *, target: Target, profile: Profile, cursor: dict[str, Any] | None, notes: RunNotes
    ) -> AsyncIterator[Page]:
        """Read one book page by page from `cursor`."""
        readers: dict[Book, Callable[..., AsyncIterator[Page]]] = {
            Book.VAT_CODES: self._vat_codes,
            Book.ACCOUNTS: self._accounts,
            Book.VOUCHERS: self._vouchers,
        }
        return readers[book](api, target=target, cursor=cursor, notes=notes)

    async def _vat_codes(self, api: Api, *, target: Target, **_: Any) -> AsyncIterator[Page]:
        columns = ("taxCode", "description", "rate")
        async for items in self._pages(api, _company_no(target), "taxCode", columns):
            yield Page(
                [
                    (str(item["taxCode"]), str(item["taxCode"]), item.get("description"), _fraction(item.get("rate")))
                    for item in items
                ],
                None,
            )

    async def _accounts(self, api: Api, *, target: Target, notes: RunNotes, **_: Any) -> AsyncIterator[Page]:
        columns = ("accountNo", "name", "taxCode", "blocked", "changedTimestamp")
        async for items in self._pages(api, _company_no(target), "generalLedgerAccount", columns):
            rows = []
            for item in items:
                number = item.get("accountNo")
                if not isinstance(number, int):
                    skip(notes, f"an account number {number!r} that is not a number")
                    continue
                tax = item.get("taxCode")
                rows.append(
                    (
                        ACCOUNTS_YEAR,
                        number,
                        str(item.get("name") or ""),
                        not item.get("blocked"),
                        str(tax) if tax is not None else None,
                        None,
                        _instant(item.get("changedTimestamp")),
                    )
                )
            yield Page(rows, None)

    async def _vouchers(
        self, api: Api, *, target: Target, cursor: dict[str, Any] | None, notes: RunNotes, **_: Any
    ) -> AsyncIterator[Page]:
        cursor = cursor or {}
        no = _company_no(target)
        watermark = _local(cursor.get("watermark"))
        if "after" in cursor:  # resuming a run that stopped part way: the same query, from its cursor
            since, after = _local(cursor.get("since")), str(cursor["after"])
        else:
            since, after = (watermark - OVERLAP if watermark else None), None
        conditions: list[dict[str, Any]] = [{"voucherDate": {"_gte": _nxt_date(target.reconciliation_start)}}]
        if since is not None:
            conditions.insert(0, {"changedTimestamp": {"_gte": _nxt_stamp(since)}})
        newest = watermark
        changed = table_query("voucher", ("voucherNo", "changedTimestamp"))
        while True:
            variables = {
                "no": no,
                "first": self.page_size,
                "after": after,
                "filter": {"_and": conditions},
                "orderBy": [{"changedTimestamp": "ASC"}],
            }
            connection = _connection(await api.post(GRAPHQL_PATH, {"query": changed, "variables": variables}))
            numbers = sorted({item["voucherNo"] for item in connection["items"] if item.get("voucherNo") is not None})
            for item in connection["items"]:
                moment = _local(item.get("changedTimestamp"))
                if moment is not None and (newest is None or moment > newest):
                    newest = moment
            rows = await self._whole_vouchers(api, no, numbers, notes) if numbers else []
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage") or not info.get("endCursor"):
                yield Page(rows, {"watermark": _nxt_stamp(newest)} if newest else {})
                return
            after = str(info["endCursor"])
            position: dict[str, Any] = {"after": after}
            if since is not None:
                position["since"] = _nxt_stamp(since)
            if watermark is not None:
                position["watermark"] = _nxt_stamp(watermark)
            yield Page(rows, position)

    async def _whole_vouchers(
        self, api: Api, company_no: int, numbers: list[int], notes: RunNotes
    ) -> list[tuple[Any, ...]]:
        columns = (
            "voucherNo",
            "lineNo",
            "voucherDate",
            "voucherType",
            "debitAccountNo",
            "creditAccountNo",
            "amountDomestic",
            "taxCode",
            "text",
            "changedTimestamp",
        )
        lines: dict[int, list[dict[str, Any]]] = {}
        query_filter = {"voucherNo": {"_in": numbers}}
        order = [{"voucherNo": "ASC"}, {"lineNo": "ASC"}]
        async for items in self._pages(api, company_no, "voucher", columns, query_filter=query_filter, order=order):
            for item in items:
                lines.setdefault(int(item["voucherNo"]), []).append(item)
        rows = []
        for number in numbers:
            row = _voucher_row(number, lines.get(number, []))
            if row is None:
                skip(notes, f"voucher {number} came without a valid voucherDate")
                continue
            rows.append(row)
        return rows

    async def _pages(
        self,
        api: Api,
        company_no: int,
        table: str,
        columns: Sequence[str],
        *,
        query_filter: Mapping[str, Any] | None = None,
        order: Sequence[Mapping[str, str]] | None = None,
    ) -> AsyncIterator[list[dict[str, Any]]]:
        query = table_query(table, columns)
        after: str | None = None
        while True:
            variables = {
                "no": company_no,
                "first": self.page_size,
                "after": after,
                "filter": query_filter,
                "orderBy": order,
            }
            connection = _connection(await api.post(GRAPHQL_PATH, {"query": query, "variables": variables}), table)
            yield list(connection["items"])
            info = connection.get("pageInfo") or {}
            if not info.get("hasNextPage") or not info.get("endCursor"):
                return
            after = str(info["endCursor"])

    # ------------------------------------------------------------------ problems

    def classify(self, error: VismaError, *, company: str) -> Problem:
        """What a refusal means for people, in the shared catalogue."""
        code = error.code or ""
        name = code.removeprefix("NXT ") if code.startswith("NXT ") and not code[4:].isdigit() else None
        status = 401 if isinstance(error, Unauthorized | GrantRevoked) else error.status or 0
        return problems.from_business_nxt(status_name=name, status=status, company=company, client_id=self._client_id)


def _error(entry: Mapping[str, Any]) -> VismaError:
    extensions = entry.get("extensions") if isinstance(entry.get("extensions"), dict) else {}
    name = entry.get("status_name") or (extensions or {}).get("status_name")
    message = str(entry.get("message") or "no message")
    if not name:
        # A GraphQL syntax or validation error: the query we sent is wrong, nobody at the client can fix it.
        return VismaError(f"Visma Business NXT rejected our query: {message}", status=200, code="NXT query")
    label = f"NXT {name}"
    if name in TRANSIENT_STATUS:
        return Transient(f"Visma Business NXT answered {name}: {message}", status=200, code=label)
    return Refused(message, status=200, code=label)


def _company_no(target: Target) -> int:
    return _number(target.external_id)


def _number(external_id: str | None) -> int:
    if not external_id or not external_id.strip().isdigit():
        raise OurConfiguration("a Business NXT company needs its company number (vismaNetCompanyId) to be read")
    return int(external_id)


def _connection(data: Any, table: str = "voucher") -> dict[str, Any]:
    company = (data or {}).get("useCompany") if isinstance(data, dict) else None
    if company is None:
        # useCompany is null without an error only when NXT hides the company from us: treat it as no access.
        raise Refused("Business NXT gave no company context (useCompany is null)", status=200, code="NXT AccessDenied")
    connection = company.get(table)
    if not isinstance(connection, dict):
        raise Transient(f"Business NXT answered without the {table} table", status=200)
    return connection


def _voucher_row(number: int, lines: list[dict[str, Any]]) -> tuple[Any, ...] | None:
    if not lines:
        return None
    try:
        day = datetime.strptime(str(lines[0].get("voucherDate")), "%Y%m%d").date()
    except ValueError:
        return None
    rows: list[dict[str, Any]] = []
    for line in lines:
        amount = float(line.get("amountDomestic") or 0)
        debit, credit = line.get("debitAccountNo"), line.get("creditAccountNo")
        if amount < 0:  # a negative amount books the other way round
            debit, credit, amount = credit, debit, -amount
        text = line.get("text")
        tax = line.get("taxCode")
        # The line's VAT code belongs to its income or cost side (accounts from 3000), as eAccounting's rows have.
        vat_side = credit if isinstance(credit, int) and credit >= 3000 else debit
        for account, debit_amount, credit_amount in ((debit, amount, 0.0), (credit, 0.0, amount)):
            if not account:
                continue  # a one-sided line
            row: dict[str, Any] = {
                "AccountNumber": account,
                "DebitAmount": debit_amount,
                "CreditAmount": credit_amount,
                "TransactionText": text,
            }
            if tax is not None and account == vat_side:
                row["VatCodeId"] = str(tax)
            rows.append(row)
    moments = [moment for line in lines if (moment := _instant(line.get("changedTimestamp"))) is not None]
    return (
        str(number),
        day,
        str(number),
        None,
        lines[0].get("voucherType"),
        lines[0].get("text"),
        max(moments) if moments else None,
        None,
        None,
        rows,
    )


def _fraction(rate: Any) -> float | None:
    # NXT keeps VAT rates in percent; the store keeps fractions, as eAccounting sends them.
    return None if rate is None else float(rate) / 100


def _nxt_date(day: date) -> int:
    return int(day.strftime("%Y%m%d"))


def _local(value: Any) -> datetime | None:
    """An NXT timestamp as the naive local time it is."""
    if not value:
        return None
    text = str(value).replace(" ", "T")
    if "." in text:  # NXT may send up to seven fractional digits (datetime2); Python takes six
        head, _, fraction = text.partition(".")
        text = f"{head}.{fraction[:6]}"
    moment = datetime.fromisoformat(text)
    return moment.replace(tzinfo=None) if moment.tzinfo is None else moment.astimezone(SERVER_ZONE).replace(tzinfo=None)


def _nxt_stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _instant(value: Any) -> datetime | None:
    moment = _local(value)
    return moment.replace(tzinfo=SERVER_ZONE).astimezone(UTC) if moment else None
