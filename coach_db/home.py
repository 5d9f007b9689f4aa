"""Where coach-db keeps local data, and the state file of a running `coach-db studio`.

The folder is COACH_DB_HOME, else the user's data directory (platformdirs: ~/.local/share/
coach-db on Linux); never inside the installed package. `coach-db studio` writes
`<home>/state.json` while its embedded servers run, so that other processes (aerich, the seed,
a service under development) find the database without DATABASE_URL: running_state() reads it.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

APP_NAME = "coach-db"


def home() -> Path:
    """Where local data lives: COACH_DB_HOME, else the user's data directory for coach-db."""
    if folder := os.environ.get("COACH_DB_HOME"):
        return Path(folder).resolve()
    from platformdirs import user_data_path

    return user_data_path(APP_NAME, appauthor=False).resolve()


def cache_home() -> Path:
    """Where rebuildable files go (a checkout's studio CSS/JS): COACH_DB_HOME/cache when set,
    else the user's cache directory for coach-db (~/.cache/coach-db on Linux)."""
    if folder := os.environ.get("COACH_DB_HOME"):
        return Path(folder).resolve() / "cache"
    return user_cache()


def user_cache() -> Path:
    """The user's cache directory for coach-db, whatever COACH_DB_HOME says."""
    from platformdirs import user_cache_path

    return user_cache_path(APP_NAME, appauthor=False).resolve()


@dataclass(frozen=True)
class State:
    """What a running `coach-db studio` started, for other processes to find."""

    pid: int
    database_url: str | None
    redis_url: str | None
    # Start time of `pid` (process_start_ticks): a reused pid is not taken for the studio.
    started: int | None = None


def process_cmdline(pid: int) -> str:
    """The command line of a live process; FileNotFoundError when it is gone."""
    return Path(f"/proc/{pid}/cmdline").read_text(errors="replace").replace("\0", " ")


def process_alive(pid: int) -> bool:
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
    return state if process_alive(state.pid) and _same_process(state) else None


def process_start_ticks(pid: int) -> int | None:
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
    now = process_start_ticks(state.pid)
    return now is None or now == state.started
