"""Approval links and the OAuth return: every way they can go wrong ends on a clear page (in Norwegian here: the
company is Norwegian and so is Ola's Slack)."""

from __future__ import annotations

from sqlmodel import select

from bot.store.models import Connection
from tests.scenario.flow import add_company, approval_link, approve, block_text, cards, thread


async def test_a_used_link_is_refused_with_a_clear_page(stack):
    await add_company(stack)
    link = approval_link(stack)
    await approve(stack, link)
    page = await stack.browser.get(link)
    assert page.status == 410
    assert "allerede brukt" in page.text
    assert "Traceback" not in page.html


async def test_an_expired_link_is_refused(stack, clock):
    await add_company(stack)
    clock.advance(days=stack.settings.approval_link_days, seconds=1)
    page = await stack.browser.get(approval_link(stack))
    assert page.status == 410
    assert "har utløpt" in page.text


async def test_a_tampered_link_is_refused(stack):
    await add_company(stack)
    link = approval_link(stack)
    page = await stack.browser.get(link[:-2] + ("AA" if not link.endswith("AA") else "BB"))
    assert page.status == 404
    assert "does not work" in page.text  # no company behind it: the browser's language, else English


async def test_a_wrong_or_replayed_oauth_state_is_refused(stack):
    await add_company(stack)
    callback = f"{stack.bot_url}/oauth/eaccounting/callback"
    forged = await stack.browser.get(f"{callback}?code=anything&state=not-a-state-we-issued")
    missing = await stack.browser.get(f"{callback}?code=anything")
    assert forged.status == missing.status == 400
    assert "could not match" in forged.text  # no page of ours was read before: the browser's language, else English

    page = await approve(stack, approval_link(stack))
    assert "er koblet til" in page.text
    replay = await stack.browser.get(page.url)  # the callback URL, code and state again
    assert replay.status == 400


async def test_the_page_says_who_asks_for_what(stack):
    await add_company(stack)
    page = await stack.browser.get(approval_link(stack))
    for words in (
        "Kari Nordmann",
        "Fjordbris Regnskap",
        "Nordlys Bakeri AS",
        "988 077 917",
        "full programtilgang",
        "regnskapsmodulen",
        "ingen endringer",
        "Fortsett til Visma",
    ):
        assert words in page.text
    assert page.headers.get("referrer-policy") == "no-referrer"
    assert page.headers.get("cache-control") == "no-store"


async def test_declining_stops_the_link_and_tells_the_team(stack):
    await add_company(stack)
    link = approval_link(stack)
    page = await stack.browser.get(link)
    confirm = await stack.browser.submit(page, form_index=1)
    assert "Avslå tilkobling av" in confirm.text
    assert (await stack.browser.get(link)).status == 200  # asking to confirm changed nothing
    declined = await stack.browser.submit(confirm)
    assert "Du avslo forespørselen" in declined.text
    await stack.settle()
    again = await stack.browser.get(link)
    assert again.status == 410
    assert any("declined" in block_text(message) for message in thread(stack))


async def test_the_default_company_pitfall_is_caught_and_can_be_fixed(stack):
    await add_company(stack)
    link = approval_link(stack)
    page = await approve(stack, link, company_org="923609016")  # Feil Firma AS: Ola's default company
    assert page.status == 200
    assert "Feil firma ble koblet til" in page.text
    assert "Feil Firma AS" in page.text
    assert "standardfirma" in page.text
    card = block_text(cards(stack)[-1])
    assert "Needs action" in card
    alert = block_text(thread(stack)[-1])
    assert "Who can fix it" in alert
    assert "Send new approval link" in alert
    retry = next(url for label, url in page.links if "Prøv igjen" in label)

    browser = stack.browser
    page = await browser.get(retry)
    page = await browser.submit(page, values={"email": "ola@nordlysbakeri.no", "password": "demo"})
    if any("company_id" in form.fields for form in page.forms):
        page = await browser.submit(page, values={"company_id": stack.eaccounting.company_id_by_org("988077917")})
    page = await browser.submit(page, button=("decision", "accept"))
    await stack.settle()
    assert "er koblet til" in page.text
    assert "vouchers" in block_text(cards(stack)[-1])


async def test_an_expired_link_is_said_on_the_card_in_the_thread_and_in_the_dm(stack, clock):
    from bot.scheduler import expire_links
    from commands.card.ids import CardAction
    from tests.scenario.flow import OLA, cards, press

    await add_company(stack)
    link = approval_link(stack)
    clock.advance(days=stack.settings.approval_link_days, seconds=1)
    assert await expire_links(stack.deps) == 1
    assert await expire_links(stack.deps) == 0  # said once
    await stack.settle()
    assert "expired" in block_text(cards(stack)[-1])
    assert "<@U0KARI>" in block_text(thread(stack)[-1])
    dm = stack.slack_world.current_messages(stack.slack_world.dm_channel_for(OLA))[-1]
    assert "utløp uten å bli brukt" in block_text(dm)
    assert not any(block.get("type") == "actions" for block in dm["blocks"])
    assert (await stack.browser.get(link)).status == 410
    await press(stack, CardAction.RESEND_LINK)
    assert approval_link(stack) != link
    assert "Awaiting approval" in block_text(cards(stack)[-1])


async def test_retry_on_a_wrong_company_card_says_what_would_help(stack):
    from commands.card.ids import CardAction
    from tests.scenario.flow import press

    await add_company(stack)
    await approve(stack, approval_link(stack), company_org="923609016")  # Ola's default company
    await stack.settle()
    await press(stack, CardAction.RETRY)
    said = str(stack.responses.posts[-1].get("text"))
    assert "no working connection" in said
    assert "Send new approval link" in said


async def test_an_approver_without_full_program_permission_is_told_why_on_the_page(stack):
    await add_company(stack)
    stack.eaccounting.switches.no_full_permission = True
    page = await approve(stack, approval_link(stack))
    assert page.status == 422
    assert "4007" in page.text
    async with stack.deps.store.session() as session:
        assert (await session.exec(select(Connection))).all() == []
    assert "4007" in block_text(thread(stack)[-1])
    stack.eaccounting.switches.no_full_permission = False
