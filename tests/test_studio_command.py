"""`coach-db studio` with nothing configured: embedded servers, data kept, Ctrl-C leaves nothing."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import asyncpg
import psutil
import pytest

from coach_db.apps.seed import data
from coach_db.home import running_state
from tests.processes import ROOT, free_port, processes_under, subprocess_env


def env_without_urls(home: Path) -> dict[str, str]:
    """As on a developer's machine: no server URLs and no erasure key (the suite sets one)."""
    env = subprocess_env(home=home, SEED_ADMIN_PASSWORD="studio-test-password")
    env.pop("COACH_DB_ERASURE_KEY", None)
    env.pop("COACH_DB_ERASURE_KEY_FILE", None)
    return env


def start_studio(home: Path, port: int) -> subprocess.Popen[str]:
    # A session of its own, so the test can send Ctrl-C to the whole group like a terminal.
    return subprocess.Popen(
        [sys.executable, "-m", "coach_db", "studio", "--port", str(port)],
        cwd=ROOT,
        env=env_without_urls(home),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )


def wait_until_up(proc: subprocess.Popen[str], port: int, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"studio exited early:\n{proc.stdout.read() if proc.stdout else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    pytest.fail("studio did not answer in time")


def ctrl_c(proc: subprocess.Popen[str]) -> str:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
    output, _ = proc.communicate(timeout=60)
    return output


async def count_users(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval('SELECT count(*) FROM "user"'))
    finally:
        await conn.close()


def users_in(url: str) -> int:
    return asyncio.run(count_users(url))


@pytest.mark.once  # first CI pass only: it starts its own embedded servers
def test_studio_starts_embedded_servers_keeps_data_and_stops_cleanly(tmp_path: Path) -> None:
    home, port = tmp_path / "home", free_port()
    studio = start_studio(home, port)
    try:
        wait_until_up(studio, port)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
            assert "/admin/login" in response.url  # / leads to the sign-in page
        state = running_state(home)
        assert state is not None and state.database_url and state.redis_url
        seeded = users_in(state.database_url)
        # The empty database was seeded: the test user, the admin and the demo users.
        assert seeded == 2 + len(data.DEMO_USER_NAMES)
        # The development database's erasure key, made beside its data, readable by its owner only.
        key = home / "erasure_key.txt"
        assert key.stat().st_mode & 0o777 == 0o600
        assert len(key.read_text().strip()) == 64
        # Other commands find the embedded database without DATABASE_URL.
        other = subprocess.run(
            [
                sys.executable,
                "-m",
                "coach_db",
                "createstaff",
                "kept@example.com",
                "--password-stdin",
            ],
            env=env_without_urls(home),
            input="kept-password\n",
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert other.returncode == 0, other.stderr
    finally:
        output = ctrl_c(studio)
    assert studio.returncode == 0, output
    assert "Studio stopped." in output
    assert processes_under(home) == [], "Ctrl-C left processes behind"
    assert running_state(home) is None
    # The banner names the address it binds (localhost may resolve to ::1 first), and its
    # sign-in hint is wrapped: no line longer than a terminal but the one with the path.
    assert f"Studio: http://127.0.0.1:{port}/admin/" in output
    assert "localhost" not in output
    hint = output[output.index("Studio: http") :].splitlines()
    assert [line for line in hint if len(line) > 88 and str(home) not in line] == [], hint

    # A second start reuses the data folder: same rows, no stale lock in the way.
    studio = start_studio(home, port)
    try:
        wait_until_up(studio, port)
        state = running_state(home)
        assert state is not None and state.database_url
        assert users_in(state.database_url) == seeded + 1
    finally:
        output = ctrl_c(studio)
    assert "The database is empty" not in output
    assert processes_under(home) == []


@pytest.mark.once  # first CI pass only: no test server (it runs without URLs)
def test_a_port_in_use_is_a_clear_message(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "coach_db", "studio", "--port", str(port)],
            env=env_without_urls(tmp_path),
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 1
    assert f"Port {port} on 127.0.0.1 is already in use" in result.stderr
    assert processes_under(tmp_path) == []  # nothing was started


def kill_everything_under(home: Path) -> None:
    """SIGKILL every process of the embedded servers, as a reboot or the OOM killer would."""
    victims = [
        proc
        for proc in psutil.process_iter(["cmdline"])
        if str(home) in " ".join(proc.info["cmdline"] or [])
    ]
    for proc in victims:
        with contextlib.suppress(psutil.NoSuchProcess):
            proc.kill()
    psutil.wait_procs(victims, timeout=30)


@pytest.mark.once  # first CI pass only: it starts its own embedded servers
def test_studio_starts_again_after_its_process_group_was_killed(
    request: pytest.FixtureRequest,
) -> None:
    """kill -9 of the whole studio and its servers (a crash, a reboot) leaves pid files that
    name dead processes: the next start recovers by itself."""
    # Not under pytest's tmp_path: another pytest session on the machine resets the permissions
    # of /tmp/pytest-of-<user>, which the embedded server's system user must traverse.
    home, port = Path(tempfile.mkdtemp(prefix="coach-db-killed-")) / "home", free_port()
    request.addfinalizer(lambda: shutil.rmtree(home.parent, ignore_errors=True))
    studio = start_studio(home, port)
    try:
        wait_until_up(studio, port)
    finally:
        if studio.poll() is None:
            os.killpg(studio.pid, signal.SIGKILL)
        studio.communicate(timeout=60)
        kill_everything_under(home)
    stale = int((home / "redis" / "redis.pid").read_text())
    assert not psutil.pid_exists(stale) or psutil.Process(stale).status() == "zombie"

    studio = start_studio(home, port)
    try:
        wait_until_up(studio, port)
        state = running_state(home)
        assert state is not None and state.pid == studio.pid
    finally:
        output = ctrl_c(studio)
    assert studio.returncode == 0, output
    assert "Studio stopped." in output
    assert processes_under(home) == []


async def test_studio_without_migrating_refuses_a_database_behind_the_migrations(
    create_migrated_database: Any, redis_url: str, tmp_path: Path
) -> None:
    """--no-migrate on a database at migration 2: one line naming the pending ones, no studio
    whose pages would fail on the columns the models expect."""
    from tests.conftest import run_aerich

    url = await create_migrated_database()
    assert run_aerich("downgrade", "-v", "3", "--yes", url=url).returncode == 0
    done = _studio_no_migrate(url, redis_url, tmp_path)
    assert done.returncode != 0
    assert "behind the committed migrations (3_" in done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr


def _studio_no_migrate(url: str, redis_url: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coach_db", "studio", "--no-migrate", "--port", str(free_port())],
        cwd=ROOT,
        env=subprocess_env(url, home=home, REDIS_URL=redis_url),
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=120,
    )


@pytest.mark.once  # first CI pass only: no server: an import error
def test_python_m_admin_without_the_studio_extra_says_what_to_install(tmp_path: Path) -> None:
    """As `coach-db studio` does, instead of a ModuleNotFoundError traceback."""
    # `import babel` fails in that process as if the package were not installed.
    (tmp_path / "sitecustomize.py").write_text("import sys\nsys.modules['babel'] = None\n")
    result = subprocess.run(
        [sys.executable, "-m", "admin"],
        cwd=ROOT,
        env=subprocess_env(PYTHONPATH=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr, result.stderr
    assert "no babel" in result.stderr and "coach-db[studio]" in result.stderr
