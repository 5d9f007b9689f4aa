"""Small async factories with unique random values."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from pwdlib.hashers.argon2 import Argon2Hasher
from tortoise.transactions import in_transaction

from coach_db import ConversationSession, Message, MessageRole, Scenario, SessionStatus, User


def cheap_argon2() -> Argon2Hasher:
    """argon2id at its lowest cost, for tests about something other than the hash (as Django's
    test settings do); tests/test_passwords.py checks the production parameters."""
    return Argon2Hasher(time_cost=1, memory_cost=1024, parallelism=1)


def unique(prefix: str = "x") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def make_user(**overrides: Any) -> User:
    values: dict[str, Any] = {"email": f"{unique('user')}@example.com", "username": unique("User")}
    return await User.create(**(values | overrides))


async def make_scenario(**overrides: Any) -> Scenario:
    slug = unique("scenario")
    values: dict[str, Any] = {
        "name": f"Scenario {slug}",
        "slug": slug,
        "description": "A hard conversation.",
        "partner_persona": "A difficult person.",
        "partner_system_prompt": "Stay in role.",
        "coach_system_prompt": "Give feedback.",
        "partner_model": "claude-sonnet-4-5",
        "coach_model": "claude-haiku-4-5",
    }
    return await Scenario.create(**(values | overrides))


async def make_session(**overrides: Any) -> ConversationSession:
    if "user" not in overrides:
        overrides["user"] = await make_user()
    if "scenario" not in overrides:
        overrides["scenario"] = await make_scenario()
    if overrides.get("status", SessionStatus.ACTIVE) != SessionStatus.ACTIVE:
        # An ended session must say when it ended (conversation_session_ended_at_matches_status).
        now = datetime.now(UTC)
        overrides.setdefault("started_at", now - timedelta(minutes=5))
        overrides.setdefault("ended_at", now)
    return await ConversationSession.create(**overrides)


async def make_message(**overrides: Any) -> Message:
    if "session" not in overrides:
        overrides["session"] = await make_session()
    values: dict[str, Any] = {"role": MessageRole.USER, "content": unique("Hello")}
    return await Message.create(**(values | overrides))


@asynccontextmanager
async def backfill() -> AsyncIterator[None]:
    """A transaction that may add past messages to ended sessions, as an import declares it."""
    async with in_transaction() as conn:
        await conn.execute_query("SET LOCAL coach_db.backfill = 'on'")
        yield
