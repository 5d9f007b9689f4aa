"""Idempotency keys: a retry of add_message / start_session returns the first call's row, never a
second one, whoever races; keys are bounded and unique in the database (migration 10)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from coach_db import (
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    MessageRole,
    SessionStatus,
    add_message,
    end_session,
    start_session,
)
from coach_db.limits import MAX_IDEMPOTENCY_KEY_CHARS
from tests.factories import make_scenario, make_session, make_user

MESSAGE_INDEX = "message_session_idempotency_key"
SESSION_INDEX = "conversation_session_user_idempotency_key"


async def test_add_message_retried_with_its_key_returns_the_stored_message(
    raw: asyncpg.Connection,
) -> None:
    session = await make_session()
    first = await add_message(session, "user", "Hello", {"tokens": 3}, idempotency_key="k-1")
    again = await add_message(session, "user", "Hello", {"tokens": 3}, idempotency_key="k-1")
    assert (again.id, again.timestamp, again.metadata) == (first.id, first.timestamp, {"tokens": 3})
    assert again.idempotency_key == "k-1"
    rows = await raw.fetch("SELECT id FROM message WHERE session_id = $1", session.id)
    assert [r["id"] for r in rows] == [first.id]
    total = await raw.fetchval(
        "SELECT total_messages FROM conversation_session WHERE id = $1", session.id
    )
    assert total == 1


async def test_add_message_without_a_key_stores_every_call(raw: asyncpg.Connection) -> None:
    session = await make_session()
    await add_message(session, "user", "Hello")
    await add_message(session, "user", "Hello")
    assert await raw.fetchval("SELECT count(*) FROM message WHERE session_id = $1", session.id) == 2


@pytest.mark.parametrize(
    ("role", "content", "metadata", "differs"),
    [
        ("coach", "Hello", {"tokens": 3}, "role"),
        ("user", "Hello!", {"tokens": 3}, "content"),
        ("user", "Hello", {"tokens": 4}, "metadata"),
    ],
)
async def test_a_message_key_reused_with_other_values_is_a_conflict(
    raw: asyncpg.Connection, role: str, content: str, metadata: dict[str, int], differs: str
) -> None:
    """Like Stripe: the stored row is not what this call asks for, so it is not returned."""
    session = await make_session()
    first = await add_message(session, "user", "Hello", {"tokens": 3}, idempotency_key="k")
    with pytest.raises(IdempotencyKeyReused, match=f"another {differs}") as caught:
        await add_message(session, role, content, metadata, idempotency_key="k")
    assert caught.value.stored_id == first.id
    assert await raw.fetchval("SELECT count(*) FROM message WHERE session_id = $1", session.id) == 1


async def test_metadata_equal_as_json_is_the_same_retry() -> None:
    session = await make_session()
    first = await add_message(session, "user", "Hi", {"a": 1, "b": [1, 2]}, idempotency_key="k")
    again = await add_message(session, "user", "Hi", {"b": [1, 2], "a": 1}, idempotency_key="k")
    assert again.id == first.id


async def test_message_keys_are_unique_per_session_only() -> None:
    one, two = await make_session(), await make_session()
    a = await add_message(one, "user", "Hello", idempotency_key="same")
    b = await add_message(two, "user", "Hello", idempotency_key="same")
    assert a.id != b.id


async def test_a_retry_after_the_session_ended_returns_the_stored_message() -> None:
    """The first call's commit was acknowledged (or not): the retry answers from the row."""
    session = await make_session()
    first = await add_message(session, "user", "Bye", idempotency_key="last")
    await end_session(session)
    again = await add_message(session, "user", "Bye", idempotency_key="last")
    assert again.id == first.id


async def test_many_concurrent_calls_with_one_key_store_exactly_one_message(
    raw: asyncpg.Connection,
) -> None:
    session = await make_session()
    calls = [add_message(session, "user", "Racing", idempotency_key="race") for _ in range(24)]
    results = await asyncio.gather(*calls)
    assert len({m.id for m in results}) == 1
    assert await raw.fetchval("SELECT count(*) FROM message WHERE session_id = $1", session.id) == 1
    total = await raw.fetchval(
        "SELECT total_messages FROM conversation_session WHERE id = $1", session.id
    )
    assert total == 1


async def test_start_session_retried_with_its_key_returns_the_same_session(
    raw: asyncpg.Connection,
) -> None:
    user, scenario = await make_user(), await make_scenario()
    first = await start_session(user, scenario, idempotency_key="start-1")
    again = await start_session(user, scenario, idempotency_key="start-1")
    assert (again.id, again.started_at, again.idempotency_key) == (
        first.id,
        first.started_at,
        "start-1",
    )
    count = await raw.fetchval(
        "SELECT count(*) FROM conversation_session WHERE user_id = $1", user.id
    )
    assert count == 1


async def test_a_session_key_reused_for_another_scenario_is_a_conflict() -> None:
    user = await make_user()
    first = await start_session(user, await make_scenario(), idempotency_key="k")
    with pytest.raises(IdempotencyKeyReused, match="another scenario") as caught:
        await start_session(user, await make_scenario(), idempotency_key="k")
    assert caught.value.stored_id == first.id


async def test_session_keys_are_unique_per_user_only() -> None:
    scenario = await make_scenario()
    a = await start_session(await make_user(), scenario, idempotency_key="same")
    b = await start_session(await make_user(), scenario, idempotency_key="same")
    assert a.id != b.id


async def test_a_session_retry_after_the_scenario_was_deactivated_returns_the_session() -> None:
    user, scenario = await make_user(), await make_scenario()
    first = await start_session(user, scenario, idempotency_key="k")
    scenario.is_active = False
    await scenario.save()
    assert (await start_session(user, scenario, idempotency_key="k")).id == first.id


async def test_many_concurrent_session_starts_with_one_key_start_one_session(
    raw: asyncpg.Connection,
) -> None:
    user, scenario = await make_user(), await make_scenario()
    results = await asyncio.gather(
        *(start_session(user, scenario, idempotency_key="race") for _ in range(24))
    )
    assert len({s.id for s in results}) == 1
    count = await raw.fetchval(
        "SELECT count(*) FROM conversation_session WHERE user_id = $1", user.id
    )
    assert count == 1


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("x" * (MAX_IDEMPOTENCY_KEY_CHARS + 1), "more than the limit of 255"),
        ("", "empty"),
        ("a\x00b", "NUL"),
        (12, "must be a str"),
    ],
)
async def test_a_bad_key_is_refused_and_nothing_is_written(
    raw: asyncpg.Connection, key: object, reason: str
) -> None:
    session = await make_session()
    with pytest.raises(InvalidIdempotencyKey, match=reason):
        await add_message(session, "user", "Hello", idempotency_key=key)  # type: ignore[arg-type]
    with pytest.raises(InvalidIdempotencyKey, match=reason):
        await start_session(await make_user(), await make_scenario(), idempotency_key=key)  # type: ignore[arg-type]
    assert await raw.fetchval("SELECT count(*) FROM message WHERE session_id = $1", session.id) == 0


async def test_a_key_of_the_longest_allowed_length_is_stored() -> None:
    key = "k" * MAX_IDEMPOTENCY_KEY_CHARS
    session = await make_session()
    assert (await add_message(session, "user", "Hi", idempotency_key=key)).idempotency_key == key


@pytest.mark.parametrize(
    ("table", "constraint"),
    [
        ("message", "message_idempotency_key_length"),
        ("conversation_session", "conversation_session_idempotency_key_length"),
    ],
)
async def test_the_database_bounds_keys_for_raw_sql_too(
    raw: asyncpg.Connection, table: str, constraint: str
) -> None:
    definition = await raw.fetchval(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = $1", constraint
    )
    assert f"{MAX_IDEMPOTENCY_KEY_CHARS}" in definition
    session = await make_session()
    await add_message(session, "user", "Hello")
    column = "id" if table == "conversation_session" else "session_id"
    with pytest.raises(asyncpg.CheckViolationError) as caught:
        await raw.execute(
            f"UPDATE \"{table}\" SET idempotency_key = '' WHERE {column} = $1", session.id
        )
    assert caught.value.constraint_name == constraint


async def test_the_database_refuses_a_second_row_with_a_key_from_raw_sql(
    raw: asyncpg.Connection,
) -> None:
    session = await make_session()
    await add_message(session, "user", "Hello", idempotency_key="dup")
    with pytest.raises(asyncpg.UniqueViolationError) as caught:
        await raw.execute(
            "INSERT INTO message (session_id, role, content, idempotency_key)"
            " VALUES ($1, 'user', 'again', 'dup')",
            session.id,
        )
    assert caught.value.constraint_name == MESSAGE_INDEX
    user = await make_user()
    scenario = await make_scenario()
    await start_session(user, scenario, idempotency_key="dup")
    with pytest.raises(asyncpg.UniqueViolationError) as caught:
        await raw.execute(
            "INSERT INTO conversation_session (user_id, scenario_id, idempotency_key)"
            " VALUES ($1, $2, 'dup')",
            user.id,
            scenario.id,
        )
    assert caught.value.constraint_name == SESSION_INDEX


async def test_end_session_needs_no_key_ending_again_returns_it_unchanged(
    raw: asyncpg.Connection,
) -> None:
    session = await make_session()
    first = await end_session(session, SessionStatus.ABANDONED)
    again = await end_session(session, SessionStatus.ABANDONED)
    assert (again.status, again.ended_at, again.version) == (
        first.status,
        first.ended_at,
        first.version,
    )


async def test_roles_given_as_enum_or_text_are_the_same_retry() -> None:
    session = await make_session()
    first = await add_message(session, MessageRole.COACH, "Tip", idempotency_key="k")
    assert (await add_message(session, "coach", "Tip", idempotency_key="k")).id == first.id
