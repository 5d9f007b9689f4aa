"""Conversation operations that keep sessions consistent with their messages, whoever writes.

The denormalised fields of a session (``total_messages``, ``status``, ``ended_at``,
``duration_seconds``) must never drift from the message rows, whether a service writes through
these functions, the studio through plain ORM saves, or another service through raw SQL or
COPY. So each invariant lives in PostgreSQL itself (migration ``2_…_conversation_triggers``),
and these functions are thin single statements on top, adding Python-side checks only where
they make the error clearer than the driver's:

``total_messages`` = the number of message rows
    Counted by statement-level triggers on ``message`` INSERT / DELETE / UPDATE (a message
    moved to another session) / TRUNCATE. Statement-level with transition tables, so a COPY
    or bulk insert touches each session row once; ``total_messages + n`` is evaluated on the
    locked row, so concurrent writers never lose a count. The count is the triggers' alone: a
    new session starts at 0 and a direct write keeps the stored value instead of failing,
    because Tortoise's ``save()`` writes every column, often from an object read before the
    latest messages arrived. Multi-session statements lock sessions in id order: no deadlock.

an ended session has ``ended_at``, an active one has not
    A CHECK constraint. Ending a session without giving a time (``end_session``, a studio
    edit of the status, ``UPDATE … SET status = 'completed'``) makes the trigger stamp the
    database clock, read after the row lock and never before the last message; reopening (an
    administrator's correction) clears it. A session *inserted* as ended must say when it
    ended (the demo seed does): the database cannot know.

``duration_seconds`` = whole seconds from ``started_at`` to ``ended_at``
    Derived by the trigger whenever either time changes; a value written by hand must match
    (CHECK), so a stale or wrong duration is refused rather than stored.

no message after the end
    Decision: inserting a message into an ended session by raw SQL is an error *when its
    timestamp is after the session's end* (SQLSTATE 23514, constraint name
    ``message_not_after_session_end``), and so is moving ``ended_at`` before an existing
    message. Why not refuse every message into an ended session: the demo seed and any import
    COPY sessions that ended long ago together with their history (session row first, then its
    messages); the true invariant is that a transcript does not grow after its end. A message
    stamped with the current time (the column default, or the ORM's clock) is always refused.
    ``add_message`` is stricter, as the API promises: only active sessions, checked in the
    same statement as the INSERT; the trigger covers a session ending concurrently.

an inactive scenario offers no new sessions
    Only in ``start_session`` (one INSERT … SELECT that checks ``is_active``), not in the
    database: deactivating a scenario withdraws the offer, it does not make its existing
    sessions, their imports or an administrator's repairs invalid.

role, empty content, metadata a JSON object
    CHECK constraints (migration ``1_…_constraints``), checked again here first so the error
    names the problem. PostgreSQL cannot store NUL (``\\x00``) in text or in JSON strings, and
    a lone surrogate cannot be encoded as UTF-8: ``add_message`` finds both in the content and
    anywhere in the metadata (keys too) and raises ``InvalidMessage`` before anything is sent.

Every function here is one round trip on the happy path (a second one only to explain a
refusal, or for ``end_session`` to return a session that had already ended) and runs inside the
caller's transaction when there is one (``in_transaction()``).
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any, Final

from asyncpg import ForeignKeyViolationError
from tortoise import connections
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from coach_db.errors import (
    InvalidMessage,
    NotFound,
    ScenarioInactive,
    SessionAlreadyEnded,
    SessionNotActive,
)
from coach_db.models import (
    ConversationSession,
    Message,
    MessageRole,
    Scenario,
    SessionStatus,
    User,
)
from coach_db.types import UserWithSessions

MAX_PAGE: Final = 1000
# The trigger's error for a message after its session's end (see the module docstring).
_AFTER_END = "message_not_after_session_end"
_ROLES = ", ".join(repr(role.value) for role in MessageRole)

# Each operation is a single statement; the WHERE clauses make the refusals atomic with the
# write (a session ending or a scenario being deactivated concurrently cannot slip between a
# check and the INSERT).
_START_SESSION = """
    INSERT INTO "conversation_session" ("user_id", "scenario_id")
    SELECT $1, "id" FROM "scenario" WHERE "id" = $2 AND "is_active"
    RETURNING *"""
_ADD_MESSAGE = """
    INSERT INTO "message" ("session_id", "role", "content", "metadata")
    SELECT "id", $2, $3, $4::jsonb FROM "conversation_session"
    WHERE "id" = $1 AND "status" = 'active'
    RETURNING "id", "timestamp"
"""
# ended_at and duration_seconds come from the trigger: the database clock, after the row lock.
_END_SESSION = """
    UPDATE "conversation_session" SET "status" = $2
    WHERE "id" = $1 AND "status" = 'active'
    RETURNING *"""
_SCENARIO_SLUG = 'SELECT "slug" FROM "scenario" WHERE "id" = $1'
_SESSION = 'SELECT * FROM "conversation_session" WHERE "id" = $1'
_MESSAGE_COLUMNS = '"id", "session_id", "role", "content", "timestamp", "audio_url", "metadata"'
# The row comparison uses the (session_id, timestamp, id) index as a range: every page costs
# the same, however deep, and messages with equal timestamps are ordered by id.
_FIRST_PAGE = f"""
    SELECT {_MESSAGE_COLUMNS} FROM "message" WHERE "session_id" = $1
    ORDER BY "timestamp", "id" LIMIT $2"""
_NEXT_PAGE = f"""
    SELECT {_MESSAGE_COLUMNS} FROM "message"
    WHERE "session_id" = $1 AND ("timestamp", "id") > ($2::timestamptz, $3::bigint)
    ORDER BY "timestamp", "id" LIMIT $4"""
# The whole tree as one JSON document built by PostgreSQL and validated by pydantic-core: one
# query whatever the number of sessions and messages, and no ORM objects on the way. json, not
# jsonb: building jsonb costs four times as much here. The user and session keys are listed
# (no password_hash; the nested scenario replaces scenario_id): keep them in step with
# UserWithSessions (test_user_history_is_what_the_orm_nesting_gives compares the two). Orders
# are the models' Meta.ordering. Times carry the server's TimeZone offset: the same instants
# as the ORM's UTC datetimes.
_USER_HISTORY = """
    SELECT json_build_object(
        'id', u."id", 'email', u."email", 'username', u."username", 'is_staff', u."is_staff",
        'created_at', u."created_at", 'updated_at', u."updated_at",
        'sessions', coalesce((
            SELECT json_agg(json_build_object(
                'id', s."id", 'user_id', s."user_id", 'status', s."status",
                'started_at', s."started_at", 'ended_at', s."ended_at",
                'total_messages', s."total_messages", 'duration_seconds', s."duration_seconds",
                'scenario', (
                    SELECT row_to_json(c) FROM "scenario" c WHERE c."id" = s."scenario_id"),
                'messages', coalesce((
                    SELECT json_agg(m ORDER BY m."timestamp", m."id")
                    FROM "message" m WHERE m."session_id" = s."id"), '[]'))
                ORDER BY s."started_at" DESC, s."id" DESC)
            FROM "conversation_session" s WHERE s."user_id" = u."id"), '[]'))::text AS doc
    FROM "user" u WHERE u."id" = $1"""


async def start_session(user: User | int, scenario: Scenario | int) -> ConversationSession:
    """A new active session of `user` in `scenario`; refuses an inactive scenario."""
    user_id, scenario_id = _pk(user), _pk(scenario)
    db = _db()
    try:
        rows = await db.execute_query_dict(_START_SESSION, [user_id, scenario_id])
    except IntegrityError as exc:
        if isinstance(exc.__cause__, ForeignKeyViolationError):
            raise NotFound("User", user_id) from None
        raise
    if rows:
        return ConversationSession._init_from_db(**rows[0])
    found = await db.execute_query_dict(_SCENARIO_SLUG, [scenario_id])
    if not found:
        raise NotFound("Scenario", scenario_id)
    raise ScenarioInactive(scenario_id, found[0]["slug"])


async def add_message(
    session: ConversationSession | int,
    role: MessageRole | str,
    content: str,
    metadata: dict[str, Any] | None = None,
) -> Message:
    """Append a message to an active session in one round trip; the count follows in the database.

    Raises InvalidMessage (unknown role, empty content, NUL characters, metadata that is not a
    JSON object), SessionNotActive or NotFound, and then nothing is written. The `session`
    object passed in is not refreshed: read `total_messages` again if you need it.
    """
    session_id = _pk(session)
    role, metadata_json = _checked(role, content, metadata)
    db = _db()
    try:
        rows = await db.execute_query_dict(
            _ADD_MESSAGE, [session_id, role.value, content, metadata_json]
        )
    except IntegrityError as exc:
        # The session ended or vanished after this statement's snapshot and the trigger or the
        # foreign key refused the row. No query to say more: a caller's transaction is aborted.
        if getattr(exc.__cause__, "constraint_name", None) == _AFTER_END:
            raise SessionNotActive(session_id) from None
        if isinstance(exc.__cause__, ForeignKeyViolationError):
            raise NotFound("Session", session_id) from None
        raise
    if not rows:
        raise await _not_active(db, session_id)
    return Message._init_from_db(
        id=rows[0]["id"],
        session_id=session_id,
        role=role.value,
        content=content,
        timestamp=rows[0]["timestamp"],
        audio_url=None,
        metadata=json.loads(metadata_json),
    )


async def end_session(
    session: ConversationSession | int, status: SessionStatus | str = SessionStatus.COMPLETED
) -> ConversationSession:
    """End an active session as completed or abandoned, timed by the database clock.

    Idempotent: ending it again with the same status returns it unchanged. Ending it again with
    the other status raises SessionAlreadyEnded. Returns the session as stored.
    """
    session_id = _pk(session)
    status = SessionStatus(status)
    if status is SessionStatus.ACTIVE:
        raise ValueError("end_session() ends a session: status must be completed or abandoned")
    db = _db()
    while True:  # again only if the session was reopened between the UPDATE and the SELECT
        rows = await db.execute_query_dict(_END_SESSION, [session_id, status.value])
        if rows:
            return ConversationSession._init_from_db(**rows[0])
        rows = await db.execute_query_dict(_SESSION, [session_id])
        if not rows:
            raise NotFound("Session", session_id)
        stored = ConversationSession._init_from_db(**rows[0])
        if stored.status is status:
            return stored
        if stored.status is not SessionStatus.ACTIVE:
            raise SessionAlreadyEnded(session_id, stored.status, stored.ended_at, status)


async def transcript(
    session: ConversationSession | int,
    after: Message | tuple[datetime, int] | None = None,
    limit: int = 50,
) -> list[Message]:
    """One page of a session's messages in time order (ties by id), after the cursor `after`.

    Keyset pagination: pass the last message of a page (or its `(timestamp, id)`) to get the
    next one; a page shorter than `limit` is the last. No OFFSET, so every page is as fast as
    the first and a message arriving meanwhile is neither skipped nor repeated.
    """
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}, not {limit}")
    session_id = _pk(session)
    if after is None:
        rows = await _db().execute_query_dict(_FIRST_PAGE, [session_id, limit])
    else:
        timestamp, message_id = (after.timestamp, after.id) if isinstance(after, Message) else after
        rows = await _db().execute_query_dict(
            _NEXT_PAGE, [session_id, timestamp, message_id, limit]
        )
    return [Message._init_from_db(**row) for row in rows]


async def user_history(user: User | int) -> UserWithSessions:
    """The user with every session (newest first), each with its scenario and messages: 1 query."""
    user_id = _pk(user)
    rows = await _db().execute_query_dict(_USER_HISTORY, [user_id])
    if not rows:
        raise NotFound("User", user_id)
    return UserWithSessions.model_validate_json(rows[0]["doc"])


# --- helpers --------------------------------------------------------------------------------


def _db() -> BaseDBAsyncClient:
    # The caller's transaction when inside in_transaction(), else the pool.
    client: BaseDBAsyncClient = connections.get("default")
    return client


def _pk(obj: User | Scenario | ConversationSession | int) -> int:
    return obj if isinstance(obj, int) else int(obj.pk)


async def _not_active(db: BaseDBAsyncClient, session_id: int) -> Exception:
    rows = await db.execute_query_dict(
        'SELECT "status", "ended_at" FROM "conversation_session" WHERE "id" = $1', [session_id]
    )
    if not rows:
        return NotFound("Session", session_id)
    return SessionNotActive(session_id, rows[0]["status"], rows[0]["ended_at"])


def _checked(
    role: MessageRole | str, content: str, metadata: dict[str, Any] | None
) -> tuple[MessageRole, str]:
    """The role as an enum and the metadata as JSON text, or InvalidMessage saying what is wrong."""
    try:
        role = MessageRole(role)
    except ValueError:
        raise InvalidMessage(f"unknown role {role!r}: expected one of {_ROLES}") from None
    if not isinstance(content, str):
        raise InvalidMessage(f"content must be a str, not {type(content).__name__}")
    if not content:
        raise InvalidMessage("content is empty")
    _check_text(content, "content")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise InvalidMessage(
            f"metadata must be a JSON object (a dict), not {type(metadata).__name__}"
        )
    _check_json(metadata)
    return role, json.dumps(metadata, ensure_ascii=False)


def _check_text(text: str, where: str) -> None:
    if "\x00" in text:
        raise InvalidMessage(
            f"{where} contains a NUL character (\\x00) at index {text.index(chr(0))}, "
            "which PostgreSQL cannot store in text or JSON; remove or replace it"
        )
    if not text.isascii():
        try:
            text.encode()
        except UnicodeEncodeError as exc:  # a lone surrogate, e.g. from a broken decode
            raise InvalidMessage(
                f"{where} is not valid Unicode ({exc.reason} at index {exc.start})"
            ) from None


def _check_json(metadata: dict[str, Any]) -> None:
    """Walk the metadata (iteratively: any depth) and refuse what JSON or PostgreSQL cannot hold."""
    stack: list[tuple[Any, str]] = [(metadata, "metadata")]
    while stack:
        value, where = stack.pop()
        if isinstance(value, str):
            _check_text(value, where)
        elif isinstance(value, dict):
            for key, item in value.items():
                if not isinstance(key, str):
                    raise InvalidMessage(
                        f"{where} has the key {key!r}, a {type(key).__name__}: JSON object keys "
                        "are strings"
                    )
                _check_text(key, f"the key {key[:40]!r} of {where}")
                stack.append((item, f"{where}[{key[:40]!r}]"))
        elif isinstance(value, (list, tuple)):
            stack.extend((item, f"{where}[{i}]") for i, item in enumerate(value))
        elif isinstance(value, float) and not math.isfinite(value):
            raise InvalidMessage(f"{where} is {value}, which JSON cannot represent")
        elif value is not None and not isinstance(value, (bool, int, float)):
            raise InvalidMessage(
                f"{where} is a {type(value).__name__}, which is not JSON: convert it first "
                "(for example a datetime to an ISO string)"
            )
