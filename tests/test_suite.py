"""The suite's own rules: its processes never reach a developer's studio or settings."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from coach_db.embedded import running_state
from tests.processes import ROOT, coach_db_cmd, subprocess_env

DEVELOPER_URL = "postgres://dev:developer-secret@127.0.0.1:1/dev_studio"


@pytest.fixture
def developer_shell(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A developer's shell: a studio running in their COACH_DB_HOME, their DATABASE_URL, a .env."""
    home = tmp_path / "developer-home"
    home.mkdir()
    state = {"pid": os.getpid(), "database_url": DEVELOPER_URL, "redis_url": None}
    (home / "state.json").write_text(json.dumps(state))
    monkeypatch.setenv("COACH_DB_HOME", str(home))
    monkeypatch.setenv("DATABASE_URL", DEVELOPER_URL)
    monkeypatch.setenv("SEED_ADMIN_PASSWORD", "developer password")
    assert running_state() is not None  # what a command without isolation would find
    workdir = tmp_path / "checkout"
    workdir.mkdir()
    (workdir / ".env").write_text(f"DATABASE_URL={DEVELOPER_URL}\n")
    return workdir


def test_a_command_without_url_never_reaches_the_developers_studio(developer_shell: Path) -> None:
    result = coach_db_cmd("status", cwd=developer_shell)
    assert result.returncode == 1
    assert "DATABASE_URL is not set" in result.stderr, result.stderr
    env = subprocess_env()
    assert env["DATABASE_URL"] == env["SEED_ADMIN_PASSWORD"] == ""  # blank: .env is overridden
    assert DEVELOPER_URL not in env.values() and "developer password" not in env.values()


def test_a_command_with_a_url_uses_only_that_url(developer_shell: Path) -> None:
    env = subprocess_env("postgres://u@127.0.0.1:1/given")
    assert env["DATABASE_URL"] == "postgres://u@127.0.0.1:1/given"
    assert not (Path(env["COACH_DB_HOME"]) / "state.json").exists()


# An environment built by hand: a copy of os.environ, by `**`, .copy() or .items().
HAND_BUILT_ENV = re.compile(r"\*\*os\.environ|os\.environ\.(copy|items)\(")


def test_every_subprocess_environment_comes_from_subprocess_env() -> None:
    """A test that builds its own environment would forget COACH_DB_HOME (or a .env) again."""
    offenders = [
        f"{path.name}:{number}"
        for path in sorted((ROOT / "tests").glob("*.py"))
        if path.name != "processes.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if HAND_BUILT_ENV.search(line)
    ]
    assert offenders == [], "use tests.processes.subprocess_env"
