"""Inspect a Prisma-made database: what adoption recognises, what it fixes, what it refuses."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from coach_db.limits import MAX_CONTENT_CHARS, MAX_METADATA_BYTES, MAX_METADATA_DEPTH
from coach_db.models import MessageRole, SessionStatus
from coach_db.tools.adoption.shape import ACCEPTED, ARCHIVE, CHOICE, HISTORY, TABLES, TIME, Table

STATUSES = tuple(s.value for s in SessionStatus)
ROLES = tuple(r.value for r in MessageRole)
# Tables only coach-db makes: one of them means the database is coach-db's already.
COACH_DB_TABLES = ("aerich", "user", "scenario", "conversation_session", "message")
# The session facts adoption needs twice (plan and conversion): computed once per transaction.
SESSION_FACTS = "pg_temp.adopt_session"


@dataclass
class Finding:
    """Rows breaking one coach-db invariant, and what adoption does about them."""

    table: str
    problem: str
    action: str
    count: int
    ids: list[int]
    refuses: bool


@dataclass
class ColumnSeen:
    name: str
    type: str
    nullable: bool
    enum: str | None  # the enum type's name when Prisma made one


@dataclass
class Plan:
    """What `coach-db adopt --dry-run` prints; `refusal` set means nothing can be adopted."""

    refusal: str | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    columns: dict[str, dict[str, ColumnSeen]] = field(default_factory=dict)
    variants: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    enum_types: list[str] = field(default_factory=list)
    has_history: bool = False
    unreadable: bool = False  # a column is missing or of a type the row checks cannot read

    @property
    def ok(self) -> bool:
        return self.refusal is None and not any(f.refuses for f in self.findings)

    def refuse(self, table: str, problem: str, fix: str, ids: list[int] | None = None) -> None:
        self.findings.append(Finding(table, problem, fix, len(ids or []), ids or [], True))


def q(name: str) -> str:
    """A quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def utc(plan: Plan, table: str, column: str, alias: str = "") -> str:
    """The column as a timestamptz instant: Prisma's TIMESTAMP(3) holds UTC wall time.

    `AT TIME ZONE 'UTC'` names the zone, so the server's and the database's TimeZone
    setting play no part (a bare cast to timestamptz would read it in that zone).
    """
    ref = f"{alias}.{q(column)}" if alias else q(column)
    if "without time zone" in plan.columns[table][column].type:
        return f"({ref} AT TIME ZONE 'UTC')"
    return ref


async def inspect(
    conn: asyncpg.Connection,
    show: int = 10,
    lock: bool = False,
    schema_sql: str = "current_schema()",
) -> Plan:
    """Read the catalogue and the rows; called inside a transaction that the caller ends.

    With `lock`, the Prisma tables are locked against writes first (adoption); without it
    (the dry run) the Node services keep writing and the caller's snapshot is what is read.
    """
    plan = Plan()
    relations = {
        row["relname"]: row["relkind"]
        for row in await conn.fetch(
            "SELECT c.relname, c.relkind FROM pg_class c "
            f"WHERE c.relnamespace = {schema_sql}::regnamespace "
            "AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
        )
    }
    if await conn.fetchval(f"SELECT to_regnamespace({_lit(ARCHIVE)})") is not None:
        plan.refusal = (
            f"A schema {ARCHIVE} already exists: this database was adopted before, or holds "
            f"a schema of that name. Look at it; if it is not needed, DROP SCHEMA {ARCHIVE}."
        )
        return plan
    if any(name in relations for name in COACH_DB_TABLES):
        plan.refusal = (
            "This database is already coach-db's (it has coach-db's tables: "
            + ", ".join(n for n in COACH_DB_TABLES if n in relations)
            + "). Nothing to adopt: `coach-db status` tells whether it is up to date, "
            "`coach-db deploy` applies what is pending."
        )
        return plan
    present = [t.prisma for t in TABLES if t.prisma in relations]
    if not present:
        what = "is empty" if not relations else "has none of the Prisma package's tables"
        plan.refusal = (
            f"This database {what} ({', '.join(t.prisma for t in TABLES)}): it was not made "
            "by the Prisma package, so there is nothing to adopt. For a new database run "
            "`coach-db deploy`."
        )
        return plan
    missing = [t.prisma for t in TABLES if t.prisma not in relations]
    if missing:
        plan.refusal = (
            f"Tables {', '.join(missing)} are missing: this is not the Prisma package's "
            "complete schema. Apply its migrations (`prisma migrate deploy`) first, or adopt "
            "a backup of the complete database."
        )
        return plan
    unknown = sorted(set(relations) - {t.prisma for t in TABLES} - {HISTORY})
    if unknown:
        plan.refuse(
            "(schema)",
            f"tables or views coach-db does not know: {', '.join(unknown)}",
            "adoption would leave them behind in a schema it builds from scratch; move them "
            "out first (ALTER TABLE … SET SCHEMA another_schema) or drop them",
        )
    plan.has_history = HISTORY in relations
    await _read_history(conn, plan, plan.has_history)
    await _read_columns(conn, plan, schema_sql)
    await _check_other_objects(conn, plan, schema_sql)
    if plan.unreadable:
        return plan  # the row checks below would fail on a column that is missing or odd
    if lock:
        # Rows that cannot change under the checks and the conversion that follows.
        names = ", ".join(q(t.prisma) for t in TABLES)
        await conn.execute(f"LOCK TABLE {names} IN EXCLUSIVE MODE")
    for table in TABLES:
        plan.counts[table.prisma] = await conn.fetchval(f"SELECT count(*) FROM {q(table.prisma)}")
    await _check_users(conn, plan, show)
    await _check_scenarios(conn, plan, show)
    await _check_messages(conn, plan, show)
    await _check_sessions(conn, plan, show)
    return plan


async def _check_other_objects(conn: asyncpg.Connection, plan: Plan, schema_sql: str) -> None:
    """Functions, free-standing sequences and types that are not the Prisma tables' own:
    adoption builds the schema from scratch, so it refuses what it would leave behind."""
    rows = await conn.fetch(
        f"""
        WITH ext AS (SELECT objid FROM pg_depend WHERE deptype = 'e')
        SELECT 'function ' || p.oid::regprocedure::text FROM pg_proc p
        WHERE p.pronamespace = {schema_sql}::regnamespace AND p.oid NOT IN (SELECT objid FROM ext)
        UNION ALL
        SELECT 'sequence ' || c.oid::regclass::text FROM pg_class c
        WHERE c.relkind = 'S' AND c.relnamespace = {schema_sql}::regnamespace
          AND c.oid NOT IN (SELECT objid FROM ext)
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid
                          AND d.deptype IN ('a', 'i') AND d.refclassid = 'pg_class'::regclass)
        UNION ALL
        SELECT 'type ' || t.oid::regtype::text FROM pg_type t
        WHERE t.typtype IN ('e', 'd') AND t.typnamespace = {schema_sql}::regnamespace
          AND t.oid NOT IN (SELECT objid FROM ext) AND NOT t.typname = ANY($1::text[])
        ORDER BY 1
        """,
        plan.enum_types,
    )
    if rows:
        plan.refuse(
            "(schema)",
            f"objects coach-db does not know: {', '.join(r[0] for r in rows)}",
            "adoption would leave them behind in a schema it builds from scratch; move them "
            "to another schema or drop them first",
        )


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def _read_history(conn: asyncpg.Connection, plan: Plan, exists: bool) -> None:
    if not exists:
        plan.variants.append(f"no {HISTORY} table (the schema was made without prisma migrate)")
        return
    rows = await conn.fetch(
        f"SELECT migration_name, finished_at, rolled_back_at, applied_steps_count "
        f"FROM {q(HISTORY)} ORDER BY started_at, migration_name"
    )
    plan.history = [dict(row) for row in rows]
    failed = [
        r["migration_name"]
        for r in rows
        if r["finished_at"] is None and r["rolled_back_at"] is None
    ]
    if failed:
        plan.refuse(
            HISTORY,
            f"migrations that started and never finished: {', '.join(failed)}",
            "resolve them with the Prisma package first (`prisma migrate resolve`), so the "
            "schema is the one its history says",
        )


async def _read_columns(conn: asyncpg.Connection, plan: Plan, schema_sql: str) -> None:
    rows = await conn.fetch(
        "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS type, "
        "NOT a.attnotnull AS nullable, "
        "CASE WHEN t.typtype = 'e' THEN t.typname END AS enum "
        "FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid "
        "JOIN pg_type t ON t.oid = a.atttypid "
        f"WHERE c.relnamespace = {schema_sql}::regnamespace AND a.attnum > 0 "
        "AND NOT a.attisdropped AND c.relname = ANY($1::text[]) ORDER BY c.relname, a.attnum",
        [t.prisma for t in TABLES],
    )
    for row in rows:
        plan.columns.setdefault(row["relname"], {})[row["attname"]] = ColumnSeen(
            row["attname"], row["type"], row["nullable"], row["enum"]
        )
    for table in TABLES:
        seen = plan.columns.get(table.prisma, {})
        known = {c.prisma for c in table.columns}
        extra = [name for name in seen if name not in known]
        if extra:
            plan.refuse(
                table.prisma,
                f"columns coach-db does not know: {', '.join(extra)}",
                "their values would be lost; copy them elsewhere and drop the columns "
                f'(ALTER TABLE "{table.prisma}" DROP COLUMN …), or keep the database on Prisma',
            )
        for column in table.columns:
            got = seen.get(column.prisma)
            if got is None:
                if not column.optional:
                    plan.unreadable = True
                    plan.refuse(
                        table.prisma,
                        f"column {column.prisma} is missing",
                        "this is not the Prisma package's schema; apply its migrations first",
                    )
                else:
                    plan.variants.append(
                        f"{table.prisma}.{column.prisma} absent: {column.target} "
                        + (
                            "starts at the adoption time"
                            if column.kind == TIME
                            else "recomputed"
                            if table.prisma == "ConversationSession"
                            else "starts at its default"
                        )
                    )
                continue
            _check_type(plan, table, column.prisma, column.kind, got)


def _check_type(plan: Plan, table: Table, name: str, kind: str, got: ColumnSeen) -> None:
    base = got.type.split("(")[0].strip()
    if kind == TIME:
        base = re.sub(r"\(\d+\)", "", got.type)
    if kind == CHOICE and got.enum is not None:
        plan.enum_types.append(got.enum)
        plan.variants.append(f"{table.prisma}.{name} is the Prisma enum {got.enum}")
        return
    if base not in ACCEPTED[kind]:
        plan.unreadable = True
        plan.refuse(
            table.prisma,
            f"column {name} has type {got.type}, not one the Prisma package writes",
            f"convert it to {ACCEPTED[kind][0]} first, or keep the database on Prisma",
        )
        return
    if kind == CHOICE:
        plan.variants.append(f"{table.prisma}.{name} is a String ({got.type})")
    elif kind == TIME and base == "timestamp without time zone":
        if name in ("createdAt", "updatedAt"):
            plan.variants.append(f"{table.prisma}.{name} present ({got.type}, UTC)")
    elif kind == TIME:
        plan.variants.append(f"{table.prisma}.{name} is {got.type} (@db.Timestamptz)")
    elif table.prisma == "Message" and name == "metadata":
        plan.variants.append(f"Message.metadata is Json{'?' if got.nullable else ''} ({got.type})")


async def _report(
    conn: asyncpg.Connection,
    plan: Plan,
    show: int,
    table: str,
    source: str,
    condition: str,
    problem: str,
    action: str,
    refuses: bool,
    count: int | None = None,
) -> None:
    """One invariant: count the rows of `source` where `condition` holds, show the first ids."""
    if count is None:
        count = await conn.fetchval(f"SELECT count(*) FROM {source} WHERE {condition}")
    if not count:
        return
    ids = [
        r[0]
        for r in await conn.fetch(
            f"SELECT id FROM {source} WHERE {condition} ORDER BY id LIMIT {int(show)}"
        )
    ]
    plan.findings.append(Finding(table, problem, action, count, ids, refuses))


async def _check_users(conn: asyncpg.Connection, plan: Plan, show: int) -> None:
    user = q("User")
    email = 'lower(btrim("email"))'
    await _report(
        conn, plan, show, "User", user, f'"email" <> {email}',
        "e-mail not in lower case (or with spaces around it)",
        "stored lower case and trimmed (coach-db compares e-mails case-insensitively)", False,
    )  # fmt: skip
    dup = await conn.fetch(
        f"SELECT array_agg(id ORDER BY id) AS ids FROM {user} GROUP BY {email} "
        f"HAVING count(*) > 1 ORDER BY min(id) LIMIT {int(show)}"
    )
    if dup:
        groups = await conn.fetchval(
            f"SELECT count(*) FROM (SELECT 1 FROM {user} GROUP BY {email} HAVING count(*) > 1) g"
        )
        plan.findings.append(
            Finding(
                "User",
                "users whose e-mails differ only in case or spaces (ids grouped: "
                + "; ".join(",".join(map(str, r["ids"])) for r in dup)
                + ")",
                "merge each group into one user (move its sessions: UPDATE "
                '"ConversationSession" SET "userId" = <kept> WHERE "userId" = <other>; then '
                'DELETE FROM "User" WHERE id = <other>), or change one e-mail',
                groups,
                [r["ids"][0] for r in dup],
                True,
            )
        )
    await _report(
        conn, plan, show, "User", user,
        f"NOT ({email} ~ '^[^@[:space:]]+@[^@[:space:]]+$') OR char_length({email}) > 254",
        "e-mail that is not an address (or longer than 254 characters)",
        "correct or delete these users first", True,
    )  # fmt: skip
    await _report(
        conn, plan, show, "User", user,
        "btrim(\"username\") = '' OR char_length(\"username\") > 100",
        "username blank or longer than 100 characters",
        "give these users a username of 1-100 characters first", True,
    )  # fmt: skip
    await _report(
        conn, plan, show, "User", user, 'char_length("passwordHash") > 255',
        "password hash longer than 255 characters", "set these hashes to NULL first", True,
    )  # fmt: skip


async def _check_scenarios(conn: asyncpg.Connection, plan: Plan, show: int) -> None:
    scenario = q("Scenario")
    await _report(
        conn, plan, show, "Scenario", scenario,
        "NOT (\"slug\" ~ '^[a-z0-9]+(-[a-z0-9]+)*$') OR char_length(\"slug\") > 100",
        "slug not made of lower-case letters, digits and single hyphens (≤ 100)",
        "change these slugs first (the app's URLs use them)", True,
    )  # fmt: skip
    await _report(
        conn, plan, show, "Scenario", scenario,
        "btrim(\"name\") = '' OR char_length(\"name\") > 200 "
        'OR char_length("partnerModel") > 100 OR char_length("coachModel") > 100',
        "name blank or over 200 characters, or a model id over 100",
        "correct these scenarios first", True,
    )  # fmt: skip


async def _check_messages(conn: asyncpg.Connection, plan: Plan, show: int) -> None:
    """All message checks in one pass over the table (it is the big one), ids only if needed."""
    message = q("Message")
    cols = plan.columns["Message"]
    meta = '"metadata"::jsonb'
    size = f"octet_length({meta}::text)"
    checks: list[tuple[str, str, str, bool]] = [
        (
            f'lower("role"::text) NOT IN {ROLES}',
            f"role outside {', '.join(ROLES)}",
            "correct or delete these messages first",
            True,
        ),
        (
            f'lower("role"::text) IN {ROLES} AND "role"::text <> lower("role"::text)',
            "role not in lower case",
            "stored lower case",
            False,
        ),
        ("\"content\" = ''", "empty content", "delete these messages first", True),
        (
            f'char_length("content") > {MAX_CONTENT_CHARS}',
            f"content over {MAX_CONTENT_CHARS:,} characters (coach_db/limits.py)",
            "shorten or delete these messages first (nothing is truncated silently)",
            True,
        ),
        (
            f"\"metadata\" IS NOT NULL AND jsonb_typeof({meta}) <> 'object'",
            "metadata that is not a JSON object",
            "wrap it first: UPDATE \"Message\" SET metadata = jsonb_build_object('value', "
            "metadata) WHERE id IN (…)",
            True,
        ),
        (
            f"{size} > {MAX_METADATA_BYTES} AND {size} - octet_length(regexp_replace("
            f"{meta}::text, '\"(?:[^\"\\\\]|\\\\.)*\"|[^ \"]+', '', 'g')) > {MAX_METADATA_BYTES}",
            f"metadata over {MAX_METADATA_BYTES:,} bytes of compact JSON",
            "trim these messages' metadata first",
            True,
        ),
        (
            f"{size} - octet_length(translate({meta}::text, '{{[', '')) > {MAX_METADATA_DEPTH} "
            f"AND jsonb_path_exists({meta}, 'strict $.**{{{MAX_METADATA_DEPTH} to last}} ? "
            '(@.type() == "object" || @.type() == "array")\')',
            f"metadata nested deeper than {MAX_METADATA_DEPTH}",
            "flatten these messages' metadata first",
            True,
        ),
    ]
    if cols["metadata"].nullable:
        checks.append(('"metadata" IS NULL', "metadata NULL (Json?)", "stored as {}", False))
    if "audioUrl" in cols:
        checks.append(
            (
                'char_length("audioUrl") > 2048',
                "audio URL over 2,048 characters",
                "shorten or clear these URLs first",
                True,
            )
        )
    if not plan.counts["Message"]:
        return
    counts = await conn.fetchrow(
        "SELECT "
        + ", ".join(f"count(*) FILTER (WHERE {c[0]}) AS c{i}" for i, c in enumerate(checks))
        + f" FROM {message}"
    )
    assert counts is not None  # an aggregate always returns its row
    for i, (condition, problem, action, refuses) in enumerate(checks):
        await _report(
            conn, plan, show, "Message", message, condition, problem, action, refuses, counts[i]
        )


async def _check_sessions(conn: asyncpg.Connection, plan: Plan, show: int) -> None:
    """Sessions against their messages, through a temporary table the conversion reuses."""
    message_time = utc(plan, "Message", "timestamp")
    started = utc(plan, "ConversationSession", "startedAt", "s")
    ended = utc(plan, "ConversationSession", "endedAt", "s")
    columns = plan.columns["ConversationSession"]
    old_total = 's."totalMessages"' if "totalMessages" in columns else "NULL::int"
    old_duration = 's."durationSeconds"' if "durationSeconds" in columns else "NULL::int"
    await conn.execute(
        f"""
        CREATE TEMPORARY TABLE adopt_session ON COMMIT DROP AS
        WITH m AS (
            SELECT "sessionId" AS id, count(*) AS n, max({message_time}) AS last_message
            FROM "Message" GROUP BY "sessionId"
        )
        SELECT s.id, lower(s."status"::text) AS status, {started} AS started_at,
               {ended} AS old_ended_at, {old_total} AS old_total,
               {old_duration} AS old_duration, coalesce(m.n, 0) AS total,
               m.last_message,
               CASE WHEN lower(s."status"::text) = 'active' THEN {ended}
                    ELSE greatest({ended}, m.last_message,
                                  CASE WHEN {ended} IS NULL THEN {started} END) END AS ended_at
        FROM "ConversationSession" s LEFT JOIN m USING (id)
        """
    )
    await conn.execute(f"ALTER TABLE {SESSION_FACTS} ADD PRIMARY KEY (id)")
    facts = SESSION_FACTS
    duration = "floor(extract(epoch FROM ended_at - started_at))"
    for condition, problem, action, refuses in [
        (
            f"status NOT IN {STATUSES}",
            f"status outside {', '.join(STATUSES)}",
            "correct these sessions' status first",
            True,
        ),
        (
            f'status IN {STATUSES} AND id IN (SELECT id FROM "ConversationSession" '
            'WHERE "status"::text <> lower("status"::text))',
            "status not in lower case",
            "stored lower case",
            False,
        ),
        (
            "status = 'active' AND old_ended_at IS NOT NULL",
            "active but with an end time",
            "decide per session: set its status to completed or abandoned, or clear endedAt",
            True,
        ),
        (
            "old_ended_at < started_at",
            "ended before it started",
            "correct startedAt or endedAt of these sessions first",
            True,
        ),
        (
            "status <> 'active' AND old_ended_at IS NULL",
            "ended (not active) without an end time",
            "ended at its last message (or its start when it has none)",
            False,
        ),
        (
            "status <> 'active' AND last_message > old_ended_at",
            "a message timestamped after the session ended",
            "end time moved to its last message (and the duration with it)",
            False,
        ),
        (
            "old_total <> total",
            "totalMessages disagrees with its messages",
            "recounted from the messages",
            False,
        ),
        (
            f"old_duration IS DISTINCT FROM CASE WHEN ended_at >= started_at THEN {duration} END"
            + ("" if "durationSeconds" in columns else " AND false"),
            "durationSeconds disagrees with its start and end",
            "recomputed from the start and end, in whole seconds",
            False,
        ),
    ]:
        await _report(conn, plan, show, "ConversationSession", facts, condition, problem, action,
                      refuses)  # fmt: skip
