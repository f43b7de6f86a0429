"""The daily digest: the scheduler's tick writes it once a day at DIGEST_TIME, whoever ticks and however often the
bot restarts; the deliverer posts it to the team channel and uploads its chart into the thread through the Slack
fake's files.uploadV2 steps; a Slack failure on the way is retried, never lost or doubled."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cryptography.fernet import Fernet
from sqlmodel import select

from bot import scheduler
from bot.services.outbox import Kind
from bot.simulators.slack import SlackWorld, png_size
from bot.simulators.stack import ALERT_CHANNEL, Stack, running_stack
from bot.store.models import JobLease, SlackMessage
from commands.digest import chart
from tests.scenario.conftest import QUICK
from tests.scenario.flow import add_company, approval_link, approve, block_text

OSLO = ZoneInfo("Europe/Oslo")
EVERY = timedelta(seconds=60)


def before_digest_time() -> datetime:
    """The latest 07:59 in Oslo that has passed: the bot's clock starts there, a minute before the digest."""
    now = datetime.now(OSLO)
    moment = now.replace(hour=7, minute=59, second=0, microsecond=0)
    if moment > now:
        moment -= timedelta(days=1)
    return moment.astimezone(UTC)


async def tick(stack: Stack) -> None:
    await scheduler.tick(stack.deps, scheduler.SyncPool(stack.deps, parallel=2), every=EVERY)


async def digests(stack: Stack) -> list[SlackMessage]:
    async with stack.deps.store.session() as session:
        return list((await session.exec(select(SlackMessage).where(SlackMessage.kind == Kind.DIGEST))).all())


def posted(world: SlackWorld) -> list[dict[str, Any]]:
    """The digest messages in the team channel (top level, with the digest's header)."""
    return [
        message
        for message in world.current_messages(ALERT_CHANNEL)
        if not message.get("thread_ts") and "Onboarding," in block_text(message)
    ]


def replies(world: SlackWorld, parent: dict[str, Any]) -> list[dict[str, Any]]:
    return [m for m in world.current_messages(ALERT_CHANNEL) if m.get("thread_ts") == parent["ts"]]


async def connected_company(stack: Stack) -> None:
    await add_company(stack)
    await approve(stack, approval_link(stack))  # connects and runs the first sync: one company synced today


async def test_the_tick_at_digest_time_writes_one_digest_posted_with_its_chart(stack, clock):
    clock.now = before_digest_time()
    await connected_company(stack)
    await tick(stack)
    assert await digests(stack) == []  # 07:59: not yet
    clock.advance(minutes=2)
    await tick(stack)
    [written] = await digests(stack)
    assert written.facts == {"day": clock.now.astimezone(OSLO).date().isoformat()}
    await tick(stack)  # a later tick the same day
    assert len(await digests(stack)) == 1
    await stack.settle()

    world = stack.slack_world
    [message] = posted(world)
    shown = block_text(message)
    day = clock.now.astimezone(OSLO).date()
    assert f"Onboarding, {day:%a %-d %b}" in shown
    assert "1 connected · 0 approvals expire within 48 h · 0 need action · 0 with stale data" in shown
    assert "Nothing needs a person today" in shown
    [reply] = replies(world, message)
    [file] = reply["files"]
    assert file["title"].startswith("Sync health, ")
    uploaded = world.files[file["id"]]["content"]
    assert png_size(uploaded) == (chart.WIDTH, chart.HEIGHT)
    [ticket] = world.calls_to("files.getUploadURLExternal")
    assert ticket.args["filename"] == f"sync-health-{day.isoformat()}.png"
    assert f"{day:%-d %b} 1 OK, 0 failed" in ticket.args["alt_txt"]  # today: the company's first sync
    [completed] = world.calls_to("files.completeUploadExternal")
    assert (completed.args["channel_id"], completed.args["thread_ts"]) == (ALERT_CHANNEL, message["ts"])
    async with stack.deps.store.session() as session:
        delivered = await session.get(SlackMessage, written.id)
        assert delivered is not None
        assert (delivered.pending, delivered.channel, delivered.ts) == (False, ALERT_CHANNEL, message["ts"])
        assert await session.get(JobLease, f"digest:{day.isoformat()}") is not None

    clock.advance(days=1)  # the next morning, at 08:01: the next day's digest
    await tick(stack)
    assert len(await digests(stack)) == 2


async def test_a_restart_and_a_second_process_do_not_say_it_again(database_url, clock):
    settings = {**QUICK, "encryption_key": Fernet.generate_key().decode()}
    clock.now = before_digest_time() + timedelta(minutes=2)
    async with (
        running_stack(database_url=database_url, clock=clock, **settings) as first,
        running_stack(database_url=database_url, clock=clock, **settings) as second,
    ):
        # Two processes at the same moment (as when one's tick stalled past its lease): one digest.
        results = await asyncio.gather(scheduler.daily_digest(first.deps), scheduler.daily_digest(second.deps))
        assert sorted(results) == [False, True]
        await first.settle()
        await second.settle()
        assert len(posted(first.slack_world)) + len(posted(second.slack_world)) == 1
    clock.advance(minutes=30)
    async with running_stack(database_url=database_url, clock=clock, **settings) as restarted:
        await tick(restarted)
        assert not await scheduler.daily_digest(restarted.deps)
        await restarted.app.state.deliverer.deliver_due(everything=True)
        await restarted.settle()
        assert len(await digests(restarted)) == 1
        assert posted(restarted.slack_world) == []


async def test_a_switched_off_digest_is_not_written(database_url, clock):
    clock.now = before_digest_time() + timedelta(hours=1)
    async with running_stack(database_url=database_url, clock=clock, digest_enabled=False, **QUICK) as stack:
        await tick(stack)
        assert await digests(stack) == []


async def test_a_slack_failure_is_retried_not_lost_or_doubled(stack, clock):
    clock.now = before_digest_time() + timedelta(minutes=2)
    world = stack.slack_world
    deliverer = stack.app.state.deliverer

    world.switches.fail = {"chat.postMessage": "internal_error"}
    await tick(stack)
    await stack.settle()
    [waiting] = await digests(stack)
    assert (waiting.pending, waiting.ts, waiting.last_error) == (True, None, "internal_error")
    assert posted(world) == []

    # Slack is back, but its file service fails once: the message is posted and kept, the chart waits.
    world.switches.fail = {}
    world.switches.upload_failures = 1
    await deliverer.deliver_due(everything=True)
    [message] = posted(world)
    [waiting] = await digests(stack)
    assert (waiting.pending, waiting.ts, waiting.last_error) == (True, message["ts"], "UploadFailed")
    assert replies(world, message) == []

    # Then the step that shares it fails: still nothing doubled.
    world.switches.fail = {"files.completeUploadExternal": "internal_error"}
    await deliverer.deliver_due(everything=True)
    assert replies(world, message) == []
    world.switches.fail = {}
    await deliverer.deliver_due(everything=True)
    await stack.settle()

    assert posted(world) == [message]
    [reply] = replies(world, message)
    assert reply["files"][0]["mimetype"] == "image/png"
    assert len(world.calls_to("chat.postMessage")) == 2  # the refused one and the one that went through
    [done] = await digests(stack)
    assert (done.pending, done.dead, done.attempts) == (False, False, 0)
