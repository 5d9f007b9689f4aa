"""Migration state: the offline drift check between the models and the committed migrations."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TORTOISE_ORM_PATH = "coach_db.config.TORTOISE_ORM"
# Aerich needs a URL to build its config even offline; it never connects to this one.
OFFLINE_URL = "postgres://offline@127.0.0.1:1/offline"


@dataclass(frozen=True)
class Drift:
    """What `aerich migrate --offline` would write: empty `sql` means no drift."""

    sql: str
    output: str

    @property
    def clean(self) -> bool:
        return not self.sql


def check_drift(
    migrations: Path = ROOT / "migrations",
    tortoise_orm: str = TORTOISE_ORM_PATH,
    pythonpath: Path | None = None,
) -> Drift:
    """Diff the models against the last migration file without a database or touching the repo.

    Runs the real `aerich migrate --offline` on a copy of `migrations`, so a model change
    without a migration shows up exactly as Aerich would write it.
    """
    with tempfile.TemporaryDirectory(prefix="coach-db-drift-") as tmp:
        work = Path(tmp)
        shutil.copytree(migrations, work / "migrations")
        before = {p.name for p in (work / "migrations").rglob("*.py")}
        (work / "pyproject.toml").write_text(
            f'[tool.aerich]\ntortoise_orm = "{tortoise_orm}"\nlocation = "./migrations"\n'
            'src_folder = "./."\n'
        )
        env = {**os.environ, "DATABASE_URL": OFFLINE_URL}
        if pythonpath is not None:
            env["PYTHONPATH"] = os.pathsep.join(
                filter(None, [str(pythonpath), env.get("PYTHONPATH")])
            )
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "aerich",
                "migrate",
                "--offline",
                "--no-input",
                "--name",
                "drift",
            ],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            timeout=120,
        )
        output = (result.stdout + result.stderr).strip()
        if result.returncode != 0:
            raise RuntimeError(f"aerich migrate --offline failed:\n{output}")
        new = [p for p in (work / "migrations").rglob("*.py") if p.name not in before]
        sql = "\n".join(p.read_text() for p in new)
        return Drift(sql=sql, output=output)
