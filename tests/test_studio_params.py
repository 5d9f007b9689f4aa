"""Properties (hypothesis) of studio/params.py: for any text, each parser returns a value the
database takes or raises BadValue, never another exception (which would be a 500)."""

from __future__ import annotations

import json
from datetime import UTC

import asyncpg
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from coach_db import ConversationSession, Message
from coach_db.apps.studio import params
from coach_db.limits import MAX_METADATA_DEPTH

PROPERTIES = settings(
    max_examples=200,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
# JSON-looking text: brackets, quotes, escapes, numbers and constants in any order, so that
# the examples reach the parser's corners (nesting, \u escapes, NaN) rather than stopping at
# the first character.
json_ish = st.lists(
    st.sampled_from(
        [
            '{"a":',
            "[",
            "]",
            "}",
            ",",
            '"',
            "\\u0000",
            "\\ud800",
            "\\",
            "1e999",
            "NaN",
            "-",
            "Infinity",
            "1",
            "0.5",
            "true",
            "null",
            '"k"',
            ":",
            " ",
            "\x00",
            "\U0001f600",
        ]
    ),
    max_size=200,
).map("".join)


@PROPERTIES
@given(st.one_of(st.text(), st.integers().map(str)))
@example("\uff11")
@example("9223372036854775808")
@example("2147483648")
def test_parse_id_accepts_exactly_ascii_digits_in_range(text: str) -> None:
    for model, upper in ((ConversationSession, params.INT4_MAX), (Message, params.INT8_MAX)):
        try:
            number = params.parse_id(text, model)
        except params.BadValue:
            assert not (text.isascii() and text.isdigit() and 1 <= int(text) <= upper)
        else:
            assert text.isascii() and text.isdigit() and number == int(text) <= upper


@PROPERTIES
@given(st.one_of(st.none(), st.text(), st.integers().map(str)))
def test_parse_page_is_always_within_bounds(text: str | None) -> None:
    assert 1 <= params.parse_page(text, 20, 200) <= 200


@PROPERTIES
@given(st.one_of(st.text(), json_ish))
@example('{"a":' * 10_000)
@example("[" * 100_000)
@example('{"a": ' + "9" * 5000 + "}")
def test_parse_metadata_returns_a_bounded_object_or_bad_value(text: str) -> None:
    try:
        parsed = params.parse_metadata(text)
    except params.BadValue:
        return
    assert isinstance(parsed, dict)
    compact = json.dumps(parsed, separators=(",", ":"), ensure_ascii=False)
    assert params._depth(compact) <= MAX_METADATA_DEPTH
    compact.encode("utf-8")  # no lone surrogate


@PROPERTIES
@given(st.text())
@example("9999-12-31T23:59:59-14:00")
@example("0001-01-01T00:00:00+14:00")
def test_parse_datetime_is_utc_or_bad_value(text: str) -> None:
    try:
        parsed = params.parse_datetime(text)
    except params.BadValue:
        return
    assert parsed.tzinfo is not None and parsed.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    assert parsed.astimezone(UTC) == parsed


@PROPERTIES
@given(st.one_of(st.text(), json_ish))
@example('{"a": "\\u0000"}')
@example('{"\\ud83d\\ude00": [1.5, -0.0, 1e308]}')
async def test_what_parse_metadata_accepts_postgresql_stores(
    raw: asyncpg.Connection, text: str
) -> None:
    try:
        parsed = params.parse_metadata(text)
    except params.BadValue:
        return
    stored = await raw.fetchval("SELECT $1::jsonb::text", json.dumps(parsed))
    assert isinstance(stored, str)


@pytest.mark.parametrize("text", ['{"a": "\\"[[[[[[[[[[[[[[[[[[[[[[["}', '{"[{": "]}"}'])
def test_brackets_inside_strings_do_not_count_as_depth(text: str) -> None:
    assert params.parse_metadata(text) == json.loads(text)
