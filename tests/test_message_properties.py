"""Property-based tests (hypothesis) of add_message on content and metadata, NUL bytes included."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from coach_db import ConversationSession, InvalidMessage, Message, add_message, transcript
from coach_db.limits import MAX_CONTENT_CHARS, MAX_METADATA_BYTES, MAX_METADATA_DEPTH
from coach_db.validation import metadata_json
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
any_content = st.one_of(
    text_without_nul.filter(bool),
    # Very long text: a short unit repeated up to 200,000 times (up to a few MB as UTF-8).
    st.builds(lambda unit, n: unit * n, text_without_nul.filter(bool), st.integers(1, 200_000)),
)
# One character short of the limit, so that with_nul(content) stays within it too.
content = any_content.map(lambda text: text[: MAX_CONTENT_CHARS - 1])
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


# --- limits: content length, metadata size and depth, cycles ----------------------------------

PURE = settings(max_examples=300, deadline=None)


def compact_size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())


def depth(value: Any) -> int:
    """Nesting depth as limits.py counts it (an object holding an object is 2)."""
    if isinstance(value, dict):
        return 1 + max(map(depth, value.values()), default=0)
    if isinstance(value, list):
        return 1 + max(map(depth, value), default=0)
    return 0


# Deep and wide trees, around both limits: nesting up to 25 levels, strings up to ~40 kB.
deep_values = st.recursive(
    st.one_of(json_scalars, st.builds(lambda c, n: c * n, text_without_nul, st.integers(0, 8_000))),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(text_without_nul, children, max_size=4)
    ),
    max_leaves=40,
)
deep_metadata = st.builds(
    lambda value, levels: _wrap(value, levels), deep_values, st.integers(0, 20)
)


def _wrap(value: Any, levels: int) -> dict[str, Any]:
    for _ in range(levels):
        value = [value]
    return {"v": value}


@PURE
@given(data=deep_metadata)
def test_metadata_is_refused_exactly_when_it_breaks_a_limit(data: dict[str, Any]) -> None:
    """Accepted iff compact JSON <= MAX_METADATA_BYTES and depth <= MAX_METADATA_DEPTH; the text
    accepted is exactly json.dumps's compact form."""
    within = compact_size(data) <= MAX_METADATA_BYTES and depth(data) <= MAX_METADATA_DEPTH
    try:
        text = metadata_json(data)
    except InvalidMessage as exc:
        assert not within, str(exc)
        assert "larger than" in str(exc) or "nested more than" in str(exc)
    else:
        assert within
        assert text == json.dumps(data, ensure_ascii=False, separators=(",", ":"))


@PURE
@given(data=deep_values, levels=st.integers(0, 30), at=st.integers(0, 30), key=st.booleans())
def test_a_cycle_at_any_depth_is_refused_without_hanging(
    data: Any, levels: int, at: int, key: bool
) -> None:
    """A container that holds one of its ancestors (directly or deeper) is a clear error, or
    the depth limit when the cycle lies below it; never a hang or RecursionError."""
    root: dict[str, Any] = {"data": data}
    chain: list[Any] = [root]
    for _ in range(levels):
        inner: Any = {"x": data} if key else [data]
        container = chain[-1]
        if isinstance(container, dict):
            container["next"] = inner
        else:
            container.append(inner)
        chain.append(inner)
    last = chain[-1]
    target = chain[min(at, len(chain) - 1)]
    if isinstance(last, dict):
        last["back"] = target
    else:
        last.append(target)
    try:
        metadata_json(root)
    except InvalidMessage as exc:
        assert "cycle" in str(exc) or "nested more than" in str(exc) or "larger than" in str(exc)
    else:
        raise AssertionError("a cycle was accepted")


@PROPERTIES
@given(text=any_content)
async def test_content_over_the_limit_is_refused_and_within_it_stored(text: str) -> None:
    session = await make_session()
    if len(text) > MAX_CONTENT_CHARS:
        try:
            await add_message(session, "user", text)
        except InvalidMessage as exc:
            assert f"content is {len(text):,} characters long" in str(exc)
        else:
            raise AssertionError("content over the limit was accepted")
        assert await count_messages(session) == (0, 0)
    else:
        await add_message(session, "user", text)
        assert await count_messages(session) == (1, 1)
