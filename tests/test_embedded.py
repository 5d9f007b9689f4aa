"""Embedded PostgreSQL and Redis from wheels: found by other commands, stopped, data kept."""

from __future__ import annotations

import asyncio
import os
import socket
from pathlib import Path

import asyncpg
import pytest

from coach_db.db import asyncpg_dsn
from coach_db.home import running_state
from coach_db.tools.embedded import EmbeddedServers
from tests.processes import coach_db_cmd, processes_under

# First CI pass only: each test starts its own embedded servers, the same ones in both passes.
pytestmark = pytest.mark.once


def redis_ping(url: str) -> bytes:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(url.removeprefix("unix://"))
        sock.sendall(b"PING\r\n")
        return sock.recv(64)


async def _statement_statistics(url: str) -> bool:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        preloaded = "pg_stat_statements" in await conn.fetchval("SHOW shared_preload_libraries")
        return preloaded and await conn.fetchval("SELECT count(*) FROM pg_stat_statements") >= 0
    finally:
        await conn.close()


def test_embedded_servers_are_found_stopped_and_keep_their_data(tmp_path: Path) -> None:
    home = tmp_path / "home"
    with EmbeddedServers(home, postgres=True, redis=True) as servers:
        assert servers.database_url and servers.redis_url
        assert redis_ping(servers.redis_url) == b"+PONG\r\n"
        assert running_state(home) is not None
        # Other commands find the database through the state file, without DATABASE_URL.
        deployed = coach_db_cmd("deploy", home=home)
        assert deployed.returncode == 0, deployed.stderr
        assert "applied now" in deployed.stderr
        # The queries view's statistics: this server loads pg_stat_statements.
        assert asyncio.run(_statement_statistics(servers.database_url))
    assert running_state(home) is None
    assert not (home / "state.json").exists()
    assert processes_under(home) == []
    # Without a running studio, commands say what to do.
    missing = coach_db_cmd("status", home=home)
    assert "DATABASE_URL is not set" in missing.stderr and "coach-db studio" in missing.stderr

    with EmbeddedServers(home, postgres=True, redis=False):
        again = coach_db_cmd("status", home=home)
        assert again.returncode == 0, again.stdout + again.stderr  # the migrations persisted
        assert "Up to date." in again.stdout
    assert processes_under(home) == []


def test_a_stale_state_file_of_a_dead_process_is_ignored(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text(
        '{"pid": 999999999, "database_url": "postgres://x@/y?host=/nope", "redis_url": null}'
    )
    assert running_state(tmp_path) is None


def test_a_state_file_whose_pid_was_reused_is_ignored(tmp_path: Path) -> None:
    """After a crash or a container restart another process may hold the studio's old pid."""
    (tmp_path / "state.json").write_text(
        f'{{"pid": {os.getpid()}, "database_url": "postgres://x@/y?host=/nope", '
        '"redis_url": null, "started": 1}'
    )
    assert running_state(tmp_path) is None
