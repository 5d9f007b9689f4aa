"""The fast read paths return exactly what the idiomatic Tortoise queries and json.loads give."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from coach_db import (
    ConversationSession,
    InvalidMessage,
    Message,
    Scenario,
    User,
    add_message,
    transcript,
    user_history,
)
from coach_db.limits import MAX_METADATA_BYTES, MAX_METADATA_DEPTH
from coach_db.models import _json_loads
from coach_db.types import MessageRead, UserWithSessions
from tests.factories import make_session, make_user

# jsonb texts as PostgreSQL prints them, with the values json.loads gives back.
TRICKY_METADATA = [
    "{}",
    '{"model": "claude-sonnet-4-5", "tokens_in": 48, "latency_ms": 812.5}',
    '{"big": 123456789012345678901234567890, "neg": -170141183460469231731687303715884105728}',
    '{"floats": [0.1, 1e-7, 1.5e300, -0.0, 5e-324, 1.0000000000000002, 100.0]}',
    '{"huge": 1e400, "tiny": 1e-400}',  # jsonb keeps the numeric; Python reads inf and 0.0
    '{"unicode": "é ü 日本語 😀 \\u00e9 \\ud83d\\ude00 \\n\\t\\"\\\\"}',
    '{"nested": {"a": [1, {"b": [true, false, null, {"c": {"d": []}}]}], "e": {}}}',
    '{"ключ": "значение", "": "", "k": "\\u2028\\u2029"}',
]


def same_types(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (1 == 1.0 == True would hide a float)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same_types(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(same_types(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b or (a != a and b != b))  # NaN never comes from jsonb, but to be exact


@pytest.mark.parametrize("text", TRICKY_METADATA)
def test_the_metadata_decoder_reads_what_json_loads_reads(text: str) -> None:
    assert same_types(_json_loads(text), json.loads(text))


async def test_orm_reads_metadata_and_times_exactly_as_stored(raw: asyncpg.Connection) -> None:
    """Message.filter: every metadata value as json.loads reads PostgreSQL's text, aware UTC
    datetimes as asyncpg returns them (no conversion, so no other tzinfo)."""
    session = await make_session()
    for i, text in enumerate(TRICKY_METADATA):
        await raw.execute(
            "INSERT INTO message (session_id, role, content, metadata, timestamp)"
            " VALUES ($1, 'user', $2, $3::jsonb, $4)",
            session.id,
            f"m{i}",
            text,
            datetime(2026, 3, 29, 1, 30, tzinfo=UTC) + timedelta(microseconds=i),
        )
    stored = {
        r["content"]: (json.loads(r["metadata"]), r["timestamp"])
        for r in await raw.fetch(
            "SELECT content, metadata::text AS metadata, timestamp FROM message"
            " WHERE session_id = $1",
            session.id,
        )
    }
    read = await Message.filter(session_id=session.id).order_by("timestamp")
    assert [m.content for m in read] == [f"m{i}" for i in range(len(TRICKY_METADATA))]
    for message in read:
        metadata, timestamp = stored[message.content]
        assert same_types(message.metadata, metadata), message.content
        assert message.timestamp == timestamp
        assert message.timestamp.tzinfo is UTC and message.timestamp.utcoffset() == timedelta(0)
    [again] = await ConversationSession.filter(id=session.id)
    assert again.started_at.tzinfo is UTC and again.ended_at is None


async def test_every_datetime_the_orm_reads_is_aware_utc() -> None:
    session = await make_session()
    await session.fetch_related("user", "scenario")
    fresh = [
        await User.get(id=session.user.id),
        await Scenario.get(id=session.scenario.id),
        await ConversationSession.get(id=session.id),
    ]
    for obj in fresh:
        for name, field in obj._meta.fields_map.items():
            value = getattr(obj, name)
            if isinstance(value, datetime):
                assert value.tzinfo is UTC, (type(obj).__name__, name, field)


async def test_transcript_is_what_the_orm_query_gives(raw: asyncpg.Connection) -> None:
    """Field by field: ties in time (ordered by id), NULL and set audio_url, unicode content,
    nested metadata, metadata {} by default; every page; an empty session gives []."""
    session, empty = await make_session(), await make_session()
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    await raw.executemany(
        "INSERT INTO message (session_id, role, content, timestamp, audio_url, metadata)"
        " VALUES ($1, $2, $3, $4, $5, $6::jsonb)",
        [
            (
                session.id,
                ("user", "partner", "coach")[i % 3],
                f"Nachricht {i}: grüß dich 😀",
                t0 + timedelta(seconds=i // 3),  # three messages share each timestamp
                f"https://audio.example.com/{i}.ogg" if i % 4 == 0 else None,
                TRICKY_METADATA[i % len(TRICKY_METADATA)],
            )
            for i in range(23)
        ],
    )
    await add_message(session, "coach", "added", {"nested": {"list": [1, 2.5, "x"]}})
    query = Message.filter(session_id=session.id).order_by("timestamp", "id")
    expected = await MessageRead.from_queryset(query)
    assert len(expected) == 24
    for limit in (1, 5, 24, 50):
        pages: list[MessageRead] = []
        page = await transcript(session, limit=limit)
        while page:
            pages += page
            page = await transcript(session, after=pages[-1], limit=limit)
        assert pages == expected, limit
        for got, want in zip(pages, expected, strict=True):
            assert type(got) is MessageRead
            for name in MessageRead.model_fields:
                assert same_types(getattr(got, name), getattr(want, name)), (limit, name)
            assert got.timestamp.utcoffset() == timedelta(0)
    assert await transcript(session, before=expected[5], limit=3) == expected[2:5]
    assert await transcript(empty) == []


async def test_user_history_is_field_by_field_what_the_orm_gives(
    raw: asyncpg.Connection,
) -> None:
    """The JSON built by PostgreSQL and validated by pydantic-core against the ORM's nesting:
    metadata types, NULLs (ended_at, duration, audio_url), a session without messages."""
    user = await make_user()
    session = await make_session(user=user)
    quiet = await make_session(user=user)  # newer: first in the history
    for i, text in enumerate(TRICKY_METADATA):
        await raw.execute(
            "INSERT INTO message (session_id, role, content, metadata) VALUES ($1, 'user', $2,"
            " $3::jsonb)",
            session.id,
            f"m{i} ✓",
            text,
        )
    history = await user_history(user)
    orm = await UserWithSessions.from_tortoise_orm(await User.get(id=user.id))
    assert history == orm
    assert [s.id for s in history.sessions] == [quiet.id, session.id]
    assert history.sessions[0].messages == [] and history.sessions[0].ended_at is None
    for got, want in zip(history.sessions[1].messages, orm.sessions[1].messages, strict=True):
        for name in MessageRead.model_fields:
            assert same_types(getattr(got, name), getattr(want, name)) or (
                name == "timestamp" and got.timestamp == want.timestamp
            ), name
        assert got.timestamp.utcoffset() == timedelta(0)


async def test_metadata_limits_still_hold_and_the_largest_metadata_round_trips() -> None:
    session = await make_session()
    deep: dict[str, Any] = {}
    inner = deep
    for _ in range(MAX_METADATA_DEPTH - 1):
        inner["d"] = {}
        inner = inner["d"]
    sent = await add_message(session, "user", "deep", deep)
    filler = "x" * (MAX_METADATA_BYTES - len('{"f":""}'))
    big = await add_message(session, "user", "big", {"f": filler})
    [read_deep, read_big] = await Message.filter(session_id=session.id).order_by("id")
    assert read_deep.metadata == sent.metadata == deep
    assert read_big.metadata == big.metadata == {"f": filler}
    with pytest.raises(InvalidMessage, match="nested more than"):
        await add_message(session, "user", "deeper", {"d": deep})
    with pytest.raises(InvalidMessage, match="larger than"):
        await add_message(session, "user", "bigger", {"f": filler + "x"})
