"""Visma eAccounting's identity server and API v2, simulated for the demo and the tests.

They answer in the shapes of Visma's published Swagger (PascalCase, the Meta/Data page envelope, the
ErrorCode/DeveloperErrorMessage/ErrorId error body) and apply its rules: the scopes and product variants each
endpoint needs, OData $filter/$orderby/$select on every list, books that close the income statement at year end.
Its pitfalls are switches (the silent *default company*, missing full program permission, no bookkeeping module,
revoked consent, rate limits) and queued faults (`inject`, `inject_identity`) for the sync engine's tests.
"""

from __future__ import annotations

import asyncio
import base64
import bisect
import hashlib
import json
import math
import random
import re
import secrets
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import orjson
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from bot.simulators import odata
from bot.simulators.odata import Comparison, Conjunction, Expr, Kind, ODataError, OrderKey, Query

ACCESS_LIFETIME = timedelta(hours=1)
CODE_LIFETIME = timedelta(minutes=5)
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 50

# ---------------------------------------------------------------- scopes, variants and fields (from the Swagger)

KNOWN_SCOPES: tuple[str, ...] = (
    "ea:api",
    "offline_access",
    "ea:sales",
    "ea:sales_readonly",
    "ea:accounting",
    "ea:accounting_readonly",
    "ea:purchase",
    "ea:purchase_readonly",
    "ea:settings",
    "vls:api",
)
# What a read-only bot that also checks the company's organisation number asks for.
READ_SCOPES: tuple[str, ...] = (
    "ea:api",
    "offline_access",
    "ea:accounting_readonly",
    "ea:sales_readonly",
    "ea:purchase_readonly",
)
SCOPE_WORDS = {
    "ea:api": "Use the eAccounting API on your behalf",
    "offline_access": "Keep access when you are not logged in",
    "ea:sales": "Read and change sales data (customers, invoices, company settings)",
    "ea:sales_readonly": "Read sales data (customers, invoices, company settings)",
    "ea:accounting": "Read and change accounting data",
    "ea:accounting_readonly": "Read accounting data (vouchers, accounts, balances)",
    "ea:purchase": "Read and change purchase data (suppliers, supplier invoices, attachments)",
    "ea:purchase_readonly": "Read purchase data (suppliers, supplier invoices, attachments)",
    "ea:settings": "Change the company's settings",
    "vls:api": "Use the Visma Lønn (payroll) API",
}
# CompanySettingsApi.ProductVariant; the names are those the Swagger's "Available in … variants" use.
VARIANTS: dict[int, str] = {
    1: "Standard",
    2: "Invoicing",
    3: "Bookkeeping",
    4: "Solo",
    5: "Pro",
    6: "InvoicingCollaboration",
}


@dataclass(frozen=True, slots=True)
class EndpointRule:
    """Who may call an endpoint: any one of `scopes` in the token, and a company in one of `variants`."""

    scopes: frozenset[str]
    variants: frozenset[str]


_SALES = {"ea:sales", "ea:sales_readonly"}
_ACCOUNTING_SCOPES = {"ea:accounting", "ea:accounting_readonly"}
_PURCHASE = {"ea:purchase", "ea:purchase_readonly"}
_ALL_VARIANTS = frozenset({"Pro", "Standard", "Invoicing", "Bookkeeping", "Solo"})
_BOOKKEEPING_VARIANTS = frozenset({"Pro", "Standard", "Bookkeeping", "Solo"})


def _rule(scopes: set[str], variants: frozenset[str]) -> EndpointRule:
    return EndpointRule(frozenset(scopes), variants)


# The GET descriptions of Visma's Swagger ("Requires any of the following scopes", "Available in any of the
# following variants"), without `ea.local:mobile_user` (Visma's own app; today's OpenAPI no longer lists it).
ENDPOINT_RULES: dict[str, EndpointRule] = {
    "/v2/companysettings": _rule(_SALES, _ALL_VARIANTS),
    "/v2/fiscalyears": _rule(_SALES | _ACCOUNTING_SCOPES, _ALL_VARIANTS),
    "/v2/fiscalyears/openingbalances": _rule(_SALES | _ACCOUNTING_SCOPES, _ALL_VARIANTS),
    "/v2/accounts": _rule(_ACCOUNTING_SCOPES, _ALL_VARIANTS),
    "/v2/accounts/{fiscalyearId}": _rule(_ACCOUNTING_SCOPES, _ALL_VARIANTS),
    "/v2/vouchers": _rule(_ACCOUNTING_SCOPES, _ALL_VARIANTS),
    "/v2/vouchers/{fiscalyearId}": _rule(_ACCOUNTING_SCOPES, _ALL_VARIANTS),
    "/v2/accountbalances/{date}": _rule(_ACCOUNTING_SCOPES, _BOOKKEEPING_VARIANTS),
    "/v2/vatcodes": _rule(_ACCOUNTING_SCOPES, _ALL_VARIANTS),
    "/v2/users": _rule(_SALES | _PURCHASE | _ACCOUNTING_SCOPES, _BOOKKEEPING_VARIANTS),
}

_SCOPES_RE = re.compile(r"scopes:\s*(?:<br\s*/?>)?\s*<b>(.*?)</b>", re.IGNORECASE | re.DOTALL)
_VARIANTS_RE = re.compile(r"variants:\s*(?:<br\s*/?>)?\s*<b>(.*?)</b>", re.IGNORECASE | re.DOTALL)


def _names(text: str) -> frozenset[str]:
    return frozenset(name.strip() for name in text.split(",") if name.strip())


def load_endpoint_rules(spec: Path) -> dict[str, EndpointRule]:
    """The rules of each served endpoint as the Swagger's GET descriptions state them (built-in where it is silent)."""
    paths = json.loads(spec.read_text(encoding="utf-8")).get("paths", {})
    rules = dict(ENDPOINT_RULES)
    for path in ENDPOINT_RULES:
        description = str(paths.get(path, {}).get("get", {}).get("description", ""))
        scopes, variants = _SCOPES_RE.search(description), _VARIANTS_RE.search(description)
        if scopes and variants:
            rules[path] = EndpointRule(_names(scopes.group(1)) - {"ea.local:mobile_user"}, _names(variants.group(1)))
    return rules


# Field kinds of the Swagger definitions behind each list, for $filter/$orderby/$select.
FIELDS: dict[str, dict[str, Kind]] = {
    "FiscalYearApi": {
        "Id": "guid",
        "StartDate": "datetime",
        "EndDate": "datetime",
        "IsLockedForAccounting": "boolean",
        "BookkeepingMethod": "integer",
    },
    "OpeningBalancesApi": {"Name": "string", "Number": "integer", "Balance": "number"},
    "AccountApi": {
        "Name": "string",
        "Number": "string",
        "VatCodeId": "guid",
        "VatCodeDescription": "string",
        "FiscalYearId": "guid",
        "ReferenceCode": "string",
        "Type": "integer",
        "TypeDescription": "string",
        "ModifiedUtc": "datetime",
        "IsActive": "boolean",
        "IsProjectAllowed": "boolean",
        "IsCostCenterAllowed": "boolean",
        "IsBlockedForManualBooking": "boolean",
    },
    "VoucherApi": {
        "Id": "guid",
        "VoucherDate": "datetime",
        "VoucherText": "string",
        "Rows": "object",
        "NumberAndNumberSeries": "string",
        "NumberSeries": "string",
        "Attachments": "object",
        "ModifiedUtc": "datetime",
        "VoucherType": "integer",
        "SourceId": "guid",
    },
    "AccountBalanceAPI": {"AccountNumber": "integer", "AccountName": "string", "Balance": "number"},
    "UserApi": {
        "Id": "guid",
        "Email": "string",
        "FirstName": "string",
        "LastName": "string",
        "IsActive": "boolean",
        "IsCurrentUser": "boolean",
        "IsConsultant": "boolean",
    },
}

# ---------------------------------------------------------------- world state

API_FAULTS = frozenset({"rate_limit", "unavailable", "server_error", "html", "hang"})
IDENTITY_FAULTS = frozenset({"unavailable", "hang", "lost_response"})


@dataclass
class EAccountingSwitches:
    """Failure modes; settable from Python or with POST /_sim/switches on either app."""

    default_company: bool = False
    no_full_permission: bool = False
    no_bookkeeping: bool = False
    consent_revoked: bool = False
    scope_missing: bool = False
    no_user_access: bool = False
    licence_not_accepted: bool = False
    product_variant: bool = False  # the connected company is treated as the Invoicing variant
    outage: bool = False
    force_rate_limit: bool = False
    rate_limit_per_minute: int = 600  # requests per window, per client and endpoint URL
    rate_limit_window_seconds: float = 60.0
    refresh_grace_seconds: int = 60


@dataclass
class Fault:
    """A queued failure: the next `times` requests whose path starts with `path` get it."""

    kind: str
    path: str = "/v2/"
    times: int = 1
    seconds: float = 0.0


@dataclass
class SimCompany:
    """A company and its books."""

    id: str
    name: str
    org_number: str
    country: str
    currency: str
    fiscal_years: list[dict[str, Any]] = field(default_factory=list)
    accounts: dict[int, str] = field(default_factory=dict)
    vouchers: list[dict[str, Any]] = field(default_factory=list)
    product_variant: int = 1
    accounting_locked_to: date | None = None
    opening_balances: dict[int, Decimal] = field(default_factory=dict)
    vat_codes: list[dict[str, Any]] = field(default_factory=list)
    account_vat_codes: dict[int, str] = field(default_factory=dict)
    bulk: BulkVouchers | None = None


@dataclass
class SimUser:
    """A Visma Online user."""

    id: str
    email: str
    password: str
    first_name: str
    last_name: str
    companies: list[str]
    default_company: str | None = None


@dataclass
class Grant:
    """What one consent gave: user, company, scopes. Revoking it kills every token from it."""

    user: SimUser
    company: SimCompany
    scopes: list[str]
    client_id: str
    alive: bool = True


@dataclass
class Pending:
    """An authorization in progress (between the login page and the redirect back)."""

    client_id: str
    redirect_uri: str
    scopes: list[str]
    state: str
    challenge: str
    force_select: bool
    user: SimUser | None = None
    company: SimCompany | None = None


@dataclass
class ApiRequest:
    """One API request, for tests to count."""

    method: str
    path: str
    company: str | None
    status: int


def _day(value: date) -> str:
    return f"{value.isoformat()}T00:00:00"


def _utc(moment: datetime) -> str:
    moment = moment.astimezone(UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}".rstrip("0")
    return text + "Z"


def _span(year: Mapping[str, Any]) -> tuple[date, date]:
    return date.fromisoformat(year["StartDate"][:10]), date.fromisoformat(year["EndDate"][:10])


def _public(voucher: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in voucher.items() if not key.startswith("_")}


def _income(account: int) -> bool:
    # Classes 3–8 are the income statement in both the Norwegian and the Swedish (BAS) charts.
    return 3000 <= account <= 8999


def _first(lo: int, hi: int, holds: Callable[[int], bool]) -> int:
    """The first index in [lo, hi) where a monotone predicate holds (hi when it never does)."""
    while lo < hi:
        mid = (lo + hi) // 2
        if holds(mid):
            hi = mid
        else:
            lo = mid + 1
    return lo


class EAccountingWorld:
    """Shared state of the identity server and the API."""

    def __init__(self, *, now: Any = None, spec: Path | None = None) -> None:
        self.now: Callable[[], datetime] = now or (lambda: datetime.now(UTC))
        self.switches = EAccountingSwitches()
        self.endpoints = load_endpoint_rules(spec) if spec is not None and spec.is_file() else dict(ENDPOINT_RULES)
        self.clients: dict[str, tuple[str, set[str]]] = {}
        self.companies: dict[str, SimCompany] = {}
        self.users: dict[str, SimUser] = {}
        self.pending: dict[str, Pending] = {}
        self.codes: dict[str, tuple[Grant, str, str, datetime]] = {}
        self.access: dict[str, tuple[Grant, datetime]] = {}
        self.refresh: dict[str, Grant] = {}
        self.rotated: dict[str, tuple[Grant, datetime]] = {}
        self.requests: list[ApiRequest] = []
        self.faults: list[Fault] = []
        self.identity_faults: list[Fault] = []
        self.after_page: Callable[[str, int], None] | None = None
        self._windows: dict[tuple[str, str], deque[datetime]] = defaultdict(deque)

    def register_client(self, client_id: str, secret: str, redirect_uris: set[str]) -> None:
        """Accept an app registration."""
        self.clients[client_id] = (secret, set(redirect_uris))

    def company_id_by_org(self, org_number: str) -> str:
        """A company's id from its organisation number."""
        return next(company.id for company in self.companies.values() if company.org_number == org_number)

    def issued_secrets(self) -> set[str]:
        """Every code and token handed out (for the test that no secret reaches a log)."""
        return {*self.codes, *self.access, *self.refresh, *self.rotated}

    def switch(self, **values: Any) -> None:
        """Set switches by name."""
        names = {item.name for item in fields(EAccountingSwitches)}
        for name, value in values.items():
            if name not in names:
                raise KeyError(name)
            setattr(self.switches, name, value)

    def reset(self) -> None:
        """Switches back to their defaults; queued faults and rate-limit counts cleared."""
        self.switches = EAccountingSwitches()
        self.faults.clear()
        self.identity_faults.clear()
        self._windows.clear()

    def variant(self, company: SimCompany) -> int:
        """The company's product variant as the API sees it (the `product_variant` switch makes it Invoicing)."""
        return 2 if self.switches.product_variant else company.product_variant

    # ------------------------------------------------------------ faults

    def inject(self, kind: str, *, path: str = "/v2/", times: int = 1, seconds: float = 0.0) -> None:
        """Queue a fault for the next `times` API requests whose path starts with `path`."""
        if kind not in API_FAULTS:
            raise ValueError(f"unknown API fault {kind!r}; one of {', '.join(sorted(API_FAULTS))}")
        if times < 1:
            raise ValueError("times must be at least 1")
        self.faults.append(Fault(kind, path, times, seconds))

    def inject_identity(self, kind: str, *, times: int = 1, seconds: float = 0.0) -> None:
        """Queue a fault for the next `times` requests to /connect/token."""
        if kind not in IDENTITY_FAULTS:
            raise ValueError(f"unknown identity fault {kind!r}; one of {', '.join(sorted(IDENTITY_FAULTS))}")
        if times < 1:
            raise ValueError("times must be at least 1")
        self.identity_faults.append(Fault(kind, "/connect/token", times, seconds))

    @staticmethod
    def _take(queue: list[Fault], path: str) -> Fault | None:
        for fault in queue:
            if path.startswith(fault.path):
                fault.times -= 1
                if fault.times <= 0:
                    queue.remove(fault)
                return fault
        return None

    # ------------------------------------------------------------ tokens

    def _issue(self, grant: Grant) -> dict[str, Any]:
        access = secrets.token_urlsafe(32)
        self.access[access] = (grant, self.now() + ACCESS_LIFETIME)
        body: dict[str, Any] = {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": int(ACCESS_LIFETIME.total_seconds()),
            "scope": " ".join(grant.scopes),
        }
        if "offline_access" in grant.scopes:
            refresh = secrets.token_urlsafe(32)
            self.refresh[refresh] = grant
            body["refresh_token"] = refresh
        return body

    def _redeem(self, refresh_token: str, client_id: str) -> dict[str, Any] | None:
        """A new token set for a refresh token, or None (invalid_grant)."""
        now = self.now()
        grace = timedelta(seconds=self.switches.refresh_grace_seconds)
        for token, (_, rotated_at) in list(self.rotated.items()):
            if now - rotated_at >= grace:
                del self.rotated[token]
        # One-time refresh tokens with a grace period, as Visma's: a token rotated moments ago still works, so a
        # client that lost the answer can retry. Each reuse hands out another new set; the successor issued the
        # first time stays valid as well.
        grant = self.refresh.get(refresh_token) or self.rotated.get(refresh_token, (None, now))[0]
        if grant is None or not grant.alive or self.switches.consent_revoked or grant.client_id != client_id:
            return None
        if self.refresh.pop(refresh_token, None) is not None:
            self.rotated[refresh_token] = (grant, now)
        return self._issue(grant)

    def issue_tokens(
        self,
        company_id: str,
        *,
        client_id: str,
        scopes: Iterable[str] = READ_SCOPES,
        user_email: str | None = None,
    ) -> dict[str, Any]:
        """Tokens for a company without the browser flow (benchmarks, sync tests), as /connect/token answers."""
        company = self.companies[company_id]
        user = self.users[user_email] if user_email else None
        if user is None:
            user = next((item for item in self.users.values() if company_id in item.companies), None)
        if user is None:
            email = f"sync@{company.org_number}.example"
            user = SimUser(str(uuid.uuid5(uuid.NAMESPACE_URL, email)), email, "demo", "Sync", "User", [company_id])
            self.users[email] = user
        granted = [scope for scope in dict.fromkeys(scopes) if scope in KNOWN_SCOPES]
        return self._issue(Grant(user, company, granted, client_id))

    # ------------------------------------------------------------ books

    def fiscal_year_of(self, company: SimCompany, day: date) -> dict[str, Any] | None:
        """The fiscal year that contains a day."""
        return next((year for year in company.fiscal_years if _span(year)[0] <= day <= _span(year)[1]), None)

    def balances(self, company: SimCompany, on: date) -> dict[int, Decimal]:
        """Each account's balance at the end of a day, as /v2/accountbalances/{date} reports it."""
        starts = sorted(_span(year)[0] for year in company.fiscal_years)
        containing = self.fiscal_year_of(company, on)
        earlier = [start for start in starts if start <= on]
        year_start = _span(containing)[0] if containing else (earlier[-1] if earlier else None)
        totals: dict[int, Decimal] = defaultdict(Decimal)
        if starts and on >= starts[0]:
            for number, amount in company.opening_balances.items():
                totals[number] += amount
        if company.bulk is not None:
            company.bulk.add_balances(totals, on=on, year_start=year_start)
            return {number: total for number, total in totals.items() if total}
        for voucher in company.vouchers:
            day = voucher["VoucherDate"][:10]
            if day > on.isoformat():
                continue
            for row in voucher["Rows"]:
                number = row["AccountNumber"]
                # Visma closes the income statement at year end: classes 3–8 start every fiscal year at zero,
                # while balance-sheet accounts carry over.
                if _income(number) and (year_start is None or day < year_start.isoformat()):
                    continue
                totals[number] += Decimal(str(row["DebitAmount"])) - Decimal(str(row["CreditAmount"]))
        return dict(totals)

    def book_voucher(
        self,
        company_id: str,
        *,
        when: date | None = None,
        amount: Decimal | float | int = Decimal("1250.00"),
        text: str | None = None,
    ) -> dict[str, Any]:
        """Book a balanced cash-sale voucher now (ModifiedUtc = now) in the fiscal year of `when` (default today)."""
        company = self.companies[company_id]
        now = self.now()
        day = when or now.date()
        year = self.fiscal_year_of(company, day)
        if year is None:
            raise ValueError(f"{company.name} has no fiscal year containing {day.isoformat()}")
        chart = _CHARTS[company.country]
        codes = {item["Code"]: item for item in company.vat_codes}
        label = text or chart.cash_sale
        rows = _rows(company, codes, label, chart.bank, chart.sales, chart.sales_code, Decimal(str(amount)), {})
        number = (company.bulk.size() if company.bulk else len(company.vouchers)) + 1
        voucher = _voucher(
            str(uuid.uuid4()), day, label, number, _utc(now), rows, source=str(uuid.uuid4()), attachment=None
        )
        if company.bulk is not None:
            company.bulk.extra.append(voucher)
            company.bulk.version += 1
        else:
            company.vouchers.append({**voucher, "_fiscal_year": year["Id"]})
        return dict(voucher)

    def touch_voucher(self, company_id: str, voucher_id: str) -> dict[str, Any]:
        """Change a voucher's text and set its ModifiedUtc to now, as an edit in eAccounting would."""
        company = self.companies[company_id]
        now = self.now()
        if company.bulk is not None:
            return company.bulk.touch(voucher_id, now)
        voucher = next((item for item in company.vouchers if item["Id"] == voucher_id), None)
        if voucher is None:
            raise KeyError(voucher_id)
        voucher["VoucherText"] = _edited(voucher["VoucherText"], now)
        voucher["ModifiedUtc"] = _utc(now)
        return _public(voucher)


def _edited(text: str, now: datetime) -> str:
    return f"{text.split(' (endret')[0]} (endret {now.astimezone(UTC):%Y-%m-%d %H:%M:%S})"[:100]


# ---------------------------------------------------------------- charts of accounts and seeded books


@dataclass(frozen=True)
class _Chart:
    accounts: dict[int, str]
    # (text, debit account, credit account, VAT code or None, (lowest, highest) amount incl. VAT)
    patterns: list[tuple[str, int, int, str | None, tuple[int, int]]]
    # (code, description, rate, VAT account or None)
    vat_codes: list[tuple[str, str, Decimal, int | None]]
    output_codes: frozenset[str]
    account_vat: dict[int, str]
    opening: dict[int, Decimal]
    bank: int
    sales: int
    sales_code: str
    cash_sale: str
    result_account: int
    equity_account: int
    closing_text: str
    tax_text: str


_NO = _Chart(
    accounts={
        1500: "Kundefordringer",
        1920: "Bankinnskudd",
        2000: "Aksjekapital",
        2050: "Annen egenkapital",
        2400: "Leverandørgjeld",
        2700: "Utgående merverdiavgift",
        2710: "Inngående merverdiavgift",
        2780: "Påløpt arbeidsgiveravgift",
        3000: "Salgsinntekt, avgiftspliktig",
        4000: "Innkjøp av råvarer",
        5000: "Lønn til ansatte",
        5400: "Arbeidsgiveravgift",
        6300: "Leie lokale",
        6340: "Lys, varme",
        6800: "Kontorrekvisita",
        7140: "Reisekostnad",
        8800: "Årsresultat",
    },
    patterns=[
        ("Kontantsalg bakevarer", 1920, 3000, "31", (800, 9000)),
        ("Faktura kunde catering", 1500, 3000, "3", (2000, 25000)),
        ("Innbetaling kunde", 1920, 1500, None, (2000, 25000)),
        ("Varekjøp mel og gjær", 4000, 2400, "11", (1500, 18000)),
        ("Betaling leverandør", 2400, 1920, None, (1500, 18000)),
        ("Husleie", 6300, 1920, None, (14500, 14500)),
        ("Strøm", 6340, 1920, "1", (900, 4200)),
        ("Kontorrekvisita", 6800, 1920, "1", (150, 1600)),
        ("Reise", 7140, 1920, None, (300, 3500)),
        ("Lønn", 5000, 1920, None, (18000, 42000)),
        ("Arbeidsgiveravgift", 5400, 2780, None, (2500, 6000)),
    ],
    # The standard SAF-T tax codes Norwegian eAccounting uses.
    vat_codes=[
        ("0", "Ingen mva-behandling (anskaffelser)", Decimal("0"), None),
        ("1", "Fradrag for inngående mva, høy sats", Decimal("0.25"), 2710),
        ("11", "Fradrag for inngående mva, middels sats", Decimal("0.15"), 2710),
        ("13", "Fradrag for inngående mva, lav sats", Decimal("0.12"), 2710),
        ("3", "Utgående mva, høy sats", Decimal("0.25"), 2700),
        ("31", "Utgående mva, middels sats", Decimal("0.15"), 2700),
        ("33", "Utgående mva, lav sats", Decimal("0.12"), 2700),
        ("5", "Ingen utgående mva (innenfor mva-loven)", Decimal("0"), None),
        ("6", "Ingen utgående mva (utenfor mva-loven)", Decimal("0"), None),
        ("52", "Utførsel av varer og tjenester", Decimal("0"), None),
    ],
    output_codes=frozenset({"3", "31", "33", "5", "6", "52"}),
    account_vat={3000: "3", 4000: "11", 6340: "1", 6800: "1"},
    opening={
        1920: Decimal("214350.00"),
        1500: Decimal("38900.00"),
        2400: Decimal("-46250.00"),
        2000: Decimal("-30000.00"),
        2050: Decimal("-177000.00"),
    },
    bank=1920,
    sales=3000,
    sales_code="3",
    cash_sale="Kontantsalg",
    result_account=8800,
    equity_account=2050,
    closing_text="Årsavslutning",
    tax_text="MVA",
)

_SE = _Chart(
    accounts={
        1510: "Kundfordringar",
        1930: "Företagskonto",
        2081: "Aktiekapital",
        2091: "Balanserad vinst eller förlust",
        2099: "Årets resultat",
        2440: "Leverantörsskulder",
        2611: "Utgående moms på försäljning inom Sverige, 25 %",
        2621: "Utgående moms på försäljning inom Sverige, 12 %",
        2631: "Utgående moms på försäljning inom Sverige, 6 %",
        2641: "Debiterad ingående moms",
        3041: "Försäljning tjänster inom Sverige, 25 % moms",
        5010: "Lokalhyra",
        5800: "Resekostnader",
        6110: "Kontorsmateriel",
        6212: "Mobiltelefon",
        6540: "IT-tjänster",
        8999: "Årets resultat",
    },
    patterns=[
        ("Faktura konsulttjänster", 1510, 3041, "MP1", (12000, 95000)),
        ("Inbetalning kund", 1930, 1510, None, (12000, 95000)),
        ("Lokalhyra", 5010, 1930, None, (9500, 9500)),
        ("Mobilabonnemang", 6212, 2440, "IP1", (300, 900)),
        ("Betalning leverantör", 2440, 1930, None, (300, 900)),
        ("IT-tjänster", 6540, 1930, "IP1", (500, 4500)),
        ("Kontorsmaterial", 6110, 1930, "IP1", (150, 1600)),
        ("Resa", 5800, 1930, None, (400, 6000)),
    ],
    vat_codes=[
        ("MP1", "Utgående moms 25 %", Decimal("0.25"), 2611),
        ("MP2", "Utgående moms 12 %", Decimal("0.12"), 2621),
        ("MP3", "Utgående moms 6 %", Decimal("0.06"), 2631),
        ("MF", "Momsfri försäljning", Decimal("0"), None),
        ("IP1", "Ingående moms 25 %", Decimal("0.25"), 2641),
        ("IP2", "Ingående moms 12 %", Decimal("0.12"), 2641),
        ("IP3", "Ingående moms 6 %", Decimal("0.06"), 2641),
    ],
    output_codes=frozenset({"MP1", "MP2", "MP3", "MF"}),
    account_vat={3041: "MP1", 6110: "IP1", 6212: "IP1", 6540: "IP1"},
    opening={
        1930: Decimal("412000.00"),
        1510: Decimal("96500.00"),
        2440: Decimal("-38500.00"),
        2081: Decimal("-50000.00"),
        2091: Decimal("-420000.00"),
    },
    bank=1930,
    sales=3041,
    sales_code="MP1",
    cash_sale="Försäljning",
    result_account=8999,
    equity_account=2099,
    closing_text="Bokslut",
    tax_text="Moms",
)
_CHARTS: dict[str, _Chart] = {"NO": _NO, "SE": _SE}


def _ids(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _setup(company: SimCompany, rng: random.Random, *, years: Iterable[int], opening_scale: Decimal) -> None:
    """Fiscal years (all but the last locked), chart of accounts, VAT codes and opening balances."""
    chart = _CHARTS[company.country]
    years = list(years)
    for year in years:
        company.fiscal_years.append(
            {
                "Id": _ids(rng),
                "StartDate": _day(date(year, 1, 1)),
                "EndDate": _day(date(year, 12, 31)),
                "IsLockedForAccounting": year != years[-1],
                "BookkeepingMethod": 0,
            }
        )
    if len(years) > 1:
        company.accounting_locked_to = date(years[-2], 12, 31)
    company.accounts = dict(chart.accounts)
    for code, description, rate, account in chart.vat_codes:
        item: dict[str, Any] = {"Id": _ids(rng), "Code": code, "Description": description, "VatRate": float(rate)}
        item["RelatedAccounts"] = {"AccountNumber1": account} if account else {}
        company.vat_codes.append(item)
    by_code = {item["Code"]: item["Id"] for item in company.vat_codes}
    company.account_vat_codes = {number: by_code[code] for number, code in chart.account_vat.items()}
    company.opening_balances = {number: amount * opening_scale for number, amount in chart.opening.items()}


def _row(company: SimCompany, number: int, debit: Decimal, credit: Decimal, text: str) -> dict[str, Any]:
    return {
        "AccountNumber": number,
        "AccountDescription": company.accounts[number],
        "DebitAmount": float(debit),
        "CreditAmount": float(credit),
        "TransactionText": text,
    }


def _rows(
    company: SimCompany,
    codes: Mapping[str, Mapping[str, Any]],
    text: str,
    debit: int,
    credit: int,
    code: str | None,
    amount: Decimal,
    tags: Mapping[int, Mapping[str, str]],
) -> list[dict[str, Any]]:
    """Balanced rows for `amount` (incl. VAT): the net on the income or cost account carries the VAT code."""
    chart = _CHARTS[company.country]
    zero = Decimal(0)
    if code is None:
        rows = [_row(company, debit, amount, zero, text), _row(company, credit, zero, amount, text)]
    else:
        vat = codes[code]
        rate = Decimal(str(vat["VatRate"]))
        net = (amount / (1 + rate)).quantize(Decimal("0.01"))
        tax = amount - net
        tax_account = vat["RelatedAccounts"]["AccountNumber1"]
        if code in chart.output_codes:
            net_row = _row(company, credit, zero, net, text)
            rows = [
                _row(company, debit, amount, zero, text),
                net_row,
                _row(company, tax_account, zero, tax, chart.tax_text),
            ]
        else:
            net_row = _row(company, debit, net, zero, text)
            rows = [
                net_row,
                _row(company, tax_account, tax, zero, chart.tax_text),
                _row(company, credit, zero, amount, text),
            ]
        net_row["VatCodeId"] = vat["Id"]
        net_row["VatCodeAndPercent"] = f"{code} ({float(rate * 100):g}%)"
    for row in rows:
        row.update(tags.get(row["AccountNumber"], {}))
    return rows


def _voucher(
    voucher_id: str,
    day: date,
    text: str,
    number: int,
    modified: str,
    rows: list[dict[str, Any]],
    *,
    source: str,
    attachment: str | None,
) -> dict[str, Any]:
    return {
        "Id": voucher_id,
        "VoucherDate": _day(day),
        "VoucherText": text,
        "NumberAndNumberSeries": f"A {number}",
        "NumberSeries": "A",
        "VoucherType": 2,
        "SourceId": source,
        "ModifiedUtc": modified,
        # Every voucher has its attachment link; only some have a document (a scanned receipt) attached.
        "Attachments": {
            "DocumentId": voucher_id,
            "DocumentType": 3,
            "AttachmentIds": [attachment] if attachment else [],
        },
        "Rows": rows,
    }


def _books(company: SimCompany, *, seed: int, per_month: int, months: int, opening_scale: Decimal) -> None:
    rng = random.Random(seed)
    chart = _CHARTS[company.country]
    _setup(company, rng, years=(2025, 2026), opening_scale=opening_scale)
    codes = {item["Code"]: item for item in company.vat_codes}
    shop, production, catering = _ids(rng), _ids(rng), _ids(rng)
    tags = {
        chart.sales: {"CostCenterItemId1": shop},
        4000: {"CostCenterItemId1": production},
    }
    number = 0
    for index, (year, last_month) in enumerate(((2025, 12), (2026, months))):
        fiscal_year = company.fiscal_years[index]["Id"]
        for month in range(1, last_month + 1):
            for _ in range(per_month):
                number += 1
                text, debit, credit, code, (low, high) = rng.choice(chart.patterns)
                day = date(year, month, rng.randint(1, 28))
                row_tags = dict(tags)
                if "catering" in text:
                    row_tags[chart.sales] = {**tags[chart.sales], "ProjectId": catering}
                rows = _rows(company, codes, text, debit, credit, code, Decimal(rng.randint(low, high)), row_tags)
                attachment = _ids(rng) if code is not None and code not in chart.output_codes else None
                voucher = _voucher(
                    _ids(rng),
                    day,
                    text,
                    number,
                    f"{day.isoformat()}T12:00:00Z",
                    rows,
                    source=_ids(rng),
                    attachment=attachment,
                )
                company.vouchers.append({**voucher, "_fiscal_year": fiscal_year})
        if year == 2025:
            number += 1
            company.vouchers.append(_closing(company, chart, rng, number, year, fiscal_year))
    company.vouchers.sort(key=lambda voucher: voucher["VoucherDate"])


def _closing(
    company: SimCompany, chart: _Chart, rng: random.Random, number: int, year: int, fiscal_year: str
) -> dict[str, Any]:
    """The year-end closing of a locked year: its result moves from the result account to equity."""
    result = sum(
        (
            Decimal(str(row["DebitAmount"])) - Decimal(str(row["CreditAmount"]))
            for voucher in company.vouchers
            if voucher["_fiscal_year"] == fiscal_year
            for row in voucher["Rows"]
            if _income(row["AccountNumber"])
        ),
        Decimal(0),
    )
    text = f"{chart.closing_text} {year}"
    zero = Decimal(0)
    # A profit is a credit balance on the income statement (result < 0): debit the result account, credit equity.
    rows = [
        _row(company, chart.result_account, max(-result, zero), max(result, zero), text),
        _row(company, chart.equity_account, max(result, zero), max(-result, zero), text),
    ]
    # Closed in January: ModifiedUtc is weeks after the VoucherDate.
    voucher = _voucher(
        _ids(rng),
        date(year, 12, 31),
        text,
        number,
        f"{year + 1}-01-15T09:30:00Z",
        rows,
        source=_ids(rng),
        attachment=None,
    )
    return {**voucher, "_fiscal_year": fiscal_year}


def seed_world(*, now: Any = None, spec: Path | None = None) -> EAccountingWorld:
    """Realistic companies and users: Ola approves for Nordlys Bakeri AS, and Feil Firma AS is his default."""
    world = EAccountingWorld(now=now, spec=spec)
    nordlys = SimCompany(str(uuid.UUID(int=1)), "Nordlys Bakeri AS", "988077917", "NO", "NOK")
    feil = SimCompany(str(uuid.UUID(int=2)), "Feil Firma AS", "923609016", "NO", "NOK")
    fjall = SimCompany(str(uuid.UUID(int=3)), "Fjällbrynt Konsult AB", "5560360793", "SE", "SEK", product_variant=5)
    _books(nordlys, seed=1, per_month=24, months=10, opening_scale=Decimal(1))
    _books(feil, seed=2, per_month=6, months=10, opening_scale=Decimal("0.25"))
    _books(fjall, seed=3, per_month=10, months=10, opening_scale=Decimal(1))
    for company in (nordlys, feil, fjall):
        world.companies[company.id] = company
    world.users["ola@nordlysbakeri.no"] = SimUser(
        str(uuid.UUID(int=101)),
        "ola@nordlysbakeri.no",
        "demo",
        "Ola",
        "Nordmann",
        [nordlys.id, feil.id],
        default_company=feil.id,
    )
    world.users["anna@fjallbrynt.se"] = SimUser(
        str(uuid.UUID(int=102)), "anna@fjallbrynt.se", "demo", "Anna", "Lindqvist", [fjall.id]
    )
    return world


# ---------------------------------------------------------------- the bulk company (ingest benchmark)

_PERIOD = 1009  # bulk vouchers repeat their amounts with this (prime) period; ids, dates and times do not
_BULK_COSTS = (4000, 6300, 6340, 6800, 7140)
_SIXTY = [f"{n:02d}" for n in range(60)]
_CLOCK = [f"{hour:02d}:{minute:02d}" for hour in range(24) for minute in range(60)]


@dataclass(frozen=True)
class _Pattern:
    text: str
    rows: list[dict[str, Any]]  # shared by every voucher of the pattern; never mutated
    net: dict[int, int]  # account -> debit minus credit, in øre


@dataclass
class _Overlay:
    """Changed and new vouchers that pass one filter, in the order of one $orderby, with their merged ranks."""

    items: list[tuple[tuple[Any, ...], dict[str, Any]]]
    ranks: list[int | None]


class BulkVouchers:
    """Vouchers computed from their index, so a million cost no memory; changes live in a small overlay.

    Voucher i is dated `first_day + i * days // count` and modified at `modified_from + i // 2` seconds (so pairs
    share a ModifiedUtc), and its Id and SourceId grow with i: all four are monotone in i, so a filter or an
    ascending $orderby on them is a binary search on the index plus a merge with the changed vouchers.
    """

    MONOTONE = ("ModifiedUtc", "VoucherDate", "Id", "SourceId")

    def __init__(
        self,
        company: SimCompany,
        *,
        count: int,
        rows_per_voucher: int,
        seed: int,
        first_day: date,
        last_day: date,
        modified_from: datetime,
    ) -> None:
        if rows_per_voucher < 2:
            raise ValueError("a voucher needs at least two rows")
        rng = random.Random(seed)
        self.count = count
        self.first_day = first_day
        self.days = (last_day - first_day).days + 1
        self.modified_from = modified_from.astimezone(UTC).replace(microsecond=0)
        clock = self.modified_from.time()
        self._base_second = clock.hour * 3600 + clock.minute * 60 + clock.second
        self._modified_days: dict[int, str] = {}
        # Ids differ between companies (GUIDs are global) but grow with the index within one.
        tag = hashlib.sha256(f"{company.id}/{seed}".encode()).hexdigest()[:8]
        self._id_prefix = f"{tag}-b0c0-4000-8000-"
        self._source_prefix = f"{tag}-50c0-4000-9000-"
        self._day_text = [_day(first_day + timedelta(days=offset)) for offset in range(self.days)]
        self.patterns = [self._pattern(company, rng, rows_per_voucher) for _ in range(_PERIOD)]
        accounts = sorted({number for pattern in self.patterns for number in pattern.net})
        self._cumulative: list[dict[int, int]] = [dict.fromkeys(accounts, 0)]
        for pattern in self.patterns:
            step = dict(self._cumulative[-1])
            for number, cents in pattern.net.items():
                step[number] += cents
            self._cumulative.append(step)
        self.changed: dict[int, tuple[str, datetime]] = {}
        self.extra: list[dict[str, Any]] = []
        self.version = 0
        self._cache: dict[tuple[Any, ...], _Overlay] = {}
        self.monotone: dict[str, Callable[[int], Any]] = {
            "ModifiedUtc": self.modified,
            "VoucherDate": lambda i: datetime.combine(self.day(i), datetime.min.time(), UTC),
            "Id": self.ident,
            "SourceId": lambda i: f"{self._source_prefix}{i:012x}",
        }

    @staticmethod
    def _pattern(company: SimCompany, rng: random.Random, rows: int) -> _Pattern:
        bank = _CHARTS[company.country].bank
        sale = rng.random() < 0.4
        amounts = [rng.randint(100, 2_500_000) for _ in range(rows - 1)]
        total = sum(amounts)
        text = "Dagsoppgjør kasse" if sale else "Leverandørfaktura"
        lines: list[tuple[int, int, int]] = []
        if sale:
            lines.append((bank, total, 0))
            lines.extend((3000, 0, cents) for cents in amounts)
        else:
            lines.extend((rng.choice(_BULK_COSTS), cents, 0) for cents in amounts)
            lines.append((rng.choice((bank, 2400)), 0, total))
        net: dict[int, int] = defaultdict(int)
        for number, debit, credit in lines:
            net[number] += debit - credit
        built = [
            {
                "AccountNumber": number,
                "AccountDescription": company.accounts[number],
                "DebitAmount": debit / 100,
                "CreditAmount": credit / 100,
                "TransactionText": text,
            }
            for number, debit, credit in lines
        ]
        return _Pattern(text, built, dict(net))

    def size(self) -> int:
        """How many vouchers there are, seeded and booked."""
        return self.count + len(self.extra)

    def day(self, i: int) -> date:
        """VoucherDate of seeded voucher i."""
        return self.first_day + timedelta(days=i * self.days // self.count)

    def modified(self, i: int) -> datetime:
        """ModifiedUtc of seeded voucher i before any change."""
        return self.modified_from + timedelta(seconds=i // 2)

    def _modified_text(self, i: int) -> str:
        # What _utc(self.modified(i)) gives, without datetime arithmetic: a page formats a thousand of these.
        days, rest = divmod(self._base_second + i // 2, 86400)
        day = self._modified_days.get(days)
        if day is None:
            day = self._modified_days[days] = (self.modified_from.date() + timedelta(days=days)).isoformat()
        minutes, seconds = divmod(rest, 60)
        return f"{day}T{_CLOCK[minutes]}:{_SIXTY[seconds]}Z"

    def ident(self, i: int) -> str:
        """Id of seeded voucher i."""
        return f"{self._id_prefix}{i:012x}"

    def voucher(self, i: int) -> dict[str, Any]:
        """Voucher i as the API shows it (seeded ones first, then booked ones)."""
        if i >= self.count:
            return self.extra[i - self.count]
        pattern = self.patterns[i % _PERIOD]
        changed = self.changed.get(i)
        text, modified = (changed[0], _utc(changed[1])) if changed else (pattern.text, self._modified_text(i))
        number = f"{i:012x}"
        ident = self._id_prefix + number
        return {
            "Id": ident,
            "VoucherDate": self._day_text[i * self.days // self.count],
            "VoucherText": text,
            "NumberAndNumberSeries": f"A {i + 1}",
            "NumberSeries": "A",
            "VoucherType": 2,
            "SourceId": self._source_prefix + number,
            "ModifiedUtc": modified,
            "Attachments": {"DocumentId": ident, "DocumentType": 3, "AttachmentIds": []},
            "Rows": pattern.rows,
        }

    def index_of(self, voucher_id: str) -> int | None:
        """The index of a voucher by Id."""
        if voucher_id.startswith(self._id_prefix):
            i = int(voucher_id[len(self._id_prefix) :], 16)
            return i if i < self.count else None
        return next((self.count + k for k, item in enumerate(self.extra) if item["Id"] == voucher_id), None)

    def touch(self, voucher_id: str, now: datetime) -> dict[str, Any]:
        """Change one voucher's text and ModifiedUtc."""
        i = self.index_of(voucher_id)
        if i is None:
            raise KeyError(voucher_id)
        if i < self.count:
            self.changed[i] = (_edited(self.patterns[i % _PERIOD].text, now), now)
        else:
            item = self.extra[i - self.count]
            item["VoucherText"] = _edited(item["VoucherText"], now)
            item["ModifiedUtc"] = _utc(now)
        self.version += 1
        return self.voucher(i)

    # ------------------------------------------------------------ balances

    def _net(self, end: int) -> dict[int, int]:
        rounds, rest = divmod(end, _PERIOD)
        full, part = self._cumulative[_PERIOD], self._cumulative[rest]
        return {number: rounds * full[number] + part[number] for number in full}

    def add_balances(self, totals: dict[int, Decimal], *, on: date, year_start: date | None) -> None:
        """Add the vouchers' movements up to `on` (income accounts only from `year_start`) to `totals`."""
        end = _first(0, self.count, lambda i: self.day(i) > on)
        start = end if year_start is None else _first(0, self.count, lambda i: self.day(i) >= year_start)
        upto, before_year = self._net(end), self._net(min(start, end))
        for number, cents in upto.items():
            moved = cents - before_year[number] if _income(number) else cents
            totals[number] += Decimal(moved) / 100
        for voucher in self.extra:
            day = date.fromisoformat(voucher["VoucherDate"][:10])
            if day > on:
                continue
            for row in voucher["Rows"]:
                if _income(row["AccountNumber"]) and (year_start is None or day < year_start):
                    continue
                totals[row["AccountNumber"]] += Decimal(str(row["DebitAmount"])) - Decimal(str(row["CreditAmount"]))

    # ------------------------------------------------------------ paging

    def page(self, query: Query, scope: list[Comparison], start: int, size: int) -> tuple[list[dict[str, Any]], int]:
        """One page of the filtered, ordered vouchers and the total; `scope` adds conditions (a fiscal year)."""
        fast = self._fast_page(query, scope, start, size)
        if fast is not None:
            return fast
        expr = _and(query.filter, scope)
        # A filter or order on other fields: a scan, as a database without an index would do.
        rows = odata.apply(Query(expr, query.orderby), (self.voucher(i) for i in range(self.size())))
        return rows[start : start + size], len(rows)

    def _fast_page(
        self, query: Query, scope: list[Comparison], start: int, size: int
    ) -> tuple[list[dict[str, Any]], int] | None:
        conditions = odata.conjuncts(query.filter)
        if conditions is None:
            return None
        conditions = conditions + scope
        if any(c.field not in self.monotone or c.op == "ne" or c.value is None for c in conditions):
            return None
        if any(key.descending or key.field not in self.monotone for key in query.orderby):
            return None
        lo, hi = 0, self.count
        for condition in conditions:
            low, high = self._bounds(condition)
            lo, hi = max(lo, low), min(hi, high)
        hi = max(lo, hi)
        keys = query.orderby
        expr = _and(query.filter, scope)
        overlay = self._overlay(expr, keys)
        changed = sorted(self.changed)
        first_changed = bisect.bisect_left(changed, lo)
        base_total = (hi - lo) - (bisect.bisect_left(changed, hi) - first_changed)
        total = base_total + len(overlay.items)

        def key_at(i: int) -> tuple[Any, ...]:
            return (*(self.monotone[key.field](i) for key in keys), i)

        last_key = key_at(hi - 1) if hi > lo else None

        def rank(k: int) -> int:
            known = overlay.ranks[k]
            if known is None:
                key = overlay.items[k][0]
                if last_key is None or key > last_key:
                    before = base_total
                else:
                    j = _first(lo, hi, lambda i: key_at(i) >= key)
                    before = (j - lo) - (bisect.bisect_left(changed, j) - first_changed)
                known = overlay.ranks[k] = before + k
            return known

        k = _first(0, len(overlay.items), lambda n: rank(n) >= start)
        index = lo + (start - k)
        for item in changed[first_changed:]:
            if item > index:
                break
            index += 1
        out: list[dict[str, Any]] = []
        end = min(total, start + size)
        overlays = len(overlay.items)
        next_rank = rank(k) if k < overlays else end
        changed_set, voucher = self.changed, self.voucher
        for position in range(start, end):
            if position == next_rank:
                out.append(overlay.items[k][1])
                k += 1
                next_rank = rank(k) if k < overlays else end
            else:
                out.append(voucher(index))
                index += 1
                while index in changed_set:
                    index += 1
        return out, total

    def _bounds(self, condition: Comparison) -> tuple[int, int]:
        """The index range [lo, hi) of seeded vouchers that meet one condition on a monotone field."""
        value, at = condition.value, self.monotone[condition.field]
        first_ge = _first(0, self.count, lambda i: bool(at(i) >= value))
        first_gt = _first(first_ge, self.count, lambda i: bool(at(i) > value))
        return {
            "ge": (first_ge, self.count),
            "gt": (first_gt, self.count),
            "le": (0, first_gt),
            "lt": (0, first_ge),
            "eq": (first_ge, first_gt),
        }[condition.op]

    def _overlay(self, expr: Expr | None, keys: tuple[OrderKey, ...]) -> _Overlay:
        cache_key = (self.version, expr, keys)
        cached = self._cache.get(cache_key)
        if cached is not None:
            return cached
        items = []
        for i in [*sorted(self.changed), *range(self.count, self.size())]:
            voucher = self.voucher(i)
            if expr is None or odata.matches(expr, voucher):
                key = (*(odata.comparable(key.kind, voucher.get(key.field)) for key in keys), i)
                items.append((key, voucher))
        items.sort(key=lambda pair: pair[0])
        if len(self._cache) > 16:
            self._cache.clear()
        overlay = self._cache[cache_key] = _Overlay(items, [None] * len(items))
        return overlay


def _and(expr: Expr | None, scope: list[Comparison]) -> Expr | None:
    if not scope:
        return expr
    return Conjunction((*([expr] if expr is not None else []), *scope))


def add_bulk_company(
    world: EAccountingWorld,
    *,
    org_number: str,
    name: str,
    vouchers: int,
    rows_per_voucher: int = 3,
    seed: int = 7,
    years: int = 3,
    user_email: str | None = None,
) -> SimCompany:
    """A company with `vouchers` vouchers over `years` fiscal years ending 2026, generated lazily from their index."""
    if vouchers < 1 or not 1 <= years <= 3:
        raise ValueError("a bulk company needs at least one voucher and one to three fiscal years")
    rng = random.Random(seed)
    company = SimCompany(
        str(uuid.uuid5(uuid.NAMESPACE_URL, f"eaccounting/{org_number}")), name, org_number, "NO", "NOK"
    )
    first_year = 2027 - years
    _setup(company, rng, years=range(first_year, 2027), opening_scale=Decimal(1))
    company.bulk = BulkVouchers(
        company,
        count=vouchers,
        rows_per_voucher=rows_per_voucher,
        seed=seed,
        first_day=date(first_year, 1, 1),
        last_day=date(2026, 12, 31),
        modified_from=datetime(first_year, 1, 1, 6, 0, tzinfo=UTC),
    )
    world.companies[company.id] = company
    if user_email:
        user = world.users.get(user_email)
        if user is None:
            local = user_email.split("@")[0]
            user = world.users[user_email] = SimUser(
                str(uuid.uuid5(uuid.NAMESPACE_URL, user_email)), user_email, "demo", local.title(), "Bulk", []
            )
        user.companies.append(company.id)
    return company


def modify_bulk(world: EAccountingWorld, company_id: str, count: int) -> list[str]:
    """Change `count` not-yet-changed vouchers of a bulk company (new text, ModifiedUtc = now); their Ids."""
    bulk = world.companies[company_id].bulk
    if bulk is None:
        raise ValueError("not a bulk company")
    if count > bulk.count - len(bulk.changed):
        raise ValueError(f"only {bulk.count - len(bulk.changed)} vouchers are unchanged")
    rng = random.Random(bulk.count * 31 + len(bulk.changed))
    now = world.now()
    picked: list[int] = []
    while len(picked) < count:
        i = rng.randrange(bulk.count)
        if i not in bulk.changed:
            bulk.changed[i] = (_edited(bulk.patterns[i % _PERIOD].text, now), now)
            picked.append(i)
    bulk.version += 1
    return [bulk.ident(i) for i in picked]


# ---------------------------------------------------------------- identity server

_STYLE = "body{font:16px system-ui;max-width:32rem;margin:3rem auto}label{display:block;margin:.5rem 0}"


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f"<!doctype html><html><head><title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>Visma Online — {escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status)


def _gateway_page(status: int, title: str) -> HTMLResponse:
    # What a load balancer in front of Visma answers: HTML, whatever the client asked for.
    return HTMLResponse(
        f"<html><head><title>{status} {title}</title></head><body><center><h1>{status} {title}</h1></center>"
        "<hr><center>Visma</center></body></html>",
        status_code=status,
    )


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


def _oauth_error(error: str, status: int = 400, description: str | None = None) -> JSONResponse:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return JSONResponse(body, status_code=status)


def create_identity_app(world: EAccountingWorld) -> Starlette:
    """The identity server: /connect/authorize (login, company picker, consent), /connect/token, revocation."""

    async def authorize(request: Request) -> Response:
        q = request.query_params
        client = world.clients.get(q.get("client_id", ""))
        if client is None or q.get("redirect_uri") not in client[1]:
            return _page("Error", "<p>unauthorized_client: unknown client or redirect URI.</p>", 400)
        asked = q.get("scope", "").split()
        if (
            q.get("response_type") != "code"
            or "ea:api" not in asked
            or q.get("code_challenge_method") != "S256"
            or not q.get("code_challenge")
        ):
            return _page(
                "Error", "<p>invalid_request: response_type=code, scope ea:api and PKCE S256 are required.</p>", 400
            )
        # Only scopes that exist are granted; the token's `scope` says which.
        granted = [scope for scope in dict.fromkeys(asked) if scope in KNOWN_SCOPES]
        acr = q.get("acr_values", "").replace("+", " ").split()
        pending_id = secrets.token_urlsafe(16)
        world.pending[pending_id] = Pending(
            q["client_id"],
            q["redirect_uri"],
            granted,
            q.get("state", ""),
            q["code_challenge"],
            "forceselectcompany:true" in acr,
        )
        return _login_form(request, pending_id)

    def _login_form(request: Request, pending_id: str, error: str = "") -> Response:
        note = f"<p style='color:#b00'>{escape(error)}</p>" if error else ""
        return _page(
            "Log in",
            f"{note}<form method='post' action='{_root(request)}/login'>"
            f"<input type='hidden' name='pending' value='{pending_id}'>"
            "<label>E-mail <input name='email' type='email'></label>"
            "<label>Password <input name='password' type='password'></label>"
            "<button type='submit'>Log in</button></form>",
        )

    async def login(request: Request) -> Response:
        form = await request.form()
        pending = world.pending.get(str(form.get("pending", "")))
        if pending is None:
            return _page("Error", "<p>This sign-in has expired. Start again.</p>", 400)
        user = world.users.get(str(form.get("email", "")).lower())
        if user is None or user.password != form.get("password"):
            return _login_form(request, str(form["pending"]), "Wrong e-mail or password.")
        pending.user = user
        default = user.default_company if world.switches.default_company else None
        # The real server's pitfall: with a default company set and no forceselectcompany, it never asks.
        if len(user.companies) == 1 or (default and not pending.force_select):
            pending.company = world.companies[default or user.companies[0]]
            return _consent(request, str(form["pending"]), pending)
        options = "".join(
            f"<label><input type='radio' name='company_id' value='{cid}'"
            f"{' checked' if cid == default else ''}> {escape(world.companies[cid].name)} "
            f"({world.companies[cid].org_number})</label>"
            for cid in user.companies
        )
        return _page(
            "Choose company",
            f"<form method='post' action='{_root(request)}/select-company'>"
            f"<input type='hidden' name='pending' value='{form['pending']}'>{options}"
            "<button type='submit'>Continue</button></form>",
        )

    async def select_company(request: Request) -> Response:
        form = await request.form()
        pending = world.pending.get(str(form.get("pending", "")))
        if pending is None or pending.user is None:
            return _page("Error", "<p>This sign-in has expired. Start again.</p>", 400)
        company_id = str(form.get("company_id", ""))
        if company_id not in pending.user.companies:
            return _page("Error", "<p>Choose one of your companies.</p>", 400)
        pending.company = world.companies[company_id]
        return _consent(request, str(form["pending"]), pending)

    def _consent(request: Request, pending_id: str, pending: Pending) -> Response:
        assert pending.company is not None
        granted = "".join(f"<li>{escape(SCOPE_WORDS[scope])}</li>" for scope in pending.scopes)
        return _page(
            "Allow access",
            f"<p>The app asks for access to <strong>{escape(pending.company.name)}"
            f"</strong>:</p><ul>{granted}</ul><form method='post' action='{_root(request)}/consent'>"
            f"<input type='hidden' name='pending' value='{pending_id}'>"
            "<button name='decision' value='accept'>Allow</button> "
            "<button name='decision' value='deny'>Cancel</button></form>",
        )

    async def consent(request: Request) -> Response:
        form = await request.form()
        pending = world.pending.pop(str(form.get("pending", "")), None)
        if pending is None or pending.user is None or pending.company is None:
            return _page("Error", "<p>This sign-in has expired. Start again.</p>", 400)
        if form.get("decision") != "accept":
            query = urlencode({"error": "access_denied", "state": pending.state})
            return RedirectResponse(f"{pending.redirect_uri}?{query}", status_code=302)
        code = secrets.token_urlsafe(24)
        grant = Grant(pending.user, pending.company, pending.scopes, pending.client_id)
        world.codes[code] = (grant, pending.redirect_uri, pending.challenge, world.now() + CODE_LIFETIME)
        query = urlencode({"code": code, "state": pending.state})
        return RedirectResponse(f"{pending.redirect_uri}?{query}", status_code=302)

    def _client(request: Request, form: Any) -> str | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        else:
            client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        known = world.clients.get(client_id)
        return client_id if known and secrets.compare_digest(known[0], secret) else None

    async def token(request: Request) -> Response:
        fault = world._take(world.identity_faults, "/connect/token")
        if fault is not None and fault.kind == "unavailable":
            return _gateway_page(503, "Service Temporarily Unavailable")
        if fault is not None and fault.kind == "hang":
            await asyncio.sleep(fault.seconds)
        response = await _token(request)
        if fault is not None and fault.kind == "lost_response":
            # The exchange happened (a refresh token has rotated) but the answer never reaches the client.
            return _gateway_page(502, "Bad Gateway")
        return response

    async def _token(request: Request) -> Response:
        form = await request.form()
        client_id = _client(request, form)
        if client_id is None:
            return _oauth_error("invalid_client", 401)
        grant_type = form.get("grant_type")
        if grant_type == "authorization_code":
            entry = world.codes.pop(str(form.get("code", "")), None)
            if entry is None:
                return _oauth_error("invalid_grant", description="unknown or used code")
            grant, redirect_uri, challenge, expires = entry
            verifier = str(form.get("code_verifier", ""))
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if (
                expires <= world.now()
                or grant.client_id != client_id
                or form.get("redirect_uri") != redirect_uri
                or digest != challenge
            ):
                return _oauth_error("invalid_grant")
            return JSONResponse(world._issue(grant))
        if grant_type == "refresh_token":
            # Refresh tokens rotate: each answer carries the next, and the old one works only in a grace period.
            body = world._redeem(str(form.get("refresh_token", "")), client_id)
            return _oauth_error("invalid_grant") if body is None else JSONResponse(body)
        return _oauth_error("unsupported_grant_type")

    async def revocation(request: Request) -> Response:
        form = await request.form()
        if _client(request, form) is None:
            return _oauth_error("invalid_client", 401)
        token = str(form.get("token", ""))
        grant = world.refresh.pop(token, None)
        if grant is None and token in world.rotated:
            grant = world.rotated.pop(token)[0]
        if grant is not None:
            grant.alive = False
        return Response(status_code=200)

    return Starlette(
        routes=[
            Route("/connect/authorize", authorize, methods=["GET"]),
            Route("/login", login, methods=["POST"]),
            Route("/select-company", select_company, methods=["POST"]),
            Route("/consent", consent, methods=["POST"]),
            Route("/connect/token", token, methods=["POST"]),
            Route("/connect/revocation", revocation, methods=["POST"]),
            *_sim_routes(world),
        ]
    )


# ---------------------------------------------------------------- API v2


class ORJSONResponse(JSONResponse):
    """JSON rendered with orjson: a page of 1000 vouchers serialises several times faster."""

    def render(self, content: Any) -> bytes:
        """The body bytes."""
        return orjson.dumps(content)


def _error(status: int, code: int, message: str, headers: Mapping[str, str] | None = None) -> ORJSONResponse:
    return ORJSONResponse(
        {"ErrorCode": code, "DeveloperErrorMessage": message, "ErrorId": str(uuid.uuid4())},
        status_code=status,
        headers=headers,
    )


def _quota(limit: int, wait: int) -> ORJSONResponse:
    # Visma says "per Minute" and puts the wait only in the prose.
    return _error(
        429, 4010, f"API calls quota exceeded! maximum admitted {limit} per Minute. Try again in {wait} seconds."
    )


_MAINTENANCE = (
    "<!DOCTYPE html><html><head><title>Visma eAccounting - Planned maintenance</title></head><body>"
    "<h1>We are updating Visma eAccounting</h1><p>The service will be back shortly. Thank you for your patience."
    "</p></body></html>"
)

_SWITCH_ERRORS = [
    ("consent_revoked", 401, 4005, "Unauthorized: the grant was revoked"),
    ("no_user_access", 403, 4011, "NoAccessForAuthenticatedUser"),
    ("licence_not_accepted", 403, 4012, "LicenceAgreementNotAccepted"),
    ("scope_missing", 403, 4006, "NoAccessToScopes"),
    ("no_full_permission", 403, 4007, "PermissionDenied: the user lacks permission for this endpoint"),
]
_BOOKKEEPING_PATHS = ("/v2/fiscalyears", "/v2/accounts", "/v2/vouchers", "/v2/accountbalances", "/v2/vatcodes")


def create_api_app(world: EAccountingWorld) -> Starlette:
    """The API v2: companysettings, fiscalyears, openingbalances, accounts, vouchers, balances, vatcodes, users."""

    def path_of(request: Request) -> str:
        return request.url.path.removeprefix(_root(request))

    def fault_response(fault: Fault) -> Response:
        if fault.kind == "rate_limit":
            return _quota(world.switches.rate_limit_per_minute, max(1, math.ceil(fault.seconds)))
        if fault.kind == "unavailable":
            return _error(503, 5001, "CantReachSystemDependency: a system the API depends on did not answer")
        if fault.kind == "server_error":
            return _error(500, 5000, "InternalServerError: an unexpected error occurred")
        return HTMLResponse(_MAINTENANCE, status_code=200)

    def rate_limited(grant: Grant, path: str) -> Response | None:
        now = world.now()
        window = timedelta(seconds=world.switches.rate_limit_window_seconds)
        counted = world._windows[(grant.client_id, path)]
        while counted and counted[0] <= now - window:
            counted.popleft()
        limit = world.switches.rate_limit_per_minute
        if world.switches.force_rate_limit or len(counted) >= limit:
            left = (counted[0] + window - now).total_seconds() if counted else window.total_seconds()
            return _quota(limit, max(1, math.ceil(left)))
        counted.append(now)
        return None

    async def guard(request: Request, template: str) -> tuple[Grant | None, Response | None]:
        header = request.headers.get("authorization", "")
        entry = world.access.get(header.removeprefix("Bearer ").strip())
        if entry is None or entry[1] <= world.now() or not entry[0].alive:
            return None, _error(401, 4005, "NotAuthorized: missing, unknown or expired access token")
        grant = entry[0]
        path = path_of(request)
        fault = world._take(world.faults, path)
        if fault is not None and fault.kind == "hang":
            await asyncio.sleep(fault.seconds)
        elif fault is not None:
            return grant, fault_response(fault)
        limited = rate_limited(grant, path)
        if limited is not None:
            return grant, limited
        if world.switches.outage:
            return grant, _error(503, 5001, "CantReachSystemDependency")
        for name, status, code, message in _SWITCH_ERRORS:
            if getattr(world.switches, name):
                return grant, _error(status, code, message)
        rule = world.endpoints[template]
        if not rule.scopes & set(grant.scopes):
            needed = ", ".join(sorted(rule.scopes))
            return grant, _error(403, 4006, f"NoAccessToScopes: this endpoint requires any of the scopes {needed}")
        if path.startswith(_BOOKKEEPING_PATHS) and world.switches.no_bookkeeping:
            return grant, _error(403, 4002, "NoAccessToModule: No access to module: bookkeeping")
        variant = VARIANTS.get(world.variant(grant.company), "Unknown")
        if variant not in rule.variants:
            return grant, _error(
                403, 4009, f"NoAccessDueToProductVariant: not available in the {variant} variant of eAccounting"
            )
        return grant, None

    def record(request: Request, grant: Grant | None, response: Response) -> Response:
        world.requests.append(
            ApiRequest(request.method, path_of(request), grant.company.id if grant else None, response.status_code)
        )
        return response

    def paging(request: Request) -> tuple[int, int]:
        try:
            page = max(1, int(request.query_params.get("$page", "1")))
            size = int(request.query_params.get("$pagesize", str(DEFAULT_PAGE_SIZE)))
        except ValueError:
            raise ODataError("$page and $pagesize must be whole numbers") from None
        return page, min(MAX_PAGE_SIZE, max(1, size))

    def paged(
        request: Request,
        resource: str,
        source: list[dict[str, Any]] | Callable[[Query, int, int], tuple[list[dict[str, Any]], int]],
    ) -> Response:
        try:
            query = odata.parse_query(request.query_params, FIELDS[resource])
            page, size = paging(request)
        except ODataError as exc:
            return _error(400, 6000, f"QueryParameterError: {exc}")
        start = (page - 1) * size
        if callable(source):
            data, total = source(query, start, size)
        else:
            rows = odata.apply(query, source)
            data, total = rows[start : start + size], len(rows)
        meta = {
            "CurrentPage": page,
            "PageSize": size,
            "TotalNumberOfPages": max(1, -(-total // size)),
            "TotalNumberOfResults": total,
            "ServerTimeUtc": world.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        items = data if query.select is None else odata.project(data, query.select)
        response = ORJSONResponse({"Meta": meta, "Data": items})
        if world.after_page is not None:
            world.after_page(path_of(request), page)
        return response

    def endpoint(template: str, build: Callable[[Request, Grant], Response]) -> Route:
        async def handle(request: Request) -> Response:
            grant, refusal = await guard(request, template)
            if refusal is not None:
                return record(request, grant, refusal)
            assert grant is not None
            return record(request, grant, build(request, grant))

        return Route(template, handle, methods=["GET"])

    def companysettings(request: Request, grant: Grant) -> Response:
        company = grant.company
        variant = world.variant(company)
        body: dict[str, Any] = {
            "Name": company.name,
            "Email": "post@example.test",
            "CountryCode": company.country,
            "CurrencyCode": company.currency,
            "CorporateIdentityNumber": company.org_number,
            "VatCode": f"NO{company.org_number}MVA" if company.country == "NO" else f"SE{company.org_number}01",
            "ProductVariant": variant,
            "TypeOfBusiness": 1,
            "VatPeriod": 2,
            "ActivatedModules": ["invoicing"] if VARIANTS.get(variant) == "Invoicing" else ["bookkeeping", "invoicing"],
        }
        if company.accounting_locked_to is not None:
            body["AccountingLockedTo"] = _day(company.accounting_locked_to)
        return ORJSONResponse(body)

    def fiscalyears(request: Request, grant: Grant) -> Response:
        return paged(request, "FiscalYearApi", [dict(year) for year in grant.company.fiscal_years])

    def openingbalances(request: Request, grant: Grant) -> Response:
        company = grant.company
        items = [
            {"Name": company.accounts[number], "Number": number, "Balance": float(amount)}
            for number, amount in sorted(company.opening_balances.items())
        ]
        return paged(request, "OpeningBalancesApi", items)

    def _accounts(company: SimCompany, years: list[dict[str, Any]]) -> list[dict[str, Any]]:
        names = {item["Id"]: item["Description"] for item in company.vat_codes}
        out = []
        for year in years:
            # Accounts are copied into each new fiscal year when it is created.
            modified = f"{_span(year)[0].isoformat()}T07:45:00Z"
            for number, name in sorted(company.accounts.items()):
                item: dict[str, Any] = {"Name": name, "Number": str(number), "FiscalYearId": year["Id"]}
                vat = company.account_vat_codes.get(number)
                if vat is not None:
                    item["VatCodeId"] = vat
                    item["VatCodeDescription"] = names[vat]
                item.update(
                    ModifiedUtc=modified,
                    IsActive=True,
                    IsProjectAllowed=_income(number),
                    IsCostCenterAllowed=_income(number),
                    IsBlockedForManualBooking=False,
                )
                out.append(item)
        return out

    def accounts(request: Request, grant: Grant) -> Response:
        years = grant.company.fiscal_years
        wanted = request.path_params.get("fiscalyearId")
        if wanted is not None:
            years = [year for year in years if year["Id"] == wanted]
            if not years:
                return _error(404, 3001, "FiscalYearDoesNotExist")
        return paged(request, "AccountApi", _accounts(grant.company, years))

    def vouchers(request: Request, grant: Grant) -> Response:
        company = grant.company
        wanted = request.path_params.get("fiscalyearId")
        year = next((item for item in company.fiscal_years if item["Id"] == wanted), None)
        if wanted is not None and year is None:
            return _error(404, 3001, "FiscalYearDoesNotExist")
        bulk = company.bulk
        if bulk is not None:
            scope = []
            if year is not None:
                first, last = _span(year)
                scope = [
                    Comparison("VoucherDate", "ge", datetime.combine(first, datetime.min.time(), UTC), "datetime"),
                    Comparison("VoucherDate", "le", datetime.combine(last, datetime.min.time(), UTC), "datetime"),
                ]
            return paged(request, "VoucherApi", lambda query, start, size: bulk.page(query, scope, start, size))
        items = [_public(voucher) for voucher in company.vouchers if wanted in (None, voucher["_fiscal_year"])]
        return paged(request, "VoucherApi", items)

    def accountbalances(request: Request, grant: Grant) -> Response:
        try:
            on = date.fromisoformat(request.path_params["date"])
        except ValueError:
            return _error(400, 6001, "InvalidInput: the date must be yyyy-MM-dd")
        company = grant.company
        items = [
            {"AccountNumber": number, "AccountName": company.accounts[number], "Balance": float(total)}
            for number, total in sorted(world.balances(company, on).items())
        ]
        return paged(request, "AccountBalanceAPI", items)

    def vatcodes(request: Request, grant: Grant) -> Response:
        on = request.query_params.get("vatRateDate")
        if on:
            try:
                date.fromisoformat(on[:10])
            except ValueError:
                return _error(400, 6001, "InvalidInput: vatRateDate must be yyyy-MM-dd")
        # Not paginated: the Swagger answers a bare array of VatCode.
        return ORJSONResponse([dict(item) for item in grant.company.vat_codes])

    def users(request: Request, grant: Grant) -> Response:
        members = [user for user in world.users.values() if grant.company.id in user.companies]
        return paged(
            request,
            "UserApi",
            [
                {
                    "Id": user.id,
                    "Email": user.email,
                    "FirstName": user.first_name,
                    "LastName": user.last_name,
                    "IsActive": True,
                    "IsCurrentUser": user is grant.user,
                    "IsConsultant": False,
                }
                for user in members
            ],
        )

    async def not_found(request: Request, exc: Exception) -> Response:
        return record(request, None, _error(404, 3000, f"ResourceNotFound: no resource at {path_of(request)}"))

    async def not_allowed(request: Request, exc: Exception) -> Response:
        headers = exc.headers if isinstance(exc, HTTPException) else None
        message = f"ResourceNotFound: the resource does not support http method '{request.method}'"
        return record(request, None, _error(405, 3000, message, headers))

    async def crashed(request: Request, exc: Exception) -> Response:
        return _error(500, 5000, "InternalServerError: an unexpected error occurred")

    return Starlette(
        routes=[
            endpoint("/v2/companysettings", companysettings),
            endpoint("/v2/fiscalyears", fiscalyears),
            endpoint("/v2/fiscalyears/openingbalances", openingbalances),
            endpoint("/v2/accounts", accounts),
            endpoint("/v2/accounts/{fiscalyearId}", accounts),
            endpoint("/v2/vouchers", vouchers),
            endpoint("/v2/vouchers/{fiscalyearId}", vouchers),
            endpoint("/v2/accountbalances/{date}", accountbalances),
            endpoint("/v2/vatcodes", vatcodes),
            endpoint("/v2/users", users),
            *_sim_routes(world),
        ],
        exception_handlers={404: not_found, 405: not_allowed, Exception: crashed},
    )


def _sim_routes(world: EAccountingWorld) -> list[Route]:
    async def switches(request: Request) -> Response:
        if request.method == "POST":
            try:
                world.switch(**(await request.json()))
            except KeyError as exc:
                return JSONResponse({"error": f"unknown switch {exc}"}, status_code=400)
        return JSONResponse(world.switches.__dict__)

    async def faults(request: Request) -> Response:
        if request.method == "POST":
            body = await request.json()
            try:
                if body.get("server", "api") == "identity":
                    world.inject_identity(
                        body["kind"], times=int(body.get("times", 1)), seconds=float(body.get("seconds", 0))
                    )
                else:
                    world.inject(
                        body["kind"],
                        path=str(body.get("path", "/v2/")),
                        times=int(body.get("times", 1)),
                        seconds=float(body.get("seconds", 0)),
                    )
            except (KeyError, ValueError) as exc:
                return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse(
            {
                "api": [fault.__dict__ for fault in world.faults],
                "identity": [fault.__dict__ for fault in world.identity_faults],
            }
        )

    async def reset(request: Request) -> Response:
        world.reset()
        return JSONResponse({"ok": True})

    return [
        Route("/_sim/switches", switches, methods=["GET", "POST"]),
        Route("/_sim/faults", faults, methods=["GET", "POST"]),
        Route("/_sim/reset", reset, methods=["POST"]),
    ]
