"""The opt-in Redis cache of hot, rarely changing reads: the active scenarios, a scenario by slug.

Off unless COACH_DB_CACHE_URL is set (then `init_db()` opens it). Without it, or while Redis
does not answer, `active_scenarios()` and `scenario_by_slug()` read PostgreSQL, which is always
the truth.

Keys are versioned by a generation counter (`<prefix>scenarios:generation`). A read fetches
the generation and the value under it in one round trip (a Lua script); on a miss it reads
PostgreSQL and stores the result under the generation it saw *before* reading. A write bumps the
generation after it commits. So a read that raced a write (miss, read the old rows, the write
commits and bumps, then the read stores) stores under the old generation, which nobody asks for
again: it cannot leave a stale value behind. Old generations expire with the TTL.

Who bumps: Tortoise's post_save / post_delete signals of Scenario (an ORM save or delete of an
object), and the studio after each transaction that saved or deleted scenarios. A signal
inside a transaction fires before the commit, so code that writes scenarios inside
`in_transaction()`, through `QuerySet.update()` / `.delete()` (no signals) or with raw SQL must
call `invalidate_scenarios()` after it commits; otherwise the TTL (COACH_DB_CACHE_TTL,
60 s) bounds how long a stale value can be served.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from pydantic import TypeAdapter
from redis.asyncio import Redis
from redis.exceptions import RedisError
from tortoise import connections
from tortoise.signals import post_delete, post_save

from coach_db.config import get_settings, mask_url
from coach_db.errors import CoachDbError
from coach_db.models import SLUG_PATTERN, Scenario
from coach_db.types import ScenarioRead

logger = logging.getLogger("coach_db")
T = TypeVar("T")

# Seconds without trying Redis after it failed: one warning per outage, not one per read, and
# no read waits for a dead server's timeout more than once per interval.
RETRY_AFTER = 5.0
# Redis answers in well under a millisecond; one that takes longer than this is treated as down.
TIMEOUT = 1.0

_GET = """
local generation = redis.call('GET', KEYS[1]) or '0'
return {generation, redis.call('GET', ARGV[1] .. generation .. ':' .. ARGV[2])}
"""
_ACTIVE_SQL = 'SELECT * FROM "scenario" WHERE "is_active" ORDER BY "name", "id"'
_SLUG_SQL = 'SELECT * FROM "scenario" WHERE "slug" = $1'
_SLUG = re.compile(SLUG_PATTERN)
_SCENARIOS = TypeAdapter(list[ScenarioRead])
_SCENARIO = TypeAdapter(ScenarioRead | None)


@dataclass
class _Cache:
    redis: Redis
    url: str
    prefix: str
    ttl: float
    retry_after: float = RETRY_AFTER
    down_until: float = 0.0
    missed_invalidation: bool = False
    script: Any = None  # _GET, registered once (redis-py sends EVALSHA, EVAL when unknown)

    @property
    def generation_key(self) -> str:
        return f"{self.prefix}scenarios:generation"


_cache: _Cache | None = None


async def open_cache(
    url: str | None = None,
    *,
    prefix: str | None = None,
    ttl: float | None = None,
    retry_after: float = RETRY_AFTER,
) -> None:
    """Use the Redis at `url` (default COACH_DB_CACHE_URL; none: no cache). init_db() calls it.

    `prefix` and `ttl` default to COACH_DB_CACHE_PREFIX / COACH_DB_CACHE_TTL (seconds).
    """
    global _cache
    await close_cache()
    settings = get_settings()
    url = url or settings.coach_db_cache_url
    if not url:
        return
    try:
        redis = Redis.from_url(url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
    except ValueError:  # redis-py's own message names no variable; the URL may hold a password
        raise CoachDbError(
            "COACH_DB_CACHE_URL is not a Redis URL: use redis://[user:password@]host:6379/0"
            " (or rediss:// for TLS, unix:///path/redis.sock)."
        ) from None
    _cache = _Cache(
        redis=redis,
        url=url,
        prefix=settings.coach_db_cache_prefix if prefix is None else prefix,
        ttl=settings.coach_db_cache_ttl if ttl is None else ttl,
        retry_after=retry_after,
    )


async def close_cache() -> None:
    """Stop using the cache (close_db() calls it)."""
    global _cache
    cache, _cache = _cache, None
    if cache is not None:
        await cache.redis.aclose()


def _usable() -> _Cache | None:
    cache = _cache
    if cache is None or time.monotonic() < cache.down_until:
        return None
    return cache


def _failed(cache: _Cache, exc: BaseException) -> None:
    cache.down_until = time.monotonic() + cache.retry_after
    logger.warning(
        "coach_db cache: Redis at %s is not answering (%s); reading PostgreSQL for %.0f s",
        mask_url(cache.url),
        type(exc).__name__,
        cache.retry_after,
    )


async def invalidate_scenarios() -> None:
    """Make every cached scenario read stale. Call after committing scenario writes."""
    cache = _usable()
    if cache is None:
        if _cache is not None:
            _cache.missed_invalidation = True
        return
    try:
        await cache.redis.incr(cache.generation_key)
        cache.missed_invalidation = False
    except (RedisError, OSError) as exc:
        cache.missed_invalidation = True
        _failed(cache, exc)


async def _cached(name: str, adapter: TypeAdapter[T], load: Any) -> T:
    cache = _usable()
    if cache is None:
        return await load()  # type: ignore[no-any-return]
    try:
        if cache.missed_invalidation:  # a write while Redis was down: its values may be stale
            await invalidate_scenarios()
        if cache.script is None:
            cache.script = cache.redis.register_script(_GET)
        generation, raw = await cache.script(
            keys=[cache.generation_key], args=[f"{cache.prefix}scenarios:", name]
        )
    except (RedisError, OSError) as exc:
        _failed(cache, exc)
        return await load()  # type: ignore[no-any-return]
    if raw is not None:
        return adapter.validate_json(raw)
    value = await load()
    key = f"{cache.prefix}scenarios:{generation.decode()}:{name}"
    try:
        await cache.redis.set(key, adapter.dump_json(value), px=int(cache.ttl * 1000))
    except (RedisError, OSError) as exc:
        _failed(cache, exc)
    return value  # type: ignore[no-any-return]


async def _load_active() -> list[ScenarioRead]:
    rows = await connections.get("default").execute_query_dict(_ACTIVE_SQL)
    return _SCENARIOS.validate_python(rows)


async def active_scenarios() -> list[ScenarioRead]:
    """The scenarios offered to users (`is_active`), by name; cached when the cache is on."""
    return await _cached("active", _SCENARIOS, _load_active)


async def scenario_by_slug(slug: str) -> ScenarioRead | None:
    """The scenario with this slug, active or not, or None; cached when the cache is on."""
    if not _SLUG.fullmatch(slug) or len(slug) > 100:
        return None  # cannot exist (CHECK scenario_slug_format): no query, no cache key

    async def load() -> ScenarioRead | None:
        rows = await connections.get("default").execute_query_dict(_SLUG_SQL, [slug])
        return _SCENARIO.validate_python(rows[0] if rows else None)

    return await _cached(f"slug:{slug}", _SCENARIO, load)


@post_save(Scenario)
async def _scenario_saved(sender: Any, instance: Scenario, *args: Any) -> None:
    await invalidate_scenarios()


@post_delete(Scenario)
async def _scenario_deleted(sender: Any, instance: Scenario, *args: Any) -> None:
    await invalidate_scenarios()
