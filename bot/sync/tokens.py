"""Access tokens for a run: refreshed ahead of expiry, one refresh at a time per connection, also across
processes, and the rotated refresh token committed before anything uses the new access token.

Visma rotates refresh tokens: each refresh returns a new one and kills the old one. Two processes refreshing
with the same token would leave one of them with a dead token, and a refresh whose answer is lost (a
timeout after Visma rotated) leaves only the old one, usable for Visma's short grace period. So a refresh is
claimed with a lease on the connection row, retried with the same token when the identity server fails,
and saved in its own transaction the moment it arrives.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import col

from bot.crypto import DecryptError
from bot.runtime import Deps
from bot.store.models import Connection
from bot.sync.policy import RetryPolicy
from bot.visma.base import Grant, GrantRevoked, IdentityUnavailable, OurConfiguration, System

log = logging.getLogger(__name__)

# Refresh a little before Visma's one-hour expiry, so a token never dies in the middle of a page.
REFRESH_MARGIN = timedelta(minutes=5)
REFRESH_LEASE = timedelta(seconds=60)
POLL = 0.05


class TokenKeeper:
    """The access token of one connection, for one run."""

    def __init__(self, deps: Deps, system: System, *, connection_id: int, policy: RetryPolicy) -> None:
        self._deps = deps
        self._system = system
        self._id = connection_id
        self._policy = policy
        self._token: str | None = None
        self._version: int | None = None
        self._valid_until = deps.clock()

    async def access(self, *, refused: bool = False) -> str:
        """A usable access token; `refused=True` after a 401 forces a refresh unless someone already did."""
        if self._token and not refused and self._valid_until - REFRESH_MARGIN > self._deps.clock():
            return self._token
        async with self._deps.lock_for(("token", self._id)):
            waited = 0.0
            while True:
                connection = await self._load()
                now = self._deps.clock()
                fresh = connection.access_expires_at - REFRESH_MARGIN > now
                if fresh and not (refused and connection.version == self._version):
                    return self._remember(connection)
                if await self._claim(connection):
                    return await self._refresh(connection)
                # Another process holds the refresh: wait for its result rather than spend the token twice.
                if waited > REFRESH_LEASE.total_seconds():
                    raise IdentityUnavailable("another process has been refreshing this connection for too long")
                await asyncio.sleep(POLL)
                waited += POLL

    def _open(self, sealed: str) -> str:
        try:
            return self._deps.vault.open(sealed)
        except DecryptError:
            raise OurConfiguration(
                "the stored Visma tokens cannot be decrypted with ENCRYPTION_KEY (after a key change, keep the old "
                "key after the new one: ENCRYPTION_KEY=new,old)"
            ) from None

    def _remember(self, connection: Connection) -> str:
        self._token = self._open(connection.access_token_sealed)
        self._version = connection.version
        self._valid_until = connection.access_expires_at
        return self._token

    async def _load(self) -> Connection:
        async with self._deps.store.session() as session:
            connection = await session.get(Connection, self._id)
            if connection is None:
                raise GrantRevoked("the connection was removed")
            return connection

    async def _claim(self, connection: Connection) -> bool:
        now = self._deps.clock()
        async with self._deps.store.session() as session:
            result = await session.exec(
                update(Connection)
                .where(
                    col(Connection.id) == self._id,
                    col(Connection.version) == connection.version,
                    (col(Connection.refresh_lease_until).is_(None)) | (col(Connection.refresh_lease_until) < now),
                )
                .values(refresh_owner=self._deps.owner, refresh_lease_until=now + REFRESH_LEASE)
            )
            await session.commit()
            return bool(result.rowcount)

    async def _release(self) -> None:
        async with self._deps.store.session() as session:
            await session.exec(
                update(Connection)
                .where(col(Connection.id) == self._id, col(Connection.refresh_owner) == self._deps.owner)
                .values(refresh_owner=None, refresh_lease_until=None)
            )
            await session.commit()

    async def _refresh(self, connection: Connection) -> str:
        consent = self._system.grant is Grant.CONSENT
        refresh_token = ""
        if consent:
            if not connection.refresh_token_sealed:
                await self._release()
                raise GrantRevoked("no refresh token is stored for this connection")
            try:
                refresh_token = self._open(connection.refresh_token_sealed)
            except OurConfiguration:
                await self._release()
                raise
        delay = self._policy.initial
        try:
            for attempt in range(1, self._policy.attempts + 1):
                try:
                    if consent:
                        tokens = await self._system.refresh(refresh_token=refresh_token, now=self._deps.clock())
                    else:
                        # Tenant and listed systems: a new client-credentials token (for the company's tenant).
                        tokens = await self._system.service_token(
                            tenant=connection.external_company_id, now=self._deps.clock()
                        )
                    break
                except IdentityUnavailable as exc:
                    # The same token again: if Visma rotated it before the answer was lost, its grace period
                    # still accepts the old one.
                    if attempt == self._policy.attempts:
                        raise
                    log.info("token refresh of connection %s failed (%s); retrying", self._id, exc.message)
                    await self._deps.sleep(delay)
                    delay = min(delay * 2, self._policy.maximum)
        except BaseException:
            await self._release()
            raise
        async with self._deps.store.session() as session:
            await session.exec(
                update(Connection)
                .where(col(Connection.id) == self._id)
                .values(
                    access_token_sealed=self._deps.vault.seal(tokens.access_token),
                    refresh_token_sealed=self._deps.vault.seal(tokens.refresh_token)
                    if tokens.refresh_token
                    else connection.refresh_token_sealed,
                    access_expires_at=tokens.expires_at,
                    version=connection.version + 1,
                    refresh_owner=None,
                    refresh_lease_until=None,
                )
            )
            await session.commit()
        self._token, self._version, self._valid_until = tokens.access_token, connection.version + 1, tokens.expires_at
        return tokens.access_token
