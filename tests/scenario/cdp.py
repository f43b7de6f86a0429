"""A small Chrome DevTools Protocol client: headless Chromium driven over its websocket with aiohttp.

Enough for the console test: navigate, evaluate JavaScript, wait for a condition, type and press keys, click
an element with the mouse. No browser test library is needed (their browser downloads are not available here).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp


def find_chromium() -> str | None:
    """The Chromium (or Chrome) binary on PATH, if any."""
    return shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


class CdpError(Exception):
    """The browser answered a command with an error, or a script threw."""


class Page:
    """One tab, attached over its own websocket."""

    def __init__(self, socket: aiohttp.ClientWebSocketResponse) -> None:
        self._socket = socket
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.exceptions: list[str] = []
        self._reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self._socket:
            if message.type != aiohttp.WSMsgType.TEXT:
                continue
            data = json.loads(message.data)
            waiter = self._waiting.pop(data.get("id", -1), None)
            if waiter is not None and not waiter.done():
                waiter.set_result(data)
            elif data.get("method") == "Runtime.exceptionThrown":
                details = data["params"]["exceptionDetails"]
                self.exceptions.append(str((details.get("exception") or {}).get("description") or details))
        for waiter in self._waiting.values():
            if not waiter.done():
                waiter.set_exception(CdpError("the browser closed the connection"))

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        """One protocol command; its result."""
        number = next(self._ids)
        waiter: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[number] = waiter
        await self._socket.send_json({"id": number, "method": method, "params": params})
        answer = await asyncio.wait_for(waiter, timeout=30)
        if "error" in answer:
            raise CdpError(f"{method}: {answer['error']}")
        result: dict[str, Any] = answer.get("result", {})
        return result

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression (promises awaited)."""
        result = await self.send("Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=True)
        if "exceptionDetails" in result:
            raise CdpError(f"{expression[:80]}: {result['exceptionDetails'].get('text')} {result.get('result')}")
        return result.get("result", {}).get("value")

    async def navigate(self, url: str) -> None:
        """Open a URL and wait until its document has loaded."""
        await self.send("Page.navigate", url=url)
        await self.wait_for("document.readyState === 'complete' && location.href !== 'about:blank'")

    async def wait_for(self, expression: str, *, seconds: float = 10.0) -> None:
        """Poll a JavaScript expression until it is truthy; fail with what the page shows."""
        deadline = asyncio.get_running_loop().time() + seconds
        while True:
            if await self.evaluate(f"Boolean({expression})"):
                return
            if asyncio.get_running_loop().time() > deadline:
                shown = await self.evaluate("document.body ? document.body.innerText : ''")
                raise AssertionError(f"timed out waiting for {expression!r}; the page shows:\n{shown}")
            await asyncio.sleep(0.1)

    async def click(self, selector: str) -> None:
        """Click the element's centre with the mouse, as a person would."""
        box = await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)}); if (!e) return null;"
            " e.scrollIntoView({block: 'center'}); const r = e.getBoundingClientRect();"
            " return {x: r.x + r.width / 2, y: r.y + r.height / 2}; })()"
        )
        if box is None:
            raise AssertionError(f"nothing on the page matches {selector}")
        for kind in ("mousePressed", "mouseReleased"):
            await self.send("Input.dispatchMouseEvent", type=kind, x=box["x"], y=box["y"], button="left", clickCount=1)

    async def type_into(self, selector: str, text: str) -> None:
        """Focus a field (clearing it) and type text into it."""
        await self.evaluate(
            f"(() => {{ const e = document.querySelector({json.dumps(selector)});"
            " e.focus(); if (e.select) e.select(); })()"
        )
        await self.send("Input.insertText", text=text)

    async def press_enter(self) -> None:
        """The Enter key, down and up."""
        key = {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "nativeVirtualKeyCode": 13}
        await self.send("Input.dispatchKeyEvent", type="keyDown", text="\r", **key)
        await self.send("Input.dispatchKeyEvent", type="keyUp", **key)

    async def close(self) -> None:
        """Stop reading (the browser's end closes the socket)."""
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


async def _devtools_port(profile: Path, process: asyncio.subprocess.Process) -> int:
    marker = profile / "DevToolsActivePort"
    for _ in range(300):
        if marker.exists():
            lines = marker.read_text().splitlines()
            if lines and lines[0].isdigit():
                return int(lines[0])
        if process.returncode is not None:
            raise CdpError(f"chromium exited with {process.returncode} before it listened")
        await asyncio.sleep(0.1)
    raise CdpError("chromium did not write DevToolsActivePort within 30 s")


@asynccontextmanager
async def chromium(binary: str, profile: Path) -> AsyncIterator[Page]:
    """Headless Chromium with a fresh profile; yields its first tab, and stops the browser afterwards."""
    process = await asyncio.create_subprocess_exec(
        binary,
        "--headless=new",
        "--remote-debugging-port=0",
        f"--user-data-dir={profile}",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-gpu",
        "--disable-extensions",
        "--no-sandbox",  # CI containers run as root, where Chromium's sandbox cannot start
        "--window-size=1280,900",
        "about:blank",
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        port = await _devtools_port(profile, process)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/json/list") as answer:
                targets = await answer.json()
            target = next(item for item in targets if item.get("type") == "page")
            async with session.ws_connect(target["webSocketDebuggerUrl"], max_msg_size=0) as socket:
                page = Page(socket)
                await page.send("Page.enable")
                await page.send("Runtime.enable")
                try:
                    yield page
                finally:
                    with contextlib.suppress(CdpError, asyncio.TimeoutError, ConnectionError):
                        await page.send("Browser.close")
                    await page.close()
    finally:
        if process.returncode is None:
            try:
                await asyncio.wait_for(process.wait(), timeout=10)
            except TimeoutError:
                process.kill()
                await process.wait()
