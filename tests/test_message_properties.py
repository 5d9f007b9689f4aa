"""Property-based tests (hypothesis) of add_message on content and metadata, NUL bytes included."""

from __future__ import annotations

from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coach_db import ConversationSession, InvalidMessage, Message, add_message, transcript
from tests.factories import make_session

# Truncation runs once per test function, not per example, so every example writes to a session
# of its own and checks only that session: the function-scoped fixture is then harmless. Each
# example also makes a few round trips to PostgreSQL, slow by hypothesis's standard.
PROPERTIES = settings(
    max_examples=50,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

NUL = "\x00"
# Any character UTF-8 can encode (so no lone surrogates) but NUL.
text_without_nul = st.text(st.characters(codec="utf-8", exclude_characters=NUL))
content = st.one_of(
    text_without_nul.filter(bool),
    # Very long text: a short unit repeated up to 200,000 times (up to a few MB as UTF-8).
    st.builds(lambda unit, n: unit * n, text_without_nul.filter(bool), st.integers(1, 200_000)),
)
# JSON numbers that come back as the same Python value: PostgreSQL keeps numbers as numeric
# and prints e.g. 1e20 as 100000000000000000000, which json.loads reads as an int.
json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(min_value=-1e15, max_value=1e15, allow_nan=False),
    text_without_nul,
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(text_without_nul, children, max_size=5)
    ),
    max_leaves=30,
)
metadata = st.dictionaries(text_without_nul, json_values, max_size=6)


@st.composite
def with_nul(draw: st.DrawFn, strategy: st.SearchStrategy[str]) -> str:
    """A string from `strategy` with a NUL inserted at a drawn position."""
    text = draw(strategy)
    at = draw(st.integers(0, len(text)))
    return text[:at] + NUL + text[at:]


@st.composite
def metadata_with_nul(draw: st.DrawFn) -> dict[str, Any]:
    """Valid metadata with one NUL planted in a key or a string value, at any depth."""
    planted = draw(with_nul(text_without_nul))
    inner: Any = {planted: draw(json_values)} if draw(st.booleans()) else planted
    for _ in range(draw(st.integers(0, 4))):  # nest it in objects and arrays
        if draw(st.booleans()):
            inner = {draw(text_without_nul): inner}
        else:
            inner = [draw(json_values), inner]
    siblings = draw(metadata)
    if isinstance(inner, dict) and draw(st.booleans()):
        return siblings | inner
    return siblings | {"planted": inner}


async def count_messages(session: ConversationSession) -> tuple[int, int]:
    """(message rows, total_messages) of one session."""
    stored = await ConversationSession.get(id=session.id)
    return await Message.filter(session_id=session.id).count(), stored.total_messages


@PROPERTIES
@given(text=content, data=metadata)
async def test_any_unicode_content_and_json_metadata_round_trip(
    text: str, data: dict[str, Any], raw: asyncpg.Connection
) -> None:
    session = await make_session()
    sent = await add_message(session, "user", text, data)
    [read] = await transcript(session)
    assert (read.id, read.content, read.metadata) == (sent.id, text, data)
    assert sent.metadata == data
    # What another service reading raw SQL sees, too.
    assert await raw.fetchval("SELECT content FROM message WHERE id = $1", sent.id) == text
    assert await count_messages(session) == (1, 1)


@PROPERTIES
@given(text=with_nul(content))
async def test_nul_in_content_is_a_clear_error_and_nothing_is_written(text: str) -> None:
    session = await make_session()
    try:
        await add_message(session, "user", text)
    except InvalidMessage as exc:
        assert "NUL character" in str(exc) and str(exc).startswith("Message refused")
    else:
        raise AssertionError("a NUL in the content was accepted")
    assert await count_messages(session) == (0, 0)


@PROPERTIES
@given(data=metadata_with_nul())
async def test_nul_anywhere_in_metadata_is_a_clear_error_and_nothing_is_written(
    data: dict[str, Any],
) -> None:
    session = await make_session()
    try:
        await add_message(session, "coach", "ok", data)
    except InvalidMessage as exc:
        assert "NUL character" in str(exc) and "metadata" in str(exc)
    else:
        raise AssertionError("a NUL in the metadata was accepted")
    assert await count_messages(session) == (0, 0)
