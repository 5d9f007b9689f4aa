"""`coach-db deploy`'s migration lock: one deploy at a time, a bounded wait, and behind PgBouncer.

PgBouncer (Debian's `pgbouncer`, `.ci/run` installs it) is started by the tests on a free port
in transaction pooling mode in front of the test server.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import asyncpg
import pytest

from coach_db.db import asyncpg_dsn
from coach_db.migrations import DEPLOY_LOCK_KEY, migration_files
from tests.processes import IN_CI, ROOT, subprocess_env
from tests.throwaway import PGBOUNCER, ThrowawayPgBouncer

CreateDatabase = Callable[[], Awaitable[str]]


def deploy_env(url: str, **extra: str) -> dict[str, str]:
    return subprocess_env(url, **extra)


async def deploy(url: str, *args: str, **env: str) -> tuple[int | None, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "coach_db",
        "deploy",
        *args,
        env=deploy_env(url, **env),
        cwd=ROOT,
        stderr=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.DEVNULL,
    )
    # A guard against a hang (the bug this file is about), not a timing assertion.
    _, err = await asyncio.wait_for(proc.communicate(), timeout=240)
    return proc.returncode, err.decode()


def applied_now(stderr: str) -> int:
    return int(stderr.rsplit("(", 1)[1].split()[0])


async def applied_versions(url: str) -> list[str]:
    conn = await asyncpg.connect(asyncpg_dsn(url), statement_cache_size=0)
    try:
        if await conn.fetchval("SELECT to_regclass('aerich')") is None:
            return []
        return [r["version"] for r in await conn.fetch("SELECT version FROM aerich ORDER BY id")]
    finally:
        await conn.close()


@asynccontextmanager
async def lock_held(url: str) -> AsyncIterator[None]:
    """Hold the deploy lock the way a deploy does (an open transaction), from another client."""
    conn = await asyncpg.connect(asyncpg_dsn(url), statement_cache_size=0)
    try:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", DEPLOY_LOCK_KEY)
            yield
    finally:
        await conn.close()


def with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@pytest.fixture(scope="module")
def pgbouncer(server_url: str) -> Iterator[str]:
    """A PgBouncer in transaction mode in front of the test server; yields its server URL."""
    if not Path(PGBOUNCER).exists():
        message = "pgbouncer is not installed (apt-get install pgbouncer; .ci/run does)"
        if IN_CI:  # CI must run it: fail rather than skip
            pytest.fail(message)
        pytest.skip(message)
    parts = urlsplit(server_url)
    query = dict(parse_qsl(parts.query))
    host = parts.hostname or query.get("host", "127.0.0.1")
    server_port = parts.port or int(query.get("port", 5432))
    where = {"*": f"host={host} port={server_port}"}
    with ThrowawayPgBouncer(where, user=parts.username or "postgres") as bouncer:
        yield bouncer.url("postgres")


def through(pgbouncer: str, direct_url: str) -> str:
    """The database of `direct_url`, reached through PgBouncer (no prepared statements)."""
    database = urlsplit(direct_url).path.lstrip("/")
    return with_database(pgbouncer, database) + "?statement_cache_size=0"


# --- direct -----------------------------------------------------------------------------------


async def test_a_held_lock_gives_a_clear_timeout_message(create_database: CreateDatabase) -> None:
    url = await create_database()
    async with lock_held(url):
        code, err = await deploy(url, "--lock-timeout", "1")
    assert code == 1, err
    assert "Waited 1 s for the migration lock, held by" in err
    assert "Nothing was applied" in err and "Traceback" not in err
    assert await applied_versions(url) == []


async def test_deploy_lock_timeout_comes_from_the_environment(
    create_database: CreateDatabase,
) -> None:
    url = await create_database()
    async with lock_held(url):
        code, err = await deploy(url, DEPLOY_LOCK_TIMEOUT="0.5")
    assert code == 1 and "Waited 0.5 s for the migration lock" in err, err


# --- through PgBouncer in transaction mode ---------------------------------------------------


async def test_two_deploys_through_pgbouncer_migrate_once_and_release_the_lock(
    pgbouncer: str, create_database: CreateDatabase
) -> None:
    url = through(pgbouncer, await create_database())
    outputs = await asyncio.gather(deploy(url), deploy(url))
    assert [code for code, _ in outputs] == [0, 0], outputs
    assert sorted(applied_now(err) for _, err in outputs) == [0, len(migration_files())]
    assert await applied_versions(url) == migration_files()
    # The lock ended with the deploys: a session-level lock would stay on a pooled server
    # connection, and this deploy would wait for it forever.
    code, err = await deploy(url)
    assert (code, applied_now(err)) == (0, 0), err


async def test_a_held_lock_times_out_through_pgbouncer(
    pgbouncer: str, create_database: CreateDatabase
) -> None:
    url = through(pgbouncer, await create_database())
    async with lock_held(url):
        code, err = await deploy(url, "--lock-timeout", "1")
    assert code == 1, err
    assert "Waited 1 s for the migration lock, held by" in err
    assert await applied_versions(url) == []
    code, err = await deploy(url)  # and once it is released, the deploy goes through
    assert (code, applied_now(err)) == (0, len(migration_files())), err
