"""`coach-db adopt`: a Prisma-made database becomes exactly a fresh coach-db one, nothing lost."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from coach_db.db import asyncpg_dsn
from coach_db.migrations import DEPLOY_LOCK_KEY, migration_status
from coach_db.passwords import verify_password
from coach_db.tools.adoption.convert import AdoptRefused, adopt, dry_run
from tests import prisma_package as prisma
from tests.processes import ROOT, free_port, subprocess_env
from tests.studio import sign_in

CreateDatabase = Callable[[], Awaitable[str]]
NEW_YORK = "America/New_York"


async def prisma_database(create_database: CreateDatabase, v: prisma.Variant, fix: bool) -> str:
    """A Prisma package database in a database whose default TimeZone is New York's."""
    url = await create_database()
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(
            f"ALTER DATABASE \"{urlsplit(url).path.lstrip('/')}\" SET TimeZone = '{NEW_YORK}'"
        )
        await prisma.create_schema(conn, v)
        await prisma.fill(conn, v)
        if fix:
            await prisma.fix_refused(conn)
    finally:
        await conn.close()
    return url


async def fetch(url: str, query: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        return await conn.fetch(query)
    finally:
        await conn.close()


async def execute(url: str, sql: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


# Everything a schema is made of, as text: two databases with the same text have the same
# tables, columns, defaults, comments, constraints, indexes, triggers, functions and types.
CATALOGUE = """
SELECT 'column ' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
       || ' ' || a.attnotnull || ' ' || coalesce(pg_get_expr(d.adbin, d.adrelid), '')
       || ' ' || coalesce(col_description(c.oid, a.attnum), '')
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = ANY(%(ns)s) AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL SELECT 'relation ' || relname || ' ' || relkind::text || ' '
       || coalesce(obj_description(oid, 'pg_class'), '')
FROM pg_class WHERE relnamespace = ANY(%(ns)s)
UNION ALL SELECT 'constraint ' || conrelid::regclass || ' ' || conname || ' '
       || pg_get_constraintdef(oid) FROM pg_constraint WHERE connamespace = ANY(%(ns)s)
UNION ALL SELECT 'index ' || pg_get_indexdef(indexrelid) FROM pg_index i
JOIN pg_class c ON c.oid = i.indexrelid WHERE c.relnamespace = ANY(%(ns)s)
UNION ALL SELECT 'trigger ' || pg_get_triggerdef(t.oid) || ' ' || t.tgenabled::text
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = ANY(%(ns)s) AND NOT t.tgisinternal
UNION ALL SELECT 'function ' || pg_get_functiondef(p.oid) FROM pg_proc p
WHERE p.pronamespace = ANY(%(ns)s)
UNION ALL SELECT 'type ' || t.typname || ' ' || t.typtype::text FROM pg_type t
WHERE t.typnamespace = ANY(%(ns)s)
UNION ALL SELECT 'schema ' || nspname FROM pg_namespace
WHERE nspname NOT LIKE 'pg\\_%%' AND nspname <> 'information_schema'
ORDER BY 1
"""
PUBLIC = "ARRAY['public'::regnamespace]"
ALL_SCHEMAS = (
    "ARRAY(SELECT oid FROM pg_namespace WHERE nspname NOT LIKE 'pg\\_%' "
    "AND nspname <> 'information_schema')"
)


async def catalogue(url: str, ns: str = PUBLIC) -> list[str]:
    return [r[0] for r in await fetch(url, CATALOGUE.replace("%(ns)s", ns).replace("%%", "%"))]


async def fingerprint(url: str) -> list[str]:
    """The whole database: its catalogue, every row of every table, every sequence's state."""
    lines = await catalogue(url, ALL_SCHEMAS)
    conn = await asyncpg.connect(asyncpg_dsn(url))
    try:
        for row in await conn.fetch(
            "SELECT c.oid::regclass::text AS name, c.relkind::text FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'S') "
            "AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' ORDER BY 1"
        ):
            if row["relkind"] == "S":
                state = await conn.fetchval(f"SELECT (last_value, is_called)::text FROM {row[0]}")
            else:
                state = await conn.fetchval(
                    f"SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) "
                    f"FROM {row[0]} t"
                )
            lines.append(f"data {row[0]} {state}")
    finally:
        await conn.close()
    return lines


# Every Prisma row as text, timestamps as UTC instants (epoch), before adoption ...
BEFORE = {
    "user": """SELECT id, lower(btrim(email)), username, "passwordHash" FROM "User" ORDER BY id""",
    "message": """SELECT id, "sessionId", lower(role::text), content,
        extract(epoch FROM "timestamp" AT TIME ZONE 'UTC')::text, "audioUrl",
        coalesce(metadata::jsonb, '{}')::text FROM "Message" ORDER BY id""",
    "session": """SELECT id, "userId", "scenarioId", lower(status::text),
        extract(epoch FROM "startedAt" AT TIME ZONE 'UTC')::text FROM "ConversationSession"
        ORDER BY id""",
    "scenario": """SELECT id, name, slug, description, "partnerPersona", "partnerSystemPrompt",
        "coachSystemPrompt", "partnerModel", "coachModel", "isActive" FROM "Scenario"
        ORDER BY id""",
}
# ... and the same from coach-db's tables afterwards.
AFTER = {
    "user": 'SELECT id, email, username, password_hash FROM "user" ORDER BY id',
    "message": """SELECT id, session_id, role, content, extract(epoch FROM "timestamp")::text,
        audio_url, metadata::text FROM message ORDER BY id""",
    "session": """SELECT id, user_id, scenario_id, status, extract(epoch FROM started_at)::text
        FROM conversation_session ORDER BY id""",
    "scenario": """SELECT id, name, slug, description, partner_persona, partner_system_prompt,
        coach_system_prompt, partner_model, coach_model, is_active FROM scenario ORDER BY id""",
}


@pytest.mark.parametrize("v", prisma.VARIANTS, ids=lambda v: v.id)
async def test_dry_run_recognises_the_variant_and_each_invariant(
    create_database: CreateDatabase, v: prisma.Variant
) -> None:
    url = await prisma_database(create_database, v, fix=False)
    plan = await dry_run(url, show=2)
    assert [h["migration_name"] for h in plan.history] == [prisma.MIGRATION_NAME]
    assert plan.counts == {"Scenario": 2, "User": 4, "ConversationSession": 5, "Message": 9}
    text = "\n".join(plan.variants)
    assert ("is the Prisma enum SessionStatus" in text) == v.enums
    assert ("Message.role is the Prisma enum MessageRole" in text) == v.enums
    assert ("User.createdAt absent" in text) == (not v.timestamps)
    assert f"Message.metadata is Json{'?' if v.json_optional else ''} (jsonb)" in text
    found = {(f.table, f.problem): (f.count, f.ids, f.refuses) for f in plan.findings}
    assert found[("User", "e-mail not in lower case (or with spaces around it)")] == (
        2,
        [2, 4],
        False,
    )
    assert found[("Message", "empty content")] == (1, [6], True)
    session = "ConversationSession"
    if v.counters:
        assert found[(session, "totalMessages disagrees with its messages")] == (
            3,
            [2, 3],
            False,
        )
        assert found[(session, "durationSeconds disagrees with its start and end")] == (
            3,
            [1, 3],
            False,
        )
    else:
        assert "ConversationSession.totalMessages absent: total_messages recomputed" in text
        assert not any("disagrees" in problem for _, problem in found)
    assert found[(session, "a message timestamped after the session ended")] == (1, [1], False)
    assert found[(session, "ended (not active) without an end time")] == (1, [4], False)
    assert (("Message", "metadata NULL (Json?)") in found) == v.json_optional
    assert not plan.ok


async def run_script(url: str, script: str) -> object:
    """Run `script` as a service would (its own process, DATABASE_URL = url); its JSON output."""
    result = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=subprocess_env(url),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def run_cli(url: str, *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "coach_db", *args],
        cwd=ROOT,
        env=subprocess_env(url, COLUMNS="200"),
        capture_output=True,
        text=True,
        input=stdin,
        timeout=120,
    )


async def test_dry_run_exits_0_only_when_adoption_can_proceed_and_bounds_its_output(
    create_database: CreateDatabase,
) -> None:
    url = await prisma_database(create_database, prisma.Variant(), fix=False)
    refused = run_cli(url, "adopt", "--dry-run", "--show", "1")
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "refused Message: 1 rows, empty content (ids 6)" in refused.stdout
    assert "totalMessages disagrees with its messages (ids 2 …)" in refused.stdout
    await execute(url, """DELETE FROM "Message" WHERE "content" = ''""")
    ok = run_cli(url, "adopt", "--dry-run")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "Adoption can proceed" in ok.stdout
    assert not await fetch(url, "SELECT 1 FROM pg_namespace WHERE nspname = 'prisma_archive'")


@pytest.mark.parametrize("v", prisma.VARIANTS[1::2], ids=lambda v: v.id)
async def test_adoption_keeps_every_row_byte_for_byte_and_every_instant(
    create_database: CreateDatabase, v: prisma.Variant
) -> None:
    url = await prisma_database(create_database, v, fix=True)
    before = {k: [tuple(r) for r in await fetch(url, q)] for k, q in BEFORE.items()}
    # The session's own TimeZone differs from the database's too.
    done = await adopt(url + ("&" if "?" in url else "?") + "TimeZone=Asia%2FKathmandu")
    assert done.rows == {"scenario": 2, "user": 4, "conversation_session": 5, "message": 8}
    after = {k: [tuple(r) for r in await fetch(url, q)] for k, q in AFTER.items()}
    assert after == before
    ends = await fetch(
        url,
        "SELECT id, extract(epoch FROM ended_at)::text AS e, total_messages, duration_seconds "
        "FROM conversation_session ORDER BY id",
    )
    assert [(r["id"], r["total_messages"], r["duration_seconds"]) for r in ends] == [
        (1, 4, 750),  # moved to its late message 07:12:30.777, 12 min 30.778 s after the start
        (2, 1, None),
        (3, 1, 60),
        (4, 1, 3),  # ended at its last message
        (5, 1, 111),
    ]
    assert ends[0]["e"] == "1743318750.777000"  # 2025-03-30 07:12:30.777 UTC
    hashes = await fetch(url, 'SELECT password_hash FROM "user" WHERE id <= 2 ORDER BY id')
    assert [r[0] for r in hashes] == [prisma.TEST_USER_HASH, prisma.STAFF_HASH]


async def test_adopted_schema_is_exactly_what_deploy_builds(
    create_database: CreateDatabase,
) -> None:
    url = await prisma_database(create_database, prisma.Variant(enums=True), fix=True)
    await adopt(url)
    fresh = await create_database()
    assert run_cli(fresh, "deploy").returncode == 0
    adopted = [line for line in await catalogue(url) if line != "schema prisma_archive"]
    assert adopted == [line for line in await catalogue(fresh)]
    assert (await migration_status(url)).pending == []
    aerich = "SELECT version, app, content FROM aerich ORDER BY id"
    assert [tuple(r) for r in await fetch(url, aerich)] == [
        tuple(r) for r in await fetch(fresh, aerich)
    ]
    status = run_cli(url, "status")
    assert status.returncode == 0 and "Up to date" in status.stdout, status.stdout


async def test_adoption_starts_like_a_fresh_install_and_keeps_the_prisma_history(
    create_database: CreateDatabase,
) -> None:
    url = await prisma_database(create_database, prisma.Variant(), fix=True)
    await adopt(url)
    # Sequences continue after every id Prisma handed out (user 5 was deleted by the app).
    ids = await fetch(
        url,
        "SELECT nextval('user_id_seq'), nextval('message_id_seq'), "
        "nextval('conversation_session_id_seq'), nextval('scenario_id_seq')",
    )
    assert tuple(ids[0]) == (6, 10, 6, 3)
    versions = await fetch(url, "SELECT scenario_id, version FROM scenario_version ORDER BY 1")
    assert [tuple(r) for r in versions] == [(1, 1), (2, 1)]
    assert not await fetch(
        url,
        "SELECT status FROM (SELECT status, sum(sessions) n, sum(duration_seconds) d "
        "FROM session_by_status GROUP BY 1) r FULL JOIN (SELECT status, count(*) n, "
        "coalesce(sum(duration_seconds), 0) d FROM conversation_session GROUP BY 1) s "
        "USING (status) WHERE r.n IS DISTINCT FROM s.n OR r.d IS DISTINCT FROM s.d",
    )
    daily = "SELECT day, sum(messages) FROM message_daily GROUP BY 1 ORDER BY 1"
    counted = (
        "SELECT (timestamp AT TIME ZONE 'UTC')::date, count(*) FROM message GROUP BY 1 ORDER BY 1"
    )
    assert [tuple(r) for r in await fetch(url, daily)] == [
        tuple(r) for r in await fetch(url, counted)
    ]
    audit = await fetch(url, "SELECT action, model, changes FROM audit_event")
    assert len(audit) == 1 and (audit[0]["action"], audit[0]["model"]) == ("create", "database")
    changes = json.loads(audit[0]["changes"])
    assert changes["last_prisma_migration"] == prisma.MIGRATION_NAME
    assert changes["rows"]["message"] == 8
    history = await fetch(url, "SELECT migration_name FROM prisma_archive._prisma_migrations")
    assert [r[0] for r in history] == [prisma.MIGRATION_NAME]
    assert not await fetch(url, "SELECT 1 FROM pg_tables WHERE tablename = 'Message'")


REFUSALS = {
    "duplicate-email": (
        """INSERT INTO "User" ("email", "username", "updatedAt")
           VALUES ('TEST@example.com', 'Twin', '2025-01-01')""",
        "users whose e-mails differ only in case or spaces (ids grouped: 1,6)",
    ),
    "unknown-column": (
        """ALTER TABLE "User" ADD COLUMN "avatarUrl" TEXT""",
        "columns coach-db does not know: avatarUrl",
    ),
    "unknown-table": (
        """CREATE TABLE "Feedback" (id SERIAL PRIMARY KEY)""",
        "tables or views coach-db does not know: Feedback",
    ),
    "bad-status": (
        """UPDATE "ConversationSession" SET status = 'paused' WHERE id = 5""",
        "status outside active, completed, abandoned",
    ),
    "bad-role": (
        """UPDATE "Message" SET role = 'system' WHERE id = 5""",
        "role outside user, partner, coach",
    ),
    "content-too-long": (
        """UPDATE "Message" SET content = repeat('é', 32001) WHERE id = 3""",
        "content over 32,000 characters (coach_db/limits.py)",
    ),
    "metadata-not-an-object": (
        """UPDATE "Message" SET metadata = '[1, 2]' WHERE id = 1""",
        "metadata that is not a JSON object",
    ),
    "metadata-too-deep": (
        """UPDATE "Message" SET metadata = (repeat('{"a": ', 17) || '1' || repeat('}', 17))::jsonb
           WHERE id = 7""",
        "metadata nested deeper than 16",
    ),
    "metadata-too-large": (
        """UPDATE "Message" SET metadata = jsonb_build_object('s', repeat('x', 40000))
           WHERE id = 9""",
        "metadata over 32,768 bytes of compact JSON",
    ),
    "active-with-an-end": (
        """UPDATE "ConversationSession" SET "endedAt" = '2025-11-02 06:00' WHERE id = 2""",
        "active but with an end time",
    ),
    "ended-before-start": (
        """UPDATE "ConversationSession" SET "endedAt" = '2025-06-01 11:00' WHERE id = 3""",
        "ended before it started",
    ),
    "unknown-function": (
        """CREATE FUNCTION "touch"() RETURNS int LANGUAGE sql AS 'SELECT 1'""",
        "objects coach-db does not know: function touch()",
    ),
    "unfinished-prisma-migration": (
        """INSERT INTO "_prisma_migrations" (id, checksum, migration_name, started_at)
           VALUES ('x', 'y', '20250301000000_add_tags', now())""",
        "migrations that started and never finished: 20250301000000_add_tags",
    ),
}


async def test_what_adoption_cannot_decide_is_refused_naming_each_problem(
    create_database: CreateDatabase,
) -> None:
    """Every refusal at once (one database keeps the suite lean): each is named, with its fix,
    and `adopt --yes` changes nothing."""
    url = await prisma_database(create_database, prisma.Variant(), fix=True)
    for sql, _ in REFUSALS.values():
        await execute(url, sql)
    plan = await dry_run(url)
    refused = {f.problem: f for f in plan.findings if f.refuses}
    for case, (_, problem) in REFUSALS.items():
        assert problem in refused, case
        assert refused[problem].action, case
    assert refused["status outside active, completed, abandoned"].ids == [5]
    assert refused["metadata nested deeper than 16"].ids == [7]
    before = await fingerprint(url)
    with pytest.raises(AdoptRefused):
        await adopt(url)
    assert await fingerprint(url) == before


async def test_a_failure_late_in_adoption_leaves_the_database_exactly_as_before(
    create_database: CreateDatabase,
) -> None:
    url = await prisma_database(create_database, prisma.Variant(enums=True), fix=True)
    # A fault after every row has moved: building an index once message holds rows.
    await execute(
        url,
        """
        CREATE SCHEMA fault;
        CREATE FUNCTION fault.fail() RETURNS event_trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF to_regclass('public.message') IS NOT NULL THEN
                IF (SELECT reltuples FROM pg_class WHERE oid = 'public.message'::regclass) > 0
                   OR EXISTS (SELECT 1 FROM pg_stat_xact_user_tables
                              WHERE relid = 'public.message'::regclass AND n_tup_ins > 0) THEN
                    RAISE EXCEPTION 'injected fault after the rows moved';
                END IF;
            END IF;
        END $$;
        CREATE EVENT TRIGGER fault ON ddl_command_end WHEN TAG IN ('CREATE INDEX')
            EXECUTE FUNCTION fault.fail();
        """,
    )
    before = await fingerprint(url)
    with pytest.raises(asyncpg.RaiseError, match="injected fault"):
        await adopt(url)
    assert await fingerprint(url) == before
    await execute(url, "DROP EVENT TRIGGER fault")
    await adopt(url)  # and it then goes through


async def test_adoption_is_refused_while_a_deploy_holds_the_lock(
    create_database: CreateDatabase,
) -> None:
    url = await prisma_database(create_database, prisma.Variant(), fix=True)
    holder = await asyncpg.connect(asyncpg_dsn(url))
    try:
        async with holder.transaction():
            await holder.execute("SELECT pg_advisory_xact_lock($1)", DEPLOY_LOCK_KEY)
            with pytest.raises(AdoptRefused, match="holds the migration lock"):
                await adopt(url)
    finally:
        await holder.close()
    assert not await fetch(url, "SELECT 1 FROM pg_namespace WHERE nspname = 'prisma_archive'")


async def test_adoption_is_refused_on_a_coach_db_an_adopted_or_an_empty_database(
    create_database: CreateDatabase, create_migrated_database: CreateDatabase
) -> None:
    url = await prisma_database(create_database, prisma.Variant(), fix=True)
    await adopt(url)
    with pytest.raises(AdoptRefused, match="schema prisma_archive already exists"):
        await adopt(url)
    fresh = await create_migrated_database()
    with pytest.raises(AdoptRefused, match="already coach-db's"):
        await adopt(fresh)
    empty = await create_database()
    result = run_cli(empty, "adopt", "--dry-run")
    assert result.returncode == 1
    assert "This database is empty" in result.stdout and "coach-db deploy" in result.stdout


PACKAGE_SCRIPT = """
import asyncio, json, coach_db
from coach_db.conversations import start_session, add_message, transcript
from coach_db.models import ConversationSession, User

async def main():
    async with coach_db.connect():
        user = await User.get(email="TEST@example.com")
        session = await start_session(user, 1)
        await add_message(session, "user", "After the move")
        await add_message(session, "partner", "Still here")
        lines = await transcript(session.id)
        again = await ConversationSession.get(id=session.id)
        print(json.dumps({"id": session.id, "total": again.total_messages,
                          "lines": [m.content for m in lines],
                          "version": again.scenario_version_id}))

asyncio.run(main())
"""


async def test_the_package_and_createstaff_work_on_the_adopted_database(
    create_database: CreateDatabase,
) -> None:
    url = await prisma_database(create_database, prisma.Variant(), fix=True)
    await adopt(url)
    assert await run_script(url, PACKAGE_SCRIPT) == {
        "id": 6,
        "total": 2,
        "lines": ["After the move", "Still here"],
        "version": 1,
    }
    # The staff member's Prisma e-mail had capitals: createstaff finds them by it.
    staff = run_cli(
        url, "createstaff", prisma.STAFF_EMAIL, "--password-stdin", stdin="new-pass-99\n"
    )
    assert staff.returncode == 0, staff.stderr
    assert "Updated staff user coach.admin@example.com" in staff.stderr
    row = (await fetch(url, 'SELECT id, password_hash, is_staff FROM "user" WHERE id = 2'))[0]
    assert row["is_staff"] and verify_password("new-pass-99", row["password_hash"])


SIGN_IN_SCRIPT = """
import asyncio, json, coach_db
from coach_db.passwords import authenticate

async def main():
    async with coach_db.connect():
        wrong = await authenticate("test@example.com", "password124")
        right = await authenticate("TEST@example.com", "password123")
        print(json.dumps({"wrong": wrong is None, "right": right is not None and right.id}))

asyncio.run(main())
"""


async def test_the_node_apps_bcrypt_password_signs_in_through_the_package_after_adoption(
    create_database: CreateDatabase,
) -> None:
    """The test user's `$2a$` hash, written by the Node app, survives adoption byte for byte,
    signs in with password123 through `coach_db.passwords.authenticate` and becomes argon2id."""
    url = await prisma_database(create_database, prisma.Variant(), fix=True)
    await adopt(url)
    query = "SELECT id, password_hash FROM \"user\" WHERE email = 'test@example.com'"
    before = (await fetch(url, query))[0]
    assert before["password_hash"] == prisma.TEST_USER_HASH
    assert await run_script(url, SIGN_IN_SCRIPT) == {"wrong": True, "right": before["id"]}
    after = (await fetch(url, query))[0]["password_hash"]
    assert after.startswith("$argon2id$") and verify_password("password123", after)


@pytest.mark.once
async def test_a_staff_member_whose_prisma_email_had_capitals_signs_in_to_the_studio(
    create_database: CreateDatabase, redis_url: str, tmp_path: Path
) -> None:
    """The studio on the adopted database: the staff member signs in with the password the
    Node app hashed (bcrypt `$2b$`), by the e-mail as the Prisma package stored it, and their
    hash becomes argon2id."""
    url = await prisma_database(create_database, prisma.Variant(enums=True), fix=True)
    await adopt(url)
    # The Prisma package had no staff flag: an operator grants it, the password stays the Node
    # app's bcrypt hash.
    await execute(
        url,
        "UPDATE \"user\" SET is_staff = true, role = 'admin'"
        " WHERE email = 'coach.admin@example.com'",
    )
    port = free_port()
    studio = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "coach_db", "studio", "--no-migrate", "--port", str(port)],
        cwd=ROOT,
        # A Redis prefix of its own: sign-in failures of other runs never lock this one out.
        env=subprocess_env(
            url, home=tmp_path, REDIS_URL=redis_url, REDIS_PREFIX=f"adopt-{uuid.uuid4().hex[:8]}:"
        ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        stdin=subprocess.DEVNULL,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            for _ in range(300):
                try:
                    if (await client.get("/admin/login")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.3)
            assert studio.returncode is None
            wrong = await sign_in(client, prisma.STAFF_EMAIL, "not-the-password")
            assert wrong.status_code != 303
            done = await sign_in(client, prisma.STAFF_EMAIL, "staff-pass-42")
            assert done.status_code == 303, done.text[:300]
            home = await client.get("/admin/")
            assert home.status_code == 200 and "coach.admin@example.com" in home.text
        query = "SELECT password_hash FROM \"user\" WHERE email = 'coach.admin@example.com'"
        stored = (await fetch(url, query))[0]["password_hash"]
        assert stored.startswith("$argon2id$") and verify_password("staff-pass-42", stored)
    finally:
        studio.terminate()
        await asyncio.wait_for(studio.wait(), 30)
