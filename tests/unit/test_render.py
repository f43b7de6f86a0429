from bot.simulators.render import mrkdwn, render_message, render_view
from commands.addcompany.state import AddCompanyState
from commands.addcompany.views import company_view


def test_mrkdwn_links_mentions_and_dates():
    text = "<@U0KARI> see <https://x.test/c|the card> at <!date^1795579898^{date_short}|25 Nov 04:11 UTC>"
    assert (
        mrkdwn(text, {"U0KARI": "Kari Nordmann"})
        == "@Kari Nordmann see the card <https://x.test/c> at 25 Nov 04:11 UTC"
    )


def test_a_modal_shows_labels_hints_errors_and_buttons():
    view = company_view(AddCompanyState())
    shown = render_view(view, errors={"org_number": "check digit does not match"})
    assert "Add a company" in shown
    assert "Organisation number" in shown
    assert "9 digits in Norway" in shown
    assert "⚠ check digit does not match" in shown
    assert "[Cancel] [Next]" in shown


def test_a_message_with_actions_and_unknown_blocks():
    message = {
        "blocks": [
            {"type": "section", "text": {"type": "mrkdwn", "text": "*Card*"}},
            {
                "type": "actions",
                "elements": [
                    {"type": "button", "text": {"type": "plain_text", "text": "Sync now"}, "style": "primary"},
                    {"type": "button", "text": {"type": "plain_text", "text": "Retry"}},
                ],
            },
            {"type": "rich_text"},
        ]
    }
    assert render_message(message).splitlines() == ["*Card*", "[*Sync now*] [Retry]", "[unsupported block: rich_text]"]
