"""A fuzz of every studio route, served by a real uvicorn on one keep-alive connection: hostile
path, query and form values, malformed and oversized bodies, wrong content types. No response
may be a 5xx, and the connection must stay open (a 500 makes uvicorn drop it).

The routes are enumerated from the app, so a new route is fuzzed without editing this file.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import uvicorn
from redis.asyncio import Redis

from coach_db.apps.studio.auth import CSRF_COOKIE_PREFIX, cookie_names, start_session
from coach_db.apps.studio.resources import RESOURCES
from coach_db.limits import MAX_CONTENT_CHARS, MAX_METADATA_BYTES, MAX_METADATA_DEPTH
from tests.factories import make_message
from tests.processes import free_port
from tests.studio import make_staff, studio_routes

# Values that crashed (or may crash) a parser, a driver or the database: NUL, numbers beyond
# int4/int8, non-ASCII digits, out-of-range dates, SQL and LIKE fragments, huge text.
HOSTILE = [
    "\x00",
    "",
    "-1",
    "1e30",
    "2147483648",
    "9223372036854775808",
    "\uff11",  # a full-width 1
    " 1 ",
    "9999-12-31",
    "0001-01-01",
    "9999-12-31T23:59:59-14:00",
    "' OR '1'='1",
    "x" * 300,
    "x" * (MAX_CONTENT_CHARS + 1),
]
# The ones that matter in a form field (each field of each form gets all of them).
FORM_VALUES = [
    "\x00",
    "",
    "-1",
    "9223372036854775808",
    "\uff11",
    " 1 ",
    "9999-12-31T23:59:59-14:00",
    "0001-01-01T00:00:00+14:00",
    "' OR '1'='1",
    "x" * 300,
    "x" * (MAX_CONTENT_CHARS + 1),
]
# Percent-escapes that are not valid UTF-8 (a lone surrogate, a stray byte), for query strings.
RAW_QUERY_VALUES = ["%ED%A0%80", "%FF", "%C0%AF"]


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


HOSTILE_JSON = [
    "NaN",
    '{"a": NaN}',
    '{"a": Infinity}',
    '{"a": -Infinity}',
    '{"a": 1e999}',
    '{"a": "\\u0000"}',
    '{"\\u0000": 1}',
    '{"a": "\\ud800"}',
    '{"\\udfff": "x"}',
    '{"a": ' + "1" * 5000 + "}",
    "[" * 10_000 + "]" * 10_000,
    _nested(10_000),
    _nested(MAX_METADATA_DEPTH + 1),
    json.dumps({"a": "x" * MAX_METADATA_BYTES}),
    '{"a": 1, "a": 2}',
    "[]",
    '"text"',
    "{",
]

MALFORMED_BODIES: list[tuple[str, bytes]] = [
    ("application/json", b'{"name": "x"}'),
    ("application/json", b"{"),
    ("text/plain", b"hello"),
    ("application/octet-stream", bytes(range(256))),
    ("application/x-www-form-urlencoded", b"%zz=%&&=&a=%ED%A0%80&%FF=1"),
    ("application/x-www-form-urlencoded", bytes(range(256))),
    ("application/x-www-form-urlencoded", b"&".join(b"f%d=1" % i for i in range(5000))),
    ("multipart/form-data", b"--x\r\nnot multipart"),
    ("multipart/form-data; boundary=x", b"--x\r\nContent-Disposition: form-data\r\n\r\n--x--"),
    (
        "multipart/form-data; boundary=x",
        b'--x\r\nContent-Disposition: form-data; name="content"; filename="a.txt"\r\n'
        b"Content-Type: text/plain\r\n\r\nhello\r\n--x--\r\n",
    ),
    ("", b"name=x"),
]


@dataclass
class Tally:
    requests: int = 0
    server_errors: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    connects: int = 0

    async def trace(self, event: str, info: dict[str, Any]) -> None:
        if event == "connection.connect_tcp.complete":
            self.connects += 1


@pytest.fixture
async def served(studio_app: Any) -> AsyncIterator[str]:
    """The studio app (its lifespan already run) served by uvicorn on a free port."""
    port = free_port()
    config = uvicorn.Config(
        studio_app, host="127.0.0.1", port=port, lifespan="off", log_level="critical"
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


class Fuzzer:
    def __init__(self, client: httpx.AsyncClient, token: str, tally: Tally) -> None:
        self.client = client
        self.token = token
        self.tally = tally
        self.previous = ""

    async def send(
        self,
        method: str,
        url: str,
        *,
        data: dict[str, Any] | None = None,
        content: bytes | None = None,
        content_type: str | None = None,
    ) -> httpx.Response:
        headers = {"X-CSRF-Token": self.token}
        if content_type is not None:
            headers["Content-Type"] = content_type
        before = self.tally.connects
        if data is not None:
            content = _form(data)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        response = await self.client.request(
            method, url, content=content, headers=headers, extensions={"trace": self.tally.trace}
        )
        self.tally.requests += 1
        what = f"{method} {url[:120]!r} {content[:80] if content else b''!r}"
        if response.status_code >= 500:
            self.tally.server_errors.append(f"{response.status_code} {what}")
        if self.tally.connects != before and self.tally.requests > 1:
            self.tally.dropped.append(f"{what} after {self.previous}")
        self.previous = f"{response.status_code} {what}"
        return response


def _form(data: dict[str, Any]) -> bytes:
    return "&".join(
        f"{quote(k, safe='')}={quote(str(v), safe='', errors='surrogatepass')}"
        for k, v in data.items()
    ).encode()


async def valid_forms(staff: Any) -> tuple[dict[str, dict[str, str]], dict[str, int]]:
    """A valid form and an existing id for each resource."""
    message = await make_message(metadata={"model": "m"})
    session = await message.session
    forms = {
        "user": {"email": "fuzz@example.com", "username": "Fuzz", "password": ""},
        "scenario": {
            "name": "Fuzz",
            "slug": "fuzz",
            "description": "d",
            "partner_persona": "p",
            "partner_system_prompt": "p",
            "coach_system_prompt": "c",
            "partner_model": "m",
            "coach_model": "m",
            "is_active": "on",
        },
        "conversationsession": {
            "user_id": str(session.user_id),
            "scenario_id": str(session.scenario_id),
            "status": "active",
            "ended_at": "",
        },
        "message": {
            "session_id": str(session.pk),
            "role": "user",
            "content": "hello",
            "audio_url": "",
            "metadata": "{}",
        },
    }
    pks = {
        "user": session.user_id,
        "scenario": session.scenario_id,
        "conversationsession": session.pk,
        "message": message.pk,
    }
    return forms, pks


def _fill(template: str, resource: str, pk: str) -> str:
    return "/admin" + template.replace("{resource}", resource).replace("{pk}", pk)


async def test_fuzz_every_studio_route_gives_no_5xx_and_keeps_the_connection(
    staff: Any, studio_app: Any, served: str, redis_url: str, studio_settings: Any
) -> None:
    forms, pks = await valid_forms(staff)
    resources = [r.model.__name__.lower() for r in RESOURCES]
    # Signing out last: the other routes are fuzzed signed in.
    routes = sorted(studio_routes(studio_app), key=lambda route: route[1] == "/logout")
    tally = Tally()
    cookies = httpx.Cookies()
    # Signed in as a staff member whose id no fuzzed value names: the fuzzed bulk deletes
    # removed the fixture's staff user (a low id) and the rest of the routes were fuzzed signed
    # out, unnoticed until the check below.
    fuzzer = await make_staff(id=2_000_000_000)
    redis = Redis.from_url(redis_url)
    cookies.set(
        cookie_names(studio_settings)[0],
        await start_session(redis, studio_settings, fuzzer),
        path="/admin",
    )
    await redis.aclose()
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    async with httpx.AsyncClient(base_url=served, cookies=cookies, limits=limits) as client:
        await client.get("/admin/login")  # the CSRF cookie
        token = _csrf(client)
        fuzz = Fuzzer(client, token, tally)
        for method, template in routes:
            targets = [*resources, "nosuch"] if "{resource}" in template else [""]
            for resource in targets:
                pk = str(pks.get(resource, 1))
                if resource == "nosuch":  # refused before any parameter is read
                    await fuzz.send(method, _fill(template, resource, pk))
                    continue
                if "{pk}" in template and method != "DELETE":
                    for bad in [*HOSTILE[:12], *RAW_QUERY_VALUES]:
                        segment = bad if bad in RAW_QUERY_VALUES else quote(bad, safe="")
                        await fuzz.send(method, _fill(template, resource, segment or "%20"))
                if method == "GET":
                    await _fuzz_query(fuzz, _fill(template, resource, pk), resource)
                elif method == "DELETE":
                    await _fuzz_delete(fuzz, template, resource)
                else:
                    url = _fill(template, resource, pk)
                    await _fuzz_form(fuzz, method, url, forms.get(resource, {}))
            # Still signed in (sign-out comes last): the routes were fuzzed past the sign-in
            # check, not answered by a redirect to the sign-in page.
            home = await client.get("/admin/")
            assert (home.status_code == 200) is (template != "/logout"), (method, template)
    # Oversized bodies, on a client of their own: the server may close a connection whose body
    # it did not read, which is right, so they do not count against the keep-alive check.
    async with httpx.AsyncClient(base_url=served, cookies=cookies) as client:
        await client.get("/admin/login")
        oversized = Fuzzer(client, _csrf(client), Tally())
        for method, template in routes:
            if method in ("POST", "DELETE"):
                url = _fill(template, "message", str(pks["message"]))
                body = b"content=" + b"x" * (3 * 1024 * 1024)
                content_type = "application/x-www-form-urlencoded"
                response = await oversized.send(
                    method, url, content=body, content_type=content_type
                )
                assert response.status_code == 413, (method, url, response.status_code)
        tally.requests += oversized.tally.requests
    print(f"fuzzed {tally.requests} requests over {len(routes)} routes")  # for the README
    assert tally.requests > 1000
    assert tally.server_errors == [], f"{len(tally.server_errors)} of {tally.requests}"
    assert tally.dropped == []


def _csrf(client: httpx.AsyncClient) -> str:
    """The studio's CSRF cookie (named after the studio's public port, not the served one)."""
    return next(c.value for c in client.cookies.jar if c.name.startswith(CSRF_COOKIE_PREFIX))


async def _fuzz_query(fuzz: Fuzzer, url: str, resource: str) -> None:
    """Each hostile value in each filter of a list; in every known parameter at once elsewhere."""
    names = ["q", "page_num", "page_size", "sort", "next", "after", "before", "ids"]
    filters = [
        f.context["name"]
        for model_resource in RESOURCES
        if model_resource.model.__name__.lower() == resource
        for f in model_resource.filters
    ]
    # (The longest value does not fit in a URL: httpx and uvicorn refuse it before the app.)
    values = [quote(v, safe="") for v in HOSTILE if len(v) < 1000] + RAW_QUERY_VALUES
    if url.endswith("/list"):
        # The pager's cursors too (after / before: a value and a row number; end).
        for name in dict.fromkeys([*names[:4], "after", "before", "end", *filters]):
            for value in values:
                await fuzz.send("GET", f"{url}?{name}={value}")
        await fuzz.send("GET", f"{url}?page_num={10**30}&page_size=-{10**30}")
    else:
        for value in values:
            await fuzz.send("GET", url + "?" + "&".join(f"{n}={value}" for n in names + filters))


async def _fuzz_delete(fuzz: Fuzzer, template: str, resource: str) -> None:
    for bad in [*HOSTILE, *RAW_QUERY_VALUES]:
        segment = bad if bad in RAW_QUERY_VALUES else quote(bad, safe="")
        if "{pk}" in template:
            await fuzz.send("DELETE", _fill(template, resource, segment or "%20"))
        else:
            await fuzz.send("DELETE", f"{_fill(template, resource, '')}?ids={segment}")
            await fuzz.send("DELETE", f"{_fill(template, resource, '')}?ids=0,{segment}")


async def _fuzz_form(fuzz: Fuzzer, method: str, url: str, valid: dict[str, str]) -> None:
    """Each hostile value in each field of a valid form, then malformed bodies."""
    fields = list(valid) or ["email", "password", "next", "old_password", "new_password"]
    for name in fields:
        values = [*FORM_VALUES, *HOSTILE_JSON] if name == "metadata" else FORM_VALUES
        if "password" in name:  # a long enough one costs an argon2 hash per request
            values = [v for v in values if len(v) < 8]
        for value in values:
            await fuzz.send(method, url, data={**valid, name: value})
    for content_type, body in MALFORMED_BODIES:
        await fuzz.send(method, url, content=body, content_type=content_type)
    await fuzz.send(method, url, data={**valid, "unknown_field": "x", "id": "5"})


def test_enumerated_routes_include_every_page() -> None:
    """The fuzz sees the routes of views.py, auth.py and fastapi-admin's own."""
    from coach_db.apps.studio.app import create_app
    from coach_db.apps.studio.config import StudioSettings

    app = create_app(StudioSettings(database_url="postgres://u@127.0.0.1/x"), connect_db=False)
    routes = set(studio_routes(app))
    for expected in [
        ("GET", "/"),
        ("GET", "/{resource}/list"),
        ("POST", "/{resource}/update/{pk}"),
        ("DELETE", "/{resource}/delete"),
        ("POST", "/login"),
        ("GET", "/conversationsession/transcript/{pk}"),
    ]:
        assert expected in routes
    assert not any(re.search(r"static", path) for _, path in routes)
