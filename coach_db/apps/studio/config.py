"""Studio settings, read from the environment (or .env) on top of coach_db's."""

from __future__ import annotations

from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator

from coach_db.config import Settings

# Where the data browser lives; `/` redirects there and its assets are under ADMIN_PATH/static.
ADMIN_PATH = "/admin"


class StudioSettings(Settings):
    """coach_db's settings (DATABASE_URL, pool sizes) plus the studio's own."""

    # repr=False: a logged or printed settings object never shows the password.
    redis_url: str = Field(default="redis://127.0.0.1:6379/0", repr=False)
    # Every studio key in Redis starts with this, so one Redis can serve several studios.
    redis_prefix: str = "studio:"
    studio_host: str = "127.0.0.1"
    studio_port: int = Field(default=5555, ge=1, le=65535)
    # Sign-ins last 8 hours (60 s * 60 min * 8 h); the cookie and the Redis key expire together.
    studio_session_seconds: int = Field(default=8 * 60 * 60, ge=60)
    # Secure cookies are automatic over HTTPS; set this behind a TLS proxy that does not say so.
    studio_secure_cookies: bool = False
    # The address people open behind a reverse proxy (https://studio.example.com): requests whose
    # Origin is this one pass the CSRF origin check whatever Host the proxy sends, cookies are
    # Secure when it is https, and the cookie names carry its port.
    studio_public_url: str | None = None
    # Comma-separated proxy addresses (or "*") whose X-Forwarded-For/-Proto uvicorn believes: the
    # client IP of the sign-in rate limit and the https scheme come from them. None by default:
    # the studio listens on 127.0.0.1, where any local process could otherwise forge addresses.
    studio_trusted_proxies: str = ""
    # Signs device cookies and keys the sign-in lock-out counters in Redis (HMAC). Unset: a
    # random key kept in Redis under <prefix>secret-key, shared by every studio process.
    studio_secret_key: SecretStr | None = Field(default=None, repr=False)
    # Failed sign-ins allowed within the window (15 minutes), counted before the password is
    # checked: per e-mail from one client IP (the hard limit, as django-axes does), per e-mail
    # from anywhere (bounds an attacker who rotates addresses, high enough that one attacker
    # cannot lock out the owner), per client IP over all e-mails (high: an office NAT).
    # List pages count their rows up to this many and then say "more than 10,000": an exact
    # COUNT(*) of 10M messages took ~1 s on every view. Pages beyond stay reachable.
    studio_exact_count_limit: int = Field(default=10_000, ge=1)
    # The SQL console's read-only role (`coach-db console-role` prints it); unset: the console
    # page says how to turn it on, and runs nothing.
    coach_db_console_url: str | None = Field(default=None, repr=False)
    # Seconds any one statement of a studio page may run before it is cancelled and the page
    # says what to narrow (503): no filter can hold a connection and a core for a minute.
    studio_statement_timeout: float = Field(default=5.0, gt=0)
    # How many requests for the same page (path and query string) run at once in one studio
    # process; more wait their turn, up to studio_statement_timeout, so that clients hammering
    # one costly page leave the machine to the other pages (fair_share.py).
    studio_same_page_concurrency: int = Field(default=1, ge=1)
    studio_login_failures_per_account_and_ip: int = Field(default=5, ge=1)
    studio_login_failures_per_account: int = Field(default=50, ge=1)
    studio_login_failures_per_ip: int = Field(default=100, ge=1)
    studio_login_window_seconds: int = Field(default=15 * 60, ge=1)

    @field_validator("studio_public_url")
    @classmethod
    def _public_origin(cls, value: str | None) -> str | None:
        if not value:
            return None
        parts = urlsplit(value.strip().lower())
        try:
            port = parts.port
        except ValueError:
            port = -1
        if parts.scheme not in {"http", "https"} or not parts.hostname or port == -1:
            raise ValueError("STUDIO_PUBLIC_URL must look like https://studio.example.com")
        # The origin as browsers send it: no path, no user, no default port.
        host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
        default = 443 if parts.scheme == "https" else 80
        return f"{parts.scheme}://{host}" + (f":{port}" if port and port != default else "")

    @property
    def public_port(self) -> int:
        """The port people's browsers connect to: it names the cookies of this studio."""
        if self.studio_public_url:
            parts = urlsplit(self.studio_public_url)
            return parts.port or (443 if parts.scheme == "https" else 80)
        return self.studio_port


def get_studio_settings() -> StudioSettings:
    """Read the settings now, so a changed environment is always seen."""
    return StudioSettings()
