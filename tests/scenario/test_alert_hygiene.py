"""Alert hygiene: snooze, many companies with one cause rolled up into one message, and the approval follow-up
(a reminder before the link runs out, a DM to the requester when it is approved, declined, expired or failed)."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from bot import scheduler
from bot.services import outbox
from bot.store.models import Company
from bot.sync.engine import sync_company
from bot.sync.policy import VISIBLE_AFTER_RUNS
from commands.card.ids import CardAction
from tests.scenario.flow import (
    ALERT_CHANNEL,
    KARI,
    OLA,
    add_company,
    approval_link,
    approve,
    block_text,
    button,
    cards,
    press,
    thread,
)

MANY = 6


def top_level(stack) -> list[dict]:
    return [m for m in stack.slack_world.current_messages(ALERT_CHANNEL) if not m.get("thread_ts")]


def replies(stack) -> list[dict]:
    return [m for m in stack.slack_world.current_messages(ALERT_CHANNEL) if m.get("thread_ts")]


def rollups(stack) -> list[dict]:
    return [m for m in top_level(stack) if "companies" in block_text(m) and "Klient" in block_text(m)]


async def sync_all(stack, ids: list[int]) -> None:
    for company_id in ids:
        await sync_company(stack.deps, company_id=company_id, actor="test")
    await stack.settle()


async def test_an_outage_of_many_companies_is_one_message_edited_as_they_recover(stack, clock):
    ids = await stack.connect_many(MANY, name="Klient", number=900_000_000)
    posts_before = len(stack.slack_world.calls_to("chat.postMessage"))
    stack.eaccounting.switches.outage = True
    for _ in range(VISIBLE_AFTER_RUNS):
        await sync_all(stack, ids)
        clock.advance(minutes=1)
    [rollup] = rollups(stack)
    text = block_text(rollup)
    assert f"{MANY} of {MANY} companies" in text
    assert "Klient 000" in text
    assert f"Klient {MANY - 1:03d}" in text
    assert "Nothing to do at the clients" in text
    posts = len(stack.slack_world.calls_to("chat.postMessage")) - posts_before
    assert posts <= outbox.ROLLUP_AT, f"{posts} messages posted for one outage"
    # Notes posted before the roll-up began now point at it.
    for reply in replies(stack):
        assert "one of several companies" in block_text(reply)

    stack.eaccounting.switches.outage = False
    await sync_all(stack, ids[:2])
    [rollup] = rollups(stack)
    assert f"{MANY - 2} of {MANY} companies" in block_text(rollup)
    assert "Working again (2)" in block_text(rollup)
    await sync_all(stack, ids[2:])
    [rollup] = rollups(stack)
    assert "over" in block_text(rollup)
    assert f"all {MANY} companies" in block_text(rollup)
    assert not any(b.get("type") == "actions" for b in rollup["blocks"])
    assert not any("Visma answers again" in block_text(m) for m in replies(stack)), "recoveries are in the roll-up"
    assert len(stack.slack_world.calls_to("chat.postMessage")) - posts_before == posts


async def test_the_same_permission_problem_at_many_companies_rolls_up_and_retry_all_works(stack):
    ids = await stack.connect_many(MANY, name="Klient", number=900_000_000)
    stack.eaccounting.switches.no_full_permission = True
    await sync_all(stack, ids)
    [rollup] = rollups(stack)
    text = block_text(rollup)
    assert "eAccounting 4007" in text
    assert "full program permission" in text
    assert "Who can fix it" in text
    alerts = [m for m in replies(stack) if "Who can fix it" in block_text(m)]
    assert len(alerts) < outbox.ROLLUP_AT, "alerts of a roll-up are not posted one by one"
    for card in top_level(stack):
        if "Klient" in block_text(card) and card["ts"] != rollup["ts"]:
            assert "Needs action" in block_text(card)
            assert "see the roll-up in the channel" in block_text(card)
            button(card, CardAction.RESEND_LINK)  # each card keeps its own fix

    stack.eaccounting.switches.no_full_permission = False
    async with stack.deps.store.session() as session:
        for company in (await session.exec(select(Company).where(Company.id.in_(ids)))).all():  # type: ignore[union-attr]
            company.next_sync_at = stack.deps.clock() + timedelta(days=1)
            session.add(company)
        await session.commit()
    await press(stack, CardAction.RETRY_ALL, rollup)
    async with stack.deps.store.session() as session:
        due = (await session.exec(select(Company).where(Company.next_sync_at <= stack.deps.clock()))).all()
    assert {company.id for company in due} >= set(ids)


async def test_a_snoozed_alert_counts_quietly_and_the_thread_hears_when_the_snooze_is_over(stack, clock):
    await add_company(stack)
    await approve(stack, approval_link(stack))
    stack.eaccounting.switches.no_full_permission = True
    await press(stack, CardAction.SYNC_NOW)
    alert = thread(stack)[-1]
    await press(stack, CardAction.SNOOZE_DAY, alert)
    alert = next(m for m in thread(stack) if m["ts"] == alert["ts"])
    assert f"Snoozed by <@{KARI}>" in block_text(alert)
    assert "snoozed until" in block_text(cards(stack)[-1])
    button(alert, CardAction.UNSNOOZE)
    before = len(thread(stack))
    await press(stack, CardAction.RETRY)
    assert len(thread(stack)) == before  # counted on the alert, nothing new said
    assert "seen 2 times" in block_text(next(m for m in thread(stack) if m["ts"] == alert["ts"]))

    clock.advance(hours=23)
    assert await scheduler.wake_snoozed(stack.deps) == 0
    clock.advance(hours=2)
    assert await scheduler.wake_snoozed(stack.deps) == 1
    await stack.settle()
    assert "snooze" in block_text(thread(stack)[-1])
    assert "still open" in block_text(thread(stack)[-1])
    alert = next(m for m in thread(stack) if m["ts"] == alert["ts"])
    assert "Snoozed" not in block_text(alert)
    button(alert, CardAction.SNOOZE_WEEK)
    assert await scheduler.wake_snoozed(stack.deps) == 0  # said once


def dms_to(stack, user: str) -> list[str]:
    return [block_text(m) for m in stack.slack_world.current_messages(stack.slack_world.dm_channel_for(user))]


async def test_the_approver_is_reminded_once_before_the_link_runs_out(stack, clock):
    await add_company(stack)
    days = stack.deps.settings.approval_link_days
    clock.advance(days=days - 2)
    assert await scheduler.remind_approvers(stack.deps) == 0
    clock.advance(hours=25)
    assert await scheduler.remind_approvers(stack.deps) == 1
    assert await scheduler.remind_approvers(stack.deps) == 0
    await stack.settle()
    last = dms_to(stack, OLA)[-1]  # Ola's Slack speaks Norwegian, as his approval DM did
    assert "Påminnelse" in last
    assert "Nordlys Bakeri AS" in last
    assert "går ut" in last


async def test_the_requester_hears_when_the_link_is_approved(stack):
    await add_company(stack)
    await approve(stack, approval_link(stack))
    assert any("was approved in Visma by" in text for text in dms_to(stack, KARI))


async def test_the_requester_hears_when_the_link_expires(stack, clock):
    await add_company(stack)
    clock.advance(days=stack.deps.settings.approval_link_days, minutes=1)
    assert await scheduler.expire_links(stack.deps) == 1
    await stack.settle()
    assert any("expired unused" in text for text in dms_to(stack, KARI))


async def test_the_requester_hears_when_the_approval_fails(stack):
    await add_company(stack)
    await approve(stack, approval_link(stack), company_org="923609016")  # Ola's default company came back
    await approve(stack, approval_link(stack), company_org="923609016")  # and again: said once
    assert any("did not complete" in text for text in dms_to(stack, KARI))
    assert sum("did not complete" in text for text in dms_to(stack, KARI)) == 1


async def test_an_alert_speaks_the_responsible_persons_language(stack):
    stack.slack_world.users[KARI].locale = "sv-SE"
    await add_company(stack)
    await approve(stack, approval_link(stack))
    stack.eaccounting.switches.no_full_permission = True
    await press(stack, CardAction.SYNC_NOW)
    alert = thread(stack)[-1]
    text = block_text(alert)
    assert "Visma säger:" in text
    assert "Vem kan åtgärda det:" in text or "Vem" in text
    assert f"<@{KARI}>" in text
    labels = [element["text"]["text"] for block in alert["blocks"] for element in block.get("elements", [])]
    assert "Pausa en dag" in labels
    await press(stack, CardAction.SNOOZE_DAY, alert)
    assert "Pausat av" in block_text(next(m for m in thread(stack) if m["ts"] == alert["ts"]))
    stack.eaccounting.switches.no_full_permission = False
    await press(stack, CardAction.RETRY)
    resolved = block_text(next(m for m in thread(stack) if m["ts"] == alert["ts"]))
    assert "Löst: synkroniseringen fungerar igen" in resolved
    assert any("Godkänt i Visma av" in block_text(m) for m in thread(stack))  # the thread's notes too
