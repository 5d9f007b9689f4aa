"""`coach-db retention`: exactly the idle conversations go, in batches, archived, resumable."""

from __future__ import annotations

import asyncio
import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
import pytest
from typer.testing import CliRunner

from coach_db import add_message
from coach_db.retention import (
    cutoff_for,
    delete_idle,
    delete_sessions,
    idle_session_batches,
)
from coach_db.tools.cli import app
from tests.factories import make_scenario, make_user
from tests.processes import ROOT, coach_db_cmd, subprocess_env

DAY = timedelta(days=1)


async def _session(
    raw: asyncpg.Connection,
    user_id: int,
    scenario_id: int,
    *,
    started: float,
    ended: float | None = None,
    messages: tuple[float, ...] = (),
) -> int:
    """A session started `started` days ago (ended `ended` days ago, or active), with one
    message per entry of `messages` (days ago), written as an import would."""
    now = datetime.now(UTC)
    async with raw.transaction():
        await raw.execute("SET LOCAL coach_db.backfill = 'on'")
        session_id: int = await raw.fetchval(
            'INSERT INTO "conversation_session" (user_id, scenario_id, status, started_at,'
            " ended_at) VALUES ($1, $2, $3, $4, $5) RETURNING id",
            user_id,
            scenario_id,
            "active" if ended is None else "completed",
            now - started * DAY,
            None if ended is None else now - ended * DAY,
        )
        for i, days in enumerate(messages):
            await raw.execute(
                'INSERT INTO "message" (session_id, role, content, "timestamp")'
                " VALUES ($1, 'user', $2, $3)",
                session_id,
                f"message {i} of {session_id}",
                now - days * DAY,
            )
    return session_id


async def _sessions(raw: asyncpg.Connection) -> set[int]:
    return {r["id"] for r in await raw.fetch('SELECT id FROM "conversation_session"')}


async def _mixed(raw: asyncpg.Connection) -> tuple[set[int], set[int]]:
    """(ids that are idle for over 30 days, ids that are not)."""
    user, scenario = await make_user(), await make_scenario()
    args = (raw, user.id, scenario.id)
    old = {
        await _session(*args, started=100, ended=99, messages=(100, 99.5)),
        await _session(*args, started=100, messages=(100, 40)),  # active, silent since
        await _session(*args, started=100),  # active, never a message
        await _session(*args, started=45, ended=31, messages=(44,)),
    }
    kept = {
        await _session(*args, started=100, ended=10, messages=(100, 11)),
        await _session(*args, started=100, messages=(100, 1)),  # active, spoke yesterday
        await _session(*args, started=29),
        await _session(*args, started=0.01, messages=(0.001,)),
    }
    return old, kept


async def test_exactly_the_idle_conversations_go_and_the_archive_holds_them(
    raw: asyncpg.Connection, tmp_path: Path
) -> None:
    old, kept = await _mixed(raw)
    old_messages = await raw.fetchval(
        'SELECT count(*) FROM "message" WHERE session_id = ANY($1::int[])', list(old)
    )
    kept_before = await raw.fetch(
        'SELECT * FROM "message" WHERE session_id = ANY($1::int[]) ORDER BY id', list(kept)
    )
    archive = tmp_path / "old.jsonl"
    with archive.open("a", encoding="utf-8") as file:
        batches = [d async for d in delete_idle(cutoff_for(30), batch=2, archive=file)]

    assert [d.sessions for d in batches] == [2, 2]
    assert sum(d.messages for d in batches) == old_messages == 5
    assert await _sessions(raw) == kept
    kept_after = await raw.fetch('SELECT * FROM "message" ORDER BY id')
    assert kept_after == kept_before
    # The counters the triggers keep still match the rows.
    assert not await raw.fetch(
        'SELECT s.id FROM "conversation_session" s WHERE total_messages <>'
        ' (SELECT count(*) FROM "message" m WHERE m.session_id = s.id)'
    )
    lines = [json.loads(line) for line in archive.read_text().splitlines()]
    archived_sessions = [x["row"]["id"] for x in lines if x["table"] == "conversation_session"]
    assert sorted(archived_sessions) == sorted(old)
    archived_messages = [x["row"] for x in lines if x["table"] == "message"]
    assert len(archived_messages) == old_messages
    assert {m["session_id"] for m in archived_messages} <= old
    assert all(m["content"].startswith("message ") for m in archived_messages)


async def test_a_session_that_speaks_after_being_chosen_is_kept(raw: asyncpg.Connection) -> None:
    """The batch is chosen, then a message arrives: the locked re-check keeps that session."""
    user, scenario = await make_user(), await make_scenario()
    silent = await _session(raw, user.id, scenario.id, started=100, messages=(90,))
    revived = await _session(raw, user.id, scenario.id, started=100, messages=(90,))
    cutoff = cutoff_for(30)
    [ids] = [batch async for batch in idle_session_batches(cutoff, 10)]
    assert sorted(ids) == sorted([silent, revived])

    await add_message(revived, "user", "I'm back")
    deleted = await delete_sessions(ids, idle_before=cutoff)

    assert (deleted.sessions, deleted.messages) == (1, 1)
    assert await _sessions(raw) == {revived}


async def test_delete_sessions_refuses_more_than_a_batch() -> None:
    with pytest.raises(ValueError, match="at most 10000"):
        await delete_sessions(list(range(10_001)))


def test_bad_arguments_are_one_clear_line(tmp_path: Path) -> None:
    """Refused before any connection is made (so in-process, no DATABASE_URL needed)."""
    cases = {
        ("--older-than", "0"): "--older-than",
        ("--older-than", "abc"): "--older-than",
        ("--older-than", "30", "--batch", "0"): "--batch",
        ("--older-than", "30", "--batch", "10001"): "--batch",
        ("--older-than", "30", "--archive", str(tmp_path)): "is a directory",
        ("--older-than", "30", "--archive", str(tmp_path / "no" / "x.jsonl")): "does not exist",
        (): "--older-than",
    }
    for args, expected in cases.items():
        result = CliRunner().invoke(app, ["retention", *args, "--yes"])
        assert result.exit_code in (1, 2), (args, result.output)
        assert expected in result.output, (args, result.output)
        assert result.exception is None or isinstance(result.exception, SystemExit), args
        assert "Traceback" not in result.output, args


async def test_dry_run_counts_and_yes_deletes(
    raw: asyncpg.Connection, database_url: str, tmp_path: Path
) -> None:
    old, kept = await _mixed(raw)
    dry = coach_db_cmd("retention", "--older-than", "30", url=database_url)
    assert dry.returncode == 0, dry.stderr
    assert "4 conversations (5 messages)" in dry.stdout
    assert "--yes" in dry.stdout
    assert await _sessions(raw) == old | kept

    archive = tmp_path / "a.jsonl"
    args = ("--older-than", "30", "--archive", str(archive), "--batch", "3", "--yes")
    wet = coach_db_cmd("retention", *args, url=database_url)
    assert wet.returncode == 0, wet.stderr
    assert "Deleted 4 conversations (5 messages)" in wet.stdout
    assert "4 / 4 conversations deleted" in wet.stderr
    assert await _sessions(raw) == kept


async def test_a_run_killed_mid_batch_is_finished_by_the_next_run(
    raw: asyncpg.Connection, raw_pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    """Killed (SIGKILL) while its third batch waits for a lock: nothing half-deleted, and the
    same command run again deletes the rest; the archive then holds every deleted session."""
    user, scenario = await make_user(), await make_scenario()
    old = [
        await _session(raw, user.id, scenario.id, started=100 - i, messages=(90 - i,))
        for i in range(6)
    ]
    kept = await _session(raw, user.id, scenario.id, started=100, messages=(1,))
    archive = tmp_path / "a.jsonl"
    args = ["retention", "--older-than", "30", "--batch", "1", "--archive", str(archive), "--yes"]
    async with raw_pool.acquire() as blocker, blocker.transaction():
        # Batches go oldest start first: old[2] is the third; hold its row lock.
        await blocker.execute(
            'SELECT 1 FROM "conversation_session" WHERE id = $1 FOR UPDATE', old[2]
        )
        run = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "coach_db",
            *args,
            env=subprocess_env(database_url),
            cwd=ROOT,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            for _ in range(600):
                waiting = await raw.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                    " AND wait_event_type = 'Lock' AND query LIKE '%FOR UPDATE%'"
                )
                if waiting or run.returncode is not None:
                    break
                await asyncio.sleep(0.1)
            assert waiting, run.returncode
        finally:
            if run.returncode is None:
                run.kill()
            await run.wait()
    assert await _sessions(raw) == {kept, *old[2:]}

    rerun = coach_db_cmd(*args, url=database_url)
    assert rerun.returncode == 0, rerun.stderr
    assert "Deleted 4 conversations (4 messages)" in rerun.stdout
    assert await _sessions(raw) == {kept}
    lines = [json.loads(line) for line in archive.read_text().splitlines()]
    archived = [x["row"]["id"] for x in lines if x["table"] == "conversation_session"]
    assert sorted(archived) == sorted(old)
