"""The SQL console at /admin/sql (admins only): one read-only statement, audited, as a table,
a plan or a CSV file. How a statement is checked and run is coach_db/apps/studio/sql_runner.py."""

from __future__ import annotations

# compat's shims run before fastapi_admin is first imported (see compat).
from coach_db.apps.studio import compat  # noqa: F401

# isort: split

from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi_admin.depends import get_resources

from coach_db.apps.studio import sql_runner
from coach_db.apps.studio.audit import record
from coach_db.apps.studio.auth import require_staff
from coach_db.apps.studio.roles import require_role
from coach_db.apps.studio.templating import render
from coach_db.config import remember_secrets
from coach_db.models import AuditAction

router = APIRouter(dependencies=[Depends(require_staff)])
Sidebar = Annotated[Any, Depends(get_resources)]
AUDIT_MODEL = "sql"
EXAMPLE = "SELECT status, count(*) FROM conversation_session GROUP BY status ORDER BY 2 DESC"


def console_url(request: Request) -> str | None:
    url: str | None = request.app.state.settings.coach_db_console_url
    if url:
        remember_secrets(url)  # never in a log line
    return url


def _page(request: Request, resources: Any, status_code: int = 200, **context: Any) -> Response:
    context = {
        "resources": resources,
        "resource_label": "SQL console",
        "page_pre_title": "Read-only, one statement, audited",
        "page_title": "SQL console",
        "configured": console_url(request) is not None,
        "limits": sql_runner.Limits(),
        "sql": EXAMPLE,
        **context,
    }
    return render(request, "sql.html", context, status_code)


@router.get("/sql")
async def console_page(request: Request, resources: Sidebar) -> Response:
    await require_role(request, "admin")
    return _page(request, resources)


@router.post("/sql")
async def console_run(request: Request, resources: Sidebar) -> Response:
    """Run the statement (every attempt is in the audit trail, refused ones too)."""
    await require_role(request, "admin")
    form = await request.form()
    sql = str(form.get("sql") or "")
    url = console_url(request)
    if url is None:
        return _page(request, resources, 409, sql=sql)
    result: sql_runner.Result | None = None
    error: str | None = None
    try:
        result = await sql_runner.run(url, sql)
        outcome = "ok"
    except sql_runner.Refused as exc:
        error, outcome = f"Not run: {exc}", "refused"
    except sql_runner.ConsoleOff as exc:
        error, outcome = f"The console is off: {exc}", "off"
    except asyncpg.QueryCanceledError:
        error, outcome = "Stopped: the statement ran longer than the console allows.", "timeout"
    except asyncpg.PostgresError as exc:
        error, outcome = f"PostgreSQL: {exc}", "error"
    changes: dict[str, Any] = {"sql": sql[: sql_runner.MAX_SQL_CHARS], "outcome": outcome}
    if result is not None:
        changes["rows"] = result.row_count
    elif error:
        changes["error"] = error[:500]
    await record(request, AuditAction.VIEW, AUDIT_MODEL, None, None, changes)
    if result is not None and form.get("download") == "csv":
        return Response(
            sql_runner.to_csv(result),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="console.csv"'},
        )
    return _page(request, resources, 400 if error else 200, sql=sql, result=result, error=error)
