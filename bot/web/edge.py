"""The hard edge in front of the app: body limits, Slack signatures, replays and malformed payloads.

`SlackEdge` is plain ASGI and runs before Starlette or Bolt parse a byte. Every HTTP request gets a body limit;
a POST to a Slack path must also be signed by Slack, not seen before, and shaped as Bolt expects. A refused
request never reaches the wrapped app and writes one WARNING line to `bot.edge` (never the body or a header).
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Collection
from urllib.parse import parse_qsl

from slack_sdk.signature import SignatureVerifier
from starlette.datastructures import Headers
from starlette.responses import PlainTextResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.logs import escape_controls, redact

log = logging.getLogger("bot.edge")

MAX_SEEN_SIGNATURES = 100_000
_LOGGED_CHARS = 200
_FORM = "application/x-www-form-urlencoded"
_JSON = "application/json"


class _Refused(Exception):
    """A request the edge answers itself, with a status and a short reason that is safe to log."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


class _Replayed(Exception):
    """A correctly signed request whose signature was already seen: dropped with an empty 200."""


class _Disconnected(Exception):
    """The client went away before sending its whole body; there is no one left to answer."""


class _RecentSignatures:
    """Verified signatures until their timestamp leaves the replay window, at most `limit` of them."""

    def __init__(self, limit: int) -> None:
        self._expiry: OrderedDict[str, float] = OrderedDict()
        self._limit = limit

    def __len__(self) -> int:
        return len(self._expiry)

    def add(self, signature: str, *, expires: float, now: float) -> bool:
        """Remember a signature; False when it is already remembered (a replay)."""
        self._forget_expired(now)
        if signature in self._expiry:
            return False
        if len(self._expiry) >= self._limit:
            self._expiry.popitem(last=False)
        self._expiry[signature] = expires
        return True

    def _forget_expired(self, now: float) -> None:
        # Insertion order is nearly expiry order (timestamps may differ from arrival by the window); an entry
        # left behind a younger one is dropped a little late, and the limit bounds it regardless.
        while self._expiry and next(iter(self._expiry.values())) < now:
            self._expiry.popitem(last=False)


class SlackEdge:
    """ASGI middleware: a body limit on every request, and Slack's signature, replay and shape checks."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        signing_secret: str,
        slack_paths: Collection[str] = ("/slack/events",),
        max_body: int = 1_000_000,
        replay_window: float = 300.0,
        clock: Callable[[], float] = time.time,
        max_seen: int = MAX_SEEN_SIGNATURES,
    ) -> None:
        self.app = app
        self.slack_paths = frozenset(slack_paths)
        self.max_body = max_body
        self.replay_window = replay_window
        self.passed = 0
        self.rejected = 0
        self.replays = 0
        self.reasons: Counter[str] = Counter()
        self._clock = clock
        self._verifier = SignatureVerifier(signing_secret)
        self._seen = _RecentSignatures(max_seen)

    @property
    def remembered(self) -> int:
        """How many verified signatures are held for replay detection."""
        return len(self._seen)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Check the request, then hand it on with its body replayed, or answer it here."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            body = await self._admit(scope, receive)
        except _Disconnected:
            return
        except _Refused as refusal:
            self.rejected += 1
            self._log(scope, refusal.status, refusal.reason)
            await PlainTextResponse(refusal.reason, status_code=refusal.status)(scope, receive, send)
            return
        except _Replayed:
            # A replay of something Slack sent: the original was answered, so this one is acknowledged unread.
            self.replays += 1
            self._log(scope, 200, "replayed signature")
            await Response(status_code=200)(scope, receive, send)
            return
        self.passed += 1
        await self.app(scope, _replaying(body, receive), send)

    async def _admit(self, scope: Scope, receive: Receive) -> bytes:
        """The request's body when it may pass; raises `_Refused` or `_Replayed` otherwise."""
        headers = Headers(scope=scope)
        declared = _declared_length(headers)
        if declared is not None and declared > self.max_body:
            raise _Refused(413, "body too large")
        body = await self._read_body(receive)
        if scope["method"] == "POST" and scope["path"] in self.slack_paths:
            self._check_slack(headers, body)
        return body

    async def _read_body(self, receive: Receive) -> bytes:
        """The whole body, refused as soon as it passes the limit (a streamed body has no length to trust)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body:
                raise _Refused(413, "body too large")
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _check_slack(self, headers: Headers, body: bytes) -> None:
        """Pass a body Slack signed, has not sent before and Bolt can parse; raise `_Refused` or `_Replayed`."""
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            # Slack sends UTF-8 only, and Bolt's Starlette adapter decodes strictly (a 500 otherwise).
            raise _Refused(400, "body is not UTF-8") from None
        now = self._clock()
        moment, signature = self._verify(headers, text, now)
        if not self._seen.add(signature, expires=moment + self.replay_window, now=now):
            raise _Replayed
        _check_shape(text, headers.get("content-type", ""))

    def _verify(self, headers: Headers, text: str, now: float) -> tuple[int, str]:
        """The request's timestamp and signature, once both check out; raises `_Refused` (401) otherwise."""
        stamp = headers.get("x-slack-request-timestamp")
        signature = headers.get("x-slack-signature")
        if not stamp or not signature:
            raise _Refused(401, "missing Slack signature")
        moment = _integer(stamp)
        if moment is None:
            raise _Refused(401, "timestamp is not an integer")
        if abs(now - moment) > self.replay_window:
            raise _Refused(401, "timestamp outside the replay window")
        # SignatureVerifier.is_valid would raise on a non-integer timestamp and on a non-ASCII signature, and
        # its window is fixed at five minutes, so only its signature is used and compared here, as bytes.
        expected = self._verifier.generate_signature(timestamp=stamp, body=text) or ""
        if not hmac.compare_digest(expected.encode(), signature.encode("latin-1")):
            raise _Refused(401, "invalid Slack signature")
        return moment, signature

    def _log(self, scope: Scope, status: int, reason: str) -> None:
        """One line per stopped request: method, path, status, reason and client; never the body or a header."""
        self.reasons[reason] += 1
        client = scope.get("client")
        log.warning(
            "stopped %s %s with %d: %s (client %s)",
            _safe(scope["method"]),
            _safe(scope["path"]),
            status,
            reason,
            _safe(str(client[0])) if client else "unknown",
        )


def _declared_length(headers: Headers) -> int | None:
    """The Content-Length header's value, None without one; raises `_Refused` (400) when malformed."""
    values = headers.getlist("content-length")
    if not values:
        return None
    declared = _integer(values[0])
    if declared is None or any(value != values[0] for value in values):
        raise _Refused(400, "malformed Content-Length")
    return declared


def _integer(text: str) -> int | None:
    """A non-negative integer written in ASCII digits only (int() also takes spaces, signs, '_' and '١')."""
    if not (text.isascii() and text.isdigit()):
        return None
    try:
        return int(text)
    except ValueError:  # more digits than int() converts
        return None


def _check_shape(text: str, content_type: str) -> None:
    """Refuse (400) a body Bolt would fail to parse, which it answers with a 500 and a long traceback."""
    # Mirrors slack_bolt.request.internals.parse_body: JSON when declared or when the body starts with "{",
    # otherwise a form whose last `payload` field, when there is one, is JSON.
    if not text:
        return
    media_type = content_type.partition(";")[0].strip().lower()
    if media_type == _JSON or text.startswith("{"):
        _require_object(text, "body is not a JSON object")
    elif "payload" in text:
        payload = dict(parse_qsl(text, keep_blank_values=True)).get("payload")
        if payload is not None:
            _require_object(payload, "payload is not a JSON object")


def _require_object(text: str, reason: str) -> None:
    """Refuse (400) text that is not one JSON object, or one whose parts Bolt reads blindly are malformed."""
    try:
        # The standard parser on purpose: it is the one Bolt uses, so what passes here parses there.
        parsed = json.loads(text)
    except (ValueError, RecursionError):
        raise _Refused(400, reason) from None
    if not isinstance(parsed, dict):
        raise _Refused(400, reason)
    for name, shape in _PARTS.items():
        if name in parsed and not shape(parsed[name]):
            raise _Refused(400, f"{name} is malformed")


# Parts of a payload that Bolt indexes before any listener runs (actions[0], event.get, view.get …): Slack
# always sends them in these shapes; anything else would be a 500 from inside Bolt.
_PARTS: dict[str, Callable[[object], bool]] = {
    "actions": lambda value: isinstance(value, list) and bool(value) and all(isinstance(a, dict) for a in value),
    "event": lambda value: isinstance(value, dict),
    "view": lambda value: isinstance(value, dict),
    "user": lambda value: isinstance(value, dict | str),
    "team": lambda value: value is None or isinstance(value, dict | str),
    "channel": lambda value: value is None or isinstance(value, dict | str),
    "container": lambda value: isinstance(value, dict),
    "message": lambda value: isinstance(value, dict),
}


def _replaying(body: bytes, receive: Receive) -> Receive:
    """A `receive` that gives the buffered body once, then listens to the client (for its disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _safe(text: str) -> str:
    """Text from the request made fit for a log line: no token, one line, short."""
    text = escape_controls(redact(text))
    if len(text) > _LOGGED_CHARS:
        return text[:_LOGGED_CHARS] + "…"
    return text
