"""`coach-db adopt` at production size: a Prisma-shaped database built in SQL, then timed.

    uv run python -m bench.adopt --messages 1000000 [--keep]

Builds database `<prefix>_<n>` from the Prisma package's DDL (tests/prisma_package.py)
with server-side generate_series (10 messages a session, 100 sessions a user: no Prisma
needed), then times the dry run and the adoption, samples the database's size every second
for the peak disk, and, side by side, the raw asyncpg baseline: one plain
`CREATE TABLE … AS SELECT` copy of the Message table (the least any in-place conversion
that rewrites the rows can cost).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import time

import asyncpg

from coach_db.tools.adoption.convert import adopt, dry_run
from tests.prisma_package import Variant, create_schema

SERVER = "postgresql://postgres@127.0.0.1:5432"
# Conversation-like text (a real vocabulary, not random tokens: the full-text index's cost
# depends on how many distinct words there are), ~140 characters a message.
PHRASES = [
    "I hear that you're frustrated, and I want to understand what happened.",
    "Honestly, I don't think that's fair to say about the whole team.",
    "Can we slow down for a second and talk about what you actually need?",
    "You always do this at dinner, and everyone just goes along with it.",
    "That's a good example of naming the feeling before making your point.",
    "Try asking an open question instead of defending the decision again.",
    "I'm not trying to win the argument; I'd like us to find something that works.",
    "Well, the numbers from last quarter tell a different story, don't they?",
    "Let me repeat back what I heard, so you know I'm listening.",
    "We agreed on Friday, and now the deadline moved without anyone telling me.",
    "Notice how your tone rose there; a pause would have helped.",
    "What would a good outcome look like for you by the end of this week?",
    "I understand, but I still need the report before the client call.",
    "Thanks for saying that. It helps to know where you're coming from.",
    "Strong moment: you set a boundary without blaming anyone.",
    "My uncle keeps bringing up politics and I never know how to respond.",
    "Can I suggest we park this and come back to it after lunch?",
]


async def build(url: str, messages: int) -> None:
    sessions = max(1, messages // 10)
    users = max(1, sessions // 100)
    conn = await asyncpg.connect(url)
    try:
        await create_schema(conn, Variant())
        await conn.execute(
            """INSERT INTO "Scenario" ("name", "slug", "description", "partnerPersona",
            "partnerSystemPrompt", "coachSystemPrompt", "partnerModel", "coachModel",
            "updatedAt")
            SELECT 'Scenario ' || i, 'scenario-' || i, 'd', 'p', 'ps', 'cs', 'claude-sonnet-4-5',
                   'claude-haiku-4-5', '2025-01-01' FROM generate_series(1, 2) i"""
        )
        await conn.execute(
            """INSERT INTO "User" ("email", "username", "passwordHash", "updatedAt")
            SELECT 'User' || i || '@Example.com', 'User ' || i,
                   '$2b$10$' || rpad(md5(i::text), 53, 'x'), '2025-01-01'
            FROM generate_series(1, $1) i""",
            users,
        )
        await conn.execute(
            """INSERT INTO "ConversationSession" ("userId", "scenarioId", "status", "startedAt",
                "endedAt", "totalMessages", "durationSeconds")
            SELECT 1 + i % $2, 1 + i % 2, CASE WHEN i % 10 = 0 THEN 'active' ELSE 'completed' END,
                   timestamp '2025-01-01' + i * interval '30 seconds',
                   CASE WHEN i % 10 <> 0
                        THEN timestamp '2025-01-01' + i * interval '30 seconds' + interval '20 s'
                   END,
                   10, CASE WHEN i % 10 <> 0 THEN 20 END
            FROM generate_series(1, $1) i""",
            sessions,
            users,
        )
        await conn.execute(
            """INSERT INTO "Message" ("sessionId", "role", "content", "timestamp", "metadata")
            SELECT 1 + i / 10, (ARRAY['user', 'partner', 'coach'])[1 + i % 3],
                   ($2::text[])[1 + i % 17] || ' ' || ($2::text[])[1 + (i / 17) % 17],
                   timestamp '2025-01-01' + (1 + i / 10) * interval '30 seconds'
                       + (i % 10) * interval '1.5 s',
                   jsonb_build_object('tokens', i % 500, 'model', 'claude-haiku-4-5')
            FROM generate_series(0, $1 - 1) i""",
            messages,
            PHRASES,
        )
        await conn.execute("VACUUM ANALYZE")
    finally:
        await conn.close()


# The database's files plus the temporary files of adopt's server process (sorts, the
# triggers' transition tables), which pg_database_size leaves out.
SIZE = """
SELECT pg_database_size(current_database()) + coalesce((
    SELECT sum(t.size) FROM pg_ls_tmpdir() t, pg_stat_activity a
    WHERE a.datname = current_database() AND a.application_name = 'coach-db adopt'
      AND t.name LIKE 'pgsql_tmp' || a.pid || '.%'), 0)
"""


async def sample_size(url: str, peak: list[int], stop: asyncio.Event) -> None:
    conn = await asyncpg.connect(url)
    try:
        while not stop.is_set():
            peak.append(await conn.fetchval(SIZE))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), 1)
    finally:
        await conn.close()


async def main(messages: int, prefix: str, keep: bool) -> None:
    name = f"{prefix}_{messages}"
    admin = await asyncpg.connect(f"{SERVER}/postgres")
    await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.execute(f"ALTER DATABASE \"{name}\" SET TimeZone = 'America/New_York'")
    url = f"{SERVER}/{name}"
    try:
        began = time.monotonic()
        await build(url, messages)
        print(f"built {messages:,} messages in {time.monotonic() - began:.0f} s")
        conn = await asyncpg.connect(url)
        size = await conn.fetchval("SELECT pg_database_size(current_database())")
        began = time.monotonic()
        await conn.execute('CREATE TABLE baseline AS SELECT * FROM "Message"')
        baseline = time.monotonic() - began
        await conn.execute("DROP TABLE baseline")
        await conn.close()
        print(f"database before: {size / 2**20:,.0f} MiB")
        print(f"raw asyncpg baseline, CREATE TABLE AS SELECT of Message: {baseline:.1f} s")

        began = time.monotonic()
        plan = await dry_run(url)
        print(f"dry run: {time.monotonic() - began:.1f} s, ok={plan.ok}, "
              f"{len(plan.findings)} finding classes")  # fmt: skip

        peak: list[int] = []
        stop = asyncio.Event()
        sampler = asyncio.create_task(sample_size(url, peak, stop))
        began = time.monotonic()
        done = await adopt(url)
        took = time.monotonic() - began
        stop.set()
        await sampler
        conn = await asyncpg.connect(url)
        after = await conn.fetchval("SELECT pg_database_size(current_database())")
        await conn.close()
        print(f"adopt: {took:.1f} s (writes and reads of the Prisma tables blocked throughout), "
              f"rows {done.rows}")  # fmt: skip
        print("steps: " + ", ".join(f"{k} {v:.1f} s" for k, v in done.seconds.items()))
        print(f"disk: before {size / 2**20:,.0f} MiB, peak {max(peak, default=after) / 2**20:,.0f}"
              f" MiB (temporary files included), after {after / 2**20:,.0f} MiB")  # fmt: skip
    finally:
        if not keep:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--prefix", default="bench_adopt")
    parser.add_argument("--keep", action="store_true", help="Keep the database afterwards.")
    args = parser.parse_args()
    asyncio.run(main(args.messages, args.prefix, args.keep))
