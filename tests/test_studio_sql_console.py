"""The studio's SQL console (studio/sql_console.py, studio/sql_runner.py) and its role
(coach_db/tools/roles/console.py): a hostile admin can neither change nor exfiltrate anything.

Each attack is tried twice: through the console (refused, or answered with an error), and
straight at the role in a READ ONLY transaction without the console's text check, so the
database's own layers are shown to hold by themselves."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest

from coach_db import StaffRole
from coach_db.apps.studio import sql_runner
from coach_db.models import AuditEvent
from coach_db.tools.roles import console as console_role
from coach_db.tools.roles.console import drop, is_secret, provision
from tests.factories import make_message
from tests.studio import csrf, studio_with
from tests.test_studio_hostile import snapshot
from tests.test_studio_roles import signed_in_as


def _as(url: str, role: str, password: str) -> str:
    """The URL `coach-db console-role` prints (it keeps the embedded server's ?host=socket)."""
    return console_role.console_url(url, role, password)


@pytest.fixture(scope="module")
async def console_url(database_url: str) -> AsyncIterator[str]:
    """A console role with a unique name (roles are cluster-wide), dropped at the end."""
    role = f"coach_console_test_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    owner = await asyncpg.connect(database_url)
    try:
        done = await provision(owner, role, password)
        assert "user.password_hash" in done.hidden and "erasure_salt.salt" in done.hidden
        yield _as(database_url, role, password)
    finally:
        await drop(owner, role)
        await owner.close()


@pytest.fixture(scope="module")
async def console_app(studio_settings: Any, console_url: str) -> AsyncIterator[Any]:
    async with studio_with(studio_settings, coach_db_console_url=console_url) as app:
        yield app


@pytest.fixture
async def admin_client(console_app: Any) -> AsyncIterator[Any]:
    client = await signed_in_as(console_app, StaffRole.ADMIN)
    yield client
    await client.exit.__aexit__(None, None, None)


async def console(client: Any, sql: str, **extra: str) -> Any:
    data = {"csrf_token": await csrf(client), "sql": sql, **extra}
    return await client.post("/admin/sql", data=data)


# Each hostile statement, and a word of what the console answers.
HOSTILE = [
    ("SELECT 1; DELETE FROM scenario", "One statement at a time"),
    ("DELETE FROM scenario", "not DELETE"),
    ("SET TRANSACTION READ WRITE", "not SET"),
    ("COPY scenario TO PROGRAM 'touch /tmp/console-was-here'", "not COPY"),
    ("SELECT pg_read_file('/etc/passwd')", "pg_read_file() is not available"),
    ("SELECT lo_import('/etc/passwd')", "lo_import() is not available"),
    ("SELECT set_config('statement_timeout', '0', false)", "set_config() is not available"),
    ("SELECT dblink_connect('host=127.0.0.1')", "dblink_connect() is not available"),
    ("SELECT nextval('scenario_id_seq')", "nextval() is not available"),
    ("WITH x AS (DELETE FROM message RETURNING 1) SELECT count(*) FROM x", "PostgreSQL"),
    ("SELECT pg_sleep(600)", "pg_sleep() is not available"),
    ('SELECT "pg_sleep"(600)', "pg_sleep() is not available"),
    ("SELECT pg_catalog.pg_sleep_for('10 minutes')", "pg_sleep_for() is not available"),
    ("SELECT pg_terminate_backend(pid) FROM pg_stat_activity", "not available"),
    ("RESET ROLE", "not RESET"),
    ("SET ROLE postgres", "not SET"),
    ("SET SESSION AUTHORIZATION postgres", "not SET"),
    ("COMMIT; DELETE FROM scenario", "One statement at a time"),
    ("SELECT 1 /* ; */ ; DELETE FROM scenario", "One statement at a time"),
    ("SELECT $$ ; $$; DELETE FROM scenario", "One statement at a time"),
    ("SELECT $x$ $$; $x$ -- ;\n; DELETE FROM scenario", "One statement at a time"),
    ("SELECT '\\' ; DELETE FROM scenario --'", "One statement at a time"),
    ("SELECT U&'\\0070g_sleep'", "escapes are not accepted"),
    ("SELECT pg_advisory_lock(1)", "not available"),
    ("SELECT id FROM scenario FOR UPDATE", "read-only transaction"),
    ('SELECT password_hash FROM "user"', "permission denied"),
    ("SELECT * FROM erasure_salt", "permission denied"),
    ("SELECT current_setting('data_directory')", "PostgreSQL"),
    ("SELECT 1 INTO TEMP t", "INTO creates a table"),
    ("SELECT query_to_xml('select 1', true, false, '')", "not available"),
    ("DO $$ BEGIN PERFORM 1; END $$", "not DO"),
]


async def test_every_hostile_statement_is_refused_and_nothing_changes(
    admin_client: Any, raw: asyncpg.Connection
) -> None:
    await make_message()
    before = await snapshot(raw)
    for sql, answer in HOSTILE:
        response = await console(admin_client, sql)
        assert response.status_code == 400, sql
        assert answer in response.text, (sql, response.text[-3000:])
        assert 'id="console-result"' not in response.text
    assert await snapshot(raw) == before
    # Every attempt is in the audit trail, with its text and outcome.
    events = await AuditEvent.filter(model="sql").order_by("id")
    assert [e.changes["sql"] for e in events] == [sql for sql, _ in HOSTILE]
    assert {e.changes["outcome"] for e in events} <= {"refused", "error"}


async def _in_console_transaction(url: str) -> asyncpg.Connection:
    """The role, in the transaction the console opens, without the console's text check."""
    conn = await asyncpg.connect(url, statement_cache_size=0)
    await conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
    await conn.execute("SET LOCAL statement_timeout = 500")
    await conn.fetchval("SELECT 1")
    return conn


# The database's own layers, each statement straight at the role.
UNDER_THE_CHECK = [
    "DELETE FROM scenario",
    "SET TRANSACTION READ WRITE",
    "COPY scenario TO PROGRAM 'touch /tmp/console-was-here'",
    "SELECT pg_read_file('/etc/passwd')",
    "SELECT lo_import('/etc/passwd')",
    "SELECT dblink_connect('host=127.0.0.1')",
    "SELECT nextval('scenario_id_seq')",
    "WITH x AS (DELETE FROM message RETURNING 1) SELECT count(*) FROM x",
    "SELECT pg_sleep(600)",
    "SELECT set_config('statement_timeout', '0', false), pg_sleep(600)",
    "SET ROLE postgres",
    "SET SESSION AUTHORIZATION postgres",
    "SELECT id FROM scenario FOR UPDATE",
    "SELECT id FROM scenario FOR SHARE",
    'SELECT password_hash FROM "user"',
    'SELECT u.* FROM "user" u',
    "SELECT salt FROM erasure_salt",
    "SELECT email_hash FROM erasure_receipt",
    "SELECT current_setting('data_directory')",
    "CREATE TABLE console_was_here (id int)",
    "SELECT 1 INTO console_was_here",
]


@pytest.mark.parametrize("sql", UNDER_THE_CHECK)
async def test_the_role_and_the_transaction_refuse_it_without_the_text_check(
    console_url: str, raw: asyncpg.Connection, sql: str
) -> None:
    await make_message()
    before = await snapshot(raw)
    conn = await _in_console_transaction(console_url)
    started = time.monotonic()
    try:
        with pytest.raises(asyncpg.PostgresError):
            await conn.fetch(sql)
    finally:
        await conn.close()
    assert time.monotonic() - started < 5  # pg_sleep(600) is cut at the statement timeout
    assert await snapshot(raw) == before


async def test_the_role_cannot_end_another_backend_or_become_another_role(
    console_url: str, raw: asyncpg.Connection
) -> None:
    conn = await _in_console_transaction(console_url)
    try:
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await conn.fetch(
                "SELECT pg_terminate_backend($1)", await raw.fetchval("SELECT pg_backend_pid()")
            )
    finally:
        await conn.close()
    conn = await _in_console_transaction(console_url)
    try:
        await conn.execute("RESET ROLE")  # allowed, and changes nothing: the login is the role
        assert await conn.fetchval("SELECT current_user") == urlsplit(console_url).username
        # Other roles' statements (the studio's, with their parameters) are not readable.
        other = await raw.fetchval("SELECT pg_backend_pid()")
        text = await conn.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", other)
        assert text == "<insufficient privilege>"
    finally:
        await conn.close()
    assert await raw.fetchval("SELECT 1") == 1  # still connected


async def test_two_statements_never_reach_the_server_as_one_prepared_statement(
    console_url: str,
) -> None:
    conn = await _in_console_transaction(console_url)
    try:
        with pytest.raises(asyncpg.PostgresSyntaxError, match="multiple commands"):
            await conn.prepare("SELECT 1; SELECT 2")
    finally:
        await conn.close()


async def test_the_role_may_read_no_column_that_looks_secret(console_url: str) -> None:
    conn = await asyncpg.connect(console_url)
    try:
        await sql_runner.check_role(conn)  # passes: this is the console's kind of role
        columns = await conn.fetch(
            "SELECT table_name, column_name FROM information_schema.columns"
            " WHERE table_schema = 'public'"
        )
        readable = {(r["table_name"], r["column_name"]) for r in columns}
        grants = await conn.fetch(
            "SELECT c.relname AS t, a.attname AS c FROM pg_attribute a JOIN pg_class c"
            " ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'public' AND a.attnum > 0 AND c.relkind = 'r'"
            " AND has_column_privilege(c.oid, a.attnum, 'SELECT')"
        )
        granted = {(r["t"], r["c"]) for r in grants}
    finally:
        await conn.close()
    assert ("user", "email") in granted and ("message", "content") in granted
    assert not {column for column in granted if is_secret(*column)}
    assert ("user", "password_hash") not in readable | granted


async def test_results_are_capped_in_rows_cell_size_and_time(console_url: str) -> None:
    many = await sql_runner.run(console_url, "SELECT generate_series(1, 1000000000)")
    assert many.row_count == 1000 and many.cut and "first 1,000 rows" in many.cut
    wide = await sql_runner.run(console_url, "SELECT repeat('x', 10000000) AS big")
    assert wide.rows[0][0] is not None and len(wide.rows[0][0]) == sql_runner.CELL_CHARS + 1
    limits = sql_runner.Limits(timeout_ms=500)
    started = time.monotonic()
    with pytest.raises(asyncpg.QueryCanceledError):
        await sql_runner.run(
            console_url, "SELECT count(*) FROM generate_series(1, 1e9) AS g", limits
        )
    assert time.monotonic() - started < 4


async def test_an_admin_runs_a_query_explains_it_and_downloads_csv_audited(
    admin_client: Any,
) -> None:
    message = await make_message(content='=HYPERLINK("http://evil")')
    shown = await console(admin_client, "SELECT id, content FROM message ORDER BY id;")
    assert shown.status_code == 200 and 'id="console-result"' in shown.text
    assert "1 row" in shown.text and "=HYPERLINK(&#34;http://evil&#34;)" in shown.text
    plan = await console(admin_client, "EXPLAIN SELECT * FROM message WHERE id = 1")
    # The plan, whichever scan the planner takes on the test's few rows ("Seq Scan on message"
    # or "Index Scan using message_pkey on message": it depends on the table's size on disk).
    assert 'id="console-plan"' in plan.text and " on message" in plan.text
    csv = await console(admin_client, "SELECT id, content FROM message", download="csv")
    assert csv.headers["content-type"].startswith("text/csv")
    assert "attachment" in csv.headers["content-disposition"]
    assert csv.text.splitlines()[1] == f'{message.pk},"\'=HYPERLINK(""http://evil"")"'
    events = await AuditEvent.filter(model="sql").order_by("id")
    assert [e.changes["outcome"] for e in events] == ["ok", "ok", "ok"]
    assert [e.changes["rows"] for e in events[::2]] == [1, 1]  # the plan's lines in between
    assert events[0].actor_id == admin_client.staff_user.pk
    assert events[0].changes["sql"] == "SELECT id, content FROM message ORDER BY id;"


async def test_viewers_and_editors_are_refused_the_console(console_app: Any) -> None:
    for role in (StaffRole.VIEWER, StaffRole.EDITOR):
        client = await signed_in_as(console_app, role)
        try:
            assert (await client.get("/admin/sql")).status_code == 403
            refused = await console(client, "SELECT 1")
            assert refused.status_code == 403 and "role is" in refused.text
            assert "SQL console" not in (await client.get("/admin/")).text
        finally:
            await client.exit.__aexit__(None, None, None)
    assert not await AuditEvent.filter(model="sql").exists()


async def test_without_a_console_role_the_page_says_so_and_runs_nothing(staff: Any) -> None:
    page = await staff.get("/admin/sql")
    assert page.status_code == 200
    assert 'id="console-off"' in page.text and "coach-db console-role" in page.text
    assert "<textarea" not in page.text
    assert (await console(staff, "SELECT 1")).status_code == 409


async def test_a_console_url_of_a_privileged_role_turns_the_console_off(
    studio_settings: Any, database_url: str
) -> None:
    async with studio_with(studio_settings, coach_db_console_url=database_url) as app:
        client = await signed_in_as(app, StaffRole.ADMIN)
        try:
            response = await console(client, "SELECT 1")
        finally:
            await client.exit.__aexit__(None, None, None)
    assert response.status_code == 400
    assert "The console is off" in response.text and "superuser" in response.text
    assert "console-result" not in response.text


def test_coach_db_console_role_makes_the_role_and_prints_its_url(database_url: str) -> None:
    import subprocess
    import sys

    from tests.processes import subprocess_env

    role = f"coach_console_cli_{uuid.uuid4().hex[:8]}"
    command = [sys.executable, "-m", "coach_db", "console-role", "--role", role]
    env = subprocess_env(database_url)
    made = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
    try:
        assert made.returncode == 0, made.stderr
        assert "user.password_hash" in made.stdout
        line = next(x for x in made.stdout.splitlines() if x.startswith("COACH_DB_CONSOLE_URL="))
        assert urlsplit(line.split("=", 1)[1]).username == role
    finally:
        gone = subprocess.run([*command, "--drop"], env=env, capture_output=True, text=True)
    assert gone.returncode == 0 and f"Dropped role {role}" in gone.stdout
