"""Connection lifecycle (connect, init_db, close_db, lifespan) with errors that say what to do,
and the routing of reads to streaming replicas (ReplicaRouter, primary())."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import re
import socket
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg
from tortoise import Tortoise, connections
from tortoise.backends.base.client import TransactionalDBClient, TransactionContext
from tortoise.backends.base.config_generator import expand_db_url
from tortoise.exceptions import DBConnectionError
from tortoise.transactions import in_transaction

from coach_db import compiled
from coach_db.config import (
    database_url,
    get_settings,
    install_log_scrubbing,
    mask_url,
    redact,
    replica_urls,
    tortoise_config,
    tortoise_connection,
    url_hosts,
)
from coach_db.errors import (
    DatabaseAccessDenied,
    DatabaseMissing,
    DatabaseUnreachable,
    MigrationsNotApplied,
)

logger = logging.getLogger("coach_db")
# Tortoise logs its connection settings (the URL with the password) at DEBUG, from child
# loggers such as tortoise.db_client; error messages and tracebacks may quote a URL. Every
# record of the process is scrubbed where it is made (a filter would see only its own
# logger's records, and not the traceback text).
install_log_scrubbing()

TABLES = ("user", "scenario", "scenario_version", "conversation_session", "message")


def _where(url: str) -> tuple[str, str | int, str]:
    """(host, port, database) of a URL, for messages; a socket directory stands for the host."""
    hosts = url_hosts(url)
    if len(hosts) > 1:  # "h1:5432,h2:5432,h3" and the last port
        listed = ",".join(f"{h}:{p}" for h, p in hosts)
        return listed.rpartition(":")[0], hosts[-1][1], urlsplit(url).path.lstrip("/")
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
    except asyncpg.exceptions.TargetServerAttributeNotMatched:
        target = dict(parse_qsl(urlsplit(url).query)).get("target_session_attrs")
        reason = f"no host is what target_session_attrs={target} asks for (a failover under way?)"
        raise DatabaseUnreachable(host, port, masked, reason) from None
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


def pool_config(
    url: str,
    replicas: list[str] | None = None,
    statement_timeout: float | None = None,
    custom_plans: bool = False,
) -> dict[str, Any]:
    """The Tortoise configuration of init_db(): tortoise_config() with the pool's reset, plus a
    connection per replica ("replica_1", ...) and the ReplicaRouter when there are replicas.

    `statement_timeout` (seconds): every statement on these pools is cancelled after it, with
    a warning logging its shape (see statement_shape). It is asyncpg's command_timeout: the
    driver sends PostgreSQL a cancel request, which PgBouncer forwards in every pool mode, and
    nothing is set on the server session (a `statement_timeout` startup parameter is refused
    by PgBouncer, and a SET would outlive the query on a pooled server connection).

    `custom_plans`: PostgreSQL plans every statement for its own values. asyncpg keeps each
    statement prepared, and after five runs PostgreSQL may give a prepared statement one
    generic plan for any values: right for a service's queries, whose values are alike, wrong
    for the studio's, where one user has 27,000 sessions and the next none (a sessions page
    went from 9 to 48 ms once its statement had run with other values). With it, asyncpg's
    statement cache is off (statement_cache_size=0, as PgBouncer's transaction mode needs
    anyway): each statement is sent unnamed and planned at its Bind, with its values; about
    0.1 ms more a statement, whatever statement_cache_size the URL or DB_STATEMENT_CACHE_SIZE
    says.

    Aerich and `coach-db deploy` use tortoise_config(): they never see a replica.
    """
    config = tortoise_config(url)
    for number, replica in enumerate(replicas or [], start=1):
        config["connections"][f"{REPLICA_PREFIX}{number}"] = tortoise_connection(replica)
    if replicas:
        config["routers"] = [ReplicaRouter]
    light = get_settings().db_pool_reset == "light"
    if light or statement_timeout is not None or custom_plans:
        for alias, connection_url in config["connections"].items():
            # Tortoise passes the credentials it does not know on to asyncpg.create_pool.
            connection = (
                expand_db_url(connection_url)
                if isinstance(connection_url, str)
                else connection_url  # several hosts: expanded already
            )
            if light:
                connection["credentials"]["reset"] = _light_reset
            if statement_timeout is not None:
                connection["credentials"]["command_timeout"] = statement_timeout
                connection["credentials"]["init"] = _watch_timeouts
            if custom_plans:
                connection["credentials"]["statement_cache_size"] = 0
            config["connections"][alias] = connection
    return config


async def forget_pooled_connections(client: Any) -> None:
    """Close the pooled connections of `client` (a Tortoise connection) as soon as each is free.

    After a restart every pooled connection is dead; after a switchover one may still reach
    the demoted primary, which refuses writes
    as read-only; the pool replaces each with a new connection, made to whichever host
    target_session_attrs accepts now. (asyncpg's Pool.expire_connections(), reached through
    Tortoise's client, or its parent inside a transaction.)
    """
    client = getattr(client, "_parent", client)
    pool = getattr(client, "_pool", None)
    if pool is not None:
        await pool.expire_connections()
        logger.warning("a database connection was lost or read-only: reconnecting the pool")


async def _watch_timeouts(connection: asyncpg.Connection) -> None:
    """A new pooled connection logs the shape of each statement the timeout stops."""
    connection.add_query_logger(_log_timeout)


def _log_timeout(record: Any) -> None:
    """asyncpg's query logger (a LoggedQuery): a warning for a statement the timeout stopped,
    on the client (TimeoutError) or the server (a role's statement_timeout, 57014)."""
    if isinstance(record.exception, TimeoutError | asyncpg.QueryCanceledError):
        logger.warning(
            "statement stopped by the statement timeout after %.1f s: %s",
            record.elapsed,
            statement_shape(record.query),
        )


_LITERAL = re.compile(r"'(?:[^']|'')*'")
_NUMBER = re.compile(r"(?<![$\w.])\d+(?:\.\d+)?(?![\w.])")
_SPACES = re.compile(r"\s+")
MAX_SHAPE_CHARS = 600


def statement_shape(sql: str) -> str:
    """SQL without its values: quoted literals and numbers become ?, spaces are collapsed, and
    it is cut at MAX_SHAPE_CHARS. (Parameters are $n already; a search inlines its words.)"""
    shape = _SPACES.sub(" ", _NUMBER.sub("?", _LITERAL.sub("?", sql))).strip()
    return shape if len(shape) <= MAX_SHAPE_CHARS else shape[:MAX_SHAPE_CHARS] + " …"


# --- reads on replicas -----------------------------------------------------------------------

PRIMARY = "default"
REPLICA_PREFIX = "replica_"
_force_primary: ContextVar[bool] = ContextVar("coach_db_force_primary", default=False)
_PRIMARY_LSN = "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint AS lsn"
_REPLICA_STATE = (
    "SELECT pg_is_in_recovery() AS standby,"
    " pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint AS lsn"
)


def transaction() -> TransactionContext:
    """`async with coach_db.transaction() as conn:` — in_transaction() on the primary.

    With replicas configured Tortoise has several connections, and a bare `in_transaction()`
    raises ParamsError ("specify connection_name"): name the primary, "default", or use this.
    """
    return in_transaction(PRIMARY)


@contextmanager
def primary() -> Iterator[None]:
    """`with coach_db.primary(): ...`: every read in the block goes to the primary.

    For read-your-writes outside a transaction (a row written a moment ago may not have reached
    a replica yet). Inside `in_transaction()` every query goes to the primary anyway.
    """
    token = _force_primary.set(True)
    try:
        yield
    finally:
        _force_primary.reset(token)


def in_transaction_now() -> bool:
    """Whether the current task is inside `in_transaction()` on the primary."""
    return isinstance(connections.get(PRIMARY), TransactionalDBClient)


@dataclass
class ReplicaState:
    """What the last check found about one replica."""

    alias: str
    masked_url: str
    usable: bool = False
    lag: float | None = None  # seconds behind the primary, at most; None: unknown
    problem: str = "not checked yet"


class ReplicaMonitor:
    """Checks every replica each DATABASE_REPLICA_CHECK_INTERVAL seconds: does it answer, is it
    a standby, and how far behind is it.

    The lag is measured by WAL position, not by clocks: each check samples the primary's
    `pg_current_wal_lsn()`; a replica that has replayed up to the position the primary had at
    time t holds every write committed before t, so it is at most now - t behind. A replica
    that has replayed everything the primary wrote is 0 behind, however long ago the last write
    was (`pg_last_xact_replay_timestamp()` would call an idle primary's replica late).
    """

    def __init__(self, aliases_and_urls: list[tuple[str, str]]) -> None:
        settings = get_settings()
        self.max_lag = settings.database_replica_max_lag
        self.interval = settings.database_replica_check_interval
        self.states = {alias: ReplicaState(alias, mask_url(url)) for alias, url in aliases_and_urls}
        self._samples: deque[tuple[float, int]] = deque()
        self._usable: list[str] = []
        self._next = itertools.count()
        self._task: asyncio.Task[None] | None = None
        self._pending: dict[str, asyncio.Future[list[dict[str, Any]]]] = {}

    def pick(self) -> str:
        """A replica that is up and recent enough (round robin), else the primary."""
        usable = self._usable
        if not usable:
            return PRIMARY
        return usable[next(self._next) % len(usable)]

    async def check(self) -> None:
        """Check every replica once and update what pick() chooses from."""
        now = time.monotonic()
        try:
            rows = await self._ask(PRIMARY, _PRIMARY_LSN)
        except Exception as exc:  # the primary is down: keep the last verdicts
            logger.debug("replica check: the primary did not answer (%s)", _reason(exc))
            return
        self._samples.append((now, int(rows[0]["lsn"])))
        # Older samples than max_lag cannot make a replica usable; keep one more for the bound.
        while len(self._samples) > 1 and self._samples[1][0] < now - self.max_lag:
            self._samples.popleft()
        for state in self.states.values():
            await self._check_one(state, now)
        self._usable = [s.alias for s in self.states.values() if s.usable]

    @property
    def _timeout(self) -> float:
        return max(2.0, self.interval)

    async def _ask(self, alias: str, query: str) -> list[dict[str, Any]]:
        """The rows of `query` on `alias`, or TimeoutError after a few seconds.

        A query that does not answer is left running rather than cancelled (cancelling waits
        for the server, or for PgBouncer's query_wait_timeout, to acknowledge), and the next
        check waits for it instead of sending another: at most one check query per server.
        """
        task = self._pending.get(alias)
        if task is None:
            task = asyncio.ensure_future(connections.get(alias).execute_query_dict(query))
            self._pending[alias] = task
        done, _ = await asyncio.wait({task}, timeout=self._timeout)
        if not done:
            raise TimeoutError(f"no answer within {self._timeout:g} s")
        del self._pending[alias]
        rows: list[dict[str, Any]] = task.result()
        return rows

    async def _check_one(self, state: ReplicaState, now: float) -> None:
        was_usable, was_problem = state.usable, state.problem
        try:
            rows = await self._ask(state.alias, _REPLICA_STATE)
        except Exception as exc:
            state.usable, state.lag = False, None
            state.problem = f"does not answer ({_reason(exc)})"
        else:
            standby, replayed = rows[0]["standby"], rows[0]["lsn"]
            fresh_at = [t for t, lsn in self._samples if replayed is not None and lsn <= replayed]
            state.lag = now - max(fresh_at) if fresh_at else None
            if not standby:
                state.usable, state.problem = False, "is not a standby (promoted?)"
            elif state.lag is None or state.lag > self.max_lag:
                state.usable = False
                state.problem = f"is more than {self.max_lag:g} s behind the primary"
            else:
                state.usable, state.problem = True, ""
        if state.usable and not was_usable and was_problem != "not checked yet":
            logger.warning("replica %s is back: reads go to it again", state.masked_url)
        elif not state.usable and (was_usable or was_problem != state.problem):
            logger.warning(
                "replica %s %s: its reads go to the primary until it recovers",
                state.masked_url,
                redact(state.problem, state.masked_url),
            )

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            try:
                await self.check()
            except Exception:  # never let the monitor die: log and try again next time
                logger.exception("replica check failed")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in self._pending.values():
            task.cancel()
        self._pending.clear()


_monitor: ReplicaMonitor | None = None


def replica_monitor() -> ReplicaMonitor | None:
    """The monitor of the replicas init_db() connected to, or None without replicas."""
    return _monitor


class ReplicaRouter:
    """Tortoise's router (`routers` in the config): writes to the primary; reads to a replica
    except inside a transaction (Tortoise would send them to the replica: the transaction would
    not see its own writes) or a `primary()` block, or while no replica is usable."""

    def db_for_read(self, model: type[Any]) -> str:
        if _monitor is None or _force_primary.get() or in_transaction_now():
            return PRIMARY
        return _monitor.pick()

    def db_for_write(self, model: type[Any]) -> str:
        return PRIMARY


async def init_db(
    url: str | None = None,
    *,
    check: bool = True,
    statement_timeout: float | None = None,
    custom_plans: bool = False,
) -> None:
    """Open the connection pool for DATABASE_URL (or `url`) and check the schema is there.

    `statement_timeout`: seconds after which any statement is cancelled; `custom_plans`: every
    statement planned for its own values (see pool_config).
    Safe to call again: an earlier pool is closed first. Pair with close_db().
    """
    global _monitor
    url = database_url(url)
    replicas = replica_urls()
    if Tortoise._inited:
        await close_db()
    compiled.clear()  # the models' metadata is built again
    # The global fallback lets other tasks (a web server's requests, started outside the task
    # that ran the lifespan) use the same pool.
    await Tortoise.init(
        config=pool_config(url, replicas, statement_timeout, custom_plans),
        _enable_global_fallback=True,
    )
    try:
        if check:
            await _check(url)
        if replicas:
            aliases = [(f"{REPLICA_PREFIX}{n}", r) for n, r in enumerate(replicas, start=1)]
            _monitor = ReplicaMonitor(aliases)
            await _monitor.check()  # the first verdicts before any read
            _monitor.start()
    except BaseException:
        await close_db()
        raise
    if get_settings().coach_db_cache_url:
        from coach_db.cache import open_cache  # Redis is loaded only when a cache is set

        await open_cache()
    logger.info("coach_db connected to %s", mask_url(url))
    for replica in replicas:
        logger.info("coach_db reads from replica %s", mask_url(replica))


async def close_db() -> None:
    """Close the pool opened by init_db() (and the cache)."""
    global _monitor
    if _monitor is not None:
        await _monitor.stop()
        _monitor = None
    if "coach_db.cache" in sys.modules:  # opened only by a cache-enabled init_db()
        await sys.modules["coach_db.cache"].close_cache()
    await Tortoise.close_connections()


@asynccontextmanager
async def connect(
    url: str | None = None,
    *,
    statement_timeout: float | None = None,
    custom_plans: bool = False,
) -> AsyncIterator[None]:
    """`async with coach_db.connect(): ...`: a pool for the duration of the block; with
    `statement_timeout` seconds, no statement on it runs longer; with `custom_plans`, each is
    planned for its own values (see pool_config)."""
    await init_db(url, statement_timeout=statement_timeout, custom_plans=custom_plans)
    try:
        yield
    finally:
        await close_db()


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    """FastAPI/Starlette lifespan: `FastAPI(lifespan=coach_db.lifespan)`."""
    async with connect():
        yield


# Pool settings, and asyncpg keyword arguments its DSN parser would send as server settings.
_TORTOISE_PARAMS = {"minsize", "maxsize", "statement_cache_size", "timeout", "command_timeout"}


def asyncpg_dsn(url: str) -> str:
    """A URL from database_url() as plain asyncpg accepts it."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k not in _TORTOISE_PARAMS]
    return urlunsplit(parts._replace(scheme="postgresql", query=urlencode(query)))


async def connect_raw(url: str, application_name: str | None = None) -> asyncpg.Connection:
    """A plain asyncpg connection, with the same clear errors as coach_db.connect().

    It keeps the URL's statement_cache_size (0 behind PgBouncer in transaction mode, where
    named prepared statements of one transaction are unknown in the next).
    """
    query = dict(parse_qsl(urlsplit(url).query))
    cache = int(query.get("statement_cache_size", 100))
    settings = {"application_name": application_name} if application_name else None
    with connection_errors(url):
        return await asyncpg.connect(
            asyncpg_dsn(url), statement_cache_size=cache, server_settings=settings
        )
