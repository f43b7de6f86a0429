"""Visma ERP: the Visma.net ERP API reached through a person's consent (Visma Connect's authorization code with
PKCE and `offline_access`), instead of Visma.net Financials' client-credentials tokens per Tenant ID.

The reading is Visma.net's (`VismaNet`: the same API, books, paging, pacing and error bodies); this module only
changes how access is granted and what its failures mean. Quirks that shape it:
- Visma Connect documents no tenant hint for `/connect/authorize`: the approver picks the organisation on
  Visma's own page, the Visma *customer* (the contract) listed beside its companies. So the callback must check
  the tenant the token is for (`tenant_of`, from the id token's `tenant_id` claim) and the scopes granted
  (`check_grant`); a customer-level pick otherwise shows only later, as a 401 from the ERP.
- The exchange is refused with `invalid_tenant` when the approver lacks the *API User* role in the company.
- Refresh tokens rotate (one-time, with a grace period) or are reusable, per the app's settings in the Visma
  Developer Portal; either way the answer's refresh token is the one to keep.
- API version: the ERP serves `v1/…` and, for a few resources, `v2/…` (journal transactions, ledger balances).
  `Target` carries no per-company options, so the module reads v2 wherever both exist, whatever version the
  company's set-up names; Visma deprecated v1 journal transactions.
"""

from __future__ import annotations

import base64
import binascii
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import httpx
import orjson

from bot.domain import problems
from bot.domain.problems import Problem
from bot.domain.types import AccountingSystem
from bot.visma.base import (
    Api,
    Grant,
    GrantRevoked,
    IdentityUnavailable,
    OAuthError,
    OurConfiguration,
    RateLimited,
    TokenSet,
    Unauthorized,
    VismaError,
)
from bot.visma.reading import json_object
from bot.visma.visma_net import VismaNet

log = logging.getLogger(__name__)

READ_SCOPE = "vismanet_erp_interactive_api:read"
# What every consent asks for: who signed in (`openid profile email`), a refresh token (`offline_access`) and
# reading the ERP; staff may add more of the interactive API's scopes for a company.
SCOPES = ("openid", "profile", "email", "offline_access", READ_SCOPE)
EXTRA_SCOPES = frozenset(
    f"vismanet_erp_interactive_api:{verb}" for verb in ("read", "create", "update", "delete", "ui-extension")
)
_CONFIGURATION = {"invalid_client", "unauthorized_client", "invalid_scope", "unsupported_grant_type"}


@dataclass(frozen=True, slots=True, repr=False)
class ConsentTokens(TokenSet):
    """Tokens from a Visma ERP consent, with the tenant the approver picked (None when Visma did not say)."""

    tenant: str | None = None


class VismaErp(VismaNet):
    """The Visma ERP system module (consent through Visma Connect) for one firm's OAuth client."""

    system = AccountingSystem.VISMA_ERP
    label = "Visma ERP"
    grant = Grant.CONSENT

    # ------------------------------------------------------------------ consent

    def scopes(self, extra: Iterable[str] = ()) -> tuple[str, ...]:
        """The scopes a consent asks for: ours and the extra ones staff chose (OurConfiguration if unknown)."""
        wanted = list(SCOPES)
        for scope in extra:
            if scope not in EXTRA_SCOPES:
                raise OurConfiguration(f"{scope!r} is not a scope of the Visma.net ERP interactive API")
            if scope not in wanted:
                wanted.append(scope)
        return tuple(wanted)

    def authorize_url(
        self,
        *,
        state: str,
        challenge: str,
        redirect_uri: str,
        locale: str | None = None,
        scopes: Iterable[str] = (),
    ) -> str:
        """Where the approver signs in, picks the company and consents (`scopes`: extra ones staff asked for).
        No tenant hint is sent: Visma Connect documents none, so the callback checks the tenant instead."""
        params = {
            "client_id": self._client_id,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": " ".join(self.scopes(scopes)),
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if locale:
            params["ui_locales"] = locale
        return f"{self._connect}/connect/authorize?{urlencode(params)}"

    async def exchange_code(self, *, code: str, verifier: str, redirect_uri: str, now: datetime) -> ConsentTokens:
        """Trade the authorization code (with its PKCE verifier) for tokens (raises OAuthError)."""
        form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
        try:
            response = await self._token_request({**form, "code_verifier": verifier})
        except httpx.HTTPError as exc:
            raise IdentityUnavailable(f"Visma Connect did not answer ({type(exc).__name__})") from exc
        body = json_object(response)
        if response.status_code != 200 or "access_token" not in body:
            raise OAuthError(
                response.status_code, str(body.get("error", "invalid_response")), body.get("error_description")
            )
        return _tokens(body, now)

    async def refresh(self, *, refresh_token: str, now: datetime) -> ConsentTokens:
        """New tokens; keep the answer's refresh token (it rotates, or comes back the same when reusable)."""
        try:
            response = await self._token_request({"grant_type": "refresh_token", "refresh_token": refresh_token})
        except httpx.HTTPError as exc:
            raise IdentityUnavailable(f"Visma Connect did not answer ({type(exc).__name__})") from exc
        body = json_object(response)
        status = response.status_code
        if status == 200 and "access_token" in body:
            tokens = _tokens(body, now)
            if tokens.refresh_token is None:  # a reusable token is not always sent back: keep the one we have
                tokens = ConsentTokens(
                    tokens.access_token, refresh_token, tokens.expires_at, tokens.scope, tokens.tenant
                )
            return tokens
        error = str(body.get("error") or "")
        if error == "invalid_grant":
            raise GrantRevoked("Visma Connect refused the refresh token (invalid_grant)", status=status, code=error)
        if error in _CONFIGURATION:
            raise OurConfiguration(
                f"Visma Connect refused the firm's app registration ({error})", status=status, code=error
            )
        raise IdentityUnavailable(f"Visma Connect answered HTTP {status}", status=status)

    async def _token_request(self, form: dict[str, str]) -> httpx.Response:
        # Visma Connect takes the client's credentials in the body or as Basic; Basic keeps them out of the form.
        return await self._http.post(
            f"{self._connect}/connect/token", data=form, auth=(self._client_id, self._client_secret)
        )

    async def service_token(self, *, tenant: str | None, now: datetime) -> TokenSet:
        """Visma ERP connections are made by a person's consent, not with client credentials."""
        raise OurConfiguration("Visma ERP connections are made by consent, not with client credentials")

    def tenant_of(self, tokens: TokenSet) -> str | None:
        """The tenant the approver picked at sign-in (None when Visma did not say)."""
        return tokens.tenant if isinstance(tokens, ConsentTokens) else None

    def check_grant(
        self, tokens: TokenSet, *, company: str, tenant: str | None = None, scopes: Iterable[str] = ()
    ) -> Problem | None:
        """What is wrong with a fresh consent, or None: a scope asked for and not granted, or another tenant
        than `tenant` (the company's Tenant ID, when staff gave one)."""
        # RFC 6749 §5.1: an answer without `scope` granted everything asked for.
        granted = set(tokens.scope.split())
        missing = [scope for scope in self.scopes(scopes) if granted and scope not in granted and scope != "openid"]
        if missing:
            return problems.from_visma_erp(status=0, code="scope_missing", company=company, missing=", ".join(missing))
        got = self.tenant_of(tokens)
        if tenant and got and got.lower() != tenant.lower():
            return problems.from_visma_erp(status=0, code="wrong_tenant", company=company, got=got, asked=tenant)
        return None

    def url(self, path: str) -> str:
        """The absolute URL of an ERP path ("v1/account"); an absolute URL (Visma Connect's userinfo) as it is."""
        if path.startswith(("http://", "https://")):
            return path
        return super().url(path)

    async def approver_name(self, api: Api) -> str | None:
        """The approver's name (or e-mail) from Visma Connect's userinfo; None when it cannot say."""
        try:
            claims = await api.get(f"{self._connect}/connect/userinfo")
        except VismaError as exc:
            log.info("Visma Connect userinfo gave no name: %s", exc)
            return None
        if not isinstance(claims, dict):
            return None
        name = claims.get("name") or claims.get("email")
        return str(name) if name else None

    # ------------------------------------------------------------------ problems

    def classify(self, error: VismaError, *, company: str) -> Problem:
        """What a refusal means for people: the consent's failures in Visma ERP's words, the rest as Visma.net's."""
        code = (error.code or "").removeprefix("Visma.net ").strip() or None
        if isinstance(error, Unauthorized):
            code = "401"
        elif isinstance(error, RateLimited):
            code = "429"
        return problems.from_visma_erp(status=error.status or 0, code=code, company=company)


def _claims(id_token: Any) -> dict[str, Any]:
    # The id token comes straight from the token endpoint over TLS, so its claims are read without checking the
    # signature (OpenID Connect Core 3.1.3.7); nothing here is used to let anyone in.
    if not isinstance(id_token, str) or id_token.count(".") != 2:
        return {}
    payload = id_token.split(".")[1]
    try:
        claims = orjson.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (binascii.Error, ValueError):
        return {}
    return claims if isinstance(claims, dict) else {}


def _tokens(body: Mapping[str, Any], now: datetime) -> ConsentTokens:
    tenant = _claims(body.get("id_token")).get("tenant_id")
    return ConsentTokens(
        access_token=str(body["access_token"]),
        refresh_token=body.get("refresh_token"),
        expires_at=now + timedelta(seconds=int(body.get("expires_in", 3600))),
        scope=str(body.get("scope", "")),
        tenant=str(tenant) if tenant else None,
    )
