"""The floor: a bare Bolt AsyncApp that only acks /addcompany and opens an empty modal.

Run by ack_latency.py as `python bench/bare_bolt.py PORT SLACK_API_URL SIGNING_SECRET BOT_TOKEN`.
"""

from __future__ import annotations

import sys
from typing import Any

import uvicorn
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.authorization import AuthorizeResult
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def build(slack_api_url: str, signing_secret: str, bot_token: str) -> Starlette:
    client = AsyncWebClient(token=bot_token, base_url=slack_api_url)
    result = AuthorizeResult(
        enterprise_id=None, team_id="T0FJORD", bot_token=bot_token, bot_user_id="U0BOT", bot_id="B0BOT"
    )

    async def authorize(**_: Any) -> AuthorizeResult:
        return result

    bolt = AsyncApp(client=client, signing_secret=signing_secret, authorize=authorize)

    @bolt.command("/addcompany")
    async def open_empty(ack: Any, body: dict[str, Any], client: AsyncWebClient) -> None:
        await ack()
        await client.views_open(
            trigger_id=body["trigger_id"],
            view={"type": "modal", "title": {"type": "plain_text", "text": "Empty"}, "blocks": []},
        )

    handler = AsyncSlackRequestHandler(bolt)

    async def events(request: Request) -> Response:
        return await handler.handle(request)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    return Starlette(routes=[Route("/slack/events", events, methods=["POST"]), Route("/healthz", healthz)])


if __name__ == "__main__":
    port, slack_api_url, secret, token = sys.argv[1:5]
    uvicorn.run(
        build(slack_api_url, secret, token), host="127.0.0.1", port=int(port), log_level="warning", access_log=False
    )
