"""How fast does `/addcompany` answer Slack, and how soon does the modal open?

Bursts of 50 concurrent signed `/addcompany` requests go to `onboarding-bot serve` (a real subprocess) and,
interleaved, to a bare Bolt app that only acks and opens an empty modal: the floor this stack allows on this
machine. The Slack Web API fake answers every call after 100 ms, as a loaded Slack might.

Figures (the last line printed is one JSON object):
- ack_p99_ms: HTTP response to Slack, ours (goal <= 100) and ack_ratio = ours / bare (goal <= 1.5);
- views_open_p99_ms: from sending the request to the views.open call arriving at Slack (goal <= 300).
Exits 1 when a goal is missed.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from cryptography.fernet import Fernet

from bot.simulators.eaccounting import seed_world
from bot.simulators.server import ResponseLog, create_simulators
from bot.simulators.serving import LoopbackServer, free_port
from bot.simulators.slack import SlackWorld
from bot.simulators.slack_requests import SlackSide

BURST = 50
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "6"))
SLACK_LATENCY_MS = 100
SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench-token"
GOALS = {"ack_p99_ms": 100.0, "ack_ratio": 1.5, "views_open_p99_ms": 300.0}
HERE = Path(__file__).resolve().parent


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def wait_healthy(http: httpx.AsyncClient, url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"bench: {url} exited during start-up with code {process.returncode}")
        try:
            if (await http.get(f"{url}/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"bench: {url} did not become healthy within 60 s")


async def burst(side: SlackSide, world: SlackWorld, user: str) -> tuple[list[float], list[float]]:
    """Send BURST slash commands at once; return ack latencies and request→views.open latencies (ms)."""
    sent: dict[str, float] = {}

    async def one(index: int) -> float:
        trigger = f"{index}.{time.time_ns()}.bench"
        body = side.slash_body(command="/addcompany", user=user, channel="C0ALERTS", trigger_id=trigger)
        start = time.monotonic()
        sent[trigger] = start
        response = await side.post(body)
        elapsed = (time.monotonic() - start) * 1000
        if response.status_code != 200:
            raise SystemExit(f"bench: /addcompany answered {response.status_code}: {response.text[:200]}")
        return elapsed

    acks = await asyncio.gather(*(one(index) for index in range(BURST)))
    # The modal opens after the ack; wait until every trigger's views.open has reached the fake.
    deadline = time.monotonic() + 10
    opened: dict[str, float] = {}
    while time.monotonic() < deadline:
        opened = {
            str(call.args.get("trigger_id")): call.time
            for call in world.calls_to("views.open")
            if str(call.args.get("trigger_id")) in sent
        }
        if len(opened) == len(sent):
            break
        await asyncio.sleep(0.02)
    if len(opened) != len(sent):
        raise SystemExit(f"bench: only {len(opened)} of {len(sent)} modals opened")
    return list(acks), [(opened[trigger] - sent[trigger]) * 1000 for trigger in sent]


async def main() -> int:
    world = SlackWorld(tokens={TOKEN})
    world.switches.latency_ms = SLACK_LATENCY_MS
    simulators = create_simulators(slack=world, eaccounting=seed_world(), responses=ResponseLog())
    ours_port, bare_port = free_port(), free_port()
    with tempfile.TemporaryDirectory() as tmp:
        async with LoopbackServer(simulators) as sim, httpx.AsyncClient(timeout=30) as http:
            slack_url = f"{sim.url}/slack/api/"
            env = {
                **os.environ,
                "SLACK_BOT_TOKEN": TOKEN,
                "SLACK_SIGNING_SECRET": SECRET,
                "SLACK_API_URL": slack_url,
                "ALERT_CHANNEL": "C0ALERTS",
                "DATABASE_URL": f"sqlite:///{tmp}/bench.db",
                "PUBLIC_URL": f"http://127.0.0.1:{ours_port}",
                "PORT": str(ours_port),
                "ENCRYPTION_KEY": Fernet.generate_key().decode(),
                "EACCOUNTING_CLIENT_ID": "bench",
                "EACCOUNTING_CLIENT_SECRET": "bench-secret",
            }
            env.pop("SLACK_APP_TOKEN", None)
            bin_dir = Path(sys.executable).parent
            ours = subprocess.Popen(
                [str(bin_dir / "onboarding-bot"), "serve"], env=env, cwd=tmp, stderr=subprocess.DEVNULL
            )
            bare = subprocess.Popen(
                [sys.executable, str(HERE / "bare_bolt.py"), str(bare_port), slack_url, SECRET, TOKEN],
                stderr=subprocess.DEVNULL,
            )
            try:
                ours_url, bare_url = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{bare_port}"
                await wait_healthy(http, ours_url, ours)
                await wait_healthy(http, bare_url, bare)
                sides = {
                    name: SlackSide(
                        http,
                        events_url=f"{url}/slack/events",
                        signing_secret=SECRET,
                        response_url_base=f"{sim.url}/slack/_response",
                    )
                    for name, url in (("ours", ours_url), ("bare", bare_url))
                }
                await burst(sides["ours"], world, "U0KARI")  # warm-up, not counted
                await burst(sides["bare"], world, "U0KARI")
                figures: dict[str, dict[str, list[float]]] = {name: {"ack": [], "open": []} for name in sides}
                for _ in range(ROUNDS):
                    for name in ("ours", "bare"):
                        acks, opens = await burst(sides[name], world, "U0KARI")
                        figures[name]["ack"] += acks
                        figures[name]["open"] += opens
            finally:
                for process in (ours, bare):
                    process.terminate()
                    process.wait(timeout=10)
    result = {
        "requests": BURST * ROUNDS,
        "burst": BURST,
        "slack_latency_ms": SLACK_LATENCY_MS,
        "ack_p50_ms": round(statistics.median(figures["ours"]["ack"]), 1),
        "ack_p99_ms": round(p99(figures["ours"]["ack"]), 1),
        "bare_ack_p99_ms": round(p99(figures["bare"]["ack"]), 1),
        "ack_ratio": round(p99(figures["ours"]["ack"]) / p99(figures["bare"]["ack"]), 2),
        "views_open_p99_ms": round(p99(figures["ours"]["open"]), 1),
        "bare_views_open_p99_ms": round(p99(figures["bare"]["open"]), 1),
    }
    missed = [name for name, goal in GOALS.items() if result[name] > goal]
    result["goals"] = GOALS
    result["missed"] = missed
    print(f"{BURST} concurrent /addcompany x {ROUNDS} rounds, Slack fake answering after {SLACK_LATENCY_MS} ms")
    print(
        f"  ours: ack p50 {result['ack_p50_ms']} ms, p99 {result['ack_p99_ms']} ms; "
        f"views.open p99 {result['views_open_p99_ms']} ms"
    )
    print(f"  bare: ack p99 {result['bare_ack_p99_ms']} ms; views.open p99 {result['bare_views_open_p99_ms']} ms")
    print(json.dumps(result))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
