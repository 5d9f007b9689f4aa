"""The hot queries on `message` at growing sizes: where does the unpartitioned table degrade?

    uv run python bench/history.py URL [URL ...] [--samples 200] [--out FILE]

Each URL is a coach-db database filled by `python -m seed --demo N` (or a copy of one, grown
by copying its sessions and messages): run it on copies, add_message writes. For each database
it prints the sizes, then the latency (median / p95 over `--samples` random sessions or
users, sequential, raw asyncpg running the package's own SQL) of:

- add_message (the package's INSERT … SELECT into an active session, triggers included), and
  its throughput at 16 and 64 concurrent clients (each on its own active session, sharing
  a pool of 16 connections);
- transcript first page (50) and a next page, of a random session;
- user_history (the package's one-query JSON document) of a random user;
- the studio's message list: newest 20 by (timestamp, id), a capped count (10,001), and the
  messages of one session.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg

from coach_db.config import mask_url
from coach_db.conversations import _ADD_MESSAGE, _FIRST_PAGE, _NEXT_PAGE, _history_rows

# The server is shared (max_connections 100): 16 or 64 clients share a pool of 16 connections,
# as a service's requests share its pool.
POOL = 16
STUDIO_PAGE = 'SELECT * FROM "message" ORDER BY "timestamp" DESC, "id" DESC LIMIT 20'
CAPPED_COUNT = 'SELECT count(*) FROM (SELECT 1 FROM "message" LIMIT 10001) AS capped'
BY_SESSION = (
    'SELECT * FROM "message" WHERE "session_id" = $1 ORDER BY "timestamp" DESC, "id" DESC LIMIT 20'
)
METADATA = '{"model": "claude-sonnet-4-5", "tokens_in": 48, "tokens_out": 112}'


async def timed(samples: int, call: Callable[[int], Awaitable[Any]]) -> tuple[float, float]:
    """(median, p95) in ms of `samples` sequential calls."""
    times = []
    for i in range(samples):
        start = time.perf_counter()
        await call(i)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.95) - 1]


async def throughput(
    pool: asyncpg.Pool, sessions: list[int], clients: int, seconds: float
) -> float:
    done = 0
    stop = time.perf_counter() + seconds

    async def client(session_id: int) -> None:
        nonlocal done
        while time.perf_counter() < stop:
            await pool.fetchrow(_ADD_MESSAGE, session_id, "user", "How do I say no?", METADATA)
            done += 1

    start = time.perf_counter()
    await asyncio.gather(*(client(sessions[i % len(sessions)]) for i in range(clients)))
    return done / (time.perf_counter() - start)


async def bench(url: str, samples: int, seconds: float) -> list[str]:
    pool = await asyncpg.create_pool(url, min_size=2, max_size=POOL)
    assert pool is not None
    rng = random.Random(7)
    sizes = await pool.fetchrow(
        "SELECT (SELECT reltuples::bigint FROM pg_class WHERE relname = 'message') AS messages,"
        " (SELECT count(*) FROM conversation_session) AS sessions,"
        " pg_size_pretty(pg_total_relation_size('message')) AS total,"
        " pg_size_pretty(pg_relation_size('message')) AS heap,"
        " pg_size_pretty(pg_indexes_size('message')) AS indexes"
    )
    assert sizes is not None
    ids = [r["id"] for r in await pool.fetch("SELECT id FROM conversation_session")]
    users = [r["id"] for r in await pool.fetch('SELECT id FROM "user"')]
    active = [
        r["id"]
        for r in await pool.fetch(
            "SELECT id FROM conversation_session WHERE status = 'active' ORDER BY random() LIMIT 64"
        )
    ]
    picks = [rng.choice(ids) for _ in range(samples)]
    rows: list[tuple[str, tuple[float, float]]] = []

    async def first_page(i: int) -> None:
        await pool.fetch(_FIRST_PAGE, picks[i], 50)

    async def next_page(i: int) -> None:
        page = await pool.fetch(_FIRST_PAGE, picks[i], 50)
        if page:
            await pool.fetch(_NEXT_PAGE, picks[i], page[-1]["timestamp"], page[-1]["id"], 50)

    async def history(i: int) -> None:
        async with pool.acquire() as conn, conn.transaction(isolation="repeatable_read"):
            await _history_rows(conn, users[i % len(users)], None)

    async def add(i: int) -> None:
        await pool.fetchrow(_ADD_MESSAGE, active[i % len(active)], "user", "Hi", METADATA)

    async def studio_page(i: int) -> None:
        await pool.fetch(STUDIO_PAGE)

    async def capped(i: int) -> None:
        await pool.fetchval(CAPPED_COUNT)

    async def by_session(i: int) -> None:
        await pool.fetch(BY_SESSION, picks[i])

    for label, call in [
        ("add_message, c=1", add),
        ("transcript first page (50)", first_page),
        ("transcript first + next page", next_page),
        ("user_history (50 sessions x <=200 messages)", history),
        ("studio: newest 20 messages", studio_page),
        ("studio: capped count (10,001)", capped),
        ("studio: one session's messages", by_session),
    ]:
        n = samples if "user_history" not in label else max(samples // 10, 10)
        rows.append((label, await timed(n, call)))
    rate16 = await throughput(pool, active, 16, seconds)
    rate64 = await throughput(pool, active, 64, seconds)
    await pool.close()
    load = os.getloadavg()[0]
    out = [
        f"### {mask_url(url)}: {sizes['messages']:,} messages, {sizes['sessions']:,} sessions;"
        f" message table {sizes['total']} (heap {sizes['heap']}, indexes {sizes['indexes']});"
        f" load average {load:.1f}",
        "",
        "| query | median ms | p95 ms |",
        "|---|---|---|",
        *(f"| {label} | {med:.2f} | {p95:.2f} |" for label, (med, p95) in rows),
        f"| add_message throughput, c=16 (16 sessions) | {rate16:,.0f} msg/s | |",
        f"| add_message throughput, c=64 (64 sessions) | {rate64:,.0f} msg/s | |",
        "",
    ]
    print("\n".join(out), flush=True)
    return out


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("urls", nargs="+")
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    lines = [
        f"message history at growing sizes, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC; PostgreSQL"
        " on 2 cores shared with 7 other engineers' test runs; raw asyncpg with the package's SQL",
        "",
    ]
    for url in args.urls:
        lines += await bench(url, args.samples, args.seconds)
    if args.out:
        args.out.write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    asyncio.run(main())
