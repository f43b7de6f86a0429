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
from starlette.responses import JSONResponse, PlainTextResponse, Response
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
    # The language the person uses Slack in; users.info returns it with include_locale=true.
    locale: str = "en-US"

    def as_api(self, *, include_locale: bool = False) -> dict[str, Any]:
        """The user object as users.info returns it."""
        locale = {"locale": self.locale} if include_locale else {}
        return {
            **locale,
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
    # The next this many POSTs of file bytes to an upload URL answer HTTP 500 (Slack's file service failing).
    upload_failures: int = 0


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
            SlackUser("U0OLA", "ola", "Ola Nordmann", "ola@nordlysbakeri.no", locale="nb-NO"),
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
        # Name and handle of each group for usergroups.list (a group not named here is listed by its id).
        self.usergroup_names: dict[str, tuple[str, str]] = {STAFF_GROUP: ("Fjordbris staff", "staff")}
        self.messages: dict[str, dict[str, dict[str, Any]]] = {}
        self.views: dict[str, dict[str, Any]] = {}
        self.home: dict[str, dict[str, Any]] = {}
        self.calls: list[Call] = []
        self.expired_triggers: set[str] = set()
        # Files by id, from files.getUploadURLExternal: their bytes once POSTed to the upload URL, and where
        # files.completeUploadExternal shared them.
        self.files: dict[str, dict[str, Any]] = {}
        # Where this fake was reached (set by each API request), for the upload URLs it hands out.
        self.url = ""
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

    def _m_usergroups_list(self, args: dict[str, Any]) -> dict[str, Any]:
        groups = []
        for group_id, members in self.usergroups.items():
            name, handle = self.usergroup_names.get(group_id, (group_id, group_id.lower()))
            groups.append(
                {
                    "id": group_id,
                    "team_id": TEAM_ID,
                    "name": name,
                    "handle": handle,
                    "date_delete": 0,
                    "user_count": len(members),
                }
            )
        return {"usergroups": groups}

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
        include_locale = str(args.get("include_locale", "")).lower() in {"1", "true"}
        return {"user": user.as_api(include_locale=include_locale)}

    def _m_users_lookupByEmail(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args.get("email", "")).lower()
        for user in self.users.values():
            if user.email == email:
                return {"user": user.as_api()}
        raise SlackError("users_not_found")

    def _m_files_getUploadURLExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        # Step 1 of files.uploadV2: a file id and a URL on Slack's file service to POST the bytes to.
        filename = str(args.get("filename") or "")
        length = str(args.get("length") or "")
        if not filename or not length.isdigit():
            raise SlackError("invalid_arguments")
        if int(length) == 0:
            raise SlackError("missing_argument")
        if len(str(args.get("alt_txt") or "")) > 1000:
            raise SlackError("alt_txt_too_large")
        file_id = "F" + uuid.uuid4().hex[:10].upper()
        self.files[file_id] = {
            "id": file_id,
            "name": filename,
            "length": int(length),
            "alt_txt": args.get("alt_txt"),
            "content": None,
            "shared": False,
            "created": int(time.time()),
        }
        return {"upload_url": f"{self.url}/upload/v1/{file_id}", "file_id": file_id}

    def receive_upload(self, file_id: str, data: bytes) -> tuple[int, str]:
        """Step 2: the bytes POSTed to an upload URL; Slack's file service answers in plain text."""
        file = self.files.get(file_id)
        if file is None or file["shared"]:
            return 404, "upload URL not found"
        if self.switches.upload_failures > 0:
            self.switches.upload_failures -= 1
            return 500, "upload failed"
        if len(data) != file["length"]:
            return 400, f"expected {file['length']} bytes, got {len(data)}"
        if str(file["name"]).lower().endswith(".png"):
            size = png_size(data)
            if size is None:
                return 400, "not a PNG image"
            file["original_w"], file["original_h"] = size
        file["content"] = data
        return 200, f"OK - {len(data)}"

    def _m_files_completeUploadExternal(self, args: dict[str, Any]) -> dict[str, Any]:
        # Step 3: the uploaded files are finished and, given a channel, shared there as one message.
        try:
            wanted = json.loads(args["files"]) if isinstance(args.get("files"), str) else args.get("files")
        except ValueError:
            raise SlackError("invalid_arguments") from None
        if not isinstance(wanted, list) or not wanted or not all(isinstance(f, dict) and f.get("id") for f in wanted):
            raise SlackError("invalid_arguments")
        files = [self.files.get(str(entry["id"])) for entry in wanted]
        ready = [file for file in files if file is not None and file["content"] is not None and not file["shared"]]
        if len(ready) != len(wanted):
            raise SlackError("file_not_found")
        targets = [str(args["channel_id"])] if args.get("channel_id") else []
        targets += [channel for channel in str(args.get("channels") or "").split(",") if channel]
        channels = [self._postable(channel) for channel in targets]
        thread_ts = str(args.get("thread_ts") or "")
        if thread_ts and (len(channels) != 1 or thread_ts not in self.messages.get(channels[0], {})):
            raise SlackError("invalid_arguments" if len(channels) != 1 else "thread_not_found")
        for file, entry in zip(ready, wanted, strict=True):
            file["title"] = str(entry.get("title") or file["name"])
            file["shared"] = True
        shown = [self._file_object(file) for file in ready]
        for channel in channels:
            ts = self._next_ts()
            comment = str(args.get("initial_comment") or "")
            message: dict[str, Any] = {
                "type": "message",
                "ts": ts,
                "user": BOT_USER,
                "text": comment,
                "blocks": [] if comment else (args.get("blocks") or []),
                "files": shown,
                "upload": True,
            }
            if thread_ts:
                message["thread_ts"] = thread_ts
            self.messages.setdefault(channel, {})[ts] = message
            for file in ready:
                file.setdefault("channels", []).append(channel)
        return {"files": shown}

    def _file_object(self, file: dict[str, Any]) -> dict[str, Any]:
        """A file as files.completeUploadExternal returns it (the fields a client reads)."""
        name = str(file["name"])
        png = name.lower().endswith(".png")
        shown = {
            "id": file["id"],
            "created": file["created"],
            "timestamp": file["created"],
            "name": name,
            "title": file.get("title", name),
            "mimetype": "image/png" if png else "application/octet-stream",
            "filetype": "png" if png else "binary",
            "pretty_type": "PNG" if png else "Binary",
            "user": BOT_USER,
            "user_team": TEAM_ID,
            "size": file["length"],
            "mode": "hosted",
            "is_external": False,
            "is_public": False,
            "url_private": f"https://files.fjordbris.slack.test/files-pri/{TEAM_ID}-{file['id']}/{name}",
            "permalink": f"https://fjordbris.slack.test/files/{BOT_USER}/{file['id']}/{name}",
            "alt_txt": file.get("alt_txt"),
        }
        if "original_w" in file:
            shown["original_w"], shown["original_h"] = file["original_w"], file["original_h"]
        return shown


_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def png_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG (from its IHDR chunk), or None when the bytes are not one."""
    if len(data) < 24 or not data.startswith(_PNG_SIGNATURE) or data[12:16] != b"IHDR":
        return None
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


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
    """The fake's ASGI app: /api/{method}, /upload/v1/{file_id} (the file service), and /_sim/switches,
    /_sim/calls, /_sim/reset."""

    async def api(request: Request) -> Response:
        method = request.path_params["method"]
        arrived = time.monotonic()
        args = await _args(request)
        world.url = str(request.url).rsplit("/api/", 1)[0]
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

    async def upload(request: Request) -> Response:
        # Slack's file service takes the raw bytes or a multipart form with the file in it.
        data = await request.body()
        if request.headers.get("content-type", "").startswith("multipart/form-data"):
            form = await request.form()
            uploaded = next((value for value in form.values() if not isinstance(value, str)), None)
            data = await uploaded.read() if uploaded is not None else b""
        status, text = world.receive_upload(request.path_params["file_id"], data)
        return PlainTextResponse(text, status_code=status)

    async def reset(request: Request) -> Response:
        world.messages.clear()
        world.files.clear()
        world.views.clear()
        world.calls.clear()
        world.switches = SlackSwitches()
        return JSONResponse({"ok": True})

    return Starlette(
        routes=[
            Route("/api/{method}", api, methods=["GET", "POST"]),
            Route("/upload/v1/{file_id}", upload, methods=["POST"]),
            Route("/_sim/switches", switches, methods=["GET", "POST"]),
            Route("/_sim/calls", calls, methods=["GET"]),
            Route("/_sim/reset", reset, methods=["POST"]),
        ]
    )
