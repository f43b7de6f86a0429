"""The App Home builders: filters, paging within Slack's 100 blocks, escaping, and the card's buttons by state."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.domain.types import AccountingSystem, CompanyState, Country
from bot.services.overview import OpenAlert, PendingApproval, StateGroup
from bot.services.status import Card
from commands.card.ids import ButtonRef, CardAction
from commands.firm.ids import FirmAction
from commands.home.handlers import permalink
from commands.home.ids import HomeAction
from commands.home.state import HomeState
from commands.home.views import MAX_SECTION, PAGE_SIZE, HomeRow, home_view, search_view

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
NASTY = "<!channel> *x*"


def card(company_id: int = 7, state: CompanyState = CompanyState.HEALTHY, name: str = "Nordlys Bakeri AS") -> Card:
    return Card(
        company_id=company_id,
        name=name,
        org_number="988077917",
        country=Country.NO,
        system=AccountingSystem.EACCOUNTING,
        state=state,
        state_since=NOW,
        state_reason=None,
        responsible_user_id="U0KARI",
        approver_user_id="U0OLA",
        approver_email=None,
        link_sent_at=NOW if state is CompanyState.AWAITING_APPROVAL else None,
        link_expires_at=NOW + timedelta(days=7) if state is CompanyState.AWAITING_APPROVAL else None,
        next_sync_at=NOW + timedelta(hours=12),
    )


def row(item: Card, link: str | None = "https://fjordbris.slack.test/archives/C0ALERTS/p1764000001000100") -> HomeRow:
    return HomeRow(item.name, item.state, link, item)


def as_dict(view: Any) -> dict[str, Any]:
    return view.to_dict()  # slack_sdk checks Slack's limits (text lengths, options) as it serialises


def elements(view: dict[str, Any]) -> list[dict[str, Any]]:
    return [element for block in view["blocks"] for element in block.get("elements", []) if "action_id" in element]


def action_ids(view: dict[str, Any]) -> list[str]:
    return [element["action_id"] for element in elements(view)]


def section_texts(view: dict[str, Any]) -> list[str]:
    return [block["text"]["text"] for block in view["blocks"] if block["type"] == "section"]


def mrkdwn(node: Any) -> list[str]:
    """Every mrkdwn text in a view (plain_text and private_metadata are not parsed by Slack)."""
    if isinstance(node, dict):
        if node.get("type") == "mrkdwn":
            return [node["text"]]
        return [text for value in node.values() for text in mrkdwn(value)]
    if isinstance(node, list):
        return [text for value in node for text in mrkdwn(value)]
    return []


def pending(count: int, name: str = "Nordlys Bakeri AS") -> list[PendingApproval]:
    return [
        PendingApproval(index, f"{name} {index}", None, f"ola{index}@nordlysbakeri.no", NOW, NOW + timedelta(days=7))
        for index in range(count)
    ]


def alerts(count: int, name: str = "Nordlys Bakeri AS") -> list[OpenAlert]:
    summary = "the user who approved does not have full program permission in the company " * 3
    return [OpenAlert(index, f"{name} {index}", summary, NOW, 3, None) for index in range(count)]


def test_the_filter_row_shows_the_chosen_state_group_and_system():
    state = HomeState(group=StateGroup.NEEDS_ACTION, system=AccountingSystem.VISMA_NET)
    counts = {CompanyState.PERMISSION_ERROR: 2, CompanyState.DISCONNECTED: 1, CompanyState.HEALTHY: 4}
    view = as_dict(home_view([], counts, state=state, total=0))
    by_id = {element["action_id"]: element for element in elements(view)}
    assert by_id[HomeAction.STATE]["initial_option"]["value"] == "needs_action"
    assert by_id[HomeAction.STATE]["initial_option"]["text"]["text"] == "🔴 Needs action (3)"
    assert [option["value"] for option in by_id[HomeAction.STATE]["options"]] == [
        "needs_action",
        "awaiting_approval",
        "healthy",
        "deactivated",
        "all",
    ]
    assert by_id[HomeAction.SYSTEM]["initial_option"]["value"] == "visma_net"
    assert {option["value"] for option in by_id[HomeAction.SYSTEM]["options"]} == {"all"} | {
        system.value for system in AccountingSystem
    }
    assert HomeAction.CLEAR_SEARCH not in by_id
    assert "🔴 3 needs action · 🟡 0 awaiting approval · 🟢 4 healthy · ⚪ 0 deactivated" in json.dumps(
        view, ensure_ascii=False
    )
    assert "Needs action in Visma.net Financials" in json.dumps(view, ensure_ascii=False)
    assert "No companies match this filter." in json.dumps(view)
    # The filter rides in the view, so the next press on the tab knows it.
    assert HomeState.load(view["private_metadata"]) == state


def test_a_search_shows_what_was_typed_and_a_way_to_clear_it():
    state = HomeState(query="bakeri")
    view = as_dict(home_view([row(card())], {CompanyState.HEALTHY: 1}, state=state, total=1))
    assert HomeAction.CLEAR_SEARCH in action_ids(view)
    assert "matching “bakeri”" in json.dumps(view, ensure_ascii=False)
    modal = as_dict(search_view(state))
    assert modal["blocks"][0]["element"]["initial_value"] == "bakeri"
    assert HomeState.load(modal["private_metadata"]) == state


def test_the_firm_settings_button_comes_first():
    view = as_dict(home_view([], {}))
    first = next(block for block in view["blocks"] if block["type"] == "actions")
    assert first["elements"][0]["action_id"] == FirmAction.OPEN
    assert "No companies yet." in json.dumps(view)


def test_state_that_we_did_not_write_is_the_default_filter():
    assert HomeState.load("") == HomeState()
    assert HomeState.load('{"group": "nonsense"}') == HomeState()
    assert HomeState.load("not json") == HomeState()
    assert HomeState.load(HomeState(group=StateGroup.DEACTIVATED, page=3).dump()).page == 3


def test_250_companies_page_within_slacks_limits():
    companies = [card(index, CompanyState.HEALTHY, f"Company {index:03d} AS") for index in range(250)]
    pages = -(-len(companies) // PAGE_SIZE)
    assert pages == 10
    seen: list[str] = []
    for number in range(pages):
        shown = companies[number * PAGE_SIZE : (number + 1) * PAGE_SIZE]
        view = as_dict(
            home_view(
                [row(item) for item in shown],
                {CompanyState.HEALTHY: 250},
                state=HomeState(page=number),
                total=250,
                pending=pending(40),
                pending_total=60,
                alerts=alerts(40),
                alerts_total=80,
            )
        )
        assert len(view["blocks"]) <= 100
        assert all(len(text) <= MAX_SECTION for text in section_texts(view))
        ids = action_ids(view)
        assert (HomeAction.PREVIOUS_PAGE in ids) == (number > 0)
        assert (HomeAction.NEXT_PAGE in ids) == (number < pages - 1)
        text = json.dumps(view, ensure_ascii=False)
        assert f"Page {number + 1} of 10" in text
        assert f"{number * PAGE_SIZE + 1}–{number * PAGE_SIZE + len(shown)} of 250" in text
        assert "more" in text  # the pending and alert lists say how many they leave out
        seen += [item.name for item in shown if item.name in text]
    assert len(seen) == len(set(seen)) == 250


def test_long_values_stay_within_a_sections_limit():
    long = card(1, CompanyState.PERMISSION_ERROR, "&<>" * 400)
    long = dataclasses.replace(long, state_reason="<!here> " * 600, approver_email="x" * 900 + "@example.no")
    view = as_dict(
        home_view(
            [row(long)],
            {CompanyState.PERMISSION_ERROR: 1},
            pending=pending(15, "&" * 300),
            alerts=alerts(15, "<" * 300),
            notice="n" * 5000,
        )
    )
    assert all(len(text) <= MAX_SECTION for text in section_texts(view))
    assert "<!here>" not in json.dumps(view)


def test_a_company_name_cannot_ping_or_format_the_tab():
    named = card(3, CompanyState.PERMISSION_ERROR, NASTY)
    view = home_view(
        [row(named), HomeRow(NASTY, CompanyState.DRAFT, None)],
        {CompanyState.PERMISSION_ERROR: 1, CompanyState.DRAFT: 1},
        state=HomeState(query=NASTY),
        pending=pending(1, NASTY),
        alerts=[OpenAlert(3, NASTY, f"Visma says {NASTY}", NOW, 1, NOW)],
        links={3: "https://fjordbris.slack.test/archives/C0ALERTS/p1"},
    )
    text = "\n".join(mrkdwn(as_dict(view)))
    assert "<!channel>" not in text
    assert text.count("&lt;!channel&gt; *x*") >= 6  # both rows, the search, the pending link, the alert twice
    assert "<https://fjordbris.slack.test/archives/C0ALERTS/p1|&lt;!channel&gt; *x*>" in text


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (CompanyState.AWAITING_APPROVAL, [CardAction.RESEND_LINK, CardAction.CHANGE_APPROVER, CardAction.CANCEL]),
        (
            CompanyState.PERMISSION_ERROR,
            [CardAction.RESEND_LINK, CardAction.CHANGE_APPROVER, CardAction.RETRY, CardAction.DEACTIVATE],
        ),
        (CompanyState.HEALTHY, [CardAction.SYNC_NOW, CardAction.FULL_RESYNC, CardAction.DEACTIVATE]),
        (CompanyState.DEACTIVATED, [CardAction.ACTIVATE]),
        (CompanyState.DRAFT, []),
    ],
)
def test_each_company_has_the_cards_buttons_for_its_state(state, expected):
    view = as_dict(home_view([row(card(42, state))], {state: 1}))
    buttons = [element for element in elements(view) if element["action_id"] in set(CardAction)]
    assert [button["action_id"] for button in buttons] == expected
    assert {button["value"] for button in buttons} <= {ButtonRef(42, state.value).encode()}
    for button in buttons:
        if button["action_id"] in (CardAction.DEACTIVATE, CardAction.CANCEL, CardAction.FULL_RESYNC):
            assert "confirm" in button  # the same confirmation as on the card


def test_a_company_being_synced_offers_no_sync_buttons():
    syncing = dataclasses.replace(card(5), syncing=True)
    view = as_dict(home_view([row(syncing)], {CompanyState.HEALTHY: 1}))
    assert not set(action_ids(view)) & set(CardAction)
    assert "a sync is running" in json.dumps(view)


def test_names_link_to_the_card():
    view = as_dict(home_view([row(card(), "https://fjordbris.slack.test/archives/C0ALERTS/p1764000001000100")], {}))
    assert "<https://fjordbris.slack.test/archives/C0ALERTS/p1764000001000100|Nordlys Bakeri AS>" in json.dumps(view)


def test_permalinks_have_slacks_documented_shape():
    assert (
        permalink("https://fjordbris.slack.com/", "C0ALERTS", "1764000001.000100")
        == "https://fjordbris.slack.com/archives/C0ALERTS/p1764000001000100"
    )
    assert permalink(None, "C0ALERTS", "1.2") is None
