"""Running an ASGI app on a free loopback port inside the current event loop (demo, tests, benchmark)."""

from __future__ import annotations

import asyncio
import random
import socket
from types import TracebackType
from typing import Literal

import uvicorn
from starlette.types import ASGIApp

# Ports are picked below Linux's default ephemeral range (32768-60999): a port the system hands out for "any
# free port" is one it may give the next outgoing connection before our server binds it, which made a busy test
# run fail now and then with "address already in use".
_QUIET_PORTS = range(20_000, 32_768)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (and that outgoing connections do not take)."""
    for _ in range(50):
        port = random.choice(_QUIET_PORTS)
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    with socket.socket() as probe:  # that range is crowded: any port the system offers
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class LoopbackServer:
    """`async with LoopbackServer(app) as server:` serves `app` at `server.url` until the block ends."""

    def __init__(self, app: ASGIApp, *, port: int | None = None, lifespan: Literal["auto", "on", "off"] = "on") -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, host="127.0.0.1", port=self.port, log_config=None, access_log=False, lifespan=lifespan, loop="asyncio"
        )
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> LoopbackServer:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()  # start-up failed: raise its error here
                raise RuntimeError(f"server on port {self.port} stopped during start-up")
            await asyncio.sleep(0.01)
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._server.should_exit = True
        if self._task is not None:
            await self._task
