"""PostgreSQL or Redis going away under the running studio: retry reads, answer 503, never 500.

A request in flight when PostgreSQL stops, or arriving while it restarts, fails on a broken or
refused connection. Reads (GET/HEAD) are idempotent, so they wait until the database answers
again (at most RETRY_WAIT_SECONDS) and run once more: a restart costs a delay, not an error
page. Writes are never replayed, as a POST may have been committed before the connection
broke: they, a read that still fails, and any request while Redis (the sign-ins) is down get
a 503 page that says which server is not answering. Rendered here rather than by an exception
handler: Starlette re-raises what reaches its 500 handler and uvicorn then drops the
connection.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any, Final

from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from starlette.requests import Request
from starlette.status import HTTP_503_SERVICE_UNAVAILABLE
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tortoise import connections

from coach_db.apps.studio.templating import render
from coach_db.db import forget_pooled_connections
from coach_db.errors import connection_lost, read_only_refusal

logger = logging.getLogger("admin")
# A fast restart takes about a second; a page waiting longer than this gets the 503 page.
RETRY_WAIT_SECONDS: Final = 10.0


class OutageMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        read = scope["method"] in ("GET", "HEAD")
        for attempt in (1, 2):
            started = False

            async def tracking_send(message: Message) -> None:
                nonlocal started
                started = True
                await send(message)

            try:
                await self.app(scope, receive if attempt == 1 else _empty(receive), tracking_send)
                return
            except Exception as exc:
                server = _server_down(exc)
                if started or server is None:
                    raise
                logger.warning(
                    "%s not answering on %s %s (%s: %s)",
                    server,
                    scope["method"],
                    scope["path"],
                    type(exc).__name__,
                    str(exc)[:200],
                )
                refused = read_only_refusal(exc)
                if server == "The database":
                    # A demoted primary, one cut off (the URL's command_timeout) or a restart:
                    # every pooled connection is as stale as this one, and the rerun below would
                    # take another (a 503 after an immediate restart); new ones find the server.
                    await forget_pooled_connections(connections.get("default"))
                retry = read and attempt == 1 and server == "The database"
                if not (retry and await database_answers(RETRY_WAIT_SECONDS)):
                    await _unavailable(scope, receive, send, server, read, refused)
                    return
                logger.warning("the database answers again: running %s once more", scope["path"])


def _server_down(exc: BaseException) -> str | None:
    if isinstance(exc, (RedisConnectionError, RedisTimeoutError)):
        return "Redis"
    if connection_lost(exc) or isinstance(exc, TimeoutError):  # TimeoutError: command_timeout
        return "The database"
    return None


async def _unavailable(
    scope: Scope, receive: Receive, send: Send, server: str, read: bool, refused: bool = False
) -> None:
    message = f"{server} is not answering (it may be restarting). Try again in a moment."
    if refused:
        message = (
            "The database is moving to another server (a failover): nothing was saved. "
            "Try again in a moment."
        )
    elif not read:
        message += " If you were saving a change, check whether it was stored."
    await send_unavailable(scope, receive, send, "Temporarily unavailable", message)


async def send_unavailable(
    scope: Scope, receive: Receive, send: Send, title: str, message: str
) -> None:
    """The studio's 503 page, with Retry-After, sent from a middleware (no exception handler
    runs there)."""
    context = {"status_code": HTTP_503_SERVICE_UNAVAILABLE, "title": title, "message": message}
    response = render(Request(scope, receive), "error.html", context, HTTP_503_SERVICE_UNAVAILABLE)
    response.headers["Retry-After"] = "5"
    await response(scope, receive, send)


async def database_answers(budget: float) -> bool:
    """Whether `SELECT 1` succeeds within `budget` seconds (the pool replaces dead connections)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + budget
    delay = 0.05
    while True:
        try:
            await connections.get("default").execute_query("SELECT 1")
            return True
        except Exception as exc:
            if not connection_lost(exc):
                raise
        if loop.time() + delay > deadline:
            return False
        await asyncio.sleep(delay)
        delay = min(delay * 2, 0.5)


def _empty(receive: Receive) -> Receive:
    """A GET's body again (empty) for the second run, then the client's own messages."""
    sent = False

    async def replay() -> Any:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": b"", "more_body": False}
        return await receive()

    return replay
