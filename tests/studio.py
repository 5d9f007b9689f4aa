"""Helpers for the studio tests: an HTTP client on the app, CSRF tokens, signing in."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager, suppress
from functools import cache
from typing import Any

import httpx
import pytest
from pwdlib import PasswordHash
from starlette.routing import Mount

from coach_db import StaffRole, User, passwords
from coach_db.apps.studio.auth import CSRF_COOKIE_PREFIX
from coach_db.passwords import hash_password
from tests.factories import cheap_argon2, make_user

STAFF_PASSWORD = "correct horse battery staple"


@asynccontextmanager
async def client_for(
    app: Any, base_url: str = "http://testserver", client_ip: str = "127.0.0.1"
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app, connecting from `client_ip` (what the rate limit sees)."""
    transport = httpx.ASGITransport(app=app, client=(client_ip, 50000))
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        yield client


async def csrf(client: httpx.AsyncClient) -> str:
    """The client's CSRF token (fetching the sign-in page first if it has none yet)."""
    if csrf_cookie(client) is None:
        await client.get("/admin/login")
    return str(csrf_cookie(client))


def csrf_cookie(client: httpx.AsyncClient) -> str | None:
    """The value of the studio's CSRF cookie: its name ends in the studio's port (that of the
    client's base URL when it has one, else the studio's setting)."""
    port = client.base_url.port
    for cookie in client.cookies.jar:
        if cookie.name == f"{CSRF_COOKIE_PREFIX}{port}" or (
            port is None and cookie.name.startswith(CSRF_COOKIE_PREFIX)
        ):
            return cookie.value
    return None


async def post(
    client: httpx.AsyncClient, url: str, data: dict[str, Any] | None = None
) -> httpx.Response:
    """A form POST as the studio's own pages send it: with the CSRF token, and for an edit the
    row version of the form, loaded just before (as a browser does) unless `data` has one."""
    data = {"csrf_token": await csrf(client), **(data or {})}
    if "/update/" in url and "row_version" not in data:
        version = await row_version(client, url)
        if version is not None:
            data["row_version"] = version
    return await client.post(url, data=data)


async def row_version(client: httpx.AsyncClient, url: str) -> str | None:
    """The hidden row version of the edit form at `url`, as the page gives it now."""
    match = re.search(r'name="row_version" value="([^"]*)"', (await client.get(url)).text)
    return match[1] if match else None


async def delete(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """A DELETE as the list page's script sends it: with the X-CSRF-Token header."""
    return await client.delete(url, headers={"X-CSRF-Token": await csrf(client)})


@cache
def _hash(password: str) -> str:
    return hash_password(password)  # argon2 costs ~0.25 s: hash each test password once


@contextmanager
def cheap_password_hashing(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """argon2id and bcrypt at their lowest cost for a test about sign-in rather than hashing.
    Every hash the test makes and the dummy ones a refusal checks are cheap; the cached ones are
    forgotten on the way in and out, so no cheap hash outlives the test (monkeypatch undoes the
    swap afterwards)."""
    cheap = cheap_argon2()
    cheap_bcrypt = passwords.NodeBcryptHasher(rounds=4)
    monkeypatch.setattr(passwords, "_argon2", cheap)
    monkeypatch.setattr(passwords, "_bcrypt", cheap_bcrypt)
    monkeypatch.setattr(passwords, "_hasher", PasswordHash((cheap, cheap_bcrypt)))
    cached = (passwords._dummy_hash, passwords._dummy_bcrypt_hash, _hash)
    for function in cached:
        function.cache_clear()
    yield
    for function in cached:
        function.cache_clear()


async def make_staff(password: str = STAFF_PASSWORD, **overrides: Any) -> User:
    """A staff user; an admin unless `role` says otherwise (coach_db/apps/studio/roles.py)."""
    overrides.setdefault("role", StaffRole.ADMIN)
    return await make_user(password_hash=_hash(password), is_staff=True, **overrides)


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = STAFF_PASSWORD
) -> httpx.Response:
    return await post(client, "/admin/login", {"email": email, "password": password})


def studio_of(app: Any) -> Any:
    """The fastapi-admin app mounted at /admin of a studio app."""
    return next(route.app for route in app.routes if getattr(route, "path", None) == "/admin")


@asynccontextmanager
async def studio_with(settings: Any, **overrides: Any) -> AsyncIterator[Any]:
    """Another studio app on the suite's database, with its own Redis prefix and `overrides`."""
    from asgi_lifespan import LifespanManager
    from redis.asyncio import Redis
    from redis.exceptions import RedisError

    from coach_db.apps.studio.app import create_app

    prefix = f"{settings.redis_prefix}{uuid.uuid4().hex[:6]}:"
    own = settings.model_copy(update={"redis_prefix": prefix, **overrides})
    app = create_app(own, connect_db=False)
    try:
        async with LifespanManager(app):
            yield app
    finally:
        redis = Redis.from_url(own.redis_url)
        with suppress(RedisError):  # a test that stopped this Redis has nothing to clean
            keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
            if keys:
                await redis.delete(*keys)
        await redis.aclose()


def studio_routes(app: Any) -> Iterator[tuple[str, str]]:
    """(method, path template) of every route of the studio, static files excluded."""

    def walk(routes: list[Any]) -> Iterator[Any]:
        for route in routes:
            if hasattr(route, "original_router"):  # an included router
                yield from walk(route.original_router.routes)
            elif not isinstance(route, Mount):
                yield route

    seen = set()
    for route in walk(studio_of(app).routes):
        for method in sorted(route.methods or ()):
            if (method, route.path) not in seen and method != "HEAD":
                seen.add((method, route.path))
                yield method, route.path
