"""Visma Connect and the Visma.net ERP API (Visma.net Financials), simulated for the demo and the tests.

One Starlette app, mounted anywhere (the stack mounts it at /visma): Visma Connect under `/connect/…` and the
ERP API under `/erp/…`, so `connect_url` is the mount point and `api_url` is the mount point + `/erp`.

What it models (../shared/reference/visma-apis.md §1–2):
- Tenants: a Visma *customer* (the contract) has its own tenant id, and each *company* under it another. A
  client-credentials token can be had for either, but the ERP answers 401 with an empty body to a token for
  the customer-level tenant (Visma's "401 despite a valid token").
- The App Store: a client company's Integration Administrator integrates an app for a tenant with some scopes
  (`approve`); only then does `client_credentials` with that `tenant_id` succeed, else `invalid_tenant`.
  The approving user also needs the *API User* role in the company: without it Connect answers
  `invalid_tenant` as well (the doc's "The application user or subscription is not entitled to use the API").
- The ERP: bare JSON arrays in camelCase, mandatory `pageNumber`/`pageSize` (the size silently clamped to
  each endpoint's maximum), `lastModifiedDateTime` + `lastModifiedDateTimeCondition`, and `X-RateLimit-*`
  headers for a fixed hourly window per client and company, 429 with `Retry-After` past it. Journal
  transactions are paged by *lines*: a batch can be split over two pages, as Visma documents for v2.
- The interactive flow (authorization code with PKCE): login, tenant picker (the customer-level tenant listed
  beside the companies), and a consent page whose scopes the approver may untick (what is granted is what the
  token response's `scope` says). With `openid` the token response carries an `id_token` whose `tenant_id` claim
  is the tenant picked, and `/connect/userinfo` answers `name` (scope `profile`) and `email` (scope `email`).
  The id token is unsigned (`alg: none`): the claim name and the unsigned form are the simulator's choice, the
  reference documents neither.
- The company's own details come from `GET /v1/organization` (ExtendedOrganizationDto: `corporateId` is the
  organisation number); the legacy `/resources/v1/context` is obsolete in the Connect era.

Where the reference is silent the simulator chooses, and says so: list order (lastModifiedDateTime, then
batch, then line), timestamps without a zone read as UTC, error bodies `{"message": "VismaId: … "}`, and
balances signed debit-positive.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import secrets
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from html import escape
from typing import Any
from urllib.parse import urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

__all__ = [
    "ApiRequest",
    "SimClient",
    "SimCompany",
    "SimCustomer",
    "SimUser",
    "VismaNetSwitches",
    "VismaNetWorld",
    "create_visma_net_app",
    "seed_visma_net",
]

ACCESS_LIFETIME = timedelta(hours=1)
CODE_LIFETIME = timedelta(minutes=5)

SERVICE_READ = "vismanet_erp_service_api:read"
INTERACTIVE_READ = "vismanet_erp_interactive_api:read"
KNOWN_SCOPES: frozenset[str] = frozenset(
    {"openid", "email", "profile", "offline_access"}
    | {
        f"vismanet_erp_{kind}_api:{verb}"
        for kind in ("service", "interactive")
        for verb in ("read", "create", "update", "delete")
    }
)
READ_SCOPES = frozenset({SERVICE_READ, INTERACTIVE_READ})

# Roles as Visma.net Admin names them: the customer administrator hands out the other two, per company.
CUSTOMER_ADMINISTRATOR = "Customer administrator"
INTEGRATION_ADMINISTRATOR = "Integration Administrator"
API_USER = "API User"

INVALID_TENANT = "The application user or subscription is not entitled to use the API"
RATE_POLICY = "4-fixed-window"
# Each list endpoint's largest page (Visma returns it in metadata and clamps larger asks silently; the real
# numbers are not published per endpoint, these are the simulator's).
MAX_PAGE_SIZE: dict[str, int] = {
    "/v1/account": 1000,
    "/v1/financialPeriod": 1000,
    "/v2/generalLedgerBalance": 1000,
    "/v2/journaltransaction": 500,  # counted in lines
    "/v1/customer": 1000,
    "/v1/supplier": 1000,
    "/v1/vat": 1000,
}
CONDITIONS = (">=", "<=", ">", "<")


# ---------------------------------------------------------------- world state


@dataclass
class VismaNetSwitches:
    """Failure modes; settable from Python (`world.switch`) or with POST /_sim/switches."""

    not_approved: bool = False  # the app is integrated for no tenant: client credentials -> invalid_tenant
    customer_tenant: bool = False  # every token acts as the customer-level tenant: ERP 401, empty body
    read_scope_off: bool = False  # read scope switched off under My apps: ERP 403
    no_licence: bool = False  # the company's Visma.net Financials licence is gone: IPPException 12027
    no_api_user: bool = False  # nobody has the API User role: client credentials -> invalid_tenant
    later_company: bool = False  # a company created after the integration appears, with no access yet
    consent_revoked: bool = False  # integration removed / refresh tokens revoked
    unavailable: bool = False  # the ERP answers 503
    connect_unavailable: bool = False  # Visma Connect's token endpoint answers 503
    rate_limit_per_hour: int = 3000  # requests per clock hour, per client and company


@dataclass
class SimCompany:
    """A Visma.net company (its own tenant) and its books."""

    tenant: str
    customer: str
    name: str
    org_number: str
    country: str
    currency: str
    periods: list[dict[str, Any]] = field(default_factory=list)
    accounts: list[dict[str, Any]] = field(default_factory=list)
    transactions: list[dict[str, Any]] = field(default_factory=list)
    vats: list[dict[str, Any]] = field(default_factory=list)
    customers: list[dict[str, Any]] = field(default_factory=list)
    suppliers: list[dict[str, Any]] = field(default_factory=list)
    licensed: bool = True
    created_later: bool = False


@dataclass
class SimCustomer:
    """A Visma customer (the contract that holds the licence): its own tenant, and its companies."""

    tenant: str
    name: str
    companies: list[str] = field(default_factory=list)


@dataclass
class SimUser:
    """A Visma.net user and their roles per tenant (company or customer)."""

    email: str
    password: str
    name: str
    roles: dict[str, set[str]] = field(default_factory=dict)

    def has(self, tenant: str, role: str) -> bool:
        """Whether the user holds `role` for `tenant`."""
        return role in self.roles.get(tenant, set())


@dataclass
class SimClient:
    """An app registered in the Visma Developer Portal."""

    client_id: str
    secret: str
    redirect_uris: set[str]
    refresh_mode: str = "rotating"  # "rotating" (one-time, with grace) or "reusable"
    grace_seconds: int = 30


@dataclass
class Approval:
    """An App Store integration: which scopes a tenant granted the app, and who pressed Integrate."""

    scopes: set[str]
    by: str | None = None


@dataclass
class AccessToken:
    """What an opaque access token stands for."""

    client_id: str
    tenant: str
    scopes: list[str]
    expires: datetime
    user: str | None = None


@dataclass
class RefreshGrant:
    """An interactive consent: revoking it kills every refresh token from it."""

    client_id: str
    tenant: str
    scopes: list[str]
    user: str
    alive: bool = True


@dataclass
class Pending:
    """An interactive sign-in between the login page and the redirect back."""

    client_id: str
    redirect_uri: str
    scopes: list[str]
    state: str
    challenge: str
    user: SimUser | None = None
    tenant: str | None = None


@dataclass
class ApiRequest:
    """One ERP request, for tests to count."""

    method: str
    path: str
    tenant: str | None
    status: int
    params: dict[str, str] = field(default_factory=dict)


class VismaNetWorld:
    """Shared state of Visma Connect and the ERP API."""

    def __init__(self, *, now: Callable[[], datetime] | None = None) -> None:
        self.now: Callable[[], datetime] = now or (lambda: datetime.now(UTC))
        self.switches = VismaNetSwitches()
        self.customers: dict[str, SimCustomer] = {}
        self.companies: dict[str, SimCompany] = {}
        self.users: dict[str, SimUser] = {}
        self.clients: dict[str, SimClient] = {}
        self.approvals: dict[tuple[str, str], Approval] = {}
        self.pending: dict[str, Pending] = {}
        self.codes: dict[str, tuple[RefreshGrant, str, str, datetime]] = {}
        self.access: dict[str, AccessToken] = {}
        self.refresh: dict[str, RefreshGrant] = {}
        self.rotated: dict[str, tuple[RefreshGrant, datetime]] = {}
        self.requests: list[ApiRequest] = []
        self.token_requests: list[dict[str, str]] = []
        self._windows: dict[tuple[str, str], tuple[datetime, int]] = {}

    # ------------------------------------------------------------ set-up

    def register_client(
        self,
        client_id: str,
        secret: str,
        redirect_uris: Iterable[str] = (),
        *,
        refresh_mode: str = "rotating",
        grace_seconds: int = 30,
    ) -> SimClient:
        """Register an app (refresh tokens "rotating" with a grace period, or "reusable")."""
        if refresh_mode not in {"rotating", "reusable"}:
            raise ValueError("refresh_mode is 'rotating' or 'reusable'")
        client = SimClient(client_id, secret, set(redirect_uris), refresh_mode, grace_seconds)
        self.clients[client_id] = client
        return client

    def approve(self, client_id: str, tenant: str, scopes: Iterable[str], *, by: str | None = None) -> None:
        """Integrate the app for a tenant in the App Store with these scopes (`by`: a user who must be the
        tenant's Integration Administrator)."""
        if by is not None and not self.users[by].has(tenant, INTEGRATION_ADMINISTRATOR):
            raise PermissionError(f"{by} is not Integration Administrator for {tenant}")
        self.approvals[(client_id, tenant)] = Approval(set(scopes), by)

    def withdraw(self, client_id: str, tenant: str) -> None:
        """Remove the app's integration for a tenant."""
        self.approvals.pop((client_id, tenant), None)

    def set_scopes(self, client_id: str, tenant: str, scopes: Iterable[str]) -> None:
        """Turn scopes on or off under *My apps* → Manage."""
        self.approvals[(client_id, tenant)].scopes = set(scopes)

    def company_by_org(self, org_number: str) -> SimCompany:
        """A company from its organisation number."""
        return next(company for company in self.companies.values() if company.org_number == org_number)

    def visible(self, tenant: str) -> SimCompany | None:
        """The company of a tenant id, as Visma knows it right now (a later company only once created)."""
        company = self.companies.get(tenant)
        if company is None or (company.created_later and not self.switches.later_company):
            return None
        return company

    def switch(self, **values: Any) -> None:
        """Set switches by name."""
        names = {item.name for item in fields(VismaNetSwitches)}
        for name, value in values.items():
            if name not in names:
                raise KeyError(name)
            setattr(self.switches, name, value)

    def reset(self) -> None:
        """Switches back to their defaults and rate-limit windows cleared."""
        self.switches = VismaNetSwitches()
        self._windows.clear()

    def issued_secrets(self) -> set[str]:
        """Every code and token handed out (for tests that no secret reaches a log)."""
        return {*self.codes, *self.access, *self.refresh, *self.rotated}

    # ------------------------------------------------------------ tokens

    def _issue(
        self,
        client_id: str,
        tenant: str,
        scopes: list[str],
        *,
        grant: RefreshGrant | None = None,
        new_refresh: bool = True,
    ) -> dict[str, Any]:
        token = secrets.token_urlsafe(32)
        self.access[token] = AccessToken(
            client_id, tenant, scopes, self.now() + ACCESS_LIFETIME, grant.user if grant else None
        )
        body: dict[str, Any] = {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": int(ACCESS_LIFETIME.total_seconds()),
            "scope": " ".join(scopes),
        }
        if grant is not None and "openid" in scopes:
            body["id_token"] = self._id_token(grant)
        if grant is not None and new_refresh and "offline_access" in scopes:
            refresh = secrets.token_urlsafe(32)
            self.refresh[refresh] = grant
            body["refresh_token"] = refresh
        return body

    def _id_token(self, grant: RefreshGrant) -> str:
        """An unsigned OIDC id token: who signed in, and the tenant they picked (`tenant_id`)."""
        now = int(self.now().timestamp())
        claims = {
            "iss": "https://connect.visma.com",
            "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"visma-user:{grant.user}")),
            "aud": grant.client_id,
            "iat": now,
            "exp": now + int(ACCESS_LIFETIME.total_seconds()),
            "tenant_id": grant.tenant,
        }
        parts = ({"alg": "none", "typ": "JWT"}, claims)
        return ".".join(_b64(json.dumps(part).encode()) for part in parts) + "."

    def userinfo(self, access_token: str) -> dict[str, Any] | None:
        """The OIDC userinfo claims of a user's access token (None: not a live token with `openid`)."""
        access = self.access.get(access_token)
        if access is None or access.expires <= self.now() or access.user is None or "openid" not in access.scopes:
            return None
        user = self.users[access.user]
        claims: dict[str, Any] = {"sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"visma-user:{user.email}"))}
        if "profile" in access.scopes:
            claims["name"] = user.name
        if "email" in access.scopes:
            claims["email"] = user.email
        return claims

    def service_token(self, client_id: str, tenant: str, scopes: list[str]) -> dict[str, Any] | str:
        """A client-credentials answer, or the OAuth error code Connect gives instead."""
        if not scopes or any(scope not in KNOWN_SCOPES or "_service_api:" not in scope for scope in scopes):
            return "invalid_scope"
        approval = self.approvals.get((client_id, tenant))
        is_customer = tenant in self.customers
        if (
            self.switches.not_approved
            or self.switches.consent_revoked
            or (self.visible(tenant) is None and not is_customer)
            or approval is None
            or not set(scopes) <= approval.scopes
        ):
            return "invalid_tenant"
        if not is_customer and (self.switches.no_api_user or not self._api_user(tenant, approval.by)):
            return "invalid_tenant"
        return self._issue(client_id, tenant, scopes)

    def _api_user(self, tenant: str, by: str | None) -> bool:
        # The integrating user must hold API User for the company; an approval made from Python without a
        # user (`by=None`) stands for one that does.
        return by is None or self.users[by].has(tenant, API_USER)

    def _redeem(self, refresh_token: str, client_id: str) -> dict[str, Any] | None:
        now = self.now()
        client = self.clients[client_id]
        grace = timedelta(seconds=client.grace_seconds)
        for token, (_, rotated_at) in list(self.rotated.items()):
            if now - rotated_at >= grace:
                del self.rotated[token]
        grant = self.refresh.get(refresh_token) or self.rotated.get(refresh_token, (None, now))[0]
        if grant is None or not grant.alive or self.switches.consent_revoked or grant.client_id != client_id:
            return None
        if client.refresh_mode == "reusable":
            body = self._issue(grant.client_id, grant.tenant, grant.scopes, grant=grant, new_refresh=False)
            body["refresh_token"] = refresh_token  # the same one, again and again
            return body
        # One-time tokens with a grace period: a token rotated moments ago still works once more.
        if self.refresh.pop(refresh_token, None) is not None:
            self.rotated[refresh_token] = (grant, now)
        return self._issue(grant.client_id, grant.tenant, grant.scopes, grant=grant)

    # ------------------------------------------------------------ rate limit

    def _count(self, client_id: str, tenant: str) -> tuple[int, int, int, bool]:
        """(limit, remaining, seconds to reset, allowed) for one request, counted when allowed."""
        now = self.now()
        start = now.replace(minute=0, second=0, microsecond=0)
        reset = max(1, int((start + timedelta(hours=1) - now).total_seconds()))
        limit = self.switches.rate_limit_per_hour
        opened, used = self._windows.get((client_id, tenant), (start, 0))
        if opened != start:
            used = 0
        if used >= limit:
            return limit, 0, reset, False
        used += 1
        self._windows[(client_id, tenant)] = (start, used)
        return limit, limit - used, reset, True

    # ------------------------------------------------------------ books

    def book(
        self, tenant: str, *, when: date | None = None, amount: Decimal | int = 1250, text: str = "Kontantsalg"
    ) -> dict[str, Any]:
        """Book a balanced cash sale now (lastModifiedDateTime = now), as a new GL batch."""
        company = self.companies[tenant]
        now = self.now()
        chart = _CHARTS[company.country]
        number = max((int(item["batchNumber"]) for item in company.transactions), default=0) + 1
        lines = _lines(chart, text, chart.bank, chart.sales, chart.sales_code, Decimal(amount))
        batch = _batch(number, when or now.date(), text, lines, now, company.currency)
        company.transactions.append(batch)
        return batch

    def touch(self, tenant: str, batch_number: str) -> dict[str, Any]:
        """Edit a batch's description; its lastModifiedDateTime becomes now."""
        company = self.companies[tenant]
        batch = next(item for item in company.transactions if item["batchNumber"] == batch_number)
        batch["description"] = f"{batch['description'].split(' (endret')[0]} (endret)"
        batch["lastModifiedDateTime"] = _stamp(self.now())
        return batch


# ---------------------------------------------------------------- deterministic books


@dataclass(frozen=True)
class _Chart:
    accounts: dict[int, str]
    patterns: list[tuple[str, int, int, str | None, tuple[int, int]]]
    vats: list[tuple[str, str, str, Decimal, int | None]]  # (id, description, type, rate, VAT account)
    output: frozenset[str]
    opening: dict[int, Decimal]
    bank: int
    sales: int
    sales_code: str
    retained: int


_NO = _Chart(
    accounts={
        1500: "Kundefordringer",
        1920: "Bankinnskudd",
        2000: "Aksjekapital",
        2050: "Annen egenkapital",
        2400: "Leverandørgjeld",
        2700: "Utgående merverdiavgift",
        2710: "Inngående merverdiavgift",
        3000: "Salgsinntekt, avgiftspliktig",
        4000: "Varekjøp",
        5000: "Lønn til ansatte",
        6300: "Leie lokale",
        6800: "Kontorrekvisita",
        7140: "Reisekostnad",
    },
    patterns=[
        ("Faktura kunde", 1500, 3000, "3", (4000, 60000)),
        ("Innbetaling kunde", 1920, 1500, None, (4000, 60000)),
        ("Varekjøp fisk", 4000, 2400, "1", (2000, 40000)),
        ("Betaling leverandør", 2400, 1920, None, (2000, 40000)),
        ("Husleie", 6300, 1920, None, (22000, 22000)),
        ("Kontorrekvisita", 6800, 1920, "1", (200, 2500)),
        ("Reise", 7140, 1920, None, (400, 6000)),
        ("Lønn", 5000, 1920, None, (30000, 52000)),
    ],
    vats=[
        ("0", "Ingen mva-behandling", "Input", Decimal("0"), None),
        ("1", "Inngående mva, høy sats", "Input", Decimal("25"), 2710),
        ("3", "Utgående mva, høy sats", "Output", Decimal("25"), 2700),
        ("31", "Utgående mva, middels sats", "Output", Decimal("15"), 2700),
        ("5", "Ingen utgående mva (innenfor mva-loven)", "Output", Decimal("0"), None),
    ],
    output=frozenset({"3", "31", "5"}),
    opening={
        1920: Decimal("385000.00"),
        1500: Decimal("64000.00"),
        2400: Decimal("-52000.00"),
        2000: Decimal("-100000.00"),
    },
    bank=1920,
    sales=3000,
    sales_code="3",
    retained=2050,
)

_SE = _Chart(
    accounts={
        1510: "Kundfordringar",
        1930: "Företagskonto",
        2081: "Aktiekapital",
        2091: "Balanserad vinst eller förlust",
        2440: "Leverantörsskulder",
        2611: "Utgående moms 25 %",
        2641: "Debiterad ingående moms",
        3041: "Försäljning tjänster 25 % moms",
        5010: "Lokalhyra",
        6110: "Kontorsmateriel",
        6540: "IT-tjänster",
    },
    patterns=[
        ("Faktura byggtjänster", 1510, 3041, "MP1", (15000, 120000)),
        ("Inbetalning kund", 1930, 1510, None, (15000, 120000)),
        ("Lokalhyra", 5010, 1930, None, (12500, 12500)),
        ("IT-tjänster", 6540, 2440, "IP1", (500, 4500)),
        ("Betalning leverantör", 2440, 1930, None, (500, 4500)),
        ("Kontorsmaterial", 6110, 1930, "IP1", (150, 1600)),
    ],
    vats=[
        ("MP1", "Utgående moms 25 %", "Output", Decimal("25"), 2611),
        ("IP1", "Ingående moms 25 %", "Input", Decimal("25"), 2641),
        ("MF", "Momsfri försäljning", "Output", Decimal("0"), None),
    ],
    output=frozenset({"MP1", "MF"}),
    opening={
        1930: Decimal("512000.00"),
        1510: Decimal("88000.00"),
        2440: Decimal("-41000.00"),
        2081: Decimal("-50000.00"),
    },
    bank=1930,
    sales=3041,
    sales_code="MP1",
    retained=2091,
)
_CHARTS = {"NO": _NO, "SE": _SE}
_TYPES = {1: "Asset", 2: "Liability", 3: "Income"}


def _type(number: int) -> str:
    return _TYPES.get(number // 1000, "Expense")


def _income(number: int) -> bool:
    return number >= 3000


def _stamp(moment: datetime) -> str:
    """Visma.net's lastModifiedDateTime: no zone, milliseconds (read as UTC here)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


def _midnight(day: date) -> str:
    return f"{day.isoformat()}T00:00:00"


def _lines(
    chart: _Chart, text: str, debit: int, credit: int, code: str | None, amount: Decimal
) -> list[dict[str, Any]]:
    zero = Decimal(0)
    rows: list[tuple[int, Decimal, Decimal, str | None]]
    if code is None:
        rows = [(debit, amount, zero, None), (credit, zero, amount, None)]
    else:
        _, _, _, rate, account = next(item for item in chart.vats if item[0] == code)
        net = (amount / (1 + rate / 100)).quantize(Decimal("0.01"))
        tax = amount - net
        assert account is not None
        if code in chart.output:
            rows = [(debit, amount, zero, None), (credit, zero, net, code), (account, zero, tax, None)]
        else:
            rows = [(debit, net, zero, code), (account, tax, zero, None), (credit, zero, amount, None)]
    return [
        {
            "lineNumber": index,
            "accountNumber": str(number),
            "subaccount": {"id": "0"},
            "debitAmount": float(dr),
            "creditAmount": float(cr),
            "referenceNumber": None,
            "transactionDescription": text,
            "vatCode": {"id": vat} if vat else None,
            "customerSupplier": None,
        }
        for index, (number, dr, cr, vat) in enumerate(rows, start=1)
    ]


def _batch(
    number: int, day: date, text: str, lines: list[dict[str, Any]], modified: datetime, currency: str
) -> dict[str, Any]:
    return {
        "module": "ModuleGL",
        "batchNumber": f"{number:06d}",
        "status": "Posted",
        "hold": False,
        "transactionDate": _midnight(day),
        "postPeriod": f"{day.month:02d}{day.year}",
        "financialPeriod": f"{day.year}{day.month:02d}",
        "ledger": "L",
        "currencyId": currency,
        "debitTotal": round(sum(line["debitAmount"] for line in lines), 2),
        "creditTotal": round(sum(line["creditAmount"] for line in lines), 2),
        "description": text,
        "lastModifiedDateTime": _stamp(modified),
        "branch": "1",
        "journalTransactionLines": lines,
    }


def _books(company: SimCompany, *, seed: int, per_month: int, last_month: int = 10) -> None:
    """Two fiscal years (2025 closed, 2026 open to October), chart, VAT, an opening batch and monthly batches."""
    rng = random.Random(seed)
    chart = _CHARTS[company.country]
    for year in (2025, 2026):
        for month in range(1, 13):
            start = date(year, month, 1)
            end = (date(year + month // 12, month % 12 + 1, 1)) - timedelta(days=1)
            closed = year == 2025 or month < 10
            company.periods.append(
                {
                    "year": year,
                    "period": f"{month:02d}{year}",
                    "startDate": _midnight(start),
                    "endDate": _midnight(end),
                    "description": start.strftime("%B"),
                    "active": True,
                    "closedInGeneralLedger": closed,
                    "closedInCustomerLedger": closed,
                    "closedInSupplierLedger": closed,
                    "closedInCashManagement": closed,
                    "closedInInventoryManagement": closed,
                    "closedInFixedAssets": closed,
                }
            )
    created = datetime(2024, 12, 15, 8, 30, tzinfo=UTC)
    for index, (number, name) in enumerate(sorted(chart.accounts.items()), start=1):
        company.accounts.append(
            {
                "accountId": 100 + index,
                "accountCd": str(number),
                "accountClass": _type(number).upper(),
                "type": _type(number),
                "active": True,
                "description": name,
                "postOption": "Summary",
                "currency": company.currency if number == chart.bank else None,
                "taxCategory": None,
                "cashAccount": number == chart.bank,
                "publicCode1": number,
                "externalCode1": None,
                "analysisCode": None,
                "lastModifiedDateTime": _stamp(created),
            }
        )
    for vat_id, description, kind, rate, account in chart.vats:
        company.vats.append(
            {
                "vatId": vat_id,
                "description": description,
                "type": kind,
                "deductibleVat": False,
                "reverseVat": False,
                "statisticalVat": False,
                "pendingVat": False,
                "glAccounts": {"vatAccount": {"number": str(account)} if account else None},
                "schedules": [{"startDate": "2017-01-01T00:00:00", "vatRate": float(rate)}],
                "lastModifiedDateTime": _stamp(created),
            }
        )
    opening = dict(chart.opening)
    opening[chart.retained] = -sum(opening.values(), Decimal(0))
    zero = Decimal(0)
    opening_text = "Inngående balanse" if company.country == "NO" else "Ingående balans"
    lines = [
        {
            "lineNumber": index,
            "accountNumber": str(number),
            "subaccount": {"id": "0"},
            "debitAmount": float(max(amount, zero)),
            "creditAmount": float(max(-amount, zero)),
            "referenceNumber": "IB",
            "transactionDescription": opening_text,
            "vatCode": None,
            "customerSupplier": None,
        }
        for index, (number, amount) in enumerate(sorted(opening.items()), start=1)
    ]
    batches = [_batch(1, date(2025, 1, 1), opening_text, lines, created, company.currency)]
    for year, months in ((2025, 12), (2026, last_month)):
        for month in range(1, months + 1):
            for _ in range(per_month):
                text, debit, credit, code, (low, high) = rng.choice(chart.patterns)
                day = date(year, month, rng.randint(1, 28))
                modified = datetime.combine(day, datetime.min.time(), UTC) + timedelta(
                    days=rng.randint(0, 3),
                    hours=rng.randint(8, 16),
                    minutes=rng.randint(0, 59),
                    milliseconds=rng.randint(0, 999),
                )
                batches.append(
                    _batch(
                        0,
                        day,
                        text,
                        _lines(chart, text, debit, credit, code, Decimal(rng.randint(low, high))),
                        modified,
                        company.currency,
                    )
                )
    batches[1:] = sorted(batches[1:], key=lambda item: item["transactionDate"])
    for number, batch in enumerate(batches, start=1):
        batch["batchNumber"] = f"{number:06d}"
    company.transactions = batches
    for kind, names in (("customer", _PARTIES[company.country][0]), ("supplier", _PARTIES[company.country][1])):
        target = company.customers if kind == "customer" else company.suppliers
        for index, name in enumerate(names, start=1):
            target.append(
                {
                    "internalId": index,
                    "number": f"{10000 + index if kind == 'customer' else 50000 + index}",
                    "name": name,
                    "status": "Active",
                    "corporateId": None,
                    "currencyId": company.currency,
                    "lastModifiedDateTime": _stamp(created + timedelta(days=index)),
                }
            )


_PARTIES = {
    "NO": (
        ["Fiskeutsalg Bergen AS", "Restaurant Kaia AS", "Nordic Seafood Export AS"],
        ["Fjordfangst AS", "Emballasjehuset AS", "Kjøleteknikk Vest AS"],
    ),
    "SE": (
        ["Bostadsbolaget Norr AB", "Kommunfastigheter AB", "Villaägare i Umeå"],
        ["Byggmaterial Nord AB", "Maskinuthyrning AB", "IT-Partner Umeå AB"],
    ),
}


def balances(company: SimCompany, period: str) -> list[dict[str, Any]]:
    """`/v2/generalLedgerBalance` rows of one period (yyyyMM): balance-sheet accounts carry over, the income
    statement starts each year at zero and last years' result sits in retained earnings."""
    year = int(period[:4])
    chart = _CHARTS[company.country]
    names = {int(item["accountCd"]): item["description"] for item in company.accounts}
    begin: dict[int, Decimal] = defaultdict(Decimal)
    debit: dict[int, Decimal] = defaultdict(Decimal)
    credit: dict[int, Decimal] = defaultdict(Decimal)
    modified: dict[int, str] = {}
    for batch in company.transactions:
        batch_period = batch["financialPeriod"]
        if batch_period > period:
            continue
        for line in batch["journalTransactionLines"]:
            number = int(line["accountNumber"])
            net = Decimal(str(line["debitAmount"])) - Decimal(str(line["creditAmount"]))
            if batch_period == period:
                debit[number] += Decimal(str(line["debitAmount"]))
                credit[number] += Decimal(str(line["creditAmount"]))
                modified[number] = max(modified.get(number, ""), batch["lastModifiedDateTime"])
            elif _income(number) and int(batch_period[:4]) < year:
                begin[chart.retained] += net  # closed into retained earnings at year end
            else:
                begin[number] += net
    rows = []
    for number in sorted(set(begin) | set(debit) | set(credit)):
        ytd = begin[number] + debit[number] - credit[number]
        rows.append(
            {
                "branch": {"number": "1", "name": "Hovedkontor"},
                "ledger": {"number": "L", "description": "Actual"},
                "balanceType": "Actual",
                "financialPeriod": period,
                "account": {"number": str(number), "type": _type(number), "description": names.get(number, "")},
                "subAccountCd": "0",
                "currencyId": company.currency,
                "periodToDateDebit": float(debit[number]),
                "periodToDateCredit": float(credit[number]),
                "beginningBalance": float(begin[number]),
                "yearToDateBalance": float(ytd),
                "yearClosed": year < 2026,
                "lastModifiedDateTime": modified.get(number, f"{period[:4]}-{period[4:]}-01T00:00:00.000"),
            }
        )
    return rows


SIMULATED_SECRET = "simulated-secret"
# Deterministic tenant ids, so the demo and the tests can name them.
HAVBRIS_CUSTOMER = "5b0c1f7e-3a54-4c1e-9d0a-7f3e2b9c4a11"
SJOMAT_TENANT = "8bdf18fd-21cc-11e9-b307-0aa512338dd6"
EIENDOM_TENANT = "2f9d6c3a-8e41-4b7d-a5c2-0d1e9f8b7a63"
DRIFT_TENANT = "c4e8a2b6-1d3f-4a5c-8e7b-9f0a1b2c3d4e"
FJALLVIND_CUSTOMER = "9a7b5c3d-1e2f-4a6b-8c0d-e1f2a3b4c5d6"
FJALLVIND_TENANT = "e3d2c1b0-a9f8-4e7d-b6c5-a4b3c2d1e0f9"


def seed_visma_net(
    *,
    now: Callable[[], datetime] | None = None,
    client_id: str | None = "simulated-client",
    client_secret: str = SIMULATED_SECRET,
    redirect_uris: Iterable[str] = (),
) -> VismaNetWorld:
    """Havbris Gruppen (NO): Havbris Sjømat AS integrated for `client_id`, Havbris Eiendom AS not yet, Havbris
    Drift AS created later (the `later_company` switch); Fjällvind Bygg AB (SE) integrated. Kari is customer
    administrator of Havbris; Erik of Fjällvind."""
    world = VismaNetWorld(now=now)
    havbris = SimCustomer(HAVBRIS_CUSTOMER, "Havbris Gruppen AS")
    fjallvind = SimCustomer(FJALLVIND_CUSTOMER, "Fjällvind Bygg AB")
    companies = [
        (havbris, SimCompany(SJOMAT_TENANT, havbris.tenant, "Havbris Sjømat AS", "931184202", "NO", "NOK"), 1, 12),
        (havbris, SimCompany(EIENDOM_TENANT, havbris.tenant, "Havbris Eiendom AS", "998765439", "NO", "NOK"), 2, 4),
        (
            havbris,
            SimCompany(DRIFT_TENANT, havbris.tenant, "Havbris Drift AS", "925473189", "NO", "NOK", created_later=True),
            3,
            2,
        ),
        (
            fjallvind,
            SimCompany(FJALLVIND_TENANT, fjallvind.tenant, "Fjällvind Bygg AB", "5566778899", "SE", "SEK"),
            4,
            6,
        ),
    ]
    for customer, company, seed, per_month in companies:
        _books(company, seed=seed, per_month=per_month)
        customer.companies.append(company.tenant)
        world.companies[company.tenant] = company
    world.customers = {havbris.tenant: havbris, fjallvind.tenant: fjallvind}
    kari = SimUser(
        "kari@havbris.no",
        "demo",
        "Kari Havik",
        {
            HAVBRIS_CUSTOMER: {CUSTOMER_ADMINISTRATOR},
            SJOMAT_TENANT: {CUSTOMER_ADMINISTRATOR, INTEGRATION_ADMINISTRATOR, API_USER},
            EIENDOM_TENANT: {CUSTOMER_ADMINISTRATOR},
        },
    )
    lars = SimUser("lars@havbris.no", "demo", "Lars Berg", {EIENDOM_TENANT: {API_USER}})
    erik = SimUser(
        "erik@fjallvind.se",
        "demo",
        "Erik Lundgren",
        {
            FJALLVIND_CUSTOMER: {CUSTOMER_ADMINISTRATOR},
            FJALLVIND_TENANT: {CUSTOMER_ADMINISTRATOR, INTEGRATION_ADMINISTRATOR, API_USER},
        },
    )
    world.users = {user.email: user for user in (kari, lars, erik)}
    if client_id is not None:
        world.register_client(client_id, client_secret, redirect_uris)
        world.approve(client_id, SJOMAT_TENANT, {SERVICE_READ}, by=kari.email)
        world.approve(client_id, FJALLVIND_TENANT, {SERVICE_READ}, by=erik.email)
    return world


# ---------------------------------------------------------------- HTTP

_STYLE = "body{font:16px system-ui;max-width:32rem;margin:3rem auto}label{display:block;margin:.5rem 0}"


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f"<!doctype html><html><head><title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>Visma — {escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


def _oauth_error(error: str, status: int = 400, description: str | None = None) -> JSONResponse:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return JSONResponse(body, status_code=status)


def _message(status: int, text: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"message": f"VismaId: {uuid.uuid4()}. {text}"}, status_code=status, headers=headers)


def _ipp(status: int, message: str, code: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {
            "ExceptionType": "IPPException",
            "ExceptionMessage": message,
            "ExceptionFaultCode": code,
            "ExceptionMessageID": f"{code}_{uuid.uuid4()}",
            "ExceptionDetails": "",
        },
        status_code=status,
        headers=headers,
    )


def _moment(text: str) -> datetime | None:
    """A lastModifiedDateTime in one of the formats the API accepts, or None."""
    for pattern in (
        "%Y-%m-%d",
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M:%S.%f",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M:%S.%f",
    ):
        try:
            return datetime.strptime(text, pattern).replace(tzinfo=UTC)
        except ValueError:
            continue
    return None


def _compare(value: datetime, condition: str, bound: datetime) -> bool:
    return {
        ">=": value >= bound,
        "<=": value <= bound,
        ">": value > bound,
        "<": value < bound,
    }[condition]


class _Refusal(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


def create_visma_net_app(world: VismaNetWorld) -> Starlette:
    """Visma Connect at /connect/… and the Visma.net ERP API at /erp/…, plus /_sim/switches and /_sim/reset."""

    # ------------------------------------------------------------ Connect: interactive sign-in

    async def authorize(request: Request) -> Response:
        q = request.query_params
        client = world.clients.get(q.get("client_id", ""))
        if client is None or q.get("redirect_uri") not in client.redirect_uris:
            return _page("Error", "<p>unauthorized_client: unknown client or redirect URI.</p>", 400)
        asked = q.get("scope", "").split()
        if (
            q.get("response_type") != "code"
            or q.get("code_challenge_method") != "S256"
            or not q.get("code_challenge")
            or any(scope not in KNOWN_SCOPES for scope in asked)
        ):
            return _page("Error", "<p>invalid_request: response_type=code, known scopes and PKCE S256.</p>", 400)
        pending_id = secrets.token_urlsafe(16)
        world.pending[pending_id] = Pending(
            client.client_id, q["redirect_uri"], asked, q.get("state", ""), q["code_challenge"]
        )
        return _login_form(request, pending_id)

    def _login_form(request: Request, pending_id: str, error: str = "") -> Response:
        note = f"<p style='color:#b00'>{escape(error)}</p>" if error else ""
        return _page(
            "Sign in",
            f"{note}<form method='post' action='{_root(request)}/connect/login'>"
            f"<input type='hidden' name='pending' value='{pending_id}'>"
            "<label>E-mail <input name='email' type='email'></label>"
            "<label>Password <input name='password' type='password'></label>"
            "<button type='submit'>Next</button></form>",
        )

    def _tenant_name(tenant: str) -> str:
        if tenant in world.customers:
            return f"{world.customers[tenant].name} (customer)"
        return world.companies[tenant].name

    async def login(request: Request) -> Response:
        form = await request.form()
        pending_id = str(form.get("pending", ""))
        pending = world.pending.get(pending_id)
        if pending is None:
            return _page("Error", "<p>This sign-in has expired. Start again.</p>", 400)
        user = world.users.get(str(form.get("email", "")).lower())
        if user is None or user.password != form.get("password"):
            return _login_form(request, pending_id, "Wrong e-mail or password.")
        pending.user = user
        # Visma Connect lists every organisation the user belongs to, the customer-level one included: the
        # pitfall of picking the customer instead of the company starts here.
        tenants = [tenant for tenant in user.roles if tenant in world.customers or world.visible(tenant)]
        options = "".join(
            f"<label><input type='radio' name='tenant_id' value='{tenant}'> {escape(_tenant_name(tenant))}</label>"
            for tenant in tenants
        )
        return _page(
            "Choose organisation",
            f"<form method='post' action='{_root(request)}/connect/select-tenant'>"
            f"<input type='hidden' name='pending' value='{pending_id}'>{options}"
            "<button type='submit'>Continue</button></form>",
        )

    async def select_tenant(request: Request) -> Response:
        form = await request.form()
        pending_id = str(form.get("pending", ""))
        pending = world.pending.get(pending_id)
        if pending is None or pending.user is None:
            return _page("Error", "<p>This sign-in has expired. Start again.</p>", 400)
        tenant = str(form.get("tenant_id", ""))
        if tenant not in pending.user.roles:
            return _page("Error", "<p>Choose one of your organisations.</p>", 400)
        pending.tenant = tenant
        # Every scope but `openid` can be unticked (one field each: `grant:<scope>`); `choose` says the page had
        # the boxes, so a form without any ticked grants none of them.
        scopes = "".join(
            f"<li>{escape(scope)}</li>"
            if scope == "openid"
            else f"<li><label><input type='checkbox' name='grant:{escape(scope)}' value='on' checked> "
            f"{escape(scope)}</label></li>"
            for scope in pending.scopes
        )
        return _page(
            "Allow access",
            f"<p>The app asks for access to <strong>{escape(_tenant_name(tenant))}</strong>:</p>"
            f"<form method='post' action='{_root(request)}/connect/consent'><ul>{scopes}</ul>"
            f"<input type='hidden' name='pending' value='{pending_id}'>"
            "<input type='hidden' name='choose' value='1'>"
            "<button name='decision' value='accept'>Accept</button> "
            "<button name='decision' value='deny'>Deny</button></form>",
        )

    async def consent(request: Request) -> Response:
        form = await request.form()
        pending = world.pending.pop(str(form.get("pending", "")), None)
        if pending is None or pending.user is None or pending.tenant is None:
            return _page("Error", "<p>This sign-in has expired. Start again.</p>", 400)
        if form.get("decision") != "accept":
            query = urlencode({"error": "access_denied", "state": pending.state})
            return RedirectResponse(f"{pending.redirect_uri}?{query}", status_code=302)
        code = secrets.token_urlsafe(24)
        granted = pending.scopes
        if form.get("choose"):
            granted = [scope for scope in granted if scope == "openid" or form.get(f"grant:{scope}") == "on"]
        grant = RefreshGrant(pending.client_id, pending.tenant, granted, pending.user.email)
        world.codes[code] = (grant, pending.redirect_uri, pending.challenge, world.now() + CODE_LIFETIME)
        query = urlencode({"code": code, "state": pending.state})
        return RedirectResponse(f"{pending.redirect_uri}?{query}", status_code=302)

    # ------------------------------------------------------------ Connect: token endpoint

    def _client(request: Request, form: Any) -> SimClient | None:
        auth = request.headers.get("authorization", "")
        if auth.lower().startswith("basic "):
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        else:
            client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
        known = world.clients.get(client_id)
        return known if known and secrets.compare_digest(known.secret, secret) else None

    async def token(request: Request) -> Response:
        form = await request.form()
        world.token_requests.append({key: str(value) for key, value in form.items() if "secret" not in key})
        if world.switches.connect_unavailable:
            return _page("Service Unavailable", "<p>Visma Connect is temporarily unavailable.</p>", 503)
        client = _client(request, form)
        if client is None:
            return _oauth_error("invalid_client", 401)
        grant_type = form.get("grant_type")
        if grant_type == "client_credentials":
            tenant = str(form.get("tenant_id", ""))
            answer = world.service_token(client.client_id, tenant, str(form.get("scope", "")).split())
            if isinstance(answer, str):
                description = INVALID_TENANT if answer == "invalid_tenant" else None
                return _oauth_error(answer, description=description)
            return JSONResponse(answer)
        if grant_type == "authorization_code":
            entry = world.codes.pop(str(form.get("code", "")), None)
            if entry is None:
                return _oauth_error("invalid_grant", description="unknown or used code")
            grant, redirect_uri, challenge, expires = entry
            verifier = str(form.get("code_verifier", ""))
            digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
            if (
                expires <= world.now()
                or grant.client_id != client.client_id
                or form.get("redirect_uri") != redirect_uri
                or digest != challenge
            ):
                return _oauth_error("invalid_grant")
            # The interactive API needs the signed-in user to hold API User in the chosen company.
            user = world.users[grant.user]
            if grant.tenant not in world.customers and not user.has(grant.tenant, API_USER):
                return _oauth_error("invalid_tenant", description=INVALID_TENANT)
            return JSONResponse(world._issue(grant.client_id, grant.tenant, grant.scopes, grant=grant))
        if grant_type == "refresh_token":
            body = world._redeem(str(form.get("refresh_token", "")), client.client_id)
            return _oauth_error("invalid_grant") if body is None else JSONResponse(body)
        return _oauth_error("unsupported_grant_type")

    async def userinfo(request: Request) -> Response:
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        claims = world.userinfo(token)
        if claims is None:
            return Response(status_code=401, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})
        return JSONResponse(claims)

    async def revocation(request: Request) -> Response:
        form = await request.form()
        client = _client(request, form)
        if client is None:
            return _oauth_error("invalid_client", 401)
        value = str(form.get("token", ""))
        grant = world.refresh.pop(value, None)
        if grant is None and value in world.rotated:
            grant = world.rotated.pop(value)[0]
        if grant is not None and grant.client_id == client.client_id:
            grant.alive = False
        return Response(status_code=200)

    # ------------------------------------------------------------ ERP API

    def path_of(request: Request) -> str:
        return request.url.path.removeprefix(_root(request)).removeprefix("/erp")

    def guard(request: Request) -> tuple[AccessToken, SimCompany, dict[str, str]]:
        header = request.headers.get("authorization", "")
        access = world.access.get(header.removeprefix("Bearer ").strip())
        if access is None or access.expires <= world.now():
            raise _Refusal(Response(status_code=401, headers={"x-vbc-traceid": uuid.uuid4().hex}))
        limit, remaining, reset, allowed = world._count(access.client_id, access.tenant)
        headers = {
            "X-RateLimit-Limit": str(limit),
            "X-RateLimit-Remaining": str(remaining),
            "X-RateLimit-Reset": str(reset),
            "X-RateLimit-Policy": RATE_POLICY,
        }
        if not allowed:
            raise _Refusal(
                _message(
                    429,
                    f"You are out of API requests. Retry after {reset} seconds.",
                    {**headers, "Retry-After": str(reset)},
                )
            )
        company = world.visible(access.tenant)
        if company is None or world.switches.customer_tenant:
            # A token for the customer-level tenant: valid at Connect, refused by the ERP without a word.
            raise _Refusal(Response(status_code=401, headers={**headers, "x-vbc-traceid": uuid.uuid4().hex}))
        if world.switches.unavailable:
            raise _Refusal(_message(503, "The service is temporarily unavailable.", headers))
        if world.switches.read_scope_off or not READ_SCOPES & set(access.scopes):
            raise _Refusal(_message(403, "Forbidden: the token does not carry a read scope for this API.", headers))
        if world.switches.no_licence or not company.licensed:
            raise _Refusal(_ipp(500, "No license for this company.", "12027", headers))
        return access, company, headers

    def record(request: Request, tenant: str | None, response: Response) -> Response:
        world.requests.append(
            ApiRequest(request.method, path_of(request), tenant, response.status_code, dict(request.query_params))
        )
        return response

    def modified_filter(request: Request) -> tuple[datetime, str] | None:
        q = request.query_params
        value, condition = q.get("lastModifiedDateTime"), q.get("lastModifiedDateTimeCondition")
        if value is None and condition is None:
            return None
        if value is None or condition is None:
            raise _Refusal(
                _message(400, "lastModifiedDateTime and lastModifiedDateTimeCondition must be given together.")
            )
        moment = _moment(value)
        if moment is None:
            raise _Refusal(
                _message(400, "lastModifiedDateTime: use yyyy-MM-dd, yyyy-MM-dd HH:mm:ss or yyyy-MM-dd HH:mm:ss.FFF.")
            )
        if condition not in CONDITIONS:
            raise _Refusal(_message(400, "lastModifiedDateTimeCondition must be one of >, <, >=, <=."))
        return moment, condition

    def paging(request: Request, path: str) -> tuple[int, int]:
        q = request.query_params
        try:
            number, size = int(q["pageNumber"]), int(q["pageSize"])
        except (KeyError, ValueError):
            raise _Refusal(_message(400, "pageNumber and pageSize are mandatory whole numbers.")) from None
        if number < 1 or size < 1:
            raise _Refusal(_message(400, "pageNumber and pageSize must be at least 1."))
        return number, min(size, MAX_PAGE_SIZE[path])

    def filtered(request: Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        condition = modified_filter(request)
        if condition is None:
            return items
        bound, op = condition
        return [item for item in items if _compare(_moment(item["lastModifiedDateTime"]) or bound, op, bound)]

    def listing(path: str, items: Callable[[Request, SimCompany], list[dict[str, Any]]]) -> Route:
        async def handle(request: Request) -> Response:
            tenant = None
            try:
                _, company, headers = guard(request)
                tenant = company.tenant
                number, size = paging(request, path)
                rows = items(request, company)
                page = rows[(number - 1) * size : number * size]
                response: Response = JSONResponse(page, headers=headers)
            except _Refusal as refusal:
                response = refusal.response
            return record(request, tenant, response)

        return Route(f"/erp{path}", handle, methods=["GET"])

    def accounts(request: Request, company: SimCompany) -> list[dict[str, Any]]:
        return filtered(request, [dict(item) for item in company.accounts])

    def periods(request: Request, company: SimCompany) -> list[dict[str, Any]]:
        return [dict(item) for item in company.periods]

    def ledger_balances(request: Request, company: SimCompany) -> list[dict[str, Any]]:
        period = request.query_params.get("periodId")
        condition = modified_filter(request)
        if period is None and condition is None:
            raise _Refusal(_message(400, "periodId is mandatory unless lastModifiedDateTime is given."))
        if period is not None and (len(period) != 6 or not period.isdigit()):
            raise _Refusal(_message(400, "periodId must be yyyyMM."))
        wanted = [period] if period else sorted({item["financialPeriod"] for item in company.transactions})
        rows = [row for one in wanted for row in balances(company, one)]
        if account := request.query_params.get("account"):
            rows = [row for row in rows if row["account"]["number"] == account]
        return filtered(request, rows)

    def journal_lines(request: Request, company: SimCompany) -> list[dict[str, Any]]:
        period = request.query_params.get("periodId")
        condition = modified_filter(request)
        if period is None and condition is None:
            raise _Refusal(_message(400, "periodId is mandatory unless lastModifiedDateTime is given."))
        batches = filtered(request, company.transactions)
        if period is not None:
            batches = [item for item in batches if item["financialPeriod"] == period]
        batches = sorted(batches, key=lambda item: (item["lastModifiedDateTime"], item["module"], item["batchNumber"]))
        # Paged by line: one entry per line, merged back into batch fragments by `journal` below.
        return [
            {**batch, "journalTransactionLines": [line]}
            for batch in batches
            for line in batch["journalTransactionLines"]
        ]

    def journal(path: str) -> Route:
        async def handle(request: Request) -> Response:
            tenant = None
            try:
                _, company, headers = guard(request)
                tenant = company.tenant
                number, size = paging(request, path)
                page = journal_lines(request, company)[(number - 1) * size : number * size]
                merged: list[dict[str, Any]] = []
                for entry in page:
                    if (
                        merged
                        and merged[-1]["batchNumber"] == entry["batchNumber"]
                        and merged[-1]["module"] == entry["module"]
                    ):
                        merged[-1]["journalTransactionLines"].extend(entry["journalTransactionLines"])
                    else:
                        merged.append({**entry, "journalTransactionLines": list(entry["journalTransactionLines"])})
                response: Response = JSONResponse(merged, headers=headers)
            except _Refusal as refusal:
                response = refusal.response
            return record(request, tenant, response)

        return Route(f"/erp{path}", handle, methods=["GET"])

    def parties(kind: str) -> Callable[[Request, SimCompany], list[dict[str, Any]]]:
        def items(request: Request, company: SimCompany) -> list[dict[str, Any]]:
            return filtered(request, [dict(item) for item in getattr(company, kind)])

        return items

    def vats(request: Request, company: SimCompany) -> list[dict[str, Any]]:
        return filtered(request, [dict(item) for item in company.vats])

    async def organization(request: Request) -> Response:
        tenant = None
        try:
            _, company, headers = guard(request)
            tenant = company.tenant
            body = [
                {
                    "organizationCd": "HOVED",
                    "name": company.name,
                    "organizationType": "WithoutBranches",
                    "fileTaxByBranches": False,
                    "baseCurrency": company.currency,
                    "corporateId": company.org_number,
                    "vatRegistrationId": f"NO{company.org_number}MVA"
                    if company.country == "NO"
                    else f"SE{company.org_number}01",
                    "defaultCountry": {
                        "id": company.country,
                        "name": {"NO": "Norway", "SE": "Sweden"}[company.country],
                    },
                    "currency": {"id": company.currency, "description": company.currency},
                    "lastModifiedDateTime": "2024-12-15T08:30:00.000",
                }
            ]
            response: Response = JSONResponse(body, headers=headers)
        except _Refusal as refusal:
            response = refusal.response
        return record(request, tenant, response)

    # ------------------------------------------------------------ simulator control

    async def switches(request: Request) -> Response:
        if request.method == "POST":
            try:
                world.switch(**(await request.json()))
            except KeyError as exc:
                return JSONResponse({"error": f"unknown switch {exc}"}, status_code=400)
        return JSONResponse(world.switches.__dict__)

    async def reset(request: Request) -> Response:
        world.reset()
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/connect/authorize", authorize, methods=["GET"]),
            Route("/connect/login", login, methods=["POST"]),
            Route("/connect/select-tenant", select_tenant, methods=["POST"]),
            Route("/connect/consent", consent, methods=["POST"]),
            Route("/connect/token", token, methods=["POST"]),
            Route("/connect/revocation", revocation, methods=["POST"]),
            Route("/connect/userinfo", userinfo, methods=["GET", "POST"]),
            listing("/v1/account", accounts),
            listing("/v1/financialPeriod", periods),
            listing("/v2/generalLedgerBalance", ledger_balances),
            journal("/v2/journaltransaction"),
            listing("/v1/customer", parties("customers")),
            listing("/v1/supplier", parties("suppliers")),
            listing("/v1/vat", vats),
            Route("/erp/v1/organization", organization, methods=["GET"]),
            Route("/_sim/switches", switches, methods=["GET", "POST"]),
            Route("/_sim/reset", reset, methods=["POST"]),
        ]
    )
