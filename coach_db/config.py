"""Settings read from the environment at call time, and the TORTOISE_ORM config Aerich reads."""

from __future__ import annotations

import re
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from coach_db.embedded import running_state
from coach_db.errors import DatabaseUrlInvalid, DatabaseUrlMissing

MODELS_MODULE = "coach_db.models"
APP_LABEL = "models"
_CREDENTIALS = re.compile(r"(?P<user>[^:/?#@\s]*):(?P<password>[^@/\s]+)@")
_SCHEMES = {"postgres", "postgresql", "asyncpg", "postgresql+asyncpg"}


class Settings(BaseSettings):
    """Everything configurable through the environment (or a .env file)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str | None = None
    # Pool sizes and asyncpg's prepared-statement cache; set DB_STATEMENT_CACHE_SIZE=0 behind
    # PgBouncer in transaction mode. A value in the URL's query string wins over these.
    db_pool_min_size: int = Field(default=1, ge=0)
    db_pool_max_size: int = Field(default=10, ge=1)
    db_statement_cache_size: int = Field(default=100, ge=0)
    # Seconds to wait for a connection before "can't reach the database server".
    db_connect_timeout: int = Field(default=10, ge=1)
    # What the pool undoes when a query gives its connection back. "light": roll back a
    # transaction left open (nothing else to undo: coach_db never leaves session state, as
    # PgBouncer's transaction mode requires too). "full": also asyncpg's RESET ALL, UNLISTEN *,
    # CLOSE ALL and pg_advisory_unlock_all(), one more round trip per query (1.5x slower small
    # queries), for services that SET session settings or take session locks on the pool.
    db_pool_reset: Literal["light", "full"] = "light"


def get_settings() -> Settings:
    """Read the settings now, so a changed environment is always seen."""
    return Settings()


def mask_url(url: str) -> str:
    """The URL with its password replaced by *** and its query dropped, safe to log or show."""
    # A regex rather than urlsplit alone, so that malformed URLs are masked too.
    masked = _CREDENTIALS.sub(lambda m: f"{m['user']}:***@", url, count=1)
    if masked.startswith("unix://"):
        return masked.split("?", 1)[0]  # a socket path, nothing secret in it
    try:
        parts = urlsplit(masked)
        # Keep a socket directory (it says where the server is); drop pool settings and secrets.
        host = dict(parse_qsl(parts.query)).get("host")
        return urlunsplit(parts._replace(query=f"host={host}" if host else ""))
    except ValueError:
        return masked.split("?", 1)[0]


def database_url(url: str | None = None) -> str:
    """`url` or DATABASE_URL, validated and normalised for Tortoise, with the pool settings."""
    settings = get_settings()
    raw = (url or settings.database_url or "").strip()
    if not raw and (state := running_state()) and state.database_url:
        raw = state.database_url  # the embedded server of a running `coach-db studio`
    if not raw:
        raise DatabaseUrlMissing()
    masked = mask_url(raw)
    try:
        parts = urlsplit(raw)
        parts.port  # noqa: B018 - raises ValueError on a non-numeric port
    except ValueError as exc:
        raise DatabaseUrlInvalid(masked, str(exc)) from None
    if parts.scheme not in _SCHEMES:
        raise DatabaseUrlInvalid(masked, f"unsupported scheme {parts.scheme or '(none)'!r}")
    query = dict(parse_qsl(parts.query))
    if not parts.hostname and "host" not in query:
        raise DatabaseUrlInvalid(masked, "no host")
    if not parts.path.strip("/"):
        raise DatabaseUrlInvalid(masked, "no database name after the host")
    query.setdefault("minsize", str(settings.db_pool_min_size))
    query.setdefault("maxsize", str(settings.db_pool_max_size))
    query.setdefault("statement_cache_size", str(settings.db_statement_cache_size))
    query.setdefault("timeout", str(settings.db_connect_timeout))
    # Tortoise and Aerich know postgres:// but not SQLAlchemy's postgresql+asyncpg://.
    return urlunsplit(parts._replace(scheme="postgres", query=urlencode(query)))


def tortoise_config(url: str | None = None) -> dict[str, Any]:
    """The Tortoise/Aerich configuration for one database URL (default: DATABASE_URL)."""
    return {
        "connections": {"default": database_url(url)},
        "apps": {
            APP_LABEL: {
                "models": [MODELS_MODULE, "aerich.models"],
                "default_connection": "default",
            }
        },
        "use_tz": True,
        "timezone": "UTC",
    }


def __getattr__(name: str) -> Any:
    # PEP 562: TORTOISE_ORM is built on access, so importing this module never needs a URL.
    if name == "TORTOISE_ORM":
        return tortoise_config()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
