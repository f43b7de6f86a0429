"""What every listener, page and job is handed: settings, store, clients, clock and background tasks."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Hashable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import httpx
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient

from bot.crypto import Vault
from bot.domain.types import AccountingSystem
from bot.settings import Settings
from bot.store.engine import Store
from bot.sync.limits import Limiters
from bot.sync.policy import RetryPolicy
from bot.visma.base import System

log = logging.getLogger(__name__)


class Background:
    """Runs work after the HTTP answer or ack has gone, keeps a reference, and logs what fails."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], *, name: str, log_errors: bool = True) -> asyncio.Task[Any]:
        """Start `coro` in the background; unless the caller awaits it, its failure is logged with a reference."""
        task = asyncio.create_task(coro, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._done if log_errors else self._tasks.discard)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            ref = uuid.uuid4().hex[:8]
            log.error("background task %s failed (ref %s)", task.get_name(), ref, exc_info=task.exception())

    async def cancel(self) -> None:
        """Cancel what is still running and wait for it to record how it ended."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def busy(self) -> bool:
        """Whether any background task is still running."""
        return bool(self._tasks)

    async def drain(self) -> None:
        """Wait until no background task is running (tests, the demo, shutdown)."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))
            await asyncio.sleep(0)  # let done-callbacks run before looking again


class BotIdentity:
    """Bolt's authorize for our one workspace: auth.test once, then the cached answer for every request."""

    def __init__(self, client: AsyncWebClient) -> None:
        self._client = client
        self._result: AuthorizeResult | None = None

    async def warm(self) -> AuthorizeResult:
        """Call auth.test (once) and cache who the bot is."""
        if self._result is None:
            token = self._client.token or ""
            response = await self._client.auth_test()
            self._result = AuthorizeResult.from_auth_test_response(
                auth_test_response=response, bot_token=token, user_auth_test_response=None, user_token=None
            )
        return self._result

    def bolt_authorize(self) -> Callable[..., Awaitable[AuthorizeResult]]:
        """The function Bolt calls for every request (Bolt passes arguments by their names, so no `self`)."""

        async def authorize(enterprise_id: str | None = None, team_id: str | None = None) -> AuthorizeResult:
            return await self.warm()

        return authorize


@dataclass
class Deps:
    """The bot's collaborators, built once by create_app and passed down."""

    settings: Settings
    store: Store
    vault: Vault
    slack: AsyncWebClient
    http: httpx.AsyncClient
    systems: dict[AccountingSystem, System]
    clock: Callable[[], datetime]
    authorize: BotIdentity
    retry_policy: RetryPolicy = field(default_factory=RetryPolicy)
    limiters: Limiters = field(default_factory=Limiters)
    background: Background = field(default_factory=Background)
    # Who this process is, in leases on runs, refreshes and the scheduler's tick.
    owner: str = field(default_factory=lambda: f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}")
    run_lease: timedelta = timedelta(minutes=2)
    # Set at shutdown: runs stop at the next page boundary.
    stopping: asyncio.Event = field(default_factory=asyncio.Event)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep
    locks: dict[Hashable, asyncio.Lock] = field(default_factory=dict)

    def system_for(self, system: AccountingSystem | str) -> System:
        """The module of a company's Visma system."""
        return self.systems[AccountingSystem(system)]

    async def close_http(self) -> None:
        """Close the HTTP client behind the Visma system modules."""
        await self.http.aclose()

    def lock_for(self, key: Hashable) -> asyncio.Lock:
        """An in-process lock per key (a connection's token refresh)."""
        return self.locks.setdefault(key, asyncio.Lock())
