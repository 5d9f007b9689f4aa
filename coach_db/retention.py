"""Retention: delete (or archive, then delete) conversations idle for over N days, in batches.

A session's last activity is its end (`ended_at`), else its newest message, else its start: a
session still marked active but silent for N days goes too. Everything is deleted through plain
DELETEs of `conversation_session` rows (their messages follow by the foreign key's cascade), so
the message triggers and any rollup maintained by triggers stay exact; nothing is truncated or
dropped behind their back.

Each batch is one short transaction: lock the batch's sessions (`FOR UPDATE`: a message
insert takes a key-share lock on its session, so none can arrive meanwhile), check again that
each one is still idle (a message may have come in since the batch was chosen), archive them,
delete them, commit. Nothing else is locked, for no longer than one batch, and a run stopped
anywhere leaves every session either fully there or fully gone: running the same command
again finishes the job.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import IO

import asyncpg
from tortoise import connections

DEFAULT_BATCH = 1000
MAX_BATCH = 10_000

# A session's last activity; ended_at is never before its last message (trigger
# message_not_after_session_end), so the message subquery runs for unended sessions only.
_LAST_ACTIVITY = """coalesce(s."ended_at", (
    SELECT max(m."timestamp") FROM "message" m WHERE m."session_id" = s."id"), s."started_at")"""
# Every activity is at or after started_at, so `started_at < cutoff` (the (started_at, id)
# index) bounds the candidates; the keyset walks that index once, whatever has been deleted.
_CANDIDATES = f"""
    SELECT s."id", s."started_at" FROM "conversation_session" s
    WHERE s."started_at" < $1 AND (s."started_at", s."id") > ($2::timestamptz, $3::int)
      AND {_LAST_ACTIVITY} < $1
    ORDER BY s."started_at", s."id" LIMIT $4"""
_COUNT = f"""
    SELECT count(*) AS sessions, coalesce(sum(s."total_messages"), 0)::bigint AS messages
    FROM "conversation_session" s WHERE s."started_at" < $1 AND {_LAST_ACTIVITY} < $1"""
_LOCK = """
    SELECT "id" FROM "conversation_session" WHERE "id" = ANY($1::int[])
    ORDER BY "id" FOR UPDATE"""
# Run after _LOCK in its own statement, so it sees messages committed while it waited.
_STILL_IDLE = f"""
    SELECT s."id" FROM "conversation_session" s
    WHERE s."id" = ANY($1::int[]) AND {_LAST_ACTIVITY} < $2 ORDER BY s."id" """
_ARCHIVE_SESSIONS = """
    SELECT s."id", to_jsonb(s)::text AS row FROM "conversation_session" s
    WHERE s."id" = ANY($1::int[]) ORDER BY s."id" """
_ARCHIVE_MESSAGES = """
    SELECT m."session_id", to_jsonb(m)::text AS row FROM "message" m
    WHERE m."session_id" = ANY($1::int[]) ORDER BY m."session_id", m."timestamp", m."id" """
_DELETE = """
    WITH gone AS (
        DELETE FROM "conversation_session" WHERE "id" = ANY($1::int[])
        RETURNING "total_messages")
    SELECT count(*) AS sessions, coalesce(sum("total_messages"), 0)::bigint AS messages FROM gone"""


@dataclass
class Deleted:
    """What one call deleted (messages: the sessions' total_messages, kept exact by triggers)."""

    sessions: int = 0
    messages: int = 0

    def __iadd__(self, other: Deleted) -> Deleted:
        self.sessions += other.sessions
        self.messages += other.messages
        return self


def cutoff_for(days: int, now: datetime | None = None) -> datetime:
    """The instant `days` days before `now` (default: the current time, UTC)."""
    return (now or datetime.now(UTC)) - timedelta(days=days)


@asynccontextmanager
async def _connection() -> AsyncIterator[asyncpg.Connection]:
    """A raw connection of the package's pool (the primary: retention writes)."""
    async with connections.get("default").acquire_connection() as conn:
        yield conn


async def count_idle(cutoff: datetime) -> Deleted:
    """How many sessions (and messages) were last active before `cutoff`: the dry run."""
    async with _connection() as conn:
        row = await conn.fetchrow(_COUNT, cutoff)
    assert row is not None
    return Deleted(row["sessions"], row["messages"])


async def delete_sessions(
    ids: Sequence[int],
    *,
    archive: IO[str] | None = None,
    idle_before: datetime | None = None,
) -> Deleted:
    """Delete the sessions `ids` (and their messages) in one transaction; returns what went.

    Ids that do not exist are ignored. With `idle_before`, a session active since then is kept
    (checked after its row is locked). With `archive`, every deleted session and message is
    written to it as a JSON line (`{"table": ..., "row": {...}}`, the row as PostgreSQL's
    to_jsonb gives it), flushed and fsynced before the delete commits: a crash in between can
    repeat lines on the next run, never lose one. Keep `ids` to a batch (MAX_BATCH).
    """
    if len(ids) > MAX_BATCH:
        raise ValueError(f"at most {MAX_BATCH} sessions per call, not {len(ids)}")
    async with _connection() as conn, conn.transaction():
        locked = [r["id"] for r in await conn.fetch(_LOCK, list(ids))]
        if idle_before is not None and locked:
            locked = [r["id"] for r in await conn.fetch(_STILL_IDLE, locked, idle_before)]
        if not locked:
            return Deleted()
        if archive is not None:
            await _write_archive(conn, locked, archive)
        row = await conn.fetchrow(_DELETE, locked)
        assert row is not None
        return Deleted(row["sessions"], row["messages"])


async def _write_archive(conn: asyncpg.Connection, ids: list[int], archive: IO[str]) -> None:
    # Each session's line, then its messages' lines; streamed, so a long session is not held
    # in memory at once.
    sessions = {r["id"]: r["row"] for r in await conn.fetch(_ARCHIVE_SESSIONS, ids)}
    written: set[int] = set()
    async for r in conn.cursor(_ARCHIVE_MESSAGES, ids, prefetch=500):
        session_id = r["session_id"]
        if session_id not in written:
            archive.write(_line("conversation_session", sessions[session_id]))
            written.add(session_id)
        archive.write(_line("message", r["row"]))
    for session_id, row in sessions.items():  # sessions without messages
        if session_id not in written:
            archive.write(_line("conversation_session", row))
    archive.flush()
    os.fsync(archive.fileno())


def _line(table: str, row_json: str) -> str:
    return f'{{"table": {json.dumps(table)}, "row": {row_json}}}\n'


async def idle_session_batches(cutoff: datetime, batch: int) -> AsyncIterator[list[int]]:
    """Ids of sessions last active before `cutoff`, `batch` at a time, oldest start first."""
    after: tuple[datetime, int] = (datetime.min.replace(tzinfo=UTC), 0)
    while True:
        async with _connection() as conn:
            rows = await conn.fetch(_CANDIDATES, cutoff, *after, batch)
        if not rows:
            return
        yield [r["id"] for r in rows]
        after = (rows[-1]["started_at"], rows[-1]["id"])


async def delete_idle(
    cutoff: datetime,
    *,
    batch: int = DEFAULT_BATCH,
    archive: IO[str] | None = None,
) -> AsyncIterator[Deleted]:
    """Delete every session last active before `cutoff`, one transaction per batch.

    Yields what each batch deleted, for progress output. Stopping at any point is safe: run it
    again to finish.
    """
    if not 1 <= batch <= MAX_BATCH:
        raise ValueError(f"batch must be from 1 to {MAX_BATCH}, not {batch}")
    async for ids in idle_session_batches(cutoff, batch):
        yield await delete_sessions(ids, archive=archive, idle_before=cutoff)
