"""Does the sync spend Visma's rate limit fully, and never overrun it, when many companies sync at once?

200 companies (all connected, all due) are claimed by one scheduler tick and synced concurrently through
`SyncPool`/`sync_company` against the eAccounting simulator, which runs in its own process on loopback and
enforces eAccounting's sliding-window limit per client and endpoint URL — scaled down from 600 a minute to
600 per 6 s so that the run takes tens of seconds (flags change both sides alike). Every company has enough
vouchers that the one endpoint all companies share, /v2/vouchers (page size 25), needs several windows.

Figures (the last line printed is one JSON object):
- utilisation: requests the simulator received on /v2/vouchers ÷ what the limit allowed there, over the whole
  windows between its first and last request (goal >= 0.9; the limiter keeps a 2 % margin, so 0.98 is the
  ceiling). The partial last window, where the companies run out of pages, is left out; `utilisation_strict`
  counts it as a full window;
- throttled: 429s the simulator sent on any endpoint (goal 0);
- companies_failed: runs that did not end ok (goal 0: a benchmark of failing runs measures nothing), with
  stuck_runs still going after 180 s (then cancelled, so the benchmark always ends);
- companies_ok, duration_s, requests_total and per endpoint, the bot's and the simulator's CPU seconds.
The bot's process is set up as `serve` leaves it (gc frozen, its thresholds). Flags: --companies, --limit,
--window, --page-size, --vouchers, --parallel, --database-url, --profile FILE, --dump-hits FILE.
Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import math
import pstats
import sys
import tempfile
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from _support import (
    ApiHit,
    BulkSpec,
    SimConfig,
    SimulatorProcess,
    bench_settings,
    company_row,
    cpu_seconds,
    finish,
    insert_companies,
    insert_connections,
    load_note,
    peak_rss_mb,
    settle_like_serve,
)
from sqlmodel import select

from bot import scheduler
from bot.app import build_deps
from bot.runtime import Deps
from bot.store.models import SyncRun

BINDING = "/v2/vouchers"
GOALS = {"utilisation": (">=", 0.9), "throttled": ("<=", 0), "companies_failed": ("<=", 0)}


def options() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=200)
    parser.add_argument("--limit", type=int, default=600, help="requests per window per endpoint URL")
    parser.add_argument("--window", type=float, default=6.0, help="window in seconds (Visma: 60)")
    parser.add_argument("--page-size", type=int, default=25)
    parser.add_argument("--vouchers", type=int, default=400, help="vouchers per company")
    parser.add_argument("--parallel", type=int, default=200, help="sync_parallel (at most 200)")
    parser.add_argument("--database-url", help="instead of a SQLite file in a temp dir (e.g. postgresql://…)")
    parser.add_argument("--dump-hits", metavar="FILE", help="write every API request the simulator saw to FILE")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the bot's event loop during the runs into FILE")
    return parser.parse_args()


def utilisation(hits: list[ApiHit], *, limit: int, window: float) -> dict[str, float]:
    """Received ÷ allowed on the binding endpoint, over whole windows and over the span counted generously."""
    times = sorted(hit.arrived for hit in hits if hit.path == BINDING)
    if not times:
        return {"utilisation": 0.0, "utilisation_strict": 0.0, "binding_span_s": 0.0, "binding_windows": 0}
    first, span = times[0], times[-1] - times[0]
    whole = math.floor(span / window)
    if whole:
        inside = sum(1 for moment in times if moment < first + whole * window)
        ratio = inside / (limit * whole)
    else:
        ratio = len(times) / limit
    return {
        "utilisation": round(ratio, 3),
        "utilisation_strict": round(len(times) / (limit * (whole + 1)), 3),
        "binding_span_s": round(span, 2),
        "binding_windows": whole,
    }


async def progress(sim: SimulatorProcess, pool: scheduler.SyncPool, *, window: float, started: float) -> None:
    """Print, once a window, how many requests the binding endpoint got in the last window and how many runs go on."""
    seen = 0
    while True:
        await asyncio.sleep(window)
        hits = await sim.hits()
        binding = [hit for hit in hits if hit.path == BINDING]
        throttled = sum(1 for hit in hits if hit.status == 429)
        print(
            f"  t={time.monotonic() - started:5.1f}s  {BINDING}: +{len(binding) - seen} (total {len(binding)})  "
            f"429s {throttled}  runs going {len(pool.running)}",
            flush=True,
        )
        seen = len(binding)


async def main() -> int:
    """Set up the companies, run one tick, wait for every run, compute the figures."""
    args = options()
    print(load_note())
    print(
        f"{args.companies} companies, {args.vouchers} vouchers each, page size {args.page_size}, "
        f"sync_parallel {args.parallel}; eAccounting's 600 requests/min per endpoint scaled down to "
        f"{args.limit} per {args.window:g} s (simulator and bot alike)"
    )
    specs = [
        BulkSpec(f"9{index:08d}", f"Budsjett Klient {index} AS", args.vouchers, seed=index + 1, years=1)
        for index in range(args.companies)
    ]
    config = SimConfig(companies=specs, rate_limit=args.limit, rate_window=args.window)
    with tempfile.TemporaryDirectory() as tmp:
        async with SimulatorProcess(config) as sim:
            settings = bench_settings(
                database_url=args.database_url or f"sqlite:///{Path(tmp) / 'budget.db'}",
                simulators_url=sim.url,
                eaccounting_rate_limit=args.limit,
                eaccounting_rate_window_seconds=args.window,
                visma_page_size=args.page_size,
                sync_parallel=args.parallel,
                sync_claim_batch=max(500, args.companies),
            )
            deps: Deps = build_deps(settings)
            try:
                await deps.store.migrate()
                now = deps.clock()
                rows = [
                    company_row(
                        index,
                        org_number=spec.org_number,
                        name=spec.name,
                        state="connected",
                        now=now,
                        next_sync_at=now - timedelta(minutes=1),
                        reconciliation_start=date(2026, 1, 1),
                    )
                    for index, spec in enumerate(specs)
                ]
                ids = await insert_companies(deps, rows)
                await insert_connections(
                    deps,
                    [(ids[spec.org_number], sim.tokens[spec.org_number]) for spec in specs],
                    now=now,
                    external={ids[spec.org_number]: sim.company_ids[spec.org_number] for spec in specs},
                )
                pool = scheduler.SyncPool(deps, parallel=settings.sync_parallel)
                settle_like_serve()
                cpu_before, sim_cpu_before = cpu_seconds(), sim.cpu_seconds()
                profiler = cProfile.Profile() if args.profile else None
                if profiler is not None:
                    profiler.enable()
                started = time.monotonic()
                watcher = asyncio.create_task(progress(sim, pool, window=args.window, started=started))
                claimed = await scheduler.tick(deps, pool, every=timedelta(seconds=60))
                print(f"  one tick claimed {len(claimed)} companies")
                deadline, stuck = 180.0, 0
                try:
                    await asyncio.wait_for(deps.background.drain(), timeout=deadline)
                except TimeoutError:
                    stuck = len(pool.running)
                    print(f"  {stuck} run(s) still going after {deadline:g} s; where they wait:")
                    for task in asyncio.all_tasks():
                        if task.get_name().startswith(("sync-", "read-")):
                            task.print_stack(limit=2, file=sys.stdout)
                    deps.stopping.set()
                    await deps.background.cancel()
                duration = time.monotonic() - started
                cpu, sim_cpu = cpu_seconds() - cpu_before, sim.cpu_seconds() - sim_cpu_before
                watcher.cancel()
                if profiler is not None:
                    profiler.disable()
                    profiler.dump_stats(args.profile)
                    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
                async with deps.store.session() as session:
                    runs = (await session.exec(select(SyncRun))).all()
                statuses = Counter(str(run.status) for run in runs)
                failures = Counter(run.error_message for run in runs if run.status != "ok")
            finally:
                await deps.close_http()
                await deps.store.close()
            hits = await sim.hits()
    if args.dump_hits:
        with open(args.dump_hits, "w") as dump:  # noqa: ASYNC230  (after the measurement)
            json.dump([hit.__dict__ for hit in hits], dump)
    by_endpoint = Counter(
        hit.path if hit.path.startswith(BINDING) else "/".join(hit.path.split("/")[:3]) for hit in hits
    )
    figures = utilisation(hits, limit=args.limit, window=args.window)
    binding = by_endpoint[BINDING]
    result = {
        "companies": args.companies,
        "limit": args.limit,
        "window_s": args.window,
        "page_size": args.page_size,
        "vouchers_per_company": args.vouchers,
        **figures,
        "throttled": sum(1 for hit in hits if hit.status == 429),
        "companies_ok": statuses.get("ok", 0),
        "companies_failed": args.companies - statuses.get("ok", 0),
        "stuck_runs": stuck,
        "duration_s": round(duration, 2),
        "requests_total": len(hits),
        "binding_requests": binding,
        "binding_floor_s": round((math.ceil(binding / args.limit) - 1) * args.window, 1),
        "requests_by_endpoint": dict(by_endpoint.most_common()),
        "run_statuses": dict(statuses),
        "bot_cpu_s": round(cpu, 1),
        "simulator_cpu_s": round(sim_cpu, 1),
        "peak_rss_mb": peak_rss_mb(),
    }
    print(
        f"  {result['companies_ok']}/{args.companies} companies ok in {result['duration_s']} s; "
        f"{len(hits)} requests, {binding} on {BINDING} over {figures['binding_span_s']} s "
        f"(the limit's floor for that many: {result['binding_floor_s']} s)"
    )
    print(
        f"  utilisation {figures['utilisation']} over {figures['binding_windows']} whole windows "
        f"(strict {figures['utilisation_strict']}); 429s {result['throttled']}"
    )
    for message, count in failures.most_common(3):
        print(f"  {count} run(s) did not end ok: {message}")
    return finish(result, GOALS)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
