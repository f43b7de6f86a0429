"""Visma Business NXT, simulated for the demo and the tests: Visma Connect's token endpoint (client credentials
only) and the service GraphQL endpoint.

The GraphQL side is executed by graphql-core against a small schema in Business NXT's shapes:
`availableCustomers`, `availableCompanies` (only companies whose *Connect Application Access* row names the
calling client, which is the activation a client's system administrator does in NXT), and `useCompany(no:)` with
the tables the bot reads, each a Relay-like connection (`first`/`after`, `pageInfo`, `totalCount`, `items`)
with NXT's `filter` (`_and`/`_or`, `_eq`/`_gt`/`_gte`/`_lt`/`_lte`/`_in`) and `orderBy`. Cursors are keyset
cursors (the sort key of the last row), so a row changed while a client pages moves to the end instead of
shifting the pages under it. Dates are integers `yyyymmdd` and `changedTimestamp` is the server's local time
without a zone, as in NXT.

How NXT answers: a missing, unknown or expired token is HTTP 401 with nginx's HTML page; anything else is
HTTP 200 with `data` and/or an `errors` array whose entries carry `extensions.status_name`. A company the
client may not use gives `useCompany: null` and an error. The table `companyInformation` and the column names
of the voucher lines are modelled on Visma Business; the stored docs do not list them [inferred].
"""

from __future__ import annotations

import asyncio
import base64
import random
import secrets
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from graphql import FieldNode, GraphQLError, GraphQLSchema, OperationDefinitionNode, build_schema, graphql, parse
from graphql.language import ValueNode
from graphql.utilities import value_from_ast_untyped
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route

ACCESS_LIFETIME = timedelta(hours=1)
READONLY_SCOPE = "business-graphql-service-api:access-group-based-readonly"
KNOWN_SCOPES = frozenset({READONLY_SCOPE, "business-graphql-service-api:access-group-based"})
MAX_PAGE_SIZE = 5000
SERVER_ZONE = ZoneInfo("Europe/Oslo")

# ---------------------------------------------------------------- schema

# The tables of a company this simulator serves, with their columns' GraphQL types.
TABLES: dict[str, dict[str, str]] = {
    "companyInformation": {
        "name": "String",
        "organisationNo": "String",
        "countryCode": "String",
        "currencyCode": "String",
        "changedTimestamp": "DateTime",
    },
    "generalLedgerAccount": {
        "accountNo": "Int",
        "name": "String",
        "taxCode": "Int",
        "accountGroup": "String",
        "blocked": "Boolean",
        "changedTimestamp": "DateTime",
    },
    "taxCode": {"taxCode": "Int", "description": "String", "rate": "Float", "changedTimestamp": "DateTime"},
    "voucher": {
        "voucherNo": "Int",
        "lineNo": "Int",
        "voucherDate": "Int",
        "voucherType": "Int",
        "debitAccountNo": "Int",
        "creditAccountNo": "Int",
        "amountDomestic": "Float",
        "taxCode": "Int",
        "text": "String",
        "changedTimestamp": "DateTime",
    },
}
# Each table's primary key: the tie-breaker of every order, so a keyset cursor is exact.
KEYS: dict[str, tuple[str, ...]] = {
    "companyInformation": ("name",),
    "generalLedgerAccount": ("accountNo",),
    "taxCode": ("taxCode",),
    "voucher": ("voucherNo", "lineNo"),
}


def _type_name(table: str) -> str:
    return table[0].upper() + table[1:]


def _sdl() -> str:
    parts = [
        "scalar DateTime",
        "scalar Long",
        "enum SortOrder { ASC DESC }",
        "type PageInfo { hasNextPage: Boolean! hasPreviousPage: Boolean! startCursor: String endCursor: String }",
        "type Customer { name: String vismaNetCustomerId: Long }",
        "type CustomerConnection { totalCount: Int! items: [Customer!]! }",
        "type AvailableCompany { name: String vismaNetCompanyId: Long vismaNetCustomerId: Long }",
        "type AvailableCompanyConnection { totalCount: Int! items: [AvailableCompany!]! }",
    ]
    for scalar in ("Int", "Float", "String", "DateTime"):
        ops = " ".join(f"{op}: {scalar}" for op in ("_eq", "_not_eq", "_gt", "_gte", "_lt", "_lte"))
        parts.append(f"input {scalar}Filter {{ {ops} _in: [{scalar}] }}")
    tables = []
    for table, columns in TABLES.items():
        name = _type_name(table)
        filterable = {column: kind for column, kind in columns.items() if kind != "Boolean"}
        parts += [
            f"type {name} {{ {' '.join(f'{column}: {kind}' for column, kind in columns.items())} }}",
            f"type {name}Connection {{ totalCount: Int! pageInfo: PageInfo! items: [{name}!]! }}",
            f"input FilterExpression_{name} {{ _and: [FilterExpression_{name}!] _or: [FilterExpression_{name}!] "
            + " ".join(f"{column}: {kind}Filter" for column, kind in filterable.items())
            + " }",
            f"input OrderBy_{name} {{ {' '.join(f'{column}: SortOrder' for column in columns)} }}",
        ]
        tables.append(
            f"{table}(first: Int, after: String, filter: FilterExpression_{name}, orderBy: [OrderBy_{name}!]): "
            f"{name}Connection"
        )
    parts += [
        f"type Company {{ {' '.join(tables)} }}",
        "type Query { availableCustomers(first: Int, last: Int): CustomerConnection "
        "availableCompanies(customerNo: Long, first: Int, last: Int): AvailableCompanyConnection "
        "useCompany(no: Int!): Company }",
    ]
    return "\n".join(parts)


def _schema() -> GraphQLSchema:
    schema = build_schema(_sdl())
    # Long holds Visma.net ids beyond GraphQL's 32-bit Int; DateTime is NXT's "yyyy-MM-ddTHH:mm:ss.fff" text.
    for name, convert in (("Long", int), ("DateTime", str)):
        scalar: Any = schema.get_type(name)
        scalar.serialize = convert
        scalar.parse_value = convert

        def literal(node: ValueNode, variables: Any = None, convert: Callable[[Any], Any] = convert) -> Any:
            return convert(value_from_ast_untyped(node, variables))

        scalar.parse_literal = literal
    return schema


# ---------------------------------------------------------------- world state


@dataclass
class BusinessNxtSwitches:
    """Failure modes; settable from Python or with POST /_sim/switches."""

    not_activated: list[int] = field(default_factory=list)  # company numbers whose access rows are gone
    token_expired: bool = False  # every GraphQL request answers 401 (nginx HTML), as an expired token does
    error_in_200: str = ""  # a status_name every GraphQL request answers with, inside HTTP 200
    unavailable: bool = False  # the GraphQL endpoint answers 503
    identity_unavailable: bool = False  # the token endpoint answers 503
    hang_seconds: float = 0.0  # every request waits this long before it is answered


# What an error of each status_name says (the wording is ours; NXT's exact texts are not published).
ERROR_MESSAGES = {
    "AccessDenied": "Access to company {no} is not granted for the application '{client}'.",
    "InternalError": "An internal error occurred while processing the request.",
    "Timeout": "The query did not finish within 59 seconds.",
    "CompanyUnavailable": "Company {no} is temporarily unavailable (maintenance).",
    "LicenseMissing": "The customer has no licence for the Business NXT API.",
}


@dataclass
class NxtCustomer:
    """A Visma customer: the contract that holds companies."""

    vismaNetCustomerId: int
    name: str


@dataclass
class NxtCompany:
    """A company database and its books (table rows in NXT's column names)."""

    no: int  # the company number in NXT (the *Column no.* of an access row)
    vismaNetCompanyId: int  # what `useCompany(no:)` takes
    vismaNetCustomerId: int
    name: str
    organisationNo: str
    countryCode: str = "NO"
    currencyCode: str = "NOK"
    accounts: list[dict[str, Any]] = field(default_factory=list)
    tax_codes: list[dict[str, Any]] = field(default_factory=list)
    vouchers: list[dict[str, Any]] = field(default_factory=list)

    def rows(self, table: str) -> list[dict[str, Any]]:
        """The rows of one table."""
        if table == "companyInformation":
            info = {key: getattr(self, key) for key in ("name", "organisationNo", "countryCode", "currencyCode")}
            return [{**info, "changedTimestamp": "2024-10-01T08:00:00.000"}]
        return {"generalLedgerAccount": self.accounts, "taxCode": self.tax_codes, "voucher": self.vouchers}[table]


@dataclass
class NxtRequest:
    """One request, for tests to count."""

    path: str
    client_id: str | None
    status: int
    fields: list[str] = field(default_factory=list)  # top-level fields of a GraphQL query
    company: int | None = None  # the `no` argument of useCompany


class BusinessNxtWorld:
    """Shared state of the token endpoint and the GraphQL endpoint."""

    def __init__(self, *, now: Callable[[], datetime] | None = None) -> None:
        self.now: Callable[[], datetime] = now or (lambda: datetime.now(UTC))
        self.switches = BusinessNxtSwitches()
        self.clients: dict[str, str] = {}
        self.customers: dict[int, NxtCustomer] = {}
        self.companies: dict[int, NxtCompany] = {}  # by vismaNetCompanyId
        self.access: set[tuple[str, int]] = set()  # Connect Application Access rows: (client_id, company no)
        self.tokens: dict[str, tuple[str, datetime]] = {}
        self.requests: list[NxtRequest] = []
        self.schema = _schema()

    def register_client(self, client_id: str, secret: str) -> None:
        """Accept a service application registered in the Visma Developer Portal."""
        self.clients[client_id] = secret

    def activate(self, client_id: str, company_no: int) -> None:
        """What the client's system administrator does: a Connect Application Access row for our client."""
        self.access.add((client_id, company_no))

    def deactivate(self, client_id: str, company_no: int) -> None:
        """The access row is deleted again."""
        self.access.discard((client_id, company_no))

    def may_use(self, client_id: str, company: NxtCompany) -> bool:
        """Whether a client may read a company (its access row exists and no switch hides it)."""
        return (client_id, company.no) in self.access and company.no not in self.switches.not_activated

    def switch(self, **values: Any) -> None:
        """Set switches by name."""
        names = {item.name for item in fields(BusinessNxtSwitches)}
        for name, value in values.items():
            if name not in names:
                raise KeyError(name)
            setattr(self.switches, name, value)

    def reset(self) -> None:
        """Switches back to their defaults."""
        self.switches = BusinessNxtSwitches()

    def issue_token(self, client_id: str) -> str:
        """A fresh access token for a client (tests use it to skip the token endpoint)."""
        token = secrets.token_urlsafe(32)
        self.tokens[token] = (client_id, self.now() + ACCESS_LIFETIME)
        return token

    def stamp(self) -> str:
        """The server's clock as NXT writes `changedTimestamp`: Norwegian local time, without a zone."""
        return _stamp(self.now())

    def touch_voucher_line(self, company_id: int, voucher_no: int, line_no: int = 1) -> dict[str, Any]:
        """Change one line of a voucher (its text, its changedTimestamp now), as an edit in NXT would."""
        company = self.companies[company_id]
        line = next(row for row in company.vouchers if row["voucherNo"] == voucher_no and row["lineNo"] == line_no)
        line["text"] = f"{line['text']} (corrected)"
        line["changedTimestamp"] = self.stamp()
        return line

    def book_voucher(self, company_id: int, *, day: date, debit: int, credit: int, amount: float, text: str) -> int:
        """Book a new one-line voucher now; its number."""
        company = self.companies[company_id]
        number = max((row["voucherNo"] for row in company.vouchers), default=0) + 1
        company.vouchers.append(_line(number, 1, day, debit, credit, amount, text, None, self.stamp()))
        return number


def _stamp(moment: datetime) -> str:
    return moment.astimezone(SERVER_ZONE).strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}"


# ---------------------------------------------------------------- books

_ACCOUNTS: tuple[tuple[int, str, int | None, str], ...] = (
    (1500, "Kundefordringer", None, "Eiendeler"),
    (1920, "Bankinnskudd", None, "Eiendeler"),
    (2400, "Leverandørgjeld", None, "Gjeld"),
    # The A07 (a-melding) reconciliation compares these with what was reported: tax withheld, employer's
    # contribution (arbeidsgiveravgift) and wages. They are plain ledger accounts in NXT.
    (2600, "Forskuddstrekk", None, "Gjeld"),
    (2700, "Utgående merverdiavgift", None, "Gjeld"),
    (2710, "Inngående merverdiavgift", None, "Gjeld"),
    (2770, "Skyldig arbeidsgiveravgift", None, "Gjeld"),
    (2940, "Skyldige feriepenger", None, "Gjeld"),
    (3000, "Salgsinntekt, avgiftspliktig", 3, "Inntekter"),
    (4000, "Varekjøp", 1, "Kostnader"),
    (5000, "Lønn til ansatte", None, "Kostnader"),
    (5180, "Feriepenger", None, "Kostnader"),
    (5400, "Arbeidsgiveravgift", None, "Kostnader"),
    (6300, "Leie lokale", 1, "Kostnader"),
    (6800, "Kontorrekvisita", 1, "Kostnader"),
    (7140, "Reisekostnad, ikke oppgavepliktig", 1, "Kostnader"),
)
_TAX_CODES = (
    (0, "Ingen mva-behandling", 0.0),
    (1, "Inngående mva, høy sats", 25.0),
    (3, "Utgående mva, høy sats", 25.0),
)
_PURCHASES = ((4000, "Varekjøp"), (6300, "Husleie"), (6800, "Kontorrekvisita"), (7140, "Reise kunde"))


def _line(
    number: int,
    line_no: int,
    day: date,
    debit: int,
    credit: int,
    amount: float,
    text: str,
    tax_code: int | None,
    changed: str,
) -> dict[str, Any]:
    return {
        "voucherNo": number,
        "lineNo": line_no,
        "voucherDate": int(day.strftime("%Y%m%d")),
        "voucherType": 1,
        "debitAccountNo": debit,
        "creditAccountNo": credit,
        "amountDomestic": round(amount, 2),
        "taxCode": tax_code,
        "text": text,
        "changedTimestamp": changed,
    }


def _books(company: NxtCompany, *, seed: int, per_month: int, until: date) -> None:
    """A chart, VAT codes and vouchers from January 2025 to `until`: sales, purchases and monthly payroll."""
    rng = random.Random(seed)
    created = "2024-10-01T08:00:00.000"
    company.accounts = [
        {
            "accountNo": number,
            "name": name,
            "taxCode": tax,
            "accountGroup": group,
            "blocked": False,
            "changedTimestamp": created,
        }
        for number, name, tax, group in _ACCOUNTS
    ]
    company.tax_codes = [
        {"taxCode": code, "description": text, "rate": rate, "changedTimestamp": created}
        for code, text, rate in _TAX_CODES
    ]
    number, year, month = 0, 2025, 1
    while date(year, month, 1) <= until:
        for index in range(per_month + 1):
            number += 1
            day = date(year, month, 28 if index == per_month else rng.randint(1, 27))
            if day > until:
                continue
            changed = f"{(day + timedelta(days=1)).isoformat()}T10:{index % 60:02d}:00.000"
            lines: list[tuple[int, int, float, str, int | None]]
            if index == per_month:  # payroll: gross wages, tax withheld, net paid, employer's contribution
                gross = float(rng.randint(90, 140) * 1000)
                tax, aga = round(gross * 0.32), round(gross * 0.141, 2)
                lines = [
                    (5000, 1920, gross - tax, f"Lønn {month:02d}.{year}", None),
                    (5000, 2600, tax, "Forskuddstrekk", None),
                    (5400, 2770, aga, "Arbeidsgiveravgift", None),
                    (5180, 2940, round(gross * 0.12, 2), "Feriepenger", None),
                ]
            elif rng.random() < 0.5:  # a sale with output VAT
                net = float(rng.randint(20, 400) * 100)
                text = f"Faktura {number}"
                lines = [(1500, 3000, net, text, 3), (1500, 2700, net * 0.25, text, None)]
            else:  # a purchase with input VAT
                account, text = rng.choice(_PURCHASES)
                net = float(rng.randint(5, 200) * 100)
                lines = [(account, 2400, net, text, 1), (2710, 2400, net * 0.25, text, None)]
            for line_no, (debit, credit, amount, text, code) in enumerate(lines, start=1):
                company.vouchers.append(_line(number, line_no, day, debit, credit, amount, text, code, changed))
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def seed_business_nxt(
    *, now: Callable[[], datetime] | None = None, client_id: str = "isv_onboarding_bot"
) -> BusinessNxtWorld:
    """One customer of the firm with three companies; two activated for our client, one not (yet)."""
    world = BusinessNxtWorld(now=now)
    world.register_client(client_id, "nxt-demo-secret")
    world.customers[1234567] = NxtCustomer(1234567, "Fjordkraft Regnskap Kunde")
    for no, company_id, name, org, seed in (
        (1, 5280011, "Havbris Sjømat AS", "988077917", 11),
        (2, 5280012, "Havbris Eiendom AS", "923609016", 12),
        (3, 5280013, "Havbris Holding AS", "914778271", 13),
    ):
        company = NxtCompany(no, company_id, 1234567, name, org)
        _books(company, seed=seed, per_month=6, until=date(2026, 10, 31))
        world.companies[company_id] = company
    world.activate(client_id, 1)
    world.activate(client_id, 2)
    return world


# ---------------------------------------------------------------- queries


def _matches(row: Mapping[str, Any], expr: Mapping[str, Any] | None) -> bool:
    if not expr:
        return True
    for key, condition in expr.items():
        if key == "_and":
            if not all(_matches(row, part) for part in condition):
                return False
        elif key == "_or":
            if not any(_matches(row, part) for part in condition):
                return False
        elif not _compare(row.get(key), condition or {}):
            return False
    return True


def _compare(value: Any, condition: Mapping[str, Any]) -> bool:
    for op, operand in condition.items():
        if operand is None and op != "_eq":
            continue
        if op == "_eq" and value != operand:
            return False
        if op == "_not_eq" and value == operand:
            return False
        if op == "_in" and value not in operand:
            return False
        if op in {"_gt", "_gte", "_lt", "_lte"}:
            if value is None:
                return False
            ok = {
                "_gt": value > operand,
                "_gte": value >= operand,
                "_lt": value < operand,
                "_lte": value <= operand,
            }[op]
            if not ok:
                return False
    return True


def _sort_key(row: Mapping[str, Any], order: Sequence[tuple[str, bool]]) -> tuple[Any, ...]:
    # (is-null, value) per column, so rows without a value sort first and never compare None with a number;
    # a descending column flips by negating numbers or is left ascending for text (the bot never asks for that).
    key: list[Any] = []
    for column, descending in order:
        value = row.get(column)
        if descending and isinstance(value, int | float):
            value = -value
        key.append((value is not None, value if value is not None else 0))
    return tuple(key)


def _cursor(key: tuple[Any, ...]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(key)).decode("ascii")


def _after(cursor: str) -> tuple[Any, ...]:
    try:
        return tuple(tuple(part) for part in orjson.loads(base64.urlsafe_b64decode(cursor.encode("ascii"))))
    except (ValueError, TypeError):
        raise GraphQLError("Invalid cursor.", extensions={"status_name": "BadRequest"}) from None


def connection(
    rows: Iterable[dict[str, Any]],
    table: str,
    *,
    first: int | None = None,
    after: str | None = None,
    filter: Mapping[str, Any] | None = None,
    orderBy: Sequence[Mapping[str, str]] | None = None,
) -> dict[str, Any]:
    """One page of a table as NXT answers a connection: filtered, ordered, after a cursor, `first` rows."""
    if first is not None and first < 1:
        raise GraphQLError(
            "The value for 'first' must be a positive integer.", extensions={"status_name": "BadRequest"}
        )
    order = [(column, direction == "DESC") for item in orderBy or () for column, direction in item.items()]
    order += [(column, False) for column in KEYS[table] if column not in {name for name, _ in order}]
    chosen = sorted((row for row in rows if _matches(row, filter)), key=lambda row: _sort_key(row, order))
    keys = [_sort_key(row, order) for row in chosen]
    start = 0
    if after:
        bound = _after(after)
        start = next((index for index, key in enumerate(keys) if _jsonable(key) > bound), len(keys))
    size = min(first or MAX_PAGE_SIZE, MAX_PAGE_SIZE)
    page = chosen[start : start + size]
    end = start + len(page)
    return {
        "totalCount": len(chosen),
        "pageInfo": {
            "hasNextPage": end < len(chosen),
            "hasPreviousPage": start > 0,
            "startCursor": _cursor(keys[start]) if page else None,
            "endCursor": _cursor(keys[end - 1]) if page else None,
        },
        "items": [dict(row) for row in page],
    }


def _jsonable(key: tuple[Any, ...]) -> tuple[Any, ...]:
    # The key as it comes back from a cursor (JSON has no tuples), so the two compare.
    return tuple(tuple(part) for part in orjson.loads(orjson.dumps(key)))


# ---------------------------------------------------------------- the apps

_NGINX = (
    "<html>\r\n<head><title>{status} {title}</title></head>\r\n<body>\r\n"
    "<center><h1>{status} {title}</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)


def _nginx(status: int, title: str) -> HTMLResponse:
    return HTMLResponse(_NGINX.format(status=status, title=title), status_code=status)


def _oauth_error(error: str, status: int = 400) -> JSONResponse:
    return JSONResponse({"error": error}, status_code=status)


def _client(request: Request, form: Mapping[str, Any], world: BusinessNxtWorld) -> str | None:
    auth = request.headers.get("authorization", "")
    if auth.lower().startswith("basic "):
        try:
            client_id, _, secret = base64.b64decode(auth[6:]).decode().partition(":")
        except ValueError:
            return None
    else:
        client_id, secret = str(form.get("client_id", "")), str(form.get("client_secret", ""))
    known = world.clients.get(client_id)
    return client_id if known is not None and secrets.compare_digest(known, secret) else None


def create_business_nxt_app(world: BusinessNxtWorld) -> Starlette:
    """Visma Connect's /connect/token (client credentials) and Business NXT's /api/graphql-service."""

    async def token(request: Request) -> Response:
        if world.switches.hang_seconds:
            await asyncio.sleep(world.switches.hang_seconds)
        if world.switches.identity_unavailable:
            response: Response = _nginx(503, "Service Temporarily Unavailable")
        else:
            response = await _token(request)
        world.requests.append(NxtRequest("/connect/token", None, response.status_code))
        return response

    async def _token(request: Request) -> Response:
        form = await request.form()
        client_id = _client(request, form, world)
        if client_id is None:
            return _oauth_error("invalid_client", 401)
        if form.get("grant_type") != "client_credentials":
            return _oauth_error("unsupported_grant_type")
        scopes = str(form.get("scope", "")).split()
        if not scopes or not set(scopes) <= KNOWN_SCOPES:
            return _oauth_error("invalid_scope")
        access = world.issue_token(client_id)
        body = {"access_token": access, "expires_in": 3600, "token_type": "Bearer", "scope": " ".join(scopes)}
        return JSONResponse(body)

    async def graphql_service(request: Request) -> Response:
        if world.switches.hang_seconds:
            await asyncio.sleep(world.switches.hang_seconds)
        entry = world.tokens.get(request.headers.get("authorization", "").removeprefix("Bearer ").strip())
        client_id = entry[0] if entry else None
        record = NxtRequest("/api/graphql-service", client_id, 200)
        world.requests.append(record)
        if world.switches.unavailable:
            record.status = 503
            return _nginx(503, "Service Temporarily Unavailable")
        if entry is None or entry[1] <= world.now() or world.switches.token_expired:
            record.status = 401
            return _nginx(401, "Authorization Required")
        try:
            payload = orjson.loads(await request.body())
            query, variables = str(payload["query"]), payload.get("variables") or {}
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return _errors("The request body is not a GraphQL request ({query, variables}).", "BadRequest")
        record.fields, record.company = _outline(query, variables)
        if status_name := world.switches.error_in_200:
            message = ERROR_MESSAGES.get(status_name, status_name).format(no=record.company, client=client_id)
            return _errors(message, status_name)
        root = _Root(world, client_id)
        result = await graphql(world.schema, query, root_value=root, variable_values=variables)
        body: dict[str, Any] = {}
        if result.errors:
            body["errors"] = [error.formatted for error in result.errors]
        if result.data is not None or not result.errors:
            body["data"] = result.data
        return Response(orjson.dumps(body), media_type="application/json")

    async def switches(request: Request) -> Response:
        if request.method == "POST":
            try:
                world.switch(**(await request.json()))
            except KeyError as exc:
                return JSONResponse({"error": f"unknown switch {exc}"}, status_code=400)
        return JSONResponse(asdict(world.switches))

    async def reset(request: Request) -> Response:
        world.reset()
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/connect/token", token, methods=["POST"]),
            Route("/api/graphql-service", graphql_service, methods=["POST"]),
            Route("/_sim/switches", switches, methods=["GET", "POST"]),
            Route("/_sim/reset", reset, methods=["POST"]),
        ]
    )


def _errors(message: str, status_name: str) -> Response:
    body = {"errors": [{"message": message, "extensions": {"status_name": status_name}}], "data": None}
    return Response(orjson.dumps(body), media_type="application/json")


def _outline(query: str, variables: Mapping[str, Any]) -> tuple[list[str], int | None]:
    """The top-level fields of a query and the company it uses, for the request log (best effort)."""
    try:
        document = parse(query)
    except GraphQLError:
        return [], None
    names: list[str] = []
    company: int | None = None
    for definition in document.definitions:
        if not isinstance(definition, OperationDefinitionNode):
            continue
        for selection in definition.selection_set.selections:
            if not isinstance(selection, FieldNode):
                continue
            names.append(selection.name.value)
            for argument in selection.arguments or ():
                if selection.name.value == "useCompany" and argument.name.value == "no":
                    value = value_from_ast_untyped(argument.value, dict(variables))
                    company = int(value) if isinstance(value, int | str) and str(value).isdigit() else None
    return names, company


class _Root:
    """The Query type's resolvers for one client (graphql-core's default resolver calls these methods)."""

    def __init__(self, world: BusinessNxtWorld, client_id: str | None) -> None:
        self.world = world
        self.client_id = client_id or ""

    def availableCustomers(self, info: Any, first: int | None = None, last: int | None = None) -> dict[str, Any]:
        """Customers that hold at least one company our client may use."""
        seen = {company.vismaNetCustomerId for company in self._companies()}
        items = [asdict(customer) for customer in self.world.customers.values() if customer.vismaNetCustomerId in seen]
        return {"totalCount": len(items), "items": _window(items, first, last)}

    def availableCompanies(
        self, info: Any, customerNo: int | None = None, first: int | None = None, last: int | None = None
    ) -> dict[str, Any]:
        """Companies with a Connect Application Access row for our client (of one customer, if asked)."""
        items = [
            {"name": c.name, "vismaNetCompanyId": c.vismaNetCompanyId, "vismaNetCustomerId": c.vismaNetCustomerId}
            for c in self._companies()
            if customerNo is None or c.vismaNetCustomerId == customerNo
        ]
        return {"totalCount": len(items), "items": _window(items, first, last)}

    def useCompany(self, info: Any, no: int) -> dict[str, Any]:
        """A company context, or an AccessDenied error when our client has no access row for it."""
        company = self.world.companies.get(no)
        if company is None or not self.world.may_use(self.client_id, company):
            message = ERROR_MESSAGES["AccessDenied"].format(no=no, client=self.client_id)
            raise GraphQLError(message, extensions={"status_name": "AccessDenied"})
        tables: dict[str, Any] = {}
        for table in TABLES:

            def resolve(info: Any, table: str = table, **args: Any) -> dict[str, Any]:
                return connection(company.rows(table), table, **args)

            tables[table] = resolve
        return tables

    def _companies(self) -> list[NxtCompany]:
        return [company for company in self.world.companies.values() if self.world.may_use(self.client_id, company)]


def _window(items: list[dict[str, Any]], first: int | None, last: int | None) -> list[dict[str, Any]]:
    if first is not None:
        items = items[:first]
    if last is not None:
        items = items[-last:] if last else []
    return items
