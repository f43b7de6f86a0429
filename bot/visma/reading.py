"""Small helpers every system module reads with: one way to parse token answers, dates and malformed rows."""

from __future__ import annotations

import logging
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import orjson

from bot.visma.base import OurConfiguration, RunNotes, TokenSet

log = logging.getLogger(__name__)


def skip(notes: RunNotes, why: str) -> None:
    """Leave one malformed row out: logged and counted on the run, so it never blocks a company's books."""
    notes.values["skipped"] = notes.values.get("skipped", 0) + 1
    log.warning("not stored: %s", why)


def account_number(value: Any, notes: RunNotes) -> int | None:
    """An account number, or None (and the row skipped) when Visma sent something else."""
    try:
        return int(value)
    except (TypeError, ValueError):
        skip(notes, f"an account number {value!r} that is not a number")
        return None


def day(value: str) -> date:
    """The date of an ISO date or timestamp ("2026-01-15T00:00:00")."""
    return date.fromisoformat(value[:10])


def instant(value: Any) -> datetime | None:
    """An ISO timestamp in UTC (one without a zone is read as UTC); None for nothing."""
    if not value:
        return None
    moment = datetime.fromisoformat(str(value))
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def iso(moment: datetime | None) -> str | None:
    """A timestamp as a cursor keeps it."""
    return moment.isoformat() if moment else None


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The answer's JSON object, or an empty one when it is not one (an HTML error page)."""
    try:
        body = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return body if isinstance(body, dict) else {}


def tokens_from(body: dict[str, Any], now: datetime) -> TokenSet:
    """A token endpoint's answer (an hour when it does not say how long)."""
    return TokenSet(
        access_token=str(body["access_token"]),
        refresh_token=body.get("refresh_token"),
        expires_at=now + timedelta(seconds=int(body.get("expires_in", 3600))),
        scope=str(body.get("scope", "")),
    )


class NoConsent:
    """The consent half of the `System` protocol, for systems reached with service tokens only (Visma.net
    Financials by Tenant ID, Business NXT by activation): nobody signs in through a link."""

    label: str

    def authorize_url(self, *, state: str, challenge: str, redirect_uri: str, locale: str | None = None) -> str:
        """Not used: these companies are not connected through a consent link."""
        raise OurConfiguration(f"{self.label} is reached with a service token, not through a consent link")

    async def exchange_code(self, *, code: str, verifier: str, redirect_uri: str, now: datetime) -> TokenSet:
        """Not used: see `authorize_url`."""
        raise OurConfiguration(f"{self.label} is reached with a service token, not an authorization code")

    async def refresh(self, *, refresh_token: str, now: datetime) -> TokenSet:
        """Not used: a new service token is taken instead (`service_token`)."""
        raise OurConfiguration(f"{self.label} service tokens are not refreshed; a new one is taken")

    async def approver_name(self, api: Any) -> str | None:
        """A service token has no person behind it."""
        return None
