"""Visma eAccounting (eEkonomi): OAuth against its identity server and reads from API v2.

One typed client over an injected httpx.AsyncClient; base URLs come from settings, so the same code talks to
Visma or to the simulators.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
from pydantic import BaseModel, ConfigDict, Field

# Read-only access: we reconcile, we never post. `offline_access` is what returns a refresh token.
SCOPES = ("ea:api", "offline_access", "ea:accounting_readonly")
PAGE_SIZE = 500


class VismaApiError(Exception):
    """The API answered with its error body {ErrorCode, DeveloperErrorMessage, ErrorId}."""

    def __init__(self, status: int, code: int | None, message: str, error_id: str | None = None) -> None:
        super().__init__(f"HTTP {status}, ErrorCode {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.error_id = error_id


class RateLimited(VismaApiError):
    """ErrorCode 4010: 600 requests a minute per client and endpoint."""

    def __init__(self, message: str, error_id: str | None, retry_after: int) -> None:
        super().__init__(429, 4010, message, error_id)
        self.retry_after = retry_after


class OAuthError(Exception):
    """The identity server refused a token request (RFC 6749 error code)."""

    def __init__(self, status: int, error: str, description: str | None = None) -> None:
        super().__init__(f"HTTP {status}: {error}" + (f" ({description})" if description else ""))
        self.status = status
        self.error = error


@dataclass(frozen=True, slots=True)
class TokenSet:
    """Tokens from the identity server. Never log or format one."""

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


class _Model(BaseModel):
    model_config = ConfigDict(populate_by_name=True, extra="ignore")


class CompanySettings(_Model):
    """The fields of /v2/companysettings we use."""

    name: str = Field(alias="Name")
    corporate_identity_number: str | None = Field(default=None, alias="CorporateIdentityNumber")
    country_code: str | None = Field(default=None, alias="CountryCode")
    currency_code: str | None = Field(default=None, alias="CurrencyCode")


class FiscalYearOut(_Model):
    """A fiscal year."""

    id: str = Field(alias="Id")
    start_date: datetime = Field(alias="StartDate")
    end_date: datetime = Field(alias="EndDate")
    is_locked: bool = Field(default=False, alias="IsLockedForAccounting")


class AccountOut(_Model):
    """An account of the chart of accounts."""

    number: int = Field(alias="Number")
    name: str = Field(alias="Name")
    fiscal_year_id: str = Field(alias="FiscalYearId")
    is_active: bool = Field(default=True, alias="IsActive")


class VoucherRowOut(_Model):
    """One row of a voucher."""

    account_number: int = Field(alias="AccountNumber")
    debit: float = Field(default=0.0, alias="DebitAmount")
    credit: float = Field(default=0.0, alias="CreditAmount")
    text: str | None = Field(default=None, alias="TransactionText")


class VoucherOut(_Model):
    """A voucher."""

    id: str = Field(alias="Id")
    voucher_date: datetime = Field(alias="VoucherDate")
    text: str | None = Field(default=None, alias="VoucherText")
    number: str | None = Field(default=None, alias="NumberAndNumberSeries")
    rows: list[VoucherRowOut] = Field(default_factory=list, alias="Rows")


class BalanceOut(_Model):
    """An account's balance on a date."""

    account_number: int = Field(alias="AccountNumber")
    balance: float = Field(alias="Balance")


class UserOut(_Model):
    """A user of the company, as the API lists them."""

    email: str | None = Field(default=None, alias="Email")
    first_name: str | None = Field(default=None, alias="FirstName")
    last_name: str | None = Field(default=None, alias="LastName")
    is_current_user: bool = Field(default=False, alias="IsCurrentUser")

    @property
    def full_name(self) -> str:
        """First and last name, or the e-mail when Visma has no name."""
        name = " ".join(part for part in (self.first_name, self.last_name) if part)
        return name or self.email or "unknown user"


class EAccountingClient:
    """OAuth and read calls for one firm's eAccounting app registration."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        identity_url: str,
        api_url: str,
        client_id: str,
        client_secret: str,
    ) -> None:
        self._http = http
        self._identity = identity_url.rstrip("/")
        self._api = api_url.rstrip("/") + "/v2"
        self._client_id = client_id
        self._client_secret = client_secret

    async def aclose(self) -> None:
        """Close the underlying HTTP client."""
        await self._http.aclose()

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
        """Trade the authorization code (with its PKCE verifier) for tokens."""
        return await self._token(
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
            now,
        )

    async def refresh(self, *, refresh_token: str, now: datetime) -> TokenSet:
        """A new access token. eAccounting rotates refresh tokens: store the new one, the old is dead."""
        return await self._token({"grant_type": "refresh_token", "refresh_token": refresh_token}, now)

    async def _token(self, form: dict[str, str], now: datetime) -> TokenSet:
        response = await self._http.post(
            f"{self._identity}/connect/token", data=form, auth=(self._client_id, self._client_secret)
        )
        body = _json(response)
        if response.status_code != 200 or "access_token" not in body:
            raise OAuthError(
                response.status_code,
                str(body.get("error", "invalid_response")),
                body.get("error_description"),
            )
        return TokenSet(
            access_token=str(body["access_token"]),
            refresh_token=body.get("refresh_token"),
            expires_at=now + timedelta(seconds=int(body.get("expires_in", 3600))),
            scope=str(body.get("scope", "")),
        )

    async def company_settings(self, token: str) -> CompanySettings:
        """The connected company's name, organisation number and country."""
        return CompanySettings.model_validate(await self._get(token, "companysettings"))

    async def users(self, token: str) -> list[UserOut]:
        """Users of the company; the one who consented has IsCurrentUser."""
        return [UserOut.model_validate(item) async for item in self._items(token, "users")]

    async def fiscal_years(self, token: str) -> list[FiscalYearOut]:
        """All fiscal years."""
        return [FiscalYearOut.model_validate(item) async for item in self._items(token, "fiscalyears")]

    async def accounts(self, token: str, fiscal_year_id: str) -> list[AccountOut]:
        """The chart of accounts of one fiscal year."""
        path = f"accounts/{fiscal_year_id}"
        return [AccountOut.model_validate(item) async for item in self._items(token, path)]

    def vouchers(self, token: str, fiscal_year_id: str) -> AsyncIterator[VoucherOut]:
        """The vouchers of one fiscal year, page by page."""
        return _validated(self._items(token, f"vouchers/{fiscal_year_id}"), VoucherOut)

    async def balances(self, token: str, on: date) -> list[BalanceOut]:
        """Every account's balance on a date."""
        items = self._items(token, f"accountbalances/{on.isoformat()}")
        return [BalanceOut.model_validate(item) async for item in items]

    async def _items(self, token: str, path: str) -> AsyncIterator[dict[str, Any]]:
        page = 1
        while True:
            body = await self._get(token, path, {"$page": page, "$pagesize": PAGE_SIZE})
            if isinstance(body, list):  # some endpoints answer a bare array
                for item in body:
                    yield item
                return
            for item in body.get("Data", []):
                yield item
            meta = body.get("Meta") or {}
            if page >= int(meta.get("TotalNumberOfPages") or 1):
                return
            page += 1

    async def _get(self, token: str, path: str, params: dict[str, Any] | None = None) -> Any:
        response = await self._http.get(
            f"{self._api}/{path}", params=params, headers={"Authorization": f"Bearer {token}"}
        )
        if response.status_code == 200:
            return response.json()
        raise _api_error(response)


async def _validated(items: AsyncIterator[dict[str, Any]], model: type[VoucherOut]) -> AsyncIterator[VoucherOut]:
    async for item in items:
        yield model.model_validate(item)


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _api_error(response: httpx.Response) -> VismaApiError:
    body = _json(response)
    code = body.get("ErrorCode")
    message = str(body.get("DeveloperErrorMessage") or response.reason_phrase or "no message")
    error_id = body.get("ErrorId")
    if response.status_code == 429 or code == 4010:
        return RateLimited(message, error_id, _retry_after(response, message))
    return VismaApiError(response.status_code, int(code) if code is not None else None, message, error_id)


def _retry_after(response: httpx.Response, message: str) -> int:
    # Visma puts the wait only in the prose: "... Try again in 55 seconds."
    header = response.headers.get("Retry-After")
    if header and header.isdigit():
        return int(header)
    words = message.split()
    for index, word in enumerate(words[:-1]):
        if word == "in" and words[index + 1].isdigit():
            return int(words[index + 1])
    return 60


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)
