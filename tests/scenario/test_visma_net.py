"""Visma.net Financials end to end: the Tenant ID from staff or from the approver's page, checked at once with a
client-credentials token, each pitfall explained on the page in Visma's terms, then synced."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from bot.domain.types import CompanyState
from bot.simulators.slack_requests import input_values, picked_user, selected, typed
from bot.simulators.stack import VISMA_CLIENT_ID
from bot.simulators.visma_net import EIENDOM_TENANT, SERVICE_READ, SJOMAT_TENANT
from bot.store.models import Company, Connection
from tests.scenario.flow import OLA, STEP2, approval_link, block_text, cards, open_modal, submit


async def add_visma_net_company(stack, *, name, org_number, tenant=""):
    view = await open_modal(stack)
    values = {
        "system": selected("visma_net"),
        "company_name": typed(name),
        "country": selected("NO"),
        "org_number": typed(org_number),
        "tenant_id": typed(tenant),
    }
    answer = await submit(stack, view, input_values(**values))
    if answer.get("response_action") == "errors":
        return answer
    view = stack.slack_world.view(view["id"])
    assert (await submit(stack, view, STEP2))["response_action"] == "update"
    view = stack.slack_world.view(view["id"])
    assert await submit(stack, view, input_values(approver_user=picked_user(OLA))) == {}
    await stack.settle()
    return {}


async def company(stack, name):
    async with stack.deps.store.session() as session:
        return (await session.exec(select(Company).where(Company.name == name))).one()


async def test_a_tenant_id_that_is_not_a_uuid_is_refused_inline(stack):
    answer = await add_visma_net_company(stack, name="Havbris Sjømat AS", org_number="931184202", tenant="8bdf18fd")
    assert "Tenant ID looks like" in answer["errors"]["tenant_id"]


async def test_the_approver_gives_the_tenant_id_and_the_company_is_checked_and_synced(stack):
    await add_visma_net_company(stack, name="Havbris Sjømat AS", org_number="931 184 202")
    page = await stack.browser.get(approval_link(stack))
    words = " ".join(page.text.split())
    assert "Integration Administrator" in words
    assert "API User" in words
    assert "Tenant ID" in words
    done = await stack.browser.submit(page, values={"tenant_id": SJOMAT_TENANT})
    assert "er koblet til" in done.text, done.text
    await stack.settle()
    found = await company(stack, "Havbris Sjømat AS")
    assert found.state == CompanyState.HEALTHY
    assert found.external_id == SJOMAT_TENANT
    async with stack.deps.store.session() as session:
        connection = (await session.exec(select(Connection))).one()
    assert connection.refresh_token_sealed is None  # client credentials: a new token each hour, nothing to keep
    assert "vouchers" in block_text(cards(stack)[-1])


async def test_a_tenant_not_yet_integrated_is_explained_and_checked_again(stack):
    await add_visma_net_company(stack, name="Havbris Eiendom AS", org_number="998765439")
    page = await stack.browser.get(approval_link(stack))
    first = await stack.browser.submit(page, values={"tenant_id": EIENDOM_TENANT})
    assert first.status == 422
    assert "Ikke koblet til ennå" in first.text
    assert "Integration Administrator" in " ".join(first.text.split())
    assert (await company(stack, "Havbris Eiendom AS")).state == CompanyState.AWAITING_APPROVAL
    stack.visma_net.approve(VISMA_CLIENT_ID, EIENDOM_TENANT, [SERVICE_READ])
    done = await stack.browser.submit(first, values={"tenant_id": EIENDOM_TENANT})
    assert "er koblet til" in done.text


async def test_the_tenant_of_another_company_is_not_kept(stack):
    await add_visma_net_company(stack, name="Havbris Eiendom AS", org_number="998765439")
    page = await stack.browser.get(approval_link(stack))
    wrong = await stack.browser.submit(page, values={"tenant_id": SJOMAT_TENANT})
    assert wrong.status == 422
    assert "hører til et annet firma" in wrong.text
    assert "Havbris Sjømat AS" in wrong.text
    async with stack.deps.store.session() as session:
        assert (await session.exec(select(Connection))).all() == []


async def test_the_customer_tenant_instead_of_the_company_is_explained(stack):
    await add_visma_net_company(stack, name="Havbris Sjømat AS", org_number="931184202")
    stack.visma_net.switch(customer_tenant=True)
    page = await stack.browser.get(approval_link(stack))
    answer = await stack.browser.submit(page, values={"tenant_id": SJOMAT_TENANT})
    assert answer.status == 422
    assert "Visma-kundens, ikke firmaets" in answer.text


async def test_the_team_is_warned_two_weeks_before_the_client_secret_expires(database_url, clock):
    from bot.scheduler import warn_secret_expiry
    from bot.simulators.stack import ALERT_CHANNEL, running_stack
    from tests.scenario.conftest import QUICK

    expires = (clock.now + timedelta(days=20)).date()
    async with running_stack(
        database_url=database_url, clock=clock, visma_client_secret_expires=expires, **QUICK
    ) as stack:
        assert not await warn_secret_expiry(stack.deps)  # three weeks ahead: quiet
        clock.advance(days=7)
        assert await warn_secret_expiry(stack.deps)
        assert not await warn_secret_expiry(stack.deps)  # once, not every tick
        await stack.settle()
        [warning] = stack.slack_world.current_messages(ALERT_CHANNEL)
        assert "expires on" in block_text(warning)
        assert "VISMA_CLIENT_SECRET" in block_text(warning)
        clock.advance(days=14)
        assert await warn_secret_expiry(stack.deps)
        await stack.settle()
        assert "expired on" in block_text(stack.slack_world.current_messages(ALERT_CHANNEL)[-1])
