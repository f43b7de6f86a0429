"""Approval links and the OAuth round trip behind them. Knows nothing of Slack.

A link carries a random token; only its SHA-256 is stored, so a database leak gives no usable links. A link
expires, and is used up when a connection is made through it. Each OAuth `state` is stored the same way,
one row per "Continue to Visma", and used once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.crypto import Vault, new_link_token, token_hash
from bot.domain.types import ApprovalStatus
from bot.services.companies import audit
from bot.store.models import ApprovalRequest, Company, Connection, OAuthAttempt
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
    superseded: list[int]


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
    superseded = await supersede(session, company_id=company.id)
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
    return IssuedLink(request, token, superseded)


async def supersede(session: AsyncSession, *, company_id: int | None) -> list[int]:
    """Stop the company's pending links (a newer one, or the company was cancelled); returns their ids."""
    pending = select(ApprovalRequest.id).where(
        ApprovalRequest.company_id == company_id, ApprovalRequest.status == ApprovalStatus.PENDING
    )
    ids = [int(i) for i in (await session.exec(pending)).all() if i is not None]
    if ids:
        # Conditional: a link completed or declined meanwhile keeps what it became.
        await session.exec(
            update(ApprovalRequest)
            .where(col(ApprovalRequest.id).in_(ids), col(ApprovalRequest.status) == ApprovalStatus.PENDING)
            .values(status=ApprovalStatus.SUPERSEDED)
        )
    return ids


async def expire_due(session: AsyncSession, *, now: datetime) -> list[ApprovalRequest]:
    """Mark pending links whose time is up as expired (conditionally: one that completed meanwhile stays so);
    returns them, so that whoever asked can be told."""
    still = col(ApprovalRequest.status) == ApprovalStatus.PENDING
    due = select(ApprovalRequest).where(still, col(ApprovalRequest.expires_at) <= now)
    return await _claim_each(session, due, still=still, values={"status": ApprovalStatus.EXPIRED})


async def _claim_each(
    session: AsyncSession, due: Any, *, still: ColumnElement[bool], values: dict[str, Any]
) -> list[ApprovalRequest]:
    """Each request `due` finds, changed by one conditional UPDATE that holds only while `still` does (another
    process, or a completion, may have got there first); the ones this call changed, as they are now."""
    claimed = []
    for request in (await session.exec(due)).all():
        done = await session.exec(
            update(ApprovalRequest).where(col(ApprovalRequest.id) == request.id, still).values(**values)
        )
        if done.rowcount == 1:
            await session.get(ApprovalRequest, request.id, populate_existing=True)
            claimed.append(request)
    return claimed


async def to_remind(session: AsyncSession, *, now: datetime, before: timedelta) -> list[ApprovalRequest]:
    """Pending links that run out within `before`, were sent at least `before` ago and were not reminded of;
    each is claimed (reminded_at set, conditionally) so that it is reminded of once."""
    still = col(ApprovalRequest.reminded_at).is_(None)
    due = select(ApprovalRequest).where(
        ApprovalRequest.status == ApprovalStatus.PENDING,
        still,
        col(ApprovalRequest.expires_at) > now,
        col(ApprovalRequest.expires_at) <= now + before,
        col(ApprovalRequest.created_at) <= now - before,
    )
    return await _claim_each(session, due, still=still, values={"reminded_at": now})


async def by_token(session: AsyncSession, *, token: str, now: datetime) -> ApprovalRequest:
    """The pending request behind a link token; raises LinkRefused saying why it cannot be used."""
    query = select(ApprovalRequest).where(ApprovalRequest.token_hash == token_hash(token))
    request = (await session.exec(query)).first()
    if request is None:
        raise LinkRefused(LinkProblem.UNKNOWN)
    check_usable(request, now)
    return request


def check_usable(request: ApprovalRequest, now: datetime) -> None:
    """Raise LinkRefused unless the request is pending and unexpired."""
    status = ApprovalStatus(request.status)
    if status is ApprovalStatus.COMPLETED:
        raise LinkRefused(LinkProblem.USED, request)
    if status is ApprovalStatus.DECLINED:
        raise LinkRefused(LinkProblem.DECLINED, request)
    if status is ApprovalStatus.SUPERSEDED:
        raise LinkRefused(LinkProblem.SUPERSEDED, request)
    if status is ApprovalStatus.EXPIRED or request.expires_at <= now:
        raise LinkRefused(LinkProblem.EXPIRED, request)


async def start_oauth(
    session: AsyncSession, *, request: ApprovalRequest, vault: Vault, now: datetime
) -> tuple[str, Pkce]:
    """Begin one consent round trip: a fresh state and PKCE pair. Earlier attempts of the same link stay valid
    (the approver may have two tabs, or come back after a wrong company) until one of them completes."""
    assert request.id is not None
    state = new_link_token()
    pkce = Pkce.new()
    session.add(
        OAuthAttempt(
            request_id=request.id,
            state_hash=token_hash(state),
            verifier_sealed=vault.seal(pkce.verifier),
            started_at=now,
        )
    )
    return state, pkce


async def claim_state(session: AsyncSession, *, state: str, now: datetime) -> tuple[ApprovalRequest, str]:
    """Use up an OAuth state: returns its request and sealed PKCE verifier. One conditional update decides,
    so of several callbacks with the same state exactly one gets here; the others are refused."""
    attempt = (await session.exec(select(OAuthAttempt).where(OAuthAttempt.state_hash == token_hash(state)))).first()
    if attempt is None or attempt.used_at is not None or attempt.verifier_sealed is None:
        raise LinkRefused(LinkProblem.BAD_STATE)
    request = await session.get(ApprovalRequest, attempt.request_id)
    if request is None or attempt.started_at + OAUTH_WINDOW <= now:
        raise LinkRefused(LinkProblem.BAD_STATE, request)
    check_usable(request, now)
    verifier = attempt.verifier_sealed
    claimed = await session.exec(
        update(OAuthAttempt)
        .where(col(OAuthAttempt.id) == attempt.id, col(OAuthAttempt.used_at).is_(None))
        .values(used_at=now, state_hash=None, verifier_sealed=None)
    )
    if claimed.rowcount != 1:
        raise LinkRefused(LinkProblem.BAD_STATE, request)
    return request, verifier


async def complete(session: AsyncSession, *, request: ApprovalRequest, now: datetime) -> None:
    """Mark the link used, only if it is still pending and unexpired; raises LinkRefused saying why not (a
    decline or a newer link that arrived while the approver was at Visma wins)."""
    done = await session.exec(
        update(ApprovalRequest)
        .where(
            col(ApprovalRequest.id) == request.id,
            col(ApprovalRequest.status) == ApprovalStatus.PENDING,
            col(ApprovalRequest.expires_at) > now,
        )
        .values(status=ApprovalStatus.COMPLETED, used_at=now)
    )
    current = await session.get(ApprovalRequest, request.id, populate_existing=True)
    if done.rowcount != 1:
        check_usable(current or request, now)
        raise LinkRefused(LinkProblem.USED, current or request)


async def decline(session: AsyncSession, *, request: ApprovalRequest, actor: str, now: datetime) -> bool:
    """The approver said it is not for them; the link stops working. False when it was no longer pending."""
    done = await session.exec(
        update(ApprovalRequest)
        .where(col(ApprovalRequest.id) == request.id, col(ApprovalRequest.status) == ApprovalStatus.PENDING)
        .values(status=ApprovalStatus.DECLINED, used_at=now)
    )
    await session.get(ApprovalRequest, request.id, populate_existing=True)
    if done.rowcount != 1:
        return False
    company = await session.get(Company, request.company_id)
    audit(
        session,
        actor=actor,
        company=company,
        action="approval.declined",
        at=now,
        detail={"request_id": request.id},
    )
    return True


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
    external_company_id: str | None = None,
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
    connection.external_company_id = external_company_id
    connection.connected_by = connected_by
    connection.connected_at = now
    session.add(connection)
    return connection


async def connection_for(session: AsyncSession, *, company_id: int) -> Connection | None:
    """The company's stored connection, if any."""
    return (await session.exec(select(Connection).where(Connection.company_id == company_id))).first()
