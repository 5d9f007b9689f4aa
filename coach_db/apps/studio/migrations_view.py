"""The migrations view at /admin/migrations: applied and pending migrations with their SQL, and
whether the models drifted from them (what `coach-db status` and `coach-db check` know).

The drift check runs `aerich migrate --offline` in a subprocess (seconds of CPU): only when
someone presses the button, one at a time, its last answer kept and shown with its time.
"""

from __future__ import annotations

# compat's shims run before fastapi_admin is first imported (see compat).
from coach_db.apps.studio import compat  # noqa: F401

# isort: split

import asyncio
import re
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from fastapi_admin.depends import get_resources
from starlette.status import HTTP_303_SEE_OTHER

from coach_db.apps.studio.auth import require_staff
from coach_db.apps.studio.roles import require_role
from coach_db.apps.studio.templating import render
from coach_db.migrations import Drift, check_drift, migration_status, migrations_dir

router = APIRouter(dependencies=[Depends(require_staff)])
Sidebar = Annotated[Any, Depends(get_resources)]
MIN_INTERVAL = 30  # seconds between two drift checks: each runs aerich in a subprocess
_NAME = re.compile(r"(?P<number>\d+)_(?P<stamp>\d{14})_(?P<name>.+)\.py")


@dataclass
class DriftCheck:
    """The last drift check of this studio process."""

    at: datetime | None = None
    generated: list[str] | None = None  # generated files out of date
    drift: Drift | None = None
    error: str | None = None
    running: bool = False


def _state(request: Request) -> DriftCheck:
    app = request.app
    if not hasattr(app.state, "drift_check"):
        app.state.drift_check = DriftCheck()
    check: DriftCheck = app.state.drift_check
    return check


def describe(file: str, applied: bool) -> dict[str, Any]:
    """A migration file as the page shows it: number, name, the date in its name, its SQL."""
    match = _NAME.fullmatch(file)
    written = None
    if match:
        written = datetime.strptime(match["stamp"], "%Y%m%d%H%M%S").replace(tzinfo=UTC)
    path = migrations_dir() / "models" / file
    text = path.read_text() if path.is_file() else ""
    sql = Drift(sql=text, output="").upgrade_sql if text else ""
    return {
        "file": file,
        "number": match["number"] if match else "",
        "name": match["name"].replace("_", " ") if match else file,
        "written": written,
        "applied": applied,
        "sql": sql or "(the SQL is built in Python: see the file)",
    }


@router.get("/migrations")
async def migrations_page(request: Request, resources: Sidebar) -> Response:
    await require_role(request, "viewer")
    url = request.app.state.settings.database_url
    status = await migration_status(url)
    rows = [describe(f, True) for f in status.applied]
    rows += [describe(f, False) for f in status.pending]
    context = {
        "resources": resources,
        "resource_label": "Migrations",
        "page_pre_title": "The schema's history (coach-db status)",
        "page_title": "Migrations",
        "migrations": rows,
        "pending": len(status.pending),
        "check": _state(request),
    }
    return render(request, "migrations.html", context)


@router.post("/migrations/drift")
async def run_drift_check(request: Request) -> Response:
    """Start the offline drift check in the background (editors and admins): one at a time per
    studio, at most once every MIN_INTERVAL seconds; the page shows it running, then its answer."""
    await require_role(request, "editor")
    check = _state(request)
    now = datetime.now(UTC)
    recent = check.at is not None and (now - check.at).total_seconds() < MIN_INTERVAL
    if not check.running and not recent:
        check.running = True
        # Kept on the app: a task nobody references may be garbage-collected mid-run.
        request.app.state.drift_task = asyncio.create_task(_run(check))
    return RedirectResponse(
        f"{request.app.admin_path}/migrations#drift", status_code=HTTP_303_SEE_OTHER
    )


async def _run(check: DriftCheck) -> None:
    try:
        generated, drift = await asyncio.to_thread(_check_now)
        check.generated, check.drift, check.error = generated, drift, None
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        check.error = f"The check could not run: {str(exc)[:500]}"
    finally:
        check.running = False
        check.at = datetime.now(UTC)


def _check_now() -> tuple[list[str], Drift]:
    from coach_db.tools.codegen import drift as generated_drift

    return [p.name for p in generated_drift()], check_drift()
