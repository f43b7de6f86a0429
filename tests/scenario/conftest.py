"""Scenario fixtures: the simulators and the bot on loopback, driven over real signed HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from bot.simulators.stack import Stack, running_stack

# Retries and waits in milliseconds, so a test of a failure does not sit out Visma's real backoff.
QUICK = {
    "visma_retry_initial_seconds": 0.01,
    "visma_retry_max_seconds": 0.05,
    "visma_timeout_seconds": 2.0,
    "visma_rate_limit_max_wait_seconds": 3.0,
    "slack_post_interval_seconds": 0.0,
}


class Clock:
    """A clock the test moves by hand (link expiry, token expiry)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def stack(database_url: str, clock: Clock) -> AsyncIterator[Stack]:
    async with running_stack(database_url=database_url, clock=clock, **QUICK) as running:
        yield running
