"""The pool's reset on release (DB_POOL_RESET): what it undoes, and that coach_db leaves nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any, cast

import asyncpg
import pytest
from tortoise import connections
from tortoise.transactions import in_transaction

import coach_db
from coach_db import (
    MessageRole,
    SessionNotActive,
    User,
    add_message,
    end_session,
    start_session,
    transcript,
    user_history,
)
from coach_db.db import pool_config
from tests.factories import make_scenario, make_user

# Everything a connection can carry from one query to the next outside a transaction. (A
# setting SET back to its value is no state: asyncpg turns jit off and on again around its
# type introspection. The unnamed cursor is this query's own.)
SESSION_STATE = """
    SELECT (SELECT array_agg(name ORDER BY name) FROM pg_settings
             WHERE source = 'session' AND setting IS DISTINCT FROM reset_val) AS settings,
           (SELECT array_agg(c) FROM pg_listening_channels() c) AS channels,
           (SELECT array_agg(name) FROM pg_cursors WHERE name <> '') AS cursors,
           (SELECT count(*) FROM pg_locks
             WHERE locktype = 'advisory' AND pid = pg_backend_pid()) AS advisory_locks
"""
CLEAN = {
    "in_transaction": False,
    "settings": None,
    "channels": None,
    "cursors": None,
    "advisory_locks": 0,
}


@asynccontextmanager
async def every_pooled_connection() -> AsyncIterator[list[asyncpg.Connection]]:
    """All the pool's connections at once (the pool has 10), so none is left out."""
    client: Any = connections.get("default")
    async with AsyncExitStack() as stack:
        held = [
            cast(asyncpg.Connection, await stack.enter_async_context(client.acquire_connection()))
            for _ in range(client.pool_maxsize)
        ]
        yield held


async def session_state() -> list[dict[str, Any]]:
    async with every_pooled_connection() as held:
        return [
            {"in_transaction": conn.is_in_transaction(), **(await conn.fetchrow(SESSION_STATE))}
            for conn in held
        ]


def test_the_light_reset_is_the_default_and_full_gives_asyncpgs_own(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DB_POOL_RESET", raising=False)
    light = pool_config("postgres://u@h/d")["connections"]["default"]
    assert light["credentials"]["reset"].__name__ == "_light_reset"
    assert light["credentials"]["maxsize"] == "10"  # the URL's pool settings are kept
    monkeypatch.setenv("DB_POOL_RESET", "full")
    full = pool_config("postgres://u@h/d")["connections"]["default"]
    assert isinstance(full, str)  # the plain URL: asyncpg's default reset on release


async def test_a_transaction_left_open_is_rolled_back_when_the_connection_returns() -> None:
    client: Any = connections.get("default")
    async with client.acquire_connection() as conn:
        await conn.execute("BEGIN")
        await conn.execute(
            """INSERT INTO "user" (email, username) VALUES ('left@example.com', 'Left')"""
        )
    assert not await User.filter(email="left@example.com").exists()
    states = await session_state()
    assert not any(state["in_transaction"] for state in states)


async def test_coach_db_leaves_no_session_state_on_pooled_connections() -> None:
    """What makes the light reset safe: every package path, failures and rollbacks included."""
    user, scenario = await make_user(), await make_scenario()
    session = await start_session(user, scenario)
    await add_message(session, MessageRole.USER, "Hi", {"model": "m"})
    await transcript(session)
    await user_history(user)
    await end_session(session)
    with pytest.raises(SessionNotActive):
        await add_message(session, MessageRole.USER, "Too late")
    with pytest.raises(RuntimeError):
        async with in_transaction():
            await start_session(user, scenario)
            raise RuntimeError("rolled back")
    from coach_db.apps.seed import seed

    await seed(demo=2)
    states = await session_state()
    assert states == [CLEAN] * len(states)


@pytest.mark.parametrize(("mode", "leaks"), [("light", True), ("full", False)])
async def test_a_session_setting_reaches_later_queries_only_with_the_light_reset(
    monkeypatch: pytest.MonkeyPatch, database_url: str, mode: str, leaks: bool
) -> None:
    """The contract of the light reset: on the pool, SET LOCAL in a transaction, never SET."""
    monkeypatch.setenv("DB_POOL_RESET", mode)
    await coach_db.init_db(database_url)
    try:
        client: Any = connections.get("default")
        async with client.acquire_connection() as conn:
            await conn.execute("SET statement_timeout = '123s'")
        settings = [state["settings"] or [] for state in await session_state()]
        assert any("statement_timeout" in names for names in settings) is leaks
    finally:
        monkeypatch.delenv("DB_POOL_RESET")
        await coach_db.init_db(database_url)  # the suite's own pool again
