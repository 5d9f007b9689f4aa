"""Prompt versions (migration 6): every change of a scenario's prompts or models is a version,
recorded by the database whoever writes, and every session knows the version it ran with."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg
import pytest

from coach_db import ConversationSession, Scenario, ScenarioVersion, start_session
from coach_db.types import ScenarioVersionRead, SessionRead
from tests.conftest import run_aerich
from tests.factories import make_scenario, make_user

VERSIONED = ("partner_persona", "partner_system_prompt", "coach_system_prompt")
INSERT_SCENARIO = """
    INSERT INTO scenario (name, slug, description, partner_persona, partner_system_prompt,
                          coach_system_prompt, partner_model, coach_model)
    VALUES ('Raw', $1, 'd', 'persona', 'partner prompt', 'coach prompt', 'model-a', 'model-b')
    RETURNING id"""
VERSIONS = "SELECT * FROM scenario_version WHERE scenario_id = $1 ORDER BY version"


async def raw_scenario(raw: asyncpg.Connection, slug: str = "raw") -> int:
    scenario_id: int = await raw.fetchval(INSERT_SCENARIO, slug)
    return scenario_id


async def test_a_raw_sql_insert_records_version_1_with_the_scenarios_values(
    raw: asyncpg.Connection,
) -> None:
    scenario_id = await raw_scenario(raw)
    [version] = await raw.fetch(VERSIONS, scenario_id)
    assert version["version"] == 1
    assert (
        version["partner_persona"],
        version["partner_system_prompt"],
        version["coach_system_prompt"],
        version["partner_model"],
        version["coach_model"],
    ) == ("persona", "partner prompt", "coach prompt", "model-a", "model-b")


@pytest.mark.parametrize("column", [*VERSIONED, "partner_model", "coach_model"])
async def test_a_raw_sql_update_of_one_versioned_field_records_the_next_version(
    raw: asyncpg.Connection, column: str
) -> None:
    scenario_id = await raw_scenario(raw)
    await raw.execute(f"UPDATE scenario SET {column} = 'changed' WHERE id = $1", scenario_id)
    versions = await raw.fetch(VERSIONS, scenario_id)
    assert [v["version"] for v in versions] == [1, 2]
    assert versions[1][column] == "changed"
    assert versions[0][column] != "changed"  # the old snapshot is untouched


async def test_an_update_with_the_same_values_records_no_version(raw: asyncpg.Connection) -> None:
    scenario_id = await raw_scenario(raw)
    await raw.execute(
        "UPDATE scenario SET partner_persona = partner_persona, coach_model = 'model-b'"
        " WHERE id = $1",
        scenario_id,
    )
    assert len(await raw.fetch(VERSIONS, scenario_id)) == 1


@pytest.mark.parametrize(
    "change",
    ["is_active = false", "name = 'Renamed'", "description = 'new'", "slug = 'raw-renamed'"],
)
async def test_an_update_of_a_field_that_is_not_versioned_records_no_version(
    raw: asyncpg.Connection, change: str
) -> None:
    scenario_id = await raw_scenario(raw)
    await raw.execute(f"UPDATE scenario SET {change} WHERE id = $1", scenario_id)
    assert len(await raw.fetch(VERSIONS, scenario_id)) == 1


async def test_a_version_cannot_be_updated_inserted_or_deleted_directly(
    raw: asyncpg.Connection,
) -> None:
    scenario_id = await raw_scenario(raw)
    with pytest.raises(asyncpg.CheckViolationError, match="cannot be changed") as refused:
        await raw.execute(
            "UPDATE scenario_version SET coach_system_prompt = 'rewritten history'"
            " WHERE scenario_id = $1",
            scenario_id,
        )
    assert refused.value.constraint_name == "scenario_version_immutable"
    with pytest.raises(asyncpg.CheckViolationError, match="cannot be deleted") as refused:
        await raw.execute("DELETE FROM scenario_version WHERE scenario_id = $1", scenario_id)
    assert refused.value.constraint_name == "scenario_version_immutable"
    with pytest.raises(asyncpg.CheckViolationError, match="written by the database only"):
        await raw.execute(
            "INSERT INTO scenario_version (scenario_id, version, partner_persona,"
            " partner_system_prompt, coach_system_prompt, partner_model, coach_model)"
            " VALUES ($1, 2, 'forged', 'forged', 'forged', 'm', 'm')",
            scenario_id,
        )
    assert [v["version"] for v in await raw.fetch(VERSIONS, scenario_id)] == [1]


async def test_the_orm_save_of_a_scenario_records_a_version_only_when_prompts_change() -> None:
    scenario = await make_scenario()
    scenario.coach_system_prompt = "Be kinder."
    await scenario.save()
    scenario.is_active = False
    await scenario.save()  # writes every column again, the prompts unchanged
    versions = await ScenarioVersion.filter(scenario_id=scenario.pk).order_by("version")
    assert [(v.version, v.coach_system_prompt) for v in versions] == [
        (1, "Give feedback."),
        (2, "Be kinder."),
    ]


async def test_a_session_gets_the_current_version_from_any_insert(
    raw: asyncpg.Connection,
) -> None:
    """start_session, the ORM's create and raw SQL all get the version current at the insert."""
    user = await make_user()
    scenario = await make_scenario()
    first = await start_session(user, scenario)
    v1 = await ScenarioVersion.get(scenario_id=scenario.pk, version=1)
    assert first.scenario_version_id == v1.pk  # start_session returns the version used
    assert SessionRead.model_validate(first).scenario_version_id == v1.pk

    await raw.execute("UPDATE scenario SET partner_model = 'model-2' WHERE id = $1", scenario.pk)
    v2 = await ScenarioVersion.get(scenario_id=scenario.pk, version=2)
    second = await start_session(user, scenario)
    by_orm = await ConversationSession.create(user=user, scenario=scenario)
    by_sql = await raw.fetchval(
        "INSERT INTO conversation_session (user_id, scenario_id) VALUES ($1, $2)"
        " RETURNING scenario_version_id",
        user.pk,
        scenario.pk,
    )
    await by_orm.refresh_from_db()
    assert [second.scenario_version_id, by_orm.scenario_version_id, by_sql] == [v2.pk] * 3
    await first.refresh_from_db()
    assert first.scenario_version_id == v1.pk  # older sessions keep theirs


async def test_a_session_naming_a_version_of_another_scenario_is_refused(
    raw: asyncpg.Connection,
) -> None:
    user = await make_user()
    ours, other = await make_scenario(), await make_scenario()
    theirs = await ScenarioVersion.get(scenario_id=other.pk)
    with pytest.raises(asyncpg.CheckViolationError, match="belongs to scenario") as refused:
        await raw.execute(
            "INSERT INTO conversation_session (user_id, scenario_id, scenario_version_id)"
            " VALUES ($1, $2, $3)",
            user.pk,
            ours.pk,
            theirs.pk,
        )
    assert refused.value.constraint_name == "conversation_session_version_of_scenario"
    session = await start_session(user, ours)
    with pytest.raises(asyncpg.CheckViolationError, match="belongs to scenario"):
        await raw.execute(
            "UPDATE conversation_session SET scenario_version_id = $1 WHERE id = $2",
            theirs.pk,
            session.pk,
        )
    # Moved to another scenario without naming a version: that scenario's current one.
    await raw.execute(
        "UPDATE conversation_session SET scenario_id = $1 WHERE id = $2", other.pk, session.pk
    )
    await session.refresh_from_db()
    assert (session.scenario_id, session.scenario_version_id) == (other.pk, theirs.pk)


async def test_a_scenario_goes_with_its_versions_only_when_no_session_used_them(
    raw: asyncpg.Connection,
) -> None:
    unused, used = await make_scenario(), await make_scenario()
    await raw.execute("UPDATE scenario SET partner_model = 'x' WHERE id = $1", unused.pk)
    await start_session(await make_user(), used)
    await raw.execute("DELETE FROM scenario WHERE id = $1", unused.pk)
    assert await raw.fetch(VERSIONS, unused.pk) == []
    # PostgreSQL 15 reports a RESTRICT foreign key as foreign_key_violation, 18 (the embedded
    # server) as restrict_violation: the constraint's name is what both say.
    with pytest.raises(asyncpg.IntegrityConstraintViolationError) as refused:
        await raw.execute("DELETE FROM scenario WHERE id = $1", used.pk)
    assert refused.value.constraint_name == "conversation_session_scenario_id_fkey"
    assert len(await raw.fetch(VERSIONS, used.pk)) == 1


async def test_concurrent_raw_sql_updates_of_one_scenario_get_distinct_version_numbers(
    raw_pool: asyncpg.Pool,
) -> None:
    """The UPDATE holds the scenario's row lock until its commit, so each trigger sees the
    versions committed before it: 1..N+1, no duplicate and no unique violation."""
    scenario = await make_scenario()
    writers = 8

    async def update(i: int) -> None:
        async with raw_pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "UPDATE scenario SET coach_system_prompt = $1 WHERE id = $2",
                f"prompt {i}",
                scenario.pk,
            )
            await asyncio.sleep(0.05)  # hold the lock while the others queue behind it

    await asyncio.gather(*(update(i) for i in range(writers)))
    async with raw_pool.acquire() as conn:
        versions = await conn.fetch(VERSIONS, scenario.pk)
    assert [v["version"] for v in versions] == list(range(1, writers + 2))
    assert {v["coach_system_prompt"] for v in versions[1:]} == {
        f"prompt {i}" for i in range(writers)
    }


async def test_scenario_version_read_is_the_snapshot() -> None:
    scenario = await make_scenario()
    version = await ScenarioVersionRead.from_queryset_single(
        ScenarioVersion.get(scenario_id=scenario.pk)
    )
    assert (version.scenario_id, version.version, version.partner_model) == (
        scenario.pk,
        1,
        "claude-sonnet-4-5",
    )
    assert isinstance(await Scenario.get(pk=scenario.pk), Scenario)


@pytest.mark.once  # three aerich runs on a fresh database
async def test_the_migration_gives_existing_scenarios_version_1_and_existing_staff_admin(
    create_database: Callable[[], Awaitable[str]],
) -> None:
    """Rows written before migration 6: version 1 for each scenario, their sessions attached to
    it (without bumping the session's own version), existing staff become admins."""
    url = await create_database()
    assert run_aerich("upgrade", url=url).returncode == 0
    down = run_aerich("downgrade", "-v", "6", "--yes", url=url)  # prompt_versions and later
    assert down.returncode == 0, down.stderr
    conn = await asyncpg.connect(url)
    try:
        assert await conn.fetchval("SELECT to_regclass('scenario_version')") is None
        scenarios = [await raw_scenario(conn, slug) for slug in ("one", "two")]
        users = [
            await conn.fetchval(
                'INSERT INTO "user" (email, username, is_staff) VALUES ($1, $1, $2) RETURNING id',
                f"u{i}@example.com",
                staff,
            )
            for i, staff in enumerate((True, False))
        ]
        for scenario_id in (*scenarios, scenarios[0]):
            await conn.execute(
                "INSERT INTO conversation_session (user_id, scenario_id) VALUES ($1, $2)",
                users[1],
                scenario_id,
            )
        up = run_aerich("upgrade", url=url)
        assert up.returncode == 0, up.stderr
        versions = await conn.fetch("SELECT id, scenario_id, version FROM scenario_version")
        assert sorted((v["scenario_id"], v["version"]) for v in versions) == [
            (scenarios[0], 1),
            (scenarios[1], 1),
        ]
        version_of = {v["scenario_id"]: v["id"] for v in versions}
        sessions = await conn.fetch(
            "SELECT scenario_id, scenario_version_id, version FROM conversation_session"
        )
        assert len(sessions) == 3
        for session in sessions:
            assert session["scenario_version_id"] == version_of[session["scenario_id"]]
            assert session["version"] == 1
        roles = await conn.fetch('SELECT is_staff, role FROM "user" ORDER BY id')
        assert [(r["is_staff"], r["role"]) for r in roles] == [(True, "admin"), (False, "viewer")]
    finally:
        await conn.close()
