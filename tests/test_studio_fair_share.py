"""Issue 20: clients hammering one costly page leave the rest of the studio its share of the
machine: the same page (path and query string) runs at most STUDIO_SAME_PAGE_CONCURRENCY times
at once, further requests for it wait their turn (a 503 "busy" page after the statement
timeout), and every other page runs beside it (coach_db/apps/studio/fair_share.py)."""

from __future__ import annotations

import asyncio
import html
from typing import Any

import asyncpg
import httpx
from starlette.applications import Starlette
from starlette.types import ASGIApp, Receive, Scope, Send

from coach_db.apps.studio.config import ADMIN_PATH
from coach_db.apps.studio.fair_share import SamePageLimitMiddleware
from coach_db.apps.studio.templating import use_studio_templates
from tests.factories import make_message

QUERY_ON_MESSAGE = (
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
    " AND pid <> pg_backend_pid() AND wait_event_type = 'Lock' AND query ILIKE '%message%'"
)


async def _waiting_on_lock(raw: asyncpg.Connection, at_least: int) -> int:
    for _ in range(100):
        found = int(await raw.fetchval(QUERY_ON_MESSAGE))
        if found >= at_least:
            return found
        await asyncio.sleep(0.02)
    return int(await raw.fetchval(QUERY_ON_MESSAGE))


async def test_a_second_request_for_a_page_in_progress_waits_and_other_pages_do_not(
    staff: Any, database_url: str
) -> None:
    """Three requests for one message list page while its table is locked: one query waits on
    the lock, the other two requests wait for their turn in the studio (without the limit all
    three queries were in PostgreSQL at once), and a users page answers meanwhile. Once the
    lock goes, all three answer in full."""
    await make_message(content="the page being hammered")
    page = "/admin/message/list?q=hammered"
    holder = await asyncpg.connect(database_url)
    watcher = await asyncpg.connect(database_url)
    try:
        transaction = holder.transaction()
        await transaction.start()
        await holder.execute("LOCK TABLE message IN ACCESS EXCLUSIVE MODE")
        same = [asyncio.create_task(staff.get(page)) for _ in range(3)]
        assert await _waiting_on_lock(watcher, 1) == 1
        other = await asyncio.wait_for(staff.get("/admin/user/list"), 10)
        assert other.status_code == 200
        await asyncio.sleep(0.2)  # time for the others to reach PostgreSQL, were they let through
        assert int(await watcher.fetchval(QUERY_ON_MESSAGE)) == 1
        assert not any(task.done() for task in same)
        await transaction.rollback()
        answers = await asyncio.wait_for(asyncio.gather(*same), 30)
        assert [a.status_code for a in answers] == [200, 200, 200]
        assert all("the page being hammered" in a.text for a in answers)
    finally:
        await holder.close()
        await watcher.close()


class _Held:
    """An app whose requests wait until `release` is set, counting the ones inside."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.inside = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.inside += 1
        try:
            await self.release.wait()
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"done"})
        finally:
            self.inside -= 1


def _limited(
    held: _Held, limit: int = 1, wait: float = 0.3
) -> tuple[ASGIApp, SamePageLimitMiddleware]:
    """The held app behind the middleware, as the studio's app sees it (its error page reads
    the request's app), and the middleware itself."""
    use_studio_templates()
    host = Starlette()
    limited = SamePageLimitMiddleware(
        held, limit=limit, wait_seconds=wait, static_prefix=f"{ADMIN_PATH}/static/"
    )

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        scope["app"] = host
        await limited(scope, receive, send)

    return app, limited


async def test_a_request_that_waits_past_the_budget_gets_a_busy_page_not_a_hang() -> None:
    held = _Held()
    app, limited = _limited(held, limit=2)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://studio") as client:
        page = "/admin/message/list?q=two+words"
        first = [asyncio.create_task(client.get(page)) for _ in range(2)]
        await asyncio.sleep(0.05)
        assert held.inside == 2
        busy = await asyncio.wait_for(client.get(page), 5)
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "5"
        text = html.unescape(busy.text)
        assert "This page is busy" in text and "STUDIO_SAME_PAGE_CONCURRENCY" in text
        assert "two words" not in text and "two+words" not in text  # no search words echoed
        # Not the same page: another query string, a static file, a save.
        others = [
            asyncio.create_task(client.get("/admin/message/list?q=other")),
            asyncio.create_task(client.get(f"{ADMIN_PATH}/static/app.css")),
            asyncio.create_task(client.post(page)),
        ]
        await asyncio.sleep(0.05)
        assert held.inside == 5
        held.release.set()
        done = await asyncio.gather(*first, *others)
        assert [r.status_code for r in done] == [200] * 5
    assert limited._pages == {}  # nothing kept once no request is in progress


async def test_waiting_requests_take_their_turn_in_order_and_the_table_empties() -> None:
    held = _Held()
    app, limited = _limited(held, limit=1, wait=10)
    order: list[int] = []
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://studio") as client:

        async def get(number: int) -> None:
            await client.get("/admin/")
            order.append(number)

        tasks = []
        for number in range(5):
            tasks.append(asyncio.create_task(get(number)))
            await asyncio.sleep(0.02)
        assert held.inside == 1
        held.release.set()
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
    assert order == [0, 1, 2, 3, 4]
    assert limited._pages == {}
