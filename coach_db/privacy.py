"""A person's data and research exports (issue 13): export, erasure with receipts, transcripts.

Every function streams through a server-side cursor, so memory stays flat however many
messages a person or the database holds. Erasure is one transaction: the user, their
sessions and messages are deleted, the audit trail's rows about them are redacted (under
`SET LOCAL coach_db.erasure = 'on'`, the one change migration 7's triggers allow), and an
erasure receipt without personal data is written.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import IO, Any

import asyncpg

from coach_db.errors import CoachDbError
from coach_db.models import SessionStatus
from coach_db.schema import connect_raw
from coach_db.scrub import scrub

EXPORT_FORMAT = "coach-db user export"
EXPORT_VERSION = 1
SCHEMA_PATH = Path(__file__).parent / "schemas" / "user_export.schema.json"
ERASED = "[erased]"
BATCH = 1000  # sessions per query of the research export; cursor prefetch of messages

# --- what a session ran with ------------------------------------------------------------------
# The prompt versions (ScenarioVersion, migration 6) a person's sessions ran with.
PROMPTS_USED_SQL = """
    SELECT DISTINCT v.scenario_id, sc.slug, sc.name, v.version,
           v.partner_persona, v.partner_system_prompt, v.coach_system_prompt,
           v.partner_model, v.coach_model
      FROM conversation_session s
      JOIN scenario_version v ON v.id = s.scenario_version_id
      JOIN scenario sc ON sc.id = v.scenario_id
     WHERE s.user_id = $1
     ORDER BY v.scenario_id, v.version
"""
# The prompt version a session ran with (migration 6), by the session's alias `s`.
SESSION_VERSION_SQL = (
    "(SELECT v.version FROM scenario_version v WHERE v.id = s.scenario_version_id)"
)


class UserNotFound(CoachDbError):
    def __init__(self, email: str) -> None:
        super().__init__(f"No user with the e-mail {email.strip().lower()!r}.")


def _json(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def dumps(value: Any) -> str:
    return json.dumps(value, default=_json, ensure_ascii=False, separators=(",", ":"))


async def _user(conn: asyncpg.Connection, email: str, lock: bool = False) -> asyncpg.Record:
    row = await conn.fetchrow(
        'SELECT id, email, username, is_staff, created_at, updated_at FROM "user"'
        f" WHERE email = lower(trim($1)){' FOR UPDATE' if lock else ''}",
        email,
    )
    if row is None:
        raise UserNotFound(email)
    return row


# --- export-user ------------------------------------------------------------------------------


async def export_user(url: str, email: str, out: IO[str]) -> dict[str, int]:
    """Write everything stored about the person with this e-mail as one JSON document.

    Account (no password hash), scenarios' prompts used, sessions with their messages in order,
    and the studio's audit events about their rows. Returns counts per part.
    """
    conn = await connect_raw(url, application_name="coach-db export-user")
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            user = await _user(conn, email)
            counts = {"sessions": 0, "messages": 0, "audit_events": 0}
            out.write("{")
            out.write(f'"format":{dumps(EXPORT_FORMAT)},"format_version":{EXPORT_VERSION},')
            out.write(f'"exported_at":{dumps(datetime.now(UTC))},')
            out.write(f'"account":{dumps(dict(user))},')
            prompts = [dict(r) for r in await conn.fetch(PROMPTS_USED_SQL, user["id"])]
            out.write(f'"scenarios_used":{dumps(prompts)},')
            out.write('"sessions":[')
            await _write_sessions(conn, user["id"], out, counts)
            out.write('],"audit_events":[')
            query = """
                SELECT id, created_at, action, model, row_id, changes::text FROM audit_event
                 WHERE subject_id = $1 ORDER BY id"""
            first = True
            async for row in conn.cursor(query, user["id"], prefetch=BATCH):
                event = dict(row)
                event["changes"] = json.loads(event["changes"]) if event["changes"] else None
                out.write(("" if first else ",") + dumps(event))
                first = False
                counts["audit_events"] += 1
            out.write("]}\n")
    finally:
        await conn.close()
    return counts


async def _write_sessions(
    conn: asyncpg.Connection, user_id: int, out: IO[str], counts: dict[str, int]
) -> None:
    """Sessions in start order, each with its messages, streamed row by row."""
    query = f"""
        SELECT s.id AS session_id, s.scenario_id, {SESSION_VERSION_SQL} AS scenario_version,
               s.status, s.started_at, s.ended_at, s.total_messages, s.duration_seconds,
               m.id, m.role, m.content, m."timestamp", m.audio_url, m.metadata::text
          FROM conversation_session s
          LEFT JOIN message m ON m.session_id = s.id
         WHERE s.user_id = $1
         ORDER BY s.started_at, s.id, m."timestamp", m.id"""
    current = None
    async for row in conn.cursor(query, user_id, prefetch=BATCH):
        if row["session_id"] != current:
            if current is not None:
                out.write("]},")
            current = row["session_id"]
            counts["sessions"] += 1
            session = {
                "id": row["session_id"],
                "scenario_id": row["scenario_id"],
                "scenario_version": row["scenario_version"],
                "status": row["status"],
                "started_at": row["started_at"],
                "ended_at": row["ended_at"],
                "total_messages": row["total_messages"],
                "duration_seconds": row["duration_seconds"],
            }
            out.write(dumps(session)[:-1] + ',"messages":[')
            first = True
        if row["id"] is not None:
            message = {
                "id": row["id"],
                "role": row["role"],
                "content": row["content"],
                "timestamp": row["timestamp"],
                "audio_url": row["audio_url"],
                "metadata": json.loads(row["metadata"]),
            }
            out.write(("" if first else ",") + dumps(message))
            first = False
            counts["messages"] += 1
    if current is not None:
        out.write("]}")


# --- erase-user -------------------------------------------------------------------------------


@dataclass
class Erasure:
    """What an erasure deletes (counts per table) or deleted (with its receipt)."""

    user_id: int
    counts: dict[str, int] = field(default_factory=dict)
    receipt_id: int | None = None
    email_hash: str = ""


async def erasure_counts(url: str, email: str) -> Erasure:
    """What `erase_user` would delete and redact, without changing anything."""
    conn = await connect_raw(url, application_name="coach-db erase-user")
    try:
        user = await _user(conn, email)
        return Erasure(user["id"], await counts_in(conn, user["id"], user["email"]))
    finally:
        await conn.close()


async def counts_in(conn: asyncpg.Connection, user_id: int, email: str) -> dict[str, int]:
    row = await conn.fetchrow(
        f"""SELECT
            (SELECT count(*) FROM conversation_session WHERE user_id = $1) AS sessions,
            (SELECT count(*) FROM message m JOIN conversation_session s ON s.id = m.session_id
              WHERE s.user_id = $1) AS messages,
            (SELECT count(*) FROM audit_event WHERE {_AUDIT_ABOUT}) AS audit_events_redacted""",
        user_id,
        email,
    )
    assert row is not None
    return {"user": 1, **{k: int(v) for k, v in row.items()}}


# Audit rows that hold the person's data: about their account, sessions or messages (the
# subject), done by them (a staff member), or naming their e-mail anywhere in the changes (a
# scan of the trail: erasures are rare). $1 id, $2 e-mail.
_AUDIT_ABOUT = """
    subject_id = $1 OR actor_id = $1 OR actor_email = $2 OR strpos(lower(changes::text), $2) > 0
"""


async def email_hash(conn: asyncpg.Connection, email: str) -> str:
    """HMAC-SHA256 of the normalised e-mail with this install's salt (table erasure_salt)."""
    salt = await conn.fetchval("SELECT salt FROM erasure_salt WHERE id = 1")
    if salt is None:
        raise CoachDbError("The erasure salt is missing: run `coach-db deploy` (migration 7).")
    key = email.strip().lower().encode()
    return hmac.new(str(salt).encode(), key, hashlib.sha256).hexdigest()


async def erase_user(
    url: str, email: str, erased_by: str, actor: tuple[int, str] | None = None
) -> Erasure:
    """Delete the person with all their sessions and messages, redact the audit rows about
    them, and write an erasure receipt, in one transaction. `actor`: the staff member (id,
    e-mail) when the studio does it, recorded in the audit trail."""
    conn = await connect_raw(url, application_name="coach-db erase-user")
    try:
        async with conn.transaction():
            return await erase_user_in(conn, email, erased_by, actor)
    finally:
        await conn.close()


async def erase_user_in(
    conn: asyncpg.Connection,
    email: str,
    erased_by: str,
    actor: tuple[int, str] | None = None,
) -> Erasure:
    """erase_user on a connection whose transaction the caller holds."""
    user = await _user(conn, email, lock=True)
    user_id, address = user["id"], user["email"]
    counts = await counts_in(conn, user_id, address)
    await conn.execute("SET LOCAL coach_db.erasure = 'on'")
    # Field names stay (what was changed, when, by whom); their values go.
    await conn.execute(
        f"""UPDATE audit_event SET
                changes = (SELECT jsonb_object_agg(key, to_jsonb($3::text))
                             FROM jsonb_each(changes)),
                subject_id = NULL,
                actor_id = CASE WHEN actor_id = $1 OR actor_email = $2 THEN NULL
                                ELSE actor_id END,
                actor_email = CASE WHEN actor_id = $1 OR actor_email = $2 THEN NULL
                                   ELSE actor_email END
             WHERE {_AUDIT_ABOUT}""",
        user_id,
        address,
        ERASED,
    )
    await conn.execute(
        "UPDATE erasure_receipt SET erased_by = $2 WHERE strpos(lower(erased_by), $1) > 0",
        address,
        ERASED,
    )
    await conn.execute('DELETE FROM "user" WHERE id = $1', user_id)
    digest = await email_hash(conn, address)
    receipt_id = await conn.fetchval(
        "INSERT INTO erasure_receipt (email_hash, counts, erased_by) VALUES ($1, $2, $3)"
        " RETURNING id",
        digest,
        dumps(counts),
        erased_by,
    )
    actor_id, actor_email = actor if actor else (None, None)
    # The erasure itself, about nobody any more (subject NULL).
    await conn.execute(
        "INSERT INTO audit_event (actor_id, actor_email, action, model, row_id, changes)"
        " VALUES ($1, $2, 'erase', 'user', $3, $4)",
        actor_id,
        actor_email,
        user_id,
        dumps({"erasure_receipt": [None, receipt_id]}),
    )
    return Erasure(user_id, counts, receipt_id, digest)


async def list_erasures(
    url: str, email: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest erasure receipts (of one e-mail, when given: its salted hash is compared)."""
    conn = await connect_raw(url, application_name="coach-db erasures")
    try:
        where, args = "", []
        if email is not None:
            where, args = "WHERE email_hash = $2", [await email_hash(conn, email)]
        rows = await conn.fetch(
            "SELECT id, erased_at, erased_by, email_hash, counts::text FROM erasure_receipt"
            f" {where} ORDER BY id DESC LIMIT $1",
            limit,
            *args,
        )
        return [{**dict(r), "counts": json.loads(r["counts"])} for r in rows]
    finally:
        await conn.close()


# --- export-transcripts -----------------------------------------------------------------------


@dataclass
class TranscriptFilter:
    scenario: str | None = None
    since: date | None = None
    status: SessionStatus | None = None

    def where(self) -> tuple[str, list[Any]]:
        """SQL conditions on sessions `s` / scenarios `sc`, and their arguments from $1."""
        conditions: list[str] = []
        args: list[Any] = []
        if self.scenario is not None:
            args.append(self.scenario)
            conditions.append(f"sc.slug = ${len(args)}")
        if self.since is not None:
            args.append(datetime(self.since.year, self.since.month, self.since.day, tzinfo=UTC))
            conditions.append(f"s.started_at >= ${len(args)}")
        if self.status is not None:
            args.append(self.status.value)
            conditions.append(f"s.status = ${len(args)}")
        return " AND ".join(conditions) or "TRUE", args


async def export_transcripts(
    url: str,
    out: IO[str],
    filters: TranscriptFilter,
    progress: Callable[[int | None, int], None] | None = None,
    scrubber: Callable[[str], str] = scrub,
) -> dict[str, int]:
    """One JSON line per session: scenario slug and version, a pseudonym of its user (HMAC with
    a key made for this export and never stored), status, the month it started, its duration,
    and the messages in order (offsets in seconds from its start) with PII scrubbed from their
    content. No database id or exact time is written. `progress(total, sessions_done)` is
    called along the way."""
    key = secrets.token_bytes(32)
    conn = await connect_raw(url, application_name="coach-db export-transcripts")
    counts = {"sessions": 0, "messages": 0}
    try:
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            if filters.scenario is not None and not await conn.fetchval(
                "SELECT 1 FROM scenario WHERE slug = $1", filters.scenario
            ):
                raise CoachDbError(f"No scenario with the slug {filters.scenario!r}.")
            where, args = filters.where()
            total = await conn.fetchval(
                "SELECT count(*) FROM conversation_session s"
                f" JOIN scenario sc ON sc.id = s.scenario_id WHERE {where}",
                *args,
            )
            if progress:
                progress(total, 0)
            async for batch in _session_batches(conn, where, args):
                await _write_batch(conn, batch, key, out, counts, scrubber)
                if progress:
                    progress(total, counts["sessions"])
    finally:
        await conn.close()
    return counts


async def _session_batches(
    conn: asyncpg.Connection, where: str, args: list[Any]
) -> AsyncIterator[list[asyncpg.Record]]:
    """The matching sessions in id order, BATCH at a time (keyset: each query is bounded)."""
    after = 0
    n = len(args)
    query = f"""
        SELECT s.id, s.user_id, sc.slug, {SESSION_VERSION_SQL} AS scenario_version, s.status,
               s.started_at, s.ended_at, s.duration_seconds
          FROM conversation_session s JOIN scenario sc ON sc.id = s.scenario_id
         WHERE {where} AND s.id > ${n + 1}
         ORDER BY s.id LIMIT {BATCH}"""
    while batch := await conn.fetch(query, *args, after):
        yield batch
        after = batch[-1]["id"]


async def _write_batch(
    conn: asyncpg.Connection,
    sessions: list[asyncpg.Record],
    key: bytes,
    out: IO[str],
    counts: dict[str, int],
    scrubber: Callable[[str], str],
) -> None:
    by_id = {s["id"]: s for s in sessions}
    query = """
        SELECT session_id, role, content, "timestamp" FROM message
         WHERE session_id = ANY($1::int[]) ORDER BY session_id, "timestamp", id"""
    pending = iter(sessions)
    current: int | None = None
    first = True

    started: datetime | None = None

    def open_session(session: asyncpg.Record) -> None:
        nonlocal started
        # No database id and no exact time leave (issue 18): the month the session started,
        # its length and each message's offset in whole seconds from its start.
        pseudonym = hmac.new(key, str(session["user_id"]).encode(), hashlib.sha256).hexdigest()
        started = session["started_at"]
        head = {
            "scenario": session["slug"],
            "scenario_version": session["scenario_version"],
            "participant": pseudonym[:32],
            "status": session["status"],
            "started_month": started.strftime("%Y-%m") if started else None,
            "duration_seconds": session["duration_seconds"],
        }
        out.write(dumps(head)[:-1] + ',"messages":[')
        counts["sessions"] += 1

    async for row in conn.cursor(query, list(by_id), prefetch=BATCH):
        if row["session_id"] != current:
            if current is not None:
                out.write("]}\n")
            # Sessions without messages (ids in between) are lines too.
            for session in pending:
                open_session(session)
                if session["id"] == row["session_id"]:
                    break
                out.write("]}\n")
            current, first = row["session_id"], True
        offset = None
        if started is not None and row["timestamp"] is not None:
            offset = round((row["timestamp"] - started).total_seconds())
        message = {
            "role": row["role"],
            "content": scrubber(row["content"]),
            "offset_seconds": offset,
        }
        out.write(("" if first else ",") + dumps(message))
        first = False
        counts["messages"] += 1
    if current is not None:
        out.write("]}\n")
    for session in pending:
        open_session(session)
        out.write("]}\n")
