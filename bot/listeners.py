"""Listener wrapping shared by every flow: the work after `ack()` runs as a tracked background task.

Bolt answers Slack as soon as `ack()` is called and lets the listener go on in a task of its own. Running
that task through `Deps.background` means shutdown, the tests and the demo can wait for what a click set in
motion, while errors still reach Bolt's one error handler.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Coroutine
from typing import Any

from slack_bolt.context.async_context import AsyncBoltContext

from bot.runtime import Deps

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
        await task

    listener.__name__ = handler.__name__
    listener.__qualname__ = handler.__qualname__
    listener.__doc__ = handler.__doc__
    return listener
