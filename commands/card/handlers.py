"""Buttons on a company's card and its alerts: send a new approval link, cancel, sync now, retry.

A button acts only for what it was drawn for (ButtonRef): pressed after the company moved on, or on an
alert that is resolved, it answers with where the company stands and has the message drawn again.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from slack_bolt.context.ack.async_ack import AsyncAck
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel.ext.asyncio.session import AsyncSession

from bot import onboarding
from bot.domain.types import CompanyState
from bot.runtime import Deps
from bot.services import approvals, companies, outbox
from bot.slack_format import escape
from bot.store.models import Company, SlackMessage
from bot.sync.engine import sync_company
from commands.addcompany import parse
from commands.addcompany.ids import Field
from commands.card.ids import ButtonRef
from commands.card.views import change_approver_view, notice_view
from commands.home import handlers as home


async def _current(
    deps: Deps, session: AsyncSession, body: dict[str, Any], say: _Reply
) -> tuple[Company, ButtonRef] | None:
    """The company the button is for, if the button is still current; otherwise say so and redraw."""
    try:
        ref = ButtonRef.decode(str(body["actions"][0].get("value", "")))
    except ValueError:
        await say("This button is from an older version of the bot; use the company's card.")
        return None
    company = await session.get(Company, ref.company_id)
    if company is None:
        await say("This company is no longer in the bot.")
        return None
    now = deps.clock()
    alert = await session.get(SlackMessage, ref.alert_id) if ref.alert_id is not None else None
    if ref.alert_id is not None and (alert is None or alert.closed_at is not None):
        if alert is not None:
            outbox.changed(session, alert, now=now)  # drawn again, without its buttons
            await session.commit()
        await say(f"This alert about {escape(company.name)} is already resolved; nothing was changed.")
        return None
    if company.state != ref.state:
        await outbox.card(session, company=company, now=now)
        await session.commit()
        where = CompanyState(company.state).value.replace("_", " ")
        await say(f"{escape(company.name)} has moved on (it is now {where}); nothing was changed.")
        return None
    return company, ref


class _Reply:
    """Answers the person who pressed: ephemerally under a message, in place in a modal, or on the home tab
    (drawn again, with the answer on top: a home view has no response_url and is not a modal to update)."""

    def __init__(
        self, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        self._body, self._respond, self._client, self._context = body, respond, client, context

    @property
    def on_home(self) -> bool:
        """Whether the press came from the App Home tab."""
        return bool((self._body.get("view") or {}).get("type") == "home")

    async def done(self, text: str | None) -> None:
        """After acting: say what there is to say; a press on the home tab always has the tab drawn again."""
        if text or self.on_home:
            await self(text or "")

    async def __call__(self, text: str) -> None:
        view = self._body.get("view")
        if self.on_home:
            user = self._body["user"]["id"]
            await home.republish(self._context, self._client, user_id=user, view=view, notice=text or None)
            return
        if self._body.get("response_url") or not view:
            await self._respond(text=text, response_type="ephemeral", replace_original=False)
            return
        await self._client.views_update(view_id=view["id"], view=notice_view(text))


@dataclass(frozen=True, slots=True)
class _Press:
    """A current button press: the company it is for, inside the transaction its action runs in."""

    deps: Deps
    session: AsyncSession
    company: Company
    ref: ButtonRef
    actor: str
    reply_in: str
    in_modal: bool


async def _act(
    body: dict[str, Any],
    context: AsyncBoltContext,
    respond: AsyncRespond,
    client: AsyncWebClient,
    act: Callable[[_Press], Awaitable[str | None]],
) -> None:
    """Run `act` for a button that is still current, commit, then say what it returned (if anything)."""
    deps: Deps = context["deps"]
    say = _Reply(body, respond, client, context)
    actor = context.user_id or ""
    async with deps.store.session() as session:
        current = await _current(deps, session, body, say)
        if current is None:
            return
        company, ref = current
        channel = (body.get("channel") or {}).get("id") or actor
        said = await act(_Press(deps, session, company, ref, actor, channel, in_modal=bool(body.get("view"))))
        await session.commit()
    await say.done(said)


async def resend_link(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond, client: AsyncWebClient
) -> None:
    """Send a new approval link (earlier links stop working); the confirmation says where it went."""
    await ack()

    async def resend(press: _Press) -> str | None:
        name = escape(press.company.name)
        if CompanyState(press.company.state) is CompanyState.DEACTIVATED:
            return f"{name} is deactivated; activate it before sending a link."
        await onboarding.send_link(
            press.deps, press.session, company=press.company, actor=press.actor, reply_in=press.reply_in
        )
        return (
            f"A new approval link for {name} is on its way; earlier links no longer work." if press.in_modal else None
        )

    await _act(body, context, respond, client, resend)


async def cancel(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond, client: AsyncWebClient
) -> None:
    """Stop onboarding a company that never got connected (its links stop working)."""
    await ack()

    async def switch_off(press: _Press) -> str:
        await onboarding.cancel(press.deps, press.session, company=press.company, actor=press.actor)
        return f"{escape(press.company.name)} is cancelled; its approval links no longer work."

    await _act(body, context, respond, client, switch_off)


async def sync_now(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond, client: AsyncWebClient
) -> None:
    """Run a sync now (Sync now on a healthy card, Retry now on an alert)."""
    await ack()
    await _sync(body, context, _Reply(body, respond, client, context), full=False)


async def full_resync(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond, client: AsyncWebClient
) -> None:
    """Forget every checkpoint and read all of the company's books again."""
    await ack()
    await _sync(body, context, _Reply(body, respond, client, context), full=True)


async def _sync(body: dict[str, Any], context: AsyncBoltContext, say: _Reply, *, full: bool) -> None:
    deps: Deps = context["deps"]
    async with deps.store.session() as session:
        current = await _current(deps, session, body, say)
    if current is None:
        return
    company, _ = current
    assert company.id is not None
    if say.on_home:
        await say(f"Syncing {escape(company.name)} now; this tab is drawn again when it is done.")
    outcome = await sync_company(deps, company_id=company.id, actor=context.user_id or "unknown", full=full)
    if outcome is not None:
        await say.done(None)
        return
    async with deps.store.session() as session:
        connected = await approvals.connection_for(session, company_id=company.id) is not None
    if connected:
        await say(f"A sync of {escape(company.name)} is already running; its card shows when it ends.")
    else:
        await say(
            f"{escape(company.name)} has no working connection to Visma yet, so there is nothing to retry: press "
            "*Send new approval link* (or *Change approver*) and have it approved."
        )


async def change_approver(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond, client: AsyncWebClient
) -> None:
    """Open the "who approves instead" modal (pushed on top when pressed inside a modal)."""
    await ack()
    deps: Deps = context["deps"]
    async with deps.store.session() as session:
        current = await _current(deps, session, body, _Reply(body, respond, client, context))
    if current is None:
        return
    company, ref = current
    view = change_approver_view(company_name=company.name, ref=ref)
    if (body.get("view") or {}).get("type") == "modal":
        await client.views_push(trigger_id=body["trigger_id"], view=view)
    else:
        await client.views_open(trigger_id=body["trigger_id"], view=view)


async def approver_changed(
    ack: AsyncAck, view: dict[str, Any], context: AsyncBoltContext, client: AsyncWebClient
) -> None:
    """Save the new approver and send them a new link, in one transaction; errors show inline."""
    deps: Deps = context["deps"]
    (user, email), errors = parse.approver_step(view["state"]["values"])
    if errors:
        await ack(response_action="errors", errors=errors)
        return
    ref = ButtonRef.decode(str(view.get("private_metadata", "")))
    actor = context.user_id or ""
    async with deps.store.session() as session:
        company = await session.get(Company, ref.company_id)
        if company is None or company.state != ref.state:
            await ack(
                response_action="errors",
                errors={Field.APPROVER_USER: "The company has moved on since; close this and look at its card."},
            )
            return
        companies.change_approver(session, company=company, user_id=user, email=email, actor=actor, now=deps.clock())
        await onboarding.send_link(deps, session, company=company, actor=actor, reply_in=actor)
        await session.commit()
    await ack(response_action="clear")
    await home.refresh_if_seen(context, client, user_id=actor)


async def mark_resolved(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond, client: AsyncWebClient
) -> None:
    """Close an alert by hand: it keeps its explanation and says who marked it resolved."""
    await ack()

    async def close(press: _Press) -> str | None:
        alert_id = press.ref.alert_id
        alert = await press.session.get(SlackMessage, alert_id) if alert_id is not None else None
        if alert is not None:
            await outbox.in_turn(press.session)
            await press.session.refresh(alert)  # as it is now, not as it was before our turn came
            if alert.closed_at is not None:
                return f"This alert about {escape(press.company.name)} was resolved meanwhile; nothing was changed."
            await outbox.close_alert(press.session, alert, how="marked", now=press.deps.clock(), by=press.actor)
        return None

    await _act(body, context, respond, client, close)


async def deactivate(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond, client: AsyncWebClient
) -> None:
    """Switch the company off (confirmed in Slack's dialog)."""
    await ack()

    async def switch_off(press: _Press) -> None:
        await onboarding.deactivate(press.deps, press.session, company=press.company, actor=press.actor)

    await _act(body, context, respond, client, switch_off)


async def activate(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond, client: AsyncWebClient
) -> None:
    """Switch the company back on."""
    await ack()

    async def switch_on(press: _Press) -> None:
        await onboarding.activate(
            press.deps, press.session, company=press.company, actor=press.actor, reply_in=press.reply_in
        )

    await _act(body, context, respond, client, switch_on)


SNOOZE_DAY = timedelta(days=1)
SNOOZE_WEEK = timedelta(days=7)


async def snooze_day(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond, client: AsyncWebClient
) -> None:
    """Quiet an alert for a day: it keeps counting, and the thread hears tomorrow if it is still open."""
    await ack()
    await _act(body, context, respond, client, _snooze(SNOOZE_DAY))


async def snooze_week(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond, client: AsyncWebClient
) -> None:
    """Quiet an alert for a week."""
    await ack()
    await _act(body, context, respond, client, _snooze(SNOOZE_WEEK))


async def unsnooze(
    ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond, client: AsyncWebClient
) -> None:
    """End an alert's snooze now."""
    await ack()
    await _act(body, context, respond, client, _snooze(None))


def _snooze(length: timedelta | None) -> Callable[[_Press], Awaitable[str | None]]:
    async def snooze(press: _Press) -> str | None:
        alert = await press.session.get(SlackMessage, press.ref.alert_id) if press.ref.alert_id is not None else None
        if alert is None:
            return "Snooze works on an alert; this button is not on one."
        await outbox.in_turn(press.session)
        await press.session.refresh(alert)  # as it is now, not as it was before our turn came
        if alert.closed_at is not None:
            return f"This alert about {escape(press.company.name)} was resolved meanwhile; nothing was changed."
        now = press.deps.clock()
        until = now + length if length is not None else None
        outbox.snooze(press.session, alert, until=until, by=press.actor, now=now)
        await outbox.card(press.session, company=press.company, now=now)  # the card says it is snoozed
        return None

    return snooze


async def retry_all(ack: AsyncAck, body: dict[str, Any], context: AsyncBoltContext, respond: AsyncRespond) -> None:
    """A roll-up's Retry all now: every company it lists as failing is synced at the next tick."""
    await ack()
    deps: Deps = context["deps"]
    value = str(body["actions"][0].get("value", ""))
    if not value.isdigit():
        await respond(
            text="This button is from an older version of the bot.", response_type="ephemeral", replace_original=False
        )
        return
    async with deps.store.session() as session:
        count = await outbox.retry_incident(session, incident_id=int(value), now=deps.clock())
        await session.commit()
    text = (
        f"{count} companies will be synced again within a minute; this message follows them."
        if count
        else "Every company in this message works again or was dealt with; nothing to retry."
    )
    await respond(text=text, response_type="ephemeral", replace_original=False)
