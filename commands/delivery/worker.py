"""The deliverer: takes due outbox messages after their commit and brings them to Slack.

Each message is drawn from the current state when it is sent, so ten changes to a card while Slack was down
make one edit. Messages to one channel go in order and about one a second (Slack's pace for posting);
`ratelimited` holds the channel for as long as Slack says; other failures are retried with exponential
backoff and jitter, for as long as it takes, across restarts (the rows are in the database, claimed with a
lease). A DM that cannot reach its person is given up, and the requester's confirmation then carries the
link to forward instead. No state change waits for any of this, and no Slack failure undoes one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.crypto import DecryptError
from bot.domain.types import ApprovalStatus
from bot.i18n import Language, language_for_locale, language_for_person
from bot.runtime import Deps
from bot.services import outbox
from bot.services.outbox import Kind
from bot.slack_format import escape
from bot.store.models import ApprovalRequest, Company, SlackMessage
from commands.approval import followup
from commands.approval.views import requester_blocks
from commands.card.views import approver
from commands.delivery import render
from commands.digest.deliver import deliver_digest

log = logging.getLogger(__name__)

POLL_SECONDS = 2.0  # other processes' rows, and retries that come due, are picked up at least this often
LEASE = timedelta(minutes=5)
BATCH = 60
LANES_AT_ONCE = 8
FIRST_BACKOFF_SECONDS = 2.0
# Slack's answers that mean "try again later" rather than "this will never work".
TRANSIENT = {"internal_error", "fatal_error", "service_unavailable", "request_timeout", "ratelimited"}
# The person or conversation cannot be reached: a DM is given up, an ephemeral becomes a DM.
UNREACHABLE = {
    "user_not_found",
    "users_not_found",
    "cannot_dm_bot",
    "user_disabled",
    "channel_not_found",
    "not_in_channel",
    "user_not_in_channel",
    "is_archived",
    "messages_tab_disabled",
    "restricted_action",
}
# Our message is wrong; retrying cannot help, the log says which.
MALFORMED = {"invalid_blocks", "invalid_blocks_format", "msg_too_long", "no_text", "invalid_arguments"}
# Approvers' Slack locales and time zones, looked up when their DM is drawn: kept this long, for this many people.
LOCALE_SECONDS = 3600.0
LOCALE_PEOPLE = 1000


class Wait(Exception):
    """Not yet: the message follows another that Slack has not taken (a thread reply waits for its card)."""

    def __init__(self, until: datetime) -> None:
        super().__init__("waiting for another message")
        self.until = until


@dataclass(frozen=True, slots=True)
class Sent:
    """What a delivery left: where the message now is, and whether its sealed link can be wiped."""

    channel: str | None = None
    ts: str | None = None
    clear_secret: bool = False
    gave_up: str | None = None


class Deliverer:
    """Delivers the outbox; `run` in serve, `settle` in tests and the demo."""

    def __init__(self, deps: Deps) -> None:
        self._deps = deps
        # No retry handler: a `ratelimited` answer reschedules the message instead of sleeping inside a call.
        self._slack = AsyncWebClient(token=deps.slack.token, base_url=deps.slack.base_url, timeout=15)
        self._lock = asyncio.Lock()
        self._next_slot: dict[str, float] = defaultdict(float)
        self._warned: dict[str, float] = {}
        self._locales: dict[str, tuple[float, str | None, str | None]] = {}

    async def run(self) -> None:
        """Deliver until shutdown, woken by commits that wrote outbox rows."""
        written = self._deps.store.outbox_written
        while not self._deps.stopping.is_set():
            written.clear()
            try:
                delivered = await self.deliver_due()
            except asyncio.CancelledError:
                if self._deps.stopping.is_set():
                    return  # shut down mid-round: leased rows come back to whoever starts next
                raise
            except Exception:  # a database hiccup: the rows are still there for the next round
                log.exception("outbox delivery round failed")
                delivered = 0
            if delivered:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(written.wait(), timeout=POLL_SECONDS)

    async def settle(self, *, rounds: int = 100) -> None:
        """Let background work finish and deliver until nothing is due (what waits for a later retry stays)."""
        for _ in range(rounds):
            await self._deps.background.drain()
            if await self.deliver_due() == 0 and not self._deps.background.busy:
                return

    async def deliver_due(self, *, everything: bool = False) -> int:
        """One round: claim what is due, deliver it lane by lane; returns how many messages were tried.
        `everything` also takes messages waiting for a later retry (tests that end an outage)."""
        async with self._lock:
            claimed = await self._claim(everything=everything)
            lanes: dict[str, list[SlackMessage]] = defaultdict(list)
            for message in claimed:
                lanes[self._lane(message)].append(message)
            limit = asyncio.Semaphore(LANES_AT_ONCE)

            async def lane(key: str, messages: list[SlackMessage]) -> None:
                async with limit:
                    for message in messages:
                        assert message.id is not None
                        await self._deliver_one(message.id, key)

            # Confirmations go last: they say whether the approver's DM (in another lane) got through.
            first = {key: messages for key, messages in lanes.items() if not key.startswith("ephemeral:")}
            await asyncio.gather(*(lane(key, messages) for key, messages in first.items()))
            await asyncio.gather(*(lane(key, messages) for key, messages in lanes.items() if key not in first))
            return len(claimed)

    def _lane(self, message: SlackMessage) -> str:
        if message.kind in (Kind.APPROVAL_DM, Kind.REQUESTER_NOTE, Kind.REMINDER):
            return f"dm:{message.user_id}"
        if message.kind == Kind.CONFIRMATION:
            return f"ephemeral:{message.channel}"
        channel = message.channel or self._deps.settings.alert_channel
        # New messages and edits keep separate paces: a thousand cards being edited do not hold up the one
        # message that says why (Slack limits posting per channel, and editing per workspace).
        return f"{'edit' if message.ts else 'channel'}:{channel}"

    async def _claim(self, *, everything: bool) -> list[SlackMessage]:
        now = self._deps.clock()
        until = now + LEASE
        async with self._deps.store.session() as session:
            query = select(SlackMessage.id).where(
                col(SlackMessage.pending).is_(True),
                (col(SlackMessage.lease_until).is_(None)) | (col(SlackMessage.lease_until) < now),
            )
            if not everything:
                query = query.where(col(SlackMessage.next_attempt_at) <= now)
            # New messages first, then edits; each in the order they were asked for.
            order = (col(SlackMessage.ts).is_not(None), col(SlackMessage.id))
            ids = list((await session.exec(query.order_by(*order).limit(BATCH))).all())
            if not ids:
                return []
            await session.exec(
                update(SlackMessage)
                .where(
                    col(SlackMessage.id).in_(ids),
                    (col(SlackMessage.lease_until).is_(None)) | (col(SlackMessage.lease_until) < now),
                )
                .values(lease_owner=self._deps.owner, lease_until=until)
                .execution_options(synchronize_session=False)
            )
            await session.commit()
            mine = select(SlackMessage).where(
                col(SlackMessage.id).in_(ids),
                col(SlackMessage.lease_owner) == self._deps.owner,
                col(SlackMessage.lease_until) == until,
            )
            return list((await session.exec(mine.order_by(col(SlackMessage.id)))).all())

    async def _deliver_one(self, message_id: int, lane: str) -> None:
        async with self._deps.store.session() as session:
            message = await session.get(SlackMessage, message_id)
            if message is None or not message.pending:
                return
            version, attempts, kind = message.version, message.attempts, message.kind
            try:
                sent = await self._send(session, message, lane)
            except Wait as wait:
                await self._later(session, message_id, at=wait.until, error=None, counts=False)
            except SlackApiError as exc:
                await self._failed(session, message, lane, exc)
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                await self._later(session, message_id, at=self._backoff(message), error=type(exc).__name__)
            except DecryptError:
                log.error("outbox message %s holds a link sealed with another ENCRYPTION_KEY; giving it up", message_id)
                await self._done(session, message_id, version, Sent(clear_secret=True, gave_up="undecryptable"))
            except Exception as exc:  # a bug drawing this message: the others still go, this one is retried
                log.exception("could not deliver outbox message %s (%s)", message_id, kind)
                await session.rollback()
                await self._later(session, message_id, at=self._after(attempts), error=type(exc).__name__)
            else:
                await self._done(session, message_id, version, sent)
            await session.commit()

    async def _send(self, session: AsyncSession, message: SlackMessage, lane: str) -> Sent:
        kind = Kind(message.kind)
        if kind is Kind.NOTICE:
            drawn = render.notice(message, today=self._deps.clock().date())
            channel = self._deps.settings.alert_channel
            posted = await self._write(lane, "chat_postMessage", channel=channel, blocks=drawn.blocks, text=drawn.text)
            return Sent(channel=str(posted["channel"]), ts=str(posted["ts"]))
        if kind is Kind.INCIDENT:
            return await self._incident(session, message, lane)
        if kind is Kind.DIGEST:
            done = await deliver_digest(
                self._deps, session, message, write=lambda method, **args: self._write(lane, method, **args)
            )
            return Sent(channel=done.channel, ts=done.ts)
        company = await session.get(Company, message.company_id) if message.company_id else None
        if company is None:
            return Sent(gave_up="company gone")
        if kind is Kind.CARD:
            return await self._card(session, message, company, lane)
        if kind in (Kind.NOTE, Kind.ALERT):
            return await self._thread(session, message, company, lane)
        request = await session.get(ApprovalRequest, message.request_id) if message.request_id else None
        if request is None:
            return Sent(gave_up="request gone")
        if kind is Kind.APPROVAL_DM:
            return await self._dm(session, message, request, company, lane)
        if kind is Kind.REQUESTER_NOTE:
            return await self._tell_requester(session, message, request, company, lane)
        if kind is Kind.REMINDER:
            return await self._remind(session, message, request, company, lane)
        return await self._confirm(session, message, request, company, lane)

    async def _tell_requester(
        self, session: AsyncSession, message: SlackMessage, request: ApprovalRequest, company: Company, lane: str
    ) -> Sent:
        language, _ = await self._reader(session, message, company)
        blocks, text = followup.requester_note(
            language=language,
            event=str(message.facts.get("event")),
            company_name=company.name,
            approver=approver(request.approver_user_id, request.approver_email),
            facts=message.facts,
            card_link=await self._card_link(session, company),
        )
        return await self._direct(lane, message, blocks, text)

    async def _remind(
        self, session: AsyncSession, message: SlackMessage, request: ApprovalRequest, company: Company, lane: str
    ) -> Sent:
        if request.status != ApprovalStatus.PENDING:
            return Sent(gave_up=f"request {request.status}")  # used or replaced meanwhile: nothing to remind of
        to_approver = message.facts.get("to") == "approver"
        dm = await session.get(SlackMessage, message.parent_id) if message.parent_id else None
        if dm is not None and dm.facts.get("language") and not message.facts.get("language"):
            message.facts = {**message.facts, "language": dm.facts["language"]}  # the language of the DM above
        language, _ = await self._reader(session, message, company)
        blocks, text = followup.reminder(
            language=language,
            to_approver=to_approver,
            company_name=company.name,
            approver=approver(request.approver_user_id, request.approver_email),
            requester_name=request.requested_by_name or self._deps.settings.firm_name,
            expires_at=request.expires_at,
        )
        if to_approver and dm is not None and dm.channel:
            posted = await self._write(lane, "chat_postMessage", channel=dm.channel, blocks=blocks, text=text)
            return Sent(channel=str(posted["channel"]), ts=str(posted["ts"]))
        return await self._direct(lane, message, blocks, text)

    async def _direct(self, lane: str, message: SlackMessage, blocks: list[Any], text: str) -> Sent:
        """A DM to the message's person; given up (in one log line) when Slack cannot reach them."""
        try:
            opened = await self._slack.conversations_open(users=message.user_id)
            channel = str(opened["channel"]["id"])
            posted = await self._write(lane, "chat_postMessage", channel=channel, blocks=blocks, text=text)
        except SlackApiError as exc:
            error = str(exc.response.get("error"))
            if error in UNREACHABLE:
                log.warning("could not DM %s (%s): %s", message.user_id, message.kind, error)
                return Sent(gave_up=error)
            raise
        return Sent(channel=channel, ts=str(posted["ts"]))

    async def _card_link(self, session: AsyncSession, company: Company) -> str | None:
        """A link to the company's card, when it is in the channel and Slack says where."""
        card = await outbox.card_of(session, company_id=company.id) if company.id else None
        if card is None or not card.ts or not card.channel:
            return None
        try:
            answer = await self._slack.chat_getPermalink(channel=card.channel, message_ts=card.ts)
        except SlackApiError:
            return None  # the message matters more than its link to the card
        return str(answer["permalink"])

    async def _card(self, session: AsyncSession, message: SlackMessage, company: Company, lane: str) -> Sent:
        drawn = await render.card(self._deps, session, company)
        channel = message.channel or self._deps.settings.alert_channel
        if message.ts:
            try:
                await self._write(
                    lane, "chat_update", channel=channel, ts=message.ts, blocks=drawn.blocks, text=drawn.text
                )
                return Sent()
            except SlackApiError as exc:
                # Someone deleted the card: post a new one rather than lose the company from the channel.
                if exc.response.get("error") != "message_not_found":
                    raise
        posted = await self._write(lane, "chat_postMessage", channel=channel, blocks=drawn.blocks, text=drawn.text)
        return Sent(channel=str(posted["channel"]), ts=str(posted["ts"]))

    async def _incident(self, session: AsyncSession, message: SlackMessage, lane: str) -> Sent:
        drawn = await render.incident(session, message)
        if message.ts and message.channel:
            await self._write(
                lane, "chat_update", channel=message.channel, ts=message.ts, blocks=drawn.blocks, text=drawn.text
            )
            return Sent()
        channel = self._deps.settings.alert_channel
        posted = await self._write(lane, "chat_postMessage", channel=channel, blocks=drawn.blocks, text=drawn.text)
        return Sent(channel=str(posted["channel"]), ts=str(posted["ts"]))

    async def _thread(self, session: AsyncSession, message: SlackMessage, company: Company, lane: str) -> Sent:
        if message.facts.get("folded") and not message.ts:
            return Sent()  # one of many with the same cause: the roll-up in the channel lists it
        # In the language of the person responsible for the company (an alert mentions them).
        language, _ = await self._reader(session, message, company, person=company.responsible_user_id)
        if message.kind == Kind.ALERT:
            drawn = render.alert(message, company, language)
        else:
            drawn = render.note(message, company, language)
        if message.ts and message.channel:
            if message.kind == Kind.NOTE and not message.facts.get("folded"):
                return Sent()  # notes are said once (a folded one is edited to point at its roll-up)
            try:
                await self._write(
                    lane, "chat_update", channel=message.channel, ts=message.ts, blocks=drawn.blocks, text=drawn.text
                )
                return Sent()
            except SlackApiError as exc:
                if exc.response.get("error") != "message_not_found":
                    raise
        parent = await session.get(SlackMessage, message.parent_id) if message.parent_id else None
        if parent is None or not parent.ts or not parent.channel:
            raise Wait(parent.next_attempt_at if parent else self._deps.clock())
        posted = await self._write(
            lane, "chat_postMessage", channel=parent.channel, thread_ts=parent.ts, blocks=drawn.blocks, text=drawn.text
        )
        return Sent(channel=str(posted["channel"]), ts=str(posted["ts"]))

    async def _dm(
        self, session: AsyncSession, message: SlackMessage, request: ApprovalRequest, company: Company, lane: str
    ) -> Sent:
        if message.ts and message.channel:
            if request.status == ApprovalStatus.PENDING:
                return Sent()
            language, tz = await self._reader(session, message, company)
            drawn = render.approval_dm(self._deps, request, company, link=None, language=language, tz=tz)
            await self._write(
                lane, "chat_update", channel=message.channel, ts=message.ts, blocks=drawn.blocks, text=drawn.text
            )
            return Sent()
        if request.status != ApprovalStatus.PENDING or not message.user_id or not message.secret_sealed:
            return Sent(clear_secret=True, gave_up=f"request {request.status}")
        await self._requester_name(session, request)
        language, tz = await self._reader(session, message, company)
        link = self._deps.vault.open(message.secret_sealed)
        drawn = render.approval_dm(self._deps, request, company, link=link, language=language, tz=tz)
        # An approver Slack cannot reach (deactivated, a guest the bot cannot DM, DMs closed) is given up, and the
        # requester's confirmation carries the link to forward instead. Either way the sealed link is wiped.
        return replace(await self._direct(lane, message, drawn.blocks, drawn.text), clear_secret=True)

    async def _confirm(
        self, session: AsyncSession, message: SlackMessage, request: ApprovalRequest, company: Company, lane: str
    ) -> Sent:
        dm = await session.get(SlackMessage, message.parent_id) if message.parent_id else None
        if dm is not None and dm.pending:
            raise Wait(dm.next_attempt_at)
        reached = dm is not None and dm.ts is not None
        forward = None if reached or not message.secret_sealed else self._deps.vault.open(message.secret_sealed)
        permalink = await self._card_link(session, company)
        blocks = requester_blocks(
            company_name=company.name,
            approver=approver(request.approver_user_id, request.approver_email),
            card_link=permalink,
            forward_link=forward,
            expires_at=request.expires_at,
            in_slack=request.approver_user_id is not None,
        )
        text = f"{escape(company.name)} is saved and waits for approval"
        try:
            await self._write(
                lane, "chat_postEphemeral", channel=message.channel, user=message.user_id, blocks=blocks, text=text
            )
        except SlackApiError as exc:
            if str(exc.response.get("error")) not in UNREACHABLE:
                raise
            # The bot cannot see the conversation /addcompany was typed in: the requester gets a DM instead,
            # since this may be the only copy of the link to forward.
            await self._write(lane, "chat_postMessage", channel=message.user_id, blocks=blocks, text=text)
        return Sent(clear_secret=True)

    async def _requester_name(self, session: AsyncSession, request: ApprovalRequest) -> None:
        if request.requested_by_name:
            return
        try:
            answer = await self._slack.users_info(user=request.requested_by)
        except SlackApiError as exc:
            if str(exc.response.get("error")) in UNREACHABLE:
                return  # the page says "Your accountant at <firm>"
            raise
        user = answer["user"]
        profile = user.get("profile", {})
        request.requested_by_name = str(profile.get("real_name") or user.get("real_name") or user.get("name") or "")
        session.add(request)

    async def _reader(
        self, session: AsyncSession, message: SlackMessage, company: Company, *, person: str | None = None
    ) -> tuple[Language, str]:
        """The language and time zone of the person a message is for: their Slack locale's language, else their
        company's country's. A DM's (the message's `user_id`) is kept on its row once chosen, so that its edits
        read like the message; for `person` (the responsible one, for a thread in the channel) it is looked up
        each time and never written back, since the core changes those rows' facts meanwhile (counts, roll-ups,
        snoozes) and a write from here would undo that."""
        kept = language_for_locale(message.facts.get("language"))
        if kept is not None:
            return kept, str(message.facts.get("tz") or self._deps.settings.timezone)
        locale, tz = await self._locale(person or message.user_id)
        language = language_for_person(locale, company.country)
        tz = tz or self._deps.settings.timezone
        if person is None:
            message.facts = {**message.facts, "language": language.value, "tz": tz}
            session.add(message)
        return language, tz

    async def _locale(self, user_id: str | None) -> tuple[str | None, str | None]:
        """A person's Slack locale ("nb-NO") and time zone, from users.info, cached in this process."""
        cached = self._locales.get(user_id or "")
        if cached is not None and cached[0] > time.monotonic():
            return cached[1], cached[2]
        if not user_id:
            return None, None
        try:
            answer = await self._slack.users_info(user=user_id, include_locale=True)
        except SlackApiError as exc:
            if str(exc.response.get("error")) in UNREACHABLE:
                return None, None  # the company's country decides
            raise
        user = answer["user"]
        locale, tz = str(user.get("locale") or "") or None, str(user.get("tz") or "") or None
        if len(self._locales) >= LOCALE_PEOPLE:
            self._locales.clear()
        self._locales[user_id] = (time.monotonic() + LOCALE_SECONDS, locale, tz)
        return locale, tz

    async def _write(self, lane: str, method: str, **arguments: Any) -> Any:
        """One Slack write, at most one a `SLACK_POST_INTERVAL_SECONDS` per channel (counted from the end of the
        previous write, so that Slack sees them at least that far apart however long each takes to arrive)."""
        interval = self._deps.settings.slack_post_interval_seconds
        wait = self._next_slot[lane] - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            return await getattr(self._slack, method)(**arguments)
        finally:
            self._next_slot[lane] = max(self._next_slot[lane], time.monotonic() + interval)

    async def _failed(self, session: AsyncSession, message: SlackMessage, lane: str, exc: SlackApiError) -> None:
        assert message.id is not None
        error = str(exc.response.get("error") or f"HTTP {exc.response.status_code}")
        now = self._deps.clock()
        if error == "ratelimited" or exc.response.status_code == 429:
            seconds = float(exc.response.headers.get("Retry-After", 30) or 30)
            # The whole channel waits, not only this message.
            self._next_slot[lane] = max(self._next_slot[lane], time.monotonic() + seconds)
            await self._later(session, message.id, at=now + timedelta(seconds=seconds), error=error)
            return
        if error in MALFORMED:
            log.error("Slack refused outbox message %s (%s) as malformed: %s", message.id, message.kind, error)
            await self._done(session, message.id, message.version, Sent(clear_secret=True, gave_up=error))
            return
        if error not in TRANSIENT and exc.response.status_code < 500:
            self._warn(lane, error)
        await self._later(session, message.id, at=self._backoff(message), error=error)

    def _warn(self, lane: str, error: str) -> None:
        """Say once in a while, in one line, why a channel gets nothing (and how to fix it)."""
        if time.monotonic() - self._warned.get(lane + error, -1e9) < 600:
            return
        self._warned[lane + error] = time.monotonic()
        hint = {
            "not_in_channel": "invite the bot to the channel (/invite @the bot's name)",
            "channel_not_found": "check ALERT_CHANNEL is the channel's ID and the bot can see it",
            "invalid_auth": "check SLACK_BOT_TOKEN",
            "token_revoked": "reinstall the app and update SLACK_BOT_TOKEN",
        }.get(error, "it is retried with backoff")
        log.warning("Slack refuses messages for %s: %s; %s", lane, error, hint)

    def _backoff(self, message: SlackMessage) -> datetime:
        return self._after(message.attempts)

    def _after(self, attempts: int) -> datetime:
        """When to try again: exponential backoff with jitter, capped at SLACK_RETRY_MAX_SECONDS."""
        cap = self._deps.settings.slack_retry_max_seconds
        delay = min(cap, FIRST_BACKOFF_SECONDS * 2 ** min(attempts, 16))
        return self._deps.clock() + timedelta(seconds=delay * random.uniform(0.5, 1.0))

    async def _later(
        self, session: AsyncSession, message_id: int, *, at: datetime, error: str | None, counts: bool = True
    ) -> None:
        values: dict[str, Any] = {"next_attempt_at": at, "lease_owner": None, "lease_until": None}
        if counts:
            values["attempts"] = SlackMessage.attempts + 1
            values["last_error"] = error
        await session.exec(
            update(SlackMessage)
            .where(col(SlackMessage.id) == message_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )

    async def _done(self, session: AsyncSession, message_id: int, version: int, sent: Sent) -> None:
        values: dict[str, Any] = {
            "delivered_version": version,
            # A change committed while this delivery ran keeps the message due; the row decides, not us.
            "pending": (col(SlackMessage.version) > version) if not sent.gave_up else False,
            "attempts": 0,
            "last_error": sent.gave_up,
            "lease_owner": None,
            "lease_until": None,
            "delivered_at": self._deps.clock(),
        }
        if sent.gave_up:
            values["dead"] = True
        if sent.channel:
            values["channel"] = sent.channel
        if sent.ts:
            values["ts"] = sent.ts
        if sent.clear_secret:
            values["secret_sealed"] = None
        await session.exec(
            update(SlackMessage)
            .where(col(SlackMessage.id) == message_id)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
