"""A fake of the Slack Web API that answers like Slack and records every call.

A real `AsyncWebClient(base_url=".../slack/api/")` talks to it unchanged. Failures are switches: an
`ok: false` error for a method, HTTP 429 with Retry-After, a delay on every answer, or a flaky Slack that fails a
fraction of all calls in the ways Slack does (429, a 500 that is not JSON, `internal_error`, `fatal_error`).
The workspace has channels the bot is or is not a member of, a guest, and one user group of the firm's staff.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

TEAM_ID = "T0FJORD"
BOT_USER = "U0BOT"
STAFF_GROUP = "S0STAFF"
ALERT_CHANNEL = "C0ALERTS"


@dataclass
class SlackUser:
    """A member of the fake workspace."""

    id: str
    name: str
    real_name: str
    email: str
    tz: str = "Europe/Oslo"
    is_restricted: bool = False

    def as_api(self) -> dict[str, Any]:
        """The user object as users.info returns it."""
        return {
            "id": self.id,
            "team_id": TEAM_ID,
            "name": self.name,
            "real_name": self.real_name,
            "tz": self.tz,
            "is_bot": False,
            "deleted": False,
            "is_restricted": self.is_restricted,
            "is_ultra_restricted": False,
            "profile": {"real_name": self.real_name, "display_name": self.name, "email": self.email},
        }


@dataclass
class Call:
    """One recorded Web API call."""

    method: str
    args: dict[str, Any]
    time: float
    response: dict[str, Any] = field(default_factory=dict)
    status: int = 200


@dataclass
class SlackSwitches:
    """Failure modes, settable from Python or with POST /_sim/switches."""

    latency_ms: int = 0
    fail: dict[str, str] = field(default_factory=dict)
    rate_limit: dict[str, int] = field(default_factory=dict)
    rate_limit_times: int = 1
    # This fraction (0..1) of all calls but auth.test fail, picked by a generator seeded with flaky_seed.
    flaky: float = 0.0
    flaky_seed: int = 0


class SlackError(Exception):
    """An `ok: false` answer."""

    def __init__(self, error: str, **extra: Any) -> None:
        super().__init__(error)
        self.error = error
        self.extra = extra


class SlackWorld:
    """The fake workspace: users, channels, messages, views, and the log of calls."""

    def __init__(self, tokens: set[str]) -> None:
        self.tokens = set(tokens)
        self.switches = SlackSwitches()
        self.users: dict[str, SlackUser] = {}
        for user in (
            SlackUser("U0KARI", "kari", "Kari Nordmann", "kari@fjordbris.no"),
            SlackUser("U0OLA", "ola", "Ola Nordmann", "ola@nordlysbakeri.no"),
            SlackUser("U0PER", "per", "Per Hansen", "per@fjordbris.no"),
            SlackUser("U0GUEST", "gro", "Gro Gjest", "gro@klient.no", is_restricted=True),
        ):
            self.add_user(user)
        self.channels: set[str] = {ALERT_CHANNEL}
        # Channels the bot has been invited to; it can post only there (and in its DMs).
        self.bot_channels: set[str] = set(self.channels)
        # Members of a channel; a channel not listed here has every member of the workspace.
        self.channel_members: dict[str, set[str]] = {}
        self.usergroups: dict[str, list[str]] = {STAFF_GROUP: ["U0KARI", "U0PER"]}
        self.messages: dict[str, dict[str, dict[str, Any]]] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.home: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.expired_triggers: set[str] = set()
        self._ts = itertools.count(1)
        self._limited: dict[str, int] = {}
        self._flaky: tuple[int, random.Random] | None = None

    def add_user(self, user: SlackUser) -> None:
        """Add a member."""
        self.users[user.id] = user

    def add_channel(self, channel_id: str, *, bot_member: bool = True, members: set[str] | None = None) -> None:
        """Add a channel, with or without the bot in it (members: who else is in it; default everyone)."""
        self.channels.add(channel_id)
        if bot_member:
            self.bot_channels.add(channel_id)
        else:
            self.bot_channels.discard(channel_id)
        if members is not None:
            self.channel_members[channel_id] = set(members)

    def flaky_failure(self, method: str) -> tuple[int, dict[str, Any] | None] | None:
        """Whether the flaky switch fails this call: (HTTP status, JSON body or None for a non-JSON page)."""
        if method == "auth.test" or self.switches.flaky <= 0:
            return None
        if self._flaky is None or self._flaky[0] != self.switches.flaky_seed:
            self._flaky = (self.switches.flaky_seed, random.Random(self.switches.flaky_seed))
        rng = self._flaky[1]
        if rng.random() >= self.switches.flaky:
            return None
        return rng.choice(
            [
                (429, {"ok": False, "error": "ratelimited"}),
                (500, None),
                (200, {"ok": False, "error": "internal_error"}),
                (200, {"ok": False, "error": "fatal_error"}),
            ]
        )

    def dm_channel_for(self, user_id: str) -> str:
        """The DM channel id between the bot and a user."""
        return "D" + user_id.removeprefix("U")

    def expire_trigger(self, trigger_id: str) -> None:
        """Make views.open with this trigger answer expired_trigger_id."""
        self.expired_triggers.add(trigger_id)

    def calls_to(self, method: str) -> list[Call]:
        """Recorded calls of one method, oldest first."""
        return [call for call in self.calls if call.method == method]

    def current_messages(self, channel: str) -> list[dict[str, Any]]:
        """The latest version of each message in a channel, ordered by ts."""
        return [dict(message) for _, message in sorted(self.messages.get(channel, {}).items())]

    def last_view(self) -> dict[str, Any] | None:
        """The newest opened modal."""
        return dict(list(self.views.values())[-1]) if self.views else None

    def view(self, view_id: str) -> dict[str, Any]:
        """A modal by id, as it is now."""
        return dict(self.views[view_id])

    def replace_view(self, view_id: str, view: dict[str, Any]) -> dict[str, Any]:
        """Apply a new version of a modal (views.update, or `response_action: update`)."""
        current = self.views[view_id]
        updated = {**current, **view, "id": view_id, "hash": _hash(), "state": {"values": {}}}
        self.views[view_id] = updated
        return updated

    def _channel(self, channel: str) -> str:
        if channel.startswith("U") and channel in self.users:
            return self.dm_channel_for(channel)
        if channel in self.channels or (channel.startswith("D") and "U" + channel[1:] in self.users):
            return channel
        raise SlackError("channel_not_found")

    def _postable(self, channel: str) -> str:
        # Slack tells a channel the bot can see but is not in (not_in_channel) from one it cannot see at all.
        resolved = self._channel(channel)
        if resolved in self.channels and resolved not in self.bot_channels:
            raise SlackError("not_in_channel")
        return resolved

    def _in_channel(self, user: str, channel: str) -> bool:
        if channel.startswith("D"):
            return user in self.users and channel == self.dm_channel_for(user)
        members = self.channel_members.get(channel)
        return user in self.users and (members is None or user in members)

    def _next_ts(self) -> str:
        return f"{1764000000 + next(self._ts)}.000100"

    def answer(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        """Answer one method call (raises SlackError for ok: false)."""
        if method in self.switches.fail:
            raise SlackError(self.switches.fail[method])
        handler = getattr(self, "_m_" + method.replace(".", "_"), None)
        if handler is None:
            raise SlackError("unknown_method")
        result: dict[str, Any] = handler(args)
        return {"ok": True, **result}

    def _m_auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://fjordbris.slack.test/",
            "team": "Fjordbris Regnskap",
            "user": "onboarding",
            "team_id": TEAM_ID,
            "user_id": BOT_USER,
            "bot_id": "B0BOT",
            "is_enterprise_install": False,
        }

    def _check_view(self, view: Any) -> dict[str, Any]:
        if not isinstance(view, dict) or view.get("type") not in {"modal", "home"}:
            raise SlackError("invalid_arguments", response_metadata={"messages": ["[ERROR] invalid view type"]})
        title = (view.get("title") or {}).get("text", "")
        if len(title) > 24 or len(view.get("blocks", [])) > 100:
            raise SlackError(
                "invalid_arguments", response_metadata={"messages": ["[ERROR] title or blocks over Slack's limits"]}
            )
        return view

    def _m_views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger = args.get("trigger_id")
        if not trigger:
            raise SlackError("invalid_arguments")
        if trigger in self.expired_triggers:
            raise SlackError("expired_trigger_id")
        view = self._check_view(args.get("view"))
        view_id = "V" + uuid.uuid4().hex[:10].upper()
        stored = {
            **view,
            "id": view_id,
            "hash": _hash(),
            "team_id": TEAM_ID,
            "state": {"values": {}},
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
        }
        self.views[view_id] = stored
        return {"view": stored}

    def _m_views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._m_views_open(args)

    def _m_views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view_id = args.get("view_id")
        if view_id not in self.views:
            raise SlackError("not_found")
        if args.get("hash") and args["hash"] != self.views[view_id]["hash"]:
            raise SlackError("hash_conflict")
        return {"view": self.replace_view(view_id, self._check_view(args.get("view")))}

    def _m_views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        user = args.get("user_id", "")
        if user not in self.users:
            raise SlackError("user_not_found")
        self.home[user] = self._check_view(args.get("view"))
        return {"view": {**self.home[user], "id": "VHOME" + user}}

    def _m_chat_postMessage(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._postable(str(args.get("channel", "")))
        if not (args.get("text") or args.get("blocks")):
            raise SlackError("no_text")
        ts = self._next_ts()
        message = {
            "type": "message",
            "ts": ts,
            "user": BOT_USER,
            "text": args.get("text", ""),
            "blocks": args.get("blocks", []),
        }
        if args.get("thread_ts"):
            if args["thread_ts"] not in self.messages.get(channel, {}):
                raise SlackError("thread_not_found")
            message["thread_ts"] = args["thread_ts"]
        self.messages.setdefault(channel, {})[ts] = message
        return {"channel": channel, "ts": ts, "message": message}

    def _m_chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._postable(str(args.get("channel", "")))
        ts = str(args.get("ts", ""))
        message = self.messages.get(channel, {}).get(ts)
        if message is None:
            raise SlackError("message_not_found")
        message.update(
            {
                "text": args.get("text", message["text"]),
                "blocks": args.get("blocks", message["blocks"]),
                "edited": {"user": BOT_USER, "ts": self._next_ts()},
            }
        )
        return {"channel": channel, "ts": ts, "text": message["text"]}

    def _m_chat_postEphemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        # Where the bot is not a member Slack answers channel_not_found, not not_in_channel.
        channel = self._channel(str(args.get("channel", "")))
        if channel in self.channels and channel not in self.bot_channels:
            raise SlackError("channel_not_found")
        if not self._in_channel(str(args.get("user", "")), channel):
            raise SlackError("user_not_in_channel")
        return {"message_ts": self._next_ts()}

    def _m_chat_getPermalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args.get("channel", "")))
        ts = str(args.get("message_ts", ""))
        if ts not in self.messages.get(channel, {}):
            raise SlackError("message_not_found")
        return {
            "channel": channel,
            "permalink": f"https://fjordbris.slack.test/archives/{channel}/p{ts.replace('.', '')}",
        }

    def _m_conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = str(args.get("channel", ""))
        if channel not in self.channels:
            raise SlackError("channel_not_found")
        return {"channel": {"id": channel, "name": channel.lower(), "is_member": channel in self.bot_channels}}

    def _m_usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        members = self.usergroups.get(str(args.get("usergroup", "")))
        if members is None:
            raise SlackError("no_such_subteam")
        return {"users": list(members)}

    def _m_conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        users = [user for user in str(args.get("users", "")).split(",") if user]
        if len(users) != 1 or users[0] not in self.users:
            raise SlackError("user_not_found")
        return {"channel": {"id": self.dm_channel_for(users[0])}}

    def _m_users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = self.users.get(str(args.get("user", "")))
        if user is None:
            raise SlackError("user_not_found")
        return {"user": user.as_api()}

    def _m_users_lookupByEmail(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email", "")).lower()
        for user in self.users.values():
            if user.email == email:
                return {"user": user.as_api()}
        raise SlackError("users_not_found")


def _hash() -> str:
    return f"{int(time.time())}.{uuid.uuid4().hex[:8]}"


_JSON_FIELDS = ("blocks", "view", "attachments")


async def _args(request: Request) -> dict[str, Any]:
    body = await request.body()
    args: dict[str, Any] = dict(request.query_params)
    if request.headers.get("content-type", "").startswith("application/json") and body:
        args.update(json.loads(body))
    elif body:
        args.update(dict(parse_qsl(body.decode())))
    for name in _JSON_FIELDS:
        if isinstance(args.get(name), str):
            with contextlib.suppress(ValueError):
                args[name] = json.loads(args[name])
    return args


def create_slack_app(world: SlackWorld) -> Starlette:
    """The fake's ASGI app: /api/{method}, and /_sim/switches, /_sim/calls, /_sim/reset."""

    async def api(request: Request) -> Response:
        method = request.path_params["method"]
        arrived = time.monotonic()
        args = await _args(request)
        token = request.headers.get("authorization", "").removeprefix("Bearer ").strip() or args.pop("token", "")
        call = Call(method, {k: v for k, v in args.items() if k != "token"}, arrived)
        world.calls.append(call)
        if world.switches.latency_ms:
            await asyncio.sleep(world.switches.latency_ms / 1000)
        if method in world.switches.rate_limit and world._limited.get(method, 0) < world.switches.rate_limit_times:
            world._limited[method] = world._limited.get(method, 0) + 1
            call.response = {"ok": False, "error": "ratelimited"}
            return JSONResponse(
                call.response, status_code=429, headers={"Retry-After": str(world.switches.rate_limit[method])}
            )
        flaky = world.flaky_failure(method)
        if flaky is not None:
            # Nothing happens in the workspace: the call fails before Slack acts on it.
            call.status, body = flaky
            if body is None:
                call.response = {"ok": False, "error": "http_500"}
                return Response("<html><body>500 Internal Server Error</body></html>", 500, media_type="text/html")
            call.response = body
            headers = {"Retry-After": "1"} if call.status == 429 else None
            return JSONResponse(body, status_code=call.status, headers=headers)
        if not token:
            call.response = {"ok": False, "error": "not_authed"}
        elif token not in world.tokens:
            call.response = {"ok": False, "error": "invalid_auth"}
        else:
            try:
                call.response = world.answer(method, args)
            except SlackError as exc:
                call.response = {"ok": False, "error": exc.error, **exc.extra}
        return JSONResponse(call.response)

    async def switches(request: Request) -> Response:
        if request.method == "POST":
            for name, value in (await request.json()).items():
                setattr(world.switches, name, value)
            world._limited.clear()
        return JSONResponse(world.switches.__dict__)

    async def calls(request: Request) -> Response:
        return JSONResponse([call.__dict__ for call in world.calls])

    async def reset(request: Request) -> Response:
        world.messages.clear()
        world.views.clear()
        world.calls.clear()
        world.switches = SlackSwitches()
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/api/{method}", api, methods=["GET", "POST"]),
            Route("/_sim/switches", switches, methods=["GET", "POST"]),
            Route("/_sim/calls", calls, methods=["GET"]),
            Route("/_sim/reset", reset, methods=["POST"]),
        ]
    )
