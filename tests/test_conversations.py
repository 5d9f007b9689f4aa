"""Conversation operations, and the session invariants under concurrency, raw SQL and ORM writes."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from coach_db import (
    ConversationError,
    ConversationSession,
    InvalidMessage,
    Message,
    MessageRole,
    NotFound,
    ScenarioInactive,
    SessionAlreadyEnded,
    SessionNotActive,
    SessionStatus,
    User,
    add_message,
    end_session,
    start_session,
    transcript,
    user_history,
)
from coach_db.errors import connection_lost, never_sent
from coach_db.limits import (
    MAX_CONTENT_CHARS,
    MAX_HISTORY_MESSAGES,
    MAX_HISTORY_SESSIONS,
    MAX_METADATA_BYTES,
    MAX_METADATA_DEPTH,
    MAX_TRANSCRIPT_PAGE,
)
from coach_db.types import UserWithSessions
from tests.factories import make_scenario, make_session, make_user

DRIFT = """
    SELECT s.id, s.total_messages, count(m.id) AS counted
    FROM conversation_session s LEFT JOIN message m ON m.session_id = s.id
    GROUP BY s.id HAVING s.total_messages <> count(m.id)"""
AFTER_END = "message_not_after_session_end"


async def assert_counters_exact(raw: asyncpg.Connection) -> None:
    """Every session's total_messages equals the number of its message rows."""
    assert [dict(row) for row in await raw.fetch(DRIFT)] == []


@pytest.fixture
def queries(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every SQL statement sent to PostgreSQL while the test runs (BEGIN and COMMIT included):
    asyncpg's public methods, through which Tortoise and the package's own reads send them."""
    sent: list[str] = []
    for name in ("fetch", "fetchrow", "fetchval", "execute", "executemany"):
        monkeypatch.setattr(
            asyncpg.Connection, name, _recording(getattr(asyncpg.Connection, name), sent)
        )
    yield sent


def _recording(method: Callable[..., Any], sent: list[str]) -> Callable[..., Any]:
    def record(self: Any, query: str, *args: Any, **kwargs: Any) -> Any:
        sent.append(query)
        return method(self, query, *args, **kwargs)

    return record


# --- start_session ------------------------------------------------------------------------


async def test_start_session_creates_an_active_session() -> None:
    user, scenario = await make_user(), await make_scenario()
    session = await start_session(user, scenario)
    stored = await ConversationSession.get(id=session.id)
    assert (stored.user_id, stored.scenario_id) == (user.id, scenario.id)  # type: ignore[attr-defined]
    assert stored.status is session.status is SessionStatus.ACTIVE
    assert stored.started_at == session.started_at
    assert (stored.total_messages, stored.ended_at, stored.duration_seconds) == (0, None, None)


async def test_start_session_refuses_an_inactive_scenario() -> None:
    user, scenario = await make_user(), await make_scenario(slug="retired", is_active=False)
    with pytest.raises(ScenarioInactive, match=r"Scenario 'retired' .* is inactive"):
        await start_session(user, scenario)
    assert await ConversationSession.all().count() == 0


async def test_start_session_with_a_missing_user_or_scenario_raises_not_found() -> None:
    user, scenario = await make_user(), await make_scenario()
    with pytest.raises(NotFound, match="User 999999 does not exist"):
        await start_session(999_999, scenario)
    with pytest.raises(NotFound, match="Scenario 999999 does not exist"):
        await start_session(user.id, 999_999)
    assert await ConversationSession.all().count() == 0


# --- add_message --------------------------------------------------------------------------


async def test_add_message_returns_the_stored_message_and_counts_it() -> None:
    session = await make_session()
    metadata = {"model": "claude-sonnet-4-5", "tokens": {"in": 12, "out": 40}, "ok": True}
    message = await add_message(session, MessageRole.PARTNER, "Well, actually…", metadata)
    stored = await Message.get(id=message.id)
    assert (stored.role, stored.content, stored.metadata) == (
        MessageRole.PARTNER,
        "Well, actually…",
        metadata,
    )
    assert (message.role, message.timestamp, message.metadata) == (
        stored.role,
        stored.timestamp,
        stored.metadata,
    )
    assert message.session_id == session.id  # type: ignore[attr-defined]
    await add_message(session.id, "user", "Hi!")  # an id and a plain string do too
    assert (await ConversationSession.get(id=session.id)).total_messages == 2


@pytest.mark.parametrize("status", [SessionStatus.COMPLETED, SessionStatus.ABANDONED])
async def test_add_message_refuses_an_ended_session_and_writes_nothing(
    status: SessionStatus,
) -> None:
    session = await make_session()
    await add_message(session, "user", "before the end")
    await end_session(session, status)
    with pytest.raises(SessionNotActive, match=f"Session {session.id} is {status.value}"):
        await add_message(session, "user", "too late")
    assert await Message.filter(session_id=session.id).count() == 1
    assert (await ConversationSession.get(id=session.id)).total_messages == 1


@pytest.mark.parametrize(
    ("role", "content", "reason"),
    [
        ("user", "", "content is empty"),
        ("narrator", "hi", "unknown role 'narrator': expected one of 'user', 'partner', 'coach'"),
        (None, "hi", "unknown role None: expected one of 'user', 'partner', 'coach'"),
        ("user", 42, "content must be a str, not int"),
    ],
)
async def test_add_message_refuses_bad_role_or_content_and_writes_nothing(
    role: Any, content: Any, reason: str
) -> None:
    session = await make_session()
    with pytest.raises(InvalidMessage) as info:
        await add_message(session, role, content)
    assert str(info.value) == f"Message refused, nothing was written: {reason}."
    assert await Message.all().count() == 0
    assert (await ConversationSession.get(id=session.id)).total_messages == 0


@pytest.mark.parametrize(
    ("content", "metadata", "reason"),
    [
        ("a\x00b", None, r"content contains a NUL character \(\\x00\) at index 1"),
        ("ok", {"a": ["x", {"b": "c\x00"}]}, r"metadata\['a'\]\[1\]\['b'\] contains a NUL"),
        ("ok", {"a": {"k\x00": 1}}, r"the key 'k\\x00' of metadata\['a'\] contains a NUL"),
        ("lone \ud800", None, "content is not valid Unicode"),
        ("ok", {"x": float("nan")}, r"metadata\['x'\] is nan, which JSON cannot represent"),
        ("ok", {"at": datetime(2026, 1, 1)}, r"metadata\['at'\] is a datetime, which is not"),
        ("ok", {1: "one"}, "has the key 1, a int: JSON object keys are strings"),
        ("ok", ["not", "an", "object"], "metadata must be a JSON object"),
    ],
)
async def test_add_message_refuses_what_postgresql_cannot_store_with_a_clear_error(
    content: str, metadata: Any, reason: str
) -> None:
    session = await make_session()
    with pytest.raises(InvalidMessage, match=reason):
        await add_message(session, "user", content, metadata)
    assert await Message.all().count() == 0


def _cycle() -> dict[str, Any]:
    m: dict[str, Any] = {}
    m["self"] = m
    return m


def _twice_self() -> dict[str, Any]:
    items: list[Any] = []
    items += [items, items]  # json.dumps would expand this forever, doubling each level
    return {"items": items}


def _nested(levels: int) -> dict[str, Any]:
    """Metadata `levels` deep: {"a": {"a": ... {} }} (the outer object is level 1)."""
    value: dict[str, Any] = {}
    for _ in range(levels - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("content", "metadata", "reason"),
    [
        ("ok", _cycle(), r"metadata\['self'\] is the same object as metadata, .* a cycle"),
        (
            "ok",
            _twice_self(),
            r"metadata\['items'\]\[1\] is the same object as metadata\['items'\]",
        ),
        ("ok", _nested(17), "metadata is nested more than 16 levels deep"),
        ("ok", _nested(990), "metadata is nested more than 16 levels deep"),
        ("ok", _nested(100_000), "metadata is nested more than 16 levels deep"),
        ("ok", {"n": 10**5000}, r"metadata\['n'\] is an integer of about 5,000 digits"),
        ("ok", {"list": [0] * 10_000_000}, "metadata is larger than 32,768 bytes"),
        (
            "ok",
            {"s": "x" * 100_000_000},
            r"metadata is larger than 32,768 bytes .* at metadata\['s'\]",
        ),
        ("ok", {"k" * 40_000: 1}, "metadata is larger than 32,768 bytes"),
        ("x" * 100_000_000, None, "content is 100,000,000 characters long, more than the limit"),
        ("x" * 32_001, None, "content is 32,001 characters long, more than the limit of 32,000"),
        ("ok", {10**5000: 1}, "has the key <an integer of 16,610 bits>, a int"),
        ("ok", {"f": (lambda: 0)}, r"metadata\['f'\] is a function, which is not JSON"),
    ],
    ids=lambda v: type(v).__name__ if not isinstance(v, str) else v[:30],
)
async def test_add_message_refuses_hostile_input_quickly_with_a_bounded_error(
    content: str, metadata: Any, reason: str
) -> None:
    """Cycles, deep nesting, huge ints and huge values: an InvalidMessage, never a hang,
    RecursionError, ValueError or MemoryError; the error message itself stays short."""
    session = await make_session()
    with pytest.raises(InvalidMessage, match=reason) as info:
        await add_message(session, "user", content, metadata)
    assert len(str(info.value)) < 400
    assert await Message.all().count() == 0


async def test_a_huge_role_is_refused_with_a_short_error() -> None:
    session = await make_session()
    with pytest.raises(InvalidMessage, match=r"unknown role 'rrrr") as info:
        await add_message(session, "r" * 10_000_000, "hi")
    assert len(str(info.value)) < 200
    with pytest.raises(InvalidMessage, match="unknown role <a list>"):
        await add_message(session, ["user"], "hi")  # type: ignore[arg-type]


async def test_content_and_metadata_exactly_at_the_limits_are_stored(
    raw: asyncpg.Connection,
) -> None:
    session = await make_session()
    # {"p":"xxx…"} is 8 bytes of syntax around the padding; é is 2 bytes in UTF-8.
    metadata = {"p": "é" + "x" * (MAX_METADATA_BYTES - 8 - 2)}
    assert len(json.dumps(metadata, ensure_ascii=False, separators=(",", ":")).encode()) == (
        MAX_METADATA_BYTES
    )
    deep = _nested(MAX_METADATA_DEPTH)
    await add_message(session, "user", "x" * MAX_CONTENT_CHARS, metadata)
    await add_message(session, "user", "ok", deep)
    stored = [r["metadata"] for r in await raw.fetch("SELECT metadata FROM message ORDER BY id")]
    assert [json.loads(m) for m in stored] == [metadata, deep]
    metadata["p"] += "x"
    with pytest.raises(InvalidMessage, match="metadata is larger than 32,768 bytes"):
        await add_message(session, "user", "ok", metadata)
    metadata["p"] = metadata["p"][:-2] + "\n"  # one character, two bytes escaped
    with pytest.raises(InvalidMessage, match="metadata is larger than 32,768 bytes"):
        await add_message(session, "user", "ok", metadata)
    ascii_only = {"p": "x" * (MAX_METADATA_BYTES - 8 - 2) + '"'}  # escaped: at the limit
    await add_message(session, "user", "ok", ascii_only)
    ascii_only["p"] = "x" + ascii_only["p"]
    with pytest.raises(InvalidMessage, match="metadata is larger than 32,768 bytes"):
        await add_message(session, "user", "ok", ascii_only)


async def test_shared_subtrees_are_not_mistaken_for_cycles() -> None:
    """The same list twice (a DAG, not a cycle) is valid JSON and is stored twice."""
    session = await make_session()
    shared = [1, 2]
    message = await add_message(session, "user", "ok", {"a": shared, "b": [shared, shared]})
    assert message.metadata == {"a": [1, 2], "b": [[1, 2], [1, 2]]}


async def test_add_message_to_a_missing_session_raises_not_found() -> None:
    with pytest.raises(NotFound, match="Session 999999 does not exist"):
        await add_message(999_999, "user", "hello?")


async def test_add_message_is_one_round_trip(queries: list[str]) -> None:
    session = await make_session()
    queries.clear()
    await add_message(session, "user", "one statement")
    assert len(queries) == 1
    assert queries[0].lstrip().startswith('INSERT INTO "message"')


async def test_operations_join_the_callers_transaction() -> None:
    session = await make_session()

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback):
        async with in_transaction():
            await add_message(session, "user", "undone")
            await end_session(session)
            raise Rollback
    stored = await ConversationSession.get(id=session.id)
    assert (stored.status, stored.total_messages) == (SessionStatus.ACTIVE, 0)
    assert await Message.all().count() == 0


# --- concurrency --------------------------------------------------------------------------


async def test_200_concurrent_appends_two_writers_per_session_keep_counters_exact(
    raw: asyncpg.Connection,
) -> None:
    """10 sessions x 2 writers (partner reply, coach feedback) x 10 messages, on a pool of 10."""
    sessions = [await make_session() for _ in range(10)]

    async def writer(session: ConversationSession, role: MessageRole) -> list[int]:
        return [(await add_message(session, role, f"{role} {i}")).id for i in range(10)]

    results = await asyncio.wait_for(
        asyncio.gather(
            *(
                writer(s, role)
                for s in sessions
                for role in (MessageRole.PARTNER, MessageRole.COACH)
            )
        ),
        timeout=60,  # a deadlock would hang: fail instead
    )
    ids = [message_id for ids in results for message_id in ids]
    assert len(ids) == len(set(ids)) == 200
    assert await raw.fetchval("SELECT count(*) FROM message") == 200
    await assert_counters_exact(raw)
    for session in sessions:
        assert (await ConversationSession.get(id=session.id)).total_messages == 20


async def first_message_in(conn: asyncpg.Connection, session_id: int) -> None:
    """Return once a message of the session is committed."""
    while True:
        if await conn.fetchval("SELECT count(*) FROM message WHERE session_id = $1", session_id):
            return
        await asyncio.sleep(0.01)


async def test_ending_a_session_during_concurrent_appends_keeps_it_consistent(
    raw: asyncpg.Connection,
) -> None:
    session = await make_session()

    async def append(i: int) -> bool:
        try:
            await add_message(session, "user", f"message {i}")
        except SessionNotActive:
            return False
        return True

    appends = [asyncio.create_task(append(i)) for i in range(60)]
    await asyncio.wait_for(first_message_in(raw, session.id), timeout=60)  # mid-stream
    ended = await end_session(session)
    accepted = sum(await asyncio.gather(*appends))
    row = await raw.fetchrow(
        "SELECT s.total_messages, count(m.id) AS n, max(m.timestamp) AS last"
        " FROM conversation_session s LEFT JOIN message m ON m.session_id = s.id"
        " WHERE s.id = $1 GROUP BY s.id",
        session.id,
    )
    assert row["total_messages"] == row["n"] == accepted
    assert accepted > 0 and row["last"] <= ended.ended_at  # nothing after the end


async def blocked_by(conn: asyncpg.Connection) -> None:
    """Return once another backend waits for a lock that `conn`'s transaction holds."""
    query = (
        "SELECT count(*) FROM pg_locks WHERE NOT granted"
        " AND pg_backend_pid() = ANY(pg_blocking_pids(pid))"
    )
    while True:
        if await conn.fetchval(query):
            return
        await asyncio.sleep(0.01)


async def test_a_session_ended_while_a_message_is_being_added_refuses_the_message(
    raw: asyncpg.Connection,
) -> None:
    """add_message saw the session active, but the end committed first: the trigger refuses."""
    session = await make_session()
    async with raw.transaction():
        await raw.execute(
            "UPDATE conversation_session SET status = 'completed' WHERE id = $1", session.id
        )
        adding = asyncio.create_task(add_message(session, "user", "just too late"))
        # Until add_message's connection waits on a lock this transaction holds (no timing).
        await asyncio.wait_for(blocked_by(raw), timeout=60)
        assert not adding.done()
    with pytest.raises(SessionNotActive, match=f"Session {session.id} has just ended"):
        await adding
    assert await raw.fetchval("SELECT count(*) FROM message") == 0
    await assert_counters_exact(raw)


async def test_concurrent_multi_session_statements_lock_in_order_and_never_deadlock(
    raw_pool: asyncpg.Pool,
) -> None:
    """Bulk statements naming the same sessions in opposite orders queue instead of deadlocking."""
    ids = [(await make_session()).id for _ in range(4)]

    async def bulk(order: list[int]) -> None:
        async with raw_pool.acquire() as conn:
            for _ in range(15):
                async with conn.transaction():
                    await conn.executemany(
                        "INSERT INTO message (session_id, role, content)"
                        " SELECT unnest($1::int[]), 'user', 'bulk'",
                        [(order,)],
                    )

    orders = [ids, ids[::-1], ids[1:] + ids[:1], ids[::-1]]
    await asyncio.wait_for(asyncio.gather(*(bulk(order) for order in orders)), timeout=60)
    async with raw_pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM message") == 4 * 15 * 4
        await assert_counters_exact(conn)


# --- writers other than coach_db: raw SQL and the studio's plain ORM saves -----------------


async def test_raw_sql_inserts_moves_deletes_copy_and_truncate_keep_counters_exact(
    raw: asyncpg.Connection,
) -> None:
    a, b = (await make_session()).id, (await make_session()).id
    await raw.execute(
        "INSERT INTO message (session_id, role, content)"
        " VALUES ($1, 'user', 'a1'), ($2, 'partner', 'b1'), ($1, 'coach', 'a2')",
        a,
        b,
    )
    await assert_counters_exact(raw)
    await raw.execute("UPDATE message SET session_id = $1 WHERE content = 'a2'", b)  # a move
    await raw.execute("UPDATE message SET content = content || '!'")  # an edit in place
    await assert_counters_exact(raw)
    await raw.copy_records_to_table(
        "message",
        records=[(a if i % 2 else b, "user", f"copied {i}") for i in range(100)],
        columns=("session_id", "role", "content"),
    )
    await assert_counters_exact(raw)
    await raw.execute("DELETE FROM message WHERE content LIKE 'copied 1%'")
    await assert_counters_exact(raw)
    totals = await raw.fetch("SELECT total_messages FROM conversation_session ORDER BY id")
    assert sum(r["total_messages"] for r in totals) == 103 - 11
    await raw.execute("TRUNCATE message")
    await assert_counters_exact(raw)
    await raw.execute("DELETE FROM conversation_session WHERE id = $1", a)  # cascades
    await assert_counters_exact(raw)


async def test_studio_style_orm_create_delete_and_bulk_writes_keep_counters_exact(
    raw: asyncpg.Connection,
) -> None:
    """The studio (fastapi-admin) writes Message rows with plain Tortoise create/save/delete."""
    session, other = await make_session(), await make_session()
    created = await Message.create(session=session, role=MessageRole.USER, content="typed")
    await Message.bulk_create(
        [Message(session=session, role=MessageRole.COACH, content=f"bulk {i}") for i in range(5)]
    )
    await assert_counters_exact(raw)
    created.session = other  # moved in an edit form
    await created.save()
    await assert_counters_exact(raw)
    await created.delete()
    await Message.filter(session_id=session.id, content__in=["bulk 0", "bulk 1"]).delete()
    await Message.filter(session_id=session.id).update(session_id=other.id)
    await assert_counters_exact(raw)
    assert (await ConversationSession.get(id=other.id)).total_messages == 3
    await session.delete()
    await assert_counters_exact(raw)


async def test_a_new_session_starts_at_zero_whatever_the_insert_says(
    raw: asyncpg.Connection,
) -> None:
    """The demo seed COPYs sessions with their final count, then their messages."""
    session = await make_session()
    copied = await raw.fetchval(
        "INSERT INTO conversation_session (user_id, scenario_id, total_messages)"
        " SELECT user_id, scenario_id, 7 FROM conversation_session WHERE id = $1 RETURNING id",
        session.id,
    )
    assert (
        await raw.fetchval("SELECT total_messages FROM conversation_session WHERE id = $1", copied)
        == 0
    )


async def test_database_refuses_messages_after_the_end_but_takes_backfilled_history(
    raw: asyncpg.Connection,
) -> None:
    started = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
    session = await make_session(
        status=SessionStatus.COMPLETED, started_at=started, ended_at=started + timedelta(minutes=9)
    )
    insert = (
        "INSERT INTO message (session_id, role, content, timestamp) VALUES ($1, 'user', $2, $3)"
    )
    async with raw.transaction():  # history goes into an ended session only as a backfill
        await raw.execute("SET LOCAL coach_db.backfill = 'on'")
        await raw.execute(insert, session.id, "history", started + timedelta(minutes=3))
        await raw.execute(insert, session.id, "last word", started + timedelta(minutes=9))
    with pytest.raises(asyncpg.CheckViolationError, match=r"ended at .* cannot be added") as info:
        await raw.execute(
            "INSERT INTO message (session_id, role, content) VALUES ($1, 'user', 'late')",
            session.id,
        )
    assert info.value.constraint_name == AFTER_END
    with pytest.raises(IntegrityError, match="cannot be added"):  # the studio's ORM create
        await Message.create(session=session, role=MessageRole.USER, content="late")
    with pytest.raises(asyncpg.CheckViolationError, match=r"cannot end at .* it has a message"):
        await raw.execute(
            "UPDATE conversation_session SET ended_at = ended_at - interval '1 minute'"
        )
    assert await raw.fetchval("SELECT count(*) FROM message") == 2
    await assert_counters_exact(raw)


# --- end_session --------------------------------------------------------------------------


async def test_end_session_sets_ended_at_and_duration_from_the_database_clock(
    raw: asyncpg.Connection,
) -> None:
    session = await make_session()
    await raw.execute(
        "UPDATE conversation_session SET started_at = now() - interval '95.5 seconds'"
    )
    await add_message(session, "user", "bye")
    before = await raw.fetchval("SELECT clock_timestamp()")
    ended = await end_session(session)
    after = await raw.fetchval("SELECT clock_timestamp()")
    assert ended.status is SessionStatus.COMPLETED
    assert ended.ended_at is not None and before <= ended.ended_at <= after
    seconds = (ended.ended_at - ended.started_at).total_seconds()
    assert ended.duration_seconds == math.floor(seconds) >= 95
    assert ended.total_messages == 1
    stored = await ConversationSession.get(id=session.id)
    assert (stored.ended_at, stored.duration_seconds) == (ended.ended_at, ended.duration_seconds)


async def test_end_session_is_idempotent() -> None:
    session = await make_session()
    first = await end_session(session, SessionStatus.ABANDONED)
    again = await end_session(session.id, "abandoned")
    assert again.status is SessionStatus.ABANDONED
    assert (again.ended_at, again.duration_seconds) == (first.ended_at, first.duration_seconds)


async def test_end_session_refuses_a_different_second_ending() -> None:
    session = await make_session()
    first = await end_session(session, SessionStatus.COMPLETED)
    with pytest.raises(
        SessionAlreadyEnded,
        match=f"Session {session.id} already ended as completed at .*; "
        "it cannot end again as abandoned",
    ):
        await end_session(session, SessionStatus.ABANDONED)
    stored = await ConversationSession.get(id=session.id)
    assert (stored.status, stored.ended_at) == (SessionStatus.COMPLETED, first.ended_at)


async def test_end_session_argument_errors() -> None:
    session = await make_session()
    with pytest.raises(ValueError, match="status must be completed or abandoned"):
        await end_session(session, SessionStatus.ACTIVE)
    with pytest.raises(ValueError, match="'paused' is not a valid SessionStatus"):
        await end_session(session, "paused")
    with pytest.raises(NotFound, match="Session 999999 does not exist"):
        await end_session(999_999)


async def test_ending_and_reopening_by_raw_sql_or_the_studio_keeps_times_consistent(
    raw: asyncpg.Connection,
) -> None:
    session = await make_session()
    row = await raw.fetchrow(
        "UPDATE conversation_session SET status = 'abandoned' RETURNING *"
    )  # no ended_at given: the database stamps it
    assert row["ended_at"] is not None
    assert row["duration_seconds"] == math.floor(
        (row["ended_at"] - row["started_at"]).total_seconds()
    )
    stored = await ConversationSession.get(id=session.id)
    stored.status = SessionStatus.ACTIVE  # an administrator reopens it in the studio
    await stored.save()
    reopened = await ConversationSession.get(id=session.id)
    assert (reopened.ended_at, reopened.duration_seconds) == (None, None)
    with pytest.raises(IntegrityError, match="ended_at_matches_status"):
        await make_session(status=SessionStatus.COMPLETED, ended_at=None)


async def test_a_duration_written_by_hand_must_match_the_times(raw: asyncpg.Connection) -> None:
    started = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
    session = await make_session(
        status=SessionStatus.COMPLETED, started_at=started, ended_at=started + timedelta(seconds=90)
    )
    assert (await ConversationSession.get(id=session.id)).duration_seconds == 90  # derived
    with pytest.raises(asyncpg.CheckViolationError, match="duration_spans_start_to_end"):
        await raw.execute("UPDATE conversation_session SET duration_seconds = 5")
    await raw.execute("UPDATE conversation_session SET ended_at = ended_at + interval '30.9 s'")
    assert await raw.fetchval("SELECT duration_seconds FROM conversation_session") == 120
    with pytest.raises(asyncpg.CheckViolationError, match="duration_spans_start_to_end"):
        await raw.execute("UPDATE conversation_session SET ended_at = '2099-01-01T10:30:00Z'")


# --- transcript ---------------------------------------------------------------------------


async def test_transcript_pages_cover_every_message_once_in_time_order(
    raw: asyncpg.Connection,
) -> None:
    """Keyset pages, with runs of equal timestamps and rows inserted out of time order."""
    session = await make_session()
    t0 = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
    minutes = [5, 1, 1, 1, 3, 1, 5, 5, 2, 2, 2, 2, 2, 4, 0, 5, 5, 5, 1, 3, 3, 0, 4]
    await raw.executemany(
        "INSERT INTO message (session_id, role, content, timestamp) VALUES ($1, 'user', $2, $3)",
        [(session.id, f"m{i}", t0 + timedelta(minutes=m)) for i, m in enumerate(minutes)],
    )
    expected = [
        r["id"]
        for r in await raw.fetch(
            "SELECT id FROM message WHERE session_id = $1 ORDER BY timestamp, id", session.id
        )
    ]
    for limit in (1, 4, 5, 23, 50):
        seen: list[int] = []
        page = await transcript(session, limit=limit)
        while page:
            seen += [m.id for m in page]
            assert len(page) <= limit
            # Alternate the two cursor forms: the last message, or its (timestamp, id).
            cursor = page[-1] if len(seen) % 2 else (page[-1].timestamp, page[-1].id)
            page = await transcript(session.id, after=cursor, limit=limit)
        assert seen == expected, limit


async def test_transcript_returns_full_messages_and_one_query_per_page(
    queries: list[str],
) -> None:
    session, other = await make_session(), await make_session()
    sent = await add_message(session, "coach", "Nice opener.", {"score": 0.8})
    await add_message(other, "user", "another session")
    queries.clear()
    [read] = await transcript(session)
    assert len(queries) == 1 and "OFFSET" not in queries[0].upper()
    assert (read.id, read.role, read.content, read.metadata) == (
        sent.id,
        MessageRole.COACH,
        "Nice opener.",
        {"score": 0.8},
    )
    assert await transcript(session, after=read) == []


async def test_transcript_limit_is_checked() -> None:
    session = await make_session()
    for limit in (0, -1, MAX_TRANSCRIPT_PAGE + 1, 10**9):
        with pytest.raises(ValueError, match="limit must be between 1 and 500"):
            await transcript(session, limit=limit)


# --- user_history -------------------------------------------------------------------------


async def _user_with_history(sessions: int, messages: int) -> int:
    user = await make_user(password_hash="$argon2id$secret")
    scenarios = [await make_scenario(), await make_scenario()]
    for i in range(sessions):
        session = await start_session(user, scenarios[i % 2])
        for j in range(messages):
            await add_message(session, MessageRole.USER, f"s{i} m{j}", {"j": j})
        if i % 3 == 0:
            await end_session(session)
    return int(user.id)


async def test_user_history_is_what_the_orm_nesting_gives() -> None:
    user_id = await _user_with_history(sessions=4, messages=3)
    await _user_with_history(sessions=1, messages=1)  # someone else's: must not appear
    history = await user_history(user_id)
    orm = await UserWithSessions.from_tortoise_orm(await User.get(id=user_id))
    assert history.model_dump() == orm.model_dump()
    dumped = history.model_dump()
    assert "password_hash" not in dumped
    assert len(dumped["sessions"]) == 4
    assert [m["content"] for m in dumped["sessions"][-1]["messages"]] == ["s0 m0", "s0 m1", "s0 m2"]


async def test_user_history_takes_the_same_few_statements_however_long_the_history(
    queries: list[str],
) -> None:
    """No N+1: the user, the sessions with their scenario, their messages, in one read-only
    snapshot (BEGIN … COMMIT), for 1 session or 12 sessions x 10 messages; without sessions
    no message query. (The ORM's nesting takes 3 queries on no common snapshot.)"""
    counts = []
    for sessions, messages in [(0, 0), (1, 1), (12, 10)]:
        user_id = await _user_with_history(sessions, messages)
        queries.clear()
        history = await user_history(user_id)
        counts.append(len(queries))
        assert len(history.model_dump()["sessions"]) == sessions
        assert queries[0].upper().startswith("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        assert queries[-1].upper().startswith("COMMIT")
    assert counts == [4, 5, 5]
    user = await User.get(id=user_id)
    queries.clear()
    await UserWithSessions.from_tortoise_orm(user)
    assert len(queries) == 3


async def test_user_history_in_a_callers_transaction_sees_its_own_writes() -> None:
    """Inside in_transaction() the caller's transaction is the snapshot (no second BEGIN):
    a message it added and has not committed is in the history; a rollback takes it away."""
    session = await make_session()
    user_id, session_id = session.user_id, session.id
    await add_message(session_id, "user", "committed")

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback):
        async with in_transaction():
            await add_message(session_id, "user", "uncommitted")
            history = await user_history(user_id)
            assert [m.content for m in history.sessions[0].messages][-1] == "uncommitted"
            raise Rollback
    contents = [m.content for m in (await user_history(user_id)).sessions[0].messages]
    assert contents == ["committed"]


async def test_user_history_of_a_missing_user_raises_not_found() -> None:
    with pytest.raises(NotFound, match="User 999999 does not exist"):
        await user_history(999_999)


async def test_every_refusal_is_caught_by_one_except_conversation_error(
    raw: asyncpg.Connection,
) -> None:
    """What a service relies on: each refusal of the functions, not the class statements."""
    user = await make_user()
    inactive = await make_scenario(is_active=False)
    active = await make_session(user=user)
    ended = await make_session(user=user, status=SessionStatus.COMPLETED)
    before = await raw.fetchval("SELECT count(*) FROM message") + await raw.fetchval(
        "SELECT count(*) FROM conversation_session"
    )
    refusals: list[tuple[type[ConversationError], Callable[[], Any]]] = [
        (NotFound, lambda: start_session(999_999, active.scenario_id)),  # type: ignore[attr-defined]
        (ScenarioInactive, lambda: start_session(user, inactive)),
        (SessionNotActive, lambda: add_message(ended, MessageRole.USER, "late")),
        (SessionAlreadyEnded, lambda: end_session(ended, SessionStatus.ABANDONED)),
        (InvalidMessage, lambda: add_message(active, MessageRole.USER, "")),
        (InvalidMessage, lambda: add_message(active, "narrator", "hi")),
    ]
    for expected, call in refusals:
        with pytest.raises(ConversationError) as caught:
            await call()
        assert type(caught.value) is expected
    after = await raw.fetchval("SELECT count(*) FROM message") + await raw.fetchval(
        "SELECT count(*) FROM conversation_session"
    )
    assert after == before


async def test_user_history_is_bounded_and_the_rest_is_reachable(raw: asyncpg.Connection) -> None:
    """More sessions and messages than the limits: the rows returned stop at the limits, and
    `before=` plus transcript() reach everything else exactly once."""
    user, scenario = await make_user(), await make_scenario()
    t0 = datetime(2026, 1, 5, 18, 0, tzinfo=UTC)
    sessions = MAX_HISTORY_SESSIONS + 3
    ids = [
        await raw.fetchval(
            "INSERT INTO conversation_session (user_id, scenario_id, started_at) "
            "VALUES ($1, $2, $3) RETURNING id",
            user.id,
            scenario.id,
            t0 + timedelta(minutes=i % 7),  # equal start times: ties ordered by id
        )
        for i in range(sessions)
    ]
    messages = MAX_HISTORY_MESSAGES + 30
    long_one = ids[-1]
    await raw.copy_records_to_table(
        "message",
        records=[(long_one, "user", f"m{j}") for j in range(messages)],
        columns=["session_id", "role", "content"],
    )
    newest_first = [
        r["id"]
        for r in await raw.fetch(
            "SELECT id FROM conversation_session ORDER BY started_at DESC, id DESC"
        )
    ]

    first = (await user_history(user)).model_dump()["sessions"]
    assert [s["id"] for s in first] == newest_first[:MAX_HISTORY_SESSIONS]
    rest = (await user_history(user.id, before=first[-1]["id"])).model_dump()["sessions"]
    assert [s["id"] for s in rest] == newest_first[MAX_HISTORY_SESSIONS:]

    [long] = [s for s in first + rest if s["id"] == long_one]
    assert long["total_messages"] == messages
    assert [m["content"] for m in long["messages"]] == [
        f"m{j}" for j in range(MAX_HISTORY_MESSAGES)
    ]
    last = long["messages"][-1]
    more = await transcript(long_one, after=(last["timestamp"], last["id"]), limit=500)
    assert [m.content for m in more] == [f"m{j}" for j in range(MAX_HISTORY_MESSAGES, messages)]


async def test_user_history_before_a_session_of_someone_else_raises_not_found() -> None:
    user, other = await make_user(), await make_session()
    with pytest.raises(NotFound, match=f"Session {other.id} does not exist"):
        await user_history(user, before=other)


async def test_transcript_pages_backwards_with_before(raw: asyncpg.Connection) -> None:
    session = await make_session()
    for i in range(7):
        await add_message(session, "user", f"m{i}")
    everything = await transcript(session, limit=7)
    page = await transcript(session, before=everything[5], limit=3)
    assert [m.content for m in page] == ["m2", "m3", "m4"]
    page = await transcript(session, before=(page[0].timestamp, page[0].id), limit=3)
    assert [m.content for m in page] == ["m0", "m1"]
    with pytest.raises(ValueError, match="not both"):
        await transcript(session, after=everything[0], before=everything[1])


# --- lost connections -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "lost", "unsent"),
    [
        (asyncpg.ConnectionDoesNotExistError("closed in the middle of operation"), True, False),
        (asyncpg.AdminShutdownError("terminating connection"), True, False),
        (asyncpg.CannotConnectNowError("the database system is starting up"), True, True),
        (ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5432)"), True, True),
        (ConnectionResetError(104, "Connection reset by peer"), True, False),
        (asyncpg.InterfaceError("connection is closed"), True, False),
        (asyncpg.InternalClientError("cannot switch to state 11; another operation"), True, False),
        (asyncpg.InterfaceError("another operation is in progress"), False, False),
        (asyncpg.UniqueViolationError("duplicate key"), False, False),
        (asyncpg.QueryCanceledError("canceling statement due to statement timeout"), False, False),
        (ValueError("x"), False, False),
    ],
    ids=lambda v: type(v).__name__ if isinstance(v, BaseException) else str(v),
)
def test_lost_connections_are_told_apart_from_other_errors(
    exc: BaseException, lost: bool, unsent: bool
) -> None:
    """What DatabaseConnectionLost and the studio's retry treat as a lost connection, also
    when wrapped (as Tortoise's OperationalError wraps the driver's error)."""
    wrapped = RuntimeError("wrapper")
    wrapped.__cause__ = exc
    for error in (exc, wrapped):
        assert (connection_lost(error), never_sent(error)) == (lost, unsent and lost)


@pytest.mark.parametrize("bad", [2**31, 2**63, -1, 0])
async def test_ids_outside_the_columns_range_are_not_found_not_a_driver_error(bad: int) -> None:
    """Issue 18: an id no row can have is NotFound before any query (not tortoise's raw
    OperationalError "value out of int32 range"), and nothing is written."""
    session = await make_session()
    calls = {
        "Session": [
            lambda: add_message(bad, MessageRole.USER, "hi"),
            lambda: end_session(bad),
            lambda: transcript(bad),
            lambda: user_history(session.user_id, before=bad),  # type: ignore[attr-defined]
        ],
        "User": [lambda: start_session(bad, session.scenario_id), lambda: user_history(bad)],  # type: ignore[attr-defined]
        "Scenario": [lambda: start_session(session.user_id, bad)],  # type: ignore[attr-defined]
        "Message": [lambda: transcript(session, after=(datetime.now(UTC), 2**63))],
    }
    for what, tries in calls.items():
        for call in tries:
            with pytest.raises(NotFound, match=f"^{what} -?\\d+ does not exist"):
                await call()
    assert await Message.all().count() == 0
    assert await ConversationSession.all().count() == 1
