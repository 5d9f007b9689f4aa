"""The studio app: fastapi-admin mounted at /admin, wired to coach_db, Redis and our templates."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

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
from tortoise.exceptions import DoesNotExist

import coach_db
from admin import assets, audit, auth, views
from admin.config import ADMIN_PATH, StudioSettings, get_studio_settings
from admin.outages import OutageMiddleware
from admin.resources import RESOURCES
from admin.templating import render, use_studio_templates
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


def create_app(settings: StudioSettings | None = None, *, connect_db: bool = True) -> FastAPI:
    """The studio as an ASGI app: `/` redirects to the data browser at `/admin/`.

    With `connect_db=False` the app uses a Tortoise connection opened by its caller (tests).
    """
    settings = settings or get_studio_settings()
    use_studio_templates()

    studio = FastAPIAdmin(
        title="Coach studio",
        dependencies=[Depends(auth.load_staff)],
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
    studio.include_router(audit.router)
    studio.include_router(views.router)
    studio.include_router(fastapi_admin_routes)
    studio.register_resources(*RESOURCES)
    studio.add_middleware(auth.CSRFMiddleware, settings=settings)
    studio.add_middleware(OutageMiddleware)  # a retried GET runs every layer inside again
    studio.add_exception_handler(HTTPException, _http_error)
    studio.add_exception_handler(RedisError, _redis_down)
    studio.add_exception_handler(DoesNotExist, _missing_row)
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
                async with coach_db.connect(settings.database_url):
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

    return app


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


async def serve(
    settings: StudioSettings | None = None, *, announce: bool = True, **uvicorn_options: Any
) -> None:
    """Check the database, Redis and assets, then serve the studio until interrupted."""
    settings = settings or get_studio_settings()
    assets.ensure()
    async with coach_db.connect(settings.database_url):
        pass  # fail here with coach_db's message rather than in uvicorn's traceback
    redis = redis_client(settings.redis_url)
    try:
        await _ping(redis, settings.redis_url)
    finally:
        await redis.aclose()
    config = uvicorn.Config(
        create_app(settings),
        host=settings.studio_host,
        port=settings.studio_port,
        # X-Forwarded-For/-Proto from these addresses give the client IP and the https scheme.
        proxy_headers=True,
        forwarded_allow_ips=settings.studio_trusted_proxies,
        **uvicorn_options,
    )
    if announce:
        where = f"http://{settings.studio_host}:{settings.studio_port}{ADMIN_PATH}/"
        print(f"Studio: {where}", flush=True)
    await uvicorn.Server(config).serve()
