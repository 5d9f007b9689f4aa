"""The suite's own rules: its processes never reach a developer's studio or settings."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from coach_db.home import running_state
from tests.processes import ROOT, coach_db_cmd, subprocess_env

# First CI pass only: the suite's own rules: no test server is involved.
pytestmark = pytest.mark.once

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


def run_chromium_check(tmp_path: Path, ci: str) -> subprocess.CompletedProcess[str]:
    """The browser module's chromium check alone, with chromium pointed at nothing."""
    return subprocess.run(
        [
            *(sys.executable, "-m", "pytest", "--noconftest", "-p", "no:cacheprovider", "-q"),
            *("tests/test_studio_browser.py", "-k", "chromium_is_installed"),
        ],
        cwd=ROOT,
        env=subprocess_env(CI=ci, COACH_DB_TEST_CHROMIUM=str(tmp_path / "no-chromium")),
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_without_chromium_the_browser_test_fails_under_ci_and_skips_elsewhere(
    tmp_path: Path,
) -> None:
    in_ci = run_chromium_check(tmp_path, "true")
    assert in_ci.returncode == 1, in_ci.stdout
    assert "CI must run the browser test" in in_ci.stdout
    assert "1 failed" in in_ci.stdout.splitlines()[-1]
    elsewhere = run_chromium_check(tmp_path, "")
    assert elsewhere.returncode == 0, elsewhere.stdout
    assert "1 skipped" in elsewhere.stdout.splitlines()[-1]


def test_ci_fails_when_pytest_collects_nothing_and_ends_with_each_closing_line() -> None:
    """.ci/run's run_suite, with stand-ins for pytest: one passing run, one with no tests."""
    script = (ROOT / ".ci" / "run").read_text()
    function = script[script.index("summaries=()") : script.index("# The suite against")]
    assert script.rstrip().endswith('printf \'%s\\n\' "${summaries[@]}"\nexit "$failed"')
    harness = (
        "set -euo pipefail\n"
        + function
        + 'run_suite "first" bash -c "echo ===== 3 passed in 1.00s =====; exit 0"\n'
        + 'run_suite "second" bash -c "echo ===== no tests ran in 0.01s =====; exit 5"\n'
        + 'printf \'%s\\n\' "${summaries[@]}"\nexit "$failed"\n'
    )
    result = subprocess.run(["bash", "-c", harness], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout.splitlines()[-3:] == [
        "first (exit 0): ===== 3 passed in 1.00s =====",
        "second (exit 5): ===== no tests ran in 0.01s =====",
        "  pytest collected no tests: that is a failure",
    ]
