"""Migration state: drift check, applied and pending migrations, deploy under an advisory lock."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from coach_db.config import APP_LABEL, get_settings, tortoise_config
from coach_db.db import connect_raw
from coach_db.errors import CoachDbError, DeployLockTimeout, MigrationsMissing, PendingMigrations

ROOT = Path(__file__).resolve().parents[2]
# The committed migrations: migrations/ of a checkout is the source (Aerich's `location`); the
# wheel carries a copy inside the package (pyproject's force-include), which an install uses.
SOURCE_MIGRATIONS = ROOT / "migrations"
# The wheel puts the migration files beside this module (coach_db/migrations/models).
PACKAGED_MIGRATIONS = Path(__file__).resolve().parent
TORTOISE_ORM_PATH = "coach_db.config.TORTOISE_ORM"
# Aerich needs a URL to build its config even offline; it never connects to this one.
OFFLINE_URL = "postgres://offline@127.0.0.1:1/offline"


@dataclass(frozen=True)
class Drift:
    """What `aerich migrate --offline` would write: empty `sql` means no drift."""

    sql: str
    output: str

    @property
    def clean(self) -> bool:
        return not self.sql

    @property
    def upgrade_sql(self) -> str:
        """The SQL of the migration's upgrade(): the difference, without Aerich's MODELS_STATE."""
        statements = []
        for node in ast.walk(ast.parse(self.sql)):
            if isinstance(node, ast.AsyncFunctionDef | ast.FunctionDef) and node.name == "upgrade":
                for ret in ast.walk(node):
                    if isinstance(ret, ast.Return) and isinstance(ret.value, ast.Constant):
                        statements.append(textwrap.dedent(str(ret.value.value)).strip())
        return "\n".join(statements)


def migrations_dir() -> Path:
    """Where the commands read the migrations: the package's copy if installed, else the source."""
    if (PACKAGED_MIGRATIONS / APP_LABEL).is_dir():
        return PACKAGED_MIGRATIONS
    if SOURCE_MIGRATIONS.is_dir() or (ROOT / "pyproject.toml").is_file():
        return SOURCE_MIGRATIONS
    return PACKAGED_MIGRATIONS  # neither: the error names where an install keeps them


def check_drift(
    migrations: Path | None = None,
    tortoise_orm: str = TORTOISE_ORM_PATH,
    pythonpath: Path | None = None,
) -> Drift:
    """Diff the models against the last migration file without a database or touching the repo.

    Runs the real `aerich migrate --offline` on a copy of `migrations`, so a model change
    without a migration shows up exactly as Aerich would write it.
    """
    migrations = migrations or migrations_dir()
    migration_files(migrations)  # a clear error when there are none
    with tempfile.TemporaryDirectory(prefix="coach-db-drift-") as tmp:
        work = Path(tmp)
        shutil.copytree(migrations, work / "migrations")
        before = {p.name for p in (work / "migrations").rglob("*.py")}
        (work / "pyproject.toml").write_text(
            f'[tool.aerich]\ntortoise_orm = "{tortoise_orm}"\nlocation = "./migrations"\n'
            'src_folder = "./."\n'
        )
        env = {**os.environ, "DATABASE_URL": OFFLINE_URL}
        if pythonpath is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(pythonpath), env.get("PYTHONPATH")])
            )
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "aerich",
                "migrate",
                "--offline",
                "--no-input",
                "--name",
                "drift",
            ],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
        output = (result.stdout + result.stderr).strip()
        if result.returncode != 0:
            raise RuntimeError(f"aerich migrate --offline failed:\n{output}")
        new = [p for p in (work / "migrations").rglob("*.py") if p.name not in before]
        sql = "\n".join(p.read_text() for p in new)
        return Drift(sql=sql, output=output)


# --- applied / pending / deploy, against a live database ------------------------------------

# pg_advisory_xact_lock key held while migrating, so containers starting together migrate once.
DEPLOY_LOCK_KEY = 0x636F6163_68646200  # "coachdb\0"
DEPLOY_APPLICATION_NAME = "coach-db deploy"
# Tortoise's pool settings in our URLs; asyncpg would send them to the server as settings.


@dataclass(frozen=True)
class MigrationStatus:
    applied: list[str]
    pending: list[str]


def migration_files(migrations: Path | None = None) -> list[str]:
    """The committed migration files, in the order Aerich applies them.

    None at all is an error (MigrationsMissing), never "up to date": an install without its
    migrations would otherwise report an empty database as current.
    """
    migrations = migrations or migrations_dir()
    files = [
        p.name for p in (migrations / APP_LABEL).glob("*.py") if p.stem.split("_")[0].isdigit()
    ]
    if not files:
        raise MigrationsMissing(migrations / APP_LABEL)
    return sorted(files, key=lambda name: int(name.split("_")[0]))


async def migration_status(url: str, migrations: Path | None = None) -> MigrationStatus:
    """Which committed migrations the database has applied, and which it has not."""
    files = migration_files(migrations)
    conn = await connect_raw(url)
    try:
        if await conn.fetchval("SELECT to_regclass('aerich')") is None:
            applied: list[str] = []
        else:
            rows = await conn.fetch(
                "SELECT version FROM aerich WHERE app = $1 ORDER BY id", APP_LABEL
            )
            applied = [row["version"] for row in rows]
    finally:
        await conn.close()
    return MigrationStatus(applied=applied, pending=[f for f in files if f not in applied])


async def deploy(
    url: str, migrations: Path | None = None, lock_timeout: float | None = None
) -> list[str]:
    """Apply pending migrations under the deploy lock; returns the ones this call applied.

    The lock is a transaction-level advisory lock held by an open transaction on a connection
    of its own: it holds behind PgBouncer in transaction mode (which pins the server connection
    to an open transaction, where a session-level lock stays on a pooled server connection
    whatever the client does) and ends with the transaction, also when the process dies.
    Waiting for it is bounded by `lock_timeout` seconds (default DEPLOY_LOCK_TIMEOUT); then
    DeployLockTimeout says who holds it. Needs two connections: the lock's and Aerich's.
    """
    from aerich import Command  # imported here: it patches asyncio policy on import

    migrations = migrations or migrations_dir()
    migration_files(migrations)  # none at all: an error before connecting
    if lock_timeout is None:
        lock_timeout = get_settings().deploy_lock_timeout
    lock = await connect_raw(url, application_name=DEPLOY_APPLICATION_NAME)
    try:
        async with lock.transaction():
            # SET LOCAL: the timeout ends with this transaction, also behind PgBouncer.
            await lock.execute(f"SET LOCAL lock_timeout = '{max(1, round(lock_timeout * 1000))}ms'")
            try:
                await lock.execute("SELECT pg_advisory_xact_lock($1)", DEPLOY_LOCK_KEY)
            except asyncpg.LockNotAvailableError:
                raise DeployLockTimeout(lock_timeout, await _lock_holder(url)) from None
            if not (await migration_status(url, migrations)).pending:
                return []
            async with Command(
                tortoise_config(url), app=APP_LABEL, location=str(migrations)
            ) as cmd:
                applied: list[str] = await cmd.upgrade(run_in_transaction=True)
                return applied
    finally:
        await lock.close()


async def _lock_holder(url: str) -> str:
    """Who holds the deploy lock, for the timeout message (best effort)."""
    try:
        conn = await connect_raw(url)
    except Exception:  # only a better message is at stake
        return "unknown"
    try:
        row = await conn.fetchrow(
            "SELECT a.pid, a.application_name, a.client_addr::text AS addr, "
            "date_trunc('second', now() - a.xact_start)::text AS held "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid = ($1::bigint >> 32)::oid AND l.objid = ($1::bigint & 4294967295)::oid",
            DEPLOY_LOCK_KEY,
        )
    except asyncpg.PostgresError:
        return "unknown"
    finally:
        await conn.close()
    if row is None:
        return "nobody now (it was just released: run it again)"
    name = row["application_name"] or "a client"
    where = row["addr"] or "a local socket"
    return f"{name} (server pid {row['pid']}, from {where}, for {row['held']})"


async def make_migration(url: str, name: str, migrations: Path | None = None) -> str | None:
    """`aerich migrate`, refused while the database is behind the committed files.

    Returns the new file's name, or None when the models have not changed.
    """
    migrations = migrations or migrations_dir()
    status = await migration_status(url, migrations)
    if status.pending:
        raise PendingMigrations(status.pending)
    from aerich import Command

    # Offline: the database is up to date, so the last file is the truth, and Aerich cannot
    # replace a committed file with a merged one.
    cmd = Command(tortoise_config(OFFLINE_URL), app=APP_LABEL, location=str(migrations))
    try:
        await cmd.init(offline=True)
        return await cmd.migrate(name, no_input=True, offline=True) or None
    finally:
        await cmd.aclose()


# Objects in the current schema that no extension owns (an extension's tables, functions and
# types go with the extension, and the extension stays).
_NOT_FROM_EXTENSION = """
    NOT EXISTS (SELECT 1 FROM pg_depend d
                WHERE d.classid = {catalog}::regclass AND d.objid = {oid} AND d.deptype = 'e')
"""


def _relations(relkinds: str, also: str = "") -> str:
    """The current schema's relations of these pg_class.relkind values, no extension's."""
    return (
        "SELECT c.oid::regclass::text FROM pg_class c "
        f"WHERE c.relkind IN ({relkinds}) {also}"
        "AND c.relnamespace = current_schema()::regnamespace AND "
        + _NOT_FROM_EXTENSION.format(catalog="'pg_class'", oid="c.oid")
    )


_PROJECT_OBJECTS = {
    "VIEW": _relations("'v'"),
    "MATERIALIZED VIEW": _relations("'m'"),
    "TABLE": _relations("'r', 'p'", "AND NOT c.relispartition "),
    "SEQUENCE": _relations("'S'"),
    "ROUTINE": "SELECT p.oid::regprocedure::text FROM pg_proc p WHERE p.prokind IN ('f', 'p') "
    "AND p.pronamespace = current_schema()::regnamespace AND "
    + _NOT_FROM_EXTENSION.format(catalog="'pg_proc'", oid="p.oid"),
    "TYPE": "SELECT t.oid::regtype::text FROM pg_type t WHERE t.typtype IN ('e', 'd', 'c') "
    "AND (t.typrelid = 0 OR (SELECT relkind FROM pg_class WHERE oid = t.typrelid) = 'c') "
    "AND t.typnamespace = current_schema()::regnamespace AND "
    + _NOT_FROM_EXTENSION.format(catalog="'pg_type'", oid="t.oid"),
}


async def drop_project_objects(conn: asyncpg.Connection) -> list[str]:
    """Drop every table, view, sequence, routine and type of the current schema, in one
    transaction; returns what was dropped.

    The schema itself stays, with its owner, grants and default privileges, and so do the
    extensions installed in it: the same roles can use the database as before (`DROP SCHEMA
    public CASCADE` lost all of that, and needs to own the extensions).
    """
    dropped: list[str] = []
    try:
        async with conn.transaction():
            for kind, query in _PROJECT_OBJECTS.items():
                names = [row[0] for row in await conn.fetch(query)]
                if names:
                    # The names come from regclass/regprocedure/regtype: already quoted.
                    await conn.execute(f"DROP {kind} IF EXISTS {', '.join(names)} CASCADE")
                    dropped += names
    except asyncpg.InsufficientPrivilegeError as exc:
        raise CoachDbError(
            f"Nothing was dropped: {exc}. Reset as the role that owns the objects of the schema "
            "(or remove the others first)."
        ) from None
    return dropped
