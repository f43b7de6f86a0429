"""The sliding-window limiter paces under Visma's moving-window limit instead of bouncing off it."""

from __future__ import annotations

import asyncio

from bot.sync.limits import Limiters, SlidingWindow
from bot.visma.base import RateLimit


async def test_never_more_than_the_capacity_in_any_window():
    limiter = SlidingWindow(600, 0.3)
    sent: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        sent.append(limiter._sent[-1])  # the moment it was counted, on the limiter's own clock

    await asyncio.gather(*(one() for _ in range(1500)))
    assert limiter.capacity == 588  # 2 % held back for clock jitter between us and Visma
    worst = max(sum(1 for moment in sent if start <= moment < start + 0.3) for start in sent)
    assert worst <= 588
    # …and it does not dawdle: 1500 requests need at least two full windows, and little more.
    assert max(sent) - min(sent) < 0.3 * 2 + 0.25


async def test_small_limits_keep_one_in_reserve():
    assert SlidingWindow(10, 1).capacity == 9
    assert SlidingWindow(1, 1).capacity == 1


async def test_a_429_holds_every_request_back_for_the_named_wait():
    limiter = SlidingWindow(100, 60)
    loop = asyncio.get_running_loop()
    await limiter.acquire()
    limiter.hold_off(0.3)
    started = loop.time()
    await limiter.acquire()
    assert 0.29 <= loop.time() - started < 0.5


def test_one_limiter_per_key():
    limiters = Limiters()
    a = limiters.get(RateLimit("eaccounting:client:vouchers", 600, 60))
    assert limiters.get(RateLimit("eaccounting:client:vouchers", 600, 60)) is a
    assert limiters.get(RateLimit("eaccounting:client:accounts", 600, 60)) is not a


async def test_a_slot_is_counted_again_from_when_the_answer_came():
    limiter = SlidingWindow(3, 0.2)  # capacity 2
    first = await limiter.acquire()
    await limiter.acquire()
    await asyncio.sleep(0.1)
    limiter.restamp(first)  # the first request waited for a connection: Visma saw it only now
    loop = asyncio.get_running_loop()
    started = loop.time()
    await limiter.acquire()  # the second slot frees at 0.2 s; the restamped first would only at 0.3 s
    assert 0.08 <= loop.time() - started < 0.2
    assert list(limiter._sent) == sorted(limiter._sent)
