"""Faults under a running studio and under add_message load, on throwaway servers restarted by
the test: a PostgreSQL restart costs no error page and loses no acknowledged write; a Redis
restart gives signed-in users a clear non-500 answer, and they carry on afterwards."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from tests.conftest import run_aerich
from tests.processes import ROOT, free_port, subprocess_env
from tests.studio import STAFF_PASSWORD, _hash, csrf, sign_in
from tests.throwaway import ThrowawayPostgres, ThrowawayRedis

STAFF_EMAIL = "faults@example.com"
# Printed at the end of the module (pytest -s) for the README: what the faults cost.
FIGURES: Counter[str] = Counter()
PAGES = ("/admin/", "/admin/user/list", "/admin/conversationsession/list", "/admin/message/list")


@pytest.fixture(scope="module", autouse=True)
def _print_figures() -> Iterator[None]:
    yield
    print("\nfault figures:", dict(FIGURES))


@pytest.fixture(scope="module")
def postgres() -> Iterator[ThrowawayPostgres]:
    """A PostgreSQL of this module's own, with a database built by the migrations."""
    with ThrowawayPostgres() as server:
        asyncio.run(_create_database(server))
        result = run_aerich("upgrade", url=database_url(server))
        assert result.returncode == 0, result.stdout + result.stderr
        yield server


def database_url(server: ThrowawayPostgres) -> str:
    return f"postgres://postgres@127.0.0.1:{server.port}/coach"


async def _create_database(server: ThrowawayPostgres) -> None:
    conn = await asyncpg.connect(server.url)
    try:
        await conn.execute('CREATE DATABASE "coach"')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def redis_server() -> Iterator[ThrowawayRedis]:
    with ThrowawayRedis() as server:
        yield server


@pytest.fixture(scope="module")
def studio(
    postgres: ThrowawayPostgres,
    redis_server: ThrowawayRedis,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """`coach-db studio` on both throwaway servers, in a process of its own; its base URL."""
    asyncio.run(_make_staff(database_url(postgres)))
    home = tmp_path_factory.mktemp("home")
    log = tmp_path_factory.mktemp("studio") / "studio.log"
    with studio_process(database_url(postgres), redis_server.url, home, log) as url:
        yield url
    # The studio's log without its successful requests, for a failure's report (pytest -s).
    print("".join(line for line in log.open() if '" 200 OK' not in line)[-20_000:])


@contextmanager
def studio_process(database: str, redis_url: str, home: Path, log: Path) -> Iterator[str]:
    """`coach-db studio --no-migrate` in a process group of its own, its output in `log`; its
    base URL. Stopped with Ctrl-C (SIGINT) at the end, killed if it takes over 30 s."""
    port = free_port()
    env = subprocess_env(database, home=home, REDIS_URL=redis_url)
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "coach_db", "studio", "--no-migrate", "--port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_up(proc, port, log)
        yield f"http://127.0.0.1:{port}"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


async def _make_staff(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(
            'INSERT INTO "user" (email, username, password_hash, is_staff) '
            "VALUES ($1, 'Faults', $2, true) ON CONFLICT DO NOTHING",
            STAFF_EMAIL,
            _hash(STAFF_PASSWORD),
        )
    finally:
        await conn.close()


def _wait_until_up(proc: subprocess.Popen[bytes], port: int, log: Path) -> None:
    for _ in range(600):
        if proc.poll() is not None:
            pytest.fail(f"the studio exited early:\n{log.read_text()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/admin/login", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.fail(f"the studio did not answer:\n{log.read_text()}")


async def read_pages_until(client: httpx.AsyncClient, done: asyncio.Task[None]) -> list[int]:
    """GET the pages in a loop until `done` finishes, then once more: every status seen."""
    statuses: list[int] = []
    while True:
        finished = done.done()
        for page in PAGES:
            statuses.append((await client.get(page)).status_code)
        if finished:
            return statuses


async def test_a_postgresql_restart_under_the_studio_costs_no_error_page(
    studio: str, postgres: ThrowawayPostgres
) -> None:
    """Readers keep loading pages while PostgreSQL restarts (fast, then immediate: a crash):
    requests in flight or arriving meanwhile wait for it and answer 200, never a 500."""
    async with httpx.AsyncClient(base_url=studio, timeout=120) as client:
        response = await sign_in(client, STAFF_EMAIL)
        assert response.status_code == 303, response.text[:300]
        for mode in ("fast", "immediate"):
            restart = asyncio.create_task(asyncio.to_thread(postgres.restart, mode))
            results = await asyncio.gather(*(read_pages_until(client, restart) for _ in range(4)))
            await restart
            statuses = [status for result in results for status in result]
            FIGURES["studio reads during PostgreSQL restarts"] += len(statuses)
            assert statuses == [200] * len(statuses), (mode, sorted(set(statuses)))


async def test_a_studio_write_while_postgresql_is_down_is_a_clear_503_not_replayed(
    studio: str, postgres: ThrowawayPostgres
) -> None:
    """A POST is never retried (it may have been committed): while the database is down it
    gets a 503 page that says so, and the keep-alive connection stays usable."""
    async with httpx.AsyncClient(base_url=studio, timeout=60) as client:
        assert (await sign_in(client, STAFF_EMAIL)).status_code == 303
        token = await csrf(client)
        postgres.halt()
        try:
            response = await client.post(
                "/admin/scenario/create", data={"csrf_token": token, "name": "During the outage"}
            )
        finally:
            postgres.resume()
        assert response.status_code == 503, response.text[:500]
        assert "The database is not answering" in response.text
        assert "check whether it was stored" in response.text
        assert (await client.get("/admin/scenario/list")).status_code == 200
    FIGURES["studio writes refused with 503 while PostgreSQL was down"] += 1


def test_a_postgresql_restart_under_add_message_load_loses_no_acknowledged_write(
    postgres: ThrowawayPostgres,
) -> None:
    """8 writers append messages while PostgreSQL restarts twice (fast, then immediate: a crash
    and recovery). Every acknowledged message is stored; every failure is a
    DatabaseConnectionLost; one that says nothing was written was indeed not written; the
    counters match the rows; every writer writes again afterwards."""
    url = database_url(postgres)
    session_ids = asyncio.run(_sessions(url, 8))
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fault_writer", url, *map(str, session_ids)],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        assert proc.stdout.readline().strip() == "ready"
        postgres.restart("fast")
        postgres.restart("immediate")
        proc.stdin.write("stop\n")
        proc.stdin.flush()
        report = json.loads(proc.stdout.readline())
        assert proc.wait(timeout=120) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stored, drift = asyncio.run(_stored(url))
    acknowledged = set(report["acknowledged"])
    failed = {content: (kind, maybe) for content, kind, maybe, _ in report["failed"]}
    assert {kind for kind, _ in failed.values()} <= {"DatabaseConnectionLost"}, report["failed"]
    lost = acknowledged - stored
    assert lost == set()
    assert {c for c, (_, maybe) in failed.items() if not maybe and c in stored} == set()
    assert stored <= acknowledged | {c for c, (_, maybe) in failed.items() if maybe}
    assert drift == []
    FIGURES["add_message writes acknowledged"] += len(acknowledged)
    FIGURES["add_message writes lost"] += len(lost)
    FIGURES["add_message writes failed with DatabaseConnectionLost"] += len(failed)
    FIGURES["failed but stored (maybe_written)"] += len(set(failed) & stored)
    FIGURES["PostgreSQL restarts survived"] += 2


async def _sessions(url: str, count: int) -> list[int]:
    conn = await asyncpg.connect(url)
    try:
        user = await conn.fetchval(
            'INSERT INTO "user" (email, username) VALUES ($1, $2) RETURNING id',
            f"writer-{time.time_ns()}@example.com",
            "Writer",
        )
        scenario = await conn.fetchval(
            "INSERT INTO scenario (name, slug, description, partner_persona, "
            "partner_system_prompt, coach_system_prompt, partner_model, coach_model) "
            "VALUES ('Load', $1, 'd', 'p', 's', 'c', 'm', 'm') RETURNING id",
            f"load-{time.time_ns()}",
        )
        return [
            await conn.fetchval(
                "INSERT INTO conversation_session (user_id, scenario_id) VALUES ($1, $2) "
                "RETURNING id",
                user,
                scenario,
            )
            for _ in range(count)
        ]
    finally:
        await conn.close()


async def _stored(url: str) -> tuple[set[str], list[Any]]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch("SELECT content FROM message")
        drift = await conn.fetch(
            "SELECT s.id FROM conversation_session s LEFT JOIN message m ON m.session_id = s.id "
            "GROUP BY s.id HAVING s.total_messages <> count(m.id)"
        )
        return {r["content"] for r in rows}, [dict(r) for r in drift]
    finally:
        await conn.close()


async def test_a_redis_restart_under_the_studio_is_no_500_and_sign_ins_survive(
    studio: str, redis_server: ThrowawayRedis
) -> None:
    """While Redis is down a signed-in page answers a clear non-500 error; once it is back
    the same sign-in works again (its key was persisted)."""
    async with httpx.AsyncClient(base_url=studio, timeout=60) as client:
        assert (await sign_in(client, STAFF_EMAIL)).status_code == 303
        assert (await client.get("/admin/user/list")).status_code == 200
        redis_server.halt()
        try:
            down = [await client.get(page) for page in PAGES]
        finally:
            redis_server.start()
        assert [r.status_code for r in down] == [503] * len(PAGES)
        assert all("Redis" in r.text and "Traceback" not in r.text for r in down)
        assert [(await client.get(page)).status_code for page in PAGES] == [200] * len(PAGES)
    FIGURES["Redis restarts survived"] += 1
