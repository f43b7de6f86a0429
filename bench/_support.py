"""Shared pieces of the sync benchmarks: the simulators in a subprocess, the bot's settings, fast set-up, figures.

Nothing is measured here. `python bench/_support.py simulate CONFIG` is the simulator process the benchmarks
start: it builds an eAccounting world of bulk companies (vouchers generated lazily from their index), mints
tokens for each, serves the identity server, the API and the Slack fake on one loopback port, and prints one
JSON line (its URL, company ids and tokens). Benchmark routes: GET /_bench/requests (every API request with its
arrival and service time and company), POST /_bench/modify (change vouchers of a bulk company).
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from types import TracebackType
from typing import Any

import httpx

from bot.settings import Settings
from bot.simulators.stack import BOT_TOKEN, CLIENT_ID, CLIENT_SECRET, stack_settings
from bot.visma.eaccounting import SCOPES

LOOPBACK = "127.0.0.1"
SCRIPT = os.path.abspath(__file__)


# ---------------------------------------------------------------- figures


def peak_rss_mb() -> float:
    """The process's peak resident set size so far (ru_maxrss, KiB on Linux), in MiB."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def rss_mb() -> float:
    """The process's resident set size now, in MiB."""
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return round(pages * os.sysconf("SC_PAGE_SIZE") / 2**20, 1)


def cpu_seconds() -> float:
    """User plus system CPU this process (all its threads) has used so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_note() -> str:
    """The 1-minute load average and core count, to tell whether something else was running."""
    return f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores before the run"


def missed_goals(result: Mapping[str, Any], goals: Mapping[str, tuple[str, float]]) -> list[str]:
    """The names of goals (">=" or "<=" a value) the result misses."""
    missed = []
    for name, (op, goal) in goals.items():
        value = result.get(name)
        if value is None or (op == ">=" and value < goal) or (op == "<=" and value > goal):
            missed.append(name)
    return missed


def finish(result: dict[str, Any], goals: Mapping[str, tuple[str, float]]) -> int:
    """Add goals and misses to the result, print it as the last line (one JSON object); the exit code."""
    missed = missed_goals(result, goals)
    result["goals"] = {name: f"{op} {goal:g}" for name, (op, goal) in goals.items()}
    result["missed"] = missed
    for name in missed:
        op, goal = goals[name]
        print(f"  MISSED {name}: {result.get(name)} (goal {op} {goal:g})")
    print(json.dumps(result, default=str), flush=True)
    return 1 if missed else 0


# ---------------------------------------------------------------- the bot's side


def settle_like_serve() -> None:
    """What `serve` does once started (bot/app.py lifespan): collect, freeze what lives forever, fewer collections."""
    import gc

    from bot.app import GC_THRESHOLDS

    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


def bench_settings(*, database_url: str, simulators_url: str, **overrides: Any) -> Settings:
    """Settings that point Slack and eAccounting at the simulators on loopback (as the demo's stack does)."""
    return stack_settings(
        database_url=database_url, bot_port=9, simulators_url=simulators_url, firm_name="Bench Regnskap", **overrides
    )


def company_row(
    index: int,
    *,
    org_number: str,
    state: str,
    now: datetime,
    next_sync_at: datetime | None,
    reconciliation_start: date,
    name: str | None = None,
) -> dict[str, Any]:
    """One `company` row as the onboarding flow would have left it, for a bulk insert."""
    since = now - timedelta(days=30 + index % 300)
    return {
        "name": name or f"Bench Klient {index} AS",
        "org_number": org_number,
        "country": "NO",
        "system": "eaccounting",
        "state": state,
        "state_since": since,
        "period_type": ("monthly", "bimonthly", "quarterly")[index % 3],
        "fiscal_year_start_month": 1,
        "reconciliation_start": reconciliation_start,
        "vat_frequency": ("bimonthly", "monthly", "yearly")[index % 3],
        "modules": ["vat"] if index % 2 else ["vat", "payroll"],
        "responsible_user_id": "U0KARI",
        "approver_email": f"post{index}@klient.example",
        "requested_by": "U0KARI",
        "created_at": since - timedelta(days=1),
        "last_sync_at": None if state in {"draft", "awaiting_approval"} else now - timedelta(hours=6),
        "next_sync_at": next_sync_at,
        "books_locked_to": None,
        "failure_count": 0,
        "failure_noted": False,
        "alert_count": 0,
    }


async def insert_companies(deps: Any, rows: list[dict[str, Any]]) -> dict[str, int]:
    """Insert company rows in one executemany; their ids by organisation number."""
    from sqlalchemy import insert, select

    from bot.store.models import Company

    table = Company.__table__  # type: ignore[attr-defined]
    async with deps.store.engine.begin() as connection:
        await connection.execute(insert(table), rows)
        found = await connection.execute(select(table.c.id, table.c.org_number))
        return {str(org): int(company_id) for company_id, org in found.all()}


async def insert_connections(
    deps: Any, tokens: Iterable[tuple[int, Mapping[str, Any]]], *, now: datetime, external: Mapping[int, str]
) -> None:
    """A Connection per company with the simulator's tokens sealed, as save_connection would store them."""
    from sqlalchemy import insert

    from bot.store.models import Connection

    rows = [
        {
            "company_id": company_id,
            "system": "eaccounting",
            "external_company_id": external.get(company_id),
            "external_company_name": None,
            "access_token_sealed": deps.vault.seal(str(body["access_token"])),
            "refresh_token_sealed": deps.vault.seal(str(body["refresh_token"])) if body.get("refresh_token") else None,
            "access_expires_at": now + timedelta(seconds=int(body.get("expires_in", 3600))),
            "scopes": str(body.get("scope", " ".join(SCOPES))),
            "connected_by": "U0OLA",
            "connected_at": now - timedelta(days=1),
            "version": 0,
        }
        for company_id, body in tokens
    ]
    async with deps.store.engine.begin() as connection:
        await connection.execute(insert(Connection.__table__), rows)  # type: ignore[attr-defined]


# ---------------------------------------------------------------- the simulator process


@dataclass
class BulkSpec:
    """A bulk company of the simulator."""

    org_number: str
    name: str
    vouchers: int
    rows_per_voucher: int = 3
    seed: int = 7
    years: int = 1


@dataclass
class SimConfig:
    """What the simulator process builds."""

    companies: list[BulkSpec] = field(default_factory=list)
    rate_limit: int = 600
    rate_window: float = 60.0

    def dumps(self) -> str:
        """As one JSON argument."""
        return json.dumps(
            {
                "companies": [spec.__dict__ for spec in self.companies],
                "rate_limit": self.rate_limit,
                "rate_window": self.rate_window,
            }
        )


@dataclass
class ApiHit:
    """One API request as the simulator process saw it (monotonic seconds of that process)."""

    path: str
    status: int
    arrived: float
    served: float
    company: str | None = None


async def stop_process(process: asyncio.subprocess.Process, *, grace: float = 15) -> None:
    """Terminate a child process, killing it after `grace` seconds; never blocks the loop while it winds down."""
    if process.returncode is None:
        process.terminate()
    try:
        await asyncio.wait_for(process.wait(), timeout=grace)
    except TimeoutError:
        process.kill()
        await process.wait()


class SimulatorProcess:
    """`async with SimulatorProcess(config) as sim:` the simulators in their own process on a loopback port."""

    def __init__(self, config: SimConfig, *, start_timeout: float = 300.0) -> None:
        """Describe the process; nothing starts before `async with`."""
        self.config = config
        self.start_timeout = start_timeout
        self.url = ""
        self.company_ids: dict[str, str] = {}
        self.tokens: dict[str, dict[str, Any]] = {}
        self._process: asyncio.subprocess.Process | None = None
        self._http = httpx.AsyncClient(timeout=120)

    async def __aenter__(self) -> SimulatorProcess:
        """Start the process and wait for its ready line (URL, company ids, tokens)."""
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            SCRIPT,
            "simulate",
            self.config.dumps(),
            stdout=asyncio.subprocess.PIPE,
            limit=2**26,
        )
        assert self._process.stdout is not None
        try:
            line = await asyncio.wait_for(self._process.stdout.readline(), timeout=self.start_timeout)
        except TimeoutError:
            await self._stop()
            raise SystemExit("bench: the simulator process did not start in time") from None
        if not line:
            await self._stop()
            raise SystemExit(f"bench: the simulator process exited during start-up ({self._process.returncode})")
        ready = json.loads(line)
        self.url, self.company_ids, self.tokens = ready["url"], ready["companies"], ready["tokens"]
        if not self.url.startswith(f"http://{LOOPBACK}:"):
            raise SystemExit(f"bench: the simulator is not on loopback: {self.url}")
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        """Stop the process."""
        await self._http.aclose()
        await self._stop()

    async def _stop(self) -> None:
        """Terminate the process (kill it after 15 s)."""
        if self._process is not None:
            await stop_process(self._process)

    async def hits(self) -> list[ApiHit]:
        """Every API request the simulator has answered so far."""
        response = await self._http.get(f"{self.url}/_bench/requests")
        return [ApiHit(*item) for item in response.json()]

    def cpu_seconds(self) -> float:
        """User plus system CPU the simulator process has used so far (Linux /proc)."""
        if self._process is None:
            return 0.0
        with open(f"/proc/{self._process.pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    async def modify(self, org_number: str, count: int) -> int:
        """Change `count` vouchers of a bulk company (ModifiedUtc = now); how many were changed."""
        response = await self._http.post(f"{self.url}/_bench/modify", json={"org": org_number, "count": count})
        response.raise_for_status()
        return int(response.json()["changed"])


def _timing(app: Any, hits: list[tuple[str, int, float, float, str | None]], world: Any) -> Any:
    """ASGI middleware: record every eAccounting API request's path, status, arrival, end of answer, company."""
    prefix = "/eaccounting/api/v2/"

    def company_of(scope: dict[str, Any]) -> str | None:
        """The company whose access token the request carries."""
        for name, value in scope.get("headers", ()):
            if name == b"authorization":
                entry = world.access.get(value.decode().removeprefix("Bearer ").strip())
                return str(entry[0].company.id) if entry else None
        return None

    async def middleware(scope: dict[str, Any], receive: Any, send: Any) -> None:
        """Pass the request on; note it once its answer has been sent."""
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith(prefix):
            await app(scope, receive, send)
            return
        arrived = time.monotonic()
        status = 0

        async def timed_send(message: dict[str, Any]) -> None:
            """Send, and record the request after the answer's last byte."""
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body"):
                hits.append(
                    (path.removeprefix("/eaccounting/api"), status, arrived, time.monotonic(), company_of(scope))
                )

        await app(scope, receive, timed_send)

    return middleware


async def _serve(config: dict[str, Any]) -> None:
    """Build the world, mint tokens, serve until terminated (runs in the simulator process)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Mount, Route

    from bot.simulators.eaccounting import EAccountingWorld, add_bulk_company, modify_bulk
    from bot.simulators.server import ResponseLog, create_simulators
    from bot.simulators.serving import LoopbackServer
    from bot.simulators.slack import SlackWorld

    world = EAccountingWorld()
    world.register_client(CLIENT_ID, CLIENT_SECRET, {f"http://{LOOPBACK}:9/oauth/eaccounting/callback"})
    limit, window = int(config["rate_limit"]), float(config["rate_window"])
    world.switch(rate_limit_per_minute=limit, rate_limit_window_seconds=window)
    companies: dict[str, str] = {}
    tokens: dict[str, dict[str, Any]] = {}
    for spec in config["companies"]:
        company = add_bulk_company(
            world,
            org_number=spec["org_number"],
            name=spec["name"],
            vouchers=spec["vouchers"],
            rows_per_voucher=spec["rows_per_voucher"],
            seed=spec["seed"],
            years=spec["years"],
            user_email=f"bench@{spec['org_number']}.example",
        )
        companies[spec["org_number"]] = company.id
        tokens[spec["org_number"]] = world.issue_tokens(company.id, client_id=CLIENT_ID, scopes=SCOPES)
    hits: list[tuple[str, int, float, float, str | None]] = []

    async def requests(request: Request) -> Response:
        """Every API request so far."""
        return JSONResponse(hits)

    async def modify(request: Request) -> Response:
        """Change vouchers of a bulk company."""
        body = await request.json()
        changed = modify_bulk(world, companies[str(body["org"])], int(body["count"]))
        return JSONResponse({"changed": len(changed)})

    simulators = create_simulators(slack=SlackWorld(tokens={BOT_TOKEN}), eaccounting=world, responses=ResponseLog())
    app = Starlette(
        routes=[
            Route("/_bench/requests", requests, methods=["GET"]),
            Route("/_bench/modify", modify, methods=["POST"]),
            Mount("/", app=simulators),
        ]
    )
    async with LoopbackServer(_timing(app, hits, world)) as server:
        print(json.dumps({"url": server.url, "companies": companies, "tokens": tokens}), flush=True)
        await asyncio.Event().wait()


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "simulate":
        raise SystemExit("usage: python bench/_support.py simulate CONFIG_JSON (started by the benchmarks)")
    import contextlib
    import signal

    loop = asyncio.new_event_loop()
    main = loop.create_task(_serve(json.loads(sys.argv[2])))
    loop.add_signal_handler(signal.SIGTERM, main.cancel)
    with contextlib.suppress(asyncio.CancelledError, KeyboardInterrupt):
        loop.run_until_complete(main)
