"""Business NXT end to end: the firm's customer IDs, a company picked from the live list and connected at once,
and one missing from the list activated by the client's system administrator after an approval link."""

from __future__ import annotations

from sqlmodel import select

from bot.domain.types import CompanyState
from bot.services import firm
from bot.simulators.slack_requests import input_values, picked_user, selected, typed
from bot.simulators.stack import VISMA_CLIENT_ID
from bot.store.models import Company
from tests.scenario.flow import KARI, OLA, STEP2, approval_link, block_text, cards, open_modal, submit


async def customer_ids(stack, ids):
    async with stack.deps.store.session() as session:
        await firm.set_customer_ids(session, ids=ids, actor=KARI, now=stack.deps.clock())
        await session.commit()


async def add_nxt_company(stack, *, name, org_number, picked=None):
    view = await open_modal(stack)
    values = {
        "system": selected("business_nxt"),
        "company_name": typed(name),
        "country": selected("NO"),
        "org_number": typed(org_number),
    }
    if picked:
        values["nxt_company"] = {"type": "external_select", "selected_option": {"value": picked}}
    assert (await submit(stack, view, input_values(**values)))["response_action"] == "update"
    view = stack.slack_world.view(view["id"])
    assert (await submit(stack, view, STEP2))["response_action"] == "update"
    view = stack.slack_world.view(view["id"])
    assert await submit(stack, view, input_values(approver_user=picked_user(OLA))) == {}
    await stack.settle()


async def company(stack, name):
    async with stack.deps.store.session() as session:
        return (await session.exec(select(Company).where(Company.name == name))).one()


async def test_the_modal_lists_the_companies_our_integration_can_read(stack):
    await customer_ids(stack, [1234567])
    payload = {
        "type": "block_suggestion",
        "user": {"id": KARI},
        "action_id": "nxt_company",
        "block_id": "nxt_company",
        "value": "havbris",
        "view": {"id": "V1", "type": "modal", "callback_id": "addcompany_company"},
    }
    response = await stack.slack.interaction(payload)
    assert response.status_code == 200
    texts = [option["text"]["text"] for option in response.json()["options"]]
    assert texts == ["Havbris Eiendom AS (5280012)", "Havbris Sjømat AS (5280011)"]  # Holding is not activated


async def test_a_listed_company_connects_without_waiting_and_syncs(stack):
    await customer_ids(stack, [1234567])
    await add_nxt_company(stack, name="Havbris Sjømat AS", org_number="988077917", picked="5280011")
    found = await company(stack, "Havbris Sjømat AS")
    assert found.state == CompanyState.HEALTHY
    assert found.external_id == "5280011"
    card = block_text(cards(stack)[-1])
    assert "Connected by" in card
    assert "vouchers" in card


async def test_a_company_missing_from_the_list_gets_the_activation_steps_and_check_again(stack):
    await customer_ids(stack, [1234567])
    await add_nxt_company(stack, name="Havbris Holding AS", org_number="914 778 271")
    assert (await company(stack, "Havbris Holding AS")).state == CompanyState.AWAITING_APPROVAL
    link = approval_link(stack)
    page = await stack.browser.get(link)
    assert "Connect Application Access" in page.text
    assert VISMA_CLIENT_ID in page.text
    again = await stack.browser.submit(page)
    assert again.status == 422
    assert "Ikke koblet til ennå" in again.text
    assert "ikke aktivert for Havbris Holding AS" in " ".join(again.text.split())
    stack.nxt.activate(VISMA_CLIENT_ID, 3)
    done = await stack.browser.submit(again)
    assert "er koblet til" in done.text
    await stack.settle()
    assert (await company(stack, "Havbris Holding AS")).state == CompanyState.HEALTHY
