"""Staff sign-in: sessions in Redis, the login rate limit, and CSRF protection.

Staff are ordinary `User` rows with `is_staff`; their password is checked with the package's
one hasher (`coach_db.passwords`), so there is no separate admin table and no open `/init`.
"""

from __future__ import annotations

# compat's shims run before fastapi_admin is first imported (see compat).
from coach_db.apps.studio import compat  # noqa: F401

# isort: split

import hashlib
import hmac
import logging
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
    HTTP_413_CONTENT_TOO_LARGE,
    HTTP_422_UNPROCESSABLE_CONTENT,
    HTTP_429_TOO_MANY_REQUESTS,
)
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from tortoise.exceptions import ValidationError

from coach_db.apps.studio.config import StudioSettings
from coach_db.apps.studio.templating import render
from coach_db.db import primary
from coach_db.models import User
from coach_db.passwords import authenticate, hash_password, verify_password

if TYPE_CHECKING:
    from redis.asyncio import Redis

logger = logging.getLogger("admin.auth")

# Cookie names end in the studio's public port (`cookie_names`): cookies are shared by every
# port of a host, so two studios on one host would otherwise sign each other out.
SESSION_COOKIE_PREFIX = "studio_session_"
CSRF_COOKIE_PREFIX = "studio_csrf_"
# A browser that signed in before carries a device cookie (OWASP's "device cookies"): failures
# from elsewhere do not lock it out. A year (365 days * 24 h * 3600 s); renewed at each sign-in.
DEVICE_COOKIE_PREFIX = "studio_device_"
DEVICE_COOKIE_SECONDS = 365 * 24 * 3600
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})
# Forms in the studio are small; a bigger body is refused before it is buffered for the check.
MAX_FORM_BYTES = 2 * 1024 * 1024
# The sign-in form is three short fields and a token: anything bigger is not a person signing in.
MAX_LOGIN_FORM_BYTES = 16 * 1024
# The longest e-mail the database can hold (RFC 5321's 254); a longer one cannot be an account.
MAX_EMAIL_CHARS: int = User._meta.fields_map["email"].max_length  # type: ignore[attr-defined]
# How much of a refused e-mail the log shows.
LOGGED_EMAIL_CHARS = 80


def settings_of(request: Request) -> StudioSettings:
    settings: StudioSettings = request.app.state.settings
    return settings


def redis_of(request: Request) -> Redis:
    redis: Redis = request.app.redis
    return redis


def always_secure(settings: StudioSettings) -> bool:
    """Secure cookies even on plain HTTP: the studio is behind a TLS proxy."""
    public = settings.studio_public_url or ""
    return settings.studio_secure_cookies or public.startswith("https:")


def is_secure(request: Request) -> bool:
    return request.url.scheme == "https" or always_secure(settings_of(request))


def cookie_names(settings: StudioSettings) -> tuple[str, str]:
    """The (session, CSRF) cookie names of this studio."""
    port = settings.public_port
    return f"{SESSION_COOKIE_PREFIX}{port}", f"{CSRF_COOKIE_PREFIX}{port}"


def device_cookie_name(settings: StudioSettings) -> str:
    return f"{DEVICE_COOKIE_PREFIX}{settings.public_port}"


async def studio_key(request: Request) -> bytes:
    """The studio's secret: STUDIO_SECRET_KEY, else a random key made once in Redis (SET NX, so
    every studio process on that Redis agrees). Cached for the app's life."""
    key: bytes | None = getattr(request.app.state, "studio_key", None)
    if key is None:
        settings = settings_of(request)
        if settings.studio_secret_key is not None:
            key = settings.studio_secret_key.get_secret_value().encode()
        else:
            name = f"{settings.redis_prefix}secret-key"
            redis = redis_of(request)
            await redis.set(name, secrets.token_hex(32), nx=True)
            key = str(await redis.get(name)).encode()
        request.app.state.studio_key = key
    return key


def account_digest(key: bytes, email: str) -> str:
    """How Redis names an account: an HMAC, so a key confirms no guessed e-mail without the
    studio's secret."""
    message = b"account:" + email.encode("utf-8", "surrogatepass")
    return hmac.new(key, message, hashlib.sha256).hexdigest()[:32]


def _device_signature(key: bytes, account: str, nonce: str) -> str:
    return hmac.new(key, f"device:{account}:{nonce}".encode(), hashlib.sha256).hexdigest()[:32]


def new_device_cookie(key: bytes, email: str) -> str:
    nonce = secrets.token_urlsafe(16)
    return f"{nonce}.{_device_signature(key, account_digest(key, email), nonce)}"


def known_device(request: Request, key: bytes, email: str) -> str | None:
    """The device's nonce when the browser carries a device cookie signed for this e-mail."""
    value = request.cookies.get(device_cookie_name(settings_of(request)), "")
    nonce, _, signature = value.partition(".")
    if not nonce or len(value) > 128:
        return None
    expected = _device_signature(key, account_digest(key, email), nonce)
    return nonce if hmac.compare_digest(signature, expected) else None


async def forget_login_failures(request: Request, emails: list[str]) -> None:
    """Delete the lock-out counters of accounts that are going (deleted or erased)."""
    settings = settings_of(request)
    redis = redis_of(request)
    key = await studio_key(request)
    prefix = f"{settings.redis_prefix}login-failures"
    for email in emails:
        account = account_digest(key, email.strip().lower())
        keys = [f"{prefix}:account:{account}"]
        keys += [k async for k in redis.scan_iter(match=f"{prefix}:account-ip:{account}:*")]
        await redis.delete(*keys)


def _session_key(settings: StudioSettings, token: str) -> str:
    # Only a digest of the token is stored: a leaked Redis dump does not hand out sessions.
    return f"{settings.redis_prefix}session:{hashlib.sha256(token.encode()).hexdigest()}"


def _credentials_stamp(user: User) -> str:
    """Changes whenever the user's password, staff flag or role changes.

    A session remembers the stamp of its sign-in; once the password changes (each hash has its
    own salt), by the user's own page, another staff member's edit, `coach-db createstaff` or
    raw SQL, or the role or staff flag changes (the database bumps `credentials_version`, so
    switching staff off and on again does not bring old sessions back), every older session
    of that user no longer matches and is refused on its next request.
    """
    material = f"{user.credentials_version}:{user.password_hash or ''}"
    return hashlib.sha256(material.encode()).hexdigest()[:32]


async def load_staff(request: Request) -> None:
    """App-wide dependency: `request.state.admin` is the signed-in staff user, or None.

    The user is read again on every request, so a user who lost `is_staff` or whose password
    changed is out at once, in every session.
    """
    request.state.admin = None
    settings = settings_of(request)
    token = request.cookies.get(cookie_names(settings)[0])
    if not token:
        return
    key = _session_key(settings, token)
    value = await redis_of(request).get(key)
    if value is None:
        return
    user_id, _, stamp = str(value).partition(":")
    with primary():  # a replica may not have the new staff user or password yet
        user = await User.get_or_none(pk=int(user_id)) if user_id.isdigit() else None
    if (
        user is None
        or not user.is_staff
        or not hmac.compare_digest(stamp, _credentials_stamp(user))
    ):
        await redis_of(request).delete(key)
        return
    request.state.admin = user


async def start_session(redis: Redis, settings: StudioSettings, user: User) -> str:
    """A new sign-in for `user`: the token for the cookie; Redis forgets it after the TTL."""
    token = secrets.token_urlsafe(32)
    value = f"{user.pk}:{_credentials_stamp(user)}"
    await redis.set(_session_key(settings, token), value, ex=settings.studio_session_seconds)
    return token


def require_staff(request: Request) -> User:
    user: User | None = request.state.admin
    if user is None:
        raise HTTPException(status_code=HTTP_401_UNAUTHORIZED)
    return user


# Checks every limit and, only when none is reached, counts the attempt in all of them, in one
# atomic step: however many sign-ins run at once, no more passwords are checked than the limits
# allow. A key's window starts with its first count. Returns the seconds to wait, 0 to go on.
_COUNT_ATTEMPT = """
local wait = 0
for i, key in ipairs(KEYS) do
  local count = tonumber(redis.call('GET', key) or '0')
  if count >= tonumber(ARGV[i]) then
    local ttl = redis.call('TTL', key)
    if ttl < 1 then ttl = 1 end
    if ttl > wait then wait = ttl end
  end
end
if wait > 0 then return wait end
for _, key in ipairs(KEYS) do
  if redis.call('INCR', key) == 1 then redis.call('EXPIRE', key, ARGV[#ARGV]) end
end
return 0
"""

# A successful sign-in takes back its own count (the counters hold failures and checks in
# flight), never below zero.
_REFUND_ATTEMPT = """
for _, key in ipairs(KEYS) do
  if tonumber(redis.call('GET', key) or '0') > 0 then redis.call('DECR', key) end
end
return 0
"""


class LoginRateLimit:
    """Failed sign-ins in Redis: from a known device (a valid device cookie for the e-mail), per
    device only; from unknown devices, per (e-mail, client IP), per e-mail and per client IP.

    Every attempt is counted *before* its password is checked and refunded when it succeeds,
    so the limits bound the argon2 verifications under any concurrency. The e-mail is stored
    as an HMAC with the studio's secret: a key's size does not depend on what a client sends,
    and a key does not confirm a guessed e-mail.
    """

    def __init__(self, redis: Redis, settings: StudioSettings, key: bytes) -> None:
        self.redis = redis
        self.settings = settings
        self.key = key

    def _keys(self, email: str, ip: str, device: str | None) -> tuple[list[str], list[int]]:
        prefix = f"{self.settings.redis_prefix}login-failures"
        settings = self.settings
        if device is not None:
            digest = hashlib.sha256(device.encode()).hexdigest()[:32]
            return [f"{prefix}:device:{digest}"], [
                settings.studio_login_failures_per_account_and_ip
            ]
        account = account_digest(self.key, email)
        return (
            [
                f"{prefix}:account-ip:{account}:{ip}",
                f"{prefix}:account:{account}",
                f"{prefix}:ip:{ip}",
            ],
            [
                settings.studio_login_failures_per_account_and_ip,
                settings.studio_login_failures_per_account,
                settings.studio_login_failures_per_ip,
            ],
        )

    async def attempt(self, email: str, ip: str, device: str | None = None) -> int:
        """Count an attempt; the seconds to wait instead when a limit is reached (then no count)."""
        keys, limits = self._keys(email, ip, device)
        args = [*limits, self.settings.studio_login_window_seconds]
        wait = await self.redis.eval(_COUNT_ATTEMPT, len(keys), *keys, *args)
        return int(wait)

    async def succeeded(self, email: str, ip: str, device: str | None = None) -> None:
        keys, _ = self._keys(email, ip, device)
        await self.redis.eval(_REFUND_ATTEMPT, len(keys), *keys)


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


def _usable_email(email: str) -> bool:
    """Something that could be a stored e-mail: the field's own validators (length), no control
    characters, UTF-8."""
    if len(email) > MAX_EMAIL_CHARS or not email.isprintable():
        return False
    try:
        email.encode("utf-8")
        User._meta.fields_map["email"].validate(email)
    except (UnicodeEncodeError, ValidationError):  # a lone surrogate; too short
        return False
    return True


def _excerpt(email: str) -> str:
    shown = repr(email[:LOGGED_EMAIL_CHARS])
    return shown + (
        f" (+{len(email) - LOGGED_EMAIL_CHARS} chars)" if len(email) > LOGGED_EMAIL_CHARS else ""
    )


@router.post("/login")
async def login(request: Request) -> Response:
    settings = settings_of(request)
    form = await request.form()
    email = str(form.get("email", "")).strip().lower()
    password = str(form.get("password", ""))
    target = str(form.get("next", ""))
    key = await studio_key(request)
    limit = LoginRateLimit(redis_of(request), settings, key)
    ip = request.client.host if request.client else "unknown"
    usable = _usable_email(email)
    shown_email = email if usable else ""
    device = known_device(request, key, email)

    wait = await limit.attempt(email, ip, device)
    if wait:
        minutes = -(-wait // 60)
        logger.warning("studio sign-in refused (rate limit) for %s from %s", _excerpt(email), ip)
        return _login_page(
            request,
            HTTP_429_TOO_MANY_REQUESTS,
            error=f"Too many failed sign-ins. Try again in {minutes} minute(s).",
            email=shown_email,
            next=target,
        )
    # Exactly one password verification for every attempt (a dummy hash when there is no
    # account or no password), off the event loop, so no kind of refusal is faster than another;
    # a bcrypt hash from the Prisma package's Node app is upgraded to argon2id on success.
    user = await authenticate(email if usable else "", password)
    if user is None or not user.is_staff:
        logger.info("studio sign-in refused for %s from %s", _excerpt(email), ip)
        return _login_page(
            request,
            HTTP_401_UNAUTHORIZED,
            error="Wrong e-mail or password, or the account is not a staff account.",
            email=shown_email,
            next=target,
        )
    await limit.succeeded(email, ip, device)

    session_cookie, _ = cookie_names(settings)
    token = await start_session(redis_of(request), settings, user)
    response = _redirect(_safe_next(request, target))
    response.set_cookie(
        session_cookie,
        token,
        max_age=settings.studio_session_seconds,
        path=request.app.admin_path or "/",
        httponly=True,
        samesite="lax",
        secure=is_secure(request),
    )
    response.set_cookie(
        device_cookie_name(settings),
        new_device_cookie(key, email),
        max_age=DEVICE_COOKIE_SECONDS,
        path=request.app.admin_path or "/",
        httponly=True,
        samesite="lax",
        secure=is_secure(request),
    )
    # A new CSRF token with the new session: a token planted before sign-in is worthless.
    set_csrf_cookie(response, settings, secrets.token_urlsafe(32), secure=is_secure(request))
    return response


@router.post("/logout")
async def logout(request: Request) -> Response:
    session_cookie, _ = cookie_names(settings_of(request))
    token = request.cookies.get(session_cookie)
    if token:
        await redis_of(request).delete(_session_key(settings_of(request), token))
    response = _redirect(request.app.admin_path + "/login")
    response.delete_cookie(session_cookie, path=request.app.admin_path or "/")
    return response


@router.get("/password")
async def password_view(request: Request, user: StaffUser, resources: Sidebar) -> Response:
    context = {"error": None, "resources": resources, "page_title": "Change password"}
    return render(request, "providers/login/password.html", context)


@router.post("/password")
async def change_password(request: Request, user: StaffUser, resources: Sidebar) -> Response:
    """A staff member changes their own password, then signs in again with it.

    A wrong current password counts as a failed sign-in of the account: a stolen session
    cannot be used to guess the password without limit.
    """
    form = await request.form()
    old, new, again = (str(form.get(k, "")) for k in ("old_password", "new_password", "again"))
    limit = LoginRateLimit(redis_of(request), settings_of(request), await studio_key(request))
    ip = request.client.host if request.client else "unknown"
    error, status = None, HTTP_422_UNPROCESSABLE_CONTENT
    if wait := await limit.attempt(user.email, ip):
        error = f"Too many wrong passwords. Try again in {-(-wait // 60)} minute(s)."
        status = HTTP_429_TOO_MANY_REQUESTS
    elif not await run_in_threadpool(verify_password, old, user.password_hash):
        error = "The current password is wrong."
    else:
        await limit.succeeded(user.email, ip)
        if len(new) < 8:
            error = "The new password must have at least 8 characters."
        elif new != again:
            error = "The two new passwords differ."
    if error:
        return render(
            request,
            "providers/login/password.html",
            {"error": error, "resources": resources, "page_title": "Change password"},
            status,
        )
    user.password_hash = await run_in_threadpool(hash_password, new)
    await user.save(update_fields=["password_hash"])
    return await logout(request)  # every other session of the user ends with the new hash


def set_csrf_cookie(
    response: Response, settings: StudioSettings, token: str, *, secure: bool
) -> None:
    # Readable only by the server (HttpOnly): pages carry the token in a form field or <meta>.
    name = cookie_names(settings)[1]
    response.set_cookie(name, token, path="/", httponly=True, samesite="lax", secure=secure)


class CSRFMiddleware:
    """Refuse every state-changing request without the CSRF token (double-submit cookie).

    The token travels in an HttpOnly cookie and, from our own pages, in the `csrf_token` form
    field or the `X-CSRF-Token` header; another site can send the cookie but cannot read it.
    A cross-site `Origin` header is refused too: the same origin is the request's own (Host and
    scheme) or the configured STUDIO_PUBLIC_URL (behind a proxy that rewrites Host).
    """

    def __init__(self, app: ASGIApp, *, settings: StudioSettings) -> None:
        self.app = app
        self.settings = settings
        self.cookie = cookie_names(settings)[1]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        cookie = request.cookies.get(self.cookie, "")
        token = cookie if len(cookie) >= 32 else secrets.token_urlsafe(32)
        scope.setdefault("state", {})["csrf_token"] = token

        if scope["method"] not in SAFE_METHODS:
            is_login = scope["path"].rstrip("/").endswith("/login")
            body = await _read_body(receive, MAX_LOGIN_FORM_BYTES if is_login else MAX_FORM_BYTES)
            if body is None:
                await _refused(request, HTTP_413_CONTENT_TOO_LARGE, "The form is too large.")(
                    scope, receive, send
                )
                return
            submitted = request.headers.get(CSRF_HEADER) or _form_token(request.headers, body)
            reason = None
            if not _same_origin(request, self.settings.studio_public_url):
                reason = "The request came from another site."
                # What an operator behind a proxy needs to know (bounded: headers are the
                # client's). A real cross-site request logs this too, harmlessly.
                logger.warning(
                    "refused %s %s: Origin %r is not this studio (Host %r, scheme %s); behind a "
                    "reverse proxy set STUDIO_PUBLIC_URL to the address people open",
                    scope["method"],
                    scope["path"][:200],
                    request.headers.get("origin", "")[:200],
                    request.headers.get("host", "")[:200],
                    scope.get("scheme"),
                )
            elif not cookie or not submitted or not hmac.compare_digest(submitted, cookie):
                reason = "The form's security token is missing or out of date."
            if reason:
                await _refused(request, HTTP_403_FORBIDDEN, reason)(scope, receive, send)
                return
            receive = _replay(body, receive)

        if token != cookie:
            secure = always_secure(self.settings) or scope.get("scheme") == "https"
            send = _adding_csrf_cookie(send, self.settings, token, secure)
        await self.app(scope, receive, send)


async def _read_body(receive: Receive, limit: int) -> bytes | None:
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
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


def _same_origin(request: Request, public_origin: str | None) -> bool:
    origin = request.headers.get("origin")
    if origin is None or origin == "null":
        return origin is None
    if public_origin is not None and origin.lower() == public_origin:
        return True
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


def _adding_csrf_cookie(send: Send, settings: StudioSettings, token: str, secure: bool) -> Send:
    async def send_with_cookie(message: Message) -> None:
        if message["type"] == "http.response.start":
            carrier = Response()
            set_csrf_cookie(carrier, settings, token, secure=secure)
            cookie = carrier.headers["set-cookie"].encode("latin-1")
            message["headers"] = [*message.get("headers", []), (b"set-cookie", cookie)]
        await send(message)

    return send_with_cookie


def _refused(request: Request, status_code: int, reason: str) -> Response:
    return render(
        request,
        "error.html",
        {"status_code": status_code, "title": "Request refused", "message": reason},
        status_code,
    )


# The studio's pages load only their own scripts, styles and fonts (no CDN). Inline <script>
# and style attributes remain in fastapi-admin's templates, hence 'unsafe-inline'; every stored
# value is rendered escaped. No other site may frame the studio (clickjacking).
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "worker-src 'self' blob:",  # the JSON editor (Ace) checks syntax in a blob: worker
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
SECURITY_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class SecurityHeadersMiddleware:
    """The headers a careful admin sends on every response; no-store on everything but assets.

    Pages show the data of a signed-in user, so neither the browser nor a proxy may keep them
    (the back button after sign-out, a shared computer); the pinned CSS/JS may be cached.
    """

    def __init__(self, app: ASGIApp, *, static_prefix: str, https_only: bool = False) -> None:
        self.app = app
        self.static_prefix = static_prefix
        # Behind an https STUDIO_PUBLIC_URL browsers must never fall back to plain http.
        self.https_only = https_only

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = scope["path"].startswith(self.static_prefix)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [
                    (k, v)
                    for k, v in message.get("headers", [])
                    if cacheable or k.lower() != b"cache-control"
                ]
                headers += SECURITY_HEADERS
                if self.https_only or scope.get("scheme") == "https":
                    headers.append((b"strict-transport-security", b"max-age=31536000"))
                if not cacheable:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
