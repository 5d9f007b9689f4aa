"""Studio settings, read from the environment (or .env) on top of coach_db's."""

from __future__ import annotations

from pydantic import Field

from coach_db.config import Settings

# Where the data browser lives; `/` redirects there and its assets are under ADMIN_PATH/static.
ADMIN_PATH = "/admin"


class StudioSettings(Settings):
    """coach_db's settings (DATABASE_URL, pool sizes) plus the studio's own."""

    redis_url: str = "redis://127.0.0.1:6379/0"
    # Every studio key in Redis starts with this, so one Redis can serve several studios.
    redis_prefix: str = "studio:"
    studio_host: str = "127.0.0.1"
    studio_port: int = Field(default=5555, ge=1, le=65535)
    # Sign-ins last 8 hours (60 s * 60 min * 8 h); the cookie and the Redis key expire together.
    studio_session_seconds: int = Field(default=8 * 60 * 60, ge=60)
    # Secure cookies are automatic over HTTPS; set this behind a TLS proxy that does not say so.
    studio_secure_cookies: bool = False
    # Failed sign-ins allowed per e-mail and per client IP within the window (15 minutes).
    studio_login_failures_per_account: int = Field(default=5, ge=1)
    studio_login_failures_per_ip: int = Field(default=20, ge=1)
    studio_login_window_seconds: int = Field(default=15 * 60, ge=1)


def get_studio_settings() -> StudioSettings:
    """Read the settings now, so a changed environment is always seen."""
    return StudioSettings()
