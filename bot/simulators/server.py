"""All simulators behind one loopback port, as `onboarding-bot simulate` and the demo run them."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
from typing import Any

from cryptography.fernet import Fernet
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from bot.simulators.business_nxt import BusinessNxtWorld, create_business_nxt_app, seed_business_nxt
from bot.simulators.console import Console, create_console_app
from bot.simulators.eaccounting import EAccountingWorld, create_api_app, create_identity_app, seed_world
from bot.simulators.serving import LoopbackServer
from bot.simulators.slack import STAFF_GROUP, SlackWorld, create_slack_app
from bot.simulators.visma_net import VismaNetWorld, create_visma_net_app, seed_visma_net


class ResponseLog:
    """What the bot posted to Slack's `response_url`s (ephemeral replies to buttons and commands)."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []

    async def receive(self, request: Request) -> Response:
        """Record one post, as Slack's response_url endpoint accepts it."""
        body = await request.body()
        try:
            payload = json.loads(body) if body else {}
        except ValueError:
            payload = {"raw": body.decode(errors="replace")}
        self.posts.append({"id": request.path_params["n"], **payload})
        return JSONResponse({"ok": True})


def create_simulators(
    *,
    slack: SlackWorld,
    eaccounting: EAccountingWorld,
    responses: ResponseLog,
    nxt: BusinessNxtWorld | None = None,
    visma_net: VismaNetWorld | None = None,
    console: Console | None = None,
) -> Starlette:
    """One ASGI app: /slack (Web API fake), /eaccounting/identity and /eaccounting/api, /nxt (Business NXT),
    /visma (Visma Connect at /visma/connect, the Visma.net ERP API at /visma/erp), /console (the local console)."""
    routes: list[BaseRoute] = [
        Route("/slack/_response/{n}", responses.receive, methods=["POST"]),
        Mount("/slack", app=create_slack_app(slack)),
        Mount("/eaccounting/identity", app=create_identity_app(eaccounting)),
        Mount("/eaccounting/api", app=create_api_app(eaccounting)),
    ]
    if nxt is not None:
        routes.append(Mount("/nxt", app=create_business_nxt_app(nxt)))
    if visma_net is not None:
        routes.append(Mount("/visma", app=create_visma_net_app(visma_net)))
    if console is not None:
        routes.append(Mount("/console", app=create_console_app(console)))
    return Starlette(routes=routes)


async def run_simulators(*, port: int, with_bot: bool = False, bot_port: int = 3000) -> int:
    """Serve the simulators until interrupted, printing the settings that point the bot at them (and, with
    `with_bot`, run the bot on `bot_port` with those settings). The console posts to the bot on `bot_port`."""
    slack = SlackWorld(tokens={"xoxb-simulated"})
    eaccounting = seed_world()
    public = f"http://127.0.0.1:{bot_port}"
    eaccounting.register_client("simulated-client", "simulated-secret", {f"{public}/oauth/eaccounting/callback"})
    visma = ("isv_simulated", "simulated-visma-secret")
    nxt = seed_business_nxt(client_id=visma[0])
    nxt.register_client(*visma)
    visma_net = seed_visma_net(
        client_id=visma[0], client_secret=visma[1], redirect_uris=(f"{public}/oauth/visma_erp/callback",)
    )
    console = Console(slack, events_url=f"{public}/slack/events", signing_secret="simulated-signing-secret")
    app = create_simulators(
        slack=slack, eaccounting=eaccounting, responses=ResponseLog(), nxt=nxt, visma_net=visma_net, console=console
    )
    async with LoopbackServer(app, port=port) as server:
        base = server.url
        # Everything `serve` needs, as it accepts it: paste into .env (the key and secret are for this run only).
        settings = {
            "SLACK_BOT_TOKEN": "xoxb-simulated",
            "SLACK_SIGNING_SECRET": "simulated-signing-secret",
            "SLACK_API_URL": f"{base}/slack/api/",
            "ALERT_CHANNEL": "C0ALERTS",
            "ENCRYPTION_KEY": Fernet.generate_key().decode(),
            "PUBLIC_URL": public,
            "FIRM_NAME": "Simulated Regnskap",
            "EACCOUNTING_IDENTITY_URL": f"{base}/eaccounting/identity",
            "EACCOUNTING_API_URL": f"{base}/eaccounting/api",
            "EACCOUNTING_CLIENT_ID": "simulated-client",
            "EACCOUNTING_CLIENT_SECRET": "simulated-secret",
            "VISMA_CLIENT_ID": visma[0],
            "VISMA_CLIENT_SECRET": visma[1],
            "VISMA_CONNECT_URL": f"{base}/visma",
            "VISMA_NET_API_URL": f"{base}/visma/erp",
            "BUSINESS_NXT_API_URL": f"{base}/nxt/api",
            "BUSINESS_NXT_TOKEN_URL": f"{base}/nxt/connect/token",
            "STAFF_USERGROUP": STAFF_GROUP,
            "PORT": str(bot_port),
        }
        print(
            "Simulators running. Point the bot at them with (a .env that serve accepts as it is):\n"
            + "".join(f"{name}={value}\n" for name, value in settings.items())
            + "Approver log-ins: ola@nordlysbakeri.no / demo (eAccounting), kari@havbris.no / demo (Visma ERP). "
            "Ctrl-C stops.",
            flush=True,
        )
        if with_bot:
            return await _run_bot(settings, console_url=f"{base}/console/")
        print(f"Console: {base}/console/ (it sends to the bot at {public}/slack/events)", flush=True)
        await asyncio.Event().wait()
    return 0


async def _run_bot(values: dict[str, str], *, console_url: str) -> int:
    """The bot itself on loopback with the printed settings and a fresh SQLite database, until interrupted."""
    from bot import doctor
    from bot.app import create_app
    from bot.settings import Settings

    with tempfile.TemporaryDirectory(prefix="onboarding-dev-") as folder:
        fields: dict[str, Any] = {name.lower(): value for name, value in values.items()}
        settings = Settings(**fields, database_url=f"sqlite:///{folder}/onboarding.db", _env_file=None)
        failed = await doctor.before_serve(settings, host="127.0.0.1")
        if failed is not None:
            print(f"onboarding-bot: cannot start the bot: {failed.name}: {failed.line}", file=sys.stderr)
            return 2
        async with LoopbackServer(create_app(settings), port=settings.port) as bot:
            print(
                f"Bot running at {bot.url} (Slack requests: {bot.url}/slack/events).\n"
                f"Console: {console_url} — pick who you are and type /addcompany.",
                flush=True,
            )
            await asyncio.Event().wait()
    return 0
