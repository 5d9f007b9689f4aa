"""The database itself refuses bad rows and fills defaults, whoever writes: ORM or raw SQL."""

from __future__ import annotations

import json
import re
from enum import StrEnum

import asyncpg
import pytest
from tortoise.exceptions import IntegrityError

from coach_db import ConversationSession, Message, MessageRole, SessionStatus, StaffRole, User
from tests.factories import make_message, make_scenario, make_session, make_user

# The CHECK constraint that holds each column to its enum, by name.
ENUM_CHECKS: dict[str, type[StrEnum]] = {
    "message_role_valid": MessageRole,
    "conversation_session_status_valid": SessionStatus,
    "user_role_valid": StaffRole,
}
SCENARIO_COLUMNS = (
    "name, slug, description, partner_persona, partner_system_prompt, coach_system_prompt,"
    " partner_model, coach_model"
)


async def insert_scenario(raw: asyncpg.Connection, slug: str = "raw-scenario") -> int:
    return int(
        await raw.fetchval(
            f"INSERT INTO scenario ({SCENARIO_COLUMNS})"
            " VALUES ('Raw', $1, 'd', 'p', 'psp', 'csp', 'pm', 'cm') RETURNING id",
            slug,
        )
    )


async def insert_user(raw: asyncpg.Connection, email: str = "raw@example.com") -> int:
    return int(
        await raw.fetchval(
            "INSERT INTO \"user\" (email, username) VALUES ($1, 'Raw') RETURNING id", email
        )
    )


async def insert_session(raw: asyncpg.Connection) -> int:
    user_id = await insert_user(raw)
    scenario_id = await insert_scenario(raw)
    return int(
        await raw.fetchval(
            "INSERT INTO conversation_session (user_id, scenario_id) VALUES ($1, $2) RETURNING id",
            user_id,
            scenario_id,
        )
    )


# --- database-side defaults ---------------------------------------------------------------


async def test_raw_sql_user_gets_database_defaults(raw: asyncpg.Connection) -> None:
    row = await raw.fetchrow(
        'SELECT * FROM "user" WHERE id = $1', await insert_user(raw, "d@example.com")
    )
    assert row["is_staff"] is False
    assert row["password_hash"] is None
    assert row["created_at"] is not None and row["updated_at"] is not None


async def test_raw_sql_scenario_gets_database_defaults(raw: asyncpg.Connection) -> None:
    row = await raw.fetchrow("SELECT * FROM scenario WHERE id = $1", await insert_scenario(raw))
    assert row["is_active"] is True
    assert row["created_at"] is not None and row["updated_at"] is not None


async def test_raw_sql_session_and_message_get_database_defaults(
    raw: asyncpg.Connection,
) -> None:
    session_id = await insert_session(raw)
    session = await raw.fetchrow("SELECT * FROM conversation_session WHERE id = $1", session_id)
    assert session["status"] == "active"
    assert session["total_messages"] == 0
    assert session["started_at"] is not None
    assert session["ended_at"] is None and session["duration_seconds"] is None
    message = await raw.fetchrow(
        "INSERT INTO message (session_id, role, content) VALUES ($1, 'user', 'hi') RETURNING *",
        session_id,
    )
    assert json.loads(message["metadata"]) == {}
    assert message["timestamp"] is not None
    # The ORM reads the raw row back with the defaults as Python values.
    loaded = await Message.get(id=message["id"])
    assert loaded.metadata == {} and loaded.role is MessageRole.USER
    assert (await ConversationSession.get(id=session_id)).status is SessionStatus.ACTIVE


# --- enums --------------------------------------------------------------------------------


async def test_database_refuses_an_invalid_role_inserted_by_raw_sql(
    raw: asyncpg.Connection,
) -> None:
    session_id = await insert_session(raw)
    with pytest.raises(asyncpg.CheckViolationError, match="message_role_valid"):
        await raw.execute(
            "INSERT INTO message (session_id, role, content) VALUES ($1, 'robot', 'x')",
            session_id,
        )
    assert await raw.fetchval("SELECT count(*) FROM message") == 0


async def test_database_refuses_an_invalid_status_inserted_by_raw_sql(
    raw: asyncpg.Connection,
) -> None:
    session_id = await insert_session(raw)
    with pytest.raises(asyncpg.CheckViolationError, match="conversation_session_status_valid"):
        await raw.execute(
            "UPDATE conversation_session SET status = 'paused' WHERE id = $1", session_id
        )
    assert await raw.fetchval("SELECT status FROM conversation_session") == "active"


async def test_check_constraints_list_exactly_the_python_enums(raw: asyncpg.Connection) -> None:
    """The hand-written migration must stay in step with SessionStatus and MessageRole."""
    for constraint, enum in ENUM_CHECKS.items():
        definition = await raw.fetchval(
            "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conname = $1", constraint
        )
        assert definition is not None, f"no constraint {constraint}"
        assert set(re.findall(r"'([^']*)'", definition)) == {m.value for m in enum}, definition
    # And so the database behaves: each value is stored, near misses are refused. (Not a
    # trailing space: varchar(n) silently trims the spaces beyond n, so 'partner ' fits.)
    session_id = await insert_session(raw)
    for role in MessageRole:  # while the session is active: an ended one takes no new messages
        await raw.execute(
            "INSERT INTO message (session_id, role, content) VALUES ($1, $2, 'x')",
            session_id,
            role.value,
        )
        for wrong in (role.value.upper(), role.value[:-1], ""):
            with pytest.raises(asyncpg.CheckViolationError, match="message_role_valid"):
                await raw.execute(
                    "INSERT INTO message (session_id, role, content) VALUES ($1, $2, 'x')",
                    session_id,
                    wrong,
                )
    stored = await raw.fetch("SELECT role FROM message ORDER BY id")
    assert [row["role"] for row in stored] == [role.value for role in MessageRole]
    for status in SessionStatus:
        await raw.execute(
            "UPDATE conversation_session SET status = $1 WHERE id = $2", status.value, session_id
        )
        stored_status = "SELECT status FROM conversation_session WHERE id = $1"
        assert await raw.fetchval(stored_status, session_id) == status.value
        for wrong in (status.value.upper(), status.value[:-1], ""):
            with pytest.raises(
                asyncpg.CheckViolationError, match="conversation_session_status_valid"
            ):
                await raw.execute(
                    "UPDATE conversation_session SET status = $1 WHERE id = $2", wrong, session_id
                )


async def test_orm_refuses_an_unknown_role_before_the_database() -> None:
    session = await make_session()
    with pytest.raises(ValueError, match="'narrator' is not a valid MessageRole"):
        await Message.create(session=session, role="narrator", content="x")
    assert await Message.all().count() == 0


# --- other invariants, through the ORM and through raw SQL ----------------------------------


async def test_total_messages_written_directly_keeps_the_count(raw: asyncpg.Connection) -> None:
    """Only the message triggers write the count (a stale save() must not undo their work)."""
    session = await make_session()
    await make_message(session=session)
    session.total_messages = -1  # the in-memory object still says 0 before this
    await session.save()
    await raw.execute("UPDATE conversation_session SET total_messages = 99")
    assert (await ConversationSession.get(id=session.id)).total_messages == 1


async def test_ended_before_started_is_refused(raw: asyncpg.Connection) -> None:
    session = await make_session()
    session.ended_at = session.started_at.replace(year=2000)
    with pytest.raises(IntegrityError, match="ended_after_started"):
        await session.save()
    with pytest.raises(asyncpg.CheckViolationError, match="ended_after_started"):
        await raw.execute(
            "UPDATE conversation_session SET ended_at = started_at - interval '1 second'"
        )
    assert (await ConversationSession.get(id=session.id)).ended_at is None


async def test_negative_duration_is_refused(raw: asyncpg.Connection) -> None:
    await make_session()
    with pytest.raises(asyncpg.CheckViolationError, match="duration_nonnegative"):
        await raw.execute("UPDATE conversation_session SET duration_seconds = -1")


@pytest.mark.parametrize("slug", ["Has-Caps", "with space", "trailing-", "a--b", ""])
async def test_raw_sql_invalid_slug_is_refused(raw: asyncpg.Connection, slug: str) -> None:
    with pytest.raises(asyncpg.CheckViolationError, match="scenario_slug_format"):
        await insert_scenario(raw, slug)


async def test_raw_sql_duplicate_slug_is_refused(raw: asyncpg.Connection) -> None:
    await make_scenario(slug="same")
    with pytest.raises(asyncpg.UniqueViolationError, match="scenario_slug_key"):
        await insert_scenario(raw, "same")


async def test_raw_sql_duplicate_email_in_other_case_is_refused(raw: asyncpg.Connection) -> None:
    await make_user(email="test@example.com")
    with pytest.raises(asyncpg.CheckViolationError, match="user_email_lower_trimmed"):
        await insert_user(raw, "TEST@Example.com")  # stored e-mails are lower case
    with pytest.raises(asyncpg.UniqueViolationError, match="user_email_key"):
        await insert_user(raw, "test@example.com")
    assert await User.all().count() == 1


@pytest.mark.parametrize("email", ["", "no-at-sign", "two@@example.com", "sp ace@example.com"])
async def test_malformed_email_is_refused_by_the_database(
    raw: asyncpg.Connection, email: str
) -> None:
    with pytest.raises(asyncpg.CheckViolationError, match="user_email_format"):
        await insert_user(raw, email)


async def test_blank_username_and_scenario_name_are_refused(raw: asyncpg.Connection) -> None:
    with pytest.raises(IntegrityError, match="username_not_blank"):
        await make_user(username="  ")
    with pytest.raises(IntegrityError, match="name_not_blank"):
        await make_scenario(name="")


async def test_empty_message_content_is_refused(raw: asyncpg.Connection) -> None:
    with pytest.raises(IntegrityError, match="content_not_empty"):
        await make_message(content="")
    assert await Message.all().count() == 0


async def test_metadata_must_be_a_json_object(raw: asyncpg.Connection) -> None:
    message = await make_message()
    with pytest.raises(asyncpg.CheckViolationError, match="metadata_is_object"):
        await raw.execute("UPDATE message SET metadata = '[1, 2]'::jsonb")
    message.metadata = ["not", "an", "object"]  # type: ignore[assignment]
    with pytest.raises(IntegrityError, match="metadata_is_object"):
        await message.save()
    assert (await Message.get(id=message.id)).metadata == {}


async def test_raw_sql_cascade_and_restrict_match_the_orm(raw: asyncpg.Connection) -> None:
    message = await make_message()
    session = await message.session
    # PostgreSQL 18 reports RestrictViolationError, 15 ForeignKeyViolationError: both integrity.
    with pytest.raises(asyncpg.IntegrityConstraintViolationError, match="scenario"):
        await raw.execute("DELETE FROM scenario WHERE id = $1", session.scenario_id)  # type: ignore[attr-defined]
    await raw.execute('DELETE FROM "user" WHERE id = $1', session.user_id)  # type: ignore[attr-defined]
    assert await raw.fetchval("SELECT count(*) FROM conversation_session") == 0
    assert await raw.fetchval("SELECT count(*) FROM message") == 0
    assert await raw.fetchval("SELECT count(*) FROM scenario") == 1
