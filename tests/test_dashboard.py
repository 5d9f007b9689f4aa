"""The dashboard's rollups (migration 5) equal what counting the tables gives, whoever writes and
however much at once, and the dashboard shows them (issue 10)."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg

from coach_db import (
    ConversationSession,
    MessageRole,
    SessionStatus,
    User,
    add_message,
    end_session,
)
from tests.factories import make_message, make_session, make_user

MESSAGES_PER_DAY = """
    SELECT ("timestamp" AT TIME ZONE 'UTC')::date AS day, count(*) AS n FROM message GROUP BY 1
"""
ROLLUP_PER_DAY = """
    SELECT day, sum(messages) AS n FROM message_daily GROUP BY day HAVING sum(messages) <> 0
"""
SESSIONS_BY_STATUS = """
    SELECT status, count(*) AS sessions, count(duration_seconds) AS timed,
           coalesce(sum(duration_seconds), 0) AS seconds
    FROM conversation_session GROUP BY status
"""
ROLLUP_BY_STATUS = """
    SELECT status, sum(sessions) AS sessions, sum(timed) AS timed, sum(duration_seconds) AS seconds
    FROM session_by_status GROUP BY status HAVING sum(sessions) <> 0
"""
DAY0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


async def rows(raw: asyncpg.Connection, query: str) -> set[tuple[Any, ...]]:
    return {tuple(row.values()) for row in await raw.fetch(query)}


async def assert_rollups_exact(raw: asyncpg.Connection) -> None:
    assert await rows(raw, ROLLUP_PER_DAY) == await rows(raw, MESSAGES_PER_DAY)
    assert await rows(raw, ROLLUP_BY_STATUS) == await rows(raw, SESSIONS_BY_STATUS)


async def bulk_insert(raw: asyncpg.Connection, session_id: int, count: int, days: int) -> None:
    """`count` messages over `days` days in one statement, as an import would."""
    await raw.execute(
        "INSERT INTO message (session_id, role, content, timestamp)"
        " SELECT $1, 'user', 'bulk ' || i, $2::timestamptz + (i % $3) * interval '1 day'"
        " FROM generate_series(1, $4) AS i",
        session_id,
        DAY0,
        days,
        count,
    )


async def test_rollups_follow_inserts_edits_moves_deletes_and_cascades(
    raw: asyncpg.Connection,
) -> None:
    user = await make_user()
    first, second = await make_session(user=user), await make_session()
    for day in range(3):
        await make_message(session=first, timestamp=DAY0 + timedelta(days=day))
    moved = await make_message(session=second, timestamp=DAY0)
    await assert_rollups_exact(raw)

    await raw.execute("UPDATE message SET content = 'edited' WHERE id = $1", moved.pk)
    await raw.execute(
        "UPDATE message SET timestamp = timestamp + interval '5 days' WHERE id = $1", moved.pk
    )
    await assert_rollups_exact(raw)
    await end_session(second)
    await end_session(first, SessionStatus.ABANDONED)
    await assert_rollups_exact(raw)
    await raw.execute(
        "UPDATE conversation_session SET status = 'active', ended_at = NULL WHERE id = $1",
        first.pk,
    )  # reopened by an administrator
    await assert_rollups_exact(raw)

    await raw.execute("DELETE FROM message WHERE id = $1", moved.pk)
    await assert_rollups_exact(raw)
    await ConversationSession.filter(pk=second.pk).delete()  # cascades to its messages
    await assert_rollups_exact(raw)
    await User.filter(pk=user.pk).delete()  # cascades to sessions, then messages
    await assert_rollups_exact(raw)
    assert await rows(raw, ROLLUP_PER_DAY) == set()
    assert await rows(raw, ROLLUP_BY_STATUS) == set()


async def test_bulk_statements_of_10k_messages_keep_the_rollup_exact(
    raw: asyncpg.Connection,
) -> None:
    session, other = await make_session(), await make_session()
    await bulk_insert(raw, session.pk, 10_000, days=40)
    await raw.copy_records_to_table(
        "message",
        records=[(other.pk, "coach", f"copied {i}", DAY0 - timedelta(hours=i)) for i in range(500)],
        columns=["session_id", "role", "content", "timestamp"],
    )
    await assert_rollups_exact(raw)
    assert await raw.fetchval("SELECT count(*) FROM message_daily") <= 40 + 21  # per day

    await raw.execute(
        "UPDATE message SET timestamp = timestamp - interval '1 day' WHERE session_id = $1",
        session.pk,
    )
    await assert_rollups_exact(raw)
    deleted = await raw.execute("DELETE FROM message WHERE session_id = $1", session.pk)
    assert deleted == "DELETE 10000"  # one statement
    await assert_rollups_exact(raw)
    await raw.execute("DELETE FROM conversation_session WHERE id = ANY($1)", [other.pk])
    await assert_rollups_exact(raw)


async def test_concurrent_writers_keep_the_rollup_exact(raw: asyncpg.Connection) -> None:
    sessions = [await make_session() for _ in range(6)]

    async def writer(n: int) -> None:
        session = sessions[n % len(sessions)]
        for i in range(15):
            await add_message(session, MessageRole.USER, f"writer {n} turn {i}")

    await asyncio.gather(*(writer(n) for n in range(16)))
    await asyncio.gather(*(end_session(s) for s in sessions[:3]))
    await assert_rollups_exact(raw)
    stripes = await raw.fetchval("SELECT count(DISTINCT stripe) FROM message_daily")
    assert stripes > 1  # the writers' connections counted in stripes of their own
    assert await raw.fetchval("SELECT sum(messages) FROM message_daily") == 16 * 15


async def test_truncate_empties_the_rollups(raw: asyncpg.Connection) -> None:
    await bulk_insert(raw, (await make_session()).pk, 50, days=3)
    await raw.execute("TRUNCATE message")
    await assert_rollups_exact(raw)
    assert await raw.fetchval("SELECT count(*) FROM message_daily") == 0
    await raw.execute("TRUNCATE conversation_session CASCADE")
    assert await raw.fetchval("SELECT count(*) FROM session_by_status") == 0


async def test_the_dashboard_shows_the_rollups_figures(raw: asyncpg.Connection, staff: Any) -> None:
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    session = await make_session()
    for _ in range(3):
        await make_message(session=session, timestamp=today)
    ended = await make_session()
    await end_session(ended)
    # Figures that only the rollups hold (as if counted by another stripe): the page must show
    # them, so it reads the rollups rather than counting the tables.
    await raw.execute(
        "INSERT INTO message_daily VALUES ($1, 63, 1000)"
        " ON CONFLICT (day, stripe) DO UPDATE SET messages = message_daily.messages + 1000",
        today.date(),
    )
    await raw.execute("INSERT INTO session_by_status VALUES ('abandoned', 63, 7, 7, 7 * 600)")

    html = (await staff.get("/admin/")).text
    assert f'data-day="{today.date()}" data-count="1003"' in html
    assert re.search(r"Abandoned: 7\b", html) and re.search(r"Completed: 1\b", html)
    assert re.search(r"Active: 1\b", html)
    seconds = (7 * 600 + (await ConversationSession.get(pk=ended.pk)).duration_seconds) / 8
    assert f"{round(seconds) // 60} min {round(seconds) % 60} s" in html
