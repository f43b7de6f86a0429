"""Every message builder escapes what comes from a person or from Visma: nothing can ping, link or break out."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from bot.domain import problems
from bot.domain.orgnumber import same_company
from bot.domain.types import AccountingSystem, CompanyState, Country
from bot.services.outbox import Note
from bot.services.status import Card, Failing, LastSync
from bot.slack_format import escape, fill, mention
from commands.approval.views import (
    ApprovalAsk,
    dm_approved_blocks,
    dm_blocks,
    dm_closed_blocks,
    dm_declined_blocks,
    dm_text,
    requester_blocks,
)
from commands.card.ids import ButtonRef
from commands.card.views import alert_blocks, alert_text, card_blocks, card_text, note_message
from commands.home.views import HomeRow, home_view

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
NASTY = [
    "<!channel>",
    "<!here>",
    "<!everyone>",
    "<@U0GHOST>",
    "<#C0SECRET>",
    "<https://evil.example/login|Click here to re-approve>",
    "AT&T <b>",
    "*bold* _it_ ~gone~ `code`",
]
RAW = ("<!channel", "<!here", "<!everyone", "<@U0GHOST", "<#C0SECRET", "<https://evil", "<b>", "&amp;lt;", "&amp;amp;")


def rendered(*parts: Any) -> str:
    out = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, list):
            out.append(json.dumps([block.to_dict() for block in part], ensure_ascii=False))
        else:
            out.append(json.dumps(part.to_dict(), ensure_ascii=False))
    return "\n".join(out)


def assert_clean(text: str, value: str) -> None:
    for marker in RAW:
        assert marker not in text, (marker, value)
    assert escape(value) in text.replace("\\\\", "\\") or value.isalnum()


def card(value: str, state: CompanyState) -> Card:
    return Card(
        company_id=7,
        name=value,
        org_number="988077917",
        country=Country.NO,
        system=AccountingSystem.EACCOUNTING,
        state=state,
        state_since=NOW,
        state_reason=value,
        responsible_user_id="U0KARI",
        approver_user_id=None,
        approver_email=value,
        link_sent_at=NOW,
        link_expires_at=NOW,
        connected_by=value,
        connected_at=NOW,
        last_sync=LastSync(NOW, 3, 2, 1, date(2026, 1, 1), date(2026, 10, 31)),
        next_sync_at=NOW,
        failing=Failing(NOW, value, NOW),
    )


@pytest.mark.parametrize("value", NASTY)
@pytest.mark.parametrize("state", list(CompanyState))
def test_the_card(value, state):
    drawn = card(value, state)
    assert_clean(rendered(card_blocks(drawn), card_text(drawn)), value)


@pytest.mark.parametrize("value", NASTY)
def test_alerts_open_and_resolved(value):
    wrong = problems.wrong_company(asked_for=value, got_name=value, got_number=value)
    revoked = problems.consent_revoked(company=value)
    for problem in (wrong, revoked):
        for resolved in (None, "approved_again", value):
            blocks = alert_blocks(
                company_name=value,
                responsible_user_id="U0KARI",
                problem=problem,
                ref=ButtonRef(7, "healthy", 9),
                count=2,
                resolved=resolved,
                facts={"approver": value, "summary": {"vouchers": 1, "accounts": 1}},
            )
            assert_clean(rendered(blocks, alert_text(value, problem, resolved)), value)


@pytest.mark.parametrize("value", NASTY)
@pytest.mark.parametrize("note", list(Note))
def test_thread_notes(value, note):
    blocks, text = note_message(
        note,
        {"approver": value, "requested_by": value, "reason": value, "since": NOW.isoformat()},
        company_name=value,
        system_label="Visma eAccounting",
    )
    assert_clean(rendered(blocks, text), value)


@pytest.mark.parametrize("value", NASTY)
def test_the_approvers_dm_and_the_requesters_confirmation(value):
    ask = ApprovalAsk(
        request_id=1,
        requester_name=value,
        firm_name=value,
        company_name=value,
        org_number="988077917",
        country=Country.NO,
        system=AccountingSystem.EACCOUNTING,
        link="https://bot.example/approve/abc",
        expires_at=NOW,
    )
    text = rendered(
        dm_blocks(ask),
        dm_text(ask),
        dm_approved_blocks(company_name=value, at=NOW),
        dm_declined_blocks(company_name=value, requester_name=value),
        dm_closed_blocks(company_name=value, why="replaced"),
        requester_blocks(
            company_name=value,
            approver=escape(value),
            card_link="https://x.slack.com/archives/C1/p1",
            forward_link="https://bot.example/approve/abc",
            expires_at=NOW,
        ),
    )
    assert_clean(text, value)


@pytest.mark.parametrize("value", NASTY)
def test_app_home(value):
    rows = [HomeRow(value, CompanyState.PERMISSION_ERROR, None), HomeRow(value, CompanyState.HEALTHY, None)]
    assert_clean(rendered(home_view(rows, {CompanyState.HEALTHY: 1})), value)


def test_an_approver_mention_is_not_escaped_twice():
    assert mention("U0GHOST") == "<@U0GHOST>"
    assert mention("<@U0GHOST>") == "&lt;@U0GHOST&gt;"
    shown = rendered(
        requester_blocks(company_name="A", approver=mention("U0OLA"), card_link=None, forward_link=None, expires_at=NOW)
    )
    assert "<@U0OLA>" in shown
    assert "&lt;@" not in shown


def test_fill_escapes_values_not_the_template():
    assert fill("*{name}* <!date^1^x|y>", {"name": "<!channel>"}) == "*&lt;!channel&gt;* <!date^1^x|y>"


def test_button_values_round_trip_and_refuse_strangers():
    for ref in (ButtonRef(7, "healthy"), ButtonRef(7, "permission_error", 12)):
        assert ButtonRef.decode(ref.encode()) == ref
    for value in ("7", "x:healthy", "7:healthy:x", "", "7::"):
        with pytest.raises(ValueError, match="card button"):
            ButtonRef.decode(value)


def test_a_danish_cvr_is_not_a_finnish_business_id():
    # 10000602 is a valid CVR and 1000060-2 a valid Y-tunnus: same digits, two companies.
    assert same_company(Country.DK, "10000602", got_country="DK", got_number="10000602")
    assert not same_company(Country.DK, "10000602", got_country="FI", got_number="1000060-2")
    assert not same_company(Country.FI, "10000602", got_country="DK", got_number="10000602")
    assert not same_company(Country.NO, "988077917", got_country="NO", got_number="923609016")
    assert same_company(Country.NO, "988077917", got_country=None, got_number="988 077 917")
