"""The whole product on loopback: the simulators and the bot, each on its own port, wired by settings.

Used by `make demo`, the scenario tests and the benchmark, so all three go through the same real code paths:
signed HTTP into Bolt, the Slack Web API client, the Visma httpx clients, the store and the pages.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import httpx
from cryptography.fernet import Fernet
from starlette.applications import Starlette

from bot.app import create_app
from bot.connect import callback_path
from bot.domain.types import AccountingSystem, CompanyState, SyncStatus
from bot.runtime import Deps
from bot.services import outbox
from bot.settings import Settings
from bot.simulators.browser import FormBrowser
from bot.simulators.business_nxt import BusinessNxtWorld, seed_business_nxt
from bot.simulators.console import Console
from bot.simulators.eaccounting import READ_SCOPES, EAccountingWorld, SimCompany, seed_world
from bot.simulators.server import ResponseLog, create_simulators
from bot.simulators.serving import LoopbackServer, free_port
from bot.simulators.slack import SlackWorld
from bot.simulators.slack_requests import SlackSide
from bot.simulators.visma_net import VismaNetWorld, seed_visma_net
from bot.store.models import Company, Connection, SyncRun

SIGNING_SECRET = "demo-signing-secret-0123456789"
BOT_TOKEN = "xoxb-0000-fjordbris-demo-token"
CLIENT_ID = "fjordbris_onboarding"
CLIENT_SECRET = "demo-client-secret-do-not-use"
# The firm's Visma Connect client (Visma.net Financials, Business NXT, Visma ERP).
VISMA_CLIENT_ID = "isv_fjordbris_onboarding"
VISMA_CLIENT_SECRET = "demo-visma-connect-secret-do-not-use"
ALERT_CHANNEL = "C0ALERTS"


@dataclass
class Stack:
    """Handles on everything that runs."""

    settings: Settings
    app: Starlette
    bot_url: str
    simulators_url: str
    slack_world: SlackWorld
    eaccounting: EAccountingWorld
    nxt: BusinessNxtWorld
    visma_net: VismaNetWorld
    responses: ResponseLog
    slack: SlackSide
    browser: FormBrowser
    http: httpx.AsyncClient

    async def submit_view(
        self, *, user: str, view: Mapping[str, Any], values: Mapping[str, Any], retry_num: int | None = None
    ) -> dict[str, Any]:
        """Press a modal's submit button; applies `response_action: update` to the fake, as Slack would."""
        response = await self.slack.submit_view(user=user, view=view, values=values, retry_num=retry_num)
        if response.status_code != 200:
            raise RuntimeError(f"view submission answered HTTP {response.status_code}: {response.text[:200]}")
        body: dict[str, Any] = response.json() if response.content else {}
        if body.get("response_action") == "update":
            self.slack_world.replace_view(str(view["id"]), body["view"])
        return body

    async def settle(self) -> None:
        """Wait for what the last request set in motion, and for the outbox to reach Slack."""
        await self.app.state.deliverer.settle()

    @property
    def console_url(self) -> str:
        """The local console, sending to this stack's bot."""
        return f"{self.simulators_url}/console/"

    @property
    def deps(self) -> Deps:
        """The running bot's collaborators (to wait for its background work)."""
        deps: Deps = self.app.state.deps
        return deps

    async def connect_many(self, count: int, *, name: str, number: int) -> list[int]:
        """`count` eAccounting companies ("<name> 000" on), set up as if each had been approved and synced a
        while ago: in the simulator with no books, connected in the bot, their cards posted. Their ids."""
        now, vault = self.deps.clock(), self.deps.vault
        ids = []
        async with self.deps.store.session() as session:
            for index in range(count):
                sim_id = str(uuid.UUID(int=number + index))
                label, org_number = f"{name} {index:03d}", f"{number + index:09d}"
                self.eaccounting.companies[sim_id] = SimCompany(sim_id, label, org_number, "NO", "NOK")
                tokens = self.eaccounting.issue_tokens(sim_id, client_id=self.settings.eaccounting_client_id)
                company = Company(
                    name=label,
                    org_number=org_number,
                    country="NO",
                    system=AccountingSystem.EACCOUNTING,
                    state=CompanyState.HEALTHY,
                    state_since=now,
                    period_type="monthly",
                    fiscal_year_start_month=1,
                    reconciliation_start=date(now.year, 1, 1),
                    vat_frequency="bimonthly",
                    responsible_user_id="U0KARI",
                    requested_by="U0KARI",
                    created_at=now,
                )
                session.add(company)
                await session.flush()
                assert company.id is not None
                session.add(
                    Connection(
                        company_id=company.id,
                        system=AccountingSystem.EACCOUNTING,
                        external_company_id=sim_id,
                        access_token_sealed=vault.seal(tokens["access_token"]),
                        refresh_token_sealed=vault.seal(tokens["refresh_token"]),
                        access_expires_at=now + timedelta(hours=2),
                        scopes=" ".join(READ_SCOPES),
                        connected_by="Ola Nordmann",
                        connected_at=now,
                    )
                )
                # Synced before (once, with nothing in its books), as a company connected a while ago.
                session.add(
                    SyncRun(company_id=company.id, started_at=now, finished_at=now, status=SyncStatus.OK, actor="seed")
                )
                await outbox.card(session, company=company, now=now)
                ids.append(company.id)
            await session.commit()
        await self.settle()
        return ids


def stack_settings(*, database_url: str, bot_port: int, simulators_url: str, **overrides: Any) -> Settings:
    """Settings that point every outside URL at the simulators."""
    values: dict[str, Any] = {
        "slack_bot_token": BOT_TOKEN,
        "slack_signing_secret": SIGNING_SECRET,
        "slack_api_url": f"{simulators_url}/slack/api/",
        "alert_channel": ALERT_CHANNEL,
        "database_url": database_url,
        "public_url": f"http://127.0.0.1:{bot_port}",
        "port": bot_port,
        "encryption_key": Fernet.generate_key().decode(),
        "eaccounting_client_id": CLIENT_ID,
        "eaccounting_client_secret": CLIENT_SECRET,
        "eaccounting_identity_url": f"{simulators_url}/eaccounting/identity",
        "eaccounting_api_url": f"{simulators_url}/eaccounting/api",
        "visma_client_id": VISMA_CLIENT_ID,
        "visma_client_secret": VISMA_CLIENT_SECRET,
        "business_nxt_api_url": f"{simulators_url}/nxt/api",
        "visma_connect_url": f"{simulators_url}/visma",
        "visma_net_api_url": f"{simulators_url}/visma/erp",
        "business_nxt_token_url": f"{simulators_url}/nxt/connect/token",
        "firm_name": "Fjordbris Regnskap",
        "_env_file": None,
    }
    values.update(overrides)
    return Settings(**values)


@asynccontextmanager
async def running_stack(
    *,
    database_url: str,
    clock: Callable[[], datetime] | None = None,
    scheduler_seconds: int = 3600,
    **settings_overrides: Any,
) -> AsyncIterator[Stack]:
    """Start the simulators and the bot on free loopback ports; stop both when the block ends."""
    bot_port = free_port()
    slack_world = SlackWorld(tokens={BOT_TOKEN})
    eaccounting = seed_world()
    eaccounting.register_client(
        CLIENT_ID, CLIENT_SECRET, {f"http://127.0.0.1:{bot_port}/{callback_path('eaccounting')}"}
    )
    nxt = seed_business_nxt(client_id=VISMA_CLIENT_ID)
    nxt.register_client(VISMA_CLIENT_ID, VISMA_CLIENT_SECRET)
    visma_net = seed_visma_net(
        client_id=VISMA_CLIENT_ID,
        client_secret=VISMA_CLIENT_SECRET,
        redirect_uris=(f"http://127.0.0.1:{bot_port}/{callback_path('visma_erp')}",),
    )
    responses = ResponseLog()
    events_url = f"http://127.0.0.1:{bot_port}/slack/events"
    console = Console(slack_world, events_url=events_url, signing_secret=SIGNING_SECRET)
    simulators = create_simulators(
        slack=slack_world, eaccounting=eaccounting, responses=responses, nxt=nxt, visma_net=visma_net, console=console
    )
    async with LoopbackServer(simulators) as sim_server:
        settings = stack_settings(
            database_url=database_url, bot_port=bot_port, simulators_url=sim_server.url, **settings_overrides
        )
        app = create_app(settings, clock=clock, scheduler_seconds=scheduler_seconds)
        async with LoopbackServer(app, port=bot_port) as bot_server, httpx.AsyncClient(timeout=30) as http:
            yield Stack(
                settings=settings,
                app=app,
                bot_url=bot_server.url,
                simulators_url=sim_server.url,
                slack_world=slack_world,
                eaccounting=eaccounting,
                nxt=nxt,
                visma_net=visma_net,
                responses=responses,
                slack=SlackSide(
                    http,
                    events_url=f"{bot_server.url}/slack/events",
                    signing_secret=SIGNING_SECRET,
                    response_url_base=f"{sim_server.url}/slack/_response",
                ),
                browser=FormBrowser(http),
                http=http,
            )
