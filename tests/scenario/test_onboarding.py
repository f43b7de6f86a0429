"""The slice end to end: signed Slack requests into the real app, the simulators behind it."""

from __future__ import annotations

import io
import logging
import re

from sqlmodel import select

from bot import logs
from bot.simulators.slack_requests import input_values, typed
from bot.simulators.stack import ALERT_CHANNEL, BOT_TOKEN
from bot.store.models import AccountBalance, Company, Connection, Voucher
from tests.scenario.flow import (
    KARI,
    OLA,
    STEP1,
    STEP3,
    add_company,
    approval_link,
    approve,
    approver_step,
    block_text,
    cards,
    open_modal,
    submit,
    thread,
)


async def test_from_addcompany_to_the_first_sync(stack):
    await add_company(stack)
    [card] = cards(stack)
    assert "Nordlys Bakeri AS" in block_text(card)
    assert "988 077 917" in block_text(card)
    assert "Awaiting approval" in block_text(card)

    # Ola uses Slack in Norwegian, and Nordlys Bakeri is Norwegian: his DM and the pages are in Norwegian.
    dm = stack.slack_world.current_messages(stack.slack_world.dm_channel_for(OLA))[-1]
    assert "Kari Nordmann i Fjordbris Regnskap ber deg koble til" in block_text(dm)
    assert "full programtilgang" in block_text(dm)

    page = await approve(stack, approval_link(stack))
    assert page.status == 200
    assert "Nordlys Bakeri AS er koblet til" in page.text

    [card] = cards(stack)  # still one card: edited in place, never reposted
    shown = block_text(card)
    assert "Connected by Ola Nordmann" in shown
    assert "vouchers" in shown
    assert "Jan–" in shown
    assert "ble godkjent" in block_text(stack.slack_world.current_messages(stack.slack_world.dm_channel_for(OLA))[-1])
    notes = [block_text(message) for message in thread(stack)]
    assert any("First sync done" in note for note in notes)

    async with stack.deps.store.session() as session:
        company = (await session.exec(select(Company))).one()
        vouchers = (await session.exec(select(Voucher))).all()
        balances = (await session.exec(select(AccountBalance))).all()
        connection = (await session.exec(select(Connection))).one()
    assert company.state == "healthy"
    assert len(vouchers) > 100
    assert all(voucher.voucher_date.year == 2026 for voucher in vouchers)
    assert balances
    assert f"{len(vouchers)} vouchers" in shown
    assert stack.deps.vault.open(connection.access_token_sealed) not in connection.access_token_sealed


async def test_bad_fields_come_back_inline_and_nothing_is_saved(stack):
    view = await open_modal(stack)
    body = await submit(
        stack,
        view,
        input_values(system={"type": "static_select"}, company_name=typed("N"), org_number=typed("988077918")),
    )
    assert body["response_action"] == "errors"
    assert set(body["errors"]) == {"system", "company_name", "org_number"}
    async with stack.deps.store.session() as session:
        assert (await session.exec(select(Company))).all() == []
    assert cards(stack) == []


async def test_a_company_cannot_be_onboarded_twice(stack):
    await add_company(stack)
    view = await open_modal(stack)
    body = await submit(stack, view, STEP1)
    assert body["response_action"] == "update"
    shown = block_text(body["view"])
    assert "already registered (awaiting approval)" in shown
    async with stack.deps.store.session() as session:
        assert len((await session.exec(select(Company))).all()) == 1


async def test_a_double_submit_or_a_slack_retry_creates_one_company(stack):
    view = await approver_step(stack)
    first = await submit(stack, view, STEP3)
    retried = await submit(stack, view, STEP3, retry_num=1)
    again = await submit(stack, view, STEP3)
    await stack.settle()
    assert first == retried == again == {}
    async with stack.deps.store.session() as session:
        assert len((await session.exec(select(Company))).all()) == 1
    assert len(cards(stack)) == 1
    assert len(stack.slack_world.calls_to("conversations.open")) == 1


async def test_forged_and_stale_signatures_are_refused(stack):
    body = stack.slack.slash_body(command="/addcompany", user=KARI, channel=ALERT_CHANNEL)
    forged = await stack.http.post(
        f"{stack.bot_url}/slack/events",
        content=body,
        headers={
            "X-Slack-Request-Timestamp": "1764000000",
            "X-Slack-Signature": "v0=" + "0" * 64,
            "Content-Type": "application/x-www-form-urlencoded",
        },
    )
    import time

    stale = await stack.slack.post(body, timestamp=int(time.time()) - 6 * 60)
    fresh = await stack.slack.post(body)
    assert forged.status_code == 401
    assert stale.status_code == 401
    assert fresh.status_code == 200
    await stack.settle()
    assert len(stack.slack_world.calls_to("views.open")) == 1


async def test_no_secret_reaches_the_logs(stack):
    # The handler production uses, at DEBUG so that every library's chatter is included.
    buffer = io.StringIO()
    handler = logs.redacting_handler(buffer)
    root = logging.getLogger()
    root.addHandler(handler)
    level = root.level
    root.setLevel(logging.DEBUG)
    try:
        await add_company(stack)
        link = approval_link(stack)
        await approve(stack, link)
    finally:
        root.removeHandler(handler)
        root.setLevel(level)
    written = buffer.getvalue()
    assert "slack" in written.lower()  # the libraries did log at DEBUG
    secrets = {BOT_TOKEN, link.rsplit("/", 1)[-1], stack.settings.eaccounting_client_secret.get_secret_value()}
    secrets |= stack.eaccounting.issued_secrets()
    assert len(secrets) > 4
    for secret in secrets:
        assert secret not in written, f"a secret leaked into the log: {secret[:6]}…"


async def test_home_tab_counts_companies(stack):
    await add_company(stack)
    response = await stack.slack.event({"type": "app_home_opened", "user": KARI, "channel": "D0KARI", "tab": "home"})
    assert response.status_code == 200
    await stack.settle()
    [call] = stack.slack_world.calls_to("views.publish")
    assert call.args["user_id"] == KARI
    assert "1 awaiting approval" in str(call.args["view"])


async def test_an_approver_who_cannot_get_a_dm_gets_the_link_through_the_requester(stack):
    stack.slack_world.switches.fail = {"conversations.open": "user_disabled"}
    await add_company(stack)
    [confirmation] = stack.slack_world.calls_to("chat.postEphemeral")
    text = block_text(confirmation.args)
    assert "forward them this link" in text
    link = re.search(r"<(http[^>|]+)>", text)[1]
    assert "Awaiting approval" in block_text(cards(stack)[-1])
    stack.slack_world.switches.fail = {}
    page = await approve(stack, link)
    assert "er koblet til" in page.text


async def test_a_company_approved_by_email_sends_the_link_to_the_requester(stack):
    view = await approver_step(stack)
    assert await submit(stack, view, input_values(approver_email=typed("ola@nordlysbakeri.no"))) == {}
    await stack.settle()
    [confirmation] = stack.slack_world.calls_to("chat.postEphemeral")
    assert "is not in Slack" in block_text(confirmation.args)
    assert stack.slack_world.calls_to("conversations.open") == []
