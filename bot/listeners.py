"""Listener wrapping shared by every flow: the work after `ack()` runs as a tracked background task.

Bolt answers Slack as soon as `ack()` is called and lets the listener go on in a task of its own. Running
that task through `Deps.background` means shutdown, the tests and the demo can wait for what a click set in
motion, while errors still reach Bolt's one error handler.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext

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
        except MALFORMED as exc:
            if ack.response is not None:
                raise  # after the acknowledgement: a real failure, for the error handler
            # Slack never sends these shapes: a signed but malformed payload is acknowledged and dropped, in one
            # log line, rather than answered with a 500 and a traceback.
            log.warning("dropped a malformed %s payload (%s)", handler.__name__, type(exc).__name__)
            await ack()

    listener.__name__ = handler.__name__
    listener.__qualname__ = handler.__qualname__
    listener.__doc__ = handler.__doc__
    return listener
