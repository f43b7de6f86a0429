"""`onboarding-bot doctor`, and what `serve` checks before it starts: one line per finding, never a traceback.

Each check says what it looked at and, when something is wrong, what to do about it. `serve` runs the ones
without which it cannot work (the port, the database, the Slack token) and stops on the first failure with
that one line; `doctor` runs them all and prints every line.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from slack_sdk.errors import SlackApiError
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from bot.settings import Settings
from bot.store.engine import Store

TIMEOUT = 5.0


@dataclass(frozen=True, slots=True)
class Finding:
    """One check's result."""

    name: str
    ok: bool
    line: str

    def __str__(self) -> str:
        return f"{'ok ' if self.ok else 'BAD'} {self.name}: {self.line}"


Check = Callable[[Settings], Awaitable[Finding]]


async def port(settings: Settings, host: str = "127.0.0.1") -> Finding:
    """The HTTP port is free to listen on: nothing answers there, and it can be bound."""
    target = "127.0.0.1" if host in ("0.0.0.0", "") else host  # noqa: S104 (reading, not binding, all interfaces)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as knock:
        knock.settimeout(1.0)
        listening = knock.connect_ex((target, settings.port)) == 0
    if listening:
        return Finding("port", False, f"{settings.port} is in use: stop what listens there, or set PORT")
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, settings.port))
        except OSError as exc:
            return Finding("port", False, f"cannot listen on {host}:{settings.port} ({exc.strerror}): set PORT")
    return Finding("port", True, f"{settings.port} is free")


async def database(settings: Settings) -> Finding:
    """The database answers (the schema is brought up to date by serve itself)."""
    store = Store(settings.database_url)
    try:
        async with store.engine.connect() as connection:
            await asyncio.wait_for(connection.execute(text("SELECT 1")), TIMEOUT)
    except (SQLAlchemyError, OSError, TimeoutError) as exc:
        reason = str(getattr(exc, "orig", None) or exc).splitlines()[0][:160]
        return Finding("database", False, f"cannot reach DATABASE_URL ({reason}): check the URL and the server")
    finally:
        await store.close()
    return Finding("database", True, f"{store.engine.dialect.name} answers")


async def slack_token(settings: Settings) -> Finding:
    """The bot token is accepted by Slack."""
    client = AsyncWebClient(token=settings.slack_bot_token.get_secret_value(), base_url=str(settings.slack_api_url))
    try:
        answer = await asyncio.wait_for(client.auth_test(), TIMEOUT)
    except SlackApiError as exc:
        error = exc.response.get("error")
        return Finding("slack token", False, f"Slack refused SLACK_BOT_TOKEN ({error}): copy the Bot User OAuth Token")
    except Exception as exc:  # the Slack client's transport errors (aiohttp's), timeouts
        return Finding("slack token", False, f"cannot reach Slack at SLACK_API_URL ({type(exc).__name__})")
    return Finding("slack token", True, f"the bot is {answer.get('user')} in {answer.get('team')}")


async def alert_channel(settings: Settings) -> Finding:
    """The bot can post in ALERT_CHANNEL."""
    client = AsyncWebClient(token=settings.slack_bot_token.get_secret_value(), base_url=str(settings.slack_api_url))
    channel = settings.alert_channel
    try:
        info = await asyncio.wait_for(client.conversations_info(channel=channel), TIMEOUT)
    except SlackApiError as exc:
        error = exc.response.get("error")
        return Finding("alert channel", False, f"{channel}: {error}; check the ID, then /invite the bot there")
    except Exception as exc:
        return Finding("alert channel", False, f"cannot ask Slack about {channel} ({type(exc).__name__})")
    if not info["channel"].get("is_member", False):
        return Finding("alert channel", False, f"the bot is not in {channel}: type /invite @the bot's name there")
    return Finding("alert channel", True, f"the bot can post in {channel}")


def _visma_urls(settings: Settings) -> dict[str, str]:
    urls = {
        "EACCOUNTING_IDENTITY_URL": str(settings.eaccounting_identity_url),
        "EACCOUNTING_API_URL": str(settings.eaccounting_api_url),
    }
    if settings.visma_client_id:
        urls |= {
            "VISMA_CONNECT_URL": str(settings.visma_connect_url),
            "VISMA_NET_API_URL": str(settings.visma_net_api_url),
            "BUSINESS_NXT_API_URL": str(settings.business_nxt_api_url),
        }
    return urls


async def visma(settings: Settings) -> Finding:
    """Each Visma URL answers (any HTTP answer will do: this is about reaching it)."""
    unreachable = []
    async with httpx.AsyncClient(timeout=TIMEOUT) as http:
        for name, url in _visma_urls(settings).items():
            try:
                await http.get(url)
            except httpx.HTTPError as exc:
                unreachable.append(f"{name} ({type(exc).__name__})")
    if unreachable:
        return Finding("visma", False, "cannot reach " + ", ".join(unreachable))
    return Finding("visma", True, f"{len(_visma_urls(settings))} URLs answer")


async def before_serve(settings: Settings, *, host: str) -> Finding | None:
    """What `serve` cannot start without: the first failure, or None."""
    for finding in (await port(settings, host), await database(settings), await slack_token(settings)):
        if not finding.ok:
            return finding
    return None


async def run(settings: Settings) -> list[Finding]:
    """Every check, in order, whatever the others found (`doctor`)."""
    return [await check(settings) for check in (port, database, slack_token, alert_channel, visma)]
