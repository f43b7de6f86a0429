"""Visma ERP end to end: consent through Visma Connect (authorization code with PKCE and offline_access), the
granted scopes and tenant checked at the callback, then synced."""

from __future__ import annotations

from sqlmodel import select

from bot.domain.types import CompanyState
from bot.simulators.slack_requests import input_values, picked_user, selected, typed
from bot.simulators.visma_net import EIENDOM_TENANT, SJOMAT_TENANT
from bot.store.models import Company, Connection
from tests.scenario.flow import OLA, STEP2, approval_link, block_text, cards, open_modal, submit, thread

READ = "vismanet_erp_interactive_api:read"


async def add_erp_company(stack, *, tenant=""):
    view = await open_modal(stack)
    values = input_values(
        system=selected("visma_erp"),
        company_name=typed("Havbris Sjømat AS"),
        country=selected("NO"),
        org_number=typed("931184202"),
        tenant_id=typed(tenant),
        api_version=selected("v2"),
    )
    assert (await submit(stack, view, values))["response_action"] == "update"
    view = stack.slack_world.view(view["id"])
    assert (await submit(stack, view, STEP2))["response_action"] == "update"
    view = stack.slack_world.view(view["id"])
    assert await submit(stack, view, input_values(approver_user=picked_user(OLA))) == {}
    await stack.settle()


async def consent(stack, *, tenant=SJOMAT_TENANT, untick=()):
    browser = stack.browser
    page = await browser.get(approval_link(stack))
    assert "API User" in " ".join(page.text.split())
    page = await browser.submit(page)  # Continue to Visma
    page = await browser.submit(page, values={"email": "kari@havbris.no", "password": "demo"})
    page = await browser.submit(page, values={"tenant_id": tenant})
    page = await browser.submit(page, values={f"grant:{scope}": "" for scope in untick}, button=("decision", "accept"))
    await stack.settle()
    return page


async def company(stack):
    async with stack.deps.store.session() as session:
        return (await session.exec(select(Company))).one()


async def test_consent_connects_keeps_a_refresh_token_and_syncs(stack):
    await add_erp_company(stack)
    page = await consent(stack)
    assert "er koblet til" in page.text, page.text
    found = await company(stack)
    assert found.state == CompanyState.HEALTHY
    assert found.external_id == SJOMAT_TENANT  # the tenant the approver picked, kept for the hourly window
    async with stack.deps.store.session() as session:
        connection = (await session.exec(select(Connection))).one()
    assert connection.refresh_token_sealed is not None
    assert READ in connection.scopes
    assert "vouchers" in block_text(cards(stack)[-1])


async def test_an_unticked_scope_is_named_and_nothing_is_kept(stack):
    await add_erp_company(stack)
    page = await consent(stack, untick=(READ,))
    assert page.status == 422
    assert READ in page.text
    async with stack.deps.store.session() as session:
        assert (await session.exec(select(Connection))).all() == []
    assert READ in block_text(thread(stack)[-1])


async def test_another_tenant_than_the_one_staff_gave_is_refused(stack):
    await add_erp_company(stack, tenant=SJOMAT_TENANT)
    page = await consent(stack, tenant=EIENDOM_TENANT)
    assert page.status == 422
    async with stack.deps.store.session() as session:
        assert (await session.exec(select(Connection))).all() == []


async def test_another_company_picked_without_a_tenant_given_is_explained_without_the_default_company(stack):
    await add_erp_company(stack)  # staff gave no Tenant ID: the callback compares the company itself
    # Lars has access to Havbris Eiendom only: Havbris Sjømat is not in his list, so he picks the one there is.
    browser = stack.browser
    page = await browser.submit(await browser.get(approval_link(stack)))
    page = await browser.submit(page, values={"email": "lars@havbris.no", "password": "demo"})
    page = await browser.submit(page, values={"tenant_id": EIENDOM_TENANT})
    page = await browser.submit(page, button=("decision", "accept"))
    await stack.settle()
    assert page.status == 422
    text = " ".join(page.text.split())
    assert "Add access" in text
    assert "default" not in text.lower()
    async with stack.deps.store.session() as session:
        assert (await session.exec(select(Connection))).all() == []
    alert = block_text(thread(stack)[-1])
    assert "another company" in alert
    assert "Add access" in alert
    assert "default company" not in alert
