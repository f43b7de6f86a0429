"""The approver's languages end to end: pages by the company's country with a switch, DMs by the Slack locale."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from bot.simulators.slack import SlackUser
from bot.simulators.slack_requests import input_values, picked_user, selected, typed
from tests.scenario.flow import (
    OLA,
    STEP2,
    STEP3,
    add_company,
    approval_link,
    approver_step,
    block_text,
    open_modal,
    submit,
)

SVEN = "U0SVEN"


def html_lang(page) -> str:
    return re.search(r'<html lang="([^"]+)"', page.html)[1]


def switch(page) -> dict[str, str]:
    """The language switch's links: the language's name to where it goes."""
    return {text: href for text, href in page.links if text in {"Norsk", "Svenska", "English"}}


def dm_of(stack, user: str) -> dict:
    return stack.slack_world.current_messages(stack.slack_world.dm_channel_for(user))[-1]


async def sign_in_and_accept(stack, page):
    """From "Continue to Visma" through Visma's login, picker and consent, back to our result page."""
    browser = stack.browser
    page = await browser.submit(page)
    page = await browser.submit(page, values={"email": "ola@nordlysbakeri.no", "password": "demo"})
    if any("company_id" in form.fields for form in page.forms):
        page = await browser.submit(page, values={"company_id": stack.eaccounting.company_id_by_org("988077917")})
    page = await browser.submit(page, button=("decision", "accept"))
    await stack.settle()
    return page


async def test_a_norwegian_companys_page_is_in_norwegian_with_a_switch_that_keeps_the_token(stack):
    await add_company(stack)
    link = approval_link(stack)
    token = urlsplit(link).path.rsplit("/", 1)[-1]
    page = await stack.browser.get(link)
    assert page.status == 200
    assert html_lang(page) == "nb"
    for words in (
        "Koble Nordlys Bakeri AS til Fjordbris Regnskap",
        "Kari Nordmann i Fjordbris Regnskap ber deg koble til Nordlys Bakeri AS i Visma eAccounting",
        "Organisasjonsnummer",
        "988 077 917",
        "full programtilgang",
        "ingen endringer",
        "Hvem kan godkjenne",
        "Fortsett til Visma",
        "Ikke meg / avslå",
    ):
        assert words in page.text, words
    assert re.search(
        r"Lenken gjelder til\n\d{1,2}\. (januar|februar|mars|april|mai|juni|juli|august|september|oktober|"
        r"november|desember) \d{4}",
        page.text,
    ), page.text
    assert "Continue to Visma" not in page.text

    links = switch(page)
    assert set(links) == {"Svenska", "English"}  # Norsk is the page itself, not a link
    assert links == {"Svenska": f"/approve/{token}?lang=sv", "English": f"/approve/{token}?lang=en"}
    assert all(form.action.endswith("?lang=nb") for form in page.forms)  # Continue and Decline keep it

    english = await stack.browser.follow_link(page, text_contains="English")
    assert english.status == 200
    assert html_lang(english) == "en"
    assert "Kari Nordmann at Fjordbris Regnskap asks you to connect Nordlys Bakeri AS" in english.text
    assert "Continue to Visma" in english.text
    assert all(form.action.endswith("?lang=en") for form in english.forms)
    assert set(switch(english)) == {"Norsk", "Svenska"}

    swedish = await stack.browser.follow_link(english, text_contains="Svenska")
    assert html_lang(swedish) == "sv"
    assert "Fortsätt till Visma" in swedish.text
    assert "Vem kan godkänna" in swedish.text
    assert "Visma eEkonomi" in swedish.text  # eAccounting by its Swedish name
    assert "fullständig programbehörighet" in swedish.text


async def test_swedish_chosen_on_the_page_carries_through_continue_and_back_from_visma(stack):
    await add_company(stack)
    page = await stack.browser.get(approval_link(stack) + "?lang=sv")
    assert html_lang(page) == "sv"
    done = await sign_in_and_accept(stack, page)
    assert done.status == 200, done.text
    assert html_lang(done) == "sv"
    assert "Nordlys Bakeri AS är kopplat – tack" in done.text
    assert "Kari Nordmann har fått besked" in done.text


async def test_the_wrong_company_page_and_its_retry_stay_in_the_language_chosen(stack):
    await add_company(stack)
    page = await stack.browser.get(approval_link(stack) + "?lang=en")
    stack.eaccounting.switches.default_company = True
    browser = stack.browser
    page = await browser.submit(page)
    page = await browser.submit(page, values={"email": "ola@nordlysbakeri.no", "password": "demo"})
    if any("company_id" in form.fields for form in page.forms):
        page = await browser.submit(page)
    wrong = await browser.submit(page, button=("decision", "accept"))
    assert html_lang(wrong) == "en"
    assert "The wrong company was connected" in wrong.text
    assert any("Try again" in text for text, _ in wrong.links)


async def test_declining_in_swedish_asks_and_answers_in_swedish(stack):
    await add_company(stack)
    link = approval_link(stack)
    page = await stack.browser.get(link + "?lang=sv")
    confirm = await stack.browser.submit(page, form_index=1)
    assert html_lang(confirm) == "sv"
    assert "Avböja koppling av Nordlys Bakeri AS?" in confirm.text
    token = urlsplit(link).path.rsplit("/", 1)[-1]
    assert switch(confirm)["English"] == f"/approve/{token}/decline?lang=en"  # the question again, in English
    again = await stack.browser.follow_link(confirm, text_contains="English")
    assert "Decline connecting Nordlys Bakeri AS?" in again.text
    assert (await stack.browser.get(link)).status == 200  # asking changed nothing
    declined = await stack.browser.submit(confirm)
    assert html_lang(declined) == "sv"
    assert "Du avböjde förfrågan" in declined.text
    gone = await stack.browser.get(link + "?lang=sv")
    assert gone.status == 410
    assert "Den här förfrågan har avböjts" in gone.text


async def test_an_unknown_language_falls_back_cleanly(stack):
    await add_company(stack)
    link = approval_link(stack)
    for asked in ("xx", "de", "", "<script>", "nb-NO"):
        page = await stack.browser.get(f"{link}?lang={asked}")
        assert page.status == 200, asked
        assert html_lang(page) == "nb", asked  # the company's country's language
        assert "Fortsett til Visma" in page.text
        assert "<script>" not in page.html


async def test_the_browser_language_counts_only_when_it_does_not_list_the_countrys(stack):
    await add_company(stack)
    link = approval_link(stack)

    async def lang_of(accept: str) -> str:
        answer = await stack.http.get(link, headers={"Accept-Language": accept})
        assert answer.status_code == 200
        return re.search(r'<html lang="([^"]+)"', answer.text)[1]

    assert await lang_of("en-US,en;q=0.9") == "en"  # asks for English and not Norwegian
    assert await lang_of("en-US,en;q=0.9,nb;q=0.8") == "nb"  # reads Norwegian too: the company's language
    assert await lang_of("sv-SE,sv;q=0.9") == "sv"
    assert await lang_of("de-DE,de;q=0.9") == "nb"  # none of ours: the company's language
    answer = await stack.http.get(link + "?lang=sv", headers={"Accept-Language": "en"})
    assert '<html lang="sv">' in answer.text  # the switch wins


async def test_a_swedish_companys_page_is_in_swedish(stack):
    view = await open_modal(stack)
    step1 = input_values(
        system=selected("eaccounting"),
        company_name=typed("Fjällbris Bageri AB"),
        country=selected("SE"),
        org_number=typed("556036-0793"),
    )
    assert (await submit(stack, view, step1))["response_action"] == "update"
    view = stack.slack_world.view(view["id"])
    assert (await submit(stack, view, STEP2))["response_action"] == "update"
    view = stack.slack_world.view(view["id"])
    assert await submit(stack, view, STEP3) == {}
    await stack.settle()
    page = await stack.browser.get(approval_link(stack))
    assert html_lang(page) == "sv"
    assert "Koppla Fjällbris Bageri AB till Fjordbris Regnskap" in page.text
    assert "556036-0793" in page.text
    # Ola's Slack is in Norwegian: his DM is, whatever the company's country.
    assert "ber deg koble til" in block_text(dm_of(stack, OLA))


async def test_the_approvers_dm_follows_their_slack_locale_and_its_edits_stay_in_it(stack):
    stack.slack_world.add_user(SlackUser(SVEN, "sven", "Sven Svensson", "sven@nordlysbakeri.no", locale="sv-SE"))
    view = await approver_step(stack)
    assert await submit(stack, view, input_values(approver_user=picked_user(SVEN))) == {}
    await stack.settle()
    asked = [call for call in stack.slack_world.calls_to("users.info") if call.args.get("user") == SVEN]
    assert asked
    assert all(str(call.args.get("include_locale")).lower() in {"1", "true"} for call in asked)

    dm = dm_of(stack, SVEN)
    shown = block_text(dm)
    assert "Kari Nordmann på Fjordbris Regnskap ber dig koppla *Nordlys Bakeri AS* (988 077 917)" in shown
    assert "i Visma eEkonomi" in shown
    assert "fullständig programbehörighet" in shown
    assert re.search(r"Länken fungerar till \d{1,2} [a-zé]+ \d{4}", shown), shown
    assert "<!date" not in shown  # a date Slack would write in English
    buttons = [
        element["text"]["text"]
        for block in dm["blocks"]
        for element in block.get("elements", [])
        if element.get("type") == "button"
    ]
    assert buttons == ["Granska och godkänn", "Inte jag / avböj"]

    page = await stack.browser.get(approval_link_of(stack, SVEN))
    assert html_lang(page) == "nb"  # the page goes by the company (Norwegian) until Sven switches
    assert (await sign_in_and_accept(stack, page)).status == 200
    edited = block_text(dm_of(stack, SVEN))
    assert "*Nordlys Bakeri AS* godkändes" in edited
    assert re.search(r"\d{1,2} [a-zé]+ \d{4} kl\. \d{2}:\d{2}", edited), edited


async def test_a_norwegian_approvers_dm_and_its_expiry_are_in_norwegian(stack, clock):
    from bot.scheduler import expire_links

    await add_company(stack)
    shown = block_text(dm_of(stack, OLA))
    assert "Kari Nordmann i Fjordbris Regnskap ber deg koble til *Nordlys Bakeri AS*" in shown
    assert "Du trenger *full programtilgang* i firmaet" in shown
    assert "Lenken virker til" in shown
    clock.advance(days=stack.settings.approval_link_days, seconds=1)
    assert await expire_links(stack.deps) == 1
    await stack.settle()
    dm = dm_of(stack, OLA)
    assert "denne lenken utløp uten å bli brukt" in block_text(dm)
    assert dm["text"] == "Nordlys Bakeri AS: lenken har utløpt"


def approval_link_of(stack, user: str) -> str:
    for block in dm_of(stack, user)["blocks"]:
        for element in block.get("elements", []):
            if element.get("url"):
                return str(element["url"])
    raise AssertionError("no approval link in the DM")


async def test_leaving_for_visma_keeps_the_language_in_a_cookie_for_the_way_back(stack):
    await add_company(stack)
    link = approval_link(stack)
    answer = await stack.http.post(link + "?lang=sv", follow_redirects=False)
    assert answer.status_code == 303
    cookie = answer.headers["set-cookie"]
    assert cookie.startswith("approval_lang=sv;")
    for attribute in ("HttpOnly", "SameSite=lax", "Path=/"):
        assert attribute.lower() in cookie.lower(), cookie


async def test_check_again_keeps_the_language_chosen(stack):
    from bot.simulators.stack import VISMA_CLIENT_ID
    from tests.scenario.test_business_nxt import add_nxt_company, customer_ids

    await customer_ids(stack, [1234567])
    await add_nxt_company(stack, name="Havbris Holding AS", org_number="914 778 271")
    page = await stack.browser.get(approval_link(stack) + "?lang=sv")
    assert "Kontrollera igen" in page.text
    again = await stack.browser.submit(page)
    assert again.status == 422
    assert html_lang(again) == "sv"
    assert "Inte kopplat än" in again.text
    assert "vår integration är inte aktiverad för Havbris Holding AS" in " ".join(again.text.split())
    assert "Connect Application Access" in again.text  # Business NXT's own table names stay as it shows them
    stack.nxt.activate(VISMA_CLIENT_ID, 3)
    done = await stack.browser.submit(again)
    assert html_lang(done) == "sv"
    assert "Havbris Holding AS är kopplat – tack" in done.text
