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
    A session that is not active accepts no new message, unless the transaction declares an
    explicit backfill with ``SET LOCAL coach_db.backfill = 'on'`` (migration
    ``3_…_invariants``); even then no message may be timestamped after the session's end, and
    moving ``ended_at`` before an existing message is refused too (SQLSTATE 23514, constraint
    name ``message_not_after_session_end``). The trigger reads the status from the session
    row it has locked, so an end committed by another transaction meanwhile is always seen.
    Why not compare timestamps only (the rule of migration 2): a message's default timestamp
    is its transaction's start, so a transaction that began before ``end_session`` committed
    could add a message after the end with an "earlier" time. Why a backfill at all: the demo
    seed and imports COPY sessions that ended long ago together with their history (session
    row first, then its messages). ``SET LOCAL``, never ``SET``: it ends with the transaction,
    also behind PgBouncer. Moving an existing message to another session (an administrator's
    correction) keeps its own timestamp and follows only the time rule. ``add_message``
    accepts active sessions only, checked in the same statement as the INSERT; the trigger
    covers a session ending concurrently.

a stale write does not undo a newer one
    ``conversation_session.version`` is bumped by the database on every direct write (not by
    the message counters). A write that sets ``version`` must name the stored one, else it is
    refused (``conversation_session_version_current``); ``ConversationSession.save()`` always
    sends the version it read, so saving a stale object raises ``SessionChanged`` instead of
    writing an old status over a newer one.

an inactive scenario offers no new sessions
    Only in ``start_session`` (one INSERT … SELECT that checks ``is_active``), not in the
    database: deactivating a scenario withdraws the offer, it does not make its existing
    sessions, their imports or an administrator's repairs invalid.

role, empty content, metadata a JSON object
    CHECK constraints (migration ``1_…_constraints``), checked again here first so the error
    names the problem. PostgreSQL cannot store NUL (``\\x00``) in text or in JSON strings, and
    a lone surrogate cannot be encoded as UTF-8: ``add_message`` finds both in the content and
    anywhere in the metadata (keys too) and raises ``InvalidMessage`` before anything is sent.

sizes (``coach_db.limits``)
    ``add_message`` refuses content longer than ``MAX_CONTENT_CHARS`` and metadata larger than
    ``MAX_METADATA_BYTES`` (compact UTF-8 JSON) or deeper than ``MAX_METADATA_DEPTH``, and
    cycles, with one iterative walk whose work is bounded by those limits, not by the input
    (``metadata_json``). Reads are bounded too: ``transcript`` pages of at most
    ``MAX_TRANSCRIPT_PAGE``, ``user_history`` the newest ``MAX_HISTORY_SESSIONS`` sessions with
    their first ``MAX_HISTORY_MESSAGES`` messages each, with cursors for the rest.

retries that never duplicate (migration ``11_…_idempotency_keys``)
    ``add_message`` and ``start_session`` take an optional ``idempotency_key``: the same call
    sent again with the same key (after ``DatabaseConnectionLost(maybe_written=True)``, a
    timeout, a failover, a crashed worker) returns the row the first call stored, never a
    second row. Unique per session (message) and per user (session), by partial unique
    indexes: the INSERT says ``ON CONFLICT … DO NOTHING``, and a conflict reads the stored row
    back. Concurrent calls with one key wait for each other in the index and store one row. A
    key reused with other values (another role, content, metadata or scenario) raises
    ``IdempotencyKeyReused``, as Stripe does: returning a row that is not what the caller asked
    for would hide a bug. A retry is answered from the stored row even if the session has
    ended (or the scenario was deactivated) meanwhile. Keys have 1 to
    ``MAX_IDEMPOTENCY_KEY_CHARS`` characters (CHECK constraints too). ``end_session`` needs no
    key: ending an ended session again with the same status returns it unchanged.

Every function here is one round trip on the happy path (a second one only to explain a
refusal, or for ``end_session`` to return a session that had already ended) and runs inside the
caller's transaction when there is one (``in_transaction()``).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any, Final, TypeVar

import asyncpg
from asyncpg import CheckViolationError, ForeignKeyViolationError
from asyncpg.pool import PoolConnectionProxy
from pydantic import BaseModel, TypeAdapter
from pydantic_core import from_json
from tortoise import connections
from tortoise.backends.asyncpg.client import TransactionWrapper
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError

from coach_db.db import forget_pooled_connections
from coach_db.errors import (
    DatabaseConnectionLost,
    IdempotencyKeyReused,
    InvalidIdempotencyKey,
    InvalidMessage,
    NotFound,
    ScenarioInactive,
    SessionAlreadyEnded,
    SessionNotActive,
    connection_lost,
    never_sent,
    read_only_refusal,
)
from coach_db.limits import (
    MAX_CONTENT_CHARS,
    MAX_HISTORY_MESSAGES,
    MAX_HISTORY_SESSIONS,
    MAX_IDEMPOTENCY_KEY_CHARS,
    MAX_TRANSCRIPT_PAGE,
)
from coach_db.models import (
    ConversationSession,
    Message,
    MessageRole,
    Scenario,
    SessionStatus,
    User,
)
from coach_db.types import MessageRead, ScenarioRead, SessionWithHistory, UserWithSessions
from coach_db.validation import check_text, excerpt, metadata_json

# The trigger's error for a message after its session's end (see the module docstring).
_AFTER_END = "message_not_after_session_end"
_T = TypeVar("_T")
_ROLES = ", ".join(repr(role.value) for role in MessageRole)
_ROLE_BY_VALUE: Final = {role.value: role for role in MessageRole}
# transcript()'s pages: pydantic-core validates the rows in one call, no ORM objects.
_MESSAGE_PAGE: Final = TypeAdapter(list[MessageRead])
# The fields of a session in user_history() that come from other tables.
_NESTED = ("scenario", "messages")

# Each operation is a single statement; the WHERE clauses make the refusals atomic with the
# write (a session ending or a scenario being deactivated concurrently cannot slip between a
# check and the INSERT).
# A NULL key never conflicts: one statement with and without a key. A conflict inserts nothing
# and returns nothing; the _KEYED_ query then reads the stored row (a new snapshot: it sees a
# concurrent first call, which the INSERT waited for in the unique index).
_START_SESSION = """
    INSERT INTO "conversation_session" ("user_id", "scenario_id", "idempotency_key")
    SELECT $1, "id", $3 FROM "scenario" WHERE "id" = $2 AND "is_active"
    ON CONFLICT ("user_id", "idempotency_key") WHERE "idempotency_key" IS NOT NULL DO NOTHING
    RETURNING *"""
# A retry's read-back of the row an earlier call stored locks it (FOR KEY SHARE, the weakest
# lock: it blocks no insert or counter update). A lock takes a transaction id, so the read's
# commit waits for the synchronous standby like a write, and a standby refuses it as read-only:
# the row is acknowledged only from a primary that has it replicated. (PostgreSQL commits locally
# when a synchronous wait is cancelled, and a demoted primary keeps such rows until it is
# rewound: without the lock, a primary cut off from its standby answered a retry with a row the
# new primary never got — tests/test_patroni.py's partition test.)
_KEYED_SESSION = """
    SELECT * FROM "conversation_session" WHERE "user_id" = $1 AND "idempotency_key" = $2
    FOR KEY SHARE"""
_ADD_MESSAGE = """
    INSERT INTO "message" ("session_id", "role", "content", "metadata", "idempotency_key")
    SELECT "id", $2, $3, $4::jsonb, $5 FROM "conversation_session"
    WHERE "id" = $1 AND "status" = 'active'
    ON CONFLICT ("session_id", "idempotency_key") WHERE "idempotency_key" IS NOT NULL DO NOTHING
    RETURNING "id", "timestamp"
"""
_KEYED_MESSAGE = """
    SELECT "id", "role", "content", "timestamp", "audio_url", "metadata"::text AS "metadata",
           "role" = $3 AS "same_role", "content" = $4 AS "same_content",
           "metadata" = $5::jsonb AS "same_metadata"
    FROM "message" WHERE "session_id" = $1 AND "idempotency_key" = $2
    FOR KEY SHARE"""
# ended_at and duration_seconds come from the trigger: the database clock, after the row lock.
_END_SESSION = """
    UPDATE "conversation_session" SET "status" = $2
    WHERE "id" = $1 AND "status" = 'active'
    RETURNING *"""
_SCENARIO_SLUG = 'SELECT "slug" FROM "scenario" WHERE "id" = $1'
_SESSION = 'SELECT * FROM "conversation_session" WHERE "id" = $1'
_SESSION_STATE = 'SELECT "status", "ended_at" FROM "conversation_session" WHERE "id" = $1'
_MESSAGE_COLUMNS = (
    '"id", "session_id", "role", "content", "timestamp", "audio_url", "metadata", "idempotency_key"'
)
# The row comparison uses the (session_id, timestamp, id) index as a range: every page costs
# the same, however deep, and messages with equal timestamps are ordered by id.
_FIRST_PAGE = f"""
    SELECT {_MESSAGE_COLUMNS} FROM "message" WHERE "session_id" = $1
    ORDER BY "timestamp", "id" LIMIT $2"""
_NEXT_PAGE = f"""
    SELECT {_MESSAGE_COLUMNS} FROM "message"
    WHERE "session_id" = $1 AND ("timestamp", "id") > ($2::timestamptz, $3::bigint)
    ORDER BY "timestamp", "id" LIMIT $4"""
# The page just before a cursor, read backwards along the same index and returned in time order.
_PREVIOUS_PAGE = f"""
    SELECT * FROM (
        SELECT {_MESSAGE_COLUMNS} FROM "message"
        WHERE "session_id" = $1 AND ("timestamp", "id") < ($2::timestamptz, $3::bigint)
        ORDER BY "timestamp" DESC, "id" DESC LIMIT $4) AS page
    ORDER BY "timestamp", "id"
"""
# The whole tree as one JSON document built by PostgreSQL and validated by pydantic-core: one
# query whatever the number of sessions and messages, and no ORM objects on the way. json, not
# jsonb: building jsonb costs four times as much here. The user and session keys are listed
# (no password_hash; the nested scenario replaces scenario_id): keep them in step with
# UserWithSessions (test_user_history_is_what_the_orm_nesting_gives compares the two). Orders
# are the models' Meta.ordering. Times carry the server's TimeZone offset: the same instants
# as the ORM's UTC datetimes. Bounded: the newest $3 sessions (older than the session $2 when
# given), each with its first $4 messages, so the document never grows with the history.


def _columns(model: type[BaseModel], alias: str, *skip: str) -> str:
    """The columns of a generated type's fields, in its order (the types follow the models)."""
    return ", ".join(f'{alias}."{name}"' for name in model.model_fields if name not in skip)


# user_history() in three statements on one snapshot: the user, the sessions with their
# scenario (a join), the first messages of each (one LATERAL query). Rows to dicts to one
# pydantic-core validation: as cheap as a hand-written asyncpg version (bench/shapes.py);
# building the document as JSON in PostgreSQL (json_agg) cost 3x as much.
_HISTORY_USER = f"""
    SELECT {_columns(UserWithSessions, "u", "sessions")},
           $2::int IS NULL OR EXISTS (
               SELECT FROM "conversation_session" WHERE "id" = $2 AND "user_id" = u."id"
           ) AS "cursor_found"
    FROM "user" u WHERE u."id" = $1"""
_SESSION_FIELDS: Final = [n for n in SessionWithHistory.model_fields if n not in _NESTED]
_SCENARIO_FIELDS: Final = list(ScenarioRead.model_fields)
_HISTORY_SESSIONS = f"""
    SELECT {_columns(SessionWithHistory, "s", *_NESTED)}, {_columns(ScenarioRead, "c")}
    FROM "conversation_session" s JOIN "scenario" c ON c."id" = s."scenario_id"
    WHERE s."user_id" = $1 AND ($2::int IS NULL OR (s."started_at", s."id") < (
        SELECT "started_at", "id" FROM "conversation_session" WHERE "id" = $2))
    ORDER BY s."started_at" DESC, s."id" DESC LIMIT $3"""
_HISTORY_MESSAGES = f"""
    SELECT m.* FROM unnest($1::int[]) AS s("id"), LATERAL (
        SELECT {_columns(MessageRead, "message")} FROM "message"
        WHERE "session_id" = s."id" ORDER BY "timestamp", "id" LIMIT $2) m"""


_INT4_MAX, _INT8_MAX = 2**31 - 1, 2**63 - 1  # the id columns' ranges


async def start_session(
    user: User | int, scenario: Scenario | int, *, idempotency_key: str | None = None
) -> ConversationSession:
    """A new active session of `user` in `scenario`; refuses an inactive scenario.

    With `idempotency_key` (unique per user), a call repeating an earlier one returns the
    session that one started instead of a second session; IdempotencyKeyReused if the earlier
    call named another scenario.
    """
    user_id, scenario_id = _pk(user, "User"), _pk(scenario, "Scenario")
    key = _checked_key(idempotency_key)
    db = _db()
    try:
        rows = await _run(db, "start_session", _START_SESSION, [user_id, scenario_id, key])
    except IntegrityError as exc:
        if isinstance(exc.__cause__, ForeignKeyViolationError):
            raise NotFound("User", user_id) from None
        raise
    if rows:
        return ConversationSession._init_from_db(**rows[0])
    if key is not None:
        stored = await _run(db, "start_session", _KEYED_SESSION, [user_id, key], read_only=True)
        if stored:
            if stored[0]["scenario_id"] != scenario_id:
                raise IdempotencyKeyReused("session", key, stored[0]["id"], "scenario")
            return ConversationSession._init_from_db(**dict(stored[0]))
    found = await _run(db, "start_session", _SCENARIO_SLUG, [scenario_id], read_only=True)
    if not found:
        raise NotFound("Scenario", scenario_id)
    raise ScenarioInactive(scenario_id, found[0]["slug"])


async def add_message(
    session: ConversationSession | int,
    role: MessageRole | str,
    content: str,
    metadata: dict[str, Any] | None = None,
    *,
    idempotency_key: str | None = None,
) -> Message:
    """Append a message to an active session in one round trip; the count follows in the database.

    With `idempotency_key` (unique per session), a call repeating an earlier one returns the
    message that one stored (its id and timestamp) instead of a second message, even if the
    session has ended since; IdempotencyKeyReused if the earlier call sent another role,
    content or metadata. Retry with the same key after DatabaseConnectionLost.

    Raises InvalidMessage (unknown role, empty content, NUL characters, metadata that is not a
    JSON object, content longer than MAX_CONTENT_CHARS, metadata larger than MAX_METADATA_BYTES
    or deeper than MAX_METADATA_DEPTH: see coach_db.limits), SessionNotActive or NotFound, and
    then nothing is written. The `session`
    object passed in is not refreshed: read `total_messages` again if you need it.
    """
    session_id = _pk(session, "Session")
    role, metadata_json = _checked(role, content, metadata)
    key = _checked_key(idempotency_key)
    db = _db()
    try:
        args = [session_id, role.value, content, metadata_json, key]
        rows = await _run(db, "add_message", _ADD_MESSAGE, args)
    except IntegrityError as exc:
        # The session ended or vanished after this statement's snapshot and the trigger or the
        # foreign key refused the row. No query to say more: a caller's transaction is aborted.
        if getattr(exc.__cause__, "constraint_name", None) == _AFTER_END:
            raise SessionNotActive(session_id) from None
        if isinstance(exc.__cause__, ForeignKeyViolationError):
            raise NotFound("Session", session_id) from None
        if isinstance(exc.__cause__, CheckViolationError):
            # A database rule stricter than the checks above (its CHECK measures the stored
            # JSON, which can be longer than ours, e.g. 1e300 is printed with 300 zeros).
            raise InvalidMessage(
                f"the database refused it (constraint {exc.__cause__.constraint_name})"
            ) from None
        raise
    if not rows and key is not None:
        args = [session_id, key, role.value, content, metadata_json]
        stored = await _run(db, "add_message", _KEYED_MESSAGE, args, read_only=True)
        if stored:
            return _stored_message(session_id, key, stored[0])
    if not rows:
        raise await _not_active(db, session_id)
    return Message._init_from_db(
        id=rows[0]["id"],
        session_id=session_id,
        role=role.value,
        content=content,
        timestamp=rows[0]["timestamp"],
        audio_url=None,
        metadata=from_json(metadata_json),  # what a read gives back (tuples as lists...)
        idempotency_key=key,
    )


def _stored_message(session_id: int, key: str, row: Any) -> Message:
    """The message an earlier call with `key` stored, or IdempotencyKeyReused if it differs."""
    for column, what in (("role", "role"), ("content", "content"), ("metadata", "metadata")):
        if not row[f"same_{column}"]:
            raise IdempotencyKeyReused("message", key, row["id"], what)
    return Message._init_from_db(
        id=row["id"],
        session_id=session_id,
        role=row["role"],
        content=row["content"],
        timestamp=row["timestamp"],
        audio_url=row["audio_url"],
        metadata=from_json(row["metadata"]),
        idempotency_key=key,
    )


async def end_session(
    session: ConversationSession | int, status: SessionStatus | str = SessionStatus.COMPLETED
) -> ConversationSession:
    """End an active session as completed or abandoned, timed by the database clock.

    Idempotent: ending it again with the same status returns it unchanged. Ending it again with
    the other status raises SessionAlreadyEnded. Returns the session as stored.
    """
    session_id = _pk(session, "Session")
    status = SessionStatus(status)
    if status is SessionStatus.ACTIVE:
        raise ValueError("end_session() ends a session: status must be completed or abandoned")
    db = _db()
    while True:  # again only if the session was reopened between the UPDATE and the SELECT
        rows = await _run(db, "end_session", _END_SESSION, [session_id, status.value])
        if rows:
            return ConversationSession._init_from_db(**rows[0])
        rows = await _run(db, "end_session", _SESSION, [session_id], read_only=True)
        if not rows:
            raise NotFound("Session", session_id)
        stored = ConversationSession._init_from_db(**rows[0])
        if stored.status is status:
            return stored
        if stored.status is not SessionStatus.ACTIVE:
            raise SessionAlreadyEnded(session_id, stored.status, stored.ended_at, status)


async def transcript(
    session: ConversationSession | int,
    after: Message | MessageRead | tuple[datetime, int] | None = None,
    limit: int = 50,
    *,
    before: Message | MessageRead | tuple[datetime, int] | None = None,
) -> list[MessageRead]:
    """One page of a session's messages in time order (ties by id), after the cursor `after`.

    Keyset pagination: pass the last message of a page (or its `(timestamp, id)`) to get the
    next one; a page shorter than `limit` is the last. No OFFSET, so every page is as fast as
    the first and a message arriving meanwhile is neither skipped nor repeated. `before`
    instead gives the page that ends just before a message (still in time order), for paging
    backwards. `limit` is at most MAX_TRANSCRIPT_PAGE: a larger one is a ValueError rather
    than silently capped, which would make a full page look like the last one.

    The messages are `MessageRead`s (what `MessageRead.from_tortoise_orm` gives, validated by
    pydantic-core straight from the rows), not ORM objects: cheaper to build per row.
    """
    if not 1 <= limit <= MAX_TRANSCRIPT_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_TRANSCRIPT_PAGE}, not {limit}")
    if after is not None and before is not None:
        raise ValueError("give after or before, not both")
    session_id = _pk(session, "Session")
    if after is not None:
        query, args = _NEXT_PAGE, [session_id, *_cursor(after), limit]
    elif before is not None:
        query, args = _PREVIOUS_PAGE, [session_id, *_cursor(before), limit]
    else:
        query, args = _FIRST_PAGE, [session_id, limit]
    rows = await _run(_db(), "transcript", query, args, read_only=True)
    return _MESSAGE_PAGE.validate_python(
        [{**row, "metadata": from_json(row["metadata"])} for row in rows]
    )


async def user_history(
    user: User | int, before: ConversationSession | int | None = None
) -> UserWithSessions:
    """The user with their newest sessions, each with its scenario and first messages.

    Three statements (user, sessions with scenario, messages) on one read-only snapshot,
    however long the history: no N+1.

    Bounded, so its memory does not grow with the history: at most MAX_HISTORY_SESSIONS
    sessions (newest first) and at most MAX_HISTORY_MESSAGES messages per session (the first
    ones, in time order). For more: `user_history(user, before=sessions[-1].id)` gives the next
    older sessions (a full list of MAX_HISTORY_SESSIONS means there may be more), and a session
    whose `total_messages` exceeds its `len(messages)` continues with
    `transcript(session.id, after=messages[-1])`. NotFound if `before` is not a session of the user.
    """
    user_id = _pk(user, "User")
    before_id = None if before is None else _pk(before, "Session")
    db = _db()
    doc = await _run_call(db, "user_history", lambda: _read_history(db, user_id, before_id))
    if doc is None:
        raise NotFound("User", user_id)
    if not doc.pop("cursor_found"):
        raise NotFound("Session", before_id or 0)
    return UserWithSessions.model_validate(doc)


async def _read_history(
    db: BaseDBAsyncClient, user_id: int, before_id: int | None
) -> dict[str, Any] | None:
    """user_history()'s rows as one document of dicts, read on one snapshot."""
    async with db.acquire_connection() as conn:
        if isinstance(db, TransactionWrapper):  # the caller's transaction is the snapshot
            return await _history_rows(conn, user_id, before_id)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            return await _history_rows(conn, user_id, before_id)


async def _history_rows(
    conn: asyncpg.Connection | PoolConnectionProxy, user_id: int, before_id: int | None
) -> dict[str, Any] | None:
    found = await conn.fetchrow(_HISTORY_USER, user_id, before_id)
    if found is None:
        return None
    doc = dict(found)
    if not doc["cursor_found"]:
        return doc
    split = len(_SESSION_FIELDS)
    sessions, by_id = [], {}
    for row in await conn.fetch(_HISTORY_SESSIONS, user_id, before_id, MAX_HISTORY_SESSIONS):
        values = tuple(row)
        session = dict(zip(_SESSION_FIELDS, values[:split], strict=True))
        session["scenario"] = dict(zip(_SCENARIO_FIELDS, values[split:], strict=True))
        session["messages"] = []
        sessions.append(session)
        by_id[session["id"]] = session["messages"]
    if by_id:
        for m in await conn.fetch(_HISTORY_MESSAGES, list(by_id), MAX_HISTORY_MESSAGES):
            by_id[m["session_id"]].append({**m, "metadata": from_json(m["metadata"])})
    doc["sessions"] = sessions
    return doc


# --- helpers --------------------------------------------------------------------------------


def _db() -> BaseDBAsyncClient:
    # The caller's transaction when inside in_transaction(), else the pool.
    client: BaseDBAsyncClient = connections.get("default")
    return client


async def _run(
    db: BaseDBAsyncClient, operation: str, query: str, args: list[Any], *, read_only: bool = False
) -> list[Any]:
    """The rows of one statement; a lost connection becomes DatabaseConnectionLost.

    Rows are asyncpg records for a read, dicts for a write: both index by column name.

    A read-only statement outside a transaction is sent once more on a lost connection (a
    PostgreSQL restart leaves dead connections in the pool; the pool replaces the one that
    failed). A write is never resent: it may have been committed before the connection broke
    (its caller retries with its idempotency key). A write refused as read-only (the node was
    demoted) wrote nothing; a statement past the URL's command_timeout (a node cut off) may
    have. Both make the pool drop its connections, so new ones find the current primary.
    """
    return await _run_call(db, operation, lambda: _fetch(db, query, args, read_only), read_only)


async def _run_call(
    db: BaseDBAsyncClient,
    operation: str,
    call: Callable[[], Awaitable[_T]],
    read_only: bool = True,
) -> _T:
    """`call()` with _run's handling of a lost connection (see _run)."""
    try:
        return await call()
    except Exception as exc:
        if not connection_lost(exc) and not _timed_out(exc):
            raise
        first = exc
    if read_only and not isinstance(db, TransactionWrapper) and not _timed_out(first):
        try:
            return await call()
        except Exception as exc:
            if not connection_lost(exc):
                raise
            first = exc
    if read_only_refusal(first) or _timed_out(first):
        # A demoted primary, or one cut off by the network (command_timeout in the URL): its
        # pooled connections must go; new ones find the new primary.
        await forget_pooled_connections(db)
    reason = f"{type(first).__name__}: {str(first)[:200]}"
    maybe_written = not read_only and not never_sent(first) and not read_only_refusal(first)
    raise DatabaseConnectionLost(operation, reason, maybe_written=maybe_written) from first


def _timed_out(exc: BaseException) -> bool:
    """asyncpg's command_timeout (a URL setting) expired: the server is slow or unreachable."""
    return isinstance(exc, TimeoutError)


async def _fetch(db: BaseDBAsyncClient, query: str, args: list[Any], read_only: bool) -> list[Any]:
    if read_only:
        # The driver's records as they are: execute_query_dict copies each into a dict.
        return list((await db.execute_query(query, args))[1])
    # execute_query would run an INSERT or UPDATE without returning its RETURNING rows.
    return await db.execute_query_dict(query, args)


def _pk(obj: User | Scenario | ConversationSession | int, what: str) -> int:
    """The primary key, or NotFound before any query when no row can have it: the columns are
    int4, and PostgreSQL refuses a larger parameter with a raw error (issue 18)."""
    pk = obj if isinstance(obj, int) else int(obj.pk)
    if not 1 <= pk <= _INT4_MAX:
        raise NotFound(what, pk)
    return pk


def _cursor(at: Message | MessageRead | tuple[datetime, int]) -> tuple[datetime, int]:
    at = at if isinstance(at, tuple) else (at.timestamp, at.id)
    if not 1 <= at[1] <= _INT8_MAX:  # message ids are int8
        raise NotFound("Message", at[1])
    return at


async def _not_active(db: BaseDBAsyncClient, session_id: int) -> Exception:
    rows = await _run(db, "add_message", _SESSION_STATE, [session_id], read_only=True)
    if not rows:
        return NotFound("Session", session_id)
    return SessionNotActive(session_id, rows[0]["status"], rows[0]["ended_at"])


def _checked_key(key: str | None) -> str | None:
    """The idempotency key, or InvalidIdempotencyKey saying what is wrong with it."""
    if key is None:
        return None
    if not isinstance(key, str):
        raise InvalidIdempotencyKey(f"it must be a str, not {type(key).__name__}")
    if not key:
        raise InvalidIdempotencyKey("it is empty (use None for no key)")
    if len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
        raise InvalidIdempotencyKey(
            f"it is {len(key):,} characters long, more than the limit of "
            f"{MAX_IDEMPOTENCY_KEY_CHARS} (coach_db.limits.MAX_IDEMPOTENCY_KEY_CHARS); a UUID "
            "or a hash of the request is enough"
        )
    try:
        check_text(key, "it")
    except InvalidMessage as exc:
        raise InvalidIdempotencyKey(exc.reason) from None
    return key


def _checked(
    role: MessageRole | str, content: str, metadata: dict[str, Any] | None
) -> tuple[MessageRole, str]:
    """The role as an enum and the metadata as JSON text, or InvalidMessage saying what is wrong."""
    known = _ROLE_BY_VALUE.get(role) if isinstance(role, str) else None
    if known is None:
        raise InvalidMessage(f"unknown role {excerpt(role)}: expected one of {_ROLES}")
    role = known
    if not isinstance(content, str):
        raise InvalidMessage(f"content must be a str, not {type(content).__name__}")
    if not content:
        raise InvalidMessage("content is empty")
    if len(content) > MAX_CONTENT_CHARS:
        raise InvalidMessage(
            f"content is {len(content):,} characters long, more than the limit of "
            f"{MAX_CONTENT_CHARS:,} (coach_db.limits.MAX_CONTENT_CHARS); split it into messages"
        )
    check_text(content, "content")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, dict):
        raise InvalidMessage(
            f"metadata must be a JSON object (a dict), not {type(metadata).__name__}"
        )
    return role, metadata_json(metadata)
