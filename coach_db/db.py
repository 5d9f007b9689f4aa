"""Connection lifecycle (connect, init_db, close_db, lifespan) with errors that say what to do."""

from __future__ import annotations

import logging
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import asyncpg
from tortoise import Tortoise, connections
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import DBConnectionError

from coach_db.config import (
    SecretsFilter,
    database_url,
    get_settings,
    mask_url,
    redact,
    tortoise_config,
)
from coach_db.errors import (
    DatabaseAccessDenied,
    DatabaseMissing,
    DatabaseUnreachable,
    MigrationsNotApplied,
)

logger = logging.getLogger("coach_db")
# Tortoise logs its connection settings (the URL with the password) at DEBUG; the others may
# log an error message that quotes a URL. (A filter acts on its own logger's records only.)
for _name in ("tortoise", "coach_db", "aerich", "admin", "uvicorn.error"):
    if not any(isinstance(f, SecretsFilter) for f in logging.getLogger(_name).filters):
        logging.getLogger(_name).addFilter(SecretsFilter())

TABLES = ("user", "scenario", "scenario_version", "conversation_session", "message")


def _where(url: str) -> tuple[str, str | int, str]:
    """(host, port, database) of a URL, for messages; a socket directory stands for the host."""
    parts = urlsplit(url)
    query = dict(parse_qsl(parts.query))
    host = parts.hostname or query.get("host", "localhost")
    return host, parts.port or 5432, parts.path.lstrip("/")


@contextmanager
def connection_errors(url: str) -> Iterator[None]:
    """Turn the driver's connection errors for `url` into CoachDbErrors that say what to do."""
    host, port, database = _where(url)
    masked = mask_url(url)
    try:
        yield
    except (DBConnectionError, asyncpg.InvalidCatalogNameError):
        # Tortoise wraps only the missing-database case in DBConnectionError.
        raise DatabaseMissing(database, host, port) from None
    except asyncpg.InvalidAuthorizationSpecificationError as exc:  # also wrong password
        raise DatabaseAccessDenied(host, port, masked, redact(str(exc), url)) from None
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnreachable(host, port, masked, redact(_reason(exc), url)) from None


async def _check(url: str) -> None:
    """Connect once and check the schema is there."""
    with connection_errors(url):
        rows = await connections.get("default").execute_query_dict(
            "SELECT t AS name FROM unnest($1::text[]) AS t"
            " WHERE to_regclass(quote_ident(t)) IS NULL",
            [list(TABLES)],
        )
    missing = [row["name"] for row in rows]
    if missing:
        raise MigrationsNotApplied(missing)


def _reason(exc: BaseException) -> str:
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "unknown host"
    if isinstance(exc, TimeoutError):
        return "timed out"
    return str(exc) or type(exc).__name__


async def _light_reset(connection: asyncpg.Connection) -> None:
    """The pool's reset when DB_POOL_RESET=light: nothing beyond what asyncpg always does.

    Before calling this, asyncpg rolls back a transaction left open and forgets listener
    callbacks; the full reset's extra statement (RESET ALL; UNLISTEN *; CLOSE ALL;
    pg_advisory_unlock_all()) would cost a round trip on every query.
    """


def pool_config(url: str) -> dict[str, Any]:
    """The Tortoise configuration of init_db(): tortoise_config() with the pool's reset."""
    config = tortoise_config(url)
    if get_settings().db_pool_reset == "light":
        # Tortoise passes the credentials it does not know on to asyncpg.create_pool.
        connection = expand_db_url(config["connections"]["default"])
        connection["credentials"]["reset"] = _light_reset
        config["connections"]["default"] = connection
    return config


async def init_db(url: str | None = None, *, check: bool = True) -> None:
    """Open the connection pool for DATABASE_URL (or `url`) and check the schema is there.

    Safe to call again: an earlier pool is closed first. Pair with close_db().
    """
    url = database_url(url)
    if Tortoise._inited:
        await close_db()
    # The global fallback lets other tasks (a web server's requests, started outside the task
    # that ran the lifespan) use the same pool.
    await Tortoise.init(config=pool_config(url), _enable_global_fallback=True)
    if check:
        try:
            await _check(url)
        except BaseException:
            await close_db()
            raise
    logger.info("coach_db connected to %s", mask_url(url))


async def close_db() -> None:
    """Close the pool opened by init_db()."""
    await Tortoise.close_connections()


@asynccontextmanager
async def connect(url: str | None = None) -> AsyncIterator[None]:
    """`async with coach_db.connect(): ...`: a pool for the duration of the block."""
    await init_db(url)
    try:
        yield
    finally:
        await close_db()


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """FastAPI/Starlette lifespan: `FastAPI(lifespan=coach_db.lifespan)`."""
    async with connect():
        yield
