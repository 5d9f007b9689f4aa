"""One page cannot take the whole studio: the same page runs at most N times at once.

A studio page is a few statements in PostgreSQL and some rendering on the studio's one event
loop. Eight clients requesting one costly page over and over (a two-word search) kept both
cores busy with copies of it, and every other page waited its turn on them: with 8 clients on
the slowest generated page, the others' p99 was 352 ms at 100k, 3.1 s on a 2,000-message
transcript (bench/studio_pages.py). The statement timeout bounds one request, not many.

So each page, its path and query string together, runs at most STUDIO_SAME_PAGE_CONCURRENCY
times at once in this studio process (default 1). Further requests for it wait their turn, in
order of arrival; every other page runs beside it as before, so a page hammered by many
clients shares the machine with the rest instead of taking it. A request that waited
STUDIO_STATEMENT_TIMEOUT seconds without its turn gets a 503 page saying the page is busy,
never an endless wait. Only reads (GET, HEAD) wait: a save is never held back, and the static
files are not counted. The waiting requests hold no database connection, only their socket; the
table of pages being served holds only those in progress, so it cannot grow without bound.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field

from starlette.types import ASGIApp, Receive, Scope, Send

from coach_db.apps.studio.outages import send_unavailable

logger = logging.getLogger("admin")


@dataclass
class _Page:
    turns: asyncio.Semaphore
    requests: int = field(default=0)  # in progress or waiting: the entry goes at zero


class SamePageLimitMiddleware:
    def __init__(self, app: ASGIApp, *, limit: int, wait_seconds: float, static_prefix: str):
        self.app = app
        self.limit = limit
        self.wait_seconds = wait_seconds
        self.static_prefix = static_prefix
        self._pages: dict[tuple[str, bytes], _Page] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", ""))
        if (
            scope["type"] != "http"
            or scope["method"] not in ("GET", "HEAD")
            or path.startswith(self.static_prefix)
        ):
            await self.app(scope, receive, send)
            return
        key = (path, bytes(scope.get("query_string", b"")))
        page = self._pages.get(key)
        if page is None:
            page = self._pages[key] = _Page(asyncio.Semaphore(self.limit))
        page.requests += 1
        try:
            try:
                async with asyncio.timeout(self.wait_seconds):
                    await page.turns.acquire()
            except TimeoutError:
                await self._busy(scope, receive, send, page.requests)
                return
            try:
                await self.app(scope, receive, send)
            finally:
                page.turns.release()
        finally:
            page.requests -= 1
            if page.requests == 0:
                del self._pages[key]

    async def _busy(self, scope: Scope, receive: Receive, send: Send, requests: int) -> None:
        # The path only: a query string holds search words and filter values (personal data).
        logger.warning(
            "studio: %s %s waited %g s for its turn (%d requests for this page at once)",
            scope["method"],
            scope["path"],
            self.wait_seconds,
            requests,
        )
        others = requests - 1
        message = (
            f"This same page was being loaded for {others} other"
            f" request{'' if others == 1 else 's'} at once, and yours waited"
            f" {self.wait_seconds:g} seconds for its turn (a page runs at most {self.limit} at a"
            " time: STUDIO_SAME_PAGE_CONCURRENCY). Try again in a moment."
        )
        await send_unavailable(scope, receive, send, "This page is busy", message)
