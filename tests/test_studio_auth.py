"""Studio sign-in: staff only, sessions in Redis, CSRF, Secure cookies, the login rate limit."""

from __future__ import annotations

import asyncio
import os
import sys
from typing import Any

from redis.asyncio import Redis

from admin.auth import SESSION_COOKIE
from coach_db import User
from coach_db.passwords import hash_password, verify_password
from tests.factories import make_user
from tests.studio import STAFF_PASSWORD, client_for, csrf, make_staff, post, sign_in


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
        c for c in response.headers.get_list("set-cookie") if c.startswith(SESSION_COOKIE)
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
        assert SESSION_COOKIE not in response.headers.get("set-cookie", "")


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


async def test_logout_is_a_csrf_protected_post_that_ends_the_session(staff: Any) -> None:
    assert (await staff.get("/admin/logout")).status_code == 405
    assert (await staff.post("/admin/logout")).status_code == 403  # no token
    token = staff.cookies[SESSION_COOKIE]
    response = await post(staff, "/admin/logout")
    assert response.status_code == 303 and response.headers["location"] == "/admin/login"
    staff.cookies.set(SESSION_COOKIE, token, path="/admin")  # a copied cookie is worthless now
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


async def test_cross_site_origin_is_refused_even_with_the_token(staff: Any) -> None:
    user = await make_user(username="Before")
    response = await staff.post(
        f"/admin/user/update/{user.pk}",
        data={"email": user.email, "username": "After", "csrf_token": await csrf(staff)},
        headers={"Origin": "https://evil.example"},
    )
    assert response.status_code == 403
    assert (await User.get(pk=user.pk)).username == "Before"


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


async def test_rate_limit_per_account_blocks_even_the_right_password(
    anonymous: Any, studio_settings: Any
) -> None:
    user = await make_staff()
    for _ in range(studio_settings.studio_login_failures_per_account):
        assert (await sign_in(anonymous, user.email, "wrong")).status_code == 401
    blocked = await sign_in(anonymous, user.email)
    assert blocked.status_code == 429
    assert "Too many failed sign-ins" in blocked.text
    other = await make_staff()
    assert (await sign_in(anonymous, other.email)).status_code == 303  # other accounts unaffected


async def test_rate_limit_per_ip_across_accounts(anonymous: Any, studio_settings: Any) -> None:
    for i in range(studio_settings.studio_login_failures_per_ip):
        await sign_in(anonymous, f"guess{i}@example.com", "wrong")
    user = await make_staff()
    assert (await sign_in(anonymous, user.email)).status_code == 429


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
    assert (await anonymous.get("/admin/init")).status_code in (303, 404)
    assert (
        await post(anonymous, "/admin/init", {"username": "x", "password": "y"})
    ).status_code in (303, 401, 404, 405)
    assert not await User.filter(username="x").exists()


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
            env={**os.environ, "DATABASE_URL": database_url},
            stdin=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await proc.communicate(f"{password}\n".encode())
        assert proc.returncode == 0, err.decode()
    assert (await sign_in(anonymous, "first@example.com", "first password")).status_code == 303
    await plain.refresh_from_db()
    assert plain.is_staff and verify_password("promoted pw", plain.password_hash)
