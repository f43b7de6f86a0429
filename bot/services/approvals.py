"""Approval links and the OAuth round trip behind them. Knows nothing of Slack.

A link carries a random token; only its SHA-256 is stored, so a database leak gives no usable links. A link
expires, and is used up when a connection is made through it. The OAuth `state` is stored the same way.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.crypto import Vault, new_link_token, token_hash
from bot.domain.types import ApprovalStatus
from bot.services.companies import audit
from bot.store.models import ApprovalRequest, Company, Connection
from bot.visma.base import Pkce, TokenSet

# The approver has this long between "Continue to Visma" and coming back.
OAUTH_WINDOW = timedelta(minutes=30)


class LinkProblem(StrEnum):
    """Why a link or an OAuth return cannot be used."""

    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED = "used"
    DECLINED = "declined"
    SUPERSEDED = "superseded"
    BAD_STATE = "bad_state"


class LinkRefused(Exception):
    """The link or OAuth state cannot be used; `request` is set when we know which request it was."""

    def __init__(self, problem: LinkProblem, request: ApprovalRequest | None = None) -> None:
        super().__init__(problem.value)
        self.problem = problem
        self.request = request


@dataclass(frozen=True, slots=True)
class IssuedLink:
    """A new approval request and the one copy of its token (to be put in the URL, never stored)."""

    request: ApprovalRequest
    token: str


async def issue(
    session: AsyncSession,
    *,
    company: Company,
    requested_by: str,
    requested_by_name: str,
    now: datetime,
    valid_for: timedelta,
) -> IssuedLink:
    """Create a new approval link for the company; earlier pending links stop working."""
    pending = select(ApprovalRequest).where(
        ApprovalRequest.company_id == company.id, ApprovalRequest.status == ApprovalStatus.PENDING
    )
    for old in (await session.exec(pending)).all():
        old.status = ApprovalStatus.SUPERSEDED
        session.add(old)
    token = new_link_token()
    assert company.id is not None
    request = ApprovalRequest(
        company_id=company.id,
        token_hash=token_hash(token),
        requested_by=requested_by,
        requested_by_name=requested_by_name,
        approver_user_id=company.approver_user_id,
        approver_email=company.approver_email,
        created_at=now,
        expires_at=now + valid_for,
    )
    session.add(request)
    await session.flush()
    audit(
        session,
        actor=requested_by,
        company=company,
        action="approval.link_issued",
        at=now,
        detail={"request_id": request.id, "expires_at": request.expires_at.isoformat()},
    )
    return IssuedLink(request, token)


async def by_token(session: AsyncSession, *, token: str, now: datetime) -> ApprovalRequest:
    """The pending request behind a link token; raises LinkRefused saying why it cannot be used."""
    query = select(ApprovalRequest).where(ApprovalRequest.token_hash == token_hash(token))
    request = (await session.exec(query)).first()
    if request is None:
        raise LinkRefused(LinkProblem.UNKNOWN)
    _check_usable(request, now)
    return request


def _check_usable(request: ApprovalRequest, now: datetime) -> None:
    status = ApprovalStatus(request.status)
    if status is ApprovalStatus.COMPLETED:
        raise LinkRefused(LinkProblem.USED, request)
    if status is ApprovalStatus.DECLINED:
        raise LinkRefused(LinkProblem.DECLINED, request)
    if status is ApprovalStatus.SUPERSEDED:
        raise LinkRefused(LinkProblem.SUPERSEDED, request)
    if request.expires_at <= now:
        raise LinkRefused(LinkProblem.EXPIRED, request)


async def start_oauth(
    session: AsyncSession, *, request: ApprovalRequest, vault: Vault, now: datetime
) -> tuple[str, Pkce]:
    """Begin the consent round trip: a fresh state and PKCE pair; only the state's hash is stored."""
    state = new_link_token()
    pkce = Pkce.new()
    request.oauth_state_hash = token_hash(state)
    request.pkce_verifier_sealed = vault.seal(pkce.verifier)
    request.oauth_started_at = now
    session.add(request)
    return state, pkce


async def by_state(session: AsyncSession, *, state: str, now: datetime) -> ApprovalRequest:
    """The request an OAuth callback belongs to; refuses unknown, stale or already used states."""
    query = select(ApprovalRequest).where(ApprovalRequest.oauth_state_hash == token_hash(state))
    request = (await session.exec(query)).first()
    if request is None or request.oauth_started_at is None:
        raise LinkRefused(LinkProblem.BAD_STATE)
    if request.oauth_started_at + OAUTH_WINDOW <= now:
        raise LinkRefused(LinkProblem.BAD_STATE, request)
    _check_usable(request, now)
    return request


def consume_state(session: AsyncSession, *, request: ApprovalRequest) -> None:
    """Make the OAuth state single use: a replayed callback finds nothing."""
    request.oauth_state_hash = None
    request.pkce_verifier_sealed = None
    session.add(request)


def complete(session: AsyncSession, *, request: ApprovalRequest, actor: str, now: datetime) -> None:
    """Mark the link used: a connection was made through it."""
    request.status = ApprovalStatus.COMPLETED
    request.used_at = now
    session.add(request)


async def decline(session: AsyncSession, *, request: ApprovalRequest, actor: str, now: datetime) -> None:
    """The approver said it is not for them; the link stops working."""
    request.status = ApprovalStatus.DECLINED
    request.used_at = now
    session.add(request)
    company = await session.get(Company, request.company_id)
    audit(
        session,
        actor=actor,
        company=company,
        action="approval.declined",
        at=now,
        detail={"request_id": request.id},
    )


async def latest(session: AsyncSession, *, company_id: int) -> ApprovalRequest | None:
    """The company's newest approval request."""
    query = (
        select(ApprovalRequest).where(ApprovalRequest.company_id == company_id).order_by(col(ApprovalRequest.id).desc())
    )
    return (await session.exec(query)).first()


async def save_connection(
    session: AsyncSession,
    *,
    company: Company,
    tokens: TokenSet,
    vault: Vault,
    external_company_name: str,
    connected_by: str,
    now: datetime,
) -> Connection:
    """Store (or replace) the company's connection; tokens are sealed with Fernet."""
    assert company.id is not None
    existing = (await session.exec(select(Connection).where(Connection.company_id == company.id))).first()
    connection = existing or Connection(
        company_id=company.id,
        system=company.system,
        access_token_sealed="",
        access_expires_at=now,
        scopes="",
        connected_by=connected_by,
        connected_at=now,
    )
    connection.access_token_sealed = vault.seal(tokens.access_token)
    connection.refresh_token_sealed = vault.seal(tokens.refresh_token) if tokens.refresh_token else None
    connection.access_expires_at = tokens.expires_at
    connection.scopes = tokens.scope
    connection.external_company_name = external_company_name
    connection.connected_by = connected_by
    connection.connected_at = now
    session.add(connection)
    return connection


async def connection_for(session: AsyncSession, *, company_id: int) -> Connection | None:
    """The company's stored connection, if any."""
    return (await session.exec(select(Connection).where(Connection.company_id == company_id))).first()
