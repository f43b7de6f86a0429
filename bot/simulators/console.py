"""The local console: a small Slack in the browser, served by the Slack simulator at /console/.

A person picks who they are (the simulated workspace's members), types a slash command, fills the modals the
bot opens, clicks buttons, and watches the team channel, their DMs, what only they can see, and their App Home.
Whatever they do reaches the bot as Slack sends it: a signed POST to the bot's Slack request URL
(`slack_requests.SlackSide`), so the signature check and every listener run for real. Modals, messages and the
home tab are read back from the `SlackWorld` the bot writes to; the page polls `api/state` once a second.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Awaitable, Mapping
from pathlib import Path
from typing import Any

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from bot.simulators.slack import ALERT_CHANNEL, BOT_USER, STAFF_GROUP, SlackError, SlackWorld
from bot.simulators.slack_requests import APP_ID, TEAM_ID, SlackSide, new_trigger_id

ASSETS = Path(__file__).with_name("console")
_FILES = {"": "index.html", "console.js": "console.js", "console.css": "console.css"}
# The page loads nothing from elsewhere and runs only its own script: a name with markup stays text.
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
}
SHOWN_PRIVATE = 20
NOTE_SECONDS = 30.0
PENDING_SECONDS = 30.0


class BotUnreachable(Exception):
    """The bot did not answer at its Slack request URL."""


class Console:
    """Slack's side of the console: who triggered which modal, the modal stack and inline errors per person,
    and the replies only one person sees (slash command answers and `response_url` posts)."""

    def __init__(
        self,
        world: SlackWorld,
        *,
        events_url: str,
        signing_secret: str,
        channel: str = ALERT_CHANNEL,
        staff_group: str = STAFF_GROUP,
        timeout: float = 15.0,
    ) -> None:
        self.world = world
        self.events_url = events_url
        self.signing_secret = signing_secret
        self.channel = channel
        self.staff_group = staff_group
        self.timeout = timeout
        self._triggers: dict[str, str] = {}  # trigger id → the person whose action carried it
        self._calls_read = 0
        self._modals: dict[str, list[str]] = {}  # person → their open views, the top one last
        self._errors: dict[str, dict[str, str]] = {}  # view id → block id → message
        self._private: list[dict[str, Any]] = []
        self._notes: dict[str, list[tuple[float, str]]] = {}
        self._serial = itertools.count(1)

    # What the page shows.

    def state(self, user: str) -> dict[str, Any]:
        """Everything one person sees right now, as the page renders it."""
        self._follow_calls()
        world = self.world
        staff = set(world.usergroups.get(self.staff_group, []))
        users = [
            {"id": member.id, "name": member.real_name, "role": _role(member.id, member.is_restricted, staff)}
            for member in world.users.values()
        ]
        names = {member.id: member.real_name for member in world.users.values()} | {BOT_USER: "Onboarding"}
        return {
            "user": user,
            "users": users,
            "channels": sorted(world.channels),
            "names": names,
            "bot_url": self.events_url,
            "channel": {"id": self.channel, "messages": _threaded(world.current_messages(self.channel))},
            "dms": _threaded(world.current_messages(world.dm_channel_for(user))),
            "private": self._private_for(user),
            "home": world.home.get(user),
            "modal": self._modal(user),
            "notes": [text for at, text in self._notes.get(user, [])[-3:] if time.monotonic() - at < NOTE_SECONDS],
        }

    def _modal(self, user: str) -> dict[str, Any] | None:
        stack = self._modals.get(user, [])
        while stack and stack[-1] not in self.world.views:
            stack.pop()
        if not stack:
            return None
        return {"view": self.world.views[stack[-1]], "errors": self._errors.get(stack[-1], {}), "depth": len(stack)}

    def _private_for(self, user: str) -> list[dict[str, Any]]:
        shown = [entry for entry in self._private if entry["user"] == user]
        for call in self.world.calls_to("chat.postEphemeral"):
            if call.response.get("ok") and call.args.get("user") == user:
                shown.append(
                    {
                        "user": user,
                        "channel": call.args.get("channel"),
                        "text": str(call.args.get("text") or ""),
                        "blocks": _blocks(call.args.get("blocks")),
                        "at": call.time,
                    }
                )
        return sorted(shown, key=lambda entry: float(entry["at"]))[-SHOWN_PRIVATE:]

    def _follow_calls(self) -> None:
        """Give each modal the bot opened to the person whose action carried its trigger id."""
        calls = self.world.calls
        if self._calls_read > len(calls):  # the world was reset
            self._calls_read = 0
        for index in range(self._calls_read, len(calls)):
            call = calls[index]
            if not call.response and time.monotonic() - call.time < PENDING_SECONDS:
                # Still being answered (the latency switch): look again next time.
                self._calls_read = index
                return
            if call.method not in ("views.open", "views.push") or not call.response.get("ok"):
                continue
            user = self._triggers.get(str(call.args.get("trigger_id")))
            if user is None:
                continue
            view_id = str(call.response["view"]["id"])
            stack = self._modals.setdefault(user, [])
            if call.method == "views.open":
                stack.clear()
            stack.append(view_id)
        self._calls_read = len(calls)

    def note(self, user: str, text: str) -> None:
        """A line from the console itself (the bot did not answer, answered an error), shown for a while."""
        self._notes.setdefault(user, []).append((time.monotonic(), text))

    def answered_privately(self, user: str, payload: Mapping[str, Any], channel: str | None = None) -> None:
        """A reply only this person sees: a slash command's answer, or a post to a `response_url`."""
        if payload.get("delete_original"):
            return
        self._private.append(
            {
                "user": user,
                "channel": channel or self.channel,
                "text": str(payload.get("text") or ""),
                "blocks": _blocks(payload.get("blocks")),
                "at": time.monotonic(),
            }
        )

    # What the person does; each is sent to the bot as Slack sends it.

    def _side(self, http: httpx.AsyncClient, base: str, user: str) -> SlackSide:
        return SlackSide(
            http,
            events_url=self.events_url,
            signing_secret=self.signing_secret,
            response_url_base=f"{base}/respond/{user}/{next(self._serial)}",
        )

    async def _send(self, user: str, request: Awaitable[httpx.Response]) -> httpx.Response:
        try:
            response = await request
        except httpx.HTTPError as exc:
            self.note(user, f"The bot did not answer at {self.events_url} ({type(exc).__name__}). Is it running?")
            raise BotUnreachable(str(exc)) from None
        if response.status_code != 200:
            self.note(user, f"The bot answered HTTP {response.status_code}: {response.text[:200]}")
        return response

    async def command(self, http: httpx.AsyncClient, base: str, *, user: str, text: str) -> None:
        """A slash command typed in the team channel; its answer body is shown to that person only."""
        command, _, rest = text.strip().partition(" ")
        trigger = self._trigger(user)
        side = self._side(http, base, user)
        response = await self._send(
            user, side.slash(command=command, user=user, channel=self.channel, text=rest.strip(), trigger_id=trigger)
        )
        if response.status_code == 200 and response.content:
            if response.headers.get("content-type", "").startswith("application/json"):
                self.answered_privately(user, response.json())
            else:
                self.answered_privately(user, {"text": response.text})

    async def action(
        self,
        http: httpx.AsyncClient,
        base: str,
        *,
        user: str,
        action: Mapping[str, Any],
        view_id: str | None = None,
        home: bool = False,
        channel: str | None = None,
        ts: str | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> None:
        """A button, select or other element used in a modal, the home tab or a message (block_actions)."""
        payload = self._payload("block_actions", user)
        payload["actions"] = [{**action, "action_ts": f"{time.time():.6f}"}]
        view = self._view(user, view_id=view_id, home=home)
        if view is not None:
            payload["container"] = {"type": "view", "view_id": view["id"]}
            payload["view"] = {**view, "state": {"values": dict(values or {})}}
        elif channel:
            message = self.world.messages.get(channel, {}).get(ts or "")
            payload["channel"] = {"id": channel}
            payload["container"] = {
                "type": "message",
                "channel_id": channel,
                "message_ts": ts or "",
                "is_ephemeral": message is None,
            }
            payload["response_url"] = f"{base}/respond/{user}/{next(self._serial)}/1"
            if message is not None:
                payload["message"] = dict(message)
        await self._send(user, self._side(http, base, user).interaction(payload))

    async def submit(
        self, http: httpx.AsyncClient, base: str, *, user: str, view_id: str, values: Mapping[str, Any]
    ) -> str:
        """The modal's submit button; applies the answer's `response_action` as Slack does. Returns what
        happened: errors, update, push, clear or closed (or failed)."""
        view = self._view(user, view_id=view_id)
        if view is None:
            return "closed"
        side = self._side(http, base, user)
        response = await self._send(user, side.submit_view(user=user, view=view, values=values))
        if response.status_code != 200:
            return "failed"
        body: dict[str, Any] = response.json() if response.content else {}
        outcome = str(body.get("response_action") or "closed")
        stack = self._modals.setdefault(user, [])
        try:
            if outcome == "errors":
                self._errors[view_id] = {str(key): str(value) for key, value in (body.get("errors") or {}).items()}
            elif outcome == "update":
                self.world.replace_view(view_id, body["view"])
                self._errors.pop(view_id, None)
            elif outcome == "push":
                pushed = self.world.answer("views.open", {"trigger_id": new_trigger_id(), "view": body["view"]})
                stack.append(str(pushed["view"]["id"]))
            elif outcome == "clear":
                stack.clear()
            elif view_id in stack:
                stack.remove(view_id)
        except SlackError as exc:
            self.note(user, f"Slack refused the view the bot answered with: {exc.error}")
            return "failed"
        return outcome

    def close(self, user: str, view_id: str) -> None:
        """The modal's close button (no view_closed: none of the bot's modals asks for it)."""
        stack = self._modals.get(user, [])
        if view_id in stack:
            del stack[stack.index(view_id) :]

    async def suggest(
        self,
        http: httpx.AsyncClient,
        base: str,
        *,
        user: str,
        view_id: str,
        action_id: str,
        block_id: str,
        value: str,
        values: Mapping[str, Any] | None = None,
    ) -> list[dict[str, Any]]:
        """Options of an external select (block_suggestion), filtered by what is typed."""
        view = self._view(user, view_id=view_id)
        if view is None:
            return []
        payload = self._payload("block_suggestion", user)
        del payload["trigger_id"]
        payload.update(
            {
                "container": {"type": "view", "view_id": view_id},
                "action_id": action_id,
                "block_id": block_id,
                "value": value,
                "view": {**view, "state": {"values": dict(values or {})}},
            }
        )
        side = self._side(http, base, user)
        response = await self._send(user, side.interaction(payload))
        if response.status_code == 200 and not response.content:
            # The bot drops a byte-identical request as a replay; Slack's next one has a new timestamp.
            await asyncio.sleep(1.05 - time.time() % 1)
            response = await self._send(user, side.interaction(payload))
        if response.status_code != 200 or not response.content:
            return []
        body = response.json()
        options = list(body.get("options") or [])
        for group in body.get("option_groups") or []:
            options += group.get("options") or []
        return options

    async def home_opened(self, http: httpx.AsyncClient, base: str, *, user: str) -> None:
        """The person opens the bot's Home tab (app_home_opened)."""
        event = {
            "type": "app_home_opened",
            "user": user,
            "channel": self.world.dm_channel_for(user),
            "tab": "home",
            "event_ts": f"{time.time():.6f}",
        }
        await self._send(user, self._side(http, base, user).event(event))

    def _trigger(self, user: str) -> str:
        trigger = new_trigger_id()
        self._triggers[trigger] = user
        return trigger

    def _payload(self, kind: str, user: str) -> dict[str, Any]:
        return {
            "type": kind,
            "team": {"id": TEAM_ID, "domain": "fjordbris"},
            "user": {"id": user, "team_id": TEAM_ID, "username": self.world.users[user].name},
            "api_app_id": APP_ID,
            "trigger_id": self._trigger(user),
        }

    def _view(self, user: str, *, view_id: str | None, home: bool = False) -> dict[str, Any] | None:
        if home:
            published = self.world.home.get(user)
            return None if published is None else {**published, "id": "VHOME" + user, "type": "home"}
        if view_id and view_id in self._modals.get(user, []) and view_id in self.world.views:
            return self.world.view(view_id)
        return None


def _role(user: str, guest: bool, staff: set[str]) -> str:
    if guest:
        return "guest"
    return "staff" if user in staff else "client"


def _blocks(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _threaded(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Top-level messages, each with its thread's replies."""
    top: dict[str, dict[str, Any]] = {}
    for message in messages:
        parent = message.get("thread_ts")
        if parent and parent != message["ts"] and parent in top:
            top[parent]["replies"].append(message)
        else:
            top[message["ts"]] = {**message, "replies": []}
    return list(top.values())


def create_console_app(console: Console) -> Starlette:
    """The console's ASGI app (mounted at /console): the page, its JSON API, and the `response_url`s."""

    def base(request: Request) -> str:
        return str(request.base_url).rstrip("/") + str(request.scope.get("root_path", ""))

    async def asset(request: Request) -> Response:
        # Only the page's three files, by name: nothing else under the package is reachable.
        name = _FILES.get(request.path_params.get("name", ""))
        if name is None:
            return Response("not found", status_code=404)
        return FileResponse(ASSETS / name, headers=_HEADERS)

    async def person(request: Request) -> tuple[str, dict[str, Any]]:
        # JSON only: a form on another site cannot post here without a CORS preflight, which is refused.
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise _Refused(415, "send JSON")
        body = await request.json()
        if not isinstance(body, dict) or body.get("user") not in console.world.users:
            raise _Refused(400, "unknown user")
        return str(body["user"]), body

    async def api(request: Request) -> Response:
        try:
            if request.method == "GET":
                user = request.query_params.get("user", "")
                if user not in console.world.users:
                    raise _Refused(400, "unknown user")
                return JSONResponse(console.state(user), headers=_HEADERS)
            user, body = await person(request)
            answer = await _act(console, request.path_params["what"], base(request), user, body)
        except _Refused as refused:
            return JSONResponse({"error": refused.reason}, status_code=refused.status)
        except BotUnreachable:
            return JSONResponse({"error": f"the bot did not answer at {console.events_url}"}, status_code=502)
        return JSONResponse(answer)

    async def respond(request: Request) -> Response:
        user = request.path_params["user"]
        try:
            payload = await request.json()
        except ValueError:
            return JSONResponse({"ok": False, "error": "invalid_json"}, status_code=400)
        if user in console.world.users and isinstance(payload, dict):
            console.answered_privately(user, payload)
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/", asset, methods=["GET"]),
            Route("/{name:str}", asset, methods=["GET"]),
            Route("/api/state", api, methods=["GET"]),
            Route("/api/{what:str}", api, methods=["POST"]),
            Route("/respond/{user:str}/{serial:int}/{n:int}", respond, methods=["POST"]),
        ]
    )


class _Refused(Exception):
    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


async def _act(console: Console, what: str, base: str, user: str, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=console.timeout) as http:
        if what == "command":
            text = str(body.get("text") or "")
            if not text.startswith("/"):
                raise _Refused(400, "only slash commands reach the bot here, e.g. /addcompany")
            await console.command(http, base, user=user, text=text)
            return {"ok": True}
        if what == "action":
            action = body.get("action")
            if not isinstance(action, dict):
                raise _Refused(400, "no action")
            await console.action(
                http,
                base,
                user=user,
                action=action,
                view_id=body.get("view_id"),
                home=bool(body.get("home")),
                channel=body.get("channel"),
                ts=body.get("ts"),
                values=body.get("values") or {},
            )
            return {"ok": True}
        if what == "submit":
            outcome = await console.submit(
                http, base, user=user, view_id=str(body.get("view_id")), values=body.get("values") or {}
            )
            return {"ok": True, "outcome": outcome}
        if what == "close":
            console.close(user, str(body.get("view_id")))
            return {"ok": True}
        if what == "suggest":
            options = await console.suggest(
                http,
                base,
                user=user,
                view_id=str(body.get("view_id")),
                action_id=str(body.get("action_id")),
                block_id=str(body.get("block_id")),
                value=str(body.get("value") or ""),
                values=body.get("values") or {},
            )
            return {"ok": True, "options": options}
        if what == "home":
            await console.home_opened(http, base, user=user)
            return {"ok": True}
    raise _Refused(404, f"no such console action: {what}")
