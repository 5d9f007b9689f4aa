"""A person's data and research exports (issue 13): export, erasure with receipts, transcripts.

Every function streams through a server-side cursor, so memory stays flat however many
messages a person or the database holds. Erasure is one transaction and one database function,
erase_person() (migration 8, SECURITY DEFINER): the user, their sessions and messages are
deleted, the audit trail's rows about them are redacted (the only change its triggers allow,
and only to the schema's owner), and an erasure receipt without personal data is written, its
e-mail hash keyed by a secret kept outside the database (COACH_DB_ERASURE_KEY_FILE).
"""

from __future__ import annotations

import contextlib
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

from coach_db.config import get_settings, remember_secret
from coach_db.db import connect_raw
from coach_db.errors import CoachDbError
from coach_db.models import SessionStatus
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
    def __init__(self, email: str, receipt: asyncpg.Record | None = None) -> None:
        said = f"No user with the e-mail {email.strip().lower()!r}"
        if receipt is None:
            super().__init__(f"{said}.")
        else:
            super().__init__(
                f"{said}: it was erased on {receipt['erased_at']:%Y-%m-%d} (erasure receipt "
                f"#{receipt['id']}; `coach-db erasures --email EMAIL` lists its receipts)."
            )


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
        # Erased already? The receipt is found by the e-mail's keyed hash (or, for receipts from
        # before migration 8, the database salt's), never the e-mail.
        hashes = []
        with contextlib.suppress(CoachDbError):  # no key configured: only old receipts match
            hashes.append(email_hash(email))
        if legacy := await legacy_email_hash(conn, email):
            hashes.append(legacy)
        receipt = await conn.fetchrow(
            "SELECT id, erased_at FROM erasure_receipt WHERE email_hash = ANY($1::text[])"
            " ORDER BY id DESC LIMIT 1",
            hashes,
        )
        raise UserNotFound(email, receipt)
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


# counts_in(limit=...): each count stops at $2, over the rows erasure_counts() counts. Each way
# an audit row names the person has an index (migration 12), so this reads only their rows
# (counts_in prices sequential scans out).
LIMITED_COUNTS = """SELECT
    (SELECT count(*) FROM "user" WHERE id = $1) AS "user",
    (SELECT count(*) FROM (SELECT 1 FROM conversation_session WHERE user_id = $1
       LIMIT $2) AS s) AS sessions,
    (SELECT count(*) FROM (SELECT 1 FROM message m JOIN conversation_session s
       ON s.id = m.session_id WHERE s.user_id = $1 LIMIT $2) AS m) AS messages,
    (SELECT count(*) FROM (SELECT 1 FROM audit_event a, "user" u
       WHERE u.id = $1 AND (a.subject_id = $1 OR a.actor_id = $1
             OR lower(a.actor_email) = u.email OR audit_names(a.changes, u.email))
       LIMIT $2) AS a) AS audit_events_redacted"""


async def counts_in(
    conn: asyncpg.Connection, user_id: int, email: str = "", limit: int | None = None
) -> dict[str, int]:
    """What erasing user #user_id deletes and redacts. Exact without `limit`: the database's
    erasure_counts(), the same count erase_person() records on the receipt. With `limit` (a
    confirmation page: the person with most sessions had 830,000 messages to count) each count
    stops at limit + 1, over the same rows. `email` is unused (the database reads the person's
    e-mail itself); kept for callers of the earlier signature."""
    if limit is None:
        counts = await conn.fetchval("SELECT erasure_counts($1)::text", user_id)
        return {k: int(v) for k, v in json.loads(counts).items()}
    # Through the indexes, never a sequential scan: with statistics, PostgreSQL expected
    # thousands of audit rows for someone with 492, took the LIMIT to end a scan early, and
    # tested every event of the trail (82,390 at ~6.5 µs: 560 ms at 10M).
    async with conn.transaction(readonly=True):
        await conn.execute("SET LOCAL enable_seqscan = off")
        row = await conn.fetchrow(LIMITED_COUNTS, user_id, int(limit) + 1)
    assert row is not None
    return {k: int(v) for k, v in row.items()}


MIN_KEY_LENGTH = 32
KEY_HELP = (
    "set COACH_DB_ERASURE_KEY_FILE to a file holding a long random secret (`openssl rand -hex 32"
    " > erasure_key.txt`), or COACH_DB_ERASURE_KEY to the secret itself. Keep it outside the "
    "database and keep it for good: `coach-db erasures --email` needs the same key"
)


def erasure_key() -> bytes:
    """The key of the receipts' e-mail hashes, from COACH_DB_ERASURE_KEY_FILE (its first line)
    or COACH_DB_ERASURE_KEY; a clear error when neither holds a long enough secret."""
    settings = get_settings()
    if settings.coach_db_erasure_key_file:
        path = Path(settings.coach_db_erasure_key_file)
        try:
            lines = path.read_text().splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else "not text"
            raise CoachDbError(
                f"Can't read the erasure key file {path} (COACH_DB_ERASURE_KEY_FILE): {reason}."
            ) from None
        key, where = (lines[0].strip() if lines else ""), f"the file {path}"
    else:
        key, where = (settings.coach_db_erasure_key or "").strip(), "COACH_DB_ERASURE_KEY"
    if not key:
        raise CoachDbError(f"Erasure receipts need their key: {KEY_HELP}.")
    if len(key) < MIN_KEY_LENGTH:
        raise CoachDbError(
            f"The erasure key in {where} is too short (at least {MIN_KEY_LENGTH} characters): "
            f"{KEY_HELP}."
        )
    remember_secret(key)
    return key.encode()


def email_hash(email: str, key: bytes | None = None) -> str:
    """HMAC-SHA256 of the normalised e-mail with the erasure key (outside the database)."""
    message = email.strip().lower().encode()
    return hmac.new(key or erasure_key(), message, hashlib.sha256).hexdigest()


async def legacy_email_hash(conn: asyncpg.Connection, email: str) -> str | None:
    """The hash receipts written before migration 8 hold: HMAC with erasure_salt (in the
    database). None when the salt is gone or this role may not read it (a runtime role)."""
    try:
        salt = await conn.fetchval("SELECT salt FROM erasure_salt WHERE id = 1")
    except (asyncpg.InsufficientPrivilegeError, asyncpg.UndefinedTableError):
        return None
    if salt is None:
        return None
    return hmac.new(str(salt).encode(), email.strip().lower().encode(), hashlib.sha256).hexdigest()


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
    """erase_user on a connection whose transaction the caller holds: the one entry point of
    the studio and the CLI.

    The database does the work (erase_person(), migration 8): the runtime role cannot redact
    the trail any other way. A studio erasure (`actor`: the staff member's id and e-mail) is
    recorded as `studio: staff #<id>`, never the e-mail; `erased_by` names a CLI run.
    """
    digest = email_hash(email)  # before anything: a missing key changes nothing
    user = await _user(conn, email, lock=True)
    actor_id, actor_email = actor if actor else (None, None)
    try:
        done = await conn.fetchval(
            "SELECT erase_person($1, $2, $3, $4, $5)::text",
            user["id"],
            digest,
            erased_by,
            actor_id,
            actor_email,
        )
    except asyncpg.InvalidParameterValueError as exc:
        raise CoachDbError(f"Not erased: {exc}") from None
    result = json.loads(done)
    counts = {k: int(v) for k, v in result["counts"].items()}
    return Erasure(user["id"], counts, result["receipt_id"], digest)


async def list_erasures(
    url: str, email: str | None = None, limit: int = 100
) -> list[dict[str, Any]]:
    """The newest erasure receipts (of one e-mail, when given: its keyed hash is compared)."""
    conn = await connect_raw(url, application_name="coach-db erasures")
    try:
        where, args = "", []
        if email is not None:
            # Receipts since migration 8 by the external key; earlier ones by the old salt.
            legacy = await legacy_email_hash(conn, email)
            where = (
                "WHERE (email_hash_key = 'external key' AND email_hash = $2)"
                " OR (email_hash_key = 'database salt' AND email_hash = $3)"
            )
            args = [email_hash(email), legacy]
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
