"""Hostile input to the signed-in studio (issue 9): every value that was a 500 is now a 4xx or
a form error, and nothing in the database changed."""

from __future__ import annotations

import json
from typing import Any

import asyncpg
import pytest

from coach_db import Message
from coach_db.db import TABLES
from coach_db.limits import MAX_CONTENT_CHARS, MAX_METADATA_BYTES, MAX_METADATA_DEPTH
from tests.factories import make_message
from tests.studio import delete, post


async def snapshot(raw: asyncpg.Connection) -> dict[str, list[str]]:
    """Every row of every table, as text: equal snapshots mean nothing changed."""
    return {
        table: [r[0] for r in await raw.fetch(f'SELECT t::text FROM "{table}" t ORDER BY t::text')]
        for table in TABLES
    }


@pytest.fixture
async def message(staff: Any) -> Message:
    return await make_message(metadata={"model": "m"})


@pytest.mark.parametrize(
    "path",
    [
        "/admin/user/update/99999999999",
        "/admin/user/update/2147483648",
        "/admin/message/update/9223372036854775808",
        "/admin/message/update/%EF%BC%91",  # a full-width 1
        "/admin/message/update/1e3",
        "/admin/message/update/%201",
        "/admin/conversationsession/transcript/99999999999",
        "/admin/scenario/update/-1",
    ],
)
async def test_an_id_that_is_not_ascii_digits_in_range_is_404(
    staff: Any, message: Message, path: str
) -> None:
    response = await staff.get(path)
    assert response.status_code == 404 and "Not found" in response.text


async def test_a_message_id_beyond_int4_is_in_range_for_its_int8_column(
    staff: Any, message: Message, raw: asyncpg.Connection
) -> None:
    await raw.execute("UPDATE message SET id = 3000000000 WHERE id = $1", message.pk)
    assert (await staff.get("/admin/message/update/3000000000")).status_code == 200


@pytest.mark.parametrize("pk", ["%EF%BC%91", "1e30", "99999999999", "%00", "1.0"])
async def test_delete_with_a_bad_id_is_404_and_deletes_nothing(
    staff: Any, message: Message, raw: asyncpg.Connection, pk: str
) -> None:
    """`DELETE /admin/message/delete/` + a full-width 1 used to delete message 1."""
    assert message.pk == 1
    before = await snapshot(raw)
    response = await delete(staff, f"/admin/message/delete/{pk}")
    assert response.status_code == 404
    assert await snapshot(raw) == before


@pytest.mark.parametrize("ids", ["1e30", "%EF%BC%91", "1,9223372036854775808", "1,-1", "%00"])
async def test_bulk_delete_with_a_bad_id_is_400_and_deletes_nothing(
    staff: Any, message: Message, raw: asyncpg.Connection, ids: str
) -> None:
    before = await snapshot(raw)
    response = await delete(staff, f"/admin/message/delete?ids={ids}")
    assert response.status_code == 400 and "row numbers" in response.json()["error"]
    assert await snapshot(raw) == before


async def test_only_studio_resources_can_be_deleted(staff: Any, raw: asyncpg.Connection) -> None:
    """fastapi-admin resolves any Tortoise model by name, Aerich's migration history too."""
    history = await raw.fetchval("SELECT count(*) FROM aerich")
    assert history > 0
    assert (await delete(staff, "/admin/aerich/delete/1")).status_code == 404
    assert (await delete(staff, "/admin/aerich/delete?ids=1,2,3")).status_code == 404
    assert await raw.fetchval("SELECT count(*) FROM aerich") == history


@pytest.mark.parametrize(
    "query",
    [
        f"page_num={10**30}",
        "page_num=9223372036854775808&page_size=200",
        "created_at__lt=9999-12-31",
        "created_at__gte=0001-01-01",
    ],
)
async def test_extreme_pages_and_dates_are_a_normal_list(
    staff: Any, message: Message, query: str
) -> None:
    response = await staff.get(f"/admin/user/list?{query}")
    assert response.status_code == 200


async def test_the_last_possible_day_includes_every_row(staff: Any, message: Message) -> None:
    response = await staff.get("/admin/message/list?timestamp__lt=9999-12-31")
    assert response.status_code == 200 and f'data-id="{message.pk}"' in response.text


@pytest.mark.parametrize(
    "query",
    [
        "after=x",
        "after=1e3",
        "before=-1",
        "after=%EF%BC%91",  # a full-width 1
        "after=9223372036854775808",  # beyond int8
        "sort=timestamp&after=2026-01-01T00:00:00%2B00:00",  # no row number
        "sort=timestamp&after=2026-01-01T00:00:00,5",  # no UTC offset
        "sort=timestamp&after=2026-13-45T00:00:00%2B00:00,5",
        "sort=timestamp&after=9999-12-31T23:59:59-23:59,5",  # beyond year 9999 in UTC
        "sort=timestamp&before=%00,5",
        "sort=-timestamp&after=" + "9" * 2000 + ",5",
        "sort=timestamp&after=2026-01-01T00:00:00%2B00:00,%00",
    ],
)
async def test_a_page_cursor_that_cannot_be_read_is_a_400_page(
    staff: Any, message: Message, query: str
) -> None:
    response = await staff.get(f"/admin/message/list?{query}")
    assert response.status_code == 400, response.text[:2000]
    assert "This page link is not valid" in response.text
    assert "<html" in response.text


async def test_a_text_cursor_beyond_the_column_is_a_400_page(staff: Any) -> None:
    response = await staff.get(
        "/admin/user/list", params={"sort": "email", "after": "a" * 300 + ",1"}
    )
    assert response.status_code == 400 and "This page link is not valid" in response.text
    also = await staff.get("/admin/user/list", params={"sort": "email", "before": "a\x00b,1"})
    assert also.status_code == 400


@pytest.mark.parametrize(
    "query", ["q=%00", "q=a%00b", "session_id=99999999999", "session_id=%EF%BC%91"]
)
async def test_a_search_or_filter_value_the_database_cannot_take_is_400(
    staff: Any, message: Message, query: str
) -> None:
    response = await staff.get(f"/admin/message/list?{query}")
    assert response.status_code == 400 and "The filter" in response.text


def scenario_form(**overrides: str) -> dict[str, str]:
    return {
        "name": "Saying no",
        "slug": "saying-no",
        "description": "d",
        "partner_persona": "p",
        "partner_system_prompt": "p",
        "coach_system_prompt": "c",
        "partner_model": "m",
        "coach_model": "m",
        "is_active": "on",
        **overrides,
    }


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("name", "a\x00b", "Name: may not contain a NUL character"),
        ("description", "\x00", "Description: may not contain a NUL character"),
        ("coach_model", "m\x00", "Coach model: may not contain a NUL character"),
        ("name", "x" * 201, "Name: at most 200 characters (this has 201)"),
        ("slug", "x" * 101, "Slug: at most 100 characters (this has 101)"),
    ],
)
async def test_bad_text_in_a_scenario_is_a_form_error_that_changes_nothing(
    staff: Any, message: Message, raw: asyncpg.Connection, field: str, value: str, error: str
) -> None:
    before = await snapshot(raw)
    created = await post(staff, "/admin/scenario/create", scenario_form(**{field: value}))
    assert created.status_code == 422 and error in created.text
    scenario_id = (await message.session).scenario_id
    url = f"/admin/scenario/update/{scenario_id}"
    updated = await post(staff, url, scenario_form(**{field: value}))
    assert updated.status_code == 422 and error in updated.text
    assert await snapshot(raw) == before


async def test_bad_user_fields_are_form_errors(staff: Any, raw: asyncpg.Connection) -> None:
    before = await snapshot(raw)
    for form, error in [
        ({"email": "a\x00@example.com", "username": "A"}, "Email: may not contain a NUL"),
        ({"email": "a@example.com", "username": "x" * 101}, "Username: at most 100 characters"),
        ({"email": "a@example.com", "username": "A", "password": "p" * 1025}, "at most 1024"),
    ]:
        response = await post(staff, "/admin/user/create", form)
        assert response.status_code == 422 and error in response.text, error
    assert await snapshot(raw) == before


def _message_form(message: Message, **overrides: Any) -> dict[str, Any]:
    return {
        "session_id": message.session_id,
        "role": "user",
        "content": "hello",
        "audio_url": "",
        "metadata": "{}",
        **overrides,
    }


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("content", "x" * (MAX_CONTENT_CHARS + 1), f"at most {MAX_CONTENT_CHARS} characters"),
        ("content", "a\x00b", "Content: may not contain a NUL character"),
        ("audio_url", "\x00", "Audio URL: may not contain a NUL character"),
        ("audio_url", "x" * 2049, "Audio URL: at most 2048 characters"),
        ("session_id", "99999999999", "Session: type a row number (#, digits 0-9)"),
        ("session_id", "\uff11", "Session: type a row number (#, digits 0-9)"),
        ("metadata", "NaN", "Metadata: invalid JSON (NaN is not a JSON number)"),
        ("metadata", '{"a": NaN}', "Metadata: invalid JSON (NaN is not a JSON number)"),
        ("metadata", '{"a": Infinity}', "Metadata: invalid JSON (Infinity is not"),
        ("metadata", '{"a": -Infinity}', "Metadata: invalid JSON (-Infinity is not"),
        ("metadata", '{"a": 1e999}', "Metadata: invalid JSON (1e999 is out of range)"),
        ("metadata", '{"a": "\\u0000"}', "Metadata: may not contain a NUL character"),
        ("metadata", '{"\\u0000": 1}', "Metadata: may not contain a NUL character"),
        ("metadata", '{"a": "\\ud800"}', "Metadata: contains an invalid character"),
        ("metadata", '{"\\udfff": 1}', "Metadata: contains an invalid character"),
        ("metadata", '{"a": ' + "1" * 5000 + "}", "Metadata: invalid JSON (Exceeds the limit"),
        ("metadata", "[" * 10_000 + "]" * 10_000, "Metadata: nested too deeply"),
        (
            "metadata",
            '{"a":' * (MAX_METADATA_DEPTH + 1) + "1" + "}" * (MAX_METADATA_DEPTH + 1),
            f"Metadata: nested too deeply (at most {MAX_METADATA_DEPTH} levels)",
        ),
        (
            "metadata",
            json.dumps({"a": "x" * MAX_METADATA_BYTES}),
            f"Metadata: too large (at most {MAX_METADATA_BYTES} bytes",
        ),
        ("metadata", "[]", "Metadata: must be a JSON object"),
    ],
)
async def test_bad_message_values_are_form_errors_that_change_nothing(
    staff: Any, message: Message, raw: asyncpg.Connection, field: str, value: str, error: str
) -> None:
    before = await snapshot(raw)
    form = _message_form(message, **{field: value})
    created = await post(staff, "/admin/message/create", form)
    assert created.status_code == 422, created.text[:300]
    assert error in created.text.replace("&#39;", "'")
    updated = await post(staff, f"/admin/message/update/{message.pk}", form)
    assert updated.status_code == 422 and error in updated.text.replace("&#39;", "'")
    assert await snapshot(raw) == before


async def test_metadata_at_the_limits_is_saved(staff: Any, message: Message) -> None:
    depth = MAX_METADATA_DEPTH
    deep = '{"a":' * depth + "1" + "}" * depth
    big = json.dumps({"a": "x" * (MAX_METADATA_BYTES - 10)}, separators=(",", ":"))
    for metadata in (deep, big):
        form = _message_form(message, metadata=metadata)
        response = await post(staff, f"/admin/message/update/{message.pk}", form)
        assert response.status_code == 303, response.text[:300]
        await message.refresh_from_db()
        assert message.metadata == json.loads(metadata)


async def test_content_at_the_limit_is_saved(staff: Any, message: Message) -> None:
    form = _message_form(message, content="x" * MAX_CONTENT_CHARS)
    response = await post(staff, f"/admin/message/update/{message.pk}", form)
    assert response.status_code == 303
    await message.refresh_from_db()
    assert len(message.content) == MAX_CONTENT_CHARS


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("ended_at", "9999-12-31T23:59:59-14:00", "Ended at: out of range"),
        ("ended_at", "0001-01-01T00:00:00+14:00", "Ended at: out of range"),
        ("ended_at", "2026-01-01T00:00\x00", "Ended at: may not contain a NUL character"),
        ("ended_at", "\uff12\uff10\uff12\uff16-01-01", "Ended at: not a date and time"),
        ("user_id", "2147483648", "User: type a row number (#, digits 0-9)"),
        ("scenario_id", "1e3", "Scenario: type a row number (#, digits 0-9)"),
        ("status", "active\x00", "Status: may not contain a NUL character"),
    ],
)
async def test_bad_session_values_are_form_errors_that_change_nothing(
    staff: Any, message: Message, raw: asyncpg.Connection, field: str, value: str, error: str
) -> None:
    session = await message.session
    form = {
        "user_id": session.user_id,
        "scenario_id": session.scenario_id,
        "status": "completed",
        "ended_at": "",
        field: value,
    }
    before = await snapshot(raw)
    response = await post(staff, f"/admin/conversationsession/update/{session.pk}", form)
    assert response.status_code == 422 and error in response.text
    assert await snapshot(raw) == before
