"""How long does one scheduler tick take to find and claim the due companies among 10,000?

10,000 companies in a SQLite file (inserted with executemany): most healthy, some connected, some with a
permission error, some awaiting approval or still drafts, some disconnected or deactivated (those keep the
stale `next_sync_at` of their last sync, as deactivation leaves it). 500 syncable companies are due; a few
companies have a run going (live lease); every connected company has a history of finished runs. Each round
calls `scheduler.tick` — take the tick's lease, close runs whose lease ran out, claim the due companies with
`engine.due(limit=500, hold=900)` — with a pool that records what it is handed and starts nothing, then
`engine.due` alone. Between rounds the claimed companies are made due again (not timed).

Figures (the last line printed is one JSON object):
- tick_ms: the worst tick over the rounds, the first (cold) one included (goal <= 250); due_ms: the worst
  `engine.due` alone; each round's figures;
- claimed: companies per tick (must be exactly the 500 due ones);
- rss_mb: resident memory after the rounds, and peak_rss_mb.
Exits 1 when a goal is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from _support import bench_settings, company_row, finish, insert_companies, load_note, peak_rss_mb, rss_mb
from sqlalchemy import bindparam, insert, update

from bot import scheduler
from bot.app import build_deps
from bot.runtime import Deps
from bot.store.models import Company, Connection, SyncRun
from bot.sync import engine

GOALS = {"tick_ms": ("<=", 250), "wrong_claims": ("<=", 0)}
# Share of each state among the companies that are not due (the due ones are all syncable).
STATES = (
    ("healthy", 0.80),
    ("connected", 0.03),
    ("permission_error", 0.02),
    ("awaiting_approval", 0.06),
    ("draft", 0.03),
    ("disconnected", 0.02),
    ("deactivated", 0.04),
)
SYNCABLE = {"healthy", "connected", "permission_error"}


class HeldPool(scheduler.SyncPool):
    """A pool that records the companies it is handed and starts no run."""

    def __init__(self, deps: Deps) -> None:
        """A pool of one slot that is never used."""
        super().__init__(deps, parallel=1)
        self.handed: list[int] = []

    def submit(self, company_id: int, *, actor: str = "schedule") -> None:
        """Record the company instead of starting its run."""
        self.handed.append(company_id)


def options() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--companies", type=int, default=10_000)
    parser.add_argument("--due", type=int, default=500)
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--runs-per-company", type=int, default=28, help="finished runs of each syncing company")
    parser.add_argument("--database-url", help="instead of a SQLite file in a temp dir")
    return parser.parse_args()


def plan(companies: int, due: int, rng: random.Random) -> list[str]:
    """Each company's state: the first `due` are syncable and due, the rest drawn from STATES."""
    names, weights = zip(*STATES, strict=True)
    due_states = rng.choices(["healthy", "connected", "permission_error"], weights=[0.9, 0.06, 0.04], k=due)
    return due_states + rng.choices(names, weights=weights, k=companies - due)


async def populate(deps: Deps, args: argparse.Namespace) -> tuple[dict[int, Any], int]:
    """Insert the companies, their connections and run history; the due companies' ids and next_sync_at."""
    rng = random.Random(11)
    now = deps.clock()
    states = plan(args.companies, args.due, rng)
    rows = []
    for index, state in enumerate(states):
        if index < args.due:
            next_sync: Any = now - timedelta(seconds=rng.uniform(1, 7200))
        elif state in SYNCABLE:
            next_sync = now + timedelta(seconds=rng.uniform(60, 86_400))
        elif state in {"disconnected", "deactivated"}:
            next_sync = now - timedelta(days=rng.uniform(1, 400))  # left from their last sync
        else:
            next_sync = None
        rows.append(
            company_row(
                index,
                org_number=f"8{index:08d}",
                state=state,
                now=now,
                next_sync_at=next_sync,
                reconciliation_start=date(2025, 1, 1),
            )
        )
    started = time.perf_counter()
    ids = await insert_companies(deps, rows)
    by_index = [ids[row["org_number"]] for row in rows]
    sealed = deps.vault.seal("a-sealed-access-token-of-realistic-length-0123456789")
    connected = [by_index[index] for index, state in enumerate(states) if state not in {"draft", "awaiting_approval"}]
    connections = [
        {
            "company_id": company_id,
            "system": "eaccounting",
            "external_company_id": f"ext-{company_id}",
            "access_token_sealed": sealed,
            "refresh_token_sealed": sealed,
            "access_expires_at": now + timedelta(minutes=30),
            "scopes": "ea:api offline_access ea:accounting_readonly ea:sales_readonly",
            "connected_by": "U0OLA",
            "connected_at": now - timedelta(days=60),
            "version": 3,
        }
        for company_id in connected
    ]
    # A few runs going right now, on companies that are not due (their leases are alive: nothing to reap).
    history: list[dict[str, Any]] = [
        {
            "company_id": company_id,
            "started_at": now - timedelta(seconds=30),
            "finished_at": None,
            "status": "running",
            "owner": "bench:2:def456",
            "lease_until": now + timedelta(seconds=90),
            "actor": "schedule",
            "full": False,
            "requests": 0,
            "retries": 0,
            "rows_written": 0,
            "fiscal_years": 0,
            "accounts": 0,
            "vouchers": 0,
            "balances": 0,
            "error_message": None,
        }
        for company_id in by_index[args.due : args.due + 20]
    ]
    runs = len(history)
    async with deps.store.engine.begin() as connection:
        await connection.execute(insert(Connection.__table__), connections)  # type: ignore[attr-defined]
        await connection.execute(insert(SyncRun.__table__), history)  # type: ignore[attr-defined]
        # Finished runs, in slices so that setting up does not set the peak memory figure.
        for first in range(0, len(connected), 500):
            history = []
            for company_id in connected[first : first + 500]:
                for back in range(args.runs_per_company):
                    at = now - timedelta(hours=6 * (back + 1))
                    ok = rng.random() < 0.97
                    history.append(
                        {
                            "company_id": company_id,
                            "started_at": at,
                            "finished_at": at + timedelta(seconds=rng.uniform(5, 120)),
                            "status": "ok" if ok else "failed",
                            "owner": "bench:1:abc123",
                            "lease_until": at + timedelta(seconds=120),
                            "actor": "schedule",
                            "full": False,
                            "requests": 40,
                            "retries": 0,
                            "rows_written": 1200,
                            "fiscal_years": 2,
                            "accounts": 80,
                            "vouchers": 1000,
                            "balances": 0,
                            "error_message": None if ok else "Visma eAccounting answered 503",
                        }
                    )
            if history:
                await connection.execute(insert(SyncRun.__table__), history)  # type: ignore[attr-defined]
                runs += len(history)
    print(
        f"  inserted {len(rows):,} companies, {len(connections):,} connections and {runs:,} runs "
        f"in {time.perf_counter() - started:.1f} s"
    )
    counts: dict[str, int] = {}
    for state in states:
        counts[state] = counts.get(state, 0) + 1
    print("  states: " + ", ".join(f"{name} {count}" for name, count in sorted(counts.items(), key=lambda i: -i[1])))
    return {by_index[index]: rows[index]["next_sync_at"] for index in range(args.due)}, runs


async def make_due_again(deps: Deps, due: dict[int, Any]) -> None:
    """Put the claimed companies' next_sync_at back where it was (not timed)."""
    table = Company.__table__  # type: ignore[attr-defined]
    statement = update(table).where(table.c.id == bindparam("key")).values(next_sync_at=bindparam("when"))
    async with deps.store.engine.begin() as connection:
        await connection.execute(statement, [{"key": key, "when": when} for key, when in due.items()])


async def main() -> int:
    """Populate, then time ticks and claims; print the figures."""
    args = options()
    print(load_note())
    print(
        f"{args.companies:,} companies, {args.due} due; scheduler.tick with a pool that starts nothing, "
        f"{args.rounds} rounds"
    )
    with tempfile.TemporaryDirectory() as tmp:
        # Nothing here talks to Slack or Visma: with no run to reap, a tick makes no outside call.
        settings = bench_settings(
            database_url=args.database_url or f"sqlite:///{Path(tmp) / 'schedule.db'}",
            simulators_url="http://127.0.0.1:9",
            sync_claim_batch=args.due,
        )
        deps = build_deps(settings)
        try:
            await deps.store.migrate()
            due, runs = await populate(deps, args)
            expected = set(due)
            ticks: list[float] = []
            claims: list[float] = []
            wrong = 0
            claimed_counts = []
            for _ in range(args.rounds):
                pool = HeldPool(deps)
                started = time.perf_counter()
                claimed = await scheduler.tick(deps, pool, every=timedelta(seconds=60))
                ticks.append((time.perf_counter() - started) * 1000)
                claimed_counts.append(len(claimed))
                wrong += len(set(claimed) ^ expected) + len(set(pool.handed) ^ expected)
                await make_due_again(deps, due)
                started = time.perf_counter()
                alone = await engine.due(deps, limit=args.due, hold=scheduler.CLAIM_HOLD.total_seconds())
                claims.append((time.perf_counter() - started) * 1000)
                wrong += len(set(alone) ^ expected)
                await make_due_again(deps, due)
                print(f"  tick {ticks[-1]:6.1f} ms ({len(claimed)} claimed); engine.due alone {claims[-1]:6.1f} ms")
        finally:
            await deps.close_http()
            await deps.store.close()
    result = {
        "companies": args.companies,
        "due": args.due,
        "sync_runs": runs,
        "rounds": args.rounds,
        "tick_ms": round(max(ticks), 1),
        "tick_first_ms": round(ticks[0], 1),
        "tick_warm_worst_ms": round(max(ticks[1:] or ticks), 1),
        "due_ms": round(max(claims), 1),
        "ticks_ms": [round(value, 1) for value in ticks],
        "due_alone_ms": [round(value, 1) for value in claims],
        "claimed": claimed_counts,
        "wrong_claims": wrong,
        "rss_mb": rss_mb(),
        "peak_rss_mb": peak_rss_mb(),
    }
    print(
        f"  worst tick {result['tick_ms']} ms (first {result['tick_first_ms']} ms, warm worst "
        f"{result['tick_warm_worst_ms']} ms); worst engine.due {result['due_ms']} ms; rss {result['rss_mb']} MB"
    )
    return finish(result, GOALS)


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
