"""Slack's side of the wire: signed slash commands, interactions and events, as Slack sends them to the bot.

The demo, the tests and the benchmark use it to act as staff and approvers would, against the real HTTP
endpoint, so the signature check and the ack timing are the real ones.
"""

from __future__ import annotations

import itertools
import json
import secrets
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

TEAM_ID = "T0FJORD"
APP_ID = "A0ONBOARD"


def new_trigger_id() -> str:
    """A trigger id shaped like Slack's."""
    return f"{secrets.randbelow(10**10)}.{secrets.randbelow(10**10)}.{secrets.token_hex(16)}"


def signed_headers(
    signing_secret: str, body: str, *, timestamp: int | None = None, content_type: str | None = None
) -> dict[str, str]:
    """The X-Slack-Signature headers for a body (timestamp defaults to now)."""
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=stamp, body=body)
    return {
        "X-Slack-Request-Timestamp": stamp,
        "X-Slack-Signature": signature or "",
        "Content-Type": content_type or "application/x-www-form-urlencoded",
    }


def input_values(**elements: Mapping[str, Any]) -> dict[str, Any]:
    """View state as Slack sends it, for inputs whose block id and action id are the same name."""
    return {name: {name: dict(element)} for name, element in elements.items()}


def selected(value: str) -> dict[str, Any]:
    """A static select's state."""
    return {"type": "static_select", "selected_option": {"value": value}}


def typed(value: str) -> dict[str, Any]:
    """A text input's state."""
    return {"type": "plain_text_input", "value": value}


def picked_user(user_id: str) -> dict[str, Any]:
    """A users select's state."""
    return {"type": "users_select", "selected_user": user_id}


def picked_channel(channel_id: str) -> dict[str, Any]:
    """A conversations select's state."""
    return {"type": "conversations_select", "selected_conversation": channel_id}


class SlackSide:
    """Sends what Slack would send when people use the app."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        events_url: str,
        signing_secret: str,
        response_url_base: str,
        team_id: str = TEAM_ID,
    ) -> None:
        self._http = http
        self._events_url = events_url
        self._secret = signing_secret
        self._response_base = response_url_base.rstrip("/")
        self._team = team_id
        self._counter = itertools.count(1)

    def _response_url(self) -> str:
        return f"{self._response_base}/{next(self._counter)}"

    async def post(
        self,
        body: str,
        *,
        retry_num: int | None = None,
        timestamp: int | None = None,
        content_type: str | None = None,
    ) -> httpx.Response:
        """POST a raw body, signed, to the bot's endpoint."""
        headers = signed_headers(self._secret, body, timestamp=timestamp, content_type=content_type)
        if retry_num is not None:
            headers["X-Slack-Retry-Num"] = str(retry_num)
            headers["X-Slack-Retry-Reason"] = "http_timeout"
        return await self._http.post(self._events_url, content=body.encode(), headers=headers)

    def slash_body(
        self, *, command: str, user: str, channel: str, text: str = "", trigger_id: str | None = None
    ) -> str:
        """The form body of a slash command."""
        return urlencode(
            {
                "token": "legacy-verification-token-unused",
                "team_id": self._team,
                "team_domain": "fjordbris",
                "channel_id": channel,
                "channel_name": "onboarding",
                "user_id": user,
                "user_name": user.lower(),
                "command": command,
                "text": text,
                "api_app_id": APP_ID,
                "is_enterprise_install": "false",
                "response_url": self._response_url(),
                "trigger_id": trigger_id or new_trigger_id(),
            }
        )

    async def slash(
        self, *, command: str, user: str, channel: str, text: str = "", trigger_id: str | None = None
    ) -> httpx.Response:
        """A person types a slash command."""
        return await self.post(
            self.slash_body(command=command, user=user, channel=channel, text=text, trigger_id=trigger_id)
        )

    async def interaction(self, payload: Mapping[str, Any], *, retry_num: int | None = None) -> httpx.Response:
        """Any interactive payload (block_actions, view_submission), form-encoded as Slack does."""
        return await self.post(urlencode({"payload": json.dumps(payload)}), retry_num=retry_num)

    async def submit_view(
        self, *, user: str, view: Mapping[str, Any], values: Mapping[str, Any], retry_num: int | None = None
    ) -> httpx.Response:
        """A person presses the modal's submit button with these input values."""
        submitted = {**view, "state": {"values": dict(values)}}
        return await self.interaction(
            {
                "type": "view_submission",
                "team": {"id": self._team, "domain": "fjordbris"},
                "user": {"id": user, "team_id": self._team},
                "api_app_id": APP_ID,
                "trigger_id": new_trigger_id(),
                "view": submitted,
                "response_urls": [],
            },
            retry_num=retry_num,
        )

    async def click(
        self,
        *,
        user: str,
        action: Mapping[str, Any],
        view: Mapping[str, Any] | None = None,
        channel: str | None = None,
        message: Mapping[str, Any] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """A person uses an interactive element in a modal or a message."""
        payload: dict[str, Any] = {
            "type": "block_actions",
            "team": {"id": self._team, "domain": "fjordbris"},
            "user": {"id": user, "team_id": self._team},
            "api_app_id": APP_ID,
            "trigger_id": new_trigger_id(),
            "actions": [{"action_ts": f"{time.time():.6f}", **action}],
        }
        if view is not None:
            payload["container"] = {"type": "view", "view_id": view["id"]}
            payload["view"] = {**view, "state": {"values": dict(values or {})}}
        if channel is not None:
            payload["channel"] = {"id": channel}
            payload["response_url"] = self._response_url()
            payload["container"] = {
                "type": "message",
                "channel_id": channel,
                "message_ts": (message or {}).get("ts", ""),
            }
            if message is not None:
                payload["message"] = dict(message)
        return await self.interaction(payload)

    async def event(self, event: Mapping[str, Any], *, retry_num: int | None = None) -> httpx.Response:
        """An Events API callback (app_home_opened and friends)."""
        body = json.dumps(
            {
                "token": "legacy-verification-token-unused",
                "team_id": self._team,
                "api_app_id": APP_ID,
                "type": "event_callback",
                "event_id": f"Ev{secrets.token_hex(5).upper()}",
                "event_time": int(time.time()),
                "event": dict(event),
            }
        )
        return await self.post(body, retry_num=retry_num, content_type="application/json")
