"""Does a Visma outage that hits 1,000 companies at once flood the team channel?

The whole product on loopback (the simulators and the bot, as the tests and the demo run it; the outbox is
delivered by the bot's own deliverer loop at Slack's pace of one new message a second per channel). 1,000
eAccounting companies are connected and have their cards in the channel. Then every one of them fails with the
same cause — by default eAccounting answers 503 to everything (`--cause outage`: each company's syncs fail
quietly until the failure is visible, after three runs), or the approvers lack full program permission
(`--cause permission`: 403 with Visma's error code 4007, a problem a person must fix) — and afterwards recovers.
Every company's run goes through the real engine (`SyncPool`, `sync_company`); the clock moves a minute between
rounds, and Visma's rate limit is lifted on both sides (it is not what is measured).

Figures (the last line printed is one JSON object):
- posts: new messages in the team channel (chat.postMessage, thread replies included) from the first failing run
  until the last recovery, plus those still waiting in the outbox when the benchmark stops (goal <= 3);
- max_posts_per_s_per_channel: the most new messages in any one-second window, per channel, as the Slack
  simulator received them (goal <= 1);
- edits (chat.update: the cards and the roll-up, edited in place) and edits_waiting (card edits still paced
  when the benchmark stops; Slack allows about one a second), companies, runs, duration_s.
Flags: --companies, --cause, --wait (seconds to let the deliverer finish the new messages).
Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _support import finish, load_note
from sqlalchemy import func
from sqlmodel import col, select

from bot import scheduler
from bot.services import outbox
from bot.simulators.stack import Stack, running_stack
from bot.store.models import SlackMessage
from bot.sync.policy import VISIBLE_AFTER_RUNS

GOALS = {"posts": ("<=", 3), "max_posts_per_s_per_channel": ("<=", 1)}
WRITES = ("chat.postMessage", "chat.update")


class Clock:
    """The bot's clock, moved by the benchmark between rounds (a failure becomes visible after three runs)."""

    def __init__(self) -> None:
        self.now = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now


def options() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--companies", type=int, default=1000)
    parser.add_argument("--cause", choices=("outage", "permission"), default="outage")
    parser.add_argument("--wait", type=float, default=90.0, help="seconds to let the new messages go out")
    return parser.parse_args()


async def run_all(stack: Stack, ids: list[int]) -> None:
    """One round: every company's run through the scheduler's pool, as a tick would start them."""
    pool = scheduler.SyncPool(stack.deps, parallel=stack.deps.settings.sync_parallel)
    for company_id in ids:
        pool.submit(company_id)
    await stack.deps.background.drain()


async def posts_waiting(stack: Stack) -> int:
    """New channel messages the outbox still has to post (roll-up members are never posted)."""
    async with stack.deps.store.session() as session:
        query = select(SlackMessage).where(
            col(SlackMessage.pending).is_(True),
            col(SlackMessage.ts).is_(None),
            col(SlackMessage.kind).in_([outbox.Kind.NOTE, outbox.Kind.ALERT, outbox.Kind.INCIDENT, outbox.Kind.CARD]),
        )
        return sum(1 for message in (await session.exec(query)).all() if not message.facts.get("folded"))


async def edits_waiting(stack: Stack) -> int:
    async with stack.deps.store.session() as session:
        query = (
            select(func.count())
            .select_from(SlackMessage)
            .where(col(SlackMessage.pending).is_(True), col(SlackMessage.ts).is_not(None))
        )
        return int((await session.exec(query)).one())


def busiest_second(times: list[float]) -> int:
    """The most messages in any window of one second (sliding, not per calendar second)."""
    times = sorted(times)
    most, start = 0, 0
    for end, moment in enumerate(times):
        while moment - times[start] >= 1.0:
            start += 1
        most = max(most, end - start + 1)
    return most


async def storm(args: argparse.Namespace, database_url: str) -> dict[str, object]:
    clock = Clock()
    quick = {
        "visma_retry_initial_seconds": 0.01,
        "visma_retry_max_seconds": 0.05,
        "visma_retry_attempts": 2,
        "slack_post_interval_seconds": 0.0,
        "sync_parallel": 16,
        # Visma's per-endpoint limit (600 a minute, shared by every company) is not what is measured here: with
        # it, a thousand companies' three rounds would take ten minutes of waiting for the window.
        "eaccounting_rate_limit": 1_000_000,
    }
    async with running_stack(database_url=database_url, clock=clock, **quick) as stack:
        channel = stack.deps.settings.alert_channel
        started = time.monotonic()
        ids = await stack.connect_many(args.companies, name="Storm", number=800_000_000)
        print(f"  {len(ids)} companies connected, cards posted in {time.monotonic() - started:.1f} s", flush=True)

        stack.eaccounting.switches.rate_limit_per_minute = 1_000_000
        stack.deps.settings.slack_post_interval_seconds = 1.0  # Slack's pace from here on, as serve runs
        world, first_call = stack.slack_world, len(stack.slack_world.calls)
        storm_started = time.monotonic()
        if args.cause == "outage":
            stack.eaccounting.switches.outage = True
            rounds = VISIBLE_AFTER_RUNS
        else:
            stack.eaccounting.switches.no_full_permission = True
            rounds = 1
        runs = 0
        for number in range(rounds):
            await run_all(stack, ids)
            runs += len(ids)
            clock.now += timedelta(minutes=1)
            took = time.monotonic() - storm_started
            print(f"  round {number + 1}: {len(ids)} runs failed ({args.cause}), {took:.1f} s", flush=True)
        stack.eaccounting.switches.outage = False
        stack.eaccounting.switches.no_full_permission = False
        await run_all(stack, ids)
        runs += len(ids)
        print(f"  recovery round: every company synced again, {time.monotonic() - storm_started:.1f} s", flush=True)

        deadline = time.monotonic() + args.wait
        while time.monotonic() < deadline and await posts_waiting(stack):  # noqa: ASYNC110 (the outbox is a table)
            await asyncio.sleep(0.5)
        waiting = await posts_waiting(stack)
        calls = [call for call in world.calls[first_call:] if call.method in WRITES]
        posted = [call for call in calls if call.method == "chat.postMessage" and call.args.get("channel") == channel]
        per_channel: dict[str, list[float]] = defaultdict(list)
        for call in calls:
            if call.method == "chat.postMessage":
                per_channel[str(call.args.get("channel"))].append(call.time)
        async with stack.deps.store.session() as session:
            rollups = (await session.exec(select(SlackMessage).where(SlackMessage.kind == outbox.Kind.INCIDENT))).all()
        return {
            "cause": args.cause,
            "companies": len(ids),
            "runs": runs,
            "posts": len(posted) + waiting,
            "posts_sent": len(posted),
            "posts_waiting": waiting,
            "max_posts_per_s_per_channel": max((busiest_second(times) for times in per_channel.values()), default=0),
            "edits": sum(call.method == "chat.update" for call in calls),
            "edits_waiting": await edits_waiting(stack),
            "rollups": len(rollups),
            "rollups_closed": sum(message.closed_at is not None for message in rollups),
            "duration_s": round(time.monotonic() - storm_started, 1),
        }


async def main() -> int:
    args = options()
    logging.basicConfig(level=logging.ERROR)
    print(f"alert storm: {args.companies} companies, cause {args.cause}; {load_note()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        result = await storm(args, f"sqlite:///{Path(tmp) / 'storm.db'}")
    return finish(result, GOALS)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
