"""Studio sign-in: staff only, sessions in Redis, CSRF, Secure cookies, the login rate limit."""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pydantic import ValidationError
from redis.asyncio import Redis

from coach_db import User
from coach_db.apps.studio.auth import SESSION_COOKIE_PREFIX, cookie_names
from coach_db.apps.studio.config import StudioSettings
from coach_db.passwords import hash_password, verification_count, verify_password
from tests.factories import make_user
from tests.processes import coach_db_cmd, subprocess_env
from tests.studio import (
    STAFF_PASSWORD,
    cheap_password_hashing,
    client_for,
    csrf,
    delete,
    make_staff,
    post,
    sign_in,
    studio_of,
    studio_with,
)


@pytest.fixture(autouse=True)
def _cheap_hashing(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """These tests are about sign-in, sessions and lock-outs, not the hash: argon2id and bcrypt
    at their lowest cost (each real verification cost ~0.2 s of CPU, ~30 s a pass). Not for the
    tests marked real_hashing: a hash `coach-db createstaff` makes with today's parameters would
    be upgraded to the cheap one at sign-in."""
    if request.node.get_closest_marker("real_hashing"):
        yield
    else:
        with cheap_password_hashing(monkeypatch):
            yield


async def test_pages_redirect_to_sign_in_when_signed_out(anonymous: Any) -> None:
    response = await anonymous.get("/admin/user/list")
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/login?next=/admin/user/list"
    root = await anonymous.get("/")
    assert root.status_code == 303 and root.headers["location"] == "/admin/"


async def test_sign_in_page_is_english_with_a_csrf_field(anonymous: Any) -> None:
    page = await anonymous.get("/admin/login")
    assert page.status_code == 200
    assert "Sign in" in page.text and "Email" in page.text and "Password" in page.text
    for message_id in ("login_username_placeholder", "sign_in", "remember_me"):
        assert message_id not in page.text
    assert f'name="csrf_token" value="{await csrf(anonymous)}"' in page.text


async def test_staff_signs_in_with_email_and_password_and_returns_to_next(anonymous: Any) -> None:
    user = await make_staff(email="Boss@Example.com")
    response = await post(
        anonymous,
        "/admin/login",
        {"email": " boss@example.COM ", "password": STAFF_PASSWORD, "next": "/admin/scenario/list"},
    )
    assert response.status_code == 303
    assert response.headers["location"] == "/admin/scenario/list"
    cookie = next(
        c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE_PREFIX)
    )
    assert "HttpOnly" in cookie and "Path=/admin" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain HTTP: a Secure cookie would never come back
    dashboard = await anonymous.get("/admin/")
    assert dashboard.status_code == 200 and user.email in dashboard.text


async def test_signed_in_staff_skip_the_sign_in_page(staff: Any) -> None:
    """fastapi-admin compared the mounted path wrongly and showed the form again."""
    response = await staff.get("/admin/login?next=/admin/message/list")
    assert response.status_code == 303 and response.headers["location"] == "/admin/message/list"


async def test_next_cannot_redirect_to_another_site(anonymous: Any) -> None:
    user = await make_staff()
    for target in ("https://evil.example/", "//evil.example/admin/", "/elsewhere"):
        response = await post(
            anonymous,
            "/admin/login",
            {"email": user.email, "password": STAFF_PASSWORD, "next": target},
        )
        assert response.headers["location"] == "/admin/"


async def test_wrong_password_and_unknown_email_are_refused_alike(anonymous: Any) -> None:
    user = await make_staff()
    wrong = await sign_in(anonymous, user.email, "not the password")
    unknown = await sign_in(anonymous, "nobody@example.com")
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "Wrong e-mail or password" in response.text
        assert SESSION_COOKIE_PREFIX not in response.headers.get("set-cookie", "")


async def test_non_staff_user_is_refused_even_with_the_right_password(anonymous: Any) -> None:
    user = await make_user(password_hash=hash_password(STAFF_PASSWORD), is_staff=False)
    response = await sign_in(anonymous, user.email)
    assert response.status_code == 401
    assert (await anonymous.get("/admin/")).status_code == 303


async def test_user_without_password_cannot_sign_in(anonymous: Any) -> None:
    user = await make_user(is_staff=True)  # a SAML user: password_hash is NULL
    assert (await sign_in(anonymous, user.email, "")).status_code == 401
    assert (await sign_in(anonymous, user.email, "anything")).status_code == 401


async def test_password_longer_than_72_bytes_signs_in(anonymous: Any) -> None:
    """fastapi-admin's bcrypt path raised on > 72 bytes; the shared argon2 hasher does not."""
    password = "é" * 60  # 120 bytes in UTF-8
    user = await make_staff(password)
    assert (await sign_in(anonymous, user.email, password)).status_code == 303


async def test_logout_is_a_csrf_protected_post_that_ends_the_session(
    staff: Any, studio_settings: Any
) -> None:
    session_cookie = cookie_names(studio_settings)[0]
    assert (await staff.get("/admin/logout")).status_code == 405
    assert (await staff.post("/admin/logout")).status_code == 403  # no token
    token = staff.cookies[session_cookie]
    response = await post(staff, "/admin/logout")
    assert response.status_code == 303 and response.headers["location"] == "/admin/login"
    staff.cookies.set(session_cookie, token, path="/admin")  # a copied cookie is worthless now
    assert (await staff.get("/admin/")).status_code == 303


async def test_session_expires_with_its_redis_key(
    staff: Any, redis_url: str, studio_settings: Any
) -> None:
    assert (await staff.get("/admin/")).status_code == 200
    redis = Redis.from_url(redis_url)
    keys = [k async for k in redis.scan_iter(match=f"{studio_settings.redis_prefix}session:*")]
    ttls = [await redis.ttl(k) for k in keys]
    assert ttls and all(0 < ttl <= studio_settings.studio_session_seconds for ttl in ttls)
    await redis.delete(*keys)  # what expiry does
    await redis.aclose()
    assert (await staff.get("/admin/")).status_code == 303


async def test_losing_staff_status_signs_out_at_once(staff: Any) -> None:
    await User.filter(pk=staff.staff_user.pk).update(is_staff=False)
    assert (await staff.get("/admin/")).status_code == 303


async def test_post_without_csrf_token_is_refused_and_changes_nothing(staff: Any) -> None:
    user = await make_user(username="Before")
    url = f"/admin/user/update/{user.pk}"
    data = {"email": user.email, "username": "After"}
    refused = await staff.post(url, data=data)
    assert refused.status_code == 403
    assert "security token" in refused.text
    wrong = await staff.post(url, data={**data, "csrf_token": "x" * 43})
    assert wrong.status_code == 403
    assert (await User.get(pk=user.pk)).username == "Before"
    accepted = await post(staff, url, data)
    assert accepted.status_code == 303
    assert (await User.get(pk=user.pk)).username == "After"


async def test_delete_without_csrf_header_is_refused(staff: Any) -> None:
    user = await make_user()
    assert (await staff.delete(f"/admin/user/delete/{user.pk}")).status_code == 403
    assert await User.exists(pk=user.pk)


async def test_login_form_needs_the_csrf_token_too(anonymous: Any) -> None:
    user = await make_staff()
    await csrf(anonymous)
    response = await anonymous.post(
        "/admin/login", data={"email": user.email, "password": STAFF_PASSWORD}
    )
    assert response.status_code == 403


async def test_cross_site_origin_is_refused_even_with_the_token(staff: Any, caplog: Any) -> None:
    user = await make_user(username="Before")
    response = await staff.post(
        f"/admin/user/update/{user.pk}",
        data={"email": user.email, "username": "After", "csrf_token": await csrf(staff)},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert (await User.get(pk=user.pk)).username == "Before"
    # The log tells an operator behind a proxy what to set.
    assert "'https://evil.example' is not this studio" in caplog.text
    assert "set STUDIO_PUBLIC_URL" in caplog.text


async def test_sign_in_rotates_the_csrf_token(anonymous: Any) -> None:
    user = await make_staff()
    before = await csrf(anonymous)
    await sign_in(anonymous, user.email)
    assert await csrf(anonymous) != before


async def test_cookies_are_secure_under_https(studio_app: Any) -> None:
    user = await make_staff()
    async with client_for(studio_app, "https://testserver") as client:
        page = await client.get("/admin/login")
        assert "Secure" in page.headers["set-cookie"]
        response = await sign_in(client, user.email)
        assert response.status_code == 303
        cookies = response.headers.get_list("set-cookie")
        assert cookies and all("Secure" in cookie for cookie in cookies)


async def test_wrong_passwords_from_one_ip_lock_the_account_there_not_for_its_owner(
    studio_app: Any, studio_settings: Any
) -> None:
    """The hard limit is per account *and* IP (django-axes' policy): an attacker hammering
    the published admin address cannot lock out its owner, who signs in from elsewhere."""
    user = await make_staff()
    async with client_for(studio_app, client_ip="203.0.113.7") as attacker:
        for _ in range(studio_settings.studio_login_failures_per_account_and_ip):
            assert (await sign_in(attacker, user.email, "wrong")).status_code == 401
        blocked = await sign_in(attacker, user.email)  # even the right password
        assert blocked.status_code == 429
        assert "Too many failed sign-ins" in blocked.text
        other = await make_staff()
        assert (await sign_in(attacker, other.email)).status_code == 303  # other accounts fine
    async with client_for(studio_app, client_ip="198.51.100.20") as owner:
        assert (await sign_in(owner, user.email)).status_code == 303


async def test_an_attacker_rotating_ips_is_bounded_per_account(studio_settings: Any) -> None:
    user = await make_staff()
    limits = {"studio_login_failures_per_account_and_ip": 2, "studio_login_failures_per_account": 3}
    async with studio_with(studio_settings, **limits) as app:
        for i in range(3):
            async with client_for(app, client_ip=f"203.0.113.{i + 1}") as attacker:
                assert (await sign_in(attacker, user.email, "wrong")).status_code == 401
        before = verification_count()
        for ip in ("203.0.113.50", "198.51.100.20"):
            async with client_for(app, client_ip=ip) as client:
                assert (await sign_in(client, user.email, "wrong")).status_code == 429
                assert (await sign_in(client, user.email)).status_code == 429
        assert verification_count() == before  # refused before any password check


async def test_one_ip_guessing_many_accounts_is_bounded(studio_settings: Any) -> None:
    """The per-IP limit (high by default, for an office NAT) bounds password spraying."""
    user = await make_staff()
    async with studio_with(studio_settings, studio_login_failures_per_ip=3) as app:
        async with client_for(app, client_ip="203.0.113.9") as sprayer:
            for i in range(3):
                await sign_in(sprayer, f"guess{i}@example.com", "wrong")
            assert (await sign_in(sprayer, user.email)).status_code == 429
        async with client_for(app, client_ip="198.51.100.20") as colleague:
            assert (await sign_in(colleague, user.email)).status_code == 303


async def test_a_right_sign_in_does_not_use_up_the_limit(
    anonymous: Any, studio_settings: Any
) -> None:
    """A successful sign-in takes back its count: signing in often is never locked out."""
    user = await make_staff()
    for _ in range(studio_settings.studio_login_failures_per_account_and_ip + 1):
        assert (await sign_in(anonymous, user.email)).status_code == 303


@pytest.mark.parametrize("attempts", [50, 200])
async def test_concurrent_guesses_check_no_more_passwords_than_the_limit(
    studio_app: Any, studio_settings: Any, attempts: int
) -> None:
    """All at once, the right password among them: no more password checks than the limit
    allows (the right one's own check may come on top, as it takes its count back); once the
    limit is hit, a burst with the right password checks nothing and signs nobody in."""
    user = await make_staff()
    limit = studio_settings.studio_login_failures_per_account_and_ip
    passwords = [f"wrong {i}" for i in range(attempts - 1)] + [STAFF_PASSWORD]
    async with client_for(studio_app, client_ip="203.0.113.77") as attacker:
        await csrf(attacker)
        before = verification_count()
        responses = await asyncio.gather(*(sign_in(attacker, user.email, p) for p in passwords))
        checked = verification_count() - before
        statuses = [r.status_code for r in responses]
        assert set(statuses) <= {303, 401, 429}
        assert statuses.count(401) <= limit
        assert checked == statuses.count(401) + statuses.count(303)
        assert checked <= limit + 1
        assert statuses.count(429) >= attempts - limit - 1

        for _ in range(limit):  # the right one may have signed in above: top up to the limit
            if (await sign_in(attacker, user.email, "wrong")).status_code == 429:
                break
        before = verification_count()
        responses = await asyncio.gather(*(sign_in(attacker, user.email, p) for p in passwords))
        assert [r.status_code for r in responses] == [429] * attempts
        assert verification_count() == before


async def test_concurrent_guesses_over_many_accounts_from_one_ip_are_bounded(
    studio_settings: Any,
) -> None:
    async with (
        studio_with(studio_settings, studio_login_failures_per_ip=5) as app,
        client_for(app, client_ip="203.0.113.78") as sprayer,
    ):
        await csrf(sprayer)
        before = verification_count()
        responses = await asyncio.gather(
            *(sign_in(sprayer, f"guess{i}@example.com", "wrong") for i in range(50))
        )
        assert verification_count() - before == 5
        assert sorted(r.status_code for r in responses) == [401] * 5 + [429] * 45


@pytest.mark.parametrize(
    "kind",
    [
        "unknown e-mail",
        "no password (SAML)",
        "wrong password",
        "not staff",
        "empty password",
        "corrupt hash",
        "too long",
        "NUL",
    ],
)
async def test_every_kind_of_refusal_costs_exactly_one_password_check(
    anonymous: Any, kind: str
) -> None:
    """No refusal is faster than another: accounts cannot be told apart by timing."""
    email, password = f"x{uuid.uuid4().hex[:8]}@example.com", "some password"
    if kind == "no password (SAML)":
        email = (await make_user(is_staff=True)).email
    elif kind == "wrong password":
        email = (await make_staff()).email
    elif kind == "not staff":
        password = "the right password of a non-staff user"
        email = (await make_user(password_hash=hash_password(password), is_staff=False)).email
    elif kind == "empty password":
        email, password = (await make_staff()).email, ""
    elif kind == "corrupt hash":
        email = (await make_user(is_staff=True, password_hash="not-a-hash")).email
    elif kind == "too long":
        email = "a" * 300 + "@example.com"
    elif kind == "NUL":
        email = "ad\x00min@example.com"
    before = verification_count()
    response = await sign_in(anonymous, email, password)
    assert response.status_code == 401
    assert "Wrong e-mail or password" in response.text
    assert verification_count() - before == 1


async def test_staff_change_their_own_password(staff: Any) -> None:
    page = await staff.get("/admin/password")
    assert page.status_code == 200 and "Change your password" in page.text
    wrong = await post(
        staff,
        "/admin/password",
        {"old_password": "nope", "new_password": "new-password-1", "again": "new-password-1"},
    )
    # fastapi-admin rendered a template that does not exist here (a 500).
    assert wrong.status_code == 422 and "current password is wrong" in wrong.text
    differ = await post(
        staff,
        "/admin/password",
        {
            "old_password": STAFF_PASSWORD,
            "new_password": "new-password-1",
            "again": "other-password",
        },
    )
    assert differ.status_code == 422 and "differ" in differ.text
    done = await post(
        staff,
        "/admin/password",
        {
            "old_password": STAFF_PASSWORD,
            "new_password": "new-password-1",
            "again": "new-password-1",
        },
    )
    assert done.status_code == 303 and done.headers["location"] == "/admin/login"
    assert (await sign_in(staff, staff.staff_user.email, "new-password-1")).status_code == 303


async def test_there_is_no_open_init_page(anonymous: Any) -> None:
    """fastapi-admin's /init makes an admin when none exists: the studio has no such route."""
    assert (await anonymous.get("/admin/init")).status_code == 404
    # With a valid CSRF token, so the request reaches routing rather than stopping at CSRF.
    assert (
        await post(anonymous, "/admin/init", {"username": "x", "password": "y"})
    ).status_code == 404
    assert not await User.filter(username="x").exists()


@pytest.mark.real_hashing
async def test_createstaff_makes_the_first_staff_member_who_can_sign_in(
    anonymous: Any, database_url: str
) -> None:
    """`coach-db createstaff`: how the first staff member gets in (no open /init)."""
    plain = await make_user(is_staff=False)
    for email, password in [("First@Example.com", "first password"), (plain.email, "promoted pw")]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "coach_db",
            "createstaff",
            email,
            "--password-stdin",
            env=subprocess_env(database_url),
            stdin=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate(f"{password}\n".encode())
        assert proc.returncode == 0, err.decode()
    assert (await sign_in(anonymous, "first@example.com", "first password")).status_code == 303
    await plain.refresh_from_db()
    assert plain.is_staff and verify_password("promoted pw", plain.password_hash)


async def two_signed_in_clients(app: Any, user: User) -> list[Any]:
    """Two browsers of the same staff user, each signed in through the form."""
    clients = []
    for ip in ("198.51.100.1", "198.51.100.2"):
        transport = httpx.ASGITransport(app=app, client=(ip, 50000))
        client = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        assert (await sign_in(client, user.email)).status_code == 303
        assert (await client.get("/admin/")).status_code == 200
        clients.append(client)
    return clients


async def signed_out(client: Any) -> bool:
    response = await client.get("/admin/")
    await client.aclose()
    return response.status_code == 303 and "/admin/login" in response.headers["location"]


async def test_changing_the_own_password_ends_every_session_of_the_user(
    studio_app: Any,
) -> None:
    user = await make_staff()
    first, second = await two_signed_in_clients(studio_app, user)
    new = "a brand new password"
    done = await post(
        first,
        "/admin/password",
        {"old_password": STAFF_PASSWORD, "new_password": new, "again": new},
    )
    assert done.status_code == 303
    assert await signed_out(first) and await signed_out(second)


async def test_another_staff_setting_a_password_in_the_studio_ends_every_session(
    studio_app: Any, staff: Any
) -> None:
    user = await make_staff()
    sessions = await two_signed_in_clients(studio_app, user)
    edit = {
        "email": user.email,
        "username": user.username,
        "is_staff": "on",
        "role": "admin",
        "password": "x" * 12,
    }
    assert (await post(staff, f"/admin/user/update/{user.pk}", edit)).status_code == 303
    assert [await signed_out(client) for client in sessions] == [True, True]


async def test_a_password_set_by_raw_sql_ends_every_session(studio_app: Any, raw: Any) -> None:
    user = await make_staff()
    sessions = await two_signed_in_clients(studio_app, user)
    new_hash = hash_password("set by an operator")
    await raw.execute('UPDATE "user" SET password_hash = $1 WHERE id = $2', new_hash, user.pk)
    assert [await signed_out(client) for client in sessions] == [True, True]


async def test_losing_staff_status_ends_every_session_for_good(studio_app: Any) -> None:
    user = await make_staff()
    sessions = await two_signed_in_clients(studio_app, user)
    await User.filter(pk=user.pk).update(is_staff=False)
    assert [await signed_out(client) for client in sessions] == [True, True]


@pytest.mark.real_hashing
async def test_createstaff_again_ends_every_session(studio_app: Any, database_url: str) -> None:
    user = await make_staff()
    sessions = await two_signed_in_clients(studio_app, user)
    result = await asyncio.to_thread(
        coach_db_cmd,
        "createstaff",
        user.email,
        "--password-stdin",
        url=database_url,
        stdin="the password createstaff sets\n",
    )
    assert result.returncode == 0, result.stderr
    assert [await signed_out(client) for client in sessions] == [True, True]


async def test_renaming_the_user_keeps_the_sessions(studio_app: Any, staff: Any) -> None:
    """Only the password and staff status matter: an ordinary edit signs nobody out."""
    user = await make_staff()
    sessions = await two_signed_in_clients(studio_app, user)
    edit = {
        "email": user.email,
        "username": "Renamed",
        "is_staff": "on",
        "role": "admin",
        "password": "",
    }
    assert (await post(staff, f"/admin/user/update/{user.pk}", edit)).status_code == 303
    assert [await signed_out(client) for client in sessions] == [False, False]


@pytest.mark.parametrize("email", ["a" * 250 + "@example.com", "x" * 12_000, "ad\x00min@x.org"])
async def test_an_impossible_email_gets_the_normal_refusal_is_counted_and_logged_short(
    studio_app: Any, studio_settings: Any, caplog: Any, email: str
) -> None:
    """It gave a 500 and logged the whole value several times (1 MB e-mails: 18 MB of log)."""
    caplog.set_level(logging.INFO)
    async with client_for(studio_app, client_ip="203.0.113.90") as client:
        for _ in range(studio_settings.studio_login_failures_per_account_and_ip):
            response = await sign_in(client, email, "whatever")
            assert response.status_code == 401
            assert "Wrong e-mail or password" in response.text
        assert (await sign_in(client, email, "whatever")).status_code == 429  # counted
    assert caplog.records
    assert all(len(record.getMessage()) < 400 for record in caplog.records)
    assert all("\x00" not in record.getMessage() for record in caplog.records)


async def test_an_oversized_sign_in_form_is_refused_before_it_is_read(
    anonymous: Any, caplog: Any
) -> None:
    email = "a" * 1_000_000
    response = await sign_in(anonymous, email, "whatever")
    assert response.status_code == 413 and "too large" in response.text
    assert all(len(record.getMessage()) < 400 for record in caplog.records)


@pytest.mark.parametrize(
    ("given", "origin", "port"),
    [
        ("https://Studio.Example.com/", "https://studio.example.com", 443),
        ("https://studio.example.com:8443/admin/", "https://studio.example.com:8443", 8443),
        ("http://10.0.0.5:80", "http://10.0.0.5", 80),
        ("https://[::1]:9443", "https://[::1]:9443", 9443),
    ],
)
def test_public_url_becomes_the_origin_browsers_send(given: str, origin: str, port: int) -> None:
    settings = StudioSettings(studio_public_url=given)
    assert settings.studio_public_url == origin
    assert settings.public_port == port
    assert cookie_names(settings) == (f"studio_session_{port}", f"studio_csrf_{port}")


@pytest.mark.parametrize(
    "given", ["studio.example.com", "ftp://x.org", "https://", "https://x:99999"]
)
def test_a_malformed_public_url_is_refused_with_a_clear_error(given: str) -> None:
    with pytest.raises(ValidationError, match="STUDIO_PUBLIC_URL must look like https://"):
        StudioSettings(studio_public_url=given)


async def test_guessing_the_current_password_on_the_password_page_is_limited(
    staff: Any, studio_settings: Any
) -> None:
    """A stolen session cannot be used to guess the account's password without limit."""
    wrong = {"old_password": "guess", "new_password": "new-password-1", "again": "new-password-1"}
    for _ in range(studio_settings.studio_login_failures_per_account_and_ip):
        assert (await post(staff, "/admin/password", wrong)).status_code == 422
    right = {**wrong, "old_password": STAFF_PASSWORD}
    blocked = await post(staff, "/admin/password", right)
    assert blocked.status_code == 429 and "Too many wrong passwords" in blocked.text
    await staff.staff_user.refresh_from_db()
    assert verify_password(STAFF_PASSWORD, staff.staff_user.password_hash)


async def test_forged_failures_from_many_addresses_do_not_lock_out_a_known_device(
    studio_settings: Any,
) -> None:
    """Issue 18 (OWASP's device cookies): failures from 10 addresses lock the account for
    unknown devices only; a browser that signed in before still signs in, from anywhere."""
    user = await make_staff()
    limits = {"studio_login_failures_per_account_and_ip": 5, "studio_login_failures_per_account": 8}
    async with studio_with(studio_settings, **limits) as app:
        async with client_for(app, client_ip="198.51.100.20") as owner:
            assert (await sign_in(owner, user.email)).status_code == 303
            device = {c.name: c.value for c in owner.cookies.jar if "device" in c.name}
            assert len(device) == 1
        for i in range(10):
            async with client_for(app, client_ip=f"203.0.113.{i + 1}") as attacker:
                for _ in range(5):
                    assert (await sign_in(attacker, user.email, "wrong")).status_code in {401, 429}
        async with client_for(app, client_ip="192.0.2.5") as stranger:
            assert (await sign_in(stranger, user.email)).status_code == 429
        async with client_for(app, client_ip="192.0.2.6") as travelling_owner:
            travelling_owner.cookies.update(device)
            assert (await sign_in(travelling_owner, user.email)).status_code == 303
        (name, value), other = next(iter(device.items())), await make_staff()
        forged = value[:-1] + ("0" if value[-1] != "0" else "1")
        for cookie, email in ((forged, user.email), (value, other.email)):
            async with client_for(app, client_ip="192.0.2.7") as thief:
                thief.cookies.set(name, cookie)
                for _ in range(8):  # an unknown device for this e-mail: the account limit
                    await sign_in(thief, email, "wrong")
                assert (await sign_in(thief, email)).status_code == 429
        async with client_for(app, client_ip="192.0.2.8") as stolen:  # a known device is
            stolen.cookies.update(device)  # itself limited, and only itself
            for _ in range(5):
                assert (await sign_in(stolen, user.email, "wrong")).status_code == 401
            assert (await sign_in(stolen, user.email)).status_code == 429


async def test_lock_out_keys_are_keyed_with_a_secret_and_go_with_the_user(
    studio_settings: Any, redis_url: str
) -> None:
    """Issue 18: no Redis key is a plain digest of the e-mail, and deleting or erasing the
    user in the studio deletes their counters."""
    import hashlib

    admin = await make_staff()
    doomed, erased = await make_staff(), await make_staff()
    async with studio_with(studio_settings) as app:
        prefix = studio_of(app).state.settings.redis_prefix
        redis = Redis.from_url(redis_url, decode_responses=True)

        async def counters(email: str) -> list[str]:
            from coach_db.apps.studio.auth import account_digest

            key = (await redis.get(f"{prefix}secret-key")).encode()
            digest = account_digest(key, email)
            return [k async for k in redis.scan_iter(match=f"{prefix}login-failures:*{digest}*")]

        async with client_for(app, client_ip="203.0.113.4") as attacker:
            for person in (doomed, erased):
                assert (await sign_in(attacker, person.email, "wrong")).status_code == 401
        plain = hashlib.sha256(doomed.email.encode()).hexdigest()[:32]
        assert not [k async for k in redis.scan_iter(match=f"*{plain}*")]
        assert len(await counters(doomed.email)) == 2 and len(await counters(erased.email)) == 2
        async with client_for(app) as studio:
            assert (await sign_in(studio, admin.email)).status_code == 303
            gone = await delete(studio, f"/admin/user/delete/{doomed.pk}")
            assert gone.status_code == 200, gone.text
            confirm = {"confirm": erased.email}
            assert (
                await post(studio, f"/admin/user/erase/{erased.pk}", confirm)
            ).status_code == 303
        assert await counters(doomed.email) == [] and await counters(erased.email) == []
        await redis.aclose()


def test_forwarded_for_is_believed_from_no_proxy_unless_configured(studio_settings: Any) -> None:
    """Issue 18: by default X-Forwarded-For is believed from nobody (the studio listens on
    127.0.0.1, where any local process could forge it); only from STUDIO_TRUSTED_PROXIES."""
    from coach_db.apps.studio.app import uvicorn_config

    assert StudioSettings.model_fields["studio_trusted_proxies"].default == ""
    default = uvicorn_config(studio_settings.model_copy(update={"studio_trusted_proxies": ""}))
    assert default.proxy_headers is False
    behind = studio_settings.model_copy(update={"studio_trusted_proxies": "10.0.0.2"})
    config = uvicorn_config(behind)
    assert config.proxy_headers is True and config.forwarded_allow_ips == "10.0.0.2"
