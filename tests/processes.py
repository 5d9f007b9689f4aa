"""Helpers for tests that run coach-db as a separate process, as a user would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def coach_db_cmd(
    *args: str,
    url: str | None = None,
    home: Path | None = None,
    stdin: str = "",
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    """`python -m coach_db ARGS` with DATABASE_URL = url (unset when None).

    COACH_DB_HOME is `home`, or a folder where no studio runs, so a studio the developer has
    open never answers for the test.
    """
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["COACH_DB_HOME"] = str(home or cwd / ".no-embedded-here")
    if url is not None:
        env["DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "coach_db", *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
    )


def processes_under(folder: Path) -> list[str]:
    """Command lines of live processes that mention `folder` (embedded servers left behind)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if str(folder) in cmdline:
            found.append(cmdline)
    return found
