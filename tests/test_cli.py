"""The `coach-db` command: deploy, status, migrate, reset, createstaff, generate."""

from __future__ import annotations

import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from coach_db import StaffRole, User
from coach_db.migrations import migration_files
from coach_db.passwords import verify_password
from tests.processes import coach_db_cmd, subprocess_env

CreateDatabase = Callable[[], Awaitable[str]]
TYPE_NAMES = [
    "UserRead",
    "UserCreate",
    "ScenarioRead",
    "ScenarioCreate",
    "ScenarioVersionRead",
    "SessionRead",
    "MessageRead",
    "MessageCreate",
    "UserWithSessions",
]


async def applied_versions(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return [r["version"] for r in await conn.fetch("SELECT version FROM aerich ORDER BY id")]
    finally:
        await conn.close()


async def test_status_exit_codes_follow_pending_migrations(create_database: CreateDatabase) -> None:
    url = await create_database()
    behind = coach_db_cmd("status", url=url)
    assert behind.returncode == 1
    assert "pending: apply the migrations with `coach-db deploy`" in behind.stdout
    deployed = coach_db_cmd("deploy", url=url)
    assert deployed.returncode == 0, deployed.stderr
    current = coach_db_cmd("status", url=url)
    assert current.returncode == 0, current.stdout + current.stderr
    assert "Up to date." in current.stdout
    assert "pending" not in current.stdout


async def test_two_deploys_started_together_migrate_once(create_database: CreateDatabase) -> None:
    url = await create_database()
    env = subprocess_env(url)

    async def deploy() -> tuple[int | None, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "coach_db", "deploy", env=env, stderr=asyncio.subprocess.PIPE
        )
        _, err = await proc.communicate()
        return proc.returncode, err.decode()

    outputs = await asyncio.gather(deploy(), deploy())
    assert [code for code, _ in outputs] == [0, 0], outputs
    applied_now = sorted(err.split("(")[-1].split()[0] for _, err in outputs)
    assert applied_now == ["0", str(len(migration_files()))]
    assert await applied_versions(url) == migration_files()


def test_deploy_without_database_url_is_one_clear_line() -> None:
    result = coach_db_cmd("deploy", url=None)
    assert result.returncode == 1
    assert result.stderr.strip().startswith("Error: DATABASE_URL is not set.")
    assert "Traceback" not in result.stderr


def test_unreachable_server_is_one_line_and_masks_the_password() -> None:
    result = coach_db_cmd("status", url="postgres://bob:s3cret@127.0.0.1:1/coach")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "Error: Can't reach the database server at 127.0.0.1:1 "
        "(postgres://bob:***@127.0.0.1:1/coach): connection refused. "
        "Is PostgreSQL running there, and does DATABASE_URL point at it?"
    ]


def test_debug_shows_the_traceback() -> None:
    result = coach_db_cmd("--debug", "status", url="postgres://bob@127.0.0.1:1/coach")
    assert "Traceback" in result.stderr


async def test_migrate_is_refused_while_the_database_is_behind(
    create_database: CreateDatabase,
) -> None:
    url = await create_database()
    before = migration_files()
    result = coach_db_cmd("migrate", "--name", "anything", url=url)
    assert result.returncode == 1
    assert "behind the committed migrations" in result.stderr
    assert migration_files() == before


def test_migrate_on_an_up_to_date_database_reports_no_changes(database_url: str) -> None:
    before = migration_files()
    result = coach_db_cmd("migrate", "--name", "nothing", url=database_url)
    assert result.returncode == 0, result.stderr
    assert "No changes detected" in result.stderr
    assert migration_files() == before


async def test_reset_refuses_without_confirmation(database_url: str) -> None:
    user = await User.create(email="kept@example.com", username="Kept")
    result = coach_db_cmd("reset", url=database_url)
    assert result.returncode == 1
    assert "confirm with --yes" in result.stderr
    assert await User.exists(pk=user.pk)  # nothing was erased


def test_reset_refuses_a_remote_host_even_with_yes() -> None:
    result = coach_db_cmd("reset", "--yes", url="postgres://bob:s3cret@db.example.com/coach")
    assert result.returncode == 1
    assert "not a local database" in result.stderr and "--force" in result.stderr
    assert "s3cret" not in result.stderr


async def test_reset_erases_data_and_migrates_again(
    create_migrated_database: CreateDatabase,
) -> None:
    url = await create_migrated_database()
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO \"user\" (email, username) VALUES ('x@example.com', 'X')")
        result = coach_db_cmd("reset", "--yes", "--no-seed", url=url)
        assert result.returncode == 0, result.stderr
        assert await conn.fetchval('SELECT count(*) FROM "user"') == 0
    finally:
        await conn.close()
    assert await applied_versions(url) == migration_files()


async def test_createstaff_hashes_the_password_and_makes_staff(database_url: str) -> None:
    await User.create(email="helper@example.com", username="Helper")
    result = coach_db_cmd(
        "createstaff",
        "Helper@Example.com",
        "--password-stdin",
        url=database_url,
        stdin="s3cret-pw\n",
    )
    assert result.returncode == 0, result.stderr
    user = await User.get(email="helper@example.com")
    assert user.is_staff
    assert verify_password("s3cret-pw", user.password_hash)
    assert "s3cret-pw" not in result.stdout + result.stderr


async def test_createstaff_reads_the_password_from_a_secret_file(
    database_url: str, tmp_path: Path
) -> None:
    secret = tmp_path / "studio_admin_password"
    secret.write_text("from-a-docker-secret\n")  # as `echo ... > file` writes it
    result = coach_db_cmd(
        "createstaff", "boss@example.com", "--password-file", str(secret), url=database_url
    )
    assert result.returncode == 0, result.stderr
    user = await User.get(email="boss@example.com")
    assert user.is_staff and verify_password("from-a-docker-secret", user.password_hash)
    assert "from-a-docker-secret" not in result.stdout + result.stderr


async def test_createstaff_role_defaults_to_admin_and_keeps_an_existing_staff_role(
    database_url: str,
) -> None:
    """A new staff user is an admin (the command makes the first one); --role sets another;
    running it again without --role (a new password) keeps the role."""

    def createstaff(*args: str) -> None:
        result = coach_db_cmd(
            "createstaff", *args, "--password-stdin", url=database_url, stdin="s3cret-pw\n"
        )
        assert result.returncode == 0, result.stderr

    createstaff("first@example.com")
    createstaff("reader@example.com", "--role", "viewer")
    assert (await User.get(email="first@example.com")).role == StaffRole.ADMIN
    assert (await User.get(email="reader@example.com")).role == StaffRole.VIEWER
    createstaff("reader@example.com")
    assert (await User.get(email="reader@example.com")).role == StaffRole.VIEWER
    createstaff("reader@example.com", "--role", "Editor")
    assert (await User.get(email="reader@example.com")).role == StaffRole.EDITOR
    wrong = coach_db_cmd(
        "createstaff",
        "x@example.com",
        "--role",
        "owner",
        "--password-stdin",
        url=database_url,
        stdin="s3cret-pw\n",
    )
    assert wrong.returncode == 1
    assert (
        wrong.stderr.strip() == "Error: --role must be one of viewer, editor, admin, not 'owner'."
    )
    assert not await User.exists(email="x@example.com")


def test_createstaff_password_file_errors_are_one_line(database_url: str, tmp_path: Path) -> None:
    missing = coach_db_cmd(
        "createstaff", "a@example.com", "--password-file", str(tmp_path / "nope"), url=database_url
    )
    assert missing.returncode == 1
    assert missing.stderr.strip().startswith("Error: Can't read the password file")
    both = coach_db_cmd(
        "createstaff",
        "a@example.com",
        "--password-stdin",
        "--password-file",
        str(tmp_path / "nope"),
        url=database_url,
    )
    assert both.returncode == 1 and "not both" in both.stderr


async def test_createstaff_refuses_a_short_password(database_url: str) -> None:
    result = coach_db_cmd(
        "createstaff", "a@example.com", "--password-stdin", url=database_url, stdin="short\n"
    )
    assert result.returncode == 1
    assert "at least 8 characters" in result.stderr
    assert not await User.exists(email="a@example.com")


def test_generate_writes_json_schemas_without_password_hash(tmp_path: Path) -> None:
    result = coach_db_cmd("generate", "--out", str(tmp_path), url=None)
    assert result.returncode == 0, result.stderr
    files = {p.name for p in tmp_path.glob("*.schema.json")}
    # The eight types and the sessions nested in UserWithSessions.
    assert files == {f"{name}.schema.json" for name in [*TYPE_NAMES, "SessionWithHistory"]}
    for path in tmp_path.glob("*.json"):
        assert "password_hash" not in path.read_text()
        json.loads(path.read_text())


@pytest.mark.once  # first CI pass only: no server: help text only
def test_every_command_has_help() -> None:
    for command in ["check", "status", "deploy", "migrate", "reset", "createstaff", "generate"]:
        result = coach_db_cmd(command, "--help", url=None)
        assert result.returncode == 0 and "Usage" in result.stdout, command


async def test_reset_leaves_the_schema_usable_by_the_same_roles(server_url: str) -> None:
    """A non-superuser application role owns the database; a reader role has grants and
    default privileges; an extension lives in the schema. After `coach-db reset` (run as the
    application role) all of that is still there and works on the new tables."""
    suffix = uuid.uuid4().hex[:10]
    app_role, reader, database = f"coach_app_{suffix}", f"coach_ro_{suffix}", f"coach_rs_{suffix}"
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE ROLE "{app_role}" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE')
    await admin.execute(f'CREATE ROLE "{reader}" LOGIN NOSUPERUSER')
    await admin.execute(f'CREATE DATABASE "{database}" OWNER "{app_role}"')
    owner_url = urlunsplit(urlsplit(server_url)._replace(path=f"/{database}"))
    parts = urlsplit(owner_url)
    host = parts.netloc.rpartition("@")[2]
    app_url = urlunsplit(parts._replace(netloc=f"{app_role}@{host}"))
    reader_url = urlunsplit(parts._replace(netloc=f"{reader}@{host}"))
    try:
        setup = await asyncpg.connect(owner_url)  # as the superuser, like a DBA
        try:
            await setup.execute("CREATE EXTENSION citext SCHEMA public")
            await setup.execute(f'GRANT USAGE ON SCHEMA public TO "{reader}"')
            await setup.execute(
                f'ALTER DEFAULT PRIVILEGES FOR ROLE "{app_role}" IN SCHEMA public '
                f'GRANT SELECT ON TABLES TO "{reader}"'
            )
            schema_owner = await setup.fetchval(
                "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'public'"
            )
        finally:
            await setup.close()
        deployed = coach_db_cmd("deploy", url=app_url)
        assert deployed.returncode == 0, deployed.stderr
        result = coach_db_cmd("reset", "--yes", "--no-seed", url=app_url)
        assert result.returncode == 0, result.stderr
        assert await applied_versions(app_url) == migration_files()

        after = await asyncpg.connect(owner_url)
        try:
            assert (
                await after.fetchval(
                    "SELECT extnamespace::regnamespace::text FROM pg_extension "
                    "WHERE extname = 'citext'"
                )
                == "public"
            )
            assert (
                await after.fetchval(
                    "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'public'"
                )
                == schema_owner
            )
        finally:
            await after.close()
        app = await asyncpg.connect(app_url)
        try:  # the application role writes, as before
            await app.execute(
                "INSERT INTO \"user\" (email, username) VALUES ('r@example.com', 'R')"
            )
            assert await app.fetchval("SELECT 'A'::citext = 'a'::citext")
        finally:
            await app.close()
        read = await asyncpg.connect(reader_url)
        try:  # the reader's grants came back with the new tables
            assert await read.fetchval('SELECT email FROM "user"') == "r@example.com"
        finally:
            await read.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        for role in (app_role, reader):
            await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        await admin.close()


async def test_reset_of_objects_the_role_does_not_own_is_one_line_and_drops_nothing(
    server_url: str, create_database: CreateDatabase
) -> None:
    suffix = uuid.uuid4().hex[:10]
    role = f"coach_app_{suffix}"
    url = await create_database()
    admin = await asyncpg.connect(server_url)
    await admin.execute(f'CREATE ROLE "{role}" LOGIN NOSUPERUSER')
    try:
        owner = await asyncpg.connect(url)
        try:
            await owner.execute(f'GRANT CREATE, USAGE ON SCHEMA public TO "{role}"')
            await owner.execute("CREATE TABLE someone_elses (id int)")
        finally:
            await owner.close()
        parts = urlsplit(url)
        role_url = urlunsplit(parts._replace(netloc=f"{role}@{parts.netloc.rpartition('@')[2]}"))
        assert coach_db_cmd("deploy", url=role_url).returncode == 0
        result = coach_db_cmd("reset", "--yes", "--no-seed", url=role_url)
        assert result.returncode == 1
        assert result.stderr.startswith("Error: Nothing was dropped: must be owner of table")
        assert "Traceback" not in result.stderr
        assert await applied_versions(url) == migration_files()  # the role's tables stayed
    finally:
        await admin.close()
        cleanup = await asyncpg.connect(url)
        try:
            await cleanup.execute(f'DROP OWNED BY "{role}" CASCADE')
        finally:
            await cleanup.close()
        admin = await asyncpg.connect(server_url)
        try:
            await admin.execute(f'DROP ROLE IF EXISTS "{role}"')
        finally:
            await admin.close()


async def test_every_command_offers_the_same_fix_for_a_database_without_its_migrations(
    create_database: CreateDatabase,
) -> None:
    """One wording, whichever command meets the problem (it used to be three different ones)."""
    fix = "apply the migrations with `coach-db deploy`"
    empty = await create_database()
    no_such = urlunsplit(urlsplit(empty)._replace(path=f"/coach_test_{uuid.uuid4().hex[:8]}"))
    commands = {
        "status": (("status",), empty),
        "migrate": (("migrate", "--name", "x"), empty),
        "seed": (("seed",), empty),
        "seed, no database": (("seed",), no_such),
    }
    results = await asyncio.gather(  # together: each costs an interpreter start-up
        *(asyncio.to_thread(coach_db_cmd, *args, url=url) for args, url in commands.values())
    )
    for command, result in zip(commands, results, strict=True):
        output = result.stdout + result.stderr
        assert result.returncode == 1, (command, output)
        assert fix in output, (command, output)
        assert "aerich upgrade" not in output, (command, output)
