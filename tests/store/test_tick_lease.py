"""Exactly one process ticks: the tick's lease row, on SQLite and PostgreSQL."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from bot.scheduler import claim_tick


@dataclass
class Process:
    store: object
    owner: str
    now: datetime

    def clock(self) -> datetime:
        return self.now


async def test_one_process_holds_the_tick_until_its_lease_runs_out(store):
    start = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)
    first, second = Process(store, "host-a:1", start), Process(store, "host-b:2", start)
    lease = timedelta(minutes=3)
    assert await claim_tick(first, lease=lease)
    assert not await claim_tick(second, lease=lease)
    first.now = second.now = start + timedelta(minutes=1)
    assert await claim_tick(first, lease=lease)  # the holder renews
    assert not await claim_tick(second, lease=lease)
    # The holder dies; once its lease has run out the other process takes over.
    second.now = start + timedelta(minutes=5)
    assert await claim_tick(second, lease=lease)
    first.now = second.now
    assert not await claim_tick(first, lease=lease)
