"""A multi-host DATABASE_URL follows the primary: a standby promoted by hand, or a primary turned
read-only, while writers retry with idempotency keys (throwaway servers, synchronous replication).
The Patroni cluster's fault tests are in test_patroni.py."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from tortoise import connections

import coach_db
from coach_db import DatabaseConnectionLost, DatabaseUnreachable, add_message
from coach_db.db import forget_pooled_connections
from tests.conftest import run_aerich
from tests.factories import make_session
from tests.failover_load import Load, check_nothing_lost_or_doubled, run_writers
from tests.processes import free_port
from tests.throwaway import ThrowawayPostgres, ThrowawayReplica

pytestmark = pytest.mark.once
FIGURES: dict[str, object] = {}


@dataclass
class Pair:
    primary: ThrowawayPostgres
    standby: ThrowawayReplica

    def url(self, *servers: ThrowawayPostgres, **query: str) -> str:
        hosts = ",".join(f"127.0.0.1:{s.port}" for s in servers)
        extra = "&".join(f"{k}={v}" for k, v in {"timeout": "3", **query}.items())
        return f"postgres://postgres@{hosts}/coach?{extra}"


def coach(server: ThrowawayPostgres) -> str:
    return f"postgres://postgres@127.0.0.1:{server.port}/coach"


def _kill_server(server: ThrowawayPostgres) -> None:
    """kill -9 the postmaster and every process of it: the machine is gone, not shut down."""
    pid = int((server.pgdata / "postmaster.pid").read_text().split()[0])
    children = [
        int(p.name) for p in Path("/proc").iterdir() if p.name.isdigit() and _parent(p) == pid
    ]
    for victim in (pid, *children):
        with contextlib.suppress(ProcessLookupError):
            os.kill(victim, signal.SIGKILL)


def _parent(proc: Path) -> int | None:
    try:
        return int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


@pytest.fixture
def pair() -> Iterator[Pair]:
    """A primary with one synchronous standby: a commit is acknowledged once the standby has it."""
    with ThrowawayPostgres() as primary:

        async def execute(*statements: str) -> None:
            conn = await asyncpg.connect(primary.url)
            try:
                for statement in statements:
                    await conn.execute(statement)
            finally:
                await conn.close()

        asyncio.run(execute("CREATE DATABASE coach"))
        migrated = run_aerich("upgrade", url=f"postgres://postgres@127.0.0.1:{primary.port}/coach")
        assert migrated.returncode == 0, migrated.stdout + migrated.stderr
        with ThrowawayReplica(primary) as standby:
            # Only now: with no standby, a synchronous commit would wait forever.
            sync = "ALTER SYSTEM SET synchronous_standby_names = '*'"
            asyncio.run(execute(sync, "SELECT pg_reload_conf()"))
            yield Pair(primary, standby)


@pytest.fixture
async def connected(pair: Pair, package_url: str) -> AsyncIterator[Pair]:
    """The package's pool on `dead host,standby,primary` (read-write): it must find the primary.
    The suite's database again after."""
    dead = free_port()
    url = pair.url(pair.standby, pair.primary).replace("@", f"@127.0.0.1:{dead},", 1)
    await coach_db.init_db(url)
    try:
        yield pair
    finally:
        await coach_db.init_db(package_url)


async def _sync_standby(pair: Pair) -> None:
    conn = await asyncpg.connect(pair.primary.url)
    try:
        for _ in range(200):
            if await conn.fetchval(
                "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'"
            ):
                return
            await asyncio.sleep(0.05)
        raise AssertionError("the standby never became synchronous")
    finally:
        await conn.close()


async def test_a_multi_host_url_writes_to_the_primary_past_a_dead_host_and_a_standby(
    connected: Pair,
) -> None:
    """Also: a URL of standbys only is a clear error (no primary among them)."""
    session = await make_session()
    message = await add_message(session, "user", "Hello", idempotency_key="one")
    conn = await asyncpg.connect(coach(connected.primary))
    try:
        stored = await conn.fetchval("SELECT id FROM message WHERE idempotency_key = 'one'")
    finally:
        await conn.close()
    assert stored == message.id
    with pytest.raises(DatabaseUnreachable, match="target_session_attrs=read-write"):
        await coach_db.init_db(connected.url(connected.standby, connected.standby))


class SilentHost:
    """A TCP port that accepts connections and never says a word: a host cut off by the network
    as a client sees it (no refusal, no reply), without root. Counts the connections it got."""

    def __init__(self) -> None:
        self.connections = 0
        self._server: asyncio.Server | None = None

    async def _silent(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        await reader.read()  # until the client gives up
        writer.close()

    async def __aenter__(self) -> int:
        self._server = await asyncio.start_server(self._silent, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()


async def test_a_host_that_never_answers_does_not_keep_the_pool_from_the_primary(
    pair: Pair, package_url: str
) -> None:
    """libpq's connect_timeout is per host; asyncpg's covered the whole host list, so a silent
    first host (a node cut off) used it all and the pool never reached the primary. Each host
    has its own timeout now, and a host that timed out is tried last for a while."""
    silent = SilentHost()
    async with silent as port:
        url = pair.url(pair.standby, pair.primary, timeout="1").replace(
            "@", f"@127.0.0.1:{port},", 1
        )
        await coach_db.init_db(url)
        try:
            session = await make_session()
            first = await add_message(session, "user", "past a silent host", idempotency_key="s")
            # Every new connection of the pool: the silent host is not waited for again.
            await forget_pooled_connections(connections.get("default"))
            again = await add_message(session, "user", "once more", idempotency_key="t")
        finally:
            await coach_db.init_db(package_url)
    assert first.id != again.id
    assert silent.connections == 1


async def test_writers_with_keys_survive_a_standby_promoted_by_hand(connected: Pair) -> None:
    """kill -9 the primary, promote the standby by hand: no acknowledged write lost or doubled,
    every writer continues by itself, on the same DATABASE_URL."""
    await _sync_standby(connected)
    sessions = [await make_session() for _ in range(8)]
    load = Load([s.id for s in sessions])
    writers = await run_writers(load)
    loop = asyncio.get_running_loop()
    await asyncio.sleep(1.5)
    _kill_server(connected.primary)
    await asyncio.sleep(1.0)  # the operator notices
    started = time.monotonic()
    await asyncio.to_thread(
        connected.standby._pg_ctl,
        ["-w", "promote"],
        pgdata=connected.standby.pgdata,
        user=connected.standby.user,
        timeout=60,
    )
    promoted = loop.time()
    FIGURES["hand promotion: pg_ctl promote took (s)"] = round(time.monotonic() - started, 2)
    while load.acked_since(promoted) < 8 * 20:
        assert loop.time() - promoted < 30, "the writers did not continue on the new primary"
        await asyncio.sleep(0.1)
    load.stop.set()
    await asyncio.wait_for(asyncio.gather(*writers), 30)
    figures = await check_nothing_lost_or_doubled(load, coach(connected.standby))
    assert figures["rows"] == figures["acknowledged"]
    # Includes the operator's 1 s between the kill and the promotion.
    FIGURES["hand promotion: longest write wait (s)"] = round(load.longest_wait(), 2)
    FIGURES["hand promotion"] = figures
    print(FIGURES)


async def test_a_primary_turned_read_only_is_left_for_the_new_one(connected: Pair) -> None:
    """A demoted node refuses writes as read-only: DatabaseConnectionLost(maybe_written=False),
    and the pool drops its connections, so the next write finds the promoted standby."""
    session = await make_session()
    await add_message(session, "user", "before", idempotency_key="a")
    conn = await asyncpg.connect(connected.primary.url)
    try:
        await conn.execute("ALTER SYSTEM SET default_transaction_read_only = on")
        await conn.execute("SELECT pg_reload_conf()")
    finally:
        await conn.close()
    await asyncio.sleep(0.3)
    with pytest.raises(DatabaseConnectionLost) as caught:
        await add_message(session, "user", "during", idempotency_key="b")
    assert caught.value.maybe_written is False
    assert "read-only" in str(caught.value)
    await asyncio.to_thread(
        connected.standby._pg_ctl,
        ["-w", "promote"],
        pgdata=connected.standby.pgdata,
        user=connected.standby.user,
        timeout=60,
    )
    again = await add_message(session, "user", "during", idempotency_key="b")
    conn = await asyncpg.connect(coach(connected.standby))
    try:
        assert await conn.fetchval("SELECT id FROM message WHERE idempotency_key = 'b'") == again.id
    finally:
        await conn.close()
