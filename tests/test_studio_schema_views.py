"""The studio's migrations view and schema map (issue 21): what `coach-db status` knows, and the
live schema from the catalogue. (tests/test_studio_browser.py draws the map in Chromium.)"""

from __future__ import annotations

import asyncio
import re
from typing import Any

import asyncpg

from coach_db.migrations import migration_files
from tests.studio import post


async def test_the_migrations_view_lists_every_applied_migration_with_its_sql(
    staff: Any,
) -> None:
    page = await staff.get("/admin/migrations")
    assert page.status_code == 200
    files = migration_files()
    for file in files:
        assert f'title="{file}"' in page.text
    assert "Up to date" in page.text and "pending</span>" not in page.text
    assert "CREATE TABLE IF NOT EXISTS &#34;audit_event&#34;" in page.text  # the SQL, escaped
    # No drift check on a page view: "not checked yet", or (another test pressed the button in
    # this studio) the same earlier check, view after view.
    result = re.search(r'<div[^>]*id="drift-result">(.*?)</div>', page.text, re.S)
    assert result is not None
    assert "not checked yet" in result[1] or "· checked" in result[1], result[1]
    await asyncio.sleep(1.1)
    again = await staff.get("/admin/migrations")
    assert re.search(r'<div[^>]*id="drift-result">(.*?)</div>', again.text, re.S)[1] == result[1]


async def test_a_pending_migration_shows_as_pending(staff: Any, raw: asyncpg.Connection) -> None:
    last = migration_files()[-1]
    row = await raw.fetchrow("SELECT * FROM aerich WHERE version = $1", last)
    assert row is not None
    await raw.execute("DELETE FROM aerich WHERE version = $1", last)
    try:
        page = (await staff.get("/admin/migrations")).text
    finally:
        await raw.execute(
            "INSERT INTO aerich (id, version, app, content) VALUES ($1, $2, $3, $4)",
            row["id"],
            row["version"],
            row["app"],
            row["content"],
        )
    assert "1 pending" in page and "coach-db deploy" in page
    assert '<span class="badge bg-yellow-lt">pending</span>' in page


async def test_the_drift_check_runs_on_demand_and_its_answer_is_kept(staff: Any) -> None:
    done = await post(staff, "/admin/migrations/drift")
    assert done.status_code == 303  # at once: the check runs in the background
    for _ in range(600):
        page = (await staff.get("/admin/migrations")).text
        if "drift-running" not in page:
            break
        await asyncio.sleep(0.2)
    assert "No drift" in page and "checked 20" in page
    again = await post(staff, "/admin/migrations/drift")  # within 30 s: the answer is kept
    assert again.status_code == 303
    assert "drift-running" not in (await staff.get("/admin/migrations")).text


async def test_the_schema_map_is_read_from_the_catalogue(
    staff: Any, raw: asyncpg.Connection
) -> None:
    tables = [
        r["tablename"]
        for r in await raw.fetch("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
    ]
    page = await staff.get("/admin/schema")
    assert page.status_code == 200
    diagram = page.text[page.text.index('id="schema-map">') : page.text.index("</pre>")]
    for table in tables:
        assert f"    {table} {{" in diagram, table
        assert f'id="table-{table}"' in page.text
    assert "user ||--o{ conversation_session : &#34;user_id&#34;" in diagram
    assert "int id PK" in diagram and "varchar_254 email" in diagram
    assert "bigint row_id &#34;null&#34;" in diagram  # nullable columns say so
    assert "conversation_session_status_valid" in page.text  # CHECKs, on demand
    assert "uid_user_email_lower" in page.text  # indexes


async def test_a_viewer_sees_the_map_and_migrations_but_cannot_run_the_drift_check(
    studio_app: Any,
) -> None:
    from coach_db import StaffRole
    from tests.test_studio_roles import signed_in_as

    viewer = await signed_in_as(studio_app, StaffRole.VIEWER)
    try:
        assert (await viewer.get("/admin/schema")).status_code == 200
        page = await viewer.get("/admin/migrations")
        assert page.status_code == 200 and "Check drift now" not in page.text
        assert (await post(viewer, "/admin/migrations/drift")).status_code == 403
    finally:
        await viewer.exit.__aexit__(None, None, None)
