"""The application factory: one ASGI app with Bolt, the approval pages, the OAuth callback and /healthz."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from slack_bolt.adapter.starlette.async_handler import AsyncSlackRequestHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import commands.addcompany
import commands.approval
import commands.card
import commands.firm
import commands.home
from bot import scheduler as sync_jobs
from bot.crypto import Vault
from bot.listeners import SeenRecently, once, report
from bot.runtime import BotIdentity, Deps
from bot.scheduler import build_scheduler
from bot.settings import Settings
from bot.store.engine import Store
from bot.sync.policy import RetryPolicy
from bot.visma import build_systems
from bot.web import pages
from bot.web.edge import SlackEdge
from commands.delivery import Deliverer
from commands.staff import StaffDirectory, gate

log = logging.getLogger(__name__)

FLOWS = (commands.addcompany, commands.approval, commands.card, commands.firm, commands.home)
SHUTDOWN_GRACE_SECONDS = 20
# Fewer, cheaper collections: a request allocates thousands of short-lived objects, and the default threshold
# (700) runs the collector dozens of times inside one burst.
GC_THRESHOLDS = (50_000, 20, 20)


def build_deps(
    settings: Settings, *, http: httpx.AsyncClient | None = None, clock: Callable[[], datetime] | None = None
) -> Deps:
    """Build the bot's collaborators from settings (nothing connects until used)."""
    slack = AsyncWebClient(
        token=settings.slack_bot_token.get_secret_value(),
        base_url=str(settings.slack_api_url),
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=2)],
    )
    timeout = httpx.Timeout(settings.visma_timeout_seconds, connect=min(5.0, settings.visma_timeout_seconds))
    # Enough connections that no run waits for one while holding a rate-limit slot (each run reads ahead).
    pool = httpx.Limits(max_connections=max(100, settings.sync_parallel * 3), max_keepalive_connections=100)
    http = http or httpx.AsyncClient(timeout=timeout, limits=pool)
    return Deps(
        settings=settings,
        store=Store(settings.database_url),
        vault=Vault(settings.encryption_key.get_secret_value()),
        slack=slack,
        http=http,
        systems=build_systems(settings, http),
        clock=clock or (lambda: datetime.now(UTC)),
        authorize=BotIdentity(slack),
        retry_policy=RetryPolicy(
            attempts=settings.visma_retry_attempts,
            initial=settings.visma_retry_initial_seconds,
            maximum=settings.visma_retry_max_seconds,
            rate_limited_wait=settings.visma_rate_limit_max_wait_seconds,
            timeout=settings.visma_timeout_seconds,
        ),
        run_lease=timedelta(seconds=settings.sync_run_lease_seconds),
    )


def build_bolt(deps: Deps, staff: StaffDirectory) -> AsyncApp:
    """The Bolt app with every flow registered, the deps middleware, the staff gate and the one error handler."""
    # Bolt builds each request's client from this one plus the token `authorize` returns; a tokenless twin of
    # deps.slack keeps Bolt from warning that its token would be ignored.
    template = AsyncWebClient(base_url=deps.slack.base_url, retry_handlers=deps.slack.retry_handlers)
    bolt = AsyncApp(
        client=template,
        signing_secret=deps.settings.slack_signing_secret.get_secret_value(),
        authorize=deps.authorize.bolt_authorize(),
        request_verification_enabled=True,
        ignoring_self_events_enabled=False,
    )

    @bolt.middleware
    async def inject_deps(context: AsyncBoltContext, next: Callable[[], Awaitable[None]]) -> None:
        context["deps"] = deps
        await next()

    bolt.middleware(once(SeenRecently()))
    bolt.middleware(gate(staff))

    @bolt.error
    async def tell_the_user(error: Exception, body: dict[str, Any], respond: AsyncRespond) -> None:
        # Only verified requests get here (the edge refuses the rest).
        await report(error, body, respond)

    for flow in FLOWS:
        flow.register(bolt)
    return bolt


async def check_alert_channel(deps: Deps) -> bool:
    """Say in one line, at start, when the bot cannot post in ALERT_CHANNEL (cards wait in the outbox)."""
    channel = deps.settings.alert_channel
    try:
        info = await deps.slack.conversations_info(channel=channel)
    except SlackApiError as exc:
        error = exc.response.get("error")
        log.warning(
            "cannot post in ALERT_CHANNEL %s (%s): check the channel ID, then /invite the bot there", channel, error
        )
        return False
    if not info["channel"].get("is_member", False):
        log.warning("the bot is not in ALERT_CHANNEL %s: type /invite @the bot's name in that channel", channel)
        return False
    return True


def create_app(
    settings: Settings,
    *,
    http: httpx.AsyncClient | None = None,
    clock: Callable[[], datetime] | None = None,
    scheduler_seconds: int | None = None,
    migrate: bool = True,
) -> Starlette:
    """The ASGI app `serve` runs; tests and the demo build it with their own settings and clock."""
    deps = build_deps(settings, http=http, clock=clock)
    staff = StaffDirectory(deps.slack, settings.staff_usergroup, store=deps.store)
    bolt = build_bolt(deps, staff)
    slack_handler = AsyncSlackRequestHandler(bolt)
    deliverer = Deliverer(deps)

    async def slack_events(request: Request) -> Response:
        return await slack_handler.handle(request)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"ok": True})

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Checks the bot token once at start and caches the bot's identity, so no request waits for it.
        await deps.authorize.warm()
        if migrate:
            # An empty or older database is brought up to date here, so a new user needs no extra step.
            await deps.store.migrate()
        # Runs that a crashed or killed process left behind are closed now; their companies resume.
        await sync_jobs.recover(deps)
        await check_alert_channel(deps)
        if settings.staff_usergroup is None:
            log.warning("STAFF_USERGROUP is not set: every member of the workspace can add and act on companies")
        await staff.warm()
        # What the outbox holds (from before a restart, too) goes out from here on.
        delivery = asyncio.create_task(deliverer.run(), name="outbox")
        scheduler = build_scheduler(deps, every_seconds=scheduler_seconds or settings.sync_tick_seconds)
        scheduler.start()
        socket = None
        if settings.slack_app_token is not None:
            from slack_bolt.adapter.socket_mode.async_handler import AsyncSocketModeHandler

            socket = AsyncSocketModeHandler(bolt, settings.slack_app_token.get_secret_value())
            await socket.connect_async()  # type: ignore[no-untyped-call]
        # Everything built so far lives as long as the process: move it out of the collector's way, so a
        # full collection during a burst of requests does not have to walk it (it showed as 70 ms ack spikes).
        gc.collect()
        gc.freeze()
        gc.set_threshold(*GC_THRESHOLDS)
        try:
            yield
        finally:
            if socket is not None:
                await socket.close_async()  # type: ignore[no-untyped-call]
            # Runs stop at their next page boundary with their checkpoints committed; the next start resumes.
            deps.stopping.set()
            scheduler.shutdown(wait=False)
            # Let work that a click set in motion finish, but do not hang a restart on a Slack or Visma outage.
            try:
                await asyncio.wait_for(deps.background.drain(), timeout=SHUTDOWN_GRACE_SECONDS)
            except TimeoutError:
                log.warning("shutting down with background work still running; cancelling it")
                await deps.background.cancel()
            # Undelivered messages stay in the outbox for the next start.
            deps.store.outbox_written.set()
            try:
                await asyncio.wait_for(delivery, timeout=SHUTDOWN_GRACE_SECONDS)
            except TimeoutError:
                log.warning("shutting down with Slack messages still going out; the next start delivers them")
            await deps.close_http()
            await deps.store.close()

    app = Starlette(
        # The edge comes first: a body size limit before anything parses, and Slack's signature checked (and
        # replays dropped) before Bolt, so nothing from an unverified request reaches a listener or Slack.
        middleware=[Middleware(SlackEdge, signing_secret=settings.slack_signing_secret.get_secret_value())],
        routes=[
            Route("/slack/events", slack_events, methods=["POST"]),
            Route("/healthz", healthz, methods=["GET"]),
            *pages.routes,
        ],
        exception_handlers={Exception: pages.server_error},
        lifespan=lifespan,
    )
    app.state.deps = deps
    app.state.bolt = bolt
    app.state.deliverer = deliverer
    app.state.staff = staff
    return app
