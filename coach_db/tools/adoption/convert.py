"""Adopt a Prisma-made database in one transaction: coach-db's migrations, then the rows."""

from __future__ import annotations

import importlib.util
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from coach_db.config import APP_LABEL
from coach_db.db import connect_raw
from coach_db.errors import CoachDbError
from coach_db.migrations import DEPLOY_LOCK_KEY, _lock_holder, migration_files
from coach_db.migrations import migrations_dir as default_migrations
from coach_db.tools.adoption.plan import SESSION_FACTS, Plan, inspect, q, utc
from coach_db.tools.adoption.shape import ARCHIVE, CHOICE, HISTORY, JSON, TABLES, TIME, Table

ADOPT_APPLICATION_NAME = "coach-db adopt"
# How long adoption waits for the Node services' open transactions before it gives up.
TABLE_LOCK_TIMEOUT_MS = 10_000


class AdoptRefused(CoachDbError):
    """Adoption cannot proceed; `plan` says why (None: refused before inspecting)."""

    def __init__(self, message: str, plan: Plan | None = None) -> None:
        self.plan = plan
        super().__init__(message)


@dataclass(frozen=True)
class Adopted:
    plan: Plan
    rows: dict[str, int]
    kept_data: bool
    seconds: dict[str, float]  # per step, for the benchmark


async def dry_run(url: str, show: int = 10) -> Plan:
    """The plan, read in one snapshot without locking the Prisma tables; nothing is written."""
    conn = await connect_raw(url, application_name=ADOPT_APPLICATION_NAME)
    try:
        tx = conn.transaction(isolation="repeatable_read")
        await tx.start()
        try:
            return await inspect(conn, show, lock=False)
        finally:
            await tx.rollback()
    finally:
        await conn.close()


async def adopt(
    url: str, show: int = 10, keep_data: bool = False, migrations: Path | None = None
) -> Adopted:
    """Convert in place, all or nothing, under the deploy lock; AdoptRefused when it cannot."""
    migrations = migrations or default_migrations()
    files = migration_files(migrations)
    began = time.monotonic()
    conn = await connect_raw(url, application_name=ADOPT_APPLICATION_NAME)
    try:
        async with conn.transaction():
            if not await conn.fetchval("SELECT pg_try_advisory_xact_lock($1)", DEPLOY_LOCK_KEY):
                holder = await _lock_holder(url)
                raise AdoptRefused(
                    f"Another `coach-db deploy` or `coach-db adopt` holds the migration lock: "
                    f"{holder}. Nothing was changed; run adopt again once it has finished."
                )
            await conn.execute(f"SET LOCAL lock_timeout = '{TABLE_LOCK_TIMEOUT_MS}ms'")
            try:
                plan = await inspect(conn, show, lock=True)
            except asyncpg.LockNotAvailableError:
                raise AdoptRefused(
                    "The Prisma tables are in use (a transaction held them for "
                    f"{TABLE_LOCK_TIMEOUT_MS // 1000} s): stop the services that write to "
                    "this database, then run adopt again. Nothing was changed."
                ) from None
            await conn.execute("SET LOCAL lock_timeout = 0")
            if not plan.ok:
                raise AdoptRefused(
                    plan.refusal or "The dry run found rows adoption cannot decide about.",
                    plan,
                )
            seconds = {"inspect": time.monotonic() - began}
            await _archive(conn, plan)
            began = time.monotonic()
            await _apply_migrations(conn, migrations, files)
            seconds["migrations"] = time.monotonic() - began
            rows = await _move_rows(conn, plan, seconds)
            began = time.monotonic()
            await _continue_sequences(conn)
            await _record(conn, plan, rows, keep_data)
            if not keep_data:
                await _drop_archived_data(conn, plan)
            seconds["finish"] = time.monotonic() - began
        return Adopted(plan, rows, keep_data, seconds)
    finally:
        await conn.close()


async def _archive(conn: asyncpg.Connection, plan: Plan) -> None:
    """Move the Prisma tables (their sequences, indexes and constraints go along) and enums."""
    await conn.execute(f"CREATE SCHEMA {ARCHIVE}")
    await conn.execute(
        f"COMMENT ON SCHEMA {ARCHIVE} IS 'The Prisma package''s migration history "
        "(and, with --keep-prisma-data, its tables), kept by coach-db adopt.'"
    )
    if plan.has_history:
        await conn.execute(f"ALTER TABLE {q(HISTORY)} SET SCHEMA {ARCHIVE}")
    for table in TABLES:
        await conn.execute(f"ALTER TABLE {q(table.prisma)} SET SCHEMA {ARCHIVE}")
    for enum in sorted(set(plan.enum_types)):
        await conn.execute(f"ALTER TYPE {q(enum)} SET SCHEMA {ARCHIVE}")


def _load(path: Path) -> Any:
    spec = importlib.util.spec_from_file_location(f"coach_db_adopt_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise CoachDbError(f"Cannot read the migration {path}.")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


async def _apply_migrations(conn: asyncpg.Connection, migrations: Path, files: list[str]) -> None:
    """Each migration's upgrade SQL and its `aerich` row, as `coach-db deploy` writes them.

    The same files and the same rows as Aerich's upgrade (aerich/__init__.py `_upgrade`), but
    on this connection, so they commit or roll back with the rows.
    """
    from aerich.utils import decompress_dict

    for name in files:
        module = _load(migrations / APP_LABEL / name)
        if not getattr(module, "RUN_IN_TRANSACTION", True):
            raise CoachDbError(
                f"Migration {name} cannot run in a transaction, so adoption cannot be all or "
                "nothing: adopt with a coach-db version before it, then `coach-db deploy`."
            )
        await conn.execute(await module.upgrade(None))
        state = getattr(module, "MODELS_STATE", None)
        content = decompress_dict(state) if state else {}
        await conn.execute(
            'INSERT INTO "aerich" ("version", "app", "content") VALUES ($1, $2, $3::jsonb)',
            name,
            APP_LABEL,
            json.dumps(content),
        )


def _expressions(plan: Plan, table: Table) -> tuple[list[str], list[str]]:
    """Target columns and the SELECT expressions that fill them from the archived table."""
    targets: list[str] = []
    values: list[str] = []
    seen = plan.columns[table.prisma]
    for column in table.columns:
        if column.prisma not in seen:
            continue  # an optional column this variant lacks: the database default
        ref = f"p.{q(column.prisma)}"
        if table.prisma == "ConversationSession":
            if column.prisma in ("totalMessages", "durationSeconds"):
                continue  # the triggers count the messages and compute the duration
            if column.prisma in ("status", "startedAt", "endedAt"):
                ref = f"f.{column.target}"  # decided once, in the plan's session facts
        elif column.kind == TIME:
            ref = utc(plan, table.prisma, column.prisma, "p")
        elif column.kind == CHOICE:
            ref = f"lower({ref}::text)"
        elif column.kind == JSON:
            ref = f"coalesce({ref}::jsonb, '{{}}'::jsonb)"
        elif table.prisma == "User" and column.prisma == "email":
            ref = f"lower(btrim({ref}))"
        targets.append(q(column.target))
        values.append(ref)
    return targets, values


async def _move_rows(
    conn: asyncpg.Connection, plan: Plan, seconds: dict[str, float]
) -> dict[str, int]:
    """INSERT … SELECT per table, parents first, through coach-db's triggers and CHECKs."""
    # Past messages of ended sessions are history being imported, which the triggers allow
    # under this flag (migration 3); the plan already moved each end to its last message.
    await conn.execute("SET LOCAL coach_db.backfill = 'on'")
    # The index builds after the bulk insert sort in memory rather than in many disk runs.
    await conn.execute("SET LOCAL maintenance_work_mem = '512MB'")
    rows: dict[str, int] = {}
    for table in TABLES:
        targets, values = _expressions(plan, table)
        source = f"{ARCHIVE}.{q(table.prisma)} p"
        if table.prisma == "ConversationSession":
            source += f" JOIN {SESSION_FACTS} f USING (id)"
        insert = (
            f"INSERT INTO {q(table.target)} ({', '.join(targets)}) "
            f"SELECT {', '.join(values)} FROM {source}"
        )
        began = time.monotonic()
        if table.prisma in ("Message", "ConversationSession"):
            rows[table.target] = await _bulk_insert(conn, table.target, insert, seconds)
        else:
            rows[table.target] = int((await conn.execute(insert)).split()[-1])
        seconds[table.target] = time.monotonic() - began
        await conn.execute(f"ANALYZE {q(table.target)}")
    return rows


async def _bulk_insert(
    conn: asyncpg.Connection, table: str, insert: str, seconds: dict[str, float]
) -> int:
    """The insert with the table's indexes and foreign keys built afterwards, from the
    migrations' own definitions (pg_get_indexdef, pg_get_constraintdef): one sort per index
    and one join per foreign key instead of millions of insertions and lookups. The primary
    key goes too when no foreign key points at it. CHECKs and triggers stay: every row still
    passes them on the way in.
    """
    constraints = await conn.fetch(
        "SELECT c.conname, pg_get_constraintdef(c.oid) AS def, c.contype::text AS kind "
        "FROM pg_constraint c WHERE c.conrelid = $1::regclass AND (c.contype = 'f' "
        "OR (c.contype = 'p' AND NOT EXISTS (SELECT 1 FROM pg_constraint r "
        "WHERE r.confrelid = c.conrelid AND r.contype = 'f'))) "
        "ORDER BY c.contype DESC, c.conname",  # p before f
        q(table),
    )
    indexes = await conn.fetch(
        "SELECT i.indexrelid::regclass::text AS name, pg_get_indexdef(i.indexrelid) AS def "
        "FROM pg_index i WHERE i.indrelid = $1::regclass "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid) "
        "AND obj_description(i.indexrelid, 'pg_class') IS NULL",
        q(table),
    )
    for constraint in constraints:
        await conn.execute(f"ALTER TABLE {q(table)} DROP CONSTRAINT {q(constraint['conname'])}")
    for index in indexes:
        await conn.execute(f"DROP INDEX {index['name']}")
    began = time.monotonic()
    count = int((await conn.execute(insert)).split()[-1])
    seconds[f"insert {table}"] = time.monotonic() - began
    rebuilt = [(c["conname"], f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(c['conname'])} "
                + c["def"]) for c in constraints if c["kind"] == "p"]  # fmt: skip
    rebuilt += [(i["name"], i["def"]) for i in indexes]
    rebuilt += [(c["conname"], f"ALTER TABLE {q(table)} ADD CONSTRAINT {q(c['conname'])} "
                 + c["def"]) for c in constraints if c["kind"] == "f"]  # fmt: skip
    for name, sql in rebuilt:
        began = time.monotonic()
        await conn.execute(sql)
        seconds[f"build {name}"] = time.monotonic() - began
    return count


async def _continue_sequences(conn: asyncpg.Connection) -> None:
    """Each id sequence continues after the highest id, and after every id Prisma handed out
    (a deleted row's id is never given again, as it was not under Prisma)."""
    for table in TABLES:
        old = await conn.fetchval(
            "SELECT pg_get_serial_sequence($1, 'id')", f"{ARCHIVE}.{q(table.prisma)}"
        )
        handed_out = None
        if old is not None:
            handed_out = await conn.fetchval(
                f"SELECT CASE WHEN is_called THEN last_value END FROM {old}"
            )
        new = await conn.fetchval("SELECT pg_get_serial_sequence($1, 'id')", q(table.target))
        highest = await conn.fetchval(f"SELECT max(id) FROM {q(table.target)}")
        last = max(v for v in (highest, handed_out, 0) if v is not None)
        if last:
            await conn.execute("SELECT setval($1::regclass, $2)", new, last)


async def _record(
    conn: asyncpg.Connection, plan: Plan, rows: dict[str, int], keep_data: bool
) -> None:
    """The audit trail's first row: this database was adopted, from what, with the counts."""
    fixed = {f"{f.table}: {f.problem}": f.count for f in plan.findings if not f.refuses}
    last = plan.history[-1]["migration_name"] if plan.history else None
    changes = {
        "adopted_from": "the Prisma package",
        "prisma_migrations": len(plan.history),
        "last_prisma_migration": last,
        "rows": rows,
        "fixed": fixed,
        "variants": "; ".join(plan.variants),  # text: the studio shows a pair as before/after
        "archive": f"{ARCHIVE} ({'history and data' if keep_data else 'history only'})",
    }
    await conn.execute(
        'INSERT INTO "audit_event" ("action", "model", "changes") '
        "VALUES ('create', 'database', $1::jsonb)",
        json.dumps(changes),
    )


async def _drop_archived_data(conn: asyncpg.Connection, plan: Plan) -> None:
    """Only the history stays: the rows are in coach-db's tables now (and in the backup)."""
    names = ", ".join(f"{ARCHIVE}.{q(t.prisma)}" for t in reversed(TABLES))
    await conn.execute(f"DROP TABLE {names}")
    for enum in sorted(set(plan.enum_types)):
        await conn.execute(f"DROP TYPE {ARCHIVE}.{q(enum)}")
