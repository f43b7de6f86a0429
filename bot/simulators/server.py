"""All simulators behind one loopback port, as `onboarding-bot simulate` and the demo run them."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route

from bot.simulators.business_nxt import BusinessNxtWorld, create_business_nxt_app
from bot.simulators.eaccounting import EAccountingWorld, create_api_app, create_identity_app, seed_world
from bot.simulators.serving import LoopbackServer
from bot.simulators.slack import SlackWorld, create_slack_app
from bot.simulators.visma_net import VismaNetWorld, create_visma_net_app


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
) -> Starlette:
    """One ASGI app: /slack (Web API fake), /eaccounting/identity and /eaccounting/api, /nxt (Business NXT),
    /visma (Visma Connect at /visma/connect, the Visma.net ERP API at /visma/erp)."""
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
    return Starlette(routes=routes)


async def run_simulators(*, port: int) -> None:
    """Serve the simulators until interrupted, printing the settings that point the bot at them."""
    slack = SlackWorld(tokens={"xoxb-simulated"})
    eaccounting = seed_world()
    public = "http://127.0.0.1:3000"
    eaccounting.register_client("simulated-client", "simulated-secret", {f"{public}/oauth/eaccounting/callback"})
    app = create_simulators(slack=slack, eaccounting=eaccounting, responses=ResponseLog())
    async with LoopbackServer(app, port=port) as server:
        base = server.url
        print(
            "Simulators running. Point the bot at them with:\n"
            f"  SLACK_BOT_TOKEN=xoxb-simulated\n  SLACK_API_URL={base}/slack/api/\n"
            f"  EACCOUNTING_IDENTITY_URL={base}/eaccounting/identity\n"
            f"  EACCOUNTING_API_URL={base}/eaccounting/api\n"
            "  EACCOUNTING_CLIENT_ID=simulated-client\n  EACCOUNTING_CLIENT_SECRET=simulated-secret\n"
            f"  PUBLIC_URL={public}\n"
            "Approver log-in: ola@nordlysbakeri.no / demo. Ctrl-C stops.",
            flush=True,
        )
        await asyncio.Event().wait()
