"""The Redis cache of scenario reads: invalidated by package and studio writes, race-free, and
never a failure when Redis is down."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

import asyncpg
import pytest
from redis.asyncio import Redis
from tortoise.signals import Signals

from coach_db import Scenario, active_scenarios, invalidate_scenarios, scenario_by_slug
from coach_db import cache as cache_module
from coach_db.errors import CoachDbError
from tests.factories import make_scenario
from tests.processes import free_port
from tests.studio import delete, post
from tests.test_studio_forms import scenario_form
from tests.throwaway import ThrowawayRedis

T = TypeVar("T")


@pytest.fixture
async def cache(redis_url: str) -> AsyncIterator[str]:
    """The cache on the test Redis under a prefix of its own (returned), wiped after."""
    prefix = f"coach-db-cache-test-{uuid.uuid4().hex[:8]}:"
    await cache_module.open_cache(redis_url, prefix=prefix)
    yield prefix
    await cache_module.close_cache()
    redis = Redis.from_url(redis_url)
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis.delete(*keys)
    await redis.aclose()


def elsewhere(coro: Awaitable[T]) -> asyncio.Task[T]:
    """Run `coro` as another service would: outside the caller's transaction (a fresh context,
    so Tortoise gives it a pool connection rather than the transaction's)."""

    async def run() -> T:
        return await coro

    return asyncio.get_running_loop().create_task(run(), context=contextvars.Context())


def names(scenarios: list[Any]) -> list[str]:
    return [s.name for s in scenarios]


async def test_reads_are_served_from_redis_until_invalidated(
    cache: str, raw: asyncpg.Connection, redis_url: str
) -> None:
    """A raw SQL write announces nothing: the cached value stays (for at most the TTL, which the
    key carries) until invalidate_scenarios()."""
    scenario = await make_scenario(name="Before")
    assert names(await active_scenarios()) == ["Before"]
    assert (await scenario_by_slug(scenario.slug)).name == "Before"  # type: ignore[union-attr]

    await raw.execute("UPDATE scenario SET name = 'After' WHERE id = $1", scenario.id)
    assert names(await active_scenarios()) == ["Before"]
    redis = Redis.from_url(redis_url)
    ttls = [await redis.pttl(key) async for key in redis.scan_iter(match=f"{cache}*:active")]
    await redis.aclose()
    assert ttls and all(0 < ttl <= 60_000 for ttl in ttls)

    await invalidate_scenarios()
    assert names(await active_scenarios()) == ["After"]
    assert (await scenario_by_slug(scenario.slug)).name == "After"  # type: ignore[union-attr]


async def test_orm_saves_creates_and_deletes_invalidate(cache: str) -> None:
    first = await make_scenario(name="A first")
    assert names(await active_scenarios()) == ["A first"]
    assert await scenario_by_slug("b-second") is None
    second = await make_scenario(name="B second", slug="b-second")
    assert names(await active_scenarios()) == ["A first", "B second"]
    assert (await scenario_by_slug("b-second")).id == second.id  # type: ignore[union-attr]

    first.is_active = False
    await first.save()
    assert names(await active_scenarios()) == ["B second"]
    assert (await scenario_by_slug(first.slug)).is_active is False  # type: ignore[union-attr]
    await second.delete()
    assert await active_scenarios() == []
    assert await scenario_by_slug("b-second") is None


async def test_a_read_racing_a_write_cannot_leave_a_stale_value(cache: str) -> None:
    """Miss, read the old rows, then a write commits and invalidates, then the read stores its
    old rows: they went under the generation read before, so the next read is fresh."""
    scenario = await make_scenario(name="Old")

    async def read_then_a_write_lands() -> list[Any]:
        rows = await cache_module._load_active()
        scenario.name = "New"
        await scenario.save()  # commits and invalidates before the stale rows are stored
        return rows

    stale = await cache_module._cached("active", cache_module._SCENARIOS, read_then_a_write_lands)
    assert names(stale) == ["Old"]
    assert names(await active_scenarios()) == ["New"]


async def test_impossible_slugs_are_none_without_a_query(cache: str) -> None:
    for slug in ("", "UPPER", "a b", "x" * 101, "a\n", "a\x00b", "../etc"):
        assert await scenario_by_slug(slug) is None


async def test_a_studio_edit_is_visible_to_a_service_at_once(cache: str, staff: Any) -> None:
    """Even when the service reads between the studio's save and its commit (the moment the
    save signal has already invalidated), it never keeps the old scenario afterwards."""
    form = scenario_form(name="Saying no")
    assert (await post(staff, "/admin/scenario/create", form)).status_code == 303
    assert names(await active_scenarios()) == ["Saying no"]  # the service caches it
    scenario = await Scenario.get(slug=form["slug"])

    read_mid_transaction: list[list[Any]] = []

    async def service_reads_before_the_commit(*args: Any) -> None:
        # After the cache's own post_save listener has run (they run together), read as the
        # service: the uncommitted edit is invisible, so the old rows get cached again.
        for _ in range(10_000):
            await asyncio.sleep(0)
            generation = await cache_module._cache.redis.get(f"{cache}scenarios:generation")  # type: ignore[union-attr]
            if generation != generation_before:
                break
        read_mid_transaction.append(await elsewhere(active_scenarios()))

    redis = cache_module._cache.redis  # type: ignore[union-attr]
    generation_before = await redis.get(f"{cache}scenarios:generation")
    Scenario.register_listener(Signals.post_save, service_reads_before_the_commit)
    try:
        edited = scenario_form(slug=form["slug"], name="Saying no kindly")
        response = await post(staff, f"/admin/scenario/update/{scenario.pk}", edited)
    finally:
        Scenario._listeners[Signals.post_save][Scenario].remove(service_reads_before_the_commit)
    assert response.status_code == 303
    assert [names(r) for r in read_mid_transaction] == [["Saying no"]]
    assert names(await active_scenarios()) == ["Saying no kindly"]
    assert (await scenario_by_slug(form["slug"])).name == "Saying no kindly"  # type: ignore[union-attr]

    assert (await delete(staff, f"/admin/scenario/delete/{scenario.pk}")).status_code == 200
    assert await active_scenarios() == []


async def test_redis_down_reads_postgres_with_a_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    await cache_module.open_cache(f"redis://:hunter2secret@127.0.0.1:{free_port()}/0")
    try:
        with caplog.at_level(logging.WARNING, logger="coach_db"):
            scenario = await make_scenario(name="Still here")  # the save's invalidation fails
            assert names(await active_scenarios()) == ["Still here"]
            assert (await scenario_by_slug(scenario.slug)).id == scenario.id  # type: ignore[union-attr]
    finally:
        await cache_module.close_cache()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and "is not answering" in warnings[0]
    assert len(warnings) == 1  # one per outage, not one per read
    assert "hunter2secret" not in caplog.text


@pytest.mark.once
async def test_a_write_while_redis_was_down_is_not_hidden_when_it_returns() -> None:
    """The cached value from before the outage is not served after it: the invalidation that
    failed is sent before the next read."""
    with ThrowawayRedis() as server:
        await cache_module.open_cache(server.url, prefix="t:", retry_after=0)
        try:
            scenario = await make_scenario(name="Before")
            assert names(await active_scenarios()) == ["Before"]
            server.halt()
            scenario.name = "During"
            await scenario.save()
            assert names(await active_scenarios()) == ["During"]  # from PostgreSQL
            server.start()
            assert names(await active_scenarios()) == ["During"]
        finally:
            await cache_module.close_cache()


@pytest.mark.parametrize(
    "url", ["http://cache-user:s3cr%40t@host:6379/0", "postgres://u:s3cr%40t@h/db", "s3cr@t"]
)
async def test_a_cache_url_that_is_not_redis_is_one_clear_error_without_its_password(
    url: str,
) -> None:
    with pytest.raises(CoachDbError) as raised:
        await cache_module.open_cache(url)
    message = str(raised.value)
    assert "COACH_DB_CACHE_URL" in message and "redis://" in message
    assert "s3cr" not in message
    await cache_module.close_cache()
