"""Issue 18: the runtime role (what services and the studio connect as) cannot forge the trail,
erasure matches a person by identity only, and an erased actor leaves a pseudonym.

Every attempt runs AS a runtime role made by `coach-db runtime-role --apply` for this module (a
uniquely named role, dropped at the end: roles are cluster-wide on a shared server).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

import coach_db
from coach_db import (
    MessageRole,
    User,
    add_message,
    end_session,
    privacy,
    start_session,
    transcript,
    user_history,
)
from coach_db.tools import audit_chain
from coach_db.tools.roles import runtime as runtime_role
from tests.factories import make_scenario, make_user
from tests.studio import make_staff, post

HASH = "a" * 64


def _as_role(url: str, role: str) -> str:
    """The same server and database as `role`: only the user changes (the embedded server's URL
    names its socket in the query string, `?host=/tmp/...`, and has no host part)."""
    parts = urlsplit(url)
    where = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{role}@{where}"))


@pytest.fixture(scope="module")
async def runtime_url(database_url: str) -> AsyncIterator[str]:
    """A URL of the suite's database as a fresh runtime role (its grants from runtime_role)."""
    role = f"coach_rt_{uuid.uuid4().hex[:12]}"
    owner = await asyncpg.connect(database_url)
    try:
        await owner.execute(f'CREATE ROLE "{role}" LOGIN')
        try:
            await runtime_role.apply(database_url, role)
            yield _as_role(database_url, role)
        finally:
            await owner.execute(f'DROP OWNED BY "{role}"')
            await owner.execute(f'DROP ROLE "{role}"')
    finally:
        await owner.close()


@pytest.fixture
async def rt(runtime_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(runtime_url)
    yield conn
    await conn.close()


async def _trail(raw: asyncpg.Connection) -> list[dict[str, Any]]:
    rows = await raw.fetch("SELECT * FROM audit_event ORDER BY id")
    return [dict(r) for r in rows]


async def _receipts(raw: asyncpg.Connection) -> list[dict[str, Any]]:
    return [dict(r) for r in await raw.fetch("SELECT * FROM erasure_receipt ORDER BY id")]


async def _intact(url: str) -> None:
    report = await audit_chain.verify(url)
    assert report.problem is None, str(report.problem)


async def test_the_runtime_role_cannot_change_delete_or_truncate_the_trail_or_a_receipt(
    rt: asyncpg.Connection, raw: asyncpg.Connection, database_url: str
) -> None:
    """UPDATE, DELETE, TRUNCATE, the SET LOCAL trick of issue 18, ALTER TABLE / DISABLE TRIGGER,
    replacing the trigger function, moving the chain head: all refused to the runtime role."""
    event = await raw.fetchval(
        "INSERT INTO audit_event (actor_email, action, model, row_id, changes)"
        " VALUES ('boss@example.com', 'update', 'user', 1, '{\"name\": [\"a\", \"b\"]}')"
        " RETURNING id"
    )
    await raw.execute(
        "INSERT INTO erasure_receipt (email_hash, counts, erased_by) VALUES ($1, '{}', 'cli')", HASH
    )
    before = (await _trail(raw), await _receipts(raw))
    attempts = [
        f"UPDATE audit_event SET actor_email = 'innocent@example.com' WHERE id = {event}",
        f"DELETE FROM audit_event WHERE id = {event}",
        "TRUNCATE audit_event",
        "UPDATE erasure_receipt SET erased_by = 'someone else'",
        "DELETE FROM erasure_receipt",
        "TRUNCATE erasure_receipt",
        # A receipt for an erasure that never happened (only erase_person() writes them).
        "INSERT INTO erasure_receipt (email_hash, counts, erased_by)"
        f" VALUES ('{HASH}', '{{}}', 'x')",
        "ALTER TABLE audit_event DISABLE TRIGGER audit_event_append_only",
        "ALTER TABLE audit_event DISABLE TRIGGER USER",
        "ALTER TABLE erasure_receipt DISABLE TRIGGER erasure_receipt_append_only",
        "ALTER TABLE audit_event DROP CONSTRAINT audit_event_action_valid",
        "DROP TABLE audit_event",
        "CREATE OR REPLACE FUNCTION append_only() RETURNS trigger LANGUAGE plpgsql"
        " AS $$ BEGIN RETURN NEW; END $$",
        "UPDATE audit_chain_head SET seq = 0",
        "SELECT salt FROM erasure_salt",
        "CREATE FUNCTION public.audit_by_owner(oid) RETURNS boolean LANGUAGE sql AS 'SELECT true'",
        "SET session_replication_role = replica",  # would skip every trigger
    ]
    for statement in attempts:
        for setting in ("coach_db.erasure", "coach_db.redacting"):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                async with rt.transaction():
                    await rt.execute(f"SET LOCAL {setting} = 'on'")
                    await rt.execute(statement)
    assert (await _trail(raw), await _receipts(raw)) == before
    await _intact(database_url)


async def test_a_role_granted_update_still_cannot_rewrite_the_trail_with_a_setting(
    rt: asyncpg.Connection, raw: asyncpg.Connection, runtime_url: str
) -> None:
    """Issue 18's exploit, with the grants it assumed: the triggers ask who is really running
    (current_user owns the table?), not a setting anyone can set."""
    role = urlsplit(runtime_url).username
    event = await raw.fetchval(
        "INSERT INTO audit_event (action, model, row_id) VALUES ('update', 'user', 1) RETURNING id"
    )
    await raw.execute(
        "INSERT INTO erasure_receipt (email_hash, counts, erased_by) VALUES ($1, '{}', 'x')", HASH
    )
    await raw.execute(f'GRANT UPDATE, DELETE ON audit_event, erasure_receipt TO "{role}"')
    try:
        for table, statement in (
            (
                "audit_event",
                "UPDATE audit_event SET actor_email = 'innocent@example.com', actor_id = 999,"
                f' changes = \'{{"name": ["forged", "forged"]}}\' WHERE id = {event}',
            ),
            ("audit_event", f"UPDATE audit_event SET changes = NULL WHERE id = {event}"),
            ("audit_event", f"DELETE FROM audit_event WHERE id = {event}"),
            ("erasure_receipt", "UPDATE erasure_receipt SET erased_by = '[erased]'"),
        ):
            with pytest.raises(asyncpg.RestrictViolationError) as caught:
                async with rt.transaction():
                    await rt.execute("SET LOCAL coach_db.erasure = 'on'")
                    await rt.execute("SET LOCAL coach_db.redacting = 'on'")
                    await rt.execute(statement)
            assert caught.value.constraint_name == f"{table}_append_only", statement
    finally:
        await raw.execute(f'REVOKE UPDATE, DELETE ON audit_event, erasure_receipt FROM "{role}"')
    assert await raw.fetchval("SELECT changes FROM audit_event") is None
    assert await raw.fetchval("SELECT erased_by FROM erasure_receipt") == "x"


async def test_the_runtime_role_cannot_insert_a_forged_audit_row(
    rt: asyncpg.Connection, raw: asyncpg.Connection, runtime_url: str, database_url: str
) -> None:
    """An actor id of a user who is not staff, or with another e-mail, is refused; a back-dated
    row gets the database's clock; a forged seal is replaced by the real one; db_role says which
    login wrote it. (A real staff member with their real e-mail cannot be refused: the studio
    speaks for whoever is signed in; README, Audit trail and erasure.)"""
    staff = await make_staff()
    outsider = await make_user()
    insert = (
        "INSERT INTO audit_event (actor_id, actor_email, action, model, row_id)"
        " VALUES ($1, $2, 'update', 'user', 1)"
    )
    for actor_id, actor_email in (
        (staff.pk, "innocent@example.com"),  # a staff id with another e-mail
        (outsider.pk, outsider.email),  # not staff
        (None, staff.email),  # an e-mail without its id
    ):
        with pytest.raises(asyncpg.CheckViolationError) as caught:
            await rt.execute(insert, actor_id, actor_email)
        assert caught.value.constraint_name == "audit_event_actor_is_staff"
    forged = await rt.fetchrow(
        "INSERT INTO audit_event (action, model, row_id, created_at, chain_seq, chain_prev,"
        " chain_hash, seal_digests, seal_nonces, db_role)"
        " VALUES ('delete', 'user', 7, '2001-01-01', 1, repeat('0', 64), repeat('f', 64),"
        " 'x y z', '{}', 'postgres')"
        " RETURNING created_at, chain_seq, chain_hash, db_role, now() - created_at AS age"
    )
    assert forged["created_at"].year > 2001 and abs(forged["age"].total_seconds()) < 60
    assert forged["chain_hash"] != "f" * 64 and forged["chain_seq"] == 1
    assert forged["db_role"] == urlsplit(runtime_url).username
    await rt.execute(insert, staff.pk, staff.email)  # the truth is still allowed
    await _intact(database_url)
    assert await raw.fetchval("SELECT count(*) FROM audit_event") == 2


async def test_erase_person_is_reachable_only_for_one_existing_person(
    rt: asyncpg.Connection, raw: asyncpg.Connection, database_url: str
) -> None:
    """The runtime role's only way to redact: erase one existing user, which redacts the rows
    about that user alone (not a chosen e-mail, not a missing user, not someone else's rows)."""
    person, bystander, staff = await make_user(), await make_user(), await make_staff()
    await raw.execute(
        "INSERT INTO audit_event (actor_id, actor_email, action, model, row_id, subject_id,"
        " changes) VALUES ($1, $2, 'update', 'user', $3::int, $3::int, $5),"
        " ($1, $2, 'update', 'user', $4::int, $4::int, $6)",
        staff.pk,
        staff.email,
        person.pk,
        bystander.pk,
        json.dumps({"username": ["a", "b"]}),
        json.dumps({"username": ["c", "d"]}),
    )
    before = await _trail(raw)
    call = "SELECT erase_person($1, $2, $3, $4, $5)"
    bad = asyncpg.InvalidParameterValueError
    refused = [
        ((999_999, HASH, "cli", None, None), asyncpg.NoDataFoundError),  # nobody
        ((person.pk, "not a hash", "cli", None, None), bad),
        ((person.pk, HASH, "cli", staff.pk, "innocent@example.com"), bad),  # a forged actor
        ((person.pk, HASH, "cli", bystander.pk, bystander.email), bad),  # not staff
        ((person.pk, HASH, f"by {person.email}", None, None), bad),  # their e-mail on a receipt
    ]
    for args, error in refused:
        with pytest.raises(error):
            await rt.fetchval(call, *args)
    assert await _trail(raw) == before and await User.exists(id=person.pk)
    await rt.fetchval(call, person.pk, HASH, "cli", staff.pk, staff.email)
    after = {r["row_id"]: r for r in await _trail(raw) if r["action"] == "update"}
    assert json.loads(after[person.pk]["changes"]) == {"username": "[erased]"}
    assert after[person.pk]["subject_id"] is None
    assert after[bystander.pk] == next(r for r in before if r["row_id"] == bystander.pk)
    assert after[person.pk]["actor_email"] == staff.email  # the staff member was not erased
    await _intact(database_url)


async def test_erasing_an_address_never_touches_one_that_contains_it(
    raw: asyncpg.Connection, database_url: str
) -> None:
    """Issue 18: erasing s@example.com redacted the row that created maya.boss@example.com, and
    erasing n@sec.test rewrote the receipts made by admin@sec.test. Identity, never substring."""
    admin = await make_staff(email="admin@sec.test")
    short = await make_user(email="s@example.com")
    maya = await make_user(email="maya.boss@example.com")
    victim = await make_user(email="n@sec.test")
    first = await make_user()
    await raw.execute(
        "INSERT INTO audit_event (actor_id, actor_email, action, model, row_id, subject_id,"
        " changes) VALUES ($1, $2, 'create', 'user', $3::int, $3::int, $4)",
        admin.pk,
        admin.email,
        maya.pk,
        json.dumps({"email": [None, maya.email], "note": "cc s@example.com.au"}),
    )
    async with raw.transaction():
        await privacy.erase_user_in(raw, first.email, "studio", actor=(admin.pk, admin.email))
    trail, receipts = await _trail(raw), await _receipts(raw)
    await privacy.erase_user(database_url, short.email, "test")
    await privacy.erase_user(database_url, victim.email, "test")
    assert (await _trail(raw))[: len(trail)] == trail  # only appended to
    assert (await _receipts(raw))[: len(receipts)] == receipts
    assert receipts[0]["erased_by"] == f"studio: staff #{admin.pk}"
    maya_row = await raw.fetchrow("SELECT * FROM audit_event WHERE row_id = $1", maya.pk)
    assert maya_row["subject_id"] == maya.pk and maya.email in maya_row["changes"]
    await _intact(database_url)


async def test_the_package_and_the_studio_work_as_the_runtime_role(
    runtime_url: str, package_url: str, staff: Any, raw: asyncpg.Connection, database_url: str
) -> None:
    """Conversations, a studio save (which writes an audit row) and a studio erasure, all through
    a pool connected as the runtime role."""
    role = urlsplit(runtime_url).username
    await coach_db.close_db()
    await coach_db.init_db(runtime_url)
    try:
        user, scenario = await make_user(), await make_scenario()
        session = await start_session(user, scenario)
        await add_message(session, MessageRole.USER, "hello")
        await end_session(session)
        assert [m.content for m in await transcript(session)] == ["hello"]
        assert (await user_history(user)).sessions
        saved = await post(
            staff, f"/admin/user/update/{user.pk}", {"email": user.email, "username": "Renamed"}
        )
        assert saved.status_code == 303, saved.text
        erased = await post(staff, f"/admin/user/erase/{user.pk}", {"confirm": user.email})
        assert erased.status_code == 303, erased.text
        # A staff member changing their own e-mail: the audit row names them as they were.
        me = staff.staff_user
        renamed = await post(
            staff, f"/admin/user/update/{me.pk}", {"email": f"new.{me.email}", "username": "Me"}
        )
        assert renamed.status_code == 303, renamed.text
    finally:
        await coach_db.close_db()
        await coach_db.init_db(package_url)
    trail = await raw.fetch("SELECT action, db_role, actor_id FROM audit_event ORDER BY id")
    assert [(r["action"], r["db_role"]) for r in trail] == [
        ("update", role),
        ("erase", role),
        ("update", role),
    ]
    assert not await raw.fetchval('SELECT count(*) FROM "user" WHERE id = $1', user.pk)
    await _intact(database_url)


async def test_runtime_role_refuses_a_role_that_could_get_around_the_trail(
    database_url: str, runtime_url: str
) -> None:
    """`coach-db runtime-role --apply` grants nothing to a superuser, a member of the owner or a
    role that does not exist, and says why; the grants it made leave receipts read-only."""
    from coach_db.errors import CoachDbError

    owner = urlsplit(database_url).username or "postgres"
    with pytest.raises(CoachDbError, match=r"superuser|member of their owner"):
        await runtime_role.apply(database_url, owner)
    missing = f"coach_rt_missing_{uuid.uuid4().hex[:8]}"
    with pytest.raises(CoachDbError, match="there is no role"):
        await runtime_role.apply(database_url, missing)
    conn = await asyncpg.connect(database_url)
    try:
        plan = await runtime_role.plan(conn, urlsplit(runtime_url).username or "")
    finally:
        await conn.close()
    assert 'GRANT SELECT ON "public"."aerich", "public"."erasure_receipt"' in plan.sql
    assert "TRUNCATE" not in plan.sql and "erasure_salt" not in plan.sql
