"""The studio app: fastapi-admin mounted at /admin, wired to coach_db, Redis and our templates."""

from __future__ import annotations

# compat's shims run before fastapi_admin is first imported (see compat).
from coach_db.apps.studio import compat  # noqa: F401

# isort: split

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi_admin.app import FastAPIAdmin
from fastapi_admin.routes import router as fastapi_admin_routes
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError
from starlette.exceptions import HTTPException
from starlette.status import (
    HTTP_303_SEE_OTHER,
    HTTP_400_BAD_REQUEST,
    HTTP_401_UNAUTHORIZED,
    HTTP_404_NOT_FOUND,
    HTTP_500_INTERNAL_SERVER_ERROR,
    HTTP_503_SERVICE_UNAVAILABLE,
)
from starlette.types import ASGIApp, Receive, Scope, Send
from tortoise.exceptions import DoesNotExist

import coach_db
from coach_db.apps.studio import (
    assets,
    audit,
    auth,
    migrations_view,
    queries_view,
    roles,
    schema_map,
    sql_console,
    versions,
    views,
)
from coach_db.apps.studio.config import ADMIN_PATH, StudioSettings, get_studio_settings
from coach_db.apps.studio.fair_share import SamePageLimitMiddleware
from coach_db.apps.studio.outages import OutageMiddleware
from coach_db.apps.studio.resources import RESOURCES
from coach_db.apps.studio.templating import render, use_studio_templates
from coach_db.config import credentials_problem, mask_url, redact, remember_secrets

logger = logging.getLogger("admin")

_TITLES = {401: "Sign-in needed", 403: "Not allowed", 404: "Not found", 405: "Not allowed"}


class RedisUnreachable(coach_db.CoachDbError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"Can't reach Redis at {mask_url(url)} ({redact(reason, url)}): the studio keeps its "
            "sign-ins there. Start Redis or point REDIS_URL at it."
        )


class RedisUrlInvalid(coach_db.CoachDbError):
    def __init__(self, url: str, reason: str) -> None:
        super().__init__(
            f"REDIS_URL {mask_url(url)!r} is not a valid Redis URL: {reason}. "
            "Expected redis://[:password@]host:6379/0 or unix:///path/to/redis.sock"
        )


def redis_client(url: str, **options: Any) -> Redis:
    """A Redis client for `url`; a malformed URL is a RedisUrlInvalid that never shows the
    password (redis-py's own message quotes it, and an un-encoded `/` or `#` in the password
    silently points the client at localhost)."""
    if problem := credentials_problem(url):
        raise RedisUrlInvalid(url, problem)
    remember_secrets(url)  # scrubbed from log records from now on
    try:
        # A Redis that stopped answering gives the 503 page within seconds instead of a hang. A
        # burst of requests waits for a free connection (redis-py's default pool refuses the
        # 101st at once).
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=64,
            timeout=10,
            socket_connect_timeout=5,
            socket_timeout=5,
            **options,
        )
    except ValueError as exc:
        # Never the parser's message: it quotes pieces of the URL.
        reason = "the port must be a number" if "port" in str(exc).lower() else "malformed"
        raise RedisUrlInvalid(url, reason) from None
    return Redis.from_pool(pool)


class ReplicaReadsMiddleware:
    """Only list pages and the dashboard may read from a replica (DATABASE_REPLICA_URL); every
    other request (forms, saves, deletes, the transcript, sign-in) reads the primary, so a form
    never shows, or a save never starts from, a row older than the one just written."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = str(scope.get("path", "")).rstrip("/")
        may_lag = scope["type"] == "http" and scope.get("method") in ("GET", "HEAD")
        if may_lag and (path.endswith("/list") or path in ("", ADMIN_PATH)):
            await self.app(scope, receive, send)
            return
        with coach_db.primary():
            await self.app(scope, receive, send)


def pool_options(settings: StudioSettings) -> dict[str, Any]:
    """How the studio's pool differs from a service's (coach_db.db.pool_config): every
    statement bounded by STUDIO_STATEMENT_TIMEOUT, and planned for its own values (a list's
    filter values range from a user with 27,000 sessions to one with none)."""
    return {"statement_timeout": settings.studio_statement_timeout, "custom_plans": True}


def create_app(settings: StudioSettings | None = None, *, connect_db: bool = True) -> FastAPI:
    """The studio as an ASGI app: `/` redirects to the data browser at `/admin/`.

    With `connect_db=False` the app uses a Tortoise connection opened by its caller (tests).
    """
    settings = settings or get_studio_settings()
    use_studio_templates()

    studio = FastAPIAdmin(
        title="Coach studio",
        # In this order: who is asking, then whether their role allows the route.
        dependencies=[Depends(auth.load_staff), Depends(roles.enforce_roles)],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    # Upstream keeps these on the class, so two apps would share (and double) their resources.
    studio.resources = []
    studio.model_resources = {}
    studio.admin_path = ADMIN_PATH
    studio.state.settings = settings
    studio.state.assets_missing = assets.missing()
    assets.mount(studio)
    studio.include_router(auth.router)
    studio.include_router(versions.router)
    studio.include_router(audit.router)
    studio.include_router(sql_console.router)
    studio.include_router(migrations_view.router)
    studio.include_router(schema_map.router)
    studio.include_router(queries_view.router)
    studio.include_router(views.router)
    studio.include_router(fastapi_admin_routes)
    studio.register_resources(*RESOURCES)
    studio.add_middleware(ReplicaReadsMiddleware)
    studio.add_middleware(auth.CSRFMiddleware, settings=settings)
    studio.add_middleware(OutageMiddleware)  # a retried GET runs every layer inside again
    studio.add_middleware(
        SamePageLimitMiddleware,
        limit=settings.studio_same_page_concurrency,
        wait_seconds=settings.studio_statement_timeout,
        static_prefix=f"{ADMIN_PATH}/static/",
    )
    studio.add_exception_handler(HTTPException, _http_error)
    studio.add_exception_handler(RedisError, _redis_down)
    studio.add_exception_handler(DoesNotExist, _missing_row)
    studio.add_exception_handler(TimeoutError, _too_slow)
    studio.add_exception_handler(asyncpg.QueryCanceledError, _too_slow)
    studio.add_exception_handler(RequestValidationError, _bad_request)
    studio.add_exception_handler(Exception, _server_error)
    if studio.state.assets_missing:
        logger.warning("%s", assets.AssetsMissing(studio.state.assets_missing))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        redis = redis_client(settings.redis_url, decode_responses=True)
        try:
            await _ping(redis, settings.redis_url)
            await studio.configure(
                redis=redis, admin_path=ADMIN_PATH, language_switch=False, default_locale="en_US"
            )
            if connect_db:
                async with coach_db.connect(settings.database_url, **pool_options(settings)):
                    yield
            else:
                yield
        finally:
            await redis.aclose()

    app = FastAPI(lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None)
    app.mount(ADMIN_PATH, studio)
    app.add_middleware(
        auth.SecurityHeadersMiddleware,
        static_prefix=f"{ADMIN_PATH}/static/",
        https_only=(settings.studio_public_url or "").startswith("https:"),
    )

    @app.get("/", include_in_schema=False)
    async def home() -> RedirectResponse:
        return RedirectResponse(f"{ADMIN_PATH}/", status_code=HTTP_303_SEE_OTHER)

    @app.get("/favicon.ico", include_in_schema=False)
    async def favicon() -> Response:
        # Browsers ask for it on every site: a 404 was the studio's only console error.
        return Response(FAVICON, media_type="image/svg+xml")

    return app


# Two speech bubbles (the studio's ti-messages icon), in the sidebar's dark and tabler's blue.
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32">'
    '<rect width="32" height="32" rx="6" fill="#1d273b"/>'
    '<path d="M6 8h14a2 2 0 0 1 2 2v8a2 2 0 0 1-2 2h-8l-5 4v-4H6a2 2 0 0 1-2-2v-8a2 2 0 0 1 '
    '2-2z" fill="#206bc4"/>'
    '<path d="M24 13h2a2 2 0 0 1 2 2v7a2 2 0 0 1-2 2h-1v3l-4-3h-5a2 2 0 0 1-2-2v-1h6a4 4 0 0 0 '
    '4-4z" fill="#fff"/></svg>'
)


async def _ping(redis: Redis, url: str) -> None:
    try:
        await redis.ping()
    except (RedisError, OSError) as exc:
        raise RedisUnreachable(url, str(exc) or type(exc).__name__) from None


def _error_page(request: Request, status_code: int, title: str, message: str) -> Response:
    context = {"status_code": status_code, "title": title, "message": message}
    return render(request, "error.html", context, status_code)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == HTTP_401_UNAUTHORIZED and request.method == "GET":
        return RedirectResponse(
            f"{ADMIN_PATH}/login?next={request.url.path}", status_code=HTTP_303_SEE_OTHER
        )
    title = _TITLES.get(exc.status_code, "Error")
    message = exc.detail if isinstance(exc.detail, str) else title
    if exc.status_code == HTTP_404_NOT_FOUND:
        message = "There is no such page or row. It may have been deleted."
    return _error_page(request, exc.status_code, title, message)


async def _missing_row(request: Request, exc: Exception) -> Response:
    return _error_page(request, HTTP_404_NOT_FOUND, "Not found", "There is no such row.")


async def _too_slow(request: Request, exc: Exception) -> Response:
    """A statement ran past STUDIO_STATEMENT_TIMEOUT (or a server-side statement_timeout) and
    was cancelled: say what to narrow, at once, rather than hold a connection and a core."""
    settings: StudioSettings = request.app.state.settings
    seconds = settings.studio_statement_timeout
    # The path, never the query string: filter and search values are the person's data.
    logger.warning(
        "studio: %s %s stopped by the statement timeout (%g s)",
        request.method,
        request.url.path,
        seconds,
    )
    message = (
        f"The database stopped this page's query after {seconds:g} seconds"
        " (STUDIO_STATEMENT_TIMEOUT), so that no page can hold the database for longer. "
    )
    if request.url.path.endswith("/list"):
        message += (
            "Narrow the list: add a filter (a session, a user, a status, a date range) or more"
            " search words, then try again."
        )
    elif "/erase/" in request.url.path:
        message += (
            "Nothing was erased. Someone with this much data is erased with `coach-db erase-user`."
        )
    else:
        message += "Try again in a moment; if it happens again, the studio's log names the query."
    return _error_page(request, HTTP_503_SERVICE_UNAVAILABLE, "This page took too long", message)


async def _bad_request(request: Request, exc: Exception) -> Response:
    return _error_page(request, HTTP_400_BAD_REQUEST, "Bad request", "The request is malformed.")


async def _redis_down(request: Request, exc: Exception) -> Response:
    """Redis keeps the sign-ins: without it no page can tell who is asking. Say so."""
    settings: StudioSettings = request.app.state.settings
    problem = RedisUnreachable(settings.redis_url, type(exc).__name__)
    logger.warning("studio: %s", problem)
    message = f"{problem} Reload this page once it is back."
    return _error_page(request, HTTP_503_SERVICE_UNAVAILABLE, "Redis is not answering", message)


async def _server_error(request: Request, exc: Exception) -> Response:
    logger.exception("studio error on %s %s", request.method, request.url.path, exc_info=exc)
    return _error_page(
        request,
        HTTP_500_INTERNAL_SERVER_ERROR,
        "Server error",
        "Something went wrong on the server; the details are in the studio's log.",
    )


def uvicorn_config(settings: StudioSettings, **uvicorn_options: Any) -> uvicorn.Config:
    """The server of the studio: X-Forwarded-For/-Proto are believed only from the configured
    proxies (STUDIO_TRUSTED_PROXIES), from nobody when there are none."""
    proxies = settings.studio_trusted_proxies.strip()
    return uvicorn.Config(
        create_app(settings),
        host=settings.studio_host,
        port=settings.studio_port,
        proxy_headers=bool(proxies),
        forwarded_allow_ips=proxies or None,
        **uvicorn_options,
    )


async def serve(
    settings: StudioSettings | None = None, *, announce: bool = True, **uvicorn_options: Any
) -> None:
    """Check the database, Redis and assets, then serve the studio until interrupted."""
    settings = settings or get_studio_settings()
    try:
        assets.ensure()
    except assets.AssetsMissing as exc:
        # Offline (no npm registry): usable unstyled, with a banner on every page.
        logger.warning("%s The studio runs without them.", exc)
    async with coach_db.connect(settings.database_url):
        pass  # fail here with coach_db's message rather than in uvicorn's traceback
    redis = redis_client(settings.redis_url)
    try:
        await _ping(redis, settings.redis_url)
    finally:
        await redis.aclose()
    config = uvicorn_config(settings, **uvicorn_options)
    if announce:
        where = f"http://{settings.studio_host}:{settings.studio_port}{ADMIN_PATH}/"
        print(f"Studio: {where}", flush=True)
    await uvicorn.Server(config).serve()
