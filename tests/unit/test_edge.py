"""SlackEdge in front of a tiny Starlette app: what passes, what is refused, and what each refusal logs."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from urllib.parse import urlencode

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route

from bot.simulators.slack_requests import signed_headers
from bot.web.edge import SlackEdge

SECRET = "edge-signing-secret"
NOW = 1_750_000_000
SLASH = urlencode({"command": "/addcompany", "text": "Fjordbris AS", "trigger_id": "1.2.abc"})
MARKER = "body-marker-5f1c"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Inner:
    """The wrapped app: echoes each body it receives and remembers it."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.app = Starlette(
            routes=[
                Route("/slack/events", self.echo, methods=["POST"]),
                Route("/approve/{token}", self.echo, methods=["GET", "POST"]),
            ]
        )

    async def echo(self, request: Request) -> PlainTextResponse:
        body = await request.body()
        self.bodies.append(body)
        return PlainTextResponse(body.decode())


@pytest.fixture
def inner():
    return Inner()


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def edge(inner, clock):
    return SlackEdge(inner.app, signing_secret=SECRET, max_body=1_000, clock=clock)


@pytest.fixture
async def http(edge):
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=edge), base_url="http://bot") as client:
        yield client


def signed(body: str, *, timestamp: int = NOW, content_type: str | None = None) -> dict[str, str]:
    return signed_headers(SECRET, body, timestamp=timestamp, content_type=content_type)


def refusals(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [record for record in caplog.records if record.name == "bot.edge"]


async def test_a_signed_request_passes_with_its_body_intact(http, inner, edge):
    response = await http.post("/slack/events", content=SLASH, headers=signed(SLASH))
    assert response.status_code == 200
    assert response.text == SLASH
    assert inner.bodies == [SLASH.encode()]
    assert (edge.passed, edge.rejected, edge.replays) == (1, 0, 0)


async def test_a_signed_interaction_and_a_signed_event_pass(http, inner):
    form = urlencode({"payload": json.dumps({"type": "block_actions", "actions": [{"action_id": "card_sync_now"}]})})
    event = json.dumps({"type": "event_callback", "event": {"type": "app_home_opened"}})
    assert (await http.post("/slack/events", content=form, headers=signed(form))).status_code == 200
    headers = signed(event, content_type="application/json; charset=utf-8")
    assert (await http.post("/slack/events", content=event, headers=headers)).status_code == 200
    assert inner.bodies == [form.encode(), event.encode()]


def tampered(headers: dict[str, str], **changes: str) -> dict[str, str]:
    """Signed headers with some values replaced."""
    return {**headers, **changes}


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        pytest.param({"Content-Type": "application/x-www-form-urlencoded"}, "missing", id="unsigned"),
        pytest.param(
            tampered(signed(SLASH), **{"X-Slack-Signature": "v0=" + "0" * 64}), "invalid", id="wrong-signature"
        ),
        pytest.param(
            {**signed(SLASH), "X-Slack-Signature": "v0=é".encode("latin-1")}, "invalid", id="non-ascii-signature"
        ),
        pytest.param(signed(SLASH.replace("Fjordbris", "Evilcorp")), "invalid", id="tampered-body"),
        pytest.param(signed(SLASH, timestamp=NOW - 301), "window", id="stale"),
        pytest.param(signed(SLASH, timestamp=NOW + 301), "window", id="from-the-future"),
        pytest.param(tampered(signed(SLASH), **{"X-Slack-Request-Timestamp": "abc"}), "integer", id="abc"),
        pytest.param(tampered(signed(SLASH), **{"X-Slack-Request-Timestamp": "1e9"}), "integer", id="1e9"),
        pytest.param(tampered(signed(SLASH), **{"X-Slack-Request-Timestamp": f" {NOW}"}), "integer", id="space"),
        pytest.param(tampered(signed(SLASH), **{"X-Slack-Request-Timestamp": ""}), "missing", id="empty"),
    ],
)
async def test_requests_not_signed_by_slack_are_refused_unseen(http, inner, edge, caplog, headers, reason):
    with caplog.at_level(logging.WARNING, logger="bot.edge"):
        response = await http.post("/slack/events", content=SLASH, headers=headers)
    assert response.status_code == 401
    assert reason in response.text
    assert inner.bodies == []
    assert edge.rejected == 1
    [line] = refusals(caplog)
    assert line.levelno == logging.WARNING
    message = line.getMessage()
    assert "POST /slack/events" in message
    assert "127.0.0.1" in message
    assert "Fjordbris" not in message
    assert "v0=" not in message


async def test_a_tampered_body_is_refused_even_when_its_signature_was_verified_before(http, inner):
    headers = signed(SLASH)
    assert (await http.post("/slack/events", content=SLASH, headers=headers)).status_code == 200
    other = SLASH.replace("Fjordbris", "Evilcorp")
    assert (await http.post("/slack/events", content=other, headers=headers)).status_code == 401
    assert inner.bodies == [SLASH.encode()]


async def test_a_replay_within_the_window_is_acknowledged_and_dropped(http, inner, edge, clock, caplog):
    headers = signed(SLASH)
    assert (await http.post("/slack/events", content=SLASH, headers=headers)).status_code == 200
    clock.now += 200
    with caplog.at_level(logging.WARNING, logger="bot.edge"):
        replay = await http.post("/slack/events", content=SLASH, headers=headers)
    assert replay.status_code == 200
    assert replay.content == b""
    assert inner.bodies == [SLASH.encode()]
    assert (edge.passed, edge.replays, edge.rejected) == (1, 1, 0)
    [line] = refusals(caplog)
    assert "replay" in line.getMessage()
    assert "Fjordbris" not in line.getMessage()


async def test_a_slack_retry_carries_a_fresh_signature_and_passes(http, inner):
    assert (await http.post("/slack/events", content=SLASH, headers=signed(SLASH))).status_code == 200
    retry = {**signed(SLASH, timestamp=NOW + 1), "X-Slack-Retry-Num": "1", "X-Slack-Retry-Reason": "http_timeout"}
    assert (await http.post("/slack/events", content=SLASH, headers=retry)).status_code == 200
    assert inner.bodies == [SLASH.encode(), SLASH.encode()]


async def test_seen_signatures_are_forgotten_with_age_and_capped(inner, clock):
    edge = SlackEdge(inner.app, signing_secret=SECRET, clock=clock, max_seen=3)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=edge), base_url="http://bot") as http:
        for offset in range(5):
            body = f"{SLASH}&n={offset}"
            headers = signed(body, timestamp=NOW + offset)
            assert (await http.post("/slack/events", content=body, headers=headers)).status_code == 200
        assert edge.remembered == 3
        clock.now += 400
        body = f"{SLASH}&n=late"
        headers = signed(body, timestamp=int(clock.now))
        assert (await http.post("/slack/events", content=body, headers=headers)).status_code == 200
        assert edge.remembered == 1


async def test_a_body_declared_too_large_is_refused_before_it_is_read(http, inner, edge, caplog):
    big = "x" * 2_000_000
    with caplog.at_level(logging.WARNING, logger="bot.edge"):
        response = await http.post("/slack/events", content=big, headers=signed(big))
    assert response.status_code == 413
    assert inner.bodies == []
    [line] = refusals(caplog)
    assert "xxxx" not in line.getMessage()

    received = []

    async def receive():
        received.append(1)
        return {"type": "http.request", "body": b"x" * 2_000, "more_body": False}

    sent = []

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "method": "POST",
        "path": "/slack/events",
        "headers": [(b"content-length", b"2000000")],
        "client": ("10.0.0.1", 5000),
    }
    await edge(scope, receive, send)
    assert sent[0]["status"] == 413
    assert received == []


async def test_a_streamed_body_is_refused_as_soon_as_it_passes_the_limit(http, inner, edge, caplog):
    pulled = []

    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(100):
            pulled.append(1)
            yield b"y" * 300

    with caplog.at_level(logging.WARNING, logger="bot.edge"):
        response = await http.post("/slack/events", content=chunks(), headers={"X-Slack-Signature": "v0=x"})
    assert response.status_code == 413
    assert len(pulled) == 4  # 1,000 bytes allowed: refused on the fourth 300-byte chunk, nothing more read
    assert inner.bodies == []
    [line] = refusals(caplog)
    assert "yyy" not in line.getMessage()
    assert "v0=" not in line.getMessage()


async def test_a_streamed_body_within_the_limit_reaches_the_app_whole(http, inner):
    async def chunks() -> AsyncIterator[bytes]:
        for part in (b"a" * 300, b"b" * 300, b"c" * 300):
            yield part

    response = await http.post("/approve/some-token", content=chunks())
    assert response.status_code == 200
    assert inner.bodies == [b"a" * 300 + b"b" * 300 + b"c" * 300]


@pytest.mark.parametrize("length", [b"abc", b"-1", b"+5", b"1_0", b""])
async def test_a_malformed_content_length_is_a_400(edge, inner, length):
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": "/approve/x", "headers": [(b"content-length", length)]}
    await edge(scope, receive, send)
    assert sent[0]["status"] == 400
    assert inner.bodies == []


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        pytest.param("payload=AAAA", None, id="payload-not-json"),
        pytest.param(urlencode({"payload": "[1, 2]"}), None, id="payload-a-list"),
        pytest.param("[1, 2]", "application/json", id="json-a-list"),
        pytest.param('"text"', "application/json", id="json-a-string"),
        pytest.param("{not json", "application/json", id="json-broken"),
        pytest.param("{not json", None, id="brace-without-content-type"),
    ],
)
async def test_malformed_but_signed_input_is_a_400(http, inner, caplog, body, content_type):
    with caplog.at_level(logging.WARNING, logger="bot.edge"):
        response = await http.post("/slack/events", content=body, headers=signed(body, content_type=content_type))
    assert response.status_code == 400
    assert len(response.text) < 100
    assert inner.bodies == []
    [line] = refusals(caplog)
    assert body not in line.getMessage()


async def test_a_signed_body_that_is_not_utf8_is_a_400(http, inner):
    headers = signed("ignored")
    response = await http.post("/slack/events", content=b"\xff\xfe", headers=headers)
    assert response.status_code == 400
    assert inner.bodies == []


async def test_other_paths_are_size_limited_but_not_signature_checked(http, inner, caplog):
    assert (await http.post("/approve/x", content="decision=approve")).status_code == 200
    assert (await http.get("/approve/x")).status_code == 200
    with caplog.at_level(logging.WARNING, logger="bot.edge"):
        assert (await http.post("/approve/x", content="z" * 2_000)).status_code == 413
    assert inner.bodies == [b"decision=approve", b""]
    [line] = refusals(caplog)
    assert "zzz" not in line.getMessage()


async def test_the_logged_path_is_one_line_and_keeps_no_token(edge, caplog):
    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    path = "/approve/Zx8y7w6v5u4t3s2r1q0pAbCdEfGh\n2026-01-01 INFO forged"
    scope = {"type": "http", "method": "POST", "path": path, "headers": [(b"content-length", b"2000")]}
    with caplog.at_level(logging.WARNING, logger="bot.edge"):
        await edge(scope, receive, send)
    [line] = refusals(caplog)
    message = line.getMessage()
    assert "\n" not in message
    assert "\\n2026-01-01 INFO forged" in message
    assert "Zx8y7w6v5u4t3s2r1q0p" not in message
    assert "client unknown" in message


async def test_other_protocols_pass_straight_through():
    seen = []

    async def app(scope, receive, send):
        seen.append(scope["type"])

    passthrough = SlackEdge(app, signing_secret=SECRET)

    async def receive():
        raise AssertionError("the edge must not read a lifespan or websocket stream")

    async def send(message):
        pass

    await passthrough({"type": "lifespan"}, receive, send)
    await passthrough({"type": "websocket", "path": "/slack/events", "headers": []}, receive, send)
    assert seen == ["lifespan", "websocket"]


async def test_a_client_that_leaves_mid_body_is_not_answered(edge, inner):
    messages = iter([{"type": "http.request", "body": b"abc", "more_body": True}, {"type": "http.disconnect"}])

    async def receive():
        return next(messages)

    sent = []

    async def send(message):
        sent.append(message)

    await edge({"type": "http", "method": "POST", "path": "/slack/events", "headers": []}, receive, send)
    assert sent == []
    assert inner.bodies == []


@pytest.mark.parametrize(
    "payload",
    [
        {"type": "block_actions", "actions": []},
        {"type": "block_actions", "actions": ["x"]},
        {"type": "view_submission", "view": "x"},
        {"type": "event_callback", "event": []},
        {"type": "block_actions", "user": 5, "actions": [{}]},
    ],
)
async def test_signed_payloads_whose_parts_bolt_indexes_blindly_are_refused(http, inner, payload):
    form = urlencode({"payload": json.dumps(payload)})
    response = await http.post("/slack/events", content=form, headers=signed(form))
    assert response.status_code == 400
    assert inner.bodies == []
