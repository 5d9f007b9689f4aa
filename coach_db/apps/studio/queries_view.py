"""The queries view at /admin/queries (admins only): the slowest and the most frequent
statements of this database, from pg_stat_statements where the server has it.

Admins only: normalised statements usually show $1 for their values, but a statement whose
literals were written into its text (a script, a psql session) keeps them: query texts may
hold personal data.
"""

from __future__ import annotations

# compat's shims run before fastapi_admin is first imported (see compat).
from coach_db.apps.studio import compat  # noqa: F401

# isort: split

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response
from fastapi_admin.depends import get_resources
from tortoise import connections

from coach_db.apps.studio.auth import require_staff
from coach_db.apps.studio.roles import require_role
from coach_db.apps.studio.templating import render

router = APIRouter(dependencies=[Depends(require_staff)])
Sidebar = Annotated[Any, Depends(get_resources)]
TOP = 20
QUERY_CHARS = 600

_STATE = """
SELECT 'pg_stat_statements' = ANY (string_to_array(
           replace(current_setting('shared_preload_libraries'), ' ', ''), ',')) AS loaded,
       to_regclass('pg_stat_statements') IS NOT NULL AS installed
"""
_TOP = """
SELECT left(query, {chars}) AS query, calls, total_exec_time AS total_ms,
       mean_exec_time AS mean_ms, rows
FROM pg_stat_statements
WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY {order} DESC LIMIT {top}
"""


async def statistics(
    conn: Any = None,
) -> tuple[str | None, list[dict[str, Any]], list[dict[str, Any]]]:
    """(why there are none, or None; the slowest by total time; the most frequent), read
    through `conn` (anything with Tortoise's execute_query_dict; the studio's by default)."""
    conn = conn or connections.get("default")
    state = (await conn.execute_query_dict(_STATE))[0]
    if not state["loaded"]:
        return (
            "pg_stat_statements is not available on this server: it is not in "
            "shared_preload_libraries (a server setting that needs a restart). Add it there "
            "and run CREATE EXTENSION pg_stat_statements in this database; the embedded "
            "server of `coach-db studio` has it.",
            [],
            [],
        )
    if not state["installed"]:
        return (
            "pg_stat_statements is loaded by the server but not installed in this database: "
            "run CREATE EXTENSION pg_stat_statements (as its owner).",
            [],
            [],
        )
    slowest = await conn.execute_query_dict(
        _TOP.format(chars=QUERY_CHARS, order="total_exec_time", top=TOP)
    )
    frequent = await conn.execute_query_dict(_TOP.format(chars=QUERY_CHARS, order="calls", top=TOP))
    return None, slowest, frequent


@router.get("/queries")
async def queries_page(request: Request, resources: Sidebar) -> Response:
    await require_role(request, "admin")
    missing, slowest, frequent = await statistics()
    context = {
        "resources": resources,
        "resource_label": "Queries",
        "page_pre_title": "pg_stat_statements, since its last reset",
        "page_title": "Queries",
        "missing": missing,
        "tables": [("Slowest (by total time)", slowest), ("Most frequent", frequent)],
    }
    return render(request, "queries.html", context)
