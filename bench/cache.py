"""The scenario cache (Redis) against the same reads from PostgreSQL, and raw asyncpg (not a test).

    uv run python bench/cache.py [--reps 7] [--seconds 1] [--out bench/results/cache.txt]

Creates a throw-away database (`coach-db deploy`) with 50 scenarios (N active), then, for each
workload, runs raw asyncpg, the package with the cache off (PostgreSQL) and the package with
the cache on (a hit in Redis) for `--seconds` each, in interleaved repetitions (the order
rotating) so that this shared machine's drift hits all alike; prints median rates and ratios
to raw. Redis: COACH_DB_CACHE_URL or 127.0.0.1:6379/0, under a prefix of its own, deleted after.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from redis.asyncio import Redis

import coach_db
from coach_db import Scenario, active_scenarios, scenario_by_slug
from coach_db import cache as cache_module

ROOT = Path(__file__).resolve().parent.parent
SERVER = os.environ.get("BENCH_SERVER_URL", "postgres://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("COACH_DB_CACHE_URL", "redis://127.0.0.1:6379/0")
ACTIVE_SQL = 'SELECT * FROM "scenario" WHERE "is_active" ORDER BY "name", "id"'
SLUG_SQL = 'SELECT * FROM "scenario" WHERE "slug" = $1'


async def rate(call: Callable[[], Awaitable[Any]], seconds: float, clients: int) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await call()
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.perf_counter() - start)


async def keep_busy(url: str, stop: asyncio.Event) -> None:
    conn = await asyncpg.connect(url)
    while not stop.is_set():
        await conn.fetchval("SELECT count(*) FROM generate_series(1, 300000)")
    await conn.close()


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):,.0f} ({min(values):,.0f}-{max(values):,.0f})"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--out", type=Path)
    parser.add_argument(
        "--busy",
        type=int,
        default=0,
        help="Keep PostgreSQL busy meanwhile with N connections of CPU-heavy queries.",
    )
    args = parser.parse_args()

    name = f"scale_bench_cache_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(SERVER)
    await admin.execute(f'CREATE DATABASE "{name}"')
    url = urlunsplit(urlsplit(SERVER)._replace(path=f"/{name}"))
    prefix = f"coach-db-bench-{uuid.uuid4().hex[:8]}:"
    lines: list[str] = []
    try:
        env = {**os.environ, "DATABASE_URL": url}
        deploy = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "coach_db", "deploy", env=env, cwd=ROOT
        )
        assert await deploy.wait() == 0
        raw = await asyncpg.create_pool(url, min_size=10, max_size=10)
        assert raw is not None
        await coach_db.init_db(url)
        stop_busy = asyncio.Event()
        busy = [asyncio.create_task(keep_busy(url, stop_busy)) for _ in range(args.busy)]
        load = os.getloadavg()
        version = await raw.fetchval("SHOW server_version")
        lines += [
            f"coach-db scenario cache vs PostgreSQL vs raw asyncpg, "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC; load average {load[0]:.1f} at the start",
            f"PostgreSQL {version} and Redis on 127.0.0.1, 2 shared cores; pools of 10; "
            f"{args.reps} interleaved reps of {args.seconds:g} s, median rate (min-max)"
            + (
                f"; PostgreSQL kept busy by {args.busy} connections of CPU-heavy queries"
                if args.busy
                else ""
            ),
            "",
            "| workload | clients | raw asyncpg /s | package, cache off /s | package, cache hit /s"
            " | cache hit / raw | cache hit / cache off |",
            "|---|---|---|---|---|---|---|",
        ]
        for active in (2, 20):
            await Scenario.all().delete()
            for i in range(50):
                await Scenario.create(
                    name=f"Scenario {i:02}",
                    slug=f"scenario-{i:02}",
                    description="A hard conversation. " * 20,
                    partner_persona="A difficult person.",
                    partner_system_prompt="Stay in role. " * 80,
                    coach_system_prompt="Give feedback. " * 80,
                    partner_model="claude-sonnet-4-5",
                    coach_model="claude-haiku-4-5",
                    is_active=i < active,
                )
            workloads: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
                (
                    f"active_scenarios(), {active} of 50 active",
                    lambda: raw.fetch(ACTIVE_SQL),
                    active_scenarios,
                ),
            ]
            if active == 2:
                workloads.append(
                    (
                        "scenario_by_slug()",
                        lambda: raw.fetchrow(SLUG_SQL, "scenario-01"),
                        lambda: scenario_by_slug("scenario-01"),
                    )
                )
            for label, raw_call, package_call in workloads:
                for clients in (1, 16):
                    rates: dict[str, list[float]] = {"raw": [], "off": [], "hit": []}
                    for rep in range(args.reps):
                        order = ["raw", "off", "hit"]
                        order = order[rep % 3 :] + order[: rep % 3]
                        for kind in order:
                            if kind == "hit":
                                await cache_module.open_cache(REDIS, prefix=prefix)
                                await package_call()  # warm
                                call = package_call
                            elif kind == "off":
                                await cache_module.close_cache()
                                call = package_call
                            else:
                                call = raw_call
                            rates[kind].append(await rate(call, args.seconds, clients))
                            await cache_module.close_cache()
                    med = {k: statistics.median(v) for k, v in rates.items()}
                    cells = " | ".join(_cell(rates[k]) for k in ("raw", "off", "hit"))
                    lines.append(
                        f"| {label} | {clients} | {cells}"
                        f" | x{med['hit'] / med['raw']:.2f} | x{med['hit'] / med['off']:.2f} |"
                    )
                    print(lines[-1], flush=True)
        stop_busy.set()
        await asyncio.gather(*busy)
        load = os.getloadavg()
        lines += ["", f"load average {load[0]:.1f} at the end"]
        await raw.close()
    finally:
        await coach_db.close_db()
        redis = Redis.from_url(REDIS)
        keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)


if __name__ == "__main__":
    asyncio.run(main())
