"""The local console in a real browser: headless Chromium, driven over the DevTools protocol, adds a company.

Kari types /addcompany in the console, mistypes the organisation number (the error shows under its field),
fixes it, goes through the three steps and sees the card in the team channel; the company's name carries
markup, which must show as text everywhere. A card button opens another modal. Then App Home, the replies only
one person sees and the approver's DM. Everything goes through the bot's real Slack endpoint, signed, as Slack
would send it. Without Chromium those two are skipped; the console's JSON API is tested either way.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.simulators.stack import ALERT_CHANNEL, Stack
from tests.scenario.cdp import Page, chromium, find_chromium
from tests.scenario.flow import KARI, STEP1, STEP2, add_company

CHROMIUM = find_chromium()
needs_chromium = pytest.mark.skipif(
    CHROMIUM is None,
    reason="console test skipped: no chromium, chromium-browser or google-chrome on PATH "
    "(.ci/run installs Debian's chromium when apt-get is usable)",
)

NAME = "<b>markup</b> <img src=x onerror=window.pwned=1> Bakeri AS"
MODAL = "#modal"


def field(block: str, control: str = "input") -> str:
    return f'{MODAL} [data-block="{block}"] {control}'


async def modal_text(page: Page) -> str:
    return str(await page.evaluate("document.getElementById('modal').innerText"))


async def pick(page: Page, selector: str, label_start: str) -> None:
    """Choose the option whose label starts with this text in a select, as a person would."""
    found = await page.evaluate(
        f"(() => {{ const s = document.querySelector({json.dumps(selector)});"
        f" const o = [...s.options].find((x) => x.textContent.startsWith({json.dumps(label_start)}));"
        " if (!o) return false; s.value = o.value; s.dispatchEvent(new Event('change', {bubbles: true}));"
        " return true; })()"
    )
    assert found, f"no option {label_start!r} in {selector}"


async def no_markup_obeyed(page: Page) -> None:
    """The name's markup is shown as text: no <b>markup</b> element, no <img>, and its onerror never ran."""
    assert await page.evaluate("[...document.querySelectorAll('b')].every((b) => b.textContent !== 'markup')")
    assert await page.evaluate("document.querySelectorAll('img').length") == 0
    assert await page.evaluate("window.pwned === undefined")


@needs_chromium
async def test_the_console_adds_a_company_in_a_browser(stack: Stack, tmp_path) -> None:
    assert CHROMIUM is not None
    async with chromium(CHROMIUM, tmp_path / "chromium") as page:
        await page.navigate(stack.console_url + "?user=U0KARI")
        await page.wait_for("document.body.dataset.ready === 'true'")
        assert await page.evaluate("document.getElementById('who').value") == "U0KARI"
        assert "Kari Nordmann (staff)" in await page.evaluate("document.getElementById('who').innerText")

        # Kari types the slash command; the bot opens step 1, drawn from its blocks.
        await page.type_into("#message", "/addcompany")
        await page.press_enter()
        await page.wait_for(f"document.querySelector('{field('company_name')}')")
        text = await modal_text(page)
        assert "Accounting system" in text
        assert "Organisation number" in text
        assert "Visma eAccounting" in await page.evaluate(
            f"document.querySelector('{field('system', 'select')}').selectedOptions[0].textContent"
        )

        # A mistyped organisation number comes back under its own field; what she typed stays.
        await page.type_into(field("company_name"), NAME)
        await page.type_into(field("org_number"), "988 077 918")
        await page.click("#modal-submit")
        await page.wait_for(f"document.querySelector('{MODAL} [data-block-id=\"org_number\"] .error')")
        assert await page.evaluate(f"document.querySelector('{field('company_name')}').value") == NAME
        assert await page.evaluate(f"document.querySelectorAll('{MODAL} .error').length") == 1

        # Fixed: step 2 shows the company's name, escaped.
        await page.type_into(field("org_number"), "988 077 917")
        await page.click("#modal-submit")
        await page.wait_for("document.getElementById('modal').innerText.includes('Period type')")
        assert NAME in await modal_text(page)
        await no_markup_obeyed(page)

        # Step 2's defaults are fine; step 3: Ola approves, picked from the workspace's people.
        await page.click("#modal-submit")
        await page.wait_for("document.getElementById('modal').innerText.includes('Approver in Slack')")
        await pick(page, field("approver_user", "select"), "Ola Nordmann")
        await page.click("#modal-submit")
        await page.wait_for("document.getElementById('modal').hidden")

        # The card appears in the team channel, drawn from its blocks, the name still text.
        await page.wait_for(f"document.getElementById('pane').innerText.includes({json.dumps(NAME)})")
        await page.wait_for("document.getElementById('pane').innerText.includes('Awaiting approval by @Ola Nordmann')")
        await no_markup_obeyed(page)
        cards = [m for m in stack.slack_world.current_messages(ALERT_CHANNEL) if not m.get("thread_ts")]
        assert len(cards) == 1

        # A card button is a block_actions from a message; this one opens a modal for Kari, with its own errors.
        await page.click('#pane button[data-action-id="card_change_approver"]')
        await page.wait_for("document.getElementById('modal').innerText.includes('Approver in Slack')")
        assert NAME in await modal_text(page)
        await page.click("#modal-submit")
        await page.wait_for(f"document.querySelector('{MODAL} [data-block-id=\"approver_user\"] .error')")
        await page.click("#modal-close")
        await page.wait_for("document.getElementById('modal').hidden")
        assert page.exceptions == []


@needs_chromium
async def test_the_console_shows_app_home_private_replies_and_dms(stack: Stack, tmp_path) -> None:
    assert CHROMIUM is not None
    await add_company(stack)
    async with chromium(CHROMIUM, tmp_path / "chromium") as page:
        await page.navigate(stack.console_url + "?user=U0KARI")
        await page.wait_for("document.body.dataset.ready === 'true'")

        # App Home: opening the tab sends app_home_opened; the bot publishes the view.
        await page.click('.tab[data-tab="home"]')
        await page.wait_for("document.getElementById('pane').innerText.includes('Company onboarding')")
        assert "Nordlys Bakeri AS" in await page.evaluate("document.getElementById('pane').innerText")

        # Kari's confirmation is shown to her only.
        await page.click('.tab[data-tab="channel"]')
        await page.wait_for("document.getElementById('private').innerText.includes('Only visible to you')")
        assert "Nordlys Bakeri AS" in await page.evaluate("document.getElementById('private').innerText")

        # Ola, in the console, has the DM (in his language) with its two buttons; Per does not see Kari's confirmation.
        await pick(page, "#who", "Ola Nordmann")
        await page.click('.tab[data-tab="dms"]')
        await page.wait_for("document.getElementById('pane').innerText.includes('Nordlys Bakeri AS')")
        assert await page.evaluate("document.querySelectorAll('#pane .b-actions button').length") == 2
        await pick(page, "#who", "Per Hansen")
        await page.wait_for("document.getElementById('who').value === 'U0PER'")
        await page.wait_for("document.getElementById('private').innerText === ''")
        assert page.exceptions == []


async def test_the_console_api_keeps_each_persons_modal_and_replies(stack: Stack) -> None:
    api = stack.console_url + "api/"

    async def post(what: str, user: str = KARI, **body: object) -> dict[str, Any]:
        response = await stack.http.post(api + what, json={"user": user, **body})
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def state(user: str = KARI) -> dict[str, Any]:
        return dict((await stack.http.get(api + "state", params={"user": user})).json())

    await post("command", text="/addcompany")
    await stack.settle()
    view = (await state())["modal"]["view"]
    assert view["callback_id"] == "addcompany_company"
    assert (await state("U0PER"))["modal"] is None  # the modal is Kari's alone

    typo = json.loads(json.dumps(STEP1))
    typo["org_number"]["org_number"]["value"] = "988 077 918"
    assert (await post("submit", view_id=view["id"], values=typo))["outcome"] == "errors"
    assert list((await state())["modal"]["errors"]) == ["org_number"]
    assert (await post("submit", view_id=view["id"], values=STEP1))["outcome"] == "update"
    modal = (await state())["modal"]
    assert modal["view"]["callback_id"] == "addcompany_settings"
    assert modal["errors"] == {}
    assert (await post("submit", view_id=view["id"], values=STEP2))["outcome"] == "update"
    await post("close", view_id=view["id"])
    assert (await state())["modal"] is None

    # A post to a response_url the console handed out is shown to that person only.
    await stack.http.post(stack.console_url + "respond/U0PER/1/1", json={"text": "only for Per"})
    assert [entry["text"] for entry in (await state("U0PER"))["private"]] == ["only for Per"]
    assert (await state())["private"] == []

    # Only JSON from a known person is acted on; only the page's own files are served, with a strict CSP.
    form = await stack.http.post(api + "command", data={"user": KARI, "text": "/addcompany"})
    assert form.status_code == 415
    stranger = await stack.http.post(api + "command", json={"user": "U0NOBODY", "text": "/addcompany"})
    assert stranger.status_code == 400
    assert (await stack.http.get(stack.console_url + "console.py")).status_code == 404
    page = await stack.http.get(stack.console_url)
    assert "script-src 'self'" in page.headers["content-security-policy"]
    assert (await stack.http.get(stack.console_url + "console.js")).status_code == 200
