"""The studio's queries view (studio/queries_view.py): pg_stat_statements' top statements where
the server loads it, a clear word where it does not; admins only (texts may hold literals)."""

from __future__ import annotations

from typing import Any

import asyncpg
import pytest

from coach_db import StaffRole
from coach_db.apps.studio.queries_view import statistics
from tests.test_studio_roles import signed_in_as
from tests.throwaway import ThrowawayPostgres


async def test_without_pg_stat_statements_the_page_says_why(
    staff: Any, raw: asyncpg.Connection
) -> None:
    loaded = "pg_stat_statements" in await raw.fetchval("SHOW shared_preload_libraries")
    page = await staff.get("/admin/queries")
    assert page.status_code == 200
    if loaded:  # a server that has it (not the shared one, which must not be reconfigured)
        pytest.skip("this server loads pg_stat_statements")
    assert 'id="queries-missing"' in page.text
    assert "not in shared_preload_libraries" in page.text


async def test_viewers_and_editors_are_refused_the_queries_view(studio_app: Any) -> None:
    for role in (StaffRole.VIEWER, StaffRole.EDITOR):
        client = await signed_in_as(studio_app, role)
        try:
            assert (await client.get("/admin/queries")).status_code == 403
        finally:
            await client.exit.__aexit__(None, None, None)


class _Tortoiseish:
    """asyncpg as the view reads it (Tortoise's execute_query_dict)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn = conn

    async def execute_query_dict(self, sql: str, values: Any = None) -> list[dict[str, Any]]:
        return [dict(r) for r in await self.conn.fetch(sql, *(values or []))]


class _WithStatements(ThrowawayPostgres):
    def resume(self) -> None:
        # Our own throwaway server: loading a library here reconfigures nothing shared.
        original = self._pg_ctl

        def with_preload(args: list[str], **kwargs: Any) -> Any:
            if "-o" in args:
                i = args.index("-o") + 1
                args = [
                    *args[:i],
                    args[i] + " -c shared_preload_libraries=pg_stat_statements",
                    *args[i + 1 :],
                ]
            return original(args, **kwargs)

        self._pg_ctl = with_preload
        try:
            super().resume()
        finally:
            self._pg_ctl = original


@pytest.mark.once
async def test_with_pg_stat_statements_the_slowest_and_most_frequent_are_listed() -> None:
    with _WithStatements() as server:
        conn = await asyncpg.connect(server.url)
        try:
            missing, _, _ = await statistics(_Tortoiseish(conn))
            assert missing is not None and "CREATE EXTENSION" in missing  # loaded, not created
            await conn.execute("CREATE EXTENSION pg_stat_statements")
            for _ in range(5):
                await conn.fetchval("SELECT count(*) FROM generate_series(1, 20000)")
            missing, slowest, frequent = await statistics(_Tortoiseish(conn))
        finally:
            await conn.close()
    assert missing is None
    texts = [row["query"] for row in slowest]
    assert any("generate_series" in text for text in texts), texts
    assert frequent[0]["calls"] >= 5
    assert {"calls", "mean_ms", "total_ms", "rows"} <= set(slowest[0])
