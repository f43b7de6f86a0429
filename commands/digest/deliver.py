"""Delivering a day's digest: the message to the team channel, then the chart as a reply in its thread.

The channel holds one card per company and, once a day, one digest; what goes with a message lives in its
thread, as a card's notes and alerts do, so the chart is the digest's first reply. Both are drawn from the
store when they are sent. The message is posted once: its `ts` is kept before the chart goes up, so a chart
that fails is retried alone, in the same thread.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

from slack_sdk.errors import SlackRequestError
from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.runtime import Deps
from bot.services import digest
from bot.store.models import SlackMessage
from commands.digest import chart, views

# One paced Slack write: a WebClient method's name and its arguments (the deliverer's `_write` for the lane).
Write = Callable[..., Awaitable[Any]]


class UploadFailed(OSError):
    """Slack's file service did not take the chart (the upload URL answered other than 200). An OSError, so the
    deliverer retries it with backoff as it does a dropped connection."""


@dataclass(frozen=True, slots=True)
class Delivered:
    """Where the digest is."""

    channel: str
    ts: str


async def deliver_digest(deps: Deps, session: AsyncSession, message: SlackMessage, *, write: Write) -> Delivered:
    """Post the day's digest (unless it already is) and upload its chart into the thread."""
    settings = deps.settings
    facts = await digest.gather(
        session,
        day=date.fromisoformat(str(message.facts["day"])),
        now=deps.clock(),
        tz=settings.timezone,
        nightly_hour=settings.sync_nightly_hour,
    )
    channel, ts = message.channel, message.ts
    if not channel or not ts:
        posted = await write(
            "chat_postMessage",
            channel=settings.alert_channel,
            blocks=views.digest_blocks(facts),
            text=views.digest_text(facts),
        )
        channel, ts = str(posted["channel"]), str(posted["ts"])
        # Kept now, not when the whole delivery is done: if the chart fails below, its retry must find the
        # message posted rather than post the digest a second time.
        await session.exec(
            update(SlackMessage)
            .where(col(SlackMessage.id) == message.id)
            .values(channel=channel, ts=ts)
            .execution_options(synchronize_session=False)
        )
        await session.commit()
    try:
        await write(
            "files_upload_v2",
            channel=channel,
            thread_ts=ts,
            file=chart.draw(facts.health, zone=settings.timezone),
            filename=f"sync-health-{facts.day.isoformat()}.png",
            title=chart.title(facts.health),
            alt_txt=views.chart_alt_text(facts.health),
            initial_comment=views.chart_comment(facts.health, zone=settings.timezone),
        )
    except SlackRequestError as exc:  # the upload step; the API calls around it raise SlackApiError
        raise UploadFailed(str(exc)) from exc
    return Delivered(channel=channel, ts=ts)
