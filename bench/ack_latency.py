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
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import aiohttp
import httpx
from _support import stop_process
from cryptography.fernet import Fernet

from bot.simulators.eaccounting import seed_world
from bot.simulators.server import ResponseLog, create_simulators
from bot.simulators.serving import LoopbackServer, free_port
from bot.simulators.slack import SlackWorld
from bot.simulators.slack_requests import SlackSide, signed_headers

BURST = 50
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "6"))
SLACK_LATENCY_MS = 100
SECRET = "bench-signing-secret"
TOKEN = "xoxb-bench-token"
GOALS = {"ack_p99_ms": 100.0, "ack_ratio": 1.5, "views_open_p99_ms": 300.0}
HERE = Path(__file__).resolve().parent
# The servers' own logs go here, so a failed start can be read after the run.
LOG = open(os.devnull, "w") if not os.environ.get("BENCH_LOG") else open(os.environ["BENCH_LOG"], "w")  # noqa: SIM115


def p99(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]


async def wait_healthy(http: httpx.AsyncClient, url: str, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise SystemExit(f"bench: {url} exited during start-up with code {process.returncode}")
        try:
            if (await http.get(f"{url}/healthz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.1)
    raise SystemExit(f"bench: {url} did not become healthy within 60 s")


async def burst(
    session: aiohttp.ClientSession, side: SlackSide, url: str, world: SlackWorld, user: str
) -> tuple[list[float], list[float]]:
    """Send BURST slash commands at once; return ack latencies and request→views.open latencies (ms)."""
    sent: dict[str, float] = {}

    async def one(index: int) -> float:
        trigger = f"{index}.{time.time_ns()}.bench"
        body = side.slash_body(command="/addcompany", user=user, channel="C0ALERTS", trigger_id=trigger)
        headers = signed_headers(SECRET, body)
        start = time.monotonic()
        sent[trigger] = start
        # aiohttp, not httpx, on the sending side: the client's own overhead should not be what is measured.
        async with session.post(url, data=body.encode(), headers=headers) as response:
            await response.read()
            elapsed = (time.monotonic() - start) * 1000
            if response.status != 200:
                raise SystemExit(f"bench: /addcompany answered {response.status}")
        return elapsed

    acks = await asyncio.gather(*(one(index) for index in range(BURST)))
    # The modal opens after the ack: wait until every trigger's views.open has been answered, so that the next
    # burst starts on a quiet machine.
    deadline = time.monotonic() + 10
    calls = []
    while time.monotonic() < deadline:
        calls = [call for call in world.calls_to("views.open") if str(call.args.get("trigger_id")) in sent]
        if len(calls) == len(sent) and all(call.response for call in calls):
            break
        await asyncio.sleep(0.02)
    if len(calls) != len(sent):
        raise SystemExit(f"bench: only {len(calls)} of {len(sent)} modals opened")
    await asyncio.sleep(0.1)
    return list(acks), [(call.time - sent[str(call.args["trigger_id"])]) * 1000 for call in calls]


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
                "FIRM_NAME": "Bench Regnskap",
                "PORT": str(ours_port),
                "ENCRYPTION_KEY": Fernet.generate_key().decode(),
                "EACCOUNTING_CLIENT_ID": "bench",
                "EACCOUNTING_CLIENT_SECRET": "bench-secret",
            }
            env.pop("SLACK_APP_TOKEN", None)
            bin_dir = Path(sys.executable).parent
            ours = await asyncio.create_subprocess_exec(
                *os.environ.get("BENCH_SERVE", str(bin_dir / "onboarding-bot")).split(),
                "serve",
                env=env,
                cwd=tmp,
                stderr=LOG,
            )
            bare = await asyncio.create_subprocess_exec(
                sys.executable, str(HERE / "bare_bolt.py"), str(bare_port), slack_url, SECRET, TOKEN, stderr=LOG
            )
            session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=BURST * 2))
            try:
                ours_url, bare_url = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{bare_port}"
                await wait_healthy(http, ours_url, ours)
                await wait_healthy(http, bare_url, bare)
                side = SlackSide(
                    http, events_url="", signing_secret=SECRET, response_url_base=f"{sim.url}/slack/_response"
                )
                urls = {"ours": f"{ours_url}/slack/events", "bare": f"{bare_url}/slack/events"}
                for name in urls:  # warm-up, not counted
                    await burst(session, side, urls[name], world, "U0KARI")
                figures: dict[str, dict[str, list[float]]] = {name: {"ack": [], "open": []} for name in urls}
                rounds: dict[str, list[float]] = {name: [] for name in urls}
                for _ in range(ROUNDS):
                    for name in ("ours", "bare"):
                        acks, opens = await burst(session, side, urls[name], world, "U0KARI")
                        figures[name]["ack"] += acks
                        rounds[name].append(round(max(acks), 1))
                        figures[name]["open"] += opens
            finally:
                await session.close()
                for process in (ours, bare):
                    # Waiting must not block the loop: the servers' last Slack calls go to the fake served here.
                    await stop_process(process)
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
    result["ack_max_per_round_ms"] = rounds
    result["slack_calls"] = dict(Counter(call.method for call in world.calls))
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
