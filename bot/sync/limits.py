"""Pacing under Visma's rate limits: one sliding-window limiter per limit, shared by every company.

Visma counts requests in a moving window (eAccounting: 600 a minute per client and endpoint URL), so a
token bucket that lets a full burst through at start would bounce off it. Each limiter keeps the send times
of the last `count` requests and lets the next one go only when the oldest has left the window; a small
margin keeps the server's count, taken a few milliseconds later, from ever seeing one too many.
"""

from __future__ import annotations

import asyncio
import bisect
import time
from collections import deque
from collections.abc import Callable

from bot.visma.base import RateLimit

# Requests held back from each window: loopback and network jitter shift the server's clock a little.
MARGIN = 0.02


class SlidingWindow:
    """At most `count` acquisitions in any `window` seconds (minus the safety margin)."""

    def __init__(self, count: int, window: float, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.capacity = max(1, int(count * (1 - MARGIN)) if count > 20 else count - 1 or 1)
        self.window = window
        self._clock = clock
        self._sent: deque[float] = deque()
        self._lock = asyncio.Lock()

    async def acquire(self) -> float:
        """Wait until one more request fits in the window, then count it; returns its slot (for restamp)."""
        async with self._lock:  # first come, first served: waiters queue on the lock
            while True:
                now = self._clock()
                while self._sent and self._sent[0] <= now - self.window:
                    self._sent.popleft()
                if len(self._sent) < self.capacity:
                    self._sent.append(now)
                    return now
                await asyncio.sleep(self._sent[0] + self.window - now + 0.001)

    def restamp(self, slot: float) -> None:
        """Count a request from now instead of from its slot (its answer came back: it has surely arrived)."""
        try:
            self._sent.remove(slot)
        except ValueError:
            return  # already out of the window, or replaced by a hold-off
        bisect.insort(self._sent, self._clock())

    def hold_off(self, seconds: float) -> None:
        """Visma said wait (a 429): fill the window so nobody sends before `seconds` have passed."""
        until = self._clock() + seconds - self.window
        held = sorted(max(moment, until) for moment in self._sent)
        self._sent = deque([until] * max(0, self.capacity - len(held)) + held)


class Limiters:
    """The process's limiters, one per Visma limit key; created on first use."""

    def __init__(self, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._limiters: dict[str, SlidingWindow] = {}

    def get(self, limit: RateLimit) -> SlidingWindow:
        """The limiter for a limit (one per key)."""
        limiter = self._limiters.get(limit.key)
        if limiter is None:
            limiter = self._limiters[limit.key] = SlidingWindow(limit.count, limit.window, clock=self._clock)
        return limiter
