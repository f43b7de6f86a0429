"""`make demo`: the whole slice against the simulators, printed as each person would see it.

Staff add a company with /addcompany (one typo caught inline), the approver gets the DM and opens the link,
first trips over the default-company pitfall (caught, explained, fixed), then connects the right company;
the first sync runs and the card moves from awaiting approval to synced. Exits non-zero when a step fails.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import tempfile
import textwrap
import time
from collections.abc import Mapping
from typing import Any
from zoneinfo import ZoneInfo

from sqlmodel import col, select

from bot import logs
from bot.domain.types import AccountingSystem
from bot.scheduler import SyncPool
from bot.services import outbox
from bot.simulators.browser import Page
from bot.simulators.render import render_message, render_view
from bot.simulators.slack import STAFF_GROUP
from bot.simulators.slack_requests import input_values, picked_user, selected, typed
from bot.simulators.stack import ALERT_CHANNEL, VISMA_CLIENT_ID, Stack, running_stack
from bot.simulators.visma_net import EIENDOM_TENANT, SERVICE_READ, SJOMAT_TENANT
from bot.store.models import SyncRun
from bot.sync.policy import VISIBLE_AFTER_RUNS
from bot.visma.visma_erp import READ_SCOPE as ERP_READ
from commands.addcompany.ids import Field
from commands.addcompany.state import AddCompanyState
from commands.addcompany.views import company_view

KARI, OLA, GUEST = "U0KARI", "U0OLA", "U0GUEST"
STEP2 = input_values(
    period_type=selected("monthly"),
    fy_start_month=selected("1"),
    reconciliation_start={"type": "datepicker", "selected_date": "2026-01-01"},
    vat_frequency=selected("bimonthly"),
    responsible_user=picked_user(KARI),
)
WIDTH = 100


class DemoFailed(Exception):
    """A step did not do what the product promises."""


def heading(text: str) -> None:
    print(f"\n{'━' * WIDTH}\n{text}\n{'━' * WIDTH}")


def show(who: str, what: str, body: str) -> None:
    print(f"\n▶ {who} — {what}")
    print(textwrap.indent(body.rstrip(), "    "))


def expect(condition: bool, message: str) -> None:
    if not condition:
        raise DemoFailed(message)


def page_text(page: Page) -> str:
    lines: list[str] = []
    for line in page.text.splitlines():
        lines += textwrap.wrap(line, WIDTH - 4, break_long_words=False) or [""]
    return "\n".join(lines)


class Demo:
    """The story, step by step, with a check after each."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.world = stack.slack_world
        self.names = {user.id: user.real_name for user in self.world.users.values()}

    async def wait_idle(self) -> None:
        await self.stack.settle()

    def card(self) -> dict[str, Any]:
        messages = [m for m in self.world.current_messages(ALERT_CHANNEL) if not m.get("thread_ts")]
        expect(bool(messages), "no status card in the team channel")
        return messages[-1]

    def thread(self) -> list[dict[str, Any]]:
        card = self.card()
        return [m for m in self.world.current_messages(ALERT_CHANNEL) if m.get("thread_ts") == card["ts"]]

    def render(self, message: Mapping[str, Any]) -> str:
        return render_message(message, users=self.names)

    async def submit(self, user: str, view: Mapping[str, Any], state: Mapping[str, Any]) -> dict[str, Any]:
        try:
            return await self.stack.submit_view(user=user, view=view, values=state)
        except RuntimeError as exc:
            raise DemoFailed(str(exc)) from None

    async def staff_adds_company(self) -> None:
        heading("1. Kari (staff at Fjordbris Regnskap) runs /addcompany in #onboarding")
        started = time.monotonic()
        response = await self.stack.slack.slash(command="/addcompany", user=KARI, channel=ALERT_CHANNEL)
        ack_ms = (time.monotonic() - started) * 1000
        expect(response.status_code == 200, f"/addcompany answered HTTP {response.status_code}")
        await self.wait_idle()
        view = self.world.last_view()
        expect(view is not None and view["callback_id"] == "addcompany_company", "step 1 of the modal did not open")
        assert view is not None
        show("Kari", f"sees the modal (Slack got its ack in {ack_ms:.0f} ms)", render_view(view, users=self.names))

        step1 = input_values(
            system=selected("eaccounting"),
            company_name=typed("Nordlys Bakeri AS"),
            country=selected("NO"),
            org_number=typed("988 077 918"),
        )
        body = await self.submit(KARI, view, step1)
        expect(body.get("response_action") == "errors", "a wrong check digit was not caught")
        show(
            "Kari",
            "mistypes the organisation number and presses Next — the error shows under the field",
            render_view(view, errors=body["errors"], values=step1, users=self.names),
        )

        step1[Field.ORG_NUMBER.value][Field.ORG_NUMBER.value]["value"] = "988 077 917"
        body = await self.submit(KARI, view, step1)
        expect(body.get("response_action") == "update", f"step 1 was not accepted: {body}")
        view = self.world.view(view["id"])
        show("Kari", "fixes it; step 2 asks for the reconciliation settings", render_view(view, users=self.names))

        step2 = input_values(
            period_type=selected("monthly"),
            fy_start_month=selected("1"),
            reconciliation_start={"type": "datepicker", "selected_date": "2026-01-01"},
            vat_frequency=selected("bimonthly"),
            responsible_user=picked_user(KARI),
            modules={"type": "checkboxes", "selected_options": [{"value": "vat"}, {"value": "payroll"}]},
            comment=typed("Bakery with two shops in Tromsø"),
        )
        body = await self.submit(KARI, view, step2)
        expect(body.get("response_action") == "update", f"step 2 was not accepted: {body}")
        view = self.world.view(view["id"])
        show("Kari", "step 3: who approves at the client", render_view(view, users=self.names))

        body = await self.submit(KARI, view, input_values(approver_user=picked_user(OLA)))
        expect(body == {}, f"the final submit did not close the modal: {body}")
        await self.wait_idle()
        show("#onboarding", "the company's status card appears", self.render(self.card()))
        ephemeral = self.world.calls_to("chat.postEphemeral")
        expect(bool(ephemeral), "Kari got no confirmation")
        show("Kari", "gets a confirmation only she can see", self.render(ephemeral[-1].args))

    def approval_link(self) -> tuple[str, str]:
        dm_channel = self.world.dm_channel_for(OLA)
        dms = self.world.current_messages(dm_channel)
        expect(bool(dms), "Ola got no DM")
        dm = dms[-1]
        show("Ola (the client's administrator)", "gets a DM", self.render(dm))
        for block in dm.get("blocks", []):
            for element in block.get("elements", []):
                if element.get("url"):
                    return str(element["url"]), dm_channel
        raise DemoFailed("the DM has no approval link")

    async def approver_hits_default_company(self, link: str) -> str:
        heading("2. Ola opens the link; Visma picks his default company (the classic pitfall)")
        self.stack.eaccounting.switches.default_company = True
        page = await self.stack.browser.get(link)
        expect(page.status == 200 and "Fortsett til Visma" in page.text, "the approval page did not open")
        show("Ola", "sees our explanation page", page_text(page))
        page = await self.stack.browser.submit(page)
        expect("password" in page.html.lower(), "Visma's login page did not open")
        show("Ola", "is at Visma's login", page_text(page))
        page = await self.stack.browser.submit(page, values={"email": "ola@nordlysbakeri.no", "password": "demo"})
        if page.forms and any("company_id" in form.fields for form in page.forms):
            show(
                "Ola",
                "sees Visma's company picker with his default company pre-selected, and just goes on",
                page_text(page),
            )
            page = await self.stack.browser.submit(page)
        expect("decision" in page.html, "Visma's consent page did not open")
        show("Ola", "approves the access at Visma", page_text(page))
        page = await self.stack.browser.submit(page, button=("decision", "accept"))
        expect("feil firma" in page.text.lower(), f"the wrong company was not caught: {page.text[:300]}")
        show("Ola", "comes back to our page: the mismatch is caught and explained", page_text(page))
        await self.wait_idle()
        show("#onboarding", "the card says it needs action", self.render(self.card()))
        show(
            "#onboarding",
            "the thread explains what happened, who can fix it and how",
            "\n\n".join(self.render(message) for message in self.thread()),
        )
        retry = next((url for text, url in page.links if "Prøv igjen" in text), None)
        expect(retry is not None, "the wrong-company page has no way to try again")
        assert retry is not None
        return retry

    async def approver_connects(self, retry: str, dm_channel: str) -> None:
        heading("3. Ola clears his default company and tries again")
        self.stack.eaccounting.switches.default_company = False
        page = await self.stack.browser.get(retry)
        page = await self.stack.browser.submit(page, values={"email": "ola@nordlysbakeri.no", "password": "demo"})
        nordlys = self.stack.eaccounting.company_id_by_org("988077917")
        if any("company_id" in form.fields for form in page.forms):
            page = await self.stack.browser.submit(page, values={"company_id": nordlys})
        page = await self.stack.browser.submit(page, button=("decision", "accept"))
        expect("er koblet til" in page.text, f"the connection did not succeed: {page.text[:300]}")
        show("Ola", "picks Nordlys Bakeri AS and approves; our page confirms", page_text(page))
        await self.wait_idle()
        show("Ola", "his DM is edited in place", self.render(self.world.current_messages(dm_channel)[-1]))
        card = self.card()
        rendered = self.render(card)
        expect("vouchers" in rendered, f"the card does not show the first sync: {rendered}")
        heading("4. The first sync has run")
        show("#onboarding", "the same card, edited in place", rendered)
        show("#onboarding", "its thread", "\n\n".join(self.render(message) for message in self.thread()))

    async def press(self, label: str) -> None:
        """Kari presses a button on the newest card."""
        await self.click(self.card(), label)

    def current(self, message: Mapping[str, Any]) -> dict[str, Any]:
        """A message as the channel shows it now (edited in place since it was read)."""
        return next(m for m in self.world.current_messages(ALERT_CHANNEL) if m["ts"] == message["ts"])

    async def click(self, message: Mapping[str, Any], label: str) -> None:
        """Kari presses a button on any message in the channel."""
        action = next(
            (
                element
                for block in message["blocks"]
                if block["type"] == "actions"
                for element in block["elements"]
                if element["text"]["text"] == label
            ),
            None,
        )
        if action is None:
            raise DemoFailed(f"the message has no {label} button")
        response = await self.stack.slack.click(user=KARI, action=action, channel=ALERT_CHANNEL, message=message)
        expect(response.status_code == 200, f"{label} was not acknowledged")
        await self.wait_idle()

    async def last_run(self) -> SyncRun:
        async with self.stack.deps.store.session() as session:
            run = (await session.exec(select(SyncRun).order_by(col(SyncRun.id).desc()))).first()
        expect(run is not None, "no sync run was recorded")
        assert run is not None
        return run

    async def sync_rides_out_trouble(self) -> None:
        heading("5. Next sync: Visma answers 429 (rate limit) and 503 on the way; the sync rides it out")
        world = self.stack.eaccounting
        nordlys = world.company_id_by_org("988077917")
        world.book_voucher(nordlys, text="Kontantsalg julemarked")
        world.inject("rate_limit", path="/v2/vouchers", times=1, seconds=1)
        world.inject("unavailable", path="/v2/accountbalances", times=1)
        thread_before = len(self.thread())
        await self.press("Sync now")
        run = await self.last_run()
        expect(run.status == "ok", f"the sync did not ride out the 429 and the 503: {run.error_message}")
        expect(len(self.thread()) == thread_before, "a retried 429/503 was reported in the thread")
        show(
            "bot log",
            "what the run record says (nobody was bothered)",
            f"run {run.id}: ok after {run.requests} requests and {run.retries} retries "
            f"(one 429 waited out for the second Visma named, one 503 retried with backoff); "
            f"{(run.written or {}).get('vouchers', 0)} voucher(s) read and written — only what changed since "
            "the last sync (and the 5-minute overlap)",
        )
        show("#onboarding", "the card, edited in place: the new voucher is in", self.render(self.card()))

    async def outage(self) -> None:
        heading("6. Visma eAccounting goes down for a while")
        world = self.stack.eaccounting
        world.inject("unavailable", path="/v2/", times=100_000)
        thread_before = len(self.thread())
        for _ in range(3):
            await self.press("Sync now")
        card = self.render(self.card())
        expect("has not answered properly" in card, f"the outage is not on the card: {card}")
        show(
            "#onboarding", "after three failed runs the card says so (still green: nothing for the client to do)", card
        )
        notes = self.thread()[thread_before:]
        expect(len(notes) == 1, f"the outage was said {len(notes)} times in the thread")
        show("#onboarding", "…and the thread says it once", self.render(notes[0]))
        world.faults.clear()
        await self.press("Sync now")
        card = self.render(self.card())
        expect("has not answered" not in card, "the outage line stayed on the card after a healthy run")
        show("#onboarding", "Visma is back: the next run clears it", card)
        show("#onboarding", "and the thread says so", self.render(self.thread()[-1]))

    async def sync_alert(self) -> None:
        heading("7. Later: the approver loses full program permission in eAccounting")
        self.stack.eaccounting.switches.no_full_permission = True
        await self.press("Sync now")
        show("#onboarding", "Kari presses Sync now; the card turns red", self.render(self.card()))
        alert = self.thread()[-1]
        rendered = self.render(alert)
        expect("4007" in rendered and "Send new approval link" in rendered, f"no permission alert: {rendered}")
        show("#onboarding", "the alert names the missing permission, who can fix it, and the button", rendered)
        await self.click(alert, "Snooze a day")
        snoozed = self.render(self.current(alert))
        expect("Snoozed by" in snoozed, f"the snooze is not on the alert: {snoozed}")
        show(
            "#onboarding",
            "Kari snoozes it for a day: it keeps counting quietly, and the thread hears tomorrow",
            snoozed,
        )
        self.stack.eaccounting.switches.no_full_permission = False

    async def only_staff_and_only_in_turn(self) -> None:
        heading("8. Trust: a guest, a stale button, and Slack refusing for a while")
        response = await self.stack.slack.slash(command="/addcompany", user=GUEST, channel=ALERT_CHANNEL)
        expect(response.status_code == 200, "the guest's /addcompany was not answered")
        await self.wait_idle()
        expect(not self.world.calls_to("views.open")[1:], "a guest could open the modal")
        show(
            "Gro (the client's bookkeeper, a guest in the workspace)", "runs /addcompany; only she sees", response.text
        )

        alert = self.thread()[-1]
        self.stack.eaccounting.switches.no_full_permission = False
        await self.click(alert, "Retry now")
        fixed = self.render(self.current(alert))
        expect("Resolved" in fixed, f"Retry now on the alert did not resolve it: {fixed}")
        show(
            "#onboarding",
            "the permission is given back; Kari presses the alert's Retry now, the healthy run resolves it by "
            "itself, and the alert keeps its story",
            fixed,
        )
        button = {
            "type": "button",
            **next(
                e
                for b in alert["blocks"]
                if b["type"] == "actions"
                for e in b["elements"]
                if "link" in e["text"]["text"]
            ),
        }
        before = len(self.stack.responses.posts)
        await self.stack.slack.click(user=KARI, action=button, channel=ALERT_CHANNEL, message=alert)
        await self.wait_idle()
        answer = self.stack.responses.posts[before:]
        expect(bool(answer) and "already resolved" in str(answer[-1].get("text")), "the stale button acted")
        expect("🟢" in self.render(self.card()), "a stale button moved the company")
        show("Kari", "presses the old alert's Send new approval link, days later; nothing moves", answer[-1]["text"])

        self.world.switches.fail = {"chat.update": "service_unavailable"}
        await self.press("Sync now")
        self.world.switches.fail = {}
        await self.stack.app.state.deliverer.deliver_due(everything=True)
        await self.wait_idle()
        card = self.render(self.card())
        expect("syncing now" not in card and "last sync" in card, f"the card did not catch up: {card}")
        show("#onboarding", "Slack refused card edits during a sync; the outbox caught up once it answered", card)

    async def add(self, *, system: str, name: str, org_number: str, **extra: Mapping[str, Any]) -> None:
        """Kari runs the three steps of /addcompany for another company (no typos this time)."""
        await self.stack.slack.slash(command="/addcompany", user=KARI, channel=ALERT_CHANNEL)
        await self.wait_idle()
        view = self.world.last_view()
        assert view is not None
        step1 = input_values(
            system=selected(system),
            company_name=typed(name),
            country=selected("NO"),
            org_number=typed(org_number),
            **extra,
        )
        shown = self.world.replace_view(view["id"], company_view(AddCompanyState(), system=AccountingSystem(system)))
        show("Kari", f"picks {AccountingSystem(system).label}; step 1 asks for what it needs", render_view(shown))
        for values in (step1, STEP2):
            body = await self.submit(KARI, self.world.view(view["id"]), values)
            expect(body.get("response_action") == "update", f"a step was not accepted: {body}")
        body = await self.submit(KARI, self.world.view(view["id"]), input_values(approver_user=picked_user(OLA)))
        expect(body == {}, f"the final submit did not close the modal: {body}")
        await self.wait_idle()

    async def visma_net(self) -> None:
        heading("9. Visma.net Financials: the Tenant ID, and an app not yet integrated for the tenant")
        await self.add(system="visma_net", name="Havbris Eiendom AS", org_number="998765439")
        link, _ = self.approval_link()
        page = await self.stack.browser.get(link)
        expect("Tenant ID" in page.text, "the Visma.net page does not ask for the Tenant ID")
        show("Ola", "opens the link: the steps in Visma, then a field for the Tenant ID", page_text(page))
        page = await self.stack.browser.submit(page, values={"tenant_id": EIENDOM_TENANT})
        expect(page.status == 422, "a tenant that has not integrated the app was accepted")
        show("Ola", "pastes the Tenant ID before integrating the app: what is missing, who can fix it", page_text(page))
        self.stack.visma_net.approve(VISMA_CLIENT_ID, EIENDOM_TENANT, [SERVICE_READ])
        page = await self.stack.browser.submit(page, values={"tenant_id": EIENDOM_TENANT})
        expect("er koblet til" in page.text, f"Visma.net did not connect: {page.text[:300]}")
        show("Ola", "integrates the app in the App Store and checks again", page_text(page))
        await self.wait_idle()
        card = self.render(self.card())
        expect("vouchers" in card, f"the Visma.net company did not sync: {card}")
        show("#onboarding", "its card, connected and synced", card)

    async def business_nxt(self) -> None:
        heading("10. Business NXT: the firm's customer IDs, and a company not yet activated")
        await self.stack.slack.event({"type": "app_home_opened", "user": KARI, "channel": "D0KARI", "tab": "home"})
        await self.wait_idle()
        home = self.world.home[KARI]
        settings = next(e for b in home["blocks"] if b["type"] == "actions" for e in b["elements"])
        await self.stack.slack.click(user=KARI, action={"type": "button", **settings}, view={**home, "id": "VHOME"})
        await self.wait_idle()
        modal = self.world.last_view()
        assert modal is not None
        body = await self.submit(KARI, modal, input_values(nxt_customer_ids=typed("1234567")))
        expect(body == {}, f"the firm settings were not saved: {body}")
        show("Kari", "App Home → Firm settings: the firm's Visma customer ID", render_view(modal))
        await self.add(system="business_nxt", name="Havbris Holding AS", org_number="914778271")
        link, _ = self.approval_link()
        page = await self.stack.browser.get(link)
        show("Ola (the client's NXT system administrator)", "opens the link: the activation steps", page_text(page))
        page = await self.stack.browser.submit(page)
        expect(page.status == 422, "a company that is not activated was connected")
        show("Ola", "presses Check again before activating: not yet, and why", page_text(page))
        self.stack.nxt.activate(VISMA_CLIENT_ID, 3)
        page = await self.stack.browser.submit(page)
        expect("er koblet til" in page.text, f"Business NXT did not connect: {page.text[:300]}")
        show("Ola", "activates the integration for the company and checks again", page_text(page))
        await self.wait_idle()
        card = self.render(self.card())
        expect("vouchers" in card, f"the Business NXT company did not sync: {card}")
        show("#onboarding", "its card, connected and synced", card)

    async def visma_erp(self) -> None:
        heading("11. Visma ERP: consent through Visma Connect, and a scope left unticked")
        await self.add(system="visma_erp", name="Havbris Sjømat AS", org_number="931184202", api_version=selected("v2"))
        link, _ = self.approval_link()
        browser = self.stack.browser
        page = await browser.submit(await browser.get(link))
        page = await browser.submit(page, values={"email": "kari@havbris.no", "password": "demo"})
        page = await browser.submit(page, values={"tenant_id": SJOMAT_TENANT})
        show(
            "Kari Havik (the client's API User)", "signs in, picks the company, sees the access asked", page_text(page)
        )
        page = await browser.submit(page, values={f"grant:{ERP_READ}": ""}, button=("decision", "accept"))
        expect(page.status == 422 and ERP_READ in page.text, f"an unticked scope was not caught: {page.text[:300]}")
        show(
            "Kari Havik", "unticks reading by mistake: nothing is kept, and the page says which scope", page_text(page)
        )
        await self.wait_idle()
        show("#onboarding", "the team hears it in the card's thread", self.render(self.thread()[-1]))
        retry = next((url for text, url in page.links if "Logg inn" in text), None)
        expect(retry is not None, "the page offers no way to sign in again")
        assert retry is not None
        page = await browser.get(retry)
        page = await browser.submit(page, values={"email": "kari@havbris.no", "password": "demo"})
        page = await browser.submit(page, values={"tenant_id": SJOMAT_TENANT})
        page = await browser.submit(page, button=("decision", "accept"))
        expect("er koblet til" in page.text, f"Visma ERP did not connect: {page.text[:300]}")
        await self.wait_idle()
        card = self.render(self.card())
        expect("vouchers" in card, f"the Visma ERP company did not sync: {card}")
        show("#onboarding", "she signs in again with every box ticked: connected and synced", card)

    async def rolled_up_outage(self) -> None:
        heading("12. eAccounting goes down for 20 client companies at once")
        settings = self.stack.deps.settings
        # Twenty cards are edited at every run; the demo does not sit out Slack's pace for each of those edits.
        pace, settings.slack_post_interval_seconds = settings.slack_post_interval_seconds, 0.0
        ids = await self.stack.connect_many(20, name="Klient", number=970_000_000)
        posts_before = len(self.world.calls_to("chat.postMessage"))
        self.stack.eaccounting.switches.outage = True
        for _ in range(VISIBLE_AFTER_RUNS):
            await self.run_all(ids)
        rollup = self.card()
        rendered = self.render(rollup)
        expect("20 of 20 companies" in rendered, f"the outage was not rolled up: {rendered}")
        show("#onboarding", "one message for twenty, not twenty alerts (each card still shows its own state)", rendered)
        self.stack.eaccounting.switches.outage = False
        await self.run_all(ids[:12])
        show(
            "#onboarding",
            "Visma answers again: the same message, edited as they recover",
            self.render(self.current(rollup)),
        )
        await self.run_all(ids[12:])
        over = self.render(self.current(rollup))
        expect("over" in over, f"the roll-up did not close: {over}")
        posts = len(self.world.calls_to("chat.postMessage")) - posts_before
        expect(posts <= 3, f"{posts} messages were posted for one outage")
        show("#onboarding", f"all of them work again: closed by itself ({posts} messages posted in all)", over)
        settings.slack_post_interval_seconds = pace

    async def run_all(self, ids: list[int]) -> None:
        """One scheduled run of each company, through the scheduler's pool as a tick starts them."""
        pool = SyncPool(self.stack.deps, parallel=len(ids))
        for company_id in ids:
            pool.submit(company_id)
        await self.wait_idle()

    async def daily_digest(self) -> None:
        heading("13. Every morning at DIGEST_TIME: the daily digest in #onboarding")
        now = self.stack.deps.clock()
        async with self.stack.deps.store.session() as session:
            # What the scheduler's tick writes once DIGEST_TIME has passed (here without waiting for 08:00).
            await outbox.digest(session, day=now.astimezone(ZoneInfo(self.stack.settings.timezone)).date(), now=now)
            await session.commit()
        await self.wait_idle()
        digest = self.card()
        rendered = self.render(digest)
        expect("onboarding," in rendered.lower(), f"no digest in the channel: {rendered}")
        chart = [m for m in self.world.current_messages(ALERT_CHANNEL) if m.get("thread_ts") == digest["ts"]]
        expect(len(chart) == 1 and bool(chart[0].get("files")), "the digest's chart is not in its thread")
        image = chart[0]["files"][0]
        size = f"{image['original_w']}×{image['original_h']} PNG"
        show("#onboarding", "counts, what needs a person, and in the thread the chart of 14 days", rendered)
        show("#onboarding", "…its thread", f"📊 {image['title']} ({size})")

    async def run(self) -> None:
        await self.staff_adds_company()
        link, dm_channel = self.approval_link()
        retry = await self.approver_hits_default_company(link)
        await self.approver_connects(retry, dm_channel)
        await self.sync_rides_out_trouble()
        await self.outage()
        await self.sync_alert()
        await self.only_staff_and_only_in_turn()
        await self.visma_net()
        await self.business_nxt()
        await self.visma_erp()
        await self.rolled_up_outage()
        await self.daily_digest()


async def main() -> int:
    """Run the demo; 0 when every step did what it should."""
    logs.configure(logging.ERROR)
    started = time.monotonic()
    with tempfile.TemporaryDirectory() as tmp:
        # Retries in tens of milliseconds instead of seconds, so the story does not sit out Visma's backoff
        # or Slack's pace.
        quick: dict[str, Any] = {
            "visma_retry_initial_seconds": 0.05,
            "visma_retry_max_seconds": 0.2,
            "visma_timeout_seconds": 5,
            # Slack's one message a second per channel, at a tenth of it.
            "slack_post_interval_seconds": 0.1,
        }
        async with running_stack(
            database_url=f"sqlite:///{tmp}/demo.db", staff_usergroup=STAFF_GROUP, **quick
        ) as stack:
            demo = Demo(stack)
            try:
                await demo.run()
            except DemoFailed as failure:
                print(f"\n✗ demo failed: {failure}", file=sys.stderr)
                return 1
            calls = len(stack.slack_world.calls)
            api_calls = len(stack.eaccounting.requests)
    print(
        f"\n✓ demo passed in {time.monotonic() - started:.1f} s: company added with one typo caught inline, "
        f"default-company mix-up caught, connected, first sync on the card, a 429 and a 503 ridden out, "
        f"an outage shown on the card and cleared, permission alert raised and resolved, a guest and a stale "
        f"button refused, a Slack outage caught up; Visma.net connected by Tenant ID after its app was integrated; "
        f"Business NXT connected after its integration was activated; Visma ERP connected after an unticked "
        f"scope was caught — all four systems synced; an alert snoozed, an outage of 20 companies rolled up into "
        f"one message that closed by itself, and the daily digest with its chart "
        f"({calls} Slack API calls, {api_calls} eAccounting API calls)."
    )
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
