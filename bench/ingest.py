"""How fast does one big company's first sync go through the real read-and-write path, and at what memory cost?

One company with 1,000,000 vouchers (the rows of our voucher table; three voucher rows each in the JSON) over
three fiscal years. The eAccounting simulator runs in its own process on loopback, so its CPU and memory do not
count; its rate limit is lifted, as pacing is measured by bench/sync_budget.py. The bot's own code runs here:
`sync_company` with page size 1000, the eAccounting module, the engine's batched upserts into a SQLite file in
a temp dir. Then 1000 vouchers are changed at Visma and a second (incremental) sync runs. Last, the floor: the
same voucher rows, regenerated from the same seed and converted to what we store, upserted with plain `sqlite3`
executemany into an identical table (same migrations, same pragmas, same batch size), in a separate process;
only executemany and commit are timed.

Figures (the last line printed is one JSON object):
- rows_per_s: voucher rows stored ÷ the first sync's wall time (goal >= 50,000);
- raw_rows_per_s: the plain sqlite3 floor, and raw_ratio = ours ÷ raw (goal >= 0.25);
- peak_rss_mb: ru_maxrss of this (the bot's) process (goal <= 150);
- incremental_s and incremental_rows (voucher rows the second sync read), with its requests.
Where the time goes: wall time inside HTTP GETs, JSON parsing, the upserts (conversion and executemany) and
the write transactions, and the simulator's own service time. `--profile FILE` adds a cProfile of the first
sync. `--rows 100000` for a quick try. Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import json
import os
import pstats
import sqlite3
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Awaitable, Callable
from datetime import date
from pathlib import Path
from typing import Any

from _support import (
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
    rss_mb,
    settle_like_serve,
)

ORG_NUMBER = "987654321"
SEED = 7
YEARS = 3
SCRIPT = os.path.abspath(__file__)
GOALS = {"rows_per_s": (">=", 50_000), "raw_ratio": (">=", 0.25), "peak_rss_mb": ("<=", 150)}


def options() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="vouchers of the company")
    parser.add_argument("--page-size", type=int, default=1000)
    parser.add_argument("--modify", type=int, default=1000, help="vouchers changed before the second sync")
    parser.add_argument("--profile", metavar="FILE", help="cProfile the first sync into FILE and print the top")
    parser.add_argument("--raw-baseline", nargs=2, metavar=("RAW_DB", "BOT_DB"), help=argparse.SUPPRESS)
    return parser.parse_args()


class Phases:
    """Wall time and calls inside the wrapped steps of the read-and-write path (steps overlap in time)."""

    def __init__(self) -> None:
        """Nothing counted yet."""
        self.seconds: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self.rows: Counter[str] = Counter()

    def wrap_async(self, name: str, function: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        """`function`, timed under `name`."""

        async def timed(*args: Any, **kwargs: Any) -> Any:
            """Await the wrapped coroutine function, adding its wall time."""
            start = time.perf_counter()
            try:
                return await function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
                self.calls[name] += 1

        return timed

    def wrap(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """`function`, timed under `name`."""

        def timed(*args: Any, **kwargs: Any) -> Any:
            """Call the wrapped function, adding its wall time."""
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - start
                self.calls[name] += 1

        return timed

    def snapshot(self) -> dict[str, Any]:
        """The figures so far, rounded."""
        return {name: {"s": round(value, 2), "calls": self.calls[name]} for name, value in self.seconds.items()}

    def reset(self) -> None:
        """Start counting again."""
        self.seconds.clear()
        self.calls.clear()
        self.rows.clear()


def instrument(deps: Any, phases: Phases) -> None:
    """Time the HTTP GETs, the parsing, the upserts and the write transactions, without changing what they do."""
    from bot.store import books as store_books
    from bot.sync import engine

    upsert = store_books.upsert

    async def counted_upsert(session: Any, *, book: Any, company_id: int, rows: Any) -> int:
        """The store's upsert, counting rows per book."""
        phases.rows[str(book)] += len(rows)
        return int(await upsert(session, book=book, company_id=company_id, rows=rows))

    store_books.upsert = phases.wrap_async("upsert (convert + executemany)", counted_upsert)  # type: ignore[assignment]
    engine._write = phases.wrap_async("write transaction (upsert + cursor + run + commit)", engine._write)  # type: ignore[assignment]
    deps.http.get = phases.wrap_async("HTTP GET (request to response read)", deps.http.get)
    system = deps.system_for("eaccounting")
    system.parse = phases.wrap("parse (orjson)", system.parse)


def profile_summary(profiler: cProfile.Profile, top: int = 20) -> dict[str, float]:
    """Print the top functions by own time; return own time grouped by library, as shares of the total."""
    stats = pstats.Stats(profiler)
    stats.sort_stats("tottime").print_stats(top)
    groups = {
        "sqlalchemy": "database",
        "aiosqlite": "database",
        "sqlmodel": "database",
        "greenlet": "database",
        "httpx": "http client",
        "httpcore": "http client",
        "h11": "http client",
        "anyio": "http client",
        "slack_sdk": "slack",
        "aiohttp": "slack",
    }
    totals: dict[str, float] = defaultdict(float)
    for (filename, _, name), (_, _, own, _, _) in stats.stats.items():  # type: ignore[attr-defined]
        if "site-packages/" in filename:
            package = filename.split("site-packages/")[1].split("/")[0]
            key = groups.get(package, package)
        elif "/bot/" in filename or "/commands/" in filename:
            key = "ours: " + filename.rsplit("/", 2)[-2] + "/" + filename.rsplit("/", 1)[-1]
        elif filename == "~":
            key = "built-in: " + name.replace("<method ", "").replace("<built-in method ", "")[:40]
        else:
            key = "stdlib: " + filename.rsplit("/", 1)[-1]
        totals[key] += own
    whole = sum(totals.values()) or 1.0
    shares = {key: round(value / whole, 3) for key, value in sorted(totals.items(), key=lambda item: -item[1])[:15]}
    print("  own time by library (share of the profiled loop thread):")
    for key, share in shares.items():
        print(f"    {share * 100:5.1f}%  {key}")
    return shares


# ---------------------------------------------------------------- the plain sqlite3 floor (its own process)


def raw_baseline(raw_db: str, bot_db: str, rows: int) -> dict[str, Any]:
    """Upsert the same voucher rows with plain sqlite3 executemany into an identical table; time only the writes."""
    from orjson import dumps

    from bot.domain.books import Book
    from bot.simulators.eaccounting import EAccountingWorld, add_bulk_company
    from bot.store.books import _statement
    from bot.store.engine import migrate
    from bot.sync.engine import BATCH_ROWS

    migrate(f"sqlite:///{raw_db}")
    sql, _ = _statement(Book.VOUCHERS, "sqlite")  # the same INSERT … ON CONFLICT DO UPDATE text as ours
    connection = sqlite3.connect(raw_db, isolation_level=None)
    for pragma in ("foreign_keys=ON", "journal_mode=WAL", "busy_timeout=5000"):
        connection.execute(f"PRAGMA {pragma}")
    connection.execute("ATTACH DATABASE ? AS bot", (bot_db,))
    connection.execute("INSERT INTO company SELECT * FROM bot.company")
    company_id = int(connection.execute("SELECT id FROM company").fetchone()[0])
    connection.execute("DETACH DATABASE bot")
    world = EAccountingWorld()
    bulk = add_bulk_company(world, org_number=ORG_NUMBER, name="x", vouchers=rows, seed=SEED, years=YEARS).bulk
    assert bulk is not None
    timed = 0.0
    for start in range(0, rows, BATCH_ROWS):
        batch = []
        for index in range(start, min(rows, start + BATCH_ROWS)):
            item = bulk.voucher(index)
            modified = item["ModifiedUtc"]
            batch.append(
                (
                    company_id,
                    item["Id"],
                    item["VoucherDate"][:10],
                    item["NumberAndNumberSeries"],
                    item["NumberSeries"],
                    item["VoucherType"],
                    item["VoucherText"],
                    f"{modified[:10]} {modified[11:19]}.000000",
                    item["SourceId"],
                    dumps(item["Attachments"]).decode(),
                    dumps(item["Rows"]).decode(),
                )
            )
        began = time.perf_counter()
        connection.execute("BEGIN")
        connection.executemany(sql, batch)
        connection.execute("COMMIT")
        timed += time.perf_counter() - began
    stored = int(connection.execute("SELECT count(*) FROM voucher").fetchone()[0])
    connection.close()
    return {"raw_s": timed, "raw_rows": stored}


async def run_raw(raw_db: Path, bot_db: Path, rows: int) -> dict[str, Any]:
    """Run the floor in a child process (its generator's memory must not count as ours)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        SCRIPT,
        "--rows",
        str(rows),
        "--raw-baseline",
        str(raw_db),
        str(bot_db),
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"bench: the sqlite3 baseline failed ({process.returncode})")
    figures: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return figures


def same_rows(ours: Path, raw: Path) -> bool:
    """Whether both tables hold the same vouchers (count; ids, dates, numbers, series, rows of a sample)."""
    query = (
        "SELECT external_id, voucher_date, number, number_series, source_id, rows FROM voucher "
        "ORDER BY external_id LIMIT 50 OFFSET ?"
    )
    mine, theirs = sqlite3.connect(ours), sqlite3.connect(raw)
    try:
        count = "SELECT count(*) FROM voucher"
        if mine.execute(count).fetchone() != theirs.execute(count).fetchone():
            return False
        return all(
            mine.execute(query, (offset,)).fetchall() == theirs.execute(query, (offset,)).fetchall()
            for offset in (0, 777, 4321)
        )
    finally:
        mine.close()
        theirs.close()


# ---------------------------------------------------------------- the benchmark


async def main(args: argparse.Namespace) -> int:
    """Sync the big company, change some vouchers, sync again, run the floor, print the figures."""
    from sqlmodel import select

    from bot.app import build_deps
    from bot.domain.books import Book
    from bot.store import books as store_books
    from bot.store.models import SyncRun
    from bot.sync.engine import sync_company

    print(load_note())
    print(
        f"one company, {args.rows:,} vouchers ({args.rows * 3:,} voucher rows in their JSON) over {YEARS} fiscal "
        f"years, page size {args.page_size}; simulator in its own process, rate limit lifted"
    )
    spec = BulkSpec(ORG_NUMBER, "Stor Bokføring AS", args.rows, rows_per_voucher=3, seed=SEED, years=YEARS)
    config = SimConfig(companies=[spec], rate_limit=10_000_000, rate_window=60.0)
    phases = Phases()
    with tempfile.TemporaryDirectory() as tmp:
        bot_db, raw_db = Path(tmp) / "ingest.db", Path(tmp) / "raw.db"
        async with SimulatorProcess(config) as sim:
            settings = bench_settings(
                database_url=f"sqlite:///{bot_db}",
                simulators_url=sim.url,
                eaccounting_rate_limit=10_000_000,
                visma_page_size=args.page_size,
            )
            deps = build_deps(settings)
            try:
                await deps.store.migrate()
                now = deps.clock()
                row = company_row(
                    1,
                    org_number=ORG_NUMBER,
                    name=spec.name,
                    state="connected",
                    now=now,
                    next_sync_at=None,
                    reconciliation_start=date(2027 - YEARS, 1, 1),
                )
                ids = await insert_companies(deps, [row])
                company_id = ids[ORG_NUMBER]
                await insert_connections(
                    deps,
                    [(company_id, sim.tokens[ORG_NUMBER])],
                    now=now,
                    external={company_id: sim.company_ids[ORG_NUMBER]},
                )
                instrument(deps, phases)
                settle_like_serve()
                rss_before = rss_mb()
                print(f"  bot process before the sync: rss {rss_before} MB, peak {peak_rss_mb()} MB")
                profiler = cProfile.Profile() if args.profile else None
                cpu_before, sim_cpu_before = cpu_seconds(), sim.cpu_seconds()
                if profiler is not None:
                    profiler.enable()
                started = time.perf_counter()
                status = await sync_company(deps, company_id=company_id, actor="bench")
                first_s = time.perf_counter() - started
                if profiler is not None:
                    profiler.disable()
                cpu, sim_cpu = cpu_seconds() - cpu_before, sim.cpu_seconds() - sim_cpu_before
                peak_after_first = peak_rss_mb()
                first_phases, first_rows = phases.snapshot(), dict(phases.rows)
                hits_first = await sim.hits()
                async with deps.store.session() as session:
                    vouchers = await store_books.count(session, book=Book.VOUCHERS, company_id=company_id)
                print(
                    f"  first sync: {status}, {vouchers:,} voucher rows stored in {first_s:.1f} s = "
                    f"{vouchers / first_s:,.0f} rows/s; bot CPU {cpu:.1f} s, simulator CPU {sim_cpu:.1f} s; "
                    f"peak rss {peak_after_first} MB"
                )
                for name, figure in first_phases.items():
                    print(f"    {figure['s']:7.2f} s in {figure['calls']:5d} × {name}")
                served = [hit.served - hit.arrived for hit in hits_first if hit.path == "/v2/vouchers"]
                print(
                    f"    {sum(served):7.2f} s the simulator spent answering {len(served)} voucher pages "
                    f"({1000 * sum(served) / max(1, len(served)):.1f} ms a page)"
                )
                shares = profile_summary(profiler) if profiler is not None else None
                if profiler is not None and args.profile:
                    profiler.dump_stats(args.profile)

                changed = await sim.modify(ORG_NUMBER, args.modify)
                phases.reset()
                started = time.perf_counter()
                second = await sync_company(deps, company_id=company_id, actor="bench")
                incremental_s = time.perf_counter() - started
                hits_all = await sim.hits()
                second_hits = Counter(
                    "/".join(hit.path.split("/")[:3]) for hit in hits_all[len(hits_first) :] if hit.status == 200
                )
                incremental_rows = dict(phases.rows)
                print(
                    f"  incremental sync after {changed} vouchers changed: {second} in {incremental_s:.2f} s, read "
                    f"{incremental_rows.get('vouchers', 0)} voucher rows in {second_hits['/v2/vouchers']} page(s); "
                    f"{sum(second_hits.values())} requests"
                )
                async with deps.store.session() as session:
                    runs = (await session.exec(select(SyncRun))).all()
                    errors = [run.error_message for run in runs if run.error_message]
            finally:
                await deps.close_http()
                await deps.store.close()
            peak = peak_rss_mb()
        raw = await run_raw(raw_db, bot_db, args.rows)
        identical = same_rows(bot_db, raw_db)
    raw_rows_per_s = raw["raw_rows"] / raw["raw_s"]
    rows_per_s = vouchers / first_s
    print(
        f"  plain sqlite3 executemany of the same {raw['raw_rows']:,} rows: {raw['raw_s']:.1f} s = "
        f"{raw_rows_per_s:,.0f} rows/s (sample rows identical: {identical})"
    )
    for message in errors:
        print(f"  a run recorded: {message}")
    result: dict[str, Any] = {
        "vouchers": args.rows,
        "page_size": args.page_size,
        "first_sync_status": str(status),
        "rows_stored": vouchers,
        "first_sync_s": round(first_s, 2),
        "rows_per_s": round(rows_per_s),
        "raw_rows_per_s": round(raw_rows_per_s),
        "raw_ratio": round(rows_per_s / raw_rows_per_s, 3),
        "raw_s": round(raw["raw_s"], 2),
        "same_rows": identical,
        "peak_rss_mb": peak,
        "rss_before_sync_mb": rss_before,
        "bot_cpu_s": round(cpu, 1),
        "simulator_cpu_s": round(sim_cpu, 1),
        "phases_s": {name: figure["s"] for name, figure in first_phases.items()},
        "simulator_voucher_pages_s": round(sum(served), 2),
        "incremental_status": str(second),
        "incremental_s": round(incremental_s, 2),
        "incremental_rows": incremental_rows.get("vouchers", 0),
        "incremental_changed": changed,
        "incremental_requests": dict(second_hits),
        "rows_by_book_first": first_rows,
    }
    if shares is not None:
        result["profile_shares"] = shares
    return finish(result, GOALS)


if __name__ == "__main__":
    arguments = options()
    if arguments.raw_baseline:
        raw_db, bot_db = arguments.raw_baseline
        print(json.dumps(raw_baseline(raw_db, bot_db, arguments.rows)))
        sys.exit(0)
    sys.exit(asyncio.run(main(arguments)))
