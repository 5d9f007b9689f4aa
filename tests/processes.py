"""Helpers for tests that run coach-db as a separate process, as a user would."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parent.parent
# COACH_DB_HOME for every command the suite starts: no studio runs there (tests that start one
# pass a home of their own), so a command without DATABASE_URL never finds the studio a
# developer has open in their data folder or their own COACH_DB_HOME (and never seeds over it).
NO_STUDIO_HOME = Path(tempfile.gettempdir()) / f"coach-db-tests-no-studio-{os.getpid()}"
# CI sets CI=true: there a test whose tool is missing must fail, never skip.
IN_CI = os.environ.get("CI", "").lower() in {"1", "true", "yes"}
# Settings a developer's shell may carry into a command the suite starts.
_DEVELOPER_SETTINGS = ("DATABASE_URL", "REDIS_URL", "REDIS_PREFIX", "SEED_ADMIN_PASSWORD")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def needs(missing: str | None) -> pytest.MarkDecorator:
    """Skip when `missing` names an absent tool, except under CI, where the test runs and fails."""
    return pytest.mark.skipif(missing is not None and not IN_CI, reason=str(missing))


def subprocess_env(
    url: str | None = None, *, home: Path | None = None, **extra: str
) -> dict[str, str]:
    """The environment of every process the suite starts: the only way to build one.

    DATABASE_URL is `url`; unset, it is the empty string, which also overrides a DATABASE_URL in
    a developer's .env (empty counts as unset). COACH_DB_HOME is `home`, or NO_STUDIO_HOME.
    `extra` adds or overrides variables (REDIS_URL, SEED_ADMIN_PASSWORD, PYTHONPATH, ...).
    """
    env = {k: v for k, v in os.environ.items() if k not in _DEVELOPER_SETTINGS}
    env["DATABASE_URL"] = url or ""
    env["SEED_ADMIN_PASSWORD"] = ""  # blank is unset, and it overrides .env
    env["COACH_DB_HOME"] = str(home or NO_STUDIO_HOME)
    env.update(extra)
    return env


def coach_db_cmd(
    *args: str,
    url: str | None = None,
    home: Path | None = None,
    stdin: str = "",
    cwd: Path = ROOT,
) -> subprocess.CompletedProcess[str]:
    """`python -m coach_db ARGS` with DATABASE_URL = url (unset when None), see subprocess_env."""
    return subprocess.run(
        [sys.executable, "-m", "coach_db", *args],
        env=subprocess_env(url, home=home),
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
