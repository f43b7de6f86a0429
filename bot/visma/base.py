"""The seam every Visma system plugs into: what a system module declares, and what the sync engine gives it.

A module (eaccounting.py, and later visma_net.py, business_nxt.py, visma_erp.py) *declares*: how access is
granted and refreshed, which books (data sets) it offers for a company, how to read each book as an async
stream of pages from a cursor, and how its error answers map into the shared problem catalogue. The engine in
bot/sync *runs* them: pacing under the rate limit, retries, token refresh, checkpoints and writes. Nothing here
knows of Slack or of the database.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Protocol

import httpx

from bot.domain.books import Book
from bot.domain.problems import Problem
from bot.domain.types import AccountingSystem

# ----------------------------------------------------------------------------------------------- errors


class VismaError(Exception):
    """Something Visma (or the way to it) answered that is not the data asked for."""

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


class Transient(VismaError):
    """Worth trying again later: 5xx, a timeout, a dropped connection, a body that does not parse."""


class RateLimited(Transient):
    """Visma asked us to slow down; `retry_after` is how long it said to wait, in seconds."""

    def __init__(self, message: str, *, retry_after: float, status: int = 429, code: str | None = None) -> None:
        super().__init__(message, status=status, code=code)
        self.retry_after = retry_after


class IdentityUnavailable(Transient):
    """The identity server failed or did not answer: an outage, never the client's doing."""


class Unauthorized(VismaError):
    """The API refused the access token (HTTP 401): refresh once and try again before judging."""


class Refused(VismaError):
    """The API refused for a reason a person must fix (a role, a scope, a module, a licence)."""


class NotOffered(Refused):
    """The company's product variant does not offer this book (e.g. balances on an Invoicing-only plan)."""


class GrantRevoked(VismaError):
    """The identity server says the grant is gone (`invalid_grant`): consent withdrawn or expired."""


class OurConfiguration(VismaError):
    """The identity server refused *our* app (`invalid_client`, `unauthorized_client`): the firm must fix it."""


class OAuthError(VismaError):
    """A token request refused with an RFC 6749 error code (raised during the approver's consent)."""

    def __init__(self, status: int, error: str, description: str | None = None) -> None:
        super().__init__(
            f"HTTP {status}: {error}" + (f" ({description})" if description else ""), status=status, code=error
        )
        self.error = error


# ----------------------------------------------------------------------------------------------- tokens


@dataclass(frozen=True, slots=True)
class TokenSet:
    """Tokens from an identity server. Never log or format one."""

    access_token: str
    refresh_token: str | None
    expires_at: datetime
    scope: str

    def __repr__(self) -> str:
        return f"TokenSet(expires_at={self.expires_at.isoformat()}, scope={self.scope!r})"


@dataclass(frozen=True, slots=True)
class Pkce:
    """A PKCE verifier and its S256 challenge."""

    verifier: str
    challenge: str

    @classmethod
    def new(cls) -> Pkce:
        """A fresh verifier (43+ chars of base64url) and its challenge."""
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii"))


# ----------------------------------------------------------------------------------------------- books


@dataclass(frozen=True, slots=True)
class Profile:
    """What a company's settings say, read at the start of every run (and at consent)."""

    name: str
    org_number: str | None
    country: str | None = None
    currency: str | None = None
    locked_to: date | None = None
    variant: str | None = None


@dataclass(frozen=True, slots=True)
class Target:
    """The company as the engine knows it: what to read, from when, and where in Visma (`external_id`: the
    Tenant ID of a Visma.net company, the company number in Business NXT; None for consent-based systems)."""

    company_id: int
    name: str
    reconciliation_start: date
    modules: tuple[str, ...]
    today: date
    external_id: str | None = None


@dataclass
class Page:
    """One page of a book: rows in the book's column order, and the cursor to resume *after* them."""

    rows: list[tuple[Any, ...]]
    cursor: dict[str, Any] | None


@dataclass
class RunNotes:
    """What one book tells a later book within the same run (e.g. the earliest voucher date that changed)."""

    values: dict[str, Any] = field(default_factory=dict)


class Api(Protocol):
    """How a system module reads: the engine paces, retries, and refreshes the token behind each call."""

    async def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        """GET a path under the system's API base; returns the parsed body or raises a VismaError."""
        ...

    async def post(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST a JSON body (a GraphQL query) to a path under the system's API base; as `get` otherwise."""
        ...


class Grant(StrEnum):
    """How a client company lets the firm in; it decides what the approver's page asks and how it is checked."""

    # The approver signs in through our link and consents in Visma; we keep a refresh token (eAccounting,
    # Visma ERP).
    CONSENT = "consent"
    # The client's administrator integrates our app in the Visma App Store for their tenant and gives us the
    # Tenant ID; we take client-credentials tokens for that tenant (Visma.net Financials).
    TENANT = "tenant"
    # The client's system administrator activates our integration for the company; it then appears in the
    # list our service token sees (Business NXT).
    LISTED = "listed"


@dataclass(frozen=True, slots=True)
class RateLimit:
    """One of Visma's limits: `count` requests per `window` seconds for everything sharing `key`."""

    key: str
    count: int
    window: float


class System(Protocol):
    """A Visma system module, as the engine, the scheduler, the cards and the pages use it."""

    system: AccountingSystem
    label: str
    page_size: int
    grant: Grant

    def url(self, path: str) -> str:
        """The absolute URL of an API path."""
        ...

    def rate_limit(self, path: str, *, scope: str | None = None) -> RateLimit:
        """The limit a request to `path` counts against (`scope`: the target's external id, for limits that
        Visma counts per company)."""
        ...

    def pace(self, response: httpx.Response) -> float | None:
        """Seconds to hold back further requests that share this response's limit, when its headers say the
        window is spent (X-RateLimit-Remaining 0 and -Reset); None when nothing needs holding."""
        ...

    def parse(self, response: httpx.Response) -> Any:
        """The parsed body of a 200, or the typed VismaError the answer means."""
        ...

    def authorize_url(self, *, state: str, challenge: str, redirect_uri: str, locale: str | None = None) -> str:
        """Where the approver is sent to consent (authorization code with PKCE)."""
        ...

    async def exchange_code(self, *, code: str, verifier: str, redirect_uri: str, now: datetime) -> TokenSet:
        """Trade the approver's authorization code for tokens (raises OAuthError)."""
        ...

    async def approver_name(self, api: Api) -> str | None:
        """Who consented, as Visma names them (None when the system cannot say)."""
        ...

    async def refresh(self, *, refresh_token: str, now: datetime) -> TokenSet:
        """New tokens from a refresh token (GrantRevoked, OurConfiguration or IdentityUnavailable)."""
        ...

    async def service_token(self, *, tenant: str | None, now: datetime) -> TokenSet:
        """A client-credentials token (for `tenant` where the system is tenant based); TENANT and LISTED systems
        only. Raises GrantRevoked when the tenant no longer lets us in, OurConfiguration for our client, and
        IdentityUnavailable when the identity server does not answer."""
        ...

    async def profile(self, api: Api, *, external_id: str | None = None) -> Profile:
        """The connected company's settings (`external_id`: where it is, for systems whose token does not say)."""
        ...

    def books(self, profile: Profile, target: Target) -> tuple[Book, ...]:
        """The books to read for this company, in reading order."""
        ...

    def read(
        self, book: Book, api: Api, *, target: Target, profile: Profile, cursor: dict[str, Any] | None, notes: RunNotes
    ) -> AsyncIterator[Page]:
        """Read a book page by page, resuming from `cursor` (None: from the beginning)."""
        ...

    def classify(self, error: VismaError, *, company: str) -> Problem:
        """What a refusal means for people, in the shared catalogue."""
        ...
