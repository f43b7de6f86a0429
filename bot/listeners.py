"""Listener wrapping shared by every flow: the work after `ack()` runs as a tracked background task.

Bolt answers Slack as soon as `ack()` is called and lets the listener go on in a task of its own. Running
that task through `Deps.background` means shutdown, the tests and the demo can wait for what a click set in
motion, while errors still reach Bolt's one error handler.
"""

from __future__ import annotations

import inspect
import logging
import time
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext
from slack_bolt.response import BoltResponse
from slack_sdk.errors import SlackApiError

from bot.runtime import Deps

log = logging.getLogger(__name__)
# What reading a payload of an unexpected shape raises (a missing key, a wrong type, a value we did not write).
MALFORMED = (KeyError, IndexError, TypeError, ValueError, AttributeError)

Listener = Callable[..., Coroutine[Any, Any, None]]


def tracked(handler: Listener) -> Listener:
    """Wrap a listener so that it runs as a tracked task; it receives the Bolt arguments it names."""
    wanted = inspect.getfullargspec(handler).args

    # Bolt passes each argument a listener names; this one names them all and hands on what `handler` wants.
    async def listener(
        ack: Any,
        body: dict[str, Any],
        context: AsyncBoltContext,
        client: Any,
        respond: Any,
        view: Any,
        event: Any,
        command: Any,
        action: Any,
        payload: Any,
        logger: Any,
    ) -> None:
        given = {
            "ack": ack,
            "body": body,
            "context": context,
            "client": client,
            "respond": respond,
            "view": view,
            "event": event,
            "command": command,
            "action": action,
            "payload": payload,
            "logger": logger,
        }
        deps: Deps = context["deps"]
        task = deps.background.spawn(
            handler(**{name: given[name] for name in wanted}), name=handler.__qualname__, log_errors=False
        )
        try:
            await task
        except Exception as exc:
            if ack.response is None and isinstance(exc, MALFORMED):
                # Slack never sends these shapes: a signed but malformed payload is acknowledged and dropped, in
                # one log line, rather than answered with a 500 and a traceback.
                log.warning("dropped a malformed %s payload (%s)", handler.__name__, type(exc).__name__)
                await ack()
                return
            if ack.response is None:
                raise  # before the acknowledgement: Bolt answers, and its error handler reports
            # After it: reported here. Raised into Bolt, it would lose the acknowledgement it already has and
            # answer Slack 404 after three seconds.
            await report(exc, body, respond)

    listener.__name__ = handler.__name__
    listener.__qualname__ = handler.__qualname__
    listener.__doc__ = handler.__doc__
    return listener


async def report(error: BaseException, body: dict[str, Any], respond: Any) -> None:
    """A listener failed: logged with a reference, and the person told where the request came from (its
    response_url) — never by DM to a user id named in the body."""
    reference = uuid.uuid4().hex[:8]
    if isinstance(error, SlackApiError):
        # Slack refusing a reply (a modal, an update) is Slack's trouble, not a bug: one line, no traceback.
        log.warning("Slack refused a reply: %s (ref %s)", error.response.get("error"), reference)
    else:
        log.error("listener failed (ref %s)", reference, exc_info=error)
    if body.get("response_url"):
        try:
            await respond(
                text=f"Sorry — something went wrong on our side. Reference {reference}.",
                response_type="ephemeral",
                replace_original=False,
            )
        except Exception as exc:  # the response_url may be gone; the log has it
            log.warning("could not tell the user about ref %s: %r", reference, exc)


class SeenRecently:
    """Interactions already taken (by trigger id), so a retry of a button press does its work once."""

    def __init__(self, *, seconds: float = 300.0, limit: int = 50_000) -> None:
        self._seconds = seconds
        self._limit = limit
        self._seen: OrderedDict[str, float] = OrderedDict()

    def first(self, key: str) -> bool:
        """True the first time `key` is seen within the window."""
        now = time.monotonic()
        while self._seen and (len(self._seen) >= self._limit or next(iter(self._seen.values())) < now):
            self._seen.popitem(last=False)
        if key in self._seen:
            return False
        self._seen[key] = now + self._seconds
        return True


def once(seen: SeenRecently) -> Callable[..., Awaitable[BoltResponse | None]]:
    """A Bolt middleware: a button press Slack sends again (X-Slack-Retry-Num, the same trigger id) is
    acknowledged and not acted on twice. Modal submissions are left to their own idempotency (the view id),
    since Slack takes the retry's answer to decide what the modal shows."""

    async def first_time_only(body: dict[str, Any], next: Callable[[], Awaitable[None]]) -> BoltResponse | None:
        if body.get("type") == "block_actions" and body.get("trigger_id"):
            action = (body.get("actions") or [{}])[0]
            key = f"{body['trigger_id']}:{action.get('action_id')}:{action.get('action_ts')}"
            if not seen.first(key):
                log.info("dropped a repeated button press (%s)", action.get("action_id"))
                return BoltResponse(status=200, body="")
        await next()
        return None

    return first_time_only
