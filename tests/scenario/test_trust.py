"""Trust and atomicity, tried from outside as users and attackers would: Slack failing mid-flow, guests,
old buttons, injected names, and OAuth callbacks that race a decline or each other."""

from __future__ import annotations

import asyncio
import json
import re
import time
from typing import Any
from urllib.parse import urlencode

from cryptography.fernet import Fernet
from sqlmodel import select

from bot.domain.types import AccountingSystem, ApprovalStatus, CompanyState
from bot.simulators.browser import FormBrowser
from bot.simulators.slack_requests import input_values, picked_user, selected, typed
from bot.simulators.stack import ALERT_CHANNEL
from bot.store.models import ApprovalRequest, Company, Connection, SlackMessage
from commands.card.ids import CardAction
from tests.scenario.flow import (
    KARI,
    OLA,
    STEP2,
    STEP3,
    add_company,
    approval_link,
    approve,
    approver_step,
    block_text,
    button,
    cards,
    open_modal,
    press,
    submit,
    thread,
)

INJECTED = ("<!channel>", "<!here>", "<@U0GHOST>", "<https://evil.example", "&amp;lt;", "&amp;amp;")


def slack_calls_text(stack: Any) -> str:
    """Everything the bot sent Slack, as one string (blocks and fallback text)."""
    return "\n".join(json.dumps(call.args, ensure_ascii=False) for call in stack.slack_world.calls)


async def company_row(stack: Any) -> Company:
    async with stack.deps.store.session() as session:
        return (await session.exec(select(Company))).one()


async def test_a_slack_outage_delays_the_flow_but_leaves_nothing_half_done(stack):
    stack.slack_world.switches.fail = {
        "chat.postMessage": "internal_error",
        "users.info": "fatal_error",
        "conversations.open": "service_unavailable",
    }
    await add_company(stack)
    company = await company_row(stack)
    assert company.state == CompanyState.AWAITING_APPROVAL
    assert cards(stack) == []
    async with stack.deps.store.session() as session:
        waiting = (await session.exec(select(SlackMessage).where(SlackMessage.pending))).all()
    assert {message.kind for message in waiting} >= {"card", "approval_dm", "confirmation"}
    assert all(message.attempts >= 1 for message in waiting if message.kind != "confirmation")

    stack.slack_world.switches.fail = {}
    await stack.app.state.deliverer.deliver_due(everything=True)
    await stack.settle()
    [card] = cards(stack)
    assert "Awaiting approval" in block_text(card)
    link = approval_link(stack)  # the DM went out, with a working link
    assert "Kari Nordmann" in block_text(stack.slack_world.current_messages(stack.slack_world.dm_channel_for(OLA))[-1])
    [confirmation] = stack.slack_world.calls_to("chat.postEphemeral")
    assert "went to <@U0OLA> by DM" in block_text(confirmation.args)
    page = await approve(stack, link)
    assert "er koblet til" in page.text
    await stack.settle()
    assert "Connected by" in block_text(cards(stack)[-1])


async def test_the_card_waits_until_the_bot_is_invited_then_appears(stack):
    stack.slack_world.switches.fail = {"chat.postMessage": "not_in_channel"}
    await add_company(stack)
    assert cards(stack) == []
    stack.slack_world.switches.fail = {}
    await stack.app.state.deliverer.deliver_due(everything=True)
    await stack.settle()
    assert len(cards(stack)) == 1


async def test_a_confirmation_the_bot_cannot_post_in_its_channel_comes_by_dm(stack):
    stack.slack_world.switches.fail = {"conversations.open": "user_disabled", "chat.postEphemeral": "channel_not_found"}
    await add_company(stack)
    kari_dm = stack.slack_world.current_messages(stack.slack_world.dm_channel_for(KARI))
    assert len(kari_dm) == 1
    assert "forward them this link" in block_text(kari_dm[0])
    assert re.search(r"<(http[^>|]+/approve/[^>|]+)>", block_text(kari_dm[0]))


async def test_a_company_left_waiting_can_be_repaired_from_addcompany(stack):
    await add_company(stack)
    first_link = approval_link(stack)
    view = await open_modal(stack)
    body = await submit(
        stack,
        view,
        input_values(
            system=selected("eaccounting"),
            company_name=typed("Nordlys Bakeri AS"),
            country=selected("NO"),
            org_number=typed("988 077 917"),
        ),
    )
    assert body["response_action"] == "update"
    shown = {**body["view"], "id": view["id"]}
    await stack.slack.click(user=KARI, action=button(shown, CardAction.RESEND_LINK), view=shown)
    await stack.settle()
    assert approval_link(stack) != first_link
    assert (await stack.browser.get(first_link)).status == 410
    assert "is on its way" in block_text(stack.slack_world.view(view["id"]))


async def test_a_forgotten_alert_button_cannot_move_a_healthy_company(stack):
    await add_company(stack)
    await approve(stack, approval_link(stack))
    stack.eaccounting.switches.no_full_permission = True
    await press(stack, CardAction.SYNC_NOW)
    assert "Needs action" in block_text(cards(stack)[-1])
    alert = next(m for m in thread(stack) if "Who can fix it" in block_text(m))
    stack.eaccounting.switches.no_full_permission = False
    await press(stack, CardAction.RETRY)
    assert (await company_row(stack)).state == CompanyState.HEALTHY

    await stack.slack.click(
        user=KARI, action=button(alert, CardAction.RESEND_LINK), channel=ALERT_CHANNEL, message=alert
    )
    await stack.settle()
    assert (await company_row(stack)).state == CompanyState.HEALTHY
    async with stack.deps.store.session() as session:
        assert len((await session.exec(select(ApprovalRequest))).all()) == 1  # no new link went out
    resolved = next(m for m in thread(stack) if m["ts"] == alert["ts"])
    assert "Resolved" in block_text(resolved)
    assert "full program permission" in block_text(resolved)  # the explanation stays
    assert not any(block.get("type") == "actions" for block in resolved["blocks"])


async def test_a_card_button_from_an_older_state_answers_instead_of_acting(stack):
    await add_company(stack)
    waiting = cards(stack)[-1]  # drawn while awaiting approval, with "Resend link"
    await approve(stack, approval_link(stack))
    await stack.slack.click(
        user=KARI, action=button(waiting, CardAction.RESEND_LINK), channel=ALERT_CHANNEL, message=waiting
    )
    await stack.settle()
    assert (await company_row(stack)).state == CompanyState.HEALTHY
    async with stack.deps.store.session() as session:
        assert len((await session.exec(select(ApprovalRequest))).all()) == 1


async def test_names_from_people_and_from_visma_cannot_ping_or_plant_links(stack):
    nasty = "<!channel> <https://evil.example/login|Click here> & *b* _i_ ~s~ `c`"
    feil = stack.eaccounting.companies[stack.eaccounting.company_id_by_org("923609016")]
    feil.name = f"Feil {nasty}"
    view = await open_modal(stack)
    await submit(
        stack,
        view,
        input_values(
            system=selected("eaccounting"),
            company_name=typed(f"Nordlys {nasty}"),
            country=selected("NO"),
            org_number=typed("988 077 917"),
        ),
    )
    view = stack.slack_world.view(view["id"])
    await submit(stack, view, STEP2)
    view = stack.slack_world.view(view["id"])
    assert await submit(stack, view, input_values(approver_email=typed("<@U0GHOST>@evil.example"))) != {}
    assert await submit(stack, view, STEP3) == {}
    await stack.settle()
    page = await approve(stack, approval_link(stack), company_org="923609016")  # the wrong company, named by Visma
    assert "feil firma" in page.text.lower()
    await stack.settle()
    sent = slack_calls_text(stack)
    for marker in INJECTED:
        assert marker not in sent, marker
    assert "&lt;!channel&gt;" in sent


async def test_guests_are_not_staff(database_url, clock):
    from bot.simulators.stack import running_stack
    from tests.scenario.conftest import QUICK

    async with running_stack(database_url=database_url, clock=clock, staff_usergroup="S0STAFF", **QUICK) as stack:
        guest = "U0GUEST"
        response = await stack.slack.slash(command="/addcompany", user=guest, channel=ALERT_CHANNEL)
        assert response.status_code == 200
        await stack.settle()
        assert stack.slack_world.calls_to("views.open") == []
        assert stack.slack_world.calls_to("conversations.open") == []

        await add_company(stack)  # Kari is staff
        card = cards(stack)[-1]
        before = len(stack.slack_world.calls_to("chat.postMessage"))
        await stack.slack.click(
            user=guest, action=button(card, CardAction.RESEND_LINK), channel=ALERT_CHANNEL, message=card
        )
        await stack.settle()
        assert len(stack.slack_world.calls_to("chat.postMessage")) == before
        async with stack.deps.store.session() as session:
            assert len((await session.exec(select(ApprovalRequest))).all()) == 1

        await stack.slack.event({"type": "app_home_opened", "user": guest, "channel": "D0GUEST", "tab": "home"})
        await stack.settle()
        home = json.dumps(stack.slack_world.home[guest])
        assert "Nordlys" not in home
        assert "use the link in your message" in home


async def test_only_its_approver_can_decline_in_slack(stack):
    await add_company(stack)
    dm = stack.slack_world.current_messages(stack.slack_world.dm_channel_for(OLA))[-1]
    await stack.slack.click(
        user=KARI, action=button(dm, "approval_decline"), channel=stack.slack_world.dm_channel_for(OLA), message=dm
    )
    await stack.settle()
    async with stack.deps.store.session() as session:
        [request] = (await session.exec(select(ApprovalRequest))).all()
    assert request.status == ApprovalStatus.PENDING


async def test_a_decline_button_with_a_value_we_never_drew_is_answered_not_raised(stack, caplog):
    await add_company(stack)
    channel = stack.slack_world.dm_channel_for(OLA)
    dm = stack.slack_world.current_messages(channel)[-1]
    forged = {**button(dm, "approval_decline"), "value": '{"not": "a request id"}'}
    response = await stack.slack.click(user=OLA, action=forged, channel=channel, message=dm)
    assert response.status_code == 200
    await stack.settle()
    assert "listener failed" not in caplog.text
    async with stack.deps.store.session() as session:
        [request] = (await session.exec(select(ApprovalRequest))).all()
    assert request.status == ApprovalStatus.PENDING


async def _until_callback(stack: Any, link: str) -> str:
    """Ola goes through Visma's login, picker and consent; returns the callback URL without opening it."""
    browser = stack.browser
    page = await browser.submit(await browser.get(link))
    page = await browser.submit(page, values={"email": "ola@nordlysbakeri.no", "password": "demo"})
    values = (
        {"company_id": stack.eaccounting.company_id_by_org("988077917")}
        if any("company_id" in form.fields for form in page.forms)
        else None
    )
    if values:
        page = await browser.submit(page, values=values)
    stopped = await FormBrowser(stack.http, max_redirects=0).submit(page, button=("decision", "accept"))
    assert stopped.status in (302, 303), stopped.text
    return str(stopped.headers["location"])


async def test_concurrent_callbacks_exchange_the_code_once(stack):
    await add_company(stack)
    callback = await _until_callback(stack, approval_link(stack))
    system = stack.deps.systems[AccountingSystem.EACCOUNTING]
    original, exchanges = system.exchange_code, []

    async def counted(**kwargs: Any) -> Any:
        exchanges.append(kwargs["code"])
        return await original(**kwargs)

    system.exchange_code = counted  # type: ignore[method-assign]
    pages = await asyncio.gather(*(stack.browser.get(callback) for _ in range(4)))
    await stack.settle()
    assert len(exchanges) == 1
    assert sorted(page.status for page in pages) == [200, 400, 400, 400]
    async with stack.deps.store.session() as session:
        assert len((await session.exec(select(Connection))).all()) == 1


async def test_a_decline_during_the_token_exchange_wins(stack):
    await add_company(stack)
    link = approval_link(stack)
    callback = await _until_callback(stack, link)
    system = stack.deps.systems[AccountingSystem.EACCOUNTING]
    original = system.exchange_code

    async def declined_meanwhile(**kwargs: Any) -> Any:
        tokens = await original(**kwargs)
        confirm = await stack.browser.submit(await stack.browser.get(link), form_index=1)
        await stack.browser.submit(confirm)
        return tokens

    system.exchange_code = declined_meanwhile  # type: ignore[method-assign]
    page = await stack.browser.get(callback)
    await stack.settle()
    assert page.status == 410
    assert "ble avslått" in page.text
    company = await company_row(stack)
    assert company.state == CompanyState.AWAITING_APPROVAL
    async with stack.deps.store.session() as session:
        assert (await session.exec(select(Connection))).all() == []


async def test_a_second_sign_in_does_not_break_the_first(stack):
    await add_company(stack)
    link = approval_link(stack)
    first = await _until_callback(stack, link)
    await stack.browser.submit(await stack.browser.get(link))  # "Continue" again in another tab
    page = await stack.browser.get(first)
    assert "er koblet til" in page.text


async def test_the_approver_can_be_changed_from_the_card(stack):
    await add_company(stack)
    first_link = approval_link(stack)
    await press(stack, CardAction.CHANGE_APPROVER)
    view = stack.slack_world.last_view()
    assert view is not None
    assert "Who approves" in block_text(view)
    answer = await stack.submit_view(user=KARI, view=view, values=input_values(approver_user=picked_user("U0PER")))
    assert answer == {"response_action": "clear"}
    await stack.settle()
    per = stack.slack_world.current_messages(stack.slack_world.dm_channel_for("U0PER"))
    assert len(per) == 1
    assert "Review and approve" in json.dumps(per[0])
    assert (await stack.browser.get(first_link)).status == 410
    assert "<@U0PER>" in block_text(cards(stack)[-1])
    ola = stack.slack_world.current_messages(stack.slack_world.dm_channel_for(OLA))[-1]
    assert "virker ikke lenger" in block_text(ola)  # Ola's DM lost its link (in Norwegian, as his Slack)


async def test_what_slack_did_not_take_survives_a_restart(database_url, clock):
    from bot.simulators.stack import running_stack
    from tests.scenario.conftest import QUICK

    settings = {**QUICK, "encryption_key": Fernet.generate_key().decode()}
    async with running_stack(database_url=database_url, clock=clock, **settings) as stack:
        stack.slack_world.switches.fail = {"chat.postMessage": "service_unavailable"}
        await add_company(stack)
        assert cards(stack) == []
    async with running_stack(database_url=database_url, clock=clock, **settings) as restarted:
        await restarted.app.state.deliverer.deliver_due(everything=True)
        await restarted.settle()
        assert len(cards(restarted)) == 1
        assert len(restarted.slack_world.calls_to("conversations.open")) == 1  # the DM once, not twice


async def test_ratelimited_holds_the_channel_for_as_long_as_slack_says(stack):
    stack.slack_world.switches.rate_limit = {"chat.postMessage": 1}
    await add_company(stack)
    async with stack.deps.store.session() as session:
        [held] = (await session.exec(select(SlackMessage).where(SlackMessage.last_error == "ratelimited"))).all()
    assert held.pending
    assert 0.9 <= (held.next_attempt_at - clock_now(stack)).total_seconds() <= 1.1
    clock_advance(stack, seconds=1.5)
    await asyncio.sleep(1.0)  # the channel's own hold is in real time
    await stack.settle()
    assert len(cards(stack)) == 1


def clock_now(stack: Any) -> Any:
    return stack.deps.clock()


def clock_advance(stack: Any, **delta: float) -> None:
    stack.deps.clock.advance(**delta)  # type: ignore[attr-defined]


async def test_a_message_that_cannot_be_drawn_does_not_hold_up_the_others(stack, clock):
    await add_company(stack)
    company = await company_row(stack)
    async with stack.deps.store.session() as session:
        session.add(
            SlackMessage(
                kind="note",
                company_id=company.id,
                facts={"note": "no such note"},
                next_attempt_at=clock(),
                created_at=clock(),
            )
        )
        await session.commit()
    await press(stack, CardAction.CANCEL)
    assert "Deactivated" in block_text(cards(stack)[-1])
    async with stack.deps.store.session() as session:
        broken = (await session.exec(select(SlackMessage).where(SlackMessage.kind == "note"))).one()
    assert broken.pending
    assert broken.last_error == "ValueError"


async def test_a_button_press_slack_sends_again_acts_once(stack):
    await add_company(stack)
    card = cards(stack)[-1]
    payload = {
        "type": "block_actions",
        "user": {"id": KARI},
        "trigger_id": "1.2.retried",
        "actions": [{"action_ts": "1764000000.000001", **button(card, CardAction.RESEND_LINK)}],
        "channel": {"id": ALERT_CHANNEL},
        "container": {"type": "message", "message_ts": card["ts"], "channel_id": ALERT_CHANNEL},
        "message": card,
        "response_url": f"{stack.simulators_url}/slack/_response/9",
    }
    body = urlencode({"payload": json.dumps(payload)})
    for retry in (0, 1, 2):  # a fresh timestamp (so a fresh signature) each time, as Slack's retries have
        sent = await stack.slack.post(body, retry_num=retry or None, timestamp=int(time.time()) - retry)
        assert sent.status_code == 200
    await stack.settle()
    async with stack.deps.store.session() as session:
        assert len((await session.exec(select(ApprovalRequest))).all()) == 2  # the first link and one new one


async def test_signed_payloads_of_shapes_slack_never_sends_get_a_4xx(stack):
    for payload in (
        {"type": "block_actions", "user": {"id": KARI}, "actions": []},
        {"type": "block_actions", "user": {"id": KARI}, "actions": "x"},
        {"type": "view_submission", "user": {"id": KARI}, "view": ["x"]},
    ):
        response = await stack.slack.interaction(payload)
        assert 400 <= response.status_code < 500, payload
    for event in ([], "x", None):
        body = {"type": "event_callback", "event": event, "event_id": "Ev1", "team_id": "T0FJORD"}
        response = await stack.slack.post(json.dumps(body), content_type="application/json")
        assert 400 <= response.status_code < 500, event
    view = await approver_step(stack)
    bad = {**view, "private_metadata": "{not json"}
    response = await stack.slack.submit_view(user=KARI, view=bad, values=STEP3)
    assert response.status_code == 200
    assert stack.slack_world.calls_to("conversations.open") == []


async def test_a_failure_after_the_acknowledgement_answers_at_once_and_says_sorry(stack):
    stack.slack_world.switches.fail = {"views.open": "internal_error"}
    started = time.monotonic()
    response = await stack.slack.slash(command="/addcompany", user=KARI, channel=ALERT_CHANNEL)
    await stack.settle()
    assert response.status_code == 200
    assert time.monotonic() - started < 2.5  # Bolt waits 3 s for an ack it lost, then says 404
    assert "something went wrong on our side" in str(stack.responses.posts[-1].get("text"))
