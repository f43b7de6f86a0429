"""After the connection: permission errors become one alert in the card's thread, and a healthy sync resolves it."""

from __future__ import annotations

from commands.card.ids import CardAction
from tests.scenario.flow import KARI, add_company, approval_link, approve, block_text, cards, press, thread


async def connected(stack):
    await add_company(stack)
    await approve(stack, approval_link(stack))
    return cards(stack)[-1]


async def test_a_missing_permission_alerts_once_and_counts_repeats(stack):
    card = await connected(stack)
    before = len(thread(stack))
    stack.eaccounting.switches.no_full_permission = True
    await press(stack, CardAction.SYNC_NOW, card)
    card = cards(stack)[-1]
    assert "Needs action" in block_text(card)
    alerts = thread(stack)[before:]
    assert len(alerts) == 1
    alert = block_text(alerts[0])
    assert "eAccounting 4007" in alert
    assert "full program permission" in alert
    assert f"<@{KARI}>" in alert

    await press(stack, CardAction.RETRY, card)
    alerts = thread(stack)[before:]
    assert len(alerts) == 1  # the same cause again edits the alert instead of adding one
    assert "seen 2 times" in block_text(alerts[0])

    stack.eaccounting.switches.no_full_permission = False
    await press(stack, CardAction.RETRY, cards(stack)[-1])
    assert "vouchers" in block_text(cards(stack)[-1])
    alerts = thread(stack)[before:]
    assert len(alerts) == 1  # resolved in place, no new message
    assert "Resolved: the sync works again" in block_text(alerts[0])


async def test_revoked_consent_asks_for_a_new_link_which_works(stack, clock):
    card = await connected(stack)
    stack.eaccounting.switches.consent_revoked = True
    clock.advance(hours=2)  # the access token has expired, so the sync must refresh and is refused
    await press(stack, CardAction.SYNC_NOW, card)
    alert = block_text(thread(stack)[-1])
    assert "withdrawn" in alert
    stack.eaccounting.switches.consent_revoked = False

    await press(stack, CardAction.RESEND_LINK, cards(stack)[-1])
    assert "Awaiting approval" in block_text(cards(stack)[-1])
    page = await approve(stack, approval_link(stack))
    assert "er koblet til" in page.text  # Nordlys Bakeri is Norwegian: so is its approval page
    assert "vouchers" in block_text(cards(stack)[-1])


async def test_a_rate_limit_is_not_an_alert(stack):
    card = await connected(stack)
    before = len(thread(stack))
    stack.eaccounting.switches.force_rate_limit = True
    await press(stack, CardAction.SYNC_NOW, card)
    assert len(thread(stack)) == before
    assert "Needs action" not in block_text(cards(stack)[-1])


async def test_the_manifest_asks_for_exactly_the_scopes_the_bot_uses(stack):
    import yaml

    from tests.conftest import REPO

    await connected(stack)
    await stack.slack.event({"type": "app_home_opened", "user": KARI, "channel": "D0KARI", "tab": "home"})
    await stack.settle()
    scope_of = {
        "chat.postMessage": "chat:write",
        "chat.update": "chat:write",
        "chat.postEphemeral": "chat:write",
        "conversations.open": "im:write",
        "users.info": "users:read",
        "users.lookupByEmail": "users:read.email",
        "views.open": None,
        "views.update": None,
        "views.push": None,
        "views.publish": None,
        "auth.test": None,
        "chat.getPermalink": None,
        "conversations.info": "channels:read",
        "usergroups.users.list": "usergroups:read",
        "files.getUploadURLExternal": "files:write",
        "files.completeUploadExternal": "files:write",
    }
    used = {call.method for call in stack.slack_world.calls}
    assert used <= set(scope_of), f"add these methods' scopes to the map: {used - set(scope_of)}"
    # Used in set-ups this run does not have: a private ALERT_CHANNEL, a STAFF_USERGROUP, and the daily digest
    # (its chart; tests/scenario/test_digest.py checks those calls).
    other_setups = {"groups:read", "usergroups:read", "files:write"}
    needed = {scope_of[method] for method in used} - {None} | {"commands"} | other_setups
    declared = set(yaml.safe_load((REPO / "app.yaml").read_text())["oauth_config"]["scopes"]["bot"])
    assert declared == needed


async def test_an_alert_marked_resolved_keeps_its_story_and_says_who(stack):
    await connected(stack)
    stack.eaccounting.switches.no_full_permission = True
    await press(stack, CardAction.SYNC_NOW)
    alert = thread(stack)[-1]
    await press(stack, CardAction.MARK_RESOLVED, alert)
    marked = next(m for m in thread(stack) if m["ts"] == alert["ts"])
    assert f"marked resolved by <@{KARI}>" in block_text(marked)
    assert "full program permission" in block_text(marked)
    assert not any(block.get("type") == "actions" for block in marked["blocks"])
    await press(stack, CardAction.RETRY)  # still failing: a new alert, not the closed one reopened
    assert len([m for m in thread(stack) if "Who can fix it" in block_text(m)]) == 2


async def test_deactivate_stops_syncs_and_activate_brings_the_company_back(stack):
    from sqlmodel import select

    from bot.domain.types import CompanyState
    from bot.store.models import Company

    healthy = await connected(stack)
    await press(stack, CardAction.DEACTIVATE, healthy)
    card = cards(stack)[-1]
    assert "Deactivated" in block_text(card)
    async with stack.deps.store.session() as session:
        company = (await session.exec(select(Company))).one()
    assert company.state == CompanyState.DEACTIVATED
    assert company.next_sync_at is None
    await press(stack, CardAction.SYNC_NOW, healthy)  # the old card's button: answered, nothing runs
    assert "Deactivated" in block_text(cards(stack)[-1])
    await press(stack, CardAction.ACTIVATE, card)
    async with stack.deps.store.session() as session:
        company = (await session.exec(select(Company))).one()
    assert company.state == CompanyState.CONNECTED
    assert company.next_sync_at is not None
