"""Trust and atomicity, tried from outside against `onboarding-bot serve` (a real subprocess).

The simulators run in this process (Slack's Web API fake records every call the bot makes); the bot runs as
`python -m bot.cli serve` with its settings in the environment, as in production, with `STAFF_USERGROUP` set to
the fake's staff group. Staff, approvers and strangers act through signed (or forged) HTTP and a form browser.

Phases, each feeding one or more figures (all goals 0; the last line printed is one JSON object):
1. prep: 8 companies onboarded through the modal, 4 of them approved and synced.
2. forged: >= 100 requests to /slack/events that are unsigned, signed with a wrong secret, stale, tampered with,
   or carry a non-integer timestamp, with bodies that would act (/addcompany, a card button, a modal submission,
   app_home_opened) -> `forged_accepted` (answered 2xx) and `slack_calls_from_unverified`.
3. replays: 20 correctly signed requests, then each sent again byte-identical -> `replays_acted_on`.
4. retries: 100 Slack retries (fresh signature, `X-Slack-Retry-Num: 1`) of /addcompany's last step and of card
   buttons -> `duplicates_from_retries` (a second company, link, DM, card or confirmation from one request).
5. injection: names, comments and e-mails typed by staff and names returned by Visma that carry Slack markup.
6. outage: 20 onboardings, approvals and first syncs while the Slack fake fails half its calls (--outage, 60 s),
   then a bounded wait (--settle, 120 s) -> `half_done_after_slack_outage`.
7. fuzz: hypothesis-generated payloads for every listener, page and the OAuth callback -> `fuzz_5xx`.
At the end every Slack call of the run is scanned -> `injected_markup_found`, and the bot's stderr of the whole
run is searched for every secret it saw -> `secrets_in_logs`. Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import itertools
import json
import os
import re
import secrets
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

import httpx
from _support import finish, stop_process
from cryptography.fernet import Fernet
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier

from bot.domain.orgnumber import display
from bot.domain.types import Country
from bot.simulators.browser import FormBrowser, Page
from bot.simulators.eaccounting import EAccountingWorld, add_bulk_company, seed_world
from bot.simulators.server import ResponseLog, create_simulators
from bot.simulators.serving import LoopbackServer, free_port
from bot.simulators.slack import STAFF_GROUP, Call, SlackUser, SlackWorld
from bot.simulators.slack_requests import APP_ID, TEAM_ID, input_values, new_trigger_id, picked_user, selected, typed
from bot.simulators.stack import ALERT_CHANNEL, BOT_TOKEN, CLIENT_ID, CLIENT_SECRET, SIGNING_SECRET
from commands.addcompany.ids import COMMAND, Field, Step
from commands.approval.ids import ApprovalAction
from commands.card.ids import CardAction

REPO = Path(__file__).resolve().parent.parent
KARI, PER, OLA, GUEST = "U0KARI", "U0PER", "U0OLA", "U0GUEST"
GOALS = {
    name: ("<=", 0.0)
    for name in (
        "forged_accepted",
        "slack_calls_from_unverified",
        "replays_acted_on",
        "duplicates_from_retries",
        "half_done_after_slack_outage",
        "injected_markup_found",
        "secrets_in_logs",
        "fuzz_5xx",
    )
}
# Markup that pings or plants a link when Slack renders it, and the sign of a value escaped twice.
RAW_MARKUP = ("<!channel", "<!here", "<!everyone", "<@U0GHOST", "<https://evil.example")
DOUBLE_ESCAPE = ("&amp;lt;", "&amp;gt;", "&amp;amp;")
LINK = re.compile(r"https?://[^\s|>\"']+/approve/[A-Za-z0-9_\-]+")
# After Slack recovers, the wait ends early when nothing has moved for this long (the bot's Slack retries back off
# to SLACK_RETRY_MAX_SECONDS, set to 15 s below).
IDLE_SECONDS = 45


def log(text: str) -> None:
    print(text, flush=True)


# ---------------------------------------------------------------- what the fake saw


def texts_of(value: Any, kind: str) -> Iterator[str]:
    """Every text object's string of one kind ("mrkdwn" or "plain_text") in Block Kit, at any depth."""
    if isinstance(value, dict):
        if value.get("type") == kind and isinstance(value.get("text"), str):
            yield value["text"]
        for item in value.values():
            yield from texts_of(item, kind)
    elif isinstance(value, list):
        for item in value:
            yield from texts_of(item, kind)


def rendered_texts(args: dict[str, Any]) -> list[str]:
    """What Slack renders as mrkdwn from one call or response_url post: the fallback `text` and mrkdwn blocks."""
    texts = [args["text"]] if isinstance(args.get("text"), str) else []
    for name in ("blocks", "attachments", "view"):
        texts += texts_of(args.get(name), "mrkdwn")
    return texts


def all_text(args: dict[str, Any]) -> str:
    """Everything readable in a message, for matching (urls of buttons included)."""
    return json.dumps(args, ensure_ascii=False)


def ok(call: Call) -> bool:
    return bool(call.response.get("ok"))


def reached(call: Call, user: str, world: SlackWorld) -> bool:
    """Whether a message call went to a user (their DM, or an ephemeral for them)."""
    channel = str(call.args.get("channel", ""))
    if call.method == "chat.postEphemeral":
        return call.args.get("user") == user
    return channel in {user, world.dm_channel_for(user)}


# ---------------------------------------------------------------- the people and their companies


def org_numbers(start: int) -> Iterator[str]:
    """Valid Norwegian organisation numbers (mod-11 check digit), counting up from `start` (8 digits)."""
    weights = (3, 2, 7, 6, 5, 4, 3, 2)
    for base in itertools.count(start):
        digits = [int(d) for d in f"{base:08d}"]
        check = 11 - sum(w * d for w, d in zip(weights, digits, strict=True)) % 11
        if check == 10:
            continue
        yield f"{base:08d}{0 if check == 11 else check}"


def in_english(link: str) -> str:
    """An approval link as an English-reading approver opens it (the page is otherwise in the company's
    language, and the checks below read its English words)."""
    return link + ("&" if "?" in link else "?") + "lang=en"


@dataclass
class Flow:
    """One company's onboarding as the people involved would do it."""

    key: str
    name: str
    org: str
    approver_email: str
    approver: str | None = None  # the approver's Slack user; None: staff type the e-mail instead
    comment: str | None = None
    visma_name: str | None = None  # the company's name as Visma returns it
    visma_first: str = "Anne"
    visma_last: str = "Godkjenner"
    wrong_visma: str | None = None  # a second company of the approver in Visma, with this name
    wrong_org: str = ""
    view_id: str | None = None
    step3_status: int | None = None
    accepted: bool = False  # the approver pressed Allow at Visma
    error_pages: int = 0
    outcome: str = ""

    @property
    def shown_org(self) -> str:
        return display(Country.NO, self.org)


def step1(flow: Flow) -> dict[str, Any]:
    return input_values(
        **{
            Field.SYSTEM.value: selected("eaccounting"),
            Field.NAME.value: typed(flow.name),
            Field.COUNTRY.value: selected("NO"),
            Field.ORG_NUMBER.value: typed(flow.org),
        }
    )


def step2(flow: Flow) -> dict[str, Any]:
    values = {
        Field.PERIOD_TYPE.value: selected("monthly"),
        Field.FY_START_MONTH.value: selected("1"),
        Field.RECONCILIATION_START.value: {"type": "datepicker", "selected_date": f"{datetime.now(UTC).year}-01-01"},
        Field.VAT_FREQUENCY.value: selected("bimonthly"),
        Field.RESPONSIBLE.value: picked_user(KARI),
        Field.MODULES.value: {"type": "checkboxes", "selected_options": [{"value": "vat"}]},
    }
    if flow.comment:
        values[Field.COMMENT.value] = typed(flow.comment)
    return input_values(**values)


def step3(flow: Flow) -> dict[str, Any]:
    if flow.approver:
        return input_values(**{Field.APPROVER_USER.value: picked_user(flow.approver)})
    return input_values(**{Field.APPROVER_EMAIL.value: typed(flow.approver_email)})


def add_to_worlds(flow: Flow, slack: SlackWorld, visma: EAccountingWorld) -> None:
    """The company's books in Visma, its approver as a Visma user (and a Slack member when they are one)."""
    add_bulk_company(
        visma,
        org_number=flow.org,
        name=flow.visma_name or flow.name,
        vouchers=30,
        years=1,
        seed=int(flow.org[-4:]),
        user_email=flow.approver_email,
    )
    user = visma.users[flow.approver_email]
    user.first_name, user.last_name = flow.visma_first, flow.visma_last
    if flow.wrong_visma:
        add_bulk_company(
            visma, org_number=flow.wrong_org, name=flow.wrong_visma, vouchers=5, years=1, user_email=flow.approver_email
        )
    if flow.approver:
        slack.add_user(SlackUser(flow.approver, flow.key, f"Approver {flow.key}", flow.approver_email))


# ---------------------------------------------------------------- the bench


@dataclass
class Figures:
    """What was counted, and what it looked like."""

    values: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    _kinds: Counter[str] = field(default_factory=Counter)

    def note(self, text: str, *, kind: str = "", most: int = 4) -> None:
        """Keep an example of what went wrong (at most `most` of each kind; the kind is the text before ':')."""
        kind = kind or text.split(":", 1)[0]
        self._kinds[kind] += 1
        if self._kinds[kind] <= most:
            self.notes.append(text)


class Bench:
    """Handles on the simulators, the bot and the people."""

    def __init__(
        self,
        *,
        slack: SlackWorld,
        visma: EAccountingWorld,
        responses: ResponseLog,
        http: httpx.AsyncClient,
        sim_url: str,
        bot_url: str,
        database: Path,
    ) -> None:
        self.slack = slack
        self.visma = visma
        self.responses = responses
        self.http = http
        self.sim_url = sim_url
        self.bot_url = bot_url
        self.events_url = f"{bot_url}/slack/events"
        self.database = database
        self.browser = FormBrowser(http)
        self.figures = Figures()
        self.orgs = org_numbers(91_000_000)
        self.seen: set[str] = set()  # secrets that passed by: links, codes, OAuth states
        self.link_company: dict[str, str] = {}  # approval link -> the organisation number its page shows
        self.forged_triggers: set[str] = set()
        self.forged_until = 0  # index in the call log where the forged burst's window ended
        self._responses = itertools.count(1)
        self._users = itertools.count(1)

    # ------------------------------------------------------------ Slack's side of the wire

    def response_url(self) -> str:
        return f"{self.sim_url}/slack/_response/b{next(self._responses)}"

    def headers(
        self,
        body: str,
        *,
        secret: str | None = SIGNING_SECRET,
        timestamp: str | None = None,
        content_type: str = "application/x-www-form-urlencoded",
        retry: bool = False,
    ) -> list[tuple[bytes, bytes]]:
        """Slack's headers for a body; `secret=None` leaves the request unsigned."""
        headers = [(b"Content-Type", content_type.encode())]
        if secret is not None:
            stamp = str(int(time.time())) if timestamp is None else timestamp
            signature = SignatureVerifier(secret).generate_signature(timestamp=stamp, body=body) or ""
            headers += [(b"X-Slack-Request-Timestamp", stamp.encode()), (b"X-Slack-Signature", signature.encode())]
        if retry:
            headers += [(b"X-Slack-Retry-Num", b"1"), (b"X-Slack-Retry-Reason", b"http_timeout")]
        return headers

    async def send(self, body: str, headers: list[tuple[bytes, bytes]]) -> httpx.Response:
        return await self.http.post(self.events_url, content=body.encode(), headers=headers)

    async def signed(self, body: str, *, content_type: str = "application/x-www-form-urlencoded") -> httpx.Response:
        return await self.send(body, self.headers(body, content_type=content_type))

    def slash_body(self, *, user: str = KARI, text: str = "", trigger: str | None = None) -> str:
        return urlencode(
            {
                "token": "legacy-verification-token-unused",
                "team_id": TEAM_ID,
                "team_domain": "fjordbris",
                "channel_id": ALERT_CHANNEL,
                "channel_name": "onboarding",
                "user_id": user,
                "user_name": user.lower(),
                "command": COMMAND,
                "text": text,
                "api_app_id": APP_ID,
                "is_enterprise_install": "false",
                "response_url": self.response_url(),
                "trigger_id": trigger or new_trigger_id(),
            }
        )

    def submission_body(self, *, user: str, view: dict[str, Any], values: dict[str, Any]) -> str:
        payload = {
            "type": "view_submission",
            "team": {"id": TEAM_ID, "domain": "fjordbris"},
            "user": {"id": user, "team_id": TEAM_ID},
            "api_app_id": APP_ID,
            "trigger_id": new_trigger_id(),
            "view": {**view, "state": {"values": values}},
            "response_urls": [],
        }
        return urlencode({"payload": json.dumps(payload)})

    def click_body(self, *, user: str, action: dict[str, Any], message: dict[str, Any] | None) -> str:
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": TEAM_ID, "domain": "fjordbris"},
            "user": {"id": user, "team_id": TEAM_ID},
            "api_app_id": APP_ID,
            "trigger_id": new_trigger_id(),
            "actions": [{"action_ts": f"{time.time():.6f}", **action}],
            "channel": {"id": ALERT_CHANNEL},
            "response_url": self.response_url(),
            "container": {
                "type": "message",
                "channel_id": ALERT_CHANNEL,
                "message_ts": (message or {}).get("ts", "1.1"),
            },
        }
        if message is not None:
            payload["message"] = message
        return urlencode({"payload": json.dumps(payload)})

    def event_body(self, event: dict[str, Any]) -> str:
        return json.dumps(
            {
                "token": "legacy-verification-token-unused",
                "team_id": TEAM_ID,
                "api_app_id": APP_ID,
                "type": "event_callback",
                "event_id": f"Ev{secrets.token_hex(5).upper()}",
                "event_time": int(time.time()),
                "event": event,
            }
        )

    # ------------------------------------------------------------ waiting

    async def until(self, check: Callable[[], Any], seconds: float, interval: float = 0.2) -> Any:
        deadline = time.monotonic() + seconds
        while True:
            value = check()
            if value or time.monotonic() >= deadline:
                return value
            await asyncio.sleep(interval)

    async def quiet(self, *, still: float = 1.5, limit: float = 30.0) -> None:
        """Wait until the bot has made no Slack call for `still` seconds and no sync is running."""
        deadline = time.monotonic() + limit
        count, since = len(self.slack.calls), time.monotonic()
        while time.monotonic() < deadline:
            await asyncio.sleep(0.1)
            if len(self.slack.calls) != count or self.running_syncs():
                count, since = len(self.slack.calls), time.monotonic()
            elif time.monotonic() - since >= still:
                return

    # ------------------------------------------------------------ the store (read-only)

    def rows(self, sql: str, params: Iterable[Any] = ()) -> list[dict[str, Any]]:
        if not self.database.exists():
            return []
        with sqlite3.connect(f"file:{self.database}?mode=ro", uri=True, timeout=10) as db:
            db.row_factory = sqlite3.Row
            try:
                return [dict(row) for row in db.execute(sql, tuple(params))]
            except sqlite3.OperationalError:
                return []

    def company(self, org: str) -> dict[str, Any] | None:
        found = self.rows("SELECT * FROM company WHERE org_number = ?", (org,))
        return found[0] if found else None

    def count(self, table: str, company_id: int) -> int:
        return len(self.rows(f"SELECT id FROM {table} WHERE company_id = ?", (company_id,)))  # noqa: S608

    def fingerprint(self) -> str:
        """A digest of what the flows change in the store, to tell whether anything still moves."""
        parts = [self.rows("SELECT * FROM company"), self.rows("SELECT * FROM approval_request")]
        parts.append(self.rows("SELECT id, status FROM sync_run"))
        # The outbox (or whatever table holds Slack messages waiting to be delivered), when there is one.
        for table in self.rows(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND (name LIKE '%outbox%' OR name LIKE 'slack_%')"
        ):
            parts.append(self.rows(f"SELECT * FROM {table['name']}"))  # noqa: S608
        return json.dumps(parts, default=str)

    def running_syncs(self) -> int:
        return len(self.rows("SELECT id FROM sync_run WHERE status = 'running'"))

    def last_ok_sync(self, company_id: int) -> dict[str, Any] | None:
        found = self.rows(
            "SELECT * FROM sync_run WHERE company_id = ? AND status = 'ok' ORDER BY id DESC LIMIT 1", (company_id,)
        )
        return found[0] if found else None

    # ------------------------------------------------------------ Slack as people see it

    def cards(self, flow: Flow) -> list[dict[str, Any]]:
        """Top-level messages in the team channel about this company (its number is on the card)."""
        return [
            message
            for message in self.slack.current_messages(ALERT_CHANNEL)
            if not message.get("thread_ts") and flow.shown_org in all_text(message)
        ]

    def card_button(self, card: dict[str, Any], action_id: str) -> dict[str, Any] | None:
        for block in card.get("blocks", []):
            for element in block.get("elements", []) if isinstance(block.get("elements"), list) else []:
                if element.get("action_id") == action_id:
                    return {"type": "button", "block_id": block.get("block_id", ""), **element}
        return None

    def approver_dms(self, flow: Flow) -> list[Call]:
        """Successful messages to the approver that carry an approval link."""
        if not flow.approver:
            return []
        return [
            call
            for call in self.slack.calls
            if call.method in {"chat.postMessage", "chat.update"}
            and ok(call)
            and reached(call, flow.approver, self.slack)
            and LINK.search(all_text(call.args))
        ]

    def requester_links(self, flow: Flow) -> list[str]:
        """Links that reached the requester (ephemeral, DM or response_url) for this company."""
        found = []
        texts = [
            all_text(call.args)
            for call in self.slack.calls
            if call.method in {"chat.postMessage", "chat.postEphemeral", "chat.update"}
            and ok(call)
            and reached(call, KARI, self.slack)
        ]
        texts += [all_text(post) for post in self.responses.posts]
        for text in texts:
            for link in LINK.findall(text):
                if self.link_company.get(link) == flow.org:
                    found.append(link)
        return found

    async def learn_links(self) -> None:
        """Which company each link seen so far is for (its page names the organisation number)."""
        texts = [all_text(call.args) for call in self.slack.calls if ok(call)]
        texts += [all_text(post) for post in self.responses.posts]
        for text in texts:
            for link in LINK.findall(text):
                self.seen.add(link.rsplit("/", 1)[1])
                if link in self.link_company:
                    continue
                try:
                    page = await self.browser.get(in_english(link))
                except httpx.HTTPError:
                    continue
                numbers = re.findall(r"\d{3} \d{3} \d{3}", page.text)
                self.link_company[link] = numbers[0].replace(" ", "") if numbers else ""

    async def link_works(self, link: str) -> bool:
        """Whether the approval page behind a link opens."""
        try:
            return (await self.browser.get(in_english(link))).status == 200
        except httpx.HTTPError:
            return False

    async def link_for(self, flow: Flow) -> str | None:
        dms = self.approver_dms(flow)
        for call in reversed(dms):
            links = LINK.findall(all_text(call.args))
            if links:
                return str(links[-1])
        await self.learn_links()
        forwarded = self.requester_links(flow)
        return forwarded[-1] if forwarded else None

    # ------------------------------------------------------------ people doing things

    async def open_modal(self, *, user: str = KARI, deadline: float) -> str | None:
        """/addcompany until a modal opens (a person types it again when nothing opened); the view id."""
        while time.monotonic() < deadline:
            trigger = new_trigger_id()
            try:
                response = await self.signed(self.slash_body(user=user, trigger=trigger))
            except httpx.HTTPError as exc:
                self.figures.note(f"/addcompany got no answer: {exc!r}", kind="slash")
                await asyncio.sleep(1)
                continue
            if response.status_code != 200:
                self.figures.note(
                    f"/addcompany answered HTTP {response.status_code}: {response.text[:120]}", kind="slash"
                )
            call = await self.until(
                functools.partial(self.opened, trigger),
                5,
                0.05,
            )
            if call is not None and ok(call):
                return str(call.response["view"]["id"])
            await asyncio.sleep(1)
        return None

    def opened(self, trigger: str) -> Call | None:
        """The answered views.open call of a trigger id, if any."""
        return next(
            (
                c
                for c in self.slack.calls
                if c.method == "views.open" and c.args.get("trigger_id") == trigger and c.response
            ),
            None,
        )

    async def submit(self, view_id: str, values: dict[str, Any], *, user: str = KARI) -> httpx.Response:
        """Press the modal's submit button; `response_action: update` is applied to the fake, as Slack does."""
        body = self.submission_body(user=user, view=self.slack.view(view_id), values=values)
        response = await self.signed(body)
        answer = response.json() if response.status_code == 200 and response.content else {}
        if answer.get("response_action") == "update":
            self.slack.replace_view(view_id, answer["view"])
        return response

    async def modal(self, flow: Flow, *, deadline: float, last_step: bool = True) -> bool:
        """The three steps of /addcompany (steps answered with an error are submitted again, as a person would)."""
        view_id = await self.open_modal(deadline=deadline)
        if view_id is None:
            flow.outcome = "the modal never opened"
            return False
        flow.view_id = view_id
        steps = [step1(flow), step2(flow)] + ([step3(flow)] if last_step else [])
        for number, values in enumerate(steps, start=1):
            for _ in range(3):
                try:
                    response = await self.submit(view_id, values)
                except httpx.HTTPError as exc:
                    self.figures.note(f"{flow.key} step {number} got no answer: {exc!r}", kind="modal step")
                    await asyncio.sleep(1)
                    continue
                answer = response.json() if response.status_code == 200 and response.content else {}
                if response.status_code == 200 and answer.get("response_action") != "errors":
                    break
                self.figures.note(
                    f"{flow.key} step {number} answered HTTP {response.status_code} {response.text[:200]}",
                    kind="modal step",
                )
                await asyncio.sleep(1)
            else:
                flow.outcome = f"step {number} failed"
                return False
            if number == 3:
                flow.step3_status = response.status_code
        return True

    async def approve(self, flow: Flow, link: str, *, wrong_first: bool = False) -> Page | None:
        """The approver opens the link and goes through Visma's login, picker and consent."""
        try:
            page = await self.browser.get(in_english(link))
            if page.status != 200 or not page.forms:
                return page
            page = await self.browser.submit(page)
            return await self.visma_consent(flow, page, wrong=wrong_first)
        except (httpx.HTTPError, LookupError) as exc:
            self.figures.note(f"{flow.key}: the approver's browser failed: {exc!r}", kind="browser")
            return None

    async def visma_consent(self, flow: Flow, page: Page, *, wrong: bool = False) -> Page:
        self.remember(page)
        if any("password" in form.fields for form in page.forms):
            page = await self.browser.submit(page, values={"email": flow.approver_email, "password": "demo"})
        if any("company_id" in form.fields for form in page.forms):
            org = flow.wrong_org if wrong else flow.org
            choice = next(cid for cid, company in self.visma.companies.items() if company.org_number == org)
            page = await self.browser.submit(page, values={"company_id": choice})
        if not any(name == "decision" for form in page.forms for name, _ in form.buttons):
            return page
        flow.accepted = flow.accepted or not wrong
        page = await self.browser.submit(page, button=("decision", "accept"))
        self.remember(page)
        return page

    def remember(self, page: Page) -> None:
        """OAuth codes and states that went through the browser (they must never reach a log)."""
        for url in page.visited:
            for name, value in parse_qsl(urlsplit(url).query):
                if name in {"code", "state"} and len(value) >= 8:
                    self.seen.add(value)


# ---------------------------------------------------------------- phases


async def onboard_and_approve(bench: Bench, flow: Flow, *, approve: bool, deadline: float) -> None:
    if not await bench.modal(flow, deadline=deadline):
        return
    if not approve:
        return
    link = None
    while time.monotonic() < deadline:
        link = await bench.link_for(flow)
        if link:
            break
        await asyncio.sleep(0.3)
    if not link:
        flow.outcome = "no link arrived"
        return
    page = await bench.approve(flow, link)
    if page is None or page.status != 200:
        flow.error_pages += 1
        flow.outcome = f"approval page {page.status if page else 'failed'}"


async def prep(bench: Bench, flows: list[Flow]) -> None:
    """Companies the later phases act on: the first half approved and synced, the rest awaiting approval."""
    deadline = time.monotonic() + 60
    await asyncio.gather(
        *(
            onboard_and_approve(bench, flow, approve=i < len(flows) // 2, deadline=deadline)
            for i, flow in enumerate(flows)
        )
    )
    unfinished: dict[str, list[str]] = {}
    while time.monotonic() < deadline:
        unfinished = {flow.key: await flow_problems(bench, flow) for flow in flows}
        if not any(unfinished.values()):
            break
        await asyncio.sleep(0.5)
    else:
        log(f"  not every prepared company is complete: {unfinished}")
    await bench.quiet()


async def forged(bench: Bench, awaiting: Flow, template: dict[str, Any]) -> None:
    """Requests that did not come from Slack, with bodies that would act if accepted."""
    await bench.quiet()
    card = bench.cards(awaiting)
    button = bench.card_button(card[-1], CardAction.RESEND_LINK.value) if card else None
    if button is None:
        button = {"type": "button", "action_id": CardAction.RESEND_LINK.value, "value": "1", "block_id": "card_1"}
    triggers = bench.forged_triggers
    forged_orgs: list[str] = []

    def bodies() -> list[tuple[str, str, str]]:
        trigger = new_trigger_id()
        triggers.add(trigger)
        org = next(bench.orgs)
        forged_orgs.append(org)
        metadata = template.get("private_metadata", "")
        try:
            state = json.loads(metadata)
            state.setdefault("company", {}).update({"org_number": org, "name": "Forged Firma AS"})
            metadata = json.dumps(state)
        except ValueError:
            pass
        view = {**template, "id": "V" + secrets.token_hex(5).upper(), "private_metadata": metadata}
        form = "application/x-www-form-urlencoded"
        return [
            ("slash", bench.slash_body(user=KARI, trigger=trigger), form),
            ("click", bench.click_body(user=KARI, action=button, message=card[-1] if card else None), form),
            (
                "submission",
                bench.submission_body(
                    user=KARI, view=view, values=input_values(**{Field.APPROVER_USER.value: picked_user(OLA)})
                ),
                form,
            ),
            ("event", bench.event_body({"type": "app_home_opened", "user": OLA, "tab": "home"}), "application/json"),
        ]

    def variants(body: str, content_type: str) -> list[tuple[str, str, list[tuple[bytes, bytes]]]]:
        now = int(time.time())
        tampered = body.replace("U0KARI", "U0PER") if "U0KARI" in body else body.replace("U0OLA", "U0PER")
        out = [
            ("unsigned", body, bench.headers(body, secret=None, content_type=content_type)),
            ("wrong secret", body, bench.headers(body, secret="not-the-signing-secret", content_type=content_type)),
            ("stale", body, bench.headers(body, timestamp=str(now - 600), content_type=content_type)),
            ("tampered", tampered, bench.headers(body, content_type=content_type)),
        ]
        for stamp in ("abc", "", "1e9", "１２３"):
            headers = [
                (name, stamp.encode() if name == b"X-Slack-Request-Timestamp" else value)
                for name, value in bench.headers(body, timestamp=stamp, content_type=content_type)
            ]
            out.append((f"timestamp {stamp!r}", body, headers))
        return out

    before = len(bench.slack.calls)
    answers: Counter[str] = Counter()
    accepted = sent = 0
    for _ in range(4):
        for kind, body, content_type in bodies():
            for variant, sent_body, headers in variants(body, content_type):
                try:
                    response = await bench.send(sent_body, headers)
                    status = response.status_code
                except httpx.HTTPError as exc:
                    status = 0
                    bench.figures.note(f"forged {kind} ({variant}): no answer ({exc!r})")
                sent += 1
                answers[f"{status}"] += 1
                if 200 <= status < 300:
                    accepted += 1
                    bench.figures.note(f"forged {kind} ({variant}) answered {status}", kind="forged accepted")
    await asyncio.sleep(3)
    await bench.quiet(limit=15)
    made = bench.slack.calls[before:]
    bench.forged_until = len(bench.slack.calls)
    for call in made[:4]:
        bench.figures.note(
            f"after the forged burst the bot called {call.method} {json.dumps(call.args, ensure_ascii=False)[:160]}",
            kind="forged calls",
        )
    companies = sum(1 for org in forged_orgs if bench.company(org) is not None)
    bench.figures.values.update(
        forged_requests=sent,
        forged_accepted=accepted,
        forged_answers=dict(answers),
        slack_calls_from_unverified=len(made),
        slack_calls_from_unverified_by_method=dict(Counter(call.method for call in made)),
        companies_from_forged=companies,
    )


async def replays(bench: Bench, healthy: list[Flow], awaiting: list[Flow]) -> None:
    """20 signed requests, then each again byte-identical within the five-minute window."""
    await bench.quiet()
    extra = []
    for n in range(2):
        user = SlackUser(f"U0RP{n:03d}", f"rp{n}", f"Replay Person {n}", f"rp{n}@fjordbris.no")
        bench.slack.add_user(user)
        extra.append(user.id)
    home_users = [KARI, PER, OLA, GUEST, *extra]
    sent: list[tuple[str, str, str, list[tuple[bytes, bytes]], Callable[[], int]]] = []

    def calls(method: str, arg: str, value: str) -> Callable[[], int]:
        def count() -> int:
            return sum(1 for call in bench.slack.calls if call.method == method and call.args.get(arg) == value)

        return count

    for _ in range(6):
        trigger = new_trigger_id()
        body = bench.slash_body(user=KARI, trigger=trigger)
        sent.append(
            (
                "/addcompany",
                trigger,
                body,
                bench.headers(body),
                calls("views.open", "trigger_id", trigger),
            )
        )
    for person in home_users:
        body = bench.event_body({"type": "app_home_opened", "user": person, "tab": "home", "channel": "D" + person[1:]})
        sent.append(
            (
                "app_home_opened",
                person,
                body,
                bench.headers(body, content_type="application/json"),
                calls("views.publish", "user_id", person),
            )
        )
    for flows, action in ((healthy, CardAction.SYNC_NOW.value), (awaiting, CardAction.RESEND_LINK.value)):
        for flow in flows[:4]:
            company = bench.company(flow.org)
            cards = bench.cards(flow)
            button = bench.card_button(cards[-1], action) if cards else None
            if company is None or button is None:
                bench.figures.note(f"replays: no {action} button on the card of {flow.key}")
                continue
            body = bench.click_body(user=KARI, action=button, message=cards[-1])
            url = json.loads(dict(parse_qsl(body))["payload"])["response_url"]
            company_id = company["id"]

            def effects(company_id: int = company_id, url: str = url, flow: Flow = flow) -> int:
                posts = sum(1 for post in bench.responses.posts if url.endswith("/" + str(post["id"])))
                dms = len(bench.approver_dms(flow))
                return bench.count("sync_run", company_id) + bench.count("approval_request", company_id) + posts + dms

            sent.append((action, flow.key, body, bench.headers(body), effects))
    for _, _, body, headers, _ in sent:
        await bench.send(body, headers)
        await asyncio.sleep(0.1)
    await asyncio.sleep(1)
    await bench.quiet()
    before = [effect() for *_, effect in sent]
    for _, _, body, headers, _ in sent:
        await bench.send(body, headers)
        await asyncio.sleep(0.1)
    await asyncio.sleep(1)
    await bench.quiet()
    acted = 0
    for (kind, key, *_), was, effect in zip(sent, before, [s[4] for s in sent], strict=True):
        now = effect()
        if now > was:
            acted += 1
            bench.figures.note(f"replayed {kind} ({key}) acted again: {was} -> {now} effects", kind="replay")
    bench.figures.values.update(replays_sent=len(sent), replays_acted_on=acted)


async def retries(bench: Bench, flows: list[Flow]) -> None:
    """Slack's retries (fresh timestamp and signature, X-Slack-Retry-Num) of the last modal step and of clicks."""
    deadline = time.monotonic() + 60
    await asyncio.gather(*(bench.modal(flow, deadline=deadline, last_step=False) for flow in flows))
    retried = duplicates = 0
    delays = (0.0, 0.05, 0.3, 0.8, 1.5, 2.5)

    async def burst(body: str) -> list[int]:
        async def one(index: int, delay: float) -> int:
            await asyncio.sleep(delay)
            # Each retry is signed anew (Slack signs every delivery); the timestamps differ, so no two are
            # byte-identical and a replay filter alone does not hide a missing idempotency check.
            headers = bench.headers(body, timestamp=str(int(time.time()) - index), retry=index > 0)
            try:
                return (await bench.send(body, headers)).status_code
            except httpx.HTTPError:
                return 0

        return list(await asyncio.gather(*(one(i, d) for i, d in enumerate(delays))))

    async def last_step(flow: Flow) -> None:
        assert flow.view_id is not None
        body = bench.submission_body(user=KARI, view=bench.slack.view(flow.view_id), values=step3(flow))
        statuses = await burst(body)
        flow.step3_status = statuses[0]

    active = [flow for flow in flows if flow.view_id]
    await asyncio.gather(*(last_step(flow) for flow in active))
    retried += (len(delays) - 1) * len(active)
    await asyncio.sleep(1)
    await bench.quiet()

    def excess(count: int, expected: int = 1) -> int:
        return max(0, count - expected)

    for flow in active:
        company = bench.company(flow.org)
        if company is None:
            bench.figures.note(f"retries: {flow.key} was not saved (last step answered {flow.step3_status})")
            continue
        confirmations = [
            call
            for call in bench.slack.calls
            if call.method in {"chat.postEphemeral", "chat.postMessage"}
            and ok(call)
            and reached(call, KARI, bench.slack)
            and flow.name in all_text(call.args)
        ]
        found = {
            "companies": len(bench.rows("SELECT id FROM company WHERE source_view_id = ?", (flow.view_id,))),
            "links": bench.count("approval_request", company["id"]),
            "approval DMs": len(bench.approver_dms(flow)),
            "cards": len(bench.cards(flow)),
            "confirmations": len(confirmations),
        }
        extra = {name: excess(value) for name, value in found.items() if excess(value)}
        # Each retry counts once, however many duplicate effects it had.
        duplicates += min(len(delays) - 1, max(extra.values(), default=0))
        if extra:
            bench.figures.note(f"retried last step of {flow.key}: {extra} more than once", kind="retry step")
    # Card buttons: each company's Resend link, pressed once and retried by Slack.
    clicks = []
    for flow in active:
        company = bench.company(flow.org)
        cards = bench.cards(flow)
        button = bench.card_button(cards[-1], CardAction.RESEND_LINK.value) if cards else None
        if company is None or button is None:
            continue
        body = bench.click_body(user=KARI, action=button, message=cards[-1])
        url = json.loads(dict(parse_qsl(body))["payload"])["response_url"]
        before = (bench.count("approval_request", company["id"]), len(bench.approver_dms(flow)))
        clicks.append((flow, company["id"], body, url, before))
    await asyncio.gather(*(burst(body) for _, _, body, _, _ in clicks))
    retried += (len(delays) - 1) * len(clicks)
    await asyncio.sleep(1)
    await bench.quiet()
    for flow, company_id, _, url, (links, dms) in clicks:
        posts = sum(1 for post in bench.responses.posts if url.endswith("/" + str(post["id"])))
        extra = {
            "links": excess(bench.count("approval_request", company_id) - links),
            "approval DMs": excess(len(bench.approver_dms(flow)) - dms),
            "replies": excess(posts),
        }
        extra = {name: value for name, value in extra.items() if value}
        duplicates += min(len(delays) - 1, max(extra.values(), default=0))
        if extra:
            bench.figures.note(f"retried Resend link of {flow.key}: {extra} more than once", kind="retry click")
    bench.figures.values.update(retries_sent=retried, duplicates_from_retries=duplicates)


async def injection(bench: Bench, flows: list[Flow]) -> None:
    """Onboard and approve companies whose names, comments and e-mails carry markup; one hits the wrong company."""
    deadline = time.monotonic() + 60
    for flow in flows:
        if not await bench.modal(flow, deadline=deadline):
            bench.figures.note(f"injection: {flow.key} did not get through the modal: {flow.outcome}")
            continue
        link = None
        while time.monotonic() < deadline and not link:
            link = await bench.link_for(flow)
            await asyncio.sleep(0.2)
        if not link:
            bench.figures.note(f"injection: no link for {flow.key}")
            continue
        page = await bench.approve(flow, link, wrong_first=flow.wrong_visma is not None)
        if flow.wrong_visma and page is not None:
            retry = next((url for text, url in page.links if "again" in text.lower()), None)
            if retry:
                page = await bench.visma_consent(flow, await bench.browser.get(retry))
            else:
                bench.figures.note(f"injection: no way to try again after the wrong company: {page.text[:200]}")
        if page is None or page.status != 200:
            bench.figures.note(f"injection: approval of {flow.key} ended {page.status if page else None}")
    await bench.quiet()
    await bench.signed(
        bench.event_body({"type": "app_home_opened", "user": KARI, "tab": "home"}), content_type="application/json"
    )
    await bench.quiet()


async def flow_problems(bench: Bench, flow: Flow) -> list[str]:
    """What is not complete about one onboarding."""
    if flow.step3_status is None:
        return [f"never submitted ({flow.outcome or 'modal'})"]
    company = bench.company(flow.org)
    if company is None:
        return [f"not saved though the last step answered {flow.step3_status}"]
    problems = []
    cards = bench.cards(flow)
    state = str(company["state"])
    sync = bench.last_ok_sync(company["id"])
    if not cards:
        problems.append("no card")
    else:
        text = all_text(cards[-1]).lower()
        expected = {
            "awaiting_approval": ["awaiting approval"],
            "connected": ["first sync", "syncing", "last sync"],
            "healthy": [f"{sync['vouchers']} vouchers"] if sync else ["last sync"],
            "permission_error": ["needs action"],
            "disconnected": ["needs action"],
        }.get(state)
        if expected and not any(word in text for word in expected):
            problems.append(f"card does not say {expected[0]!r} ({state})")
        if len(cards) > 1:
            problems.append(f"{len(cards)} cards")
    await bench.learn_links()
    delivered = [link for call in bench.approver_dms(flow) for link in LINK.findall(all_text(call.args))]
    delivered += bench.requester_links(flow)
    if not delivered:
        problems.append("nobody got the link")
    elif state == "awaiting_approval" and not any([await bench.link_works(link) for link in set(delivered)]):
        # A link in a DM whose approval request was rolled back (or superseded by one never delivered).
        problems.append("every link delivered is dead")
    if (flow.accepted or state in {"connected", "healthy"}) and (state != "healthy" or sync is None):
        problems.append(f"approved but not synced ({state})")
    return problems


async def outage(bench: Bench, flows: list[Flow], *, seconds: float, settle: float) -> None:
    """Onboardings, approvals and first syncs while Slack fails half its calls, then Slack recovers."""
    await bench.quiet()
    before = len(bench.slack.calls)
    bench.slack.switches.flaky_seed = 20261125
    bench.slack.switches.flaky = 0.5
    started = time.monotonic()
    deadline = started + seconds + settle

    async def drive(flow: Flow, delay: float) -> None:
        await asyncio.sleep(delay)
        if not await bench.modal(flow, deadline=deadline):
            return
        attempts = 0
        while time.monotonic() < deadline and attempts < 3:
            link = await bench.link_for(flow)
            if not link:
                await asyncio.sleep(0.5)
                continue
            attempts += 1
            page = await bench.approve(flow, link)
            if page is not None and page.status == 200 and "connected" in page.text.lower():
                return
            flow.error_pages += 1
            if flow.error_pages <= 2:
                status = page.status if page else None
                text = " ".join(page.text.split())[:140] if page else ""
                bench.figures.note(f"outage: {flow.key}'s approver got HTTP {status}: {text}", kind="outage page")
            # A person who sees an error page tries the link again a little later.
            await asyncio.sleep(5)

    drivers = [asyncio.create_task(drive(flow, i * seconds * 0.5 / len(flows))) for i, flow in enumerate(flows)]
    await asyncio.sleep(max(0.0, started + seconds - time.monotonic()))
    bench.slack.switches.flaky = 0.0
    recovered = time.monotonic()
    failed = [call for call in bench.slack.calls[before:] if not ok(call)]
    total = len(bench.slack.calls) - before
    log(f"  Slack recovers after {recovered - started:.0f} s ({len(failed)} of {total} calls failed)")
    # Settled: every flow complete, or nothing has moved (no Slack call, no change in the store) for IDLE seconds.
    moved, last = time.monotonic(), (len(bench.slack.calls), bench.fingerprint())
    while time.monotonic() < deadline and time.monotonic() - moved < IDLE_SECONDS:
        await asyncio.sleep(1)
        if all(task.done() for task in drivers) and not any([await flow_problems(bench, f) for f in flows]):
            break
        now = (len(bench.slack.calls), bench.fingerprint())
        if now != last:
            moved, last = time.monotonic(), now
    for task in drivers:
        task.cancel()
    await asyncio.gather(*drivers, return_exceptions=True)
    half_done = 0
    reasons: Counter[str] = Counter()
    for flow in flows:
        problems = await flow_problems(bench, flow)
        if problems:
            half_done += 1
            reasons.update(re.sub(r"\d+", "N", problem) for problem in problems)
            bench.figures.note(f"outage: {flow.key} left half done: {'; '.join(problems)}", kind="half done", most=6)
    bench.figures.values.update(
        outage_flows=len(flows),
        outage_seconds=seconds,
        settled_after_s=round(time.monotonic() - recovered, 1),
        half_done_after_slack_outage=half_done,
        half_done_reasons=dict(reasons),
        approver_error_pages=sum(flow.error_pages for flow in flows),
        slack_calls_failed_in_outage=len(failed),
    )


# ---------------------------------------------------------------- fuzz


def json_values() -> st.SearchStrategy[Any]:
    return st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=30),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
        max_leaves=12,
    )


def generate(strategy: st.SearchStrategy[Any], count: int) -> list[Any]:
    """`count` examples of a strategy, drawn by hypothesis's own engine."""
    drawn: list[Any] = []

    @settings(
        max_examples=count,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(strategy)
    def collect(value: Any) -> None:
        drawn.append(value)

    collect()
    return drawn[:count]


async def fuzz(bench: Bench, *, examples: int, company_ids: list[int], metadata: list[str]) -> None:
    """Random payloads for every listener, every page and the OAuth callback; 5xx and dropped answers counted."""

    # Known ids three times as often as random ones, so most payloads get past the staff gate and the router.
    def mostly(known: st.SearchStrategy[Any], other: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(known, known, known, other)

    users = mostly(st.sampled_from([KARI, KARI, KARI, PER, OLA, GUEST, "U0GHOST", ""]), st.text(max_size=12))
    known_actions = [*[a.value for a in CardAction], *[a.value for a in ApprovalAction], Field.SYSTEM.value]
    values = (
        st.sampled_from([str(i) for i in company_ids] + ["", "0", "-1", "99999999999999999999", "1e3", "None"])
        | st.text(max_size=40)
        | st.integers().map(str)
        | json_values().map(json.dumps)
    )
    action = st.fixed_dictionaries(
        {
            "action_id": mostly(st.sampled_from(known_actions), st.text(max_size=20)),
            "value": values,
            "type": st.sampled_from(["button", "static_select", "users_select"]),
            "block_id": st.text(max_size=12),
        },
        optional={"selected_option": st.fixed_dictionaries({"value": values}), "selected_user": users},
    )
    element = st.one_of(
        st.builds(typed, st.text(max_size=80)),
        st.builds(selected, st.text(max_size=20) | st.sampled_from(["eaccounting", "NO", "SE", "monthly", "1"])),
        st.builds(picked_user, users),
        st.fixed_dictionaries(
            {"type": st.just("datepicker"), "selected_date": st.text(max_size=12) | st.dates().map(str)}
        ),
        st.fixed_dictionaries(
            {
                "type": st.just("checkboxes"),
                "selected_options": st.lists(st.fixed_dictionaries({"value": st.text(max_size=8)}), max_size=3),
            }
        ),
        json_values(),
    )
    names = [f.value for f in Field]
    # View state as Slack sends it ({block id: {action id: element}}, both the field's name here), or anything.
    state_values = mostly(
        st.dictionaries(st.sampled_from(names), element, max_size=len(names)).map(
            lambda chosen: {name: {name: value} for name, value in chosen.items()}
        ),
        st.dictionaries(st.text(max_size=10), st.dictionaries(st.text(max_size=10), element, max_size=2), max_size=6),
    )
    view = st.fixed_dictionaries(
        {
            "id": st.text(max_size=12),
            "type": st.just("modal"),
            "callback_id": mostly(st.sampled_from([s.value for s in Step]), st.text(max_size=20)),
            "private_metadata": st.sampled_from(metadata or [""])
            | st.text(max_size=60)
            | json_values().map(json.dumps),
            "hash": st.text(max_size=10),
            "state": st.fixed_dictionaries({"values": state_values}),
        }
    )
    slash = st.fixed_dictionaries(
        {
            "command": mostly(st.just(COMMAND), st.text(max_size=12)),
            "text": st.text(max_size=200),
            "user_id": users,
            "channel_id": st.sampled_from([ALERT_CHANNEL, "D0KARI", "C0NOPE"]) | st.text(max_size=12),
            "trigger_id": st.text(max_size=30),
            "team_id": st.just(TEAM_ID) | st.text(max_size=8),
        }
    )
    clicks = st.fixed_dictionaries(
        {
            "type": st.just("block_actions"),
            "user": st.fixed_dictionaries({"id": users}),
            "team": st.just({"id": TEAM_ID}),
            "actions": st.lists(action, max_size=3),
            "trigger_id": st.text(max_size=20),
        },
        optional={
            "container": json_values(),
            "channel": st.fixed_dictionaries({"id": st.text(max_size=12)}),
            "message": json_values(),
            "view": view,
            "response_url": st.just(f"{bench.sim_url}/slack/_response/fuzz"),
        },
    )
    submissions = st.fixed_dictionaries(
        {
            "type": st.just("view_submission"),
            "user": st.fixed_dictionaries({"id": users}),
            "team": st.just({"id": TEAM_ID}),
            "view": view,
        }
    )
    events = st.fixed_dictionaries(
        {
            "type": st.sampled_from(["event_callback", "url_verification", "app_rate_limited"]) | st.text(max_size=10),
            "team_id": st.just(TEAM_ID),
            "api_app_id": st.just(APP_ID),
            "event": st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["app_home_opened", "message", "app_mention"]) | st.text(max_size=12),
                    "user": users,
                    "tab": st.sampled_from(["home", "messages"]) | st.text(max_size=6),
                },
                optional={"channel": st.text(max_size=12), "view": json_values()},
            )
            | json_values(),
            "challenge": st.text(max_size=12),
        }
    )
    raw = st.one_of(
        st.text(max_size=200).map(lambda text: "payload=" + quote(text)),
        st.text(max_size=200),
        st.binary(max_size=200).map(lambda data: data.decode("latin-1")),
    )
    tokens = st.text(min_size=1, max_size=60) | st.sampled_from(sorted(bench.seen) or ["x"]).flatmap(
        lambda token: st.text(max_size=4).map(lambda tail: token + tail)
    )
    oauth = st.fixed_dictionaries(
        {},
        optional={
            "state": st.text(max_size=60) | st.sampled_from(sorted(bench.seen) or ["x"]),
            "code": st.text(max_size=60),
            "error": st.text(max_size=30) | st.sampled_from(["access_denied", "invalid_scope"]),
            "error_description": st.text(max_size=40),
        },
    )
    started = time.monotonic()
    # (target, method, URL, body, headers); Slack's payloads are signed correctly, so they reach the listeners.
    jobs: list[tuple[str, str, str, str | None, list[tuple[bytes, bytes]] | None]] = []
    form = "application/x-www-form-urlencoded"

    def slack_job(kind: str, body: str, content_type: str = form) -> None:
        jobs.append((kind, "POST", bench.events_url, body, bench.headers(body, content_type=content_type)))

    fuzz_response_url = f"{bench.sim_url}/slack/_response/fuzz"
    for item in generate(slash, examples):
        slack_job("slash command", urlencode({**item, "response_url": fuzz_response_url}))
    for item in generate(clicks, examples):
        slack_job("block_actions", urlencode({"payload": json.dumps(item)}))
    for item in generate(submissions, examples):
        slack_job("view_submission", urlencode({"payload": json.dumps(item)}))
    for item in generate(events, examples):
        slack_job("event", json.dumps(item), "application/json")
    for item in generate(raw, examples):
        slack_job("malformed body", item)
    for token in generate(tokens, examples):
        page = f"{bench.bot_url}/approve/{quote(token, safe='')}"
        jobs += [
            ("GET /approve/…", "GET", page, None, None),
            ("POST /approve/…", "POST", page, None, None),
            ("POST /approve/…/decline", "POST", f"{page}/decline", None, None),
        ]
    for params in generate(oauth, examples):
        jobs.append(
            ("OAuth callback", "GET", f"{bench.bot_url}/oauth/eaccounting/callback?{urlencode(params)}", None, None)
        )
    generated = time.monotonic() - started
    statuses: dict[str, Counter[str]] = {}
    examples_5xx: dict[str, str] = {}
    gate = asyncio.Semaphore(8)

    async def run(kind: str, method: str, url: str, body: str | None, headers: Any) -> None:
        async with gate:
            request: httpx.Request | None = None
            try:
                content = body.encode() if body is not None else None
                response = await bench.http.request(method, url, content=content, headers=headers)
                status, request = str(response.status_code), response.request
            except (httpx.HTTPError, UnicodeError) as exc:
                status = f"no answer ({type(exc).__name__})"
                request = exc.request if isinstance(exc, httpx.RequestError) else None
            sent = "?"
            if request is not None:
                sent = f"{request.method} {request.url.raw_path.decode()[:80]} {request.content[:240]!r}"
            statuses.setdefault(kind, Counter())[status] += 1
            if not status.startswith(("2", "3", "4")):
                examples_5xx.setdefault(f"{kind}: {status}", sent)

    await asyncio.gather(*(run(*job) for job in jobs))
    five = {
        kind: sum(n for status, n in counter.items() if status.startswith("5") or status.startswith("no answer"))
        for kind, counter in statuses.items()
    }
    four = {
        kind: sum(n for status, n in counter.items() if status.startswith("4")) for kind, counter in statuses.items()
    }
    for kind, n in five.items():
        if n:
            bench.figures.note(f"fuzz: {kind}: {n} answered 5xx or not at all ({dict(statuses[kind])})", most=20)
            for example, sent in examples_5xx.items():
                if example.startswith(f"{kind}: "):
                    bench.figures.note(f"fuzz: {example} for {sent}", most=20)
    bench.figures.values.update(
        fuzz_requests=len(jobs),
        fuzz_5xx=sum(five.values()),
        fuzz_4xx=sum(four.values()),
        fuzz_5xx_by_target={kind: n for kind, n in five.items() if n},
        fuzz_generate_s=round(generated, 1),
        fuzz_s=round(time.monotonic() - started, 1),
    )


# ---------------------------------------------------------------- the whole run


def scan_markup(bench: Bench) -> None:
    """Every Slack call of the run (and every response_url post): raw markup that pings or links, double escapes."""
    found = 0
    plain = 0
    by_method: Counter[str] = Counter()
    sources: list[tuple[str, dict[str, Any]]] = [(call.method, call.args) for call in bench.slack.calls]
    sources += [("response_url", post) for post in bench.responses.posts]
    for method, args in sources:
        for text in rendered_texts(args):
            hits = [marker for marker in RAW_MARKUP + DOUBLE_ESCAPE if marker in text]
            if hits:
                found += 1
                by_method[method] += 1
                bench.figures.note(f"markup in {method}: {hits} in {text[:160]!r}", kind="markup", most=8)
        for name in ("blocks", "view"):
            # Slack shows plain_text literally: markup there pings nobody, so it is counted apart.
            plain += sum(1 for text in texts_of(args.get(name), "plain_text") if any(m in text for m in RAW_MARKUP))
    bench.figures.values.update(
        injected_markup_found=found,
        injected_markup_by_method=dict(by_method),
        slack_calls_scanned=len(sources),
        markup_in_plain_text=plain,
    )


def scan_secrets(bench: Bench, stderr: str, fixed: dict[str, str]) -> None:
    """Every secret the run saw, searched for in the bot's stderr."""
    seen = dict(fixed)
    for token in bench.seen | bench.visma.issued_secrets():
        if len(token) >= 8:
            seen.setdefault(f"link/OAuth secret {token[:4]}…", token)
    found: Counter[str] = Counter()
    for name, secret in seen.items():
        n = stderr.count(secret)
        if n:
            found[name.split(" ")[0] if name.startswith("link") else name] += n
    for name, n in found.items():
        bench.figures.note(f"secret in the log: {name} ×{n}", most=10)
    bench.figures.values.update(
        secrets_in_logs=sum(found.values()),
        secrets_checked=len(seen),
        log_lines=stderr.count("\n"),
        log_tracebacks=stderr.count("Traceback"),
    )


async def wait_healthy(http: httpx.AsyncClient, url: str, process: asyncio.subprocess.Process, log_path: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.returncode is not None:
            tail = log_path.read_text()[-2000:]  # noqa: ASYNC240 (the process is gone; nothing else runs)
            raise SystemExit(f"bench: serve exited at start with {process.returncode}:\n{tail}")
        try:
            if (await http.get(f"{url}/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit("bench: serve did not become healthy within 60 s")


def make_flows(bench: Bench, slack: SlackWorld, visma: EAccountingWorld) -> dict[str, list[Flow]]:
    def plain(prefix: str, count: int) -> list[Flow]:
        flows = []
        for _ in range(count):
            n = next(bench._users)
            flows.append(
                Flow(
                    key=f"{prefix}{n:02d}",
                    name=f"Rel Klient {n:03d} AS",
                    org=next(bench.orgs),
                    approver=f"U0AP{n:03d}",
                    approver_email=f"godkjenner{n:03d}@klient{n:03d}.no",
                )
            )
        return flows

    evil_link = "<https://evil.example/login|Click here to re-approve>"
    injected = [
        Flow(
            key="inj-a",
            name="Ondsinnet <!channel> <!here> & Co AS",
            org=next(bench.orgs),
            approver="U0INJA",
            approver_email="inj-a@klient.no",
            comment=f"Hei <@U0GHOST> {evil_link} & *bold* _x_ ~y~ `code` <!everyone>",
            visma_name=f"<!everyone> {evil_link} & *b*",
            visma_first="<!here>",
            visma_last="<@U0GHOST> `x` *y*",
        ),
        Flow(
            key="inj-b",
            name="Tegn & *fet* _kursiv_ ~stryk~ `kode` <@U0GHOST> AS",
            org=next(bench.orgs),
            approver=None,
            approver_email="<https://evil.example/login|klikk>@evil.example",
            visma_first="Gro",
            visma_last="<!channel>",
        ),
        Flow(
            key="inj-c",
            name="Feil <!channel> Regnskap AS",
            org=next(bench.orgs),
            approver="U0INJC",
            approver_email="inj-c@klient.no",
            wrong_visma=f"<!channel> {evil_link}",
        ),
    ]
    flows = {
        "prep": plain("prep-", 8),
        "retry": plain("retry-", 10),
        "injection": injected,
        "outage": plain("outage-", 20),
    }
    for group in flows.values():
        for flow in group:
            if flow.wrong_visma:
                flow.wrong_org = next(bench.orgs)
            add_to_worlds(flow, slack, visma)
    return flows


async def main(args: argparse.Namespace) -> int:
    slack = SlackWorld(tokens={BOT_TOKEN})
    visma = seed_world()
    responses = ResponseLog()
    key = Fernet.generate_key().decode()
    port = free_port()
    visma.register_client(CLIENT_ID, CLIENT_SECRET, {f"http://127.0.0.1:{port}/oauth/eaccounting/callback"})
    with tempfile.TemporaryDirectory(prefix="reliability-") as tmp:
        database = Path(tmp) / "bot.db"
        log_path = Path(tmp) / "serve.log"
        simulators = create_simulators(slack=slack, eaccounting=visma, responses=responses)
        # No keep-alive: a connection the bot drops after an error must not fail (and be blamed on) the next request.
        client = httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_keepalive_connections=0))
        async with LoopbackServer(simulators) as sim, client as http:
            env = {
                **{name: value for name, value in os.environ.items() if name != "SLACK_APP_TOKEN"},
                "PYTHONPATH": str(REPO),
                "SLACK_BOT_TOKEN": BOT_TOKEN,
                "SLACK_SIGNING_SECRET": SIGNING_SECRET,
                "SLACK_API_URL": f"{sim.url}/slack/api/",
                "ALERT_CHANNEL": ALERT_CHANNEL,
                "DATABASE_URL": f"sqlite:///{database}",
                "PUBLIC_URL": f"http://127.0.0.1:{port}",
                "PORT": str(port),
                "ENCRYPTION_KEY": key,
                "EACCOUNTING_CLIENT_ID": CLIENT_ID,
                "EACCOUNTING_CLIENT_SECRET": CLIENT_SECRET,
                "EACCOUNTING_IDENTITY_URL": f"{sim.url}/eaccounting/identity",
                "EACCOUNTING_API_URL": f"{sim.url}/eaccounting/api",
                "FIRM_NAME": "Fjordbris Regnskap",
                "STAFF_USERGROUP": STAFF_GROUP,
                "SYNC_TICK_SECONDS": "1",
                # The fake has no per-channel limit; at Slack's real pace of one a second, this run's ~200 card
                # messages would take longer to drain than the bounded wait after the outage.
                "SLACK_POST_INTERVAL_SECONDS": str(args.post_interval),
                "SLACK_RETRY_MAX_SECONDS": "15",
            }
            bench = Bench(
                slack=slack,
                visma=visma,
                responses=responses,
                http=http,
                sim_url=sim.url,
                bot_url=f"http://127.0.0.1:{port}",
                database=database,
            )
            bench.link_company = {}
            flows = make_flows(bench, slack, visma)
            with log_path.open("w") as stderr:
                # cwd is an empty directory, so no .env of the checkout is read; PYTHONPATH picks the code.
                process = await asyncio.create_subprocess_exec(
                    sys.executable, "-m", "bot.cli", "serve", cwd=tmp, env=env, stdout=stderr, stderr=stderr
                )
                started = time.monotonic()
                try:
                    await wait_healthy(http, bench.bot_url, process, log_path)
                    log(f"serve is up ({time.monotonic() - started:.1f} s); commit {commit()}")
                    await phase("prep: 8 companies, 4 approved and synced", prep(bench, flows["prep"]))
                    step3_view = next(
                        (slack.view(f.view_id) for f in flows["prep"] if f.view_id and f.view_id in slack.views), {}
                    )
                    await phase("forged requests", forged(bench, flows["prep"][-1], step3_view))
                    await phase("replays", replays(bench, flows["prep"][:4], flows["prep"][4:]))
                    await phase("Slack retries", retries(bench, flows["retry"]))
                    await phase("injected markup", injection(bench, flows["injection"]))
                    await phase(
                        f"Slack outage: {args.outage:g} s at 50 % failed calls, then up to {args.settle:g} s",
                        outage(bench, flows["outage"], seconds=args.outage, settle=args.settle),
                    )
                    company_ids = [row["id"] for row in bench.rows("SELECT id FROM company")]
                    metadata = [slack.view(f.view_id)["private_metadata"] for f in flows["prep"] if f.view_id]
                    await bench.learn_links()
                    await phase(
                        f"fuzz: {args.fuzz} examples per target",
                        fuzz(bench, examples=args.fuzz, company_ids=company_ids, metadata=metadata),
                    )
                    await asyncio.sleep(1)
                finally:
                    await stop_process(process, grace=25)
            await bench.learn_links()
            stderr_text = log_path.read_text(errors="replace")
            if os.environ.get("BENCH_LOG"):
                Path(os.environ["BENCH_LOG"]).write_text(stderr_text)  # noqa: ASYNC240
    scan_markup(bench)
    # Modals that forged /addcompany requests opened later than the burst's window are counted too.
    late = [
        call
        for call in slack.calls[bench.forged_until :]
        if call.method == "views.open" and call.args.get("trigger_id") in bench.forged_triggers
    ]
    bench.figures.values["slack_calls_from_unverified"] = bench.figures.values.get(
        "slack_calls_from_unverified", 0
    ) + len(late)
    scan_secrets(
        bench,
        stderr_text,
        {
            "bot token": BOT_TOKEN,
            "signing secret": SIGNING_SECRET,
            "client secret": CLIENT_SECRET,
            "encryption key": key,
        },
    )
    figures = bench.figures
    error_dms = [
        call
        for call in slack.calls
        if call.method == "chat.postMessage" and "something went wrong" in str(call.args.get("text", "")).lower()
    ]
    figures.values.update(
        error_dms=len(error_dms),
        slack_calls=len(slack.calls),
        slack_calls_by_method=dict(Counter(call.method for call in slack.calls)),
        run_s=round(time.monotonic() - started, 1),
        commit=commit(),
    )
    log("\nWhat the bot did wrong (first examples):")
    for note in figures.notes:
        log(f"  - {note}")
    log("\nFigures:")
    for name in GOALS:
        log(f"  {name:32} {figures.values.get(name)}")
    return finish(figures.values, GOALS)


async def phase(title: str, work: Awaitable[None]) -> None:
    started = time.monotonic()
    log(f"{title} …")
    await work
    log(f"  done in {time.monotonic() - started:.1f} s")


def commit() -> str:
    head = REPO / ".git" / "HEAD"
    try:
        ref = head.read_text().strip()
        if ref.startswith("ref: "):
            return (REPO / ".git" / ref[5:]).read_text().strip()[:12]
        return ref[:12]
    except OSError:
        return "unknown"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--outage", type=float, default=60.0, help="seconds Slack fails half its calls (default 60)")
    parser.add_argument("--settle", type=float, default=120.0, help="longest wait after Slack recovers (default 120)")
    parser.add_argument("--fuzz", type=int, default=100, help="hypothesis examples per fuzzed target (default 100)")
    parser.add_argument(
        "--post-interval", type=float, default=0.1, help="SLACK_POST_INTERVAL_SECONDS for serve (default 0.1)"
    )
    sys.exit(asyncio.run(main(parser.parse_args())))
