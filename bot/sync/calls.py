"""The engine's side of the seam: every GET a system module makes is paced, retried and authorised here."""

from __future__ import annotations

import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from tenacity import AsyncRetrying, RetryCallState, retry_if_exception

from bot.sync.limits import Limiters
from bot.sync.policy import RetryPolicy
from bot.sync.tokens import TokenKeeper
from bot.visma.base import IdentityUnavailable, RateLimited, System, Transient, Unauthorized

log = logging.getLogger(__name__)


def _retriable(error: BaseException) -> bool:
    return isinstance(error, Transient) and not isinstance(error, IdentityUnavailable)


class _Budget:
    """tenacity's stop and wait: failures get exponential backoff with jitter, 429s the wait Visma named."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._policy = policy
        self.failures = 0
        self.rate_limited = 0
        self.waited = 0.0

    def stop(self, state: RetryCallState) -> bool:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited):
            self.rate_limited += 1
            self.waited += error.retry_after
            return (
                self.rate_limited >= self._policy.rate_limited_attempts or self.waited > self._policy.rate_limited_wait
            )
        self.failures += 1
        return self.failures >= self._policy.attempts

    def wait(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, RateLimited):
            return 0.0  # the limiter holds every request to this endpoint back for as long as Visma said
        ceiling = min(self._policy.maximum, self._policy.initial * 2 ** max(0, self.failures - 1))
        return random.uniform(ceiling / 2, ceiling)


@dataclass(frozen=True, slots=True)
class _Request:
    method: str
    path: str
    params: dict[str, str | int] | None = None
    json: dict[str, Any] | None = None


class Calls:
    """The `Api` a system module reads through during one run."""

    def __init__(
        self,
        *,
        system: System,
        http: httpx.AsyncClient,
        limiters: Limiters,
        tokens: TokenKeeper,
        policy: RetryPolicy,
        sleep: Any,
        scope: str | None = None,
    ) -> None:
        self._system = system
        self._scope = scope
        self._http = http
        self._limiters = limiters
        self._tokens = tokens
        self._policy = policy
        self._sleep = sleep
        self.requests = 0
        self.retries = 0

    async def get(self, path: str, params: Mapping[str, str | int] | None = None) -> Any:
        """GET a path; a 401 gets one token refresh and one more try before it is judged."""
        return await self._authorised(_Request("GET", path, params=dict(params or {})))

    async def post(self, path: str, body: Mapping[str, Any]) -> Any:
        """POST a JSON body (a GraphQL query: a read, so as safe to retry as a GET)."""
        return await self._authorised(_Request("POST", path, json=dict(body)))

    async def _authorised(self, request: _Request) -> Any:
        try:
            return await self._retrying(request)
        except Unauthorized:
            await self._tokens.access(refused=True)
            return await self._retrying(request)

    async def _retrying(self, request: _Request) -> Any:
        budget = _Budget(self._policy)
        retrying = AsyncRetrying(
            # The token keeper has already retried the identity server; its outage is not retried twice over.
            retry=retry_if_exception(_retriable),
            stop=budget.stop,
            wait=budget.wait,
            sleep=self._sleep,
            reraise=True,
            before_sleep=self._count,
        )
        async for attempt in retrying:
            with attempt:
                return await self._once(request)
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover

    def _count(self, state: RetryCallState) -> None:
        self.retries += 1
        error = state.outcome.exception() if state.outcome else None
        log.info("retrying a %s request: %s", self._system.label, error)

    async def _once(self, request: _Request) -> Any:
        limiter = self._limiters.get(self._system.rate_limit(request.path, scope=self._scope))
        token = await self._tokens.access()  # before the slot: a refresh must not eat into the window
        slot = await limiter.acquire()
        self.requests += 1
        try:
            response = await self._http.request(
                request.method,
                self._system.url(request.path),
                params=request.params,
                json=request.json,
                headers={"Authorization": f"Bearer {token}"},
                timeout=self._policy.timeout,
            )
        except httpx.TimeoutException as exc:
            raise Transient(f"{self._system.label} did not answer within {self._policy.timeout:g} s") from exc
        except httpx.TransportError as exc:
            raise Transient(f"could not reach {self._system.label} ({type(exc).__name__})") from exc
        finally:
            # Visma counted the request when it arrived, somewhere between our slot and now: count it from
            # now, so a wait for a pooled connection can never let one request too many into its window.
            limiter.restamp(slot)
        try:
            parsed = self._system.parse(response)
        except RateLimited as exc:
            limiter.hold_off(exc.retry_after)
            raise
        finally:
            # httpx's Response and its stream refer to each other; with the collector tuned for bursts, a
            # page of a megabyte would wait for a full collection. Break the cycle once the body is parsed.
            response.stream = None  # type: ignore[assignment]
        # Limits Visma counts without publishing them (Visma.net's hourly window) are read off each answer.
        if (wait := self._system.pace(response)) is not None:
            limiter.hold_off(wait)
        return parsed
