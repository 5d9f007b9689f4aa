"""Times `--demo` (~100k messages) against DATABASE_URL, side by side with raw asyncpg COPY."""

from __future__ import annotations

import argparse
import asyncio
import math
import sys
import time
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from rich.console import Console
from rich.table import Table
from tortoise import connections
from tortoise.transactions import in_transaction

import coach_db
from coach_db import CoachDbError, ConversationSession, Message, Scenario, User
from coach_db.apps.seed import data, seed
from coach_db.apps.seed.demo import (
    DemoSession,
    copy_rows,
    delete_sessions,
    demo_email,
    demo_now,
    generate,
    reserve_session_ids,
    to_rows,
)
from coach_db.config import database_url

POOL_OPTIONS = {"minsize", "maxsize", "statement_cache_size", "timeout"}
USAGE = """\
DATABASE_URL=postgres://... uv run python bench/seed_demo.py [--messages 100000]

Writes demo conversations for the demo users of that database (as `--demo N` does, replacing
theirs) and leaves the last run's rows in place.
"""


async def main(target: int, random_seed: int, orm: bool) -> None:
    console = Console()
    # Sessions average ~36 messages; pick N from a sample so the run lands near the target.
    sample = list(generate(200, random_seed, demo_now()))
    per_session = sum(len(s.messages) for s in sample) / len(sample)
    n = math.ceil(target / per_session)

    async with coach_db.connect():
        await seed(demo=1, random_seed=random_seed)  # base rows, demo users, a warm pool
        emails = [demo_email(i) for i in range(len(data.DEMO_USER_NAMES))]
        by_email = {u.email: u.id for u in await User.filter(email__in=emails)}
        user_ids = [by_email[email] for email in emails]
        slugs = [scenario["slug"] for scenario in data.SCENARIOS]
        scenario_ids = {row.slug: row.id for row in await Scenario.filter(slug__in=slugs)}
        results: list[tuple[str, float, int]] = []

        # 1. What `python -m seed --demo N` does: base upsert + generate + COPY, one transaction.
        await _clear(user_ids)
        started = time.perf_counter()
        result = await seed(demo=n, random_seed=random_seed)
        messages = result.demo_messages
        results.append(("seed(demo=N), the whole run", time.perf_counter() - started, messages))
        results.append(("  of which the demo: generate + COPY", result.demo_seconds, messages))

        # 2. The Python side alone: generating the conversations and building the COPY rows.
        started = time.perf_counter()
        sessions = list(generate(n, random_seed, demo_now()))
        to_rows(sessions, iter(range(1, n + 1)), user_ids, scenario_ids)
        results.append(
            ("  generate + build rows, no database", time.perf_counter() - started, messages)
        )

        # 3. Raw asyncpg on its own connection: the same rows, prebuilt, COPY in one transaction.
        await _clear(user_ids)
        conn = await asyncpg.connect(_plain_url())
        try:
            ids = iter(await reserve_session_ids(conn, n))
            session_rows, message_rows = to_rows(sessions, ids, user_ids, scenario_ids)
            started = time.perf_counter()
            async with conn.transaction():
                await conn.execute("SET LOCAL coach_db.backfill = 'on'")  # ended sessions
                await copy_rows(conn, session_rows, message_rows)
            results.append(
                ("raw asyncpg COPY, same rows prebuilt", time.perf_counter() - started, messages)
            )
        finally:
            await conn.close()

        # 4. For reference, the ORM way: a create() per session, bulk_create for messages.
        if orm:
            await _clear(user_ids)
            started = time.perf_counter()
            await _orm_load(sessions, user_ids, scenario_ids)
            results.append(
                ("Tortoise create + bulk_create", time.perf_counter() - started, messages)
            )

    table = Table(title=f"--demo {n:,} ({messages:,} messages, random seed {random_seed})")
    table.add_column("path")
    table.add_column("seconds", justify="right")
    table.add_column("messages/s", justify="right")
    for label, seconds, count in results:
        table.add_row(label, f"{seconds:.2f}", f"{count / seconds:,.0f}")
    console.print(table)


async def _clear(user_ids: list[int]) -> None:
    async with connections.get("default").acquire_connection() as conn:
        await delete_sessions(conn, user_ids)


async def _orm_load(
    sessions: list[DemoSession], user_ids: list[int], scenario_ids: dict[str, int]
) -> None:
    async with in_transaction("default") as conn:  # named: replicas are connections too
        await conn.execute_query("SET LOCAL coach_db.backfill = 'on'")  # ended sessions
        for session in sessions:
            row = await ConversationSession.create(
                user_id=user_ids[session.user],
                scenario_id=scenario_ids[session.scenario],
                status=session.status,
                started_at=session.started_at,
                ended_at=session.ended_at,
                total_messages=len(session.messages),
                duration_seconds=session.duration_seconds,
            )
            await Message.bulk_create(
                [
                    Message(
                        session_id=row.id,
                        role=message.role,
                        content=message.content,
                        timestamp=message.timestamp,
                        metadata=message.metadata,
                    )
                    for message in session.messages
                ]
            )


def _plain_url() -> str:
    """DATABASE_URL for a plain asyncpg.connect(): without the pool options coach_db adds."""
    parts = urlsplit(database_url())
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in POOL_OPTIONS]
    return urlunsplit(parts._replace(query=urlencode(query)))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, usage=USAGE)
    parser.add_argument("--messages", type=int, default=100_000, help="about this many messages")
    parser.add_argument("--random-seed", type=int, default=0)
    parser.add_argument("--orm", action="store_true", help="also time Tortoise bulk_create")
    args = parser.parse_args()
    try:
        asyncio.run(main(args.messages, args.random_seed, args.orm))
    except CoachDbError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        sys.exit(1)
