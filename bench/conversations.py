"""Benchmark coach_db.conversations against raw asyncpg on the same rows (not run by the tests).

    uv run python bench/conversations.py [--reps 3] [--server postgres://postgres@127.0.0.1/postgres]

Creates a throw-away database on the server, builds it with `aerich upgrade`, and runs each
workload for every contender in interleaved repetitions (so drift of the machine hits all of
them alike). Prints the median [min-max] rate and the ratio to raw asyncpg. Both sides use a
pool of 10 connections, coach_db's default.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
from scratch import add_server_option, migrated_database  # bench/scratch.py
from tortoise.expressions import Q

import coach_db
from coach_db import Message, Scenario, User, add_message, start_session, transcript, user_history
from coach_db.types import UserWithSessions

ROOT = Path(__file__).resolve().parent.parent
POOL = 10
METADATA = {"model": "claude-sonnet-4-5", "tokens": {"in": 48, "out": 112}, "latency_ms": 812}
INSERT = "INSERT INTO message (session_id, role, content, metadata) VALUES ($1, $2, $3, $4::jsonb)"
PAGE = (
    'SELECT "id", "session_id", "role", "content", "timestamp", "audio_url", "metadata"'
    ' FROM "message" WHERE "session_id" = $1 AND ("timestamp", "id") > ($2, $3)'
    ' ORDER BY "timestamp", "id" LIMIT $4'
)
Run = Callable[[], Awaitable[int]]  # does the work, returns the number of operations


async def new_sessions(user: User, scenario: Scenario, n: int) -> list[int]:
    return [int((await start_session(user, scenario)).id) for _ in range(n)]


def appends_coach_db(sessions: list[int], total: int, concurrency: int) -> Run:
    async def run() -> int:
        async def worker(w: int) -> None:
            session = sessions[w % len(sessions)]
            for i in range(total // concurrency):
                await add_message(session, "partner", f"reply {w}.{i}", METADATA)

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        return total

    return run


def appends_asyncpg(pool: asyncpg.Pool, sessions: list[int], total: int, concurrency: int) -> Run:
    metadata = json.dumps(METADATA)

    async def run() -> int:
        async def worker(w: int) -> None:
            session = sessions[w % len(sessions)]
            for i in range(total // concurrency):
                await pool.execute(INSERT, session, "partner", f"reply {w}.{i}", metadata)

        await asyncio.gather(*(worker(w) for w in range(concurrency)))
        return total

    return run


def without_triggers(pool: asyncpg.Pool, run: Run) -> Run:
    """The same run with the counting triggers off (foreign keys stay on): what they cost."""

    async def wrapped() -> int:
        await pool.execute('ALTER TABLE "message" DISABLE TRIGGER USER')
        try:
            return await run()
        finally:
            await pool.execute('ALTER TABLE "message" ENABLE TRIGGER USER')

    return wrapped


def pages_coach_db(session: int, walks: int) -> Run:
    async def run() -> int:
        pages = 0
        for _ in range(walks):
            page = await transcript(session, limit=50)
            while page:
                pages += 1
                page = await transcript(session, after=page[-1], limit=50)
        return pages

    return run


def pages_tortoise_queryset(session: int, walks: int) -> Run:
    """The same pages written with the ORM's query builder (no row comparison: an OR)."""

    async def run() -> int:
        pages = 0
        for _ in range(walks):
            query = Message.filter(session_id=session).order_by("timestamp", "id").limit(50)
            page = await query
            while page:
                pages += 1
                last = page[-1]
                page = await query.filter(
                    Q(timestamp__gt=last.timestamp) | Q(timestamp=last.timestamp, id__gt=last.id)
                )
        return pages

    return run


def pages_asyncpg(pool: asyncpg.Pool, session: int, walks: int) -> Run:
    async def run() -> int:
        pages = 0
        for _ in range(walks):
            after: tuple[datetime, int] = (datetime(1970, 1, 1, tzinfo=UTC), 0)
            while rows := await pool.fetch(PAGE, session, *after, 50):
                pages += 1
                after = (rows[-1]["timestamp"], rows[-1]["id"])
        return pages

    return run


def history_coach_db(user_id: int, calls: int) -> Run:
    async def run() -> int:
        for _ in range(calls):
            await user_history(user_id)
        return calls

    return run


def history_orm(user_id: int, calls: int) -> Run:
    async def run() -> int:
        for _ in range(calls):
            await UserWithSessions.from_tortoise_orm(await User.get(id=user_id))
        return calls

    return run


async def rate(run: Run) -> float:
    started = time.perf_counter()
    done = await run()
    return done / (time.perf_counter() - started)


async def measure(
    title: str, unit: str, contenders: dict[str, Run], reps: int, baseline: str
) -> None:
    rates: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(reps):  # interleaved: one run of each per repetition
        for name, run in contenders.items():
            rates[name].append(await rate(run))
    base = statistics.median(rates[baseline])
    print(f"\n{title} ({unit}/s, median [min-max] of {reps})")
    for name, values in rates.items():
        median = statistics.median(values)
        print(
            f"  {name:<38} {median:>9,.0f} [{min(values):,.0f}-{max(values):,.0f}]"
            f"  x{median / base:.2f}"
        )


async def bench(url: str, reps: int) -> None:
    await coach_db.init_db(url)  # default pool: 10 connections
    pool = await asyncpg.create_pool(url, min_size=POOL, max_size=POOL)
    assert pool is not None
    try:
        user = await User.create(email=f"bench-{uuid.uuid4().hex[:8]}@example.com", username="B")
        scenario = await Scenario.create(
            name="Bench",
            slug=f"bench-{uuid.uuid4().hex[:8]}",
            description="d",
            partner_persona="p",
            partner_system_prompt="p",
            coach_system_prompt="c",
            partner_model="m",
            coach_model="m",
        )
        # Warm both pools and the prepared-statement caches.
        warm = await new_sessions(user, scenario, 1)
        await appends_coach_db(warm, 50, 10)()
        await appends_asyncpg(pool, warm, 50, 10)()

        for concurrency, total, n_sessions in [(1, 2000, 1), (16, 4000, 8)]:
            # Two writers per session at c=16, as when partner and coach answer together.
            sessions = {
                name: await new_sessions(user, scenario, n_sessions)
                for name in ("coach_db", "asyncpg", "asyncpg_off")
            }
            await measure(
                f"add_message c={concurrency}, {total} messages into {n_sessions} session(s)",
                "messages",
                {
                    "raw asyncpg INSERT (triggers on)": appends_asyncpg(
                        pool, sessions["asyncpg"], total, concurrency
                    ),
                    "coach_db.add_message": appends_coach_db(
                        sessions["coach_db"], total, concurrency
                    ),
                    "raw asyncpg INSERT, triggers off": without_triggers(
                        pool, appends_asyncpg(pool, sessions["asyncpg_off"], total, concurrency)
                    ),
                },
                reps,
                baseline="raw asyncpg INSERT (triggers on)",
            )

        [long] = await new_sessions(user, scenario, 1)
        await appends_asyncpg(pool, [long], 2000, 16)()
        await measure(
            "transcript: walk 2000 messages in pages of 50, 5 times",
            "pages",
            {
                "raw asyncpg keyset": pages_asyncpg(pool, long, 5),
                "coach_db.transcript": pages_coach_db(long, 5),
                "Tortoise queryset (Q OR)": pages_tortoise_queryset(long, 5),
            },
            reps,
            baseline="raw asyncpg keyset",
        )

        reader = await User.create(email=f"reader-{uuid.uuid4().hex[:8]}@example.com", username="R")
        for session in await new_sessions(reader, scenario, 20):
            await appends_asyncpg(pool, [session], 50, 1)()
        await measure(
            "user_history: 20 sessions x 50 messages + scenario, 20 calls",
            "calls",
            {
                "UserWithSessions.from_tortoise_orm": history_orm(int(reader.id), 20),
                "coach_db.user_history": history_coach_db(int(reader.id), 20),
            },
            reps,
            baseline="UserWithSessions.from_tortoise_orm",
        )
    finally:
        await pool.close()
        await coach_db.close_db()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=3)
    add_server_option(parser)
    args = parser.parse_args()
    with migrated_database(args.server) as (url, version):
        print(f"PostgreSQL {version}, {os.cpu_count()} cores, pools of {POOL}")
        asyncio.run(bench(url, args.reps))


if __name__ == "__main__":
    main()
