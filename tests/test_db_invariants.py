"""Invariants the database keeps against any writer (migration 3_…_invariants): no message into
an ended session unless backfilled, versioned session writes, lower-case e-mails, size limits."""

from __future__ import annotations

import asyncio
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from tortoise.transactions import in_transaction

from coach_db import (
    ConversationSession,
    Message,
    SessionChanged,
    SessionNotActive,
    SessionStatus,
    User,
    add_message,
    end_session,
    limits,
)
from tests.factories import make_scenario, make_session, make_user
from tests.studio import post, row_version

ROOT = Path(__file__).resolve().parent.parent
AFTER_END = "message_not_after_session_end"
INSERT_MESSAGE = "INSERT INTO message (session_id, role, content) VALUES ($1, 'user', 'late')"


# --- 1. no message into a session that is not active, unless an explicit backfill -----------


async def test_a_transaction_begun_before_the_end_cannot_add_a_message_after_it(
    raw_pool: asyncpg.Pool,
) -> None:
    """Two connections, step by step: A begins; B ends the session and commits; A inserts with
    the default timestamp (A's transaction start, before the end). The message is refused."""
    session = await make_session()
    async with raw_pool.acquire() as a, raw_pool.acquire() as b:
        transaction = a.transaction()
        await transaction.start()
        began = await a.fetchval("SELECT now()")
        await b.execute(
            "UPDATE conversation_session SET status = 'completed' WHERE id = $1", session.pk
        )
        ended_at = await b.fetchval(
            "SELECT ended_at FROM conversation_session WHERE id = $1", session.pk
        )
        assert began < ended_at  # the default timestamp alone would not show the message late
        with pytest.raises(asyncpg.CheckViolationError) as refused:
            await a.execute(INSERT_MESSAGE, session.pk)
        assert refused.value.constraint_name == AFTER_END
        await transaction.rollback()
    assert await Message.filter(session_id=session.pk).count() == 0


async def test_add_message_racing_an_end_in_an_older_transaction_is_refused(
    raw_pool: asyncpg.Pool,
) -> None:
    """add_message in a caller's transaction begun before the end: its statement still sees the
    session active, waits for the ending writer's row lock, and must then be refused."""
    session = await make_session()
    began, ending = asyncio.Event(), asyncio.Event()
    pid: list[int] = []

    async def caller() -> Message:
        async with in_transaction() as conn:
            pid.append((await conn.execute_query_dict("SELECT pg_backend_pid() AS p"))[0]["p"])
            began.set()
            await ending.wait()
            return await add_message(session.pk, "user", "late")

    async with raw_pool.acquire() as b:
        task = asyncio.create_task(caller())
        await began.wait()
        async with b.transaction():
            await b.execute(
                "UPDATE conversation_session SET status = 'completed' WHERE id = $1", session.pk
            )
            ending.set()
            for _ in range(2000):  # until A's INSERT waits for B's row lock (not a timing check)
                if await b.fetchval(
                    "SELECT wait_event_type = 'Lock' FROM pg_stat_activity WHERE pid = $1", pid[0]
                ):
                    break
                await asyncio.sleep(0.005)
            else:
                pytest.fail("add_message never waited for the session's row lock")
        with pytest.raises(SessionNotActive):
            await task
    stored = await ConversationSession.get(pk=session.pk)
    assert stored.total_messages == 0 and await Message.filter(session_id=session.pk).count() == 0


async def test_an_old_timestamp_does_not_let_a_message_into_an_ended_session(
    raw: asyncpg.Connection,
) -> None:
    session = await make_session(status=SessionStatus.COMPLETED)
    assert session.ended_at is not None
    with pytest.raises(asyncpg.CheckViolationError) as refused:
        await raw.execute(
            "INSERT INTO message (session_id, role, content, timestamp)"
            " VALUES ($1, 'user', 'x', $2)",
            session.pk,
            session.ended_at - timedelta(minutes=1),
        )
    assert refused.value.constraint_name == AFTER_END
    assert "coach_db.backfill" in str(refused.value)


async def test_an_explicit_backfill_adds_history_up_to_the_end_and_not_after(
    raw: asyncpg.Connection,
) -> None:
    session = await make_session(status=SessionStatus.COMPLETED)
    assert session.ended_at is not None
    insert = (
        "INSERT INTO message (session_id, role, content, timestamp) VALUES ($1, 'user', 'x', $2)"
    )
    async with raw.transaction():
        await raw.execute("SET LOCAL coach_db.backfill = 'on'")
        await raw.execute(insert, session.pk, session.ended_at)
        await raw.execute(insert, session.pk, session.ended_at - timedelta(minutes=1))
    with pytest.raises(asyncpg.CheckViolationError) as refused:
        async with raw.transaction():
            await raw.execute("SET LOCAL coach_db.backfill = 'on'")
            await raw.execute(insert, session.pk, session.ended_at + timedelta(seconds=1))
    assert refused.value.constraint_name == AFTER_END
    # SET LOCAL ends with its transaction: the next one is not a backfill.
    with pytest.raises(asyncpg.CheckViolationError):
        await raw.execute(insert, session.pk, session.ended_at)
    await session.refresh_from_db()
    assert session.total_messages == 2


# --- 2. optimistic concurrency --------------------------------------------------------------


async def test_a_stale_session_object_cannot_reopen_a_session_ended_since() -> None:
    session = await make_session()
    stale = await ConversationSession.get(pk=session.pk)
    await end_session(session)
    stale.duration_seconds = None  # any field: save() writes the whole stale row
    with pytest.raises(SessionChanged, match="changed by someone else"):
        await stale.save()
    stored = await ConversationSession.get(pk=session.pk)
    assert stored.status is SessionStatus.COMPLETED and stored.ended_at is not None


async def test_of_two_objects_read_together_only_the_first_save_wins() -> None:
    session = await make_session()
    first = await ConversationSession.get(pk=session.pk)
    second = await ConversationSession.get(pk=session.pk)
    first.status = SessionStatus.ABANDONED
    await first.save()
    second.status = SessionStatus.COMPLETED
    with pytest.raises(SessionChanged):
        await second.save(update_fields=["status"])  # listing fields does not skip the check
    stored = await ConversationSession.get(pk=session.pk)
    assert stored.status is SessionStatus.ABANDONED
    assert first.version == stored.version == session.version + 1
    first.status = SessionStatus.ACTIVE  # the winner's object is current: it may save again
    await first.save()
    await second.refresh_from_db()
    assert second.status is SessionStatus.ACTIVE and second.version == first.version


async def test_raw_sql_naming_an_old_version_is_refused_and_every_write_bumps_it(
    raw: asyncpg.Connection,
) -> None:
    session = await make_session()
    await add_message(session, "user", "hello")  # the counter's update is not a write of ours
    assert (
        await raw.fetchval(
            "UPDATE conversation_session SET status = 'completed' WHERE id = $1 RETURNING version",
            session.pk,
        )
        == session.version + 1
    )
    with pytest.raises(asyncpg.CheckViolationError) as refused:
        await raw.execute(
            "UPDATE conversation_session SET status = 'active', version = $2 WHERE id = $1",
            session.pk,
            session.version,
        )
    assert refused.value.constraint_name == "conversation_session_version_current"


async def test_a_stale_studio_form_changes_nothing(staff: Any) -> None:
    """Two staff members open the same session form; the second save comes too late."""
    session = await make_session()
    url = f"/admin/conversationsession/update/{session.pk}"
    form = {"user_id": session.user_id, "scenario_id": session.scenario_id, "ended_at": ""}  # type: ignore[attr-defined]
    opened_first = await row_version(staff, url)
    opened_second = await row_version(staff, url)
    assert opened_first is not None and opened_first == opened_second
    saved = await post(staff, url, {**form, "status": "completed", "row_version": opened_first})
    assert saved.status_code == 303
    late = await post(staff, url, {**form, "status": "active", "row_version": opened_second})
    assert late.status_code == 409
    assert "changed by someone else since you opened it" in late.text
    assert f'name="row_version" value="{opened_second}"' not in late.text  # the current one
    stored = await ConversationSession.get(pk=session.pk)
    assert stored.status is SessionStatus.COMPLETED and stored.ended_at is not None


async def test_a_stale_studio_form_of_a_scenario_changes_nothing(staff: Any) -> None:
    """Models without a version column use PostgreSQL's xmin as the form's token."""
    scenario = await make_scenario(name="Before")
    url = f"/admin/scenario/update/{scenario.pk}"
    opened = await row_version(staff, url)
    await ConversationSession.filter(pk=-1).update(status="active")  # unrelated write
    await type(scenario).filter(pk=scenario.pk).update(name="Changed meanwhile")
    form = {
        "name": "Stale edit",
        "slug": scenario.slug,
        "description": "d",
        "partner_persona": "p",
        "partner_system_prompt": "p",
        "coach_system_prompt": "c",
        "partner_model": "m",
        "coach_model": "m",
        "row_version": opened,
    }
    late = await post(staff, url, form)
    assert late.status_code == 409 and "changed by someone else" in late.text
    await scenario.refresh_from_db()
    assert scenario.name == "Changed meanwhile"
    fresh = await post(staff, url, {**form, "row_version": await row_version(staff, url)})
    assert fresh.status_code == 303
    await scenario.refresh_from_db()
    assert scenario.name == "Stale edit"


# --- 3. e-mails -----------------------------------------------------------------------------


@pytest.mark.parametrize("email", ["Boss@Example.com", " boss@example.com", "boss@example.com "])
async def test_raw_sql_e_mail_not_lower_case_and_trimmed_is_refused(
    raw: asyncpg.Connection, email: str
) -> None:
    with pytest.raises(asyncpg.CheckViolationError) as refused:
        await raw.execute("INSERT INTO \"user\" (email, username) VALUES ($1, 'Boss')", email)
    # A space also fails user_email_format, which reports first (names sort alphabetically).
    assert refused.value.constraint_name in (
        ("user_email_lower_trimmed",) if email.strip() == email else ("user_email_format",)
    )
    with pytest.raises(asyncpg.CheckViolationError) as refused:
        user = await make_user()
        await raw.execute('UPDATE "user" SET email = $2 WHERE id = $1', user.pk, "Boss@Example.com")
    assert refused.value.constraint_name == "user_email_lower_trimmed"


async def migrate_to_2_then(create_migrated_database: Any, before_3: str) -> tuple[str, Any]:
    """A database at migration 2 with `before_3` run on it, then `aerich upgrade` to 3."""
    from tests.conftest import run_aerich

    url = await create_migrated_database()  # a copy of the run's `aerich upgrade`
    migrations = ROOT / "migrations" / "models"
    third = next(migrations.glob("3_*.py"))
    # back to 2 (-v 3 reverts 3 itself, and whatever came after it)
    assert run_aerich("downgrade", "-v", "3", "--yes", url=url).returncode == 0
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(before_3)
    finally:
        await conn.close()
    return url, run_aerich("upgrade", url=url), third


async def test_the_migration_lower_cases_e_mails_and_stops_on_a_clash(
    create_migrated_database: Any,
) -> None:
    url, upgraded, _ = await migrate_to_2_then(
        create_migrated_database,
        "INSERT INTO \"user\" (email, username) VALUES ('Boss@Example.COM', 'Boss');",
    )
    assert upgraded.returncode == 0, upgraded.stderr
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval('SELECT email FROM "user"') == "boss@example.com"
    finally:
        await conn.close()

    url, upgraded, _ = await migrate_to_2_then(
        create_migrated_database,
        "INSERT INTO \"user\" (email, username) VALUES ('Boss@Example.com', 'A'),"
        " ('ann@example.com', 'Ann');"
        # A clash the lower(email) unique index of migration 1 cannot see: trailing space,
        # which user_email_format refuses now, so the constraint is dropped for this row.
        ' ALTER TABLE "user" DROP CONSTRAINT user_email_format;'
        " INSERT INTO \"user\" (email, username) VALUES ('ANN@example.com ', 'Ann again');",
    )
    assert upgraded.returncode != 0
    output = upgraded.stdout + upgraded.stderr
    assert "would share an e-mail address" in output and "ids 2, 3" in output
    conn = await asyncpg.connect(url)
    try:  # nothing changed, the migration is still pending
        emails = await conn.fetch('SELECT email FROM "user" ORDER BY id')
        assert [r["email"] for r in emails] == [
            "Boss@Example.com",
            "ann@example.com",
            "ANN@example.com ",
        ]
    finally:
        await conn.close()


async def test_orm_still_stores_e_mails_in_lower_case() -> None:
    user = await make_user(email="  Mixed.Case@Example.com ")
    assert await User.filter(pk=user.pk).values_list("email", flat=True) == [
        "mixed.case@example.com"
    ]


async def test_every_e_mail_the_orm_lower_cases_passes_the_check(raw: asyncpg.Connection) -> None:
    """Python's lower() and PostgreSQL's agree: no character the ORM stores breaks the CHECK."""
    lowered = [chr(i).strip().lower() for i in range(1, 0x110000) if not 0xD800 <= i <= 0xDFFF]
    assert (
        await raw.fetchval(
            "SELECT count(*) FROM unnest($1::text[]) s WHERE s <> lower(btrim(s))", lowered
        )
        == 0
    )


# --- 4. size limits -------------------------------------------------------------------------


def compact(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


def nested(depth: int) -> dict[str, Any]:
    value: dict[str, Any] = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("column", "value", "constraint"),
    [
        ("content", "x" * (limits.MAX_CONTENT_CHARS + 1), "message_content_max_chars"),
        ("content", "é" * (limits.MAX_CONTENT_CHARS + 1), "message_content_max_chars"),
        ("metadata", {"k": "x" * limits.MAX_METADATA_BYTES}, "message_metadata_max_bytes"),
        ("metadata", nested(limits.MAX_METADATA_DEPTH + 1), "message_metadata_max_depth"),
        ("metadata", {"a": [[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]}, "message_metadata_max_depth"),
    ],
)
async def test_raw_sql_over_a_limit_is_refused_by_name(
    raw: asyncpg.Connection, column: str, value: Any, constraint: str
) -> None:
    session = await make_session()
    content, metadata = ("ok", value) if column == "metadata" else (value, {})
    with pytest.raises(asyncpg.CheckViolationError) as refused:
        await raw.execute(
            "INSERT INTO message (session_id, role, content, metadata)"
            " VALUES ($1, 'user', $2, $3::jsonb)",
            session.pk,
            content,
            json.dumps(metadata),
        )
    assert refused.value.constraint_name == constraint


async def test_raw_sql_at_each_limit_is_accepted(raw: asyncpg.Connection) -> None:
    session = await make_session()
    at_size = {"k": "é" * ((limits.MAX_METADATA_BYTES - 100) // 2)}
    at_size["n"] = "x" * (limits.MAX_METADATA_BYTES - compact(at_size) - len(',"n":""'))
    assert compact(at_size) == limits.MAX_METADATA_BYTES
    for content, metadata in [
        ("€" * limits.MAX_CONTENT_CHARS, {}),
        ("ok", at_size),
        ("ok", nested(limits.MAX_METADATA_DEPTH)),
        ("ok", {"a": [[[[[[[[[[[[[[[]]]]]]]]]]]]]]]}),  # 16 levels: arrays count too
    ]:
        await raw.execute(
            "INSERT INTO message (session_id, role, content, metadata)"
            " VALUES ($1, 'user', $2, $3::jsonb)",
            session.pk,
            content,
            json.dumps(metadata),
        )


@pytest.mark.parametrize(
    "value",
    [
        {},
        {"a": 1, "b": [1, 2, 3], "c": {"d": None, "e": True, "f": False}},
        {"tricky": 'a, b: c", \\ \n\t "d": [1, 2]', "key, with: seps": "x", "q": '\\"'},
        {"unicode": "héllo 👋 \u2028", "control": "\x01\x1f", "quote": '"'},
        {"numbers": [0, -1, 1.5, 123456789012345678901234567890, 0.125]},
        {"nested": [[{"a": [{}]}], [], {}], "many": list(range(2000))},
    ],
)
async def test_database_counts_metadata_bytes_as_compact_json(
    raw: asyncpg.Connection, value: dict[str, Any]
) -> None:
    """The rule of limits.MAX_METADATA_BYTES: padded to exactly the limit in compact UTF-8 JSON
    the metadata is stored; one byte more and message_metadata_max_bytes refuses it."""
    session = await make_session()
    insert = (
        "INSERT INTO message (session_id, role, content, metadata) VALUES ($1, 'user', 'x', $2)"
    )
    padded = {**value, "pad": ""}
    padded["pad"] = "x" * (limits.MAX_METADATA_BYTES - compact(padded))
    assert compact(padded) == limits.MAX_METADATA_BYTES
    await raw.execute(insert, session.pk, json.dumps(padded))
    padded["pad"] += "x"
    with pytest.raises(asyncpg.CheckViolationError) as refused:
        await raw.execute(insert, session.pk, json.dumps(padded))
    assert refused.value.constraint_name == "message_metadata_max_bytes"


async def test_migration_limits_are_the_ones_of_coach_db_limits(raw: asyncpg.Connection) -> None:
    """The numbers in the CHECK constraints can never drift from coach_db/limits.py."""
    rows = await raw.fetch(
        "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint"
        " WHERE conrelid = 'message'::regclass AND conname = ANY($1)",
        ["message_content_max_chars", "message_metadata_max_bytes", "message_metadata_max_depth"],
    )
    numbers = {row["conname"]: {int(n) for n in re.findall(r"\b\d+\b", row["def"])} for row in rows}
    assert numbers == {
        "message_content_max_chars": {limits.MAX_CONTENT_CHARS},
        "message_metadata_max_bytes": {limits.MAX_METADATA_BYTES},
        "message_metadata_max_depth": {limits.MAX_METADATA_DEPTH},
    }


async def test_mixed_case_e_mail_and_unknown_staff_role_are_refused_with_a_hint(
    raw: asyncpg.Connection,
) -> None:
    """Migration 11: the message says what is wrong, the HINT how to fix it, and no DETAIL
    copies the row (its password hash) into the client's error."""
    secret = "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g"
    insert = 'INSERT INTO "user" (email, username, password_hash, role) VALUES ($1, $2, $3, $4)'
    with pytest.raises(asyncpg.CheckViolationError) as refused:
        await raw.execute(insert, "Boss@Example.com", "Boss", secret, "viewer")
    assert refused.value.constraint_name == "user_email_lower_trimmed"
    assert "user.email must be stored in lower case" in str(refused.value)
    assert "toLowerCase()" in refused.value.hint
    assert refused.value.detail is None and secret not in repr(refused.value.as_dict())
    with pytest.raises(asyncpg.CheckViolationError) as refused:
        await raw.execute(insert, "boss@example.com", "Boss", secret, "owner")
    assert refused.value.constraint_name == "user_role_valid"
    assert "viewer, editor or admin" in str(refused.value) and refused.value.hint
    assert refused.value.detail is None
