"""Helpers for the studio tests: an HTTP client on the app, CSRF tokens, signing in."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from functools import cache
from typing import Any

import httpx
from starlette.routing import Mount

from admin.auth import CSRF_COOKIE
from coach_db import User
from coach_db.passwords import hash_password
from tests.factories import make_user

STAFF_PASSWORD = "correct horse battery staple"


@asynccontextmanager
async def client_for(
    app: Any, base_url: str = "http://testserver"
) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url=base_url) as client:
        yield client


async def csrf(client: httpx.AsyncClient) -> str:
    """The client's CSRF token (fetching the sign-in page first if it has none yet)."""
    if CSRF_COOKIE not in client.cookies:
        await client.get("/admin/login")
    return str(client.cookies[CSRF_COOKIE])


async def post(
    client: httpx.AsyncClient, url: str, data: dict[str, Any] | None = None
) -> httpx.Response:
    """A form POST as the studio's own pages send it: with the CSRF token."""
    return await client.post(url, data={"csrf_token": await csrf(client), **(data or {})})


async def delete(client: httpx.AsyncClient, url: str) -> httpx.Response:
    """A DELETE as the list page's script sends it: with the X-CSRF-Token header."""
    return await client.delete(url, headers={"X-CSRF-Token": await csrf(client)})


@cache
def _hash(password: str) -> str:
    return hash_password(password)  # argon2 costs ~0.25 s: hash each test password once


async def make_staff(password: str = STAFF_PASSWORD, **overrides: Any) -> User:
    return await make_user(password_hash=_hash(password), is_staff=True, **overrides)


async def sign_in(
    client: httpx.AsyncClient, email: str, password: str = STAFF_PASSWORD
) -> httpx.Response:
    return await post(client, "/admin/login", {"email": email, "password": password})


def studio_of(app: Any) -> Any:
    """The fastapi-admin app mounted at /admin of a studio app."""
    return next(route.app for route in app.routes if getattr(route, "path", None) == "/admin")


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
