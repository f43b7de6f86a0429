"""Visma eAccounting's identity server and API v2, simulated for the demo and the tests.

They answer in the shapes of Visma's published Swagger (PascalCase, the Meta/Data page envelope, the
ErrorCode/DeveloperErrorMessage/ErrorId error body) and reproduce its pitfalls as switches: the silent
*default company*, missing full program permission, no bookkeeping module, revoked consent, rate limits.
"""

from __future__ import annotations

import base64
import hashlib
import random
import secrets
import uuid
from collections import defaultdict
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

ACCESS_LIFETIME = timedelta(hours=1)
CODE_LIFETIME = timedelta(minutes=5)
MAX_PAGE_SIZE = 1000


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
    product_variant: bool = False
    outage: bool = False
    force_rate_limit: bool = False
    rate_limit_per_minute: int = 600


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


class EAccountingWorld:
    """Shared state of the identity server and the API."""

    def __init__(self, *, now: Any = None) -> None:
        self.now = now or (lambda: datetime.now(UTC))
        self.switches = EAccountingSwitches()
        self.clients: dict[str, tuple[str, set[str]]] = {}
        self.companies: dict[str, SimCompany] = {}
        self.users: dict[str, SimUser] = {}
        self.pending: dict[str, Pending] = {}
        self.codes: dict[str, tuple[Grant, str, str, datetime]] = {}
        self.access: dict[str, tuple[Grant, datetime]] = {}
        self.refresh: dict[str, Grant] = {}
        self.requests: list[ApiRequest] = []
        self._windows: dict[tuple[str, str], list[datetime]] = defaultdict(list)

    def register_client(self, client_id: str, secret: str, redirect_uris: set[str]) -> None:
        """Accept an app registration."""
        self.clients[client_id] = (secret, set(redirect_uris))

    def company_id_by_org(self, org_number: str) -> str:
        """A company's id from its organisation number."""
        return next(company.id for company in self.companies.values() if company.org_number == org_number)

    def issued_secrets(self) -> set[str]:
        """Every code and token handed out (for the test that no secret reaches a log)."""
        return {*self.codes, *self.access, *self.refresh}

    def switch(self, **values: Any) -> None:
        """Set switches by name."""
        names = {item.name for item in fields(EAccountingSwitches)}
        for name, value in values.items():
            if name not in names:
                raise KeyError(name)
            setattr(self.switches, name, value)

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


def _day(value: date) -> str:
    return f"{value.isoformat()}T00:00:00"


ACCOUNTS = {
    1500: "Kundefordringer",
    1920: "Bankinnskudd",
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
}
_PATTERNS = [
    ("Kontantsalg", 1920, 3000, 2700, (800, 9000)),
    ("Faktura kunde", 1500, 3000, 2700, (2000, 25000)),
    ("Innbetaling kunde", 1920, 1500, None, (2000, 25000)),
    ("Varekjøp mel og gjær", 4000, 2400, 2710, (1500, 18000)),
    ("Betaling leverandør", 2400, 1920, None, (1500, 18000)),
    ("Husleie", 6300, 1920, None, (14500, 14500)),
    ("Strøm", 6340, 1920, None, (900, 4200)),
    ("Kontorrekvisita", 6800, 1920, None, (150, 1600)),
    ("Reise", 7140, 1920, None, (300, 3500)),
]


def _books(company: SimCompany, *, seed: int, per_month: int, months: int) -> None:
    rng = random.Random(seed)
    for year in (2025, 2026):
        company.fiscal_years.append(
            {
                "Id": str(uuid.UUID(int=rng.getrandbits(128))),
                "StartDate": _day(date(year, 1, 1)),
                "EndDate": _day(date(year, 12, 31)),
                "IsLockedForAccounting": year == 2025,
                "BookkeepingMethod": 0,
            }
        )
    company.accounts = dict(ACCOUNTS)
    number = 0
    for year, last_month in ((2025, 12), (2026, months)):
        for month in range(1, last_month + 1):
            for _ in range(per_month):
                number += 1
                text, debit, credit, vat, (low, high) = rng.choice(_PATTERNS)
                amount = Decimal(rng.randint(low, high))
                day = date(year, month, rng.randint(1, 28))
                rows = [
                    {
                        "AccountNumber": debit,
                        "AccountDescription": ACCOUNTS[debit],
                        "DebitAmount": float(amount),
                        "CreditAmount": 0.0,
                        "TransactionText": text,
                    }
                ]
                if vat is None:
                    rows.append(
                        {
                            "AccountNumber": credit,
                            "AccountDescription": ACCOUNTS[credit],
                            "DebitAmount": 0.0,
                            "CreditAmount": float(amount),
                            "TransactionText": text,
                        }
                    )
                else:
                    net = (amount / Decimal("1.25")).quantize(Decimal("0.01"))
                    tax = amount - net
                    net_account, tax_side = (credit, "credit") if debit in (1500, 1920) else (debit, "debit")
                    if tax_side == "credit":
                        rows.append(
                            {
                                "AccountNumber": net_account,
                                "AccountDescription": ACCOUNTS[net_account],
                                "DebitAmount": 0.0,
                                "CreditAmount": float(net),
                                "TransactionText": text,
                            }
                        )
                        rows.append(
                            {
                                "AccountNumber": vat,
                                "AccountDescription": ACCOUNTS[vat],
                                "DebitAmount": 0.0,
                                "CreditAmount": float(tax),
                                "TransactionText": "MVA",
                            }
                        )
                    else:
                        rows = [
                            {
                                "AccountNumber": debit,
                                "AccountDescription": ACCOUNTS[debit],
                                "DebitAmount": float(net),
                                "CreditAmount": 0.0,
                                "TransactionText": text,
                            },
                            {
                                "AccountNumber": vat,
                                "AccountDescription": ACCOUNTS[vat],
                                "DebitAmount": float(tax),
                                "CreditAmount": 0.0,
                                "TransactionText": "MVA",
                            },
                            {
                                "AccountNumber": credit,
                                "AccountDescription": ACCOUNTS[credit],
                                "DebitAmount": 0.0,
                                "CreditAmount": float(amount),
                                "TransactionText": text,
                            },
                        ]
                fiscal_year = company.fiscal_years[0 if year == 2025 else 1]["Id"]
                company.vouchers.append(
                    {
                        "Id": str(uuid.UUID(int=rng.getrandbits(128))),
                        "VoucherDate": _day(day),
                        "VoucherText": text,
                        "NumberAndNumberSeries": f"A {number}",
                        "NumberSeries": "A",
                        "VoucherType": 2,
                        "ModifiedUtc": f"{day.isoformat()}T12:00:00Z",
                        "Rows": rows,
                        "_fiscal_year": fiscal_year,
                    }
                )
    company.vouchers.sort(key=lambda voucher: voucher["VoucherDate"])


def seed_world(*, now: Any = None) -> EAccountingWorld:
    """Realistic companies and users: Ola approves for Nordlys Bakeri AS, and Feil Firma AS is his default."""
    world = EAccountingWorld(now=now)
    nordlys = SimCompany(str(uuid.UUID(int=1)), "Nordlys Bakeri AS", "988077917", "NO", "NOK")
    feil = SimCompany(str(uuid.UUID(int=2)), "Feil Firma AS", "923609016", "NO", "NOK")
    fjall = SimCompany(str(uuid.UUID(int=3)), "Fjällbrynt Konsult AB", "5560360793", "SE", "SEK")
    _books(nordlys, seed=1, per_month=24, months=10)
    _books(feil, seed=2, per_month=6, months=10)
    _books(fjall, seed=3, per_month=10, months=10)
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


# ---------------------------------------------------------------- identity server

_STYLE = "body{font:16px system-ui;max-width:32rem;margin:3rem auto}label{display:block;margin:.5rem 0}"


def _page(title: str, body: str, status: int = 200) -> HTMLResponse:
    html = (
        f"<!doctype html><html><head><title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>Visma Online — {escape(title)}</h1>{body}</body></html>"
    )
    return HTMLResponse(html, status_code=status)


def _root(request: Request) -> str:
    return str(request.scope.get("root_path", ""))


def _oauth_error(error: str, status: int = 400, description: str | None = None) -> JSONResponse:
    body = {"error": error}
    if description:
        body["error_description"] = description
    return JSONResponse(body, status_code=status)


SCOPE_WORDS = {
    "ea:api": "Use the eAccounting API on your behalf",
    "offline_access": "Keep access when you are not logged in",
    "ea:accounting_readonly": "Read accounting data (vouchers, accounts, balances)",
    "ea:accounting": "Read and change accounting data",
}


def create_identity_app(world: EAccountingWorld) -> Starlette:
    """The identity server: /connect/authorize (login, company picker, consent), /connect/token, revocation."""

    async def authorize(request: Request) -> Response:
        q = request.query_params
        client = world.clients.get(q.get("client_id", ""))
        if client is None or q.get("redirect_uri") not in client[1]:
            return _page("Error", "<p>unauthorized_client: unknown client or redirect URI.</p>", 400)
        scopes = q.get("scope", "").split()
        if (
            q.get("response_type") != "code"
            or "ea:api" not in scopes
            or q.get("code_challenge_method") != "S256"
            or not q.get("code_challenge")
        ):
            return _page(
                "Error", "<p>invalid_request: response_type=code, scope ea:api and PKCE S256 are required.</p>", 400
            )
        acr = q.get("acr_values", "").replace("+", " ").split()
        pending_id = secrets.token_urlsafe(16)
        world.pending[pending_id] = Pending(
            q["client_id"],
            q["redirect_uri"],
            scopes,
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
        asked = "".join(f"<li>{escape(SCOPE_WORDS.get(scope, scope))}</li>" for scope in pending.scopes)
        return _page(
            "Allow access",
            f"<p>The app asks for access to <strong>{escape(pending.company.name)}"
            f"</strong>:</p><ul>{asked}</ul><form method='post' action='{_root(request)}/consent'>"
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
            # Refresh tokens rotate: each one works once, and the answer carries the next.
            refreshed = world.refresh.pop(str(form.get("refresh_token", "")), None)
            if refreshed is None or not refreshed.alive or world.switches.consent_revoked:
                return _oauth_error("invalid_grant")
            if refreshed.client_id != client_id:
                return _oauth_error("invalid_grant")
            return JSONResponse(world._issue(refreshed))
        return _oauth_error("unsupported_grant_type")

    async def revocation(request: Request) -> Response:
        form = await request.form()
        if _client(request, form) is None:
            return _oauth_error("invalid_client", 401)
        grant = world.refresh.pop(str(form.get("token", "")), None)
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


def _error(status: int, code: int, message: str) -> JSONResponse:
    return JSONResponse(
        {"ErrorCode": code, "DeveloperErrorMessage": message, "ErrorId": str(uuid.uuid4())}, status_code=status
    )


_SWITCH_ERRORS = [
    ("consent_revoked", 401, 4005, "Unauthorized: the grant was revoked"),
    ("no_user_access", 403, 4011, "NoAccessForAuthenticatedUser"),
    ("licence_not_accepted", 403, 4012, "LicenceAgreementNotAccepted"),
    ("scope_missing", 403, 4006, "NoAccessToScopes"),
    ("no_full_permission", 403, 4007, "PermissionDenied: the user lacks permission for this endpoint"),
]
_ACCOUNTING = ("fiscalyears", "accounts", "vouchers", "accountbalances")


def create_api_app(world: EAccountingWorld) -> Starlette:
    """The API: /v2/companysettings, fiscalyears, accounts, vouchers, accountbalances, users."""

    def guard(request: Request) -> tuple[Grant | None, Response | None]:
        header = request.headers.get("authorization", "")
        entry = world.access.get(header.removeprefix("Bearer ").strip())
        if entry is None or entry[1] <= world.now() or not entry[0].alive:
            return None, _error(401, 4005, "NotAuthorized: missing, unknown or expired access token")
        grant = entry[0]
        path = request.url.path.removeprefix(_root(request))
        window = world._windows[(grant.client_id, path)]
        cutoff = world.now() - timedelta(minutes=1)
        window[:] = [moment for moment in window if moment > cutoff]
        if world.switches.force_rate_limit or len(window) >= world.switches.rate_limit_per_minute:
            wait = 55 if not window else max(1, int((window[0] - cutoff).total_seconds()))
            return grant, _error(
                429,
                4010,
                f"API calls quota exceeded! maximum admitted "
                f"{world.switches.rate_limit_per_minute} per Minute. "
                f"Try again in {wait} seconds.",
            )
        window.append(world.now())
        if world.switches.outage:
            return grant, _error(503, 5001, "CantReachSystemDependency")
        for name, status, code, message in _SWITCH_ERRORS:
            if getattr(world.switches, name):
                return grant, _error(status, code, message)
        accounting = any(f"/v2/{part}" in path for part in _ACCOUNTING)
        if accounting and world.switches.no_bookkeeping:
            return grant, _error(403, 4002, "NoAccessToModule: No access to module: bookkeeping")
        if accounting and world.switches.product_variant:
            return grant, _error(403, 4009, "NoAccessDueToProductVariant")
        return grant, None

    def record(request: Request, grant: Grant | None, response: Response) -> Response:
        world.requests.append(
            ApiRequest(
                request.method,
                request.url.path.removeprefix(_root(request)),
                grant.company.id if grant else None,
                response.status_code,
            )
        )
        return response

    def paged(request: Request, items: list[dict[str, Any]]) -> Response:
        try:
            page = max(1, int(request.query_params.get("$page", "1")))
            size = min(MAX_PAGE_SIZE, max(1, int(request.query_params.get("$pagesize", "50"))))
        except ValueError:
            return _error(400, 6000, "QueryParameterError: $page and $pagesize must be integers")
        pages = max(1, -(-len(items) // size))
        meta = {
            "CurrentPage": page,
            "PageSize": size,
            "TotalNumberOfPages": pages,
            "TotalNumberOfResults": len(items),
            "ServerTimeUtc": world.now().strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        return JSONResponse({"Meta": meta, "Data": items[(page - 1) * size : page * size]})

    def endpoint(build: Any) -> Any:
        async def handle(request: Request) -> Response:
            grant, refusal = guard(request)
            if refusal is not None:
                return record(request, grant, refusal)
            assert grant is not None
            return record(request, grant, build(request, grant))

        return handle

    def companysettings(request: Request, grant: Grant) -> Response:
        company = grant.company
        return JSONResponse(
            {
                "Name": company.name,
                "CountryCode": company.country,
                "CurrencyCode": company.currency,
                "CorporateIdentityNumber": company.org_number,
                "Email": "post@example.test",
                "ProductVariant": 1,
                "TypeOfBusiness": 1,
                "VatPeriod": 2,
                "ActivatedModules": ["bookkeeping", "invoicing"],
            }
        )

    def fiscalyears(request: Request, grant: Grant) -> Response:
        return paged(request, list(grant.company.fiscal_years))

    def _accounts(company: SimCompany, year_ids: list[str]) -> list[dict[str, Any]]:
        return [
            {"Name": name, "Number": str(number), "FiscalYearId": year, "IsActive": True}
            for year in year_ids
            for number, name in sorted(company.accounts.items())
        ]

    def accounts(request: Request, grant: Grant) -> Response:
        years = [year["Id"] for year in grant.company.fiscal_years]
        wanted = request.path_params.get("fiscalyear_id")
        if wanted is not None and wanted not in years:
            return _error(404, 3001, "FiscalYearDoesNotExist")
        return paged(request, _accounts(grant.company, [wanted] if wanted else years))

    def vouchers(request: Request, grant: Grant) -> Response:
        wanted = request.path_params.get("fiscalyear_id")
        if wanted is not None and wanted not in {year["Id"] for year in grant.company.fiscal_years}:
            return _error(404, 3001, "FiscalYearDoesNotExist")
        items = [
            {key: value for key, value in voucher.items() if not key.startswith("_")}
            for voucher in grant.company.vouchers
            if wanted in (None, voucher["_fiscal_year"])
        ]
        return paged(request, items)

    def accountbalances(request: Request, grant: Grant) -> Response:
        try:
            on = date.fromisoformat(request.path_params["date"])
        except ValueError:
            return _error(400, 6001, "InvalidInput: the date must be yyyy-MM-dd")
        totals: dict[int, Decimal] = defaultdict(Decimal)
        for voucher in grant.company.vouchers:
            if voucher["VoucherDate"][:10] <= on.isoformat():
                for row in voucher["Rows"]:
                    totals[row["AccountNumber"]] += Decimal(str(row["DebitAmount"])) - Decimal(str(row["CreditAmount"]))
        items = [
            {"AccountNumber": number, "AccountName": grant.company.accounts[number], "Balance": float(total)}
            for number, total in sorted(totals.items())
        ]
        return paged(request, items)

    def users(request: Request, grant: Grant) -> Response:
        members = [user for user in world.users.values() if grant.company.id in user.companies]
        return paged(
            request,
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

    return Starlette(
        routes=[
            Route("/v2/companysettings", endpoint(companysettings)),
            Route("/v2/fiscalyears", endpoint(fiscalyears)),
            Route("/v2/accounts", endpoint(accounts)),
            Route("/v2/accounts/{fiscalyear_id}", endpoint(accounts)),
            Route("/v2/vouchers", endpoint(vouchers)),
            Route("/v2/vouchers/{fiscalyear_id}", endpoint(vouchers)),
            Route("/v2/accountbalances/{date}", endpoint(accountbalances)),
            Route("/v2/users", endpoint(users)),
            *_sim_routes(world),
        ]
    )


def _sim_routes(world: EAccountingWorld) -> list[Route]:
    async def switches(request: Request) -> Response:
        if request.method == "POST":
            try:
                world.switch(**(await request.json()))
            except KeyError as exc:
                return JSONResponse({"error": f"unknown switch {exc}"}, status_code=400)
        return JSONResponse(world.switches.__dict__)

    async def reset(request: Request) -> Response:
        world.switches = EAccountingSwitches()
        return JSONResponse({"ok": True})

    return [Route("/_sim/switches", switches, methods=["GET", "POST"]), Route("/_sim/reset", reset, methods=["POST"])]
